#pragma once
// The control thread's cluster work (SPEC §4, §8): heartbeats in and out,
// membership, snapshot publication and the nlbctl commands.
//
// Threading contract:
//  - Every method but post() runs on the control thread (the main lcore, or
//    the worker's control tick when there is one lcore). Membership and the
//    publisher are touched by that thread only.
//  - post() is called by the control socket's thread: it queues the command
//    and waits for the control thread to run it (poll() drains the queue).
//  - Heartbeat frames reach poll() through heartbeat_rx (the workers, or the
//    RX distributor, enqueue mbufs: multi-producer; poll() decodes and frees
//    them). Frames to send are built in mbufs of tx_pool and enqueued on
//    control_tx; worker 0 sends them on the wire queue it owns. A full control_tx frees the frame (tx_failed).
//  - poll() also watches the wire port's link (every interval / 4): the
//    ethdev link status, and for vdevs bound to a kernel interface
//    ("iface=" devargs: net_af_packet, whose link status never changes after
//    start) the interface's IFF_UP and IFF_RUNNING flags. Changes are logged
//    and handed to Membership::set_link().

#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nlbd/cluster/heartbeat.hpp"
#include "nlbd/cluster/membership.hpp"
#include "nlbd/config/config.hpp"
#include "nlbd/ctl/json.hpp"
#include "nlbd/daemon/announcer.hpp"
#include "nlbd/daemon/control.hpp"
#include "nlbd/daemon/events.hpp"

struct rte_mempool;

namespace nlbd::cluster {
class Membership;
}
namespace nlbd::health {
class Checker;
}

namespace nlbd::daemon {

struct HeartbeatCounters {
    uint64_t sent = 0;       // frames handed to the worker
    uint64_t tx_failed = 0;  // no mbuf or control_tx full
    uint64_t received = 0;   // frames taken from heartbeat_rx
    uint64_t accepted = 0;   // decoded, authentic, fresh: fed to membership
    uint64_t errors[static_cast<unsigned>(cluster::HeartbeatError::count_)] = {};
    uint64_t igmp_sent = 0;
    uint64_t snapshots_published = 0;
};

class ClusterControl {
public:
    // Throws (control plane) when the rings cannot be created or the secret
    // file cannot be read.
    ClusterControl(const config::Config& cfg, SnapshotPublisher& publisher, rte_mempool* tx_pool,
                   const MacAddr& wire_mac);
    ~ClusterControl();
    ClusterControl(const ClusterControl&) = delete;
    ClusterControl& operator=(const ClusterControl&) = delete;

    // The running configuration: the one given at start, or the last one a
    // reload applied (control thread).
    const config::Config& config() const noexcept { return cfg_; }
    // Where reload() reads the configuration again (set by main).
    struct ReloadSource {
        std::string cluster_file;
        std::optional<std::string> nic;  // --nic, else the cluster file's nic_profile
    };
    ReloadSource reload_source;
    // Called on the control thread after a reload was applied, with the new
    // configuration (main rebuilds the health checker and the Prometheus
    // listener). May throw: the reload is reported as applied with a warning.
    std::function<std::string(const config::Config& before, const config::Config& after)> on_reloaded;
    // Called with true when a reload starts and false when it ended, applied
    // or refused (systemd's RELOADING=1 / READY=1). Must not throw.
    std::function<void(bool reloading)> reload_progress;
    // One line for systemd's STATUS= and logs: "converged, members [1,2,3],
    // epoch 7" (dynamic), "static, started" (static membership).
    std::string status_line() const;
    // Host state file ([host] state_file, docs/state-file.md): restores the
    // operator's state unless `ignore`; warnings go to stderr. Call before start().
    void restore_state(bool ignore);

    rte_ring* heartbeat_rx() const noexcept { return rx_ring_; }
    rte_ring* control_tx() const noexcept { return tx_ring_; }
    bool dynamic() const noexcept { return dynamic_; }

    // Builds and publishes the first snapshot.
    void start();
    // Control work; cheap when there is nothing to do. Never throws.
    void poll() noexcept;
    // Shutdown: announce `stopped` at once (dynamic membership) so that the
    // peers take this host's buckets without waiting for the dead interval.
    // In igmp mode also an IGMP leave for 239.255.y.z (and no more reports).
    // The caller keeps the worker running briefly so the frames go out.
    void leave() noexcept;

    // Runs a command on the control thread (nlbctl). Throws on a bad command:
    // not in the registry (ctl/commands.hpp), wrong arguments, or refused in
    // this host's state (the registry row's while_suspended / with_static).
    // caller: who sent it (the event log names it; empty: nlbd itself).
    ctl::Json run_command(const std::string& command, const std::vector<std::string>& args,
                          const std::string& caller = {});
    // nlbctl reload: re-reads and validates the configuration files, then
    // applies what changed live (docs/reload.md). Throws, changing nothing,
    // on a bad file or a key that needs a restart.
    ctl::Json reload();
    // From another thread: queues the command and waits for poll() to run it.
    ctl::Json post(const std::string& command, const std::vector<std::string>& args, const std::string& caller);
    // Fails every queued and future post() (shutdown).
    void close_commands();

    // Live stats JSON (the --stats-json document), set by main.
    std::function<std::string()> stats_provider;
    // Members of the stats JSON added by the cluster: "heartbeats", "cluster_state".
    std::string stats_members() const;

    const HeartbeatCounters& counters() const noexcept { return hb_; }
    // The event log (docs/logging.md); health transitions, membership
    // changes, commands and reloads land here.
    EventLog& events() noexcept { return events_; }
    const EventLog& events() const noexcept { return events_; }
    bool wire_link_up() const noexcept { return link_up_; }
    // Connections the workers hold in buckets this host does not own,
    // counted against the snapshot of `generation` (set by main; polled).
    struct HeldForeign {
        uint32_t count = 0;
        uint64_t generation = 0;
        bool valid = false;
    };
    std::function<HeldForeign()> held_foreign;
    // Loop counters of the lcores that receive from the wire port (workers,
    // RX distributor), set by main when they are not the control thread's
    // own. poll() turns them into the receive path's progress
    // (Membership::set_rx_horizon): a peer is not declared dead because the
    // worker holding its heartbeats was starved while the control thread ran.
    std::function<void(std::vector<uint64_t>&)> rx_loops;
    // Health checker of the port rules (SPEC §9), set by main; null = none.
    // poll() applies its transitions (drain on down, re-enable on up; the
    // operator's drain/disable wins), query() and stats show its state.
    health::Checker* health = nullptr;

private:
    using Clock = std::chrono::steady_clock;
    void drain_rx() noexcept;
    void check_link(uint64_t now_ns);
    bool read_link() const;
    void send_heartbeats(Clock::time_point now);
    void send_frame(const std::vector<uint8_t>& frame);
    void send_igmp_join();
    void send_igmp_leave();
    bool publish_if_changed();  // true when a snapshot was published
    // Compiles and publishes `in` (stamped with rules_generation_).
    void publish(core::SnapshotInput in);
    // Static membership: a snapshot of `c` with this host started or not, at
    // the next epoch, rebalanced from `previous` when given.
    void publish_static(config::Config c, bool started, const core::Snapshot* previous);
    uint8_t rules_generation_ = 0;  // bumped by a reload that changed the rules
    void run_queued_commands() noexcept;
    void apply_health(uint64_t now_ns);
    // One handler per registry command, by name (a static_assert checks that
    // every row has exactly one); run_command() dispatches to them.
    struct CommandHandler;
    static std::span<const CommandHandler> command_handlers();
    ctl::Json set_host_state(cluster::HostState next);
    ctl::Json set_static_started(bool start);
    ctl::Json set_rule_state(std::string_view command, const std::string& target, cluster::RuleState rs);
    ctl::Json query() const;
    ctl::Json params() const;
    // filter <client[:port]> <vip:port> [tcp|udp]: the decision for a new
    // connection of that flow under the snapshot in force (NLB's
    // Get-NlbClusterDriverInfo -Filter).
    ctl::Json filter(const std::vector<std::string>& args) const;
    // cluster: every host this host hears (and itself), from the heartbeats
    // and this host's maps: state, liveness, epoch, rules with their state,
    // weight or priority and buckets owned, and health.
    ctl::Json cluster_view() const;
    ctl::Json ip2mac(const std::string& vip) const;
    ctl::Json queryport(const std::string& target) const;
    // buckets <vip:port|port>: the owner of every bucket of the matching
    // multiple-host rules in the snapshot in force (what changed hands on a
    // failover, bucket by bucket).
    ctl::Json bucket_owners(const std::string& target) const;

    config::Config cfg_;  // the running configuration (replaced by reload)
    SnapshotPublisher& publisher_;
    rte_mempool* tx_pool_;
    MacAddr wire_mac_;
    MacAddr hb_dst_;
    MacAddr hb_src_;
    bool dynamic_ = false;
    uint64_t cluster_id_ = 0;
    uint64_t boot_id_ = 0;
    uint64_t poll_errors_ = 0;
    cluster::HmacKey key_;
    // Secret rotation (reload): sign with prev_key_ until send_old_until_ns_,
    // accept it until accept_old_until_ns_ (steady clock).
    cluster::HmacKey prev_key_;
    uint64_t send_old_until_ns_ = 0;
    uint64_t accept_old_until_ns_ = 0;
    const cluster::HmacKey& send_key(uint64_t now_ns) const noexcept {
        return now_ns < send_old_until_ns_ ? prev_key_ : key_;
    }
    void save_state() noexcept;
    cluster::HostState saved_host_state_ = cluster::HostState::started;
    cluster::ReplayGuard replay_;
    std::unique_ptr<cluster::Membership> membership_;
    rte_ring* rx_ring_ = nullptr;
    rte_ring* tx_ring_ = nullptr;
    HeartbeatCounters hb_;
    EventLog events_;
    // Membership as watch_membership() last saw it: its differences become
    // events (joined, left or dead, converged, mismatches, state changes).
    struct Watched {
        bool valid = false;
        cluster::ClusterState state = cluster::ClusterState::stopped;
        cluster::HostState host_state = cluster::HostState::stopped;
        uint64_t epoch = 0;
        std::vector<HostId> members;
        std::vector<std::pair<cluster::MismatchKind, HostId>> mismatches;
        std::vector<std::pair<std::string, cluster::RuleState>> rules;  // name, state
    };
    Watched watched_;
    uint64_t next_watch_ns_ = 0;
    // Cheap summary of the membership (converged, epoch, state, link,
    // rejoining) at the last poll: a change runs watch_membership() at once,
    // so that events carry the time of the change, not of the next 100 ms
    // watch (the lab times convergence from the event timestamps).
    uint64_t watch_key_ = 0;
    // drainstop --timeout: when the draining host stops regardless (0: none).
    uint64_t drain_deadline_ns_ = 0;
    // Static membership: this host's rule states by rule name (enable,
    // disable, drain act on this host only: nothing tells the others).
    std::map<std::string, cluster::RuleState> static_rule_states_;
    void watch_membership(uint64_t now_ns);
    // rx_loops() sampling: last counters, when each last moved (see poll()).
    std::vector<uint64_t> rx_loops_last_;
    std::vector<uint64_t> rx_loops_now_;
    std::vector<uint64_t> rx_progress_ns_;
    uint64_t rx_sample_ns_ = 0;
    void update_rx_horizon(uint64_t now_ns);
    Clock::time_point next_heartbeat_{};
    Clock::time_point next_igmp_{};
    std::vector<uint8_t> rx_copy_;
    // Wire link watch.
    bool wire_port_known_ = false;
    uint16_t wire_port_ = 0;
    std::string wire_iface_;   // kernel interface behind the vdev, if any
    int ifreq_fd_ = -1;        // socket for SIOCGIFFLAGS
    bool link_up_ = true;
    uint64_t link_changes_ = 0;
    uint64_t link_check_ns_ = 0;       // period
    uint64_t next_link_check_ns_ = 0;

    struct Pending {
        std::string command;
        std::vector<std::string> args;
        std::string caller;
        bool done = false;
        ctl::Json result;
        std::string error;
    };
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Pending>> queue_;
    bool closed_ = false;
    // Cluster-wide commands (`host`, docs/cluster.md): requests this host
    // sent and waits for, answered by result frames or timed out in poll().
    struct RemoteRequest {
        uint32_t id = 0;
        std::shared_ptr<Pending> pending;
        std::vector<HostId> waiting;
        ctl::Json results = ctl::Json::array();
        uint64_t deadline_ns = 0;
    };
    std::vector<RemoteRequest> remote_requests_;
    uint32_t next_request_ = 0;
    // Starts `host <id|all> <command> [arg]`; false when it completed p at once.
    bool start_host_command(const std::shared_ptr<Pending>& p);
    void on_command_frame(const cluster::Heartbeat& hb, uint64_t now_ns);
    void send_command_frame(const cluster::OperatorCommand& c, uint64_t now_ns);
    void finish_remote(RemoteRequest& r);
    void expire_remote(uint64_t now_ns);

    // VIP announcement ([announce], docs/scale-out.md); null without it.
    // update_announce() (every 100 ms) turns host state, convergence and the
    // rules' states into the wanted VIP set and the announcer's results
    // into events. A drainstop of the cluster's last started host withdraws
    // first: withdraw_first_ holds the drain until the withdrawal is applied
    // and withdraw_delay_ms has passed (or the fallback deadline).
    std::unique_ptr<Announcer> announcer_;
    AnnouncerSettings announcer_settings() const;
    void update_announce(uint64_t now_ns, const cluster::MembershipStatus* st);
    void finish_withdraw_first(uint64_t now_ns);
    ctl::Json announce_json() const;
    bool withdraw_first_ = false;
    uint64_t withdraw_generation_ = 0;
    uint64_t withdraw_requested_ns_ = 0;
    uint64_t deferred_drain_at_ns_ = 0;        // 0: withdrawal not applied yet
    uint64_t deferred_drain_fallback_ns_ = 0;
    uint64_t deferred_drain_timeout_s_ = 0;    // drainstop's timeout argument (0: none)
    uint64_t not_converged_since_ns_ = 0;      // 0: converged at the last look
    uint64_t next_static_announce_ns_ = 0;
    std::string announce_reason_;              // why the wanted set is what it is
    uint64_t announce_changes_ = 0;
};

}  // namespace nlbd::daemon
