#pragma once
// The nlbd daemon: the data plane (src/dp) and everything around it, as one
// object whose parts start in declaration order and stop in reverse.
//
//   EAL -> ports (and the dispatch plan) -> snapshot publisher -> health
//   checks -> cluster control -> data plane (rings, workers, distributor,
//   each worker built on its own lcore) -> control socket -> telemetry ->
//   Prometheus -> remote control (mutual TLS)
//
// A part that cannot start throws StartError; the parts already started are
// then stopped in reverse by their destructors (nothing is undone by hand).
// run() polls the control plane until a signal or --run-for, stops the
// lcores, closes the listeners and writes the report. A reload rebuilds only
// the parts whose configuration changed (on_reloaded).

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "nlbd/config/config.hpp"
#include "nlbd/daemon/cluster_control.hpp"
#include "nlbd/daemon/control.hpp"
#include "nlbd/daemon/notify.hpp"
#include "nlbd/daemon/port.hpp"
#include "nlbd/daemon/stats.hpp"
#include "nlbd/daemon/telemetry.hpp"
#include "nlbd/dp/distributor.hpp"
#include "nlbd/dp/worker.hpp"

struct rte_ring;

namespace nlbd::ctl {
class ControlServer;
class TlsControlServer;
}  // namespace nlbd::ctl
namespace nlbd::health {
class Checker;
}

namespace nlbd::daemon {

class PrometheusServer;

// The command line (main.cpp parses it).
struct Options {
    std::string config;
    std::optional<std::string> nic;
    double run_for_s = 0;  // 0 = until a signal
    std::optional<std::string> stats_json;
    bool check_config = false;
    std::optional<std::string> control_socket;  // default: /run/nlbd/nlbd-<host id>.sock
    bool no_control_socket = false;
    bool ignore_state = false;  // start from [host] initial_state, not the state file
    std::vector<std::string> eal;
};

class StartError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Sets the flags the control loop turns into a stop (SIGINT, SIGTERM) and a
// reload (SIGHUP). Installed before anything else so that SIGHUP never ends
// the daemon, even while it starts.
void install_signal_handlers();

// The dispatch plan, from the profile, the ports' capabilities and the
// lcores EAL gave us (main lcore excluded).
struct DispatchPlan {
    config::DispatchMode mode = config::DispatchMode::rss;
    unsigned workers = 1;
    std::vector<unsigned> worker_lcores;  // empty: one worker on the main lcore
    int distributor_lcore = -1;
    QueuePlan wire;
    QueuePlan local;
    std::vector<std::string> notes;       // printed at start
};
DispatchPlan plan_dispatch(const config::NicProfile& nic, const PortCaps& wire, const PortCaps& local,
                           const std::vector<unsigned>& lcores);

// EAL, initialised from the command line, the profile and placement;
// rte_eal_cleanup() when destroyed.
class Eal {
public:
    Eal(const Options& opt, const config::Config& cfg, const char* program);
    ~Eal();
    Eal(const Eal&) = delete;
    Eal& operator=(const Eal&) = delete;

    const std::vector<std::string>& args() const noexcept { return args_; }

private:
    std::vector<std::string> args_;
    bool pdump_ = false;  // rte_pdump_init() succeeded: dpdk-dumpcap may attach
};

// The wire and local ports, opened for the dispatch plan. Stopped, closed
// (net_pcap writes its output here) and their pools freed when destroyed.
class Ports {
public:
    explicit Ports(const config::Config& cfg);
    ~Ports();
    Ports(const Ports&) = delete;
    Ports& operator=(const Ports&) = delete;

    // Stops and closes both ports, reading their statistics in between
    // (idempotent; the pools stay until destruction: frames may still sit in
    // rings).
    void close(PortStats& wire, PortStats& local) noexcept;

    DispatchPlan plan;
    PortInfo wire;
    PortInfo local;

private:
    void release() noexcept;
    bool open_ = false;
};

// The data plane the daemon runs: rings, workers and the RX distributor.
// Each worker (connection table, fragment table, burst scratch) and the
// distributor are constructed on their own lcore, so that their memory is
// first touched there (the kernel places it on that lcore's NUMA node).
class DataPlane {
public:
    DataPlane(const config::Config& cfg, const Ports& ports, SnapshotPublisher& publisher,
              ClusterControl& cluster, const std::atomic<config::IdlePolicy>& idle);
    ~DataPlane();
    DataPlane(const DataPlane&) = delete;
    DataPlane& operator=(const DataPlane&) = delete;

    // Runs the lcores until `stop` (the control loop ticks in between:
    // `tick` on the main lcore, or between the single worker's polls).
    // Returns false when an lcore could not be launched.
    bool run(std::atomic<bool>& stop, const dp::ControlTick& tick);

    // Live views (control thread).
    void totals(RunReport& r) const;          // counters, verdicts, fragments
    std::string connections_json(const ClusterControl::HeldForeign& hf) const;
    std::string workers_json() const;
    ClusterControl::HeldForeign held_foreign(const core::Snapshot* s) const;
    void rx_loops(std::vector<uint64_t>& v) const;
    bool multi_lcore() const noexcept { return workers_.size() > 1 || distributor_ != nullptr; }
    std::string describe() const;

private:
    void release() noexcept;
    const DispatchPlan& plan_;
    bool l4_hash_ = false;
    bool wire_tx_shared_ = false;
    std::vector<rte_ring*> rings_;
    std::vector<std::unique_ptr<dp::Worker>> workers_;
    std::unique_ptr<dp::Distributor> distributor_;
};

// The symlink nlbctl's default socket path may be (removed at exit).
struct DefaultLink {
    std::string path;
    ~DefaultLink();
};

class Daemon {
public:
    Daemon(const Options& opt, const config::Config& cfg, const char* program);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Until SIGINT/SIGTERM or --run-for; then stops, reports and returns
    // the exit code.
    int run();

private:
    using Clock = std::chrono::steady_clock;

    // The control loop's work (main lcore, or between the single worker's
    // polls): stop on a signal or the deadline, reload on SIGHUP,
    // heartbeats, membership, commands, snapshots, telemetry. Must not throw.
    void tick() noexcept;
    static void tick_fn(void* self) noexcept { static_cast<Daemon*>(self)->tick(); }
    // After ClusterControl applied a reload: rebuilds what the daemon owns.
    std::string reloaded(const config::Config& before, const config::Config& after);
    void start_health(const config::Config& cfg);
    std::string start_prometheus(const config::Config& cfg);
    std::string start_remote(const config::Config& cfg);
    void live_report(RunReport& r) const;

    const Options opt_;
    SystemdNotifier notify_;  // $NOTIFY_SOCKET (docs/systemd.md)
    // --- parts, in start order (stopped in reverse) -----------------------
    Eal eal_;
    Ports ports_;
    SnapshotPublisher publisher_;
    std::unique_ptr<health::Checker> health_;  // ClusterControl holds a raw pointer
    std::unique_ptr<ClusterControl> cluster_;
    std::atomic<config::IdlePolicy> idle_;     // read by the lcores every loop
    DataPlane dataplane_;
    DefaultLink default_link_;                 // declared first: removed after the socket closed
    std::unique_ptr<ctl::ControlServer> socket_;
    std::shared_ptr<TelemetryCache> telemetry_;
    bool dpdk_telemetry_ = false;
    TelemetryRefresher telemetry_due_;
    std::unique_ptr<PrometheusServer> prometheus_;
    std::unique_ptr<ctl::TlsControlServer> remote_;
    // --- control loop ------------------------------------------------------
    std::atomic<bool> stop_{false};
    std::optional<Clock::time_point> deadline_;
    // Set when a stop was requested: the host has announced `stopped` and
    // the lcores run until then so that the announcement reaches the wire.
    std::optional<Clock::time_point> leaving_until_;
    bool restart_remote_ = false;  // a reload changed [control] remote_*
    // systemd: READY=1 once the lcores run; STATUS= when it changes;
    // WATCHDOG=1 while every lcore's loop counter advances.
    void notify_tick(Clock::time_point now) noexcept;
    bool ready_sent_ = false;
    Clock::time_point next_status_{};
    Clock::time_point next_watchdog_{};
    std::vector<uint64_t> watchdog_loops_;
};

}  // namespace nlbd::daemon
