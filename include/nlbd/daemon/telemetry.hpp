#pragma once
// Telemetry of a running nlbd (SPEC §9, docs/telemetry.md): DPDK telemetry
// commands (/nlbd/stats, /nlbd/rules, /nlbd/cluster, for dpdk-telemetry.py)
// and the Prometheus /metrics endpoint (prometheus.hpp). Control plane.
//
// Threading contract:
//  - The control thread (the only owner of membership, the publisher and the
//    heartbeat counters) refreshes a TelemetryCache with the --stats-json
//    document (ClusterControl::run_command("stats"): the same document as
//    `nlbctl stats`, which includes "cluster_state" = `nlbctl query`) every
//    refresh interval. Worker counters in it are read with relaxed loads, as
//    for nlbctl stats: the worker never takes a lock or waits for a reader.
//  - DPDK's telemetry threads and the Prometheus server thread only read the
//    cache: they copy a shared_ptr to an immutable document under the cache's
//    mutex (the control plane may lock; the packet path never does).
//  - Values are at most one refresh interval old; after the traffic stops
//    they equal what --stats-json reports at exit.

#include <chrono>
#include <memory>
#include <mutex>

#include "nlbd/ctl/json.hpp"

namespace nlbd::daemon {

class TelemetryCache {
public:
    using Doc = std::shared_ptr<const ctl::Json>;
    // Control thread.
    void update(ctl::Json doc);
    // Any thread; nullptr before the first update.
    Doc get() const;

private:
    mutable std::mutex mu_;
    Doc doc_;
};

// Decides when the control loop refreshes the cache (control thread only).
class TelemetryRefresher {
public:
    explicit TelemetryRefresher(std::chrono::milliseconds interval) : interval_(interval) {}
    // True (and re-armed) when a refresh is due.
    bool due(std::chrono::steady_clock::time_point now) noexcept {
        if (now < next_) return false;
        next_ = now + interval_;
        return true;
    }

private:
    std::chrono::milliseconds interval_;
    std::chrono::steady_clock::time_point next_{};
};

inline constexpr std::chrono::milliseconds kTelemetryRefresh{250};

// Registers /nlbd/stats, /nlbd/rules and /nlbd/cluster with DPDK telemetry
// (once per process; DPDK 22.11 cannot unregister) and makes them answer from
// `cache`. Call after rte_eal_init. Returns false when DPDK refused a command.
// set_dpdk_telemetry_source(nullptr) before the cache is destroyed: the
// commands then answer an error.
bool register_dpdk_telemetry(std::shared_ptr<const TelemetryCache> cache);
void set_dpdk_telemetry_source(std::shared_ptr<const TelemetryCache> cache);

// The part of a stats document each command returns (pure; unit-testable):
// /nlbd/stats: the document without "rules" and "cluster_state";
// /nlbd/rules: {"0": {rule 0 ... , "state": ...}, ..., "none": no_rule};
// /nlbd/cluster: the "cluster_state" member.
ctl::Json telemetry_stats_view(const ctl::Json& doc);
ctl::Json telemetry_rules_view(const ctl::Json& doc);
ctl::Json telemetry_cluster_view(const ctl::Json& doc);

}  // namespace nlbd::daemon
