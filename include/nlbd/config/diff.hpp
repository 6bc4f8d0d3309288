#pragma once
// What a reload changes (SPEC §7, docs/reload.md): the difference between the
// running configuration and a newly loaded one. Pure control-plane logic, no
// DPDK: unit-tested in tests/unit/config_diff_test.cpp.
//
// Rules are compared by their key (VIP, ports, protocol: rule_name()), never
// by position: the same rules in another order are no change.
//
// restart: keys whose change a running daemon cannot apply (ports, devices,
// NIC profile, workers, dispatch, EAL options, table sizes and timeouts,
// host id, cluster name/mode/buckets/ethertype, static membership, the VIP
// that gives the cluster MAC, DPDK telemetry). A reload with any of them is
// refused whole. Everything else is live: params (heartbeat interval and
// tolerance, VIPs, the secret file, Prometheus and remote-control listeners,
// idle policy) and the rules.

#include <string>
#include <vector>

#include "nlbd/config/config.hpp"

namespace nlbd::config {

struct KeyChange {
    std::string key;     // dotted path: "cluster.heartbeat_interval_ms", "nic.workers"
    std::string before;
    std::string after;
};

struct RuleChange {
    std::string rule;                 // rule_name()
    std::vector<KeyChange> fields;    // key = field name ("mode", "load_weight", "health_check", ...)
};

struct ConfigDiff {
    std::vector<std::string> rules_added;    // rule names
    std::vector<std::string> rules_removed;
    std::vector<RuleChange> rules_changed;
    std::vector<KeyChange> params;           // live-changeable keys that changed
    std::vector<KeyChange> restart;          // keys that need a restart
    bool secret_changed = false;             // the secret file's bytes (set by the caller)

    bool empty() const {
        return rules_added.empty() && rules_removed.empty() && rules_changed.empty() &&
               params.empty() && restart.empty() && !secret_changed;
    }
    // "rules: +1 -0 ~2; heartbeat_interval_ms 100 -> 200; ..." (one line per item).
    std::vector<std::string> lines() const;
};

ConfigDiff diff(const Config& before, const Config& after);

}  // namespace nlbd::config
