#pragma once
// Run report: every counter of a run, as JSON (--stats-json) and as a
// one-screen human summary (stderr at exit). Control plane.
//
// JSON schema (all counts are integers):
// {
//   "host": 1, "cluster": "name", "mode": "unicast", "started": true,
//   "rx_total": n,                      // frames received on the wire port
//   "verdicts": {"accepted": n, ...},   // every Verdict name; sums to rx_total
//   "parse_errors": {"truncated_ethernet": n, ...},  // sums to verdicts.malformed
//   "rules": [{"index": i, "vip": "10.0.0.1"|"all", "ports": "lo-hi",
//              "protocol": "tcp|udp|both", "mode": "multiple|single|disabled",
//              "matched": n, "accepted": n, "not_owner": n, "dropped": n,
//              "buckets_owned": n}],   // buckets_owned: multiple mode; single
//                                      // mode: buckets if this host is the owner
//   "no_rule": {"matched": n, "accepted": n, "not_owner": n, "dropped": n},
//   "ports": {"wire": {"rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
//                      "tx_dropped", "imissed", "rx_nombuf", "ierrors", "oerrors"},
//             "local": {...same...}},
//   "local_to_wire": n,
//   "dataplane": {"linearized", "reply_failed", "frag_released", "loops", "idle_sleeps"},
//   "fragments": {"datagrams", "inserted", "evicted", "timed_out", "held"},
//   "membership": {"self": 1, "members": [1,2,3], "default_host": 1,
//                  "epoch": 1, "buckets": 4096},
//   "connections": {"entries", "capacity", "inserted", "removed", "expired",
//                   "evicted", "evicted_established", "insert_failed",
//                   "held_foreign"},
//   "heartbeats": {"sent", "tx_failed", "received", "accepted",
//                  <one counter per HeartbeatError but none>, "igmp_sent",
//                  "snapshots_published"},
//   "cluster_state": <the nlbctl query result>
// }
// "dataplane" also has "heartbeat_dropped" (control ring full) and
// "control_tx" (frames the control thread sent through the worker).

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "nlbd/config/config.hpp"
#include "nlbd/core/frag_table.hpp"
#include "nlbd/core/snapshot.hpp"
#include "nlbd/daemon/port.hpp"
#include "nlbd/dp/worker.hpp"

namespace nlbd::daemon {

// The data plane's counters, read here.
using dp::WorkerCounters;
using dp::PortCounters;
using dp::RuleCounters;
using dp::read_counter;
using dp::kRuleSlots;
using dp::kNoRuleSlot;

struct RunReport {
    const config::Config* cfg = nullptr;
    const core::Snapshot* snap = nullptr;
    const WorkerCounters* counters = nullptr;   // the host's totals (all workers)
    std::shared_ptr<const WorkerCounters> owned_counters;  // keeps *counters alive when summed
    uint64_t verdicts[kVerdictCount] = {};  // Worker::verdicts_at_exit
    core::FragStats frags;
    PortStats wire_hw;
    PortStats local_hw;
    // Further top-level members, already JSON ("\"heartbeats\":{...},..."),
    // appended at the end of the document (membership, conn table).
    std::string extra;
};

// into += c, field by field (every counter, the rule slots included;
// held_foreign is not a sum and is left alone). Reads c with relaxed loads:
// may run while c's worker is running.
void add_counters(WorkerCounters& into, const WorkerCounters& c) noexcept;
void add_frag_stats(core::FragStats& into, const core::FragStats& s) noexcept;

std::string json_escape(const std::string& s);
std::string stats_json(const RunReport& r);
void print_summary(std::FILE* out, const RunReport& r);

// Short names used in reports and --check-config (core/rules.hpp).
using ::nlbd::name_of;

// Buckets of compiled rule `rule` that `self` owns (single mode: all or none).
uint32_t buckets_owned(const core::Snapshot& s, uint16_t rule);

// The rule table (with buckets owned when snap is given), printed at start,
// and the whole summary --check-config prints.
void print_rules(std::FILE* out, const config::Config& cfg, const core::Snapshot* snap);
void print_config_summary(std::FILE* out, const config::Config& cfg, const core::Snapshot* snap);

}  // namespace nlbd::daemon
