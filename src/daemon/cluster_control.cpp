#include "nlbd/daemon/cluster_control.hpp"
#include "nlbd/log/log.hpp"

#include <net/if.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <rte_mempool.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>

#include "nlbd/cluster/announce.hpp"
#include "nlbd/cluster/membership.hpp"
#include "nlbd/cluster/state_file.hpp"
#include "nlbd/config/diff.hpp"
#include "nlbd/config/rule_keys.hpp"
#include "nlbd/ctl/commands.hpp"
#include "nlbd/core/decide.hpp"
#include "nlbd/ctl/target.hpp"
#include "nlbd/daemon/cluster_frames.hpp"
#include "nlbd/daemon/eal_args.hpp"
#include "nlbd/daemon/stats.hpp"
#include "nlbd/health/checker.hpp"

namespace nlbd::daemon {

// Events `display` returns (the log keeps EventLog::kCapacity).
constexpr size_t kDisplayEvents = 30;
namespace {

constexpr unsigned kRingSize = 1024;  // heartbeat frames in flight each way
constexpr size_t kMaxHeartbeatFrame = 9216;

uint64_t steady_ns() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}
// The flags byte of a heartbeat frame (untagged or with one VLAN tag), for
// logging what a refused frame was; 0 when too short.
uint8_t flags_of(const uint8_t* d, uint32_t len) {
    if (d == nullptr || len < 14) return 0;
    size_t off = 14;
    const uint16_t et = static_cast<uint16_t>(d[12] << 8 | d[13]);
    if (et == 0x8100 || et == 0x88a8) off = 18;
    return len > off + 5 ? d[off + 5] : 0;
}
// "host 3 (02:..:..)" from a frame whose header may not be trusted.
std::string source_of(const uint8_t* d, uint32_t len) {
    if (d == nullptr || len < 12) return "an unknown sender";
    char mac[24];
    std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", d[6], d[7], d[8], d[9], d[10], d[11]);
    size_t off = 14;
    const uint16_t et = static_cast<uint16_t>(d[12] << 8 | d[13]);
    if (et == 0x8100 || et == 0x88a8) off = 18;
    if (len > off + 18) return "host " + std::to_string(d[off + 18]) + " (source MAC " + mac + ")";
    return std::string("source MAC ") + mac;
}

// What a state command did, in one line: "host started -> draining" from a
// host state change, else its message ("" when it has none).
std::string outcome_of(const ctl::Json& r) {
    if (r.contains("previous") && r.contains("state"))
        return "host " + r.get_string("previous") + " -> " + r.get_string("state");
    return r.get_string("message");
}

// Operator text for a command frame: at most kMaxCommandText bytes, control
// characters replaced (the codec carries printable ASCII only).
std::string frame_text(std::string_view s) {
    std::string t(s.substr(0, cluster::kMaxCommandText));
    for (char& ch : t)
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
    return t;
}

uint64_t wall_ns() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

cluster::HostState initial_host_state(config::InitialState s) {
    switch (s) {
    case config::InitialState::started: return cluster::HostState::started;
    case config::InitialState::stopped: return cluster::HostState::stopped;
    case config::InitialState::suspended: return cluster::HostState::suspended;
    }
    return cluster::HostState::stopped;
}

ctl::Json hosts_json(const std::vector<HostId>& v) {
    ctl::Json a = ctl::Json::array();
    for (HostId h : v) a.push_back(unsigned(h));
    return a;
}

ctl::Json view_json(uint64_t view) {
    ctl::Json a = ctl::Json::array();
    for (unsigned h = 1; h <= kMaxHosts; ++h)
        if ((view >> (h - 1)) & 1) a.push_back(h);
    return a;
}

// "iface=NAME" among a vdev's devargs ("net_af_packet0,iface=eth1,qpairs=1").
std::string iface_of(const std::string& device) {
    size_t pos = device.find(',');
    while (pos != std::string::npos) {
        const size_t start = pos + 1;
        pos = device.find(',', start);
        const std::string kv = device.substr(start, pos == std::string::npos ? pos : pos - start);
        if (kv.rfind("iface=", 0) == 0) return kv.substr(6);
    }
    return {};
}

std::string hex64(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
    return b;
}

// The rules that a `vip:port` or `port` target of nlbctl falls under, each
// as {index, rule, mode}; WHAT names the command in errors.
std::vector<std::pair<size_t, ctl::Json>> rules_covering(const char* what, const std::string& target,
                                                         const std::vector<PortRule>& rules) {
    const auto t = ctl::parse_rule_target(target);
    if (!t || t->all_ports) throw std::runtime_error(std::string(what) + ": '" + target + "' is not vip:port or port");
    std::optional<IpAddr> vip;
    if (!t->vip.empty()) {
        vip = IpAddr::parse(t->vip);
        if (!vip) throw std::runtime_error(std::string(what) + ": '" + t->vip + "' is not an IP address");
    }
    std::vector<std::pair<size_t, ctl::Json>> out;
    for (size_t i = 0; i < rules.size(); ++i) {
        const PortRule& r = rules[i];
        if (t->port < r.port_lo || t->port > r.port_hi) continue;
        if (vip && r.vip && !(*r.vip == *vip)) continue;
        ctl::Json o = ctl::Json::object();
        o["index"] = static_cast<unsigned>(i);
        o["rule"] = rule_name(r);
        o["mode"] = std::string(name_of(r.mode));
        out.emplace_back(i, std::move(o));
    }
    return out;
}

}  // namespace

ClusterControl::ClusterControl(const config::Config& cfg, SnapshotPublisher& publisher,
                               rte_mempool* tx_pool, const MacAddr& wire_mac)
    : cfg_(cfg),
      publisher_(publisher),
      tx_pool_(tx_pool),
      wire_mac_(wire_mac),
      dynamic_(cfg.cluster.static_members.empty()),
      replay_(std::max<uint64_t>(uint64_t{cfg.cluster.heartbeat_interval_ms} * 1'000'000,
                                 1'000'000'000ull)) {
    if (cfg.announce.enabled) {
        // Not a config error (BIRD may be installed after nlbd's config is
        // written), but every apply would fail: say so at once.
        if (::access(cfg.announce.birdc.c_str(), X_OK) != 0)
            events_.add(EventKind::announce, log::Level::error,
                        "announce.birdc '" + cfg.announce.birdc + "' is not an executable: nothing can be " +
                            "announced until it is (Debian: apt install bird2)");
        announcer_ = std::make_unique<Announcer>(announcer_settings());
    }
    if (!dynamic_) return;

    char name[RTE_RING_NAMESIZE];
    std::snprintf(name, sizeof name, "nlbd_hb_rx_%u", unsigned(cfg.host.id));
    // Several producers: in rss dispatch mode every worker may receive a
    // heartbeat (the distributor is the only one in distributor mode).
    rx_ring_ = rte_ring_create(name, kRingSize, SOCKET_ID_ANY, RING_F_SC_DEQ);
    std::snprintf(name, sizeof name, "nlbd_ctl_tx_%u", unsigned(cfg.host.id));
    tx_ring_ = rte_ring_create(name, kRingSize, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (rx_ring_ == nullptr || tx_ring_ == nullptr)
        throw std::runtime_error(std::string("cannot create the heartbeat rings: ") +
                                 rte_strerror(rte_errno));

    if (!cfg.cluster.secret_file.empty()) key_ = cluster::load_secret(cfg.cluster.secret_file);
    else
        NLBD_LOG(warning,
                     "no [cluster] secret_file: heartbeats are NOT authenticated; "
                     "anyone on the segment can forge membership");

    // First IPv4 VIP for the MAC formats (SPEC §3).
    IpAddr first_v4;
    for (const IpAddr& v : cfg.cluster.vips)
        if (v.family == Family::v4) {
            first_v4 = v;
            break;
        }
    if (cfg.cluster.mode == ClusterMode::unicast) {
        hb_dst_.b = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        hb_src_ = core::unicast_source_mac(cfg.host.id, first_v4);
    } else {
        hb_dst_ = core::cluster_mac(cfg.cluster.mode, first_v4);
        hb_src_ = wire_mac;
    }
    cluster_id_ = cluster::cluster_identity(cfg.cluster.name, cfg.cluster.vips,
                                            static_cast<uint8_t>(cfg.cluster.mode));

    cluster::MembershipConfig mc;
    mc.self = cfg.host.id;
    mc.cluster_id = cluster_id_;
    std::random_device rd;
    mc.boot_id = (uint64_t{rd()} << 32) ^ rd() ^ wall_ns();
    if (mc.boot_id == 0) mc.boot_id = 1;
    mc.buckets = cfg.cluster.buckets;
    mc.interval_ns = uint64_t{cfg.cluster.heartbeat_interval_ms} * 1'000'000;
    mc.tolerance = cfg.cluster.heartbeat_tolerance;
    mc.redundancy = cfg.cluster.heartbeat_redundancy;
    mc.mode = cfg.cluster.mode;
    mc.vips = cfg.cluster.vips;
    mc.rules = cfg.rules;
    mc.initial_state = initial_host_state(cfg.host.initial_state);
    boot_id_ = mc.boot_id;
    membership_ = std::make_unique<cluster::Membership>(std::move(mc), steady_ns());
    rx_copy_.resize(kMaxHeartbeatFrame);

    // Wire link watch (see the header).
    const PortDevice wire = port_device(cfg.wire.device);
    wire_port_known_ = rte_eth_dev_get_port_by_name(wire.name.c_str(), &wire_port_) == 0;
    if (!wire.is_pci) wire_iface_ = iface_of(wire.device);
    if (!wire_iface_.empty()) ifreq_fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    link_check_ns_ = std::max<uint64_t>(uint64_t{cfg.cluster.heartbeat_interval_ms} * 1'000'000 / 4,
                                        1'000'000);
}

ClusterControl::~ClusterControl() {
    close_commands();
    if (ifreq_fd_ >= 0) ::close(ifreq_fd_);
    for (rte_ring* r : {rx_ring_, tx_ring_}) {
        if (r == nullptr) continue;
        void* m;
        while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
        rte_ring_free(r);
    }
}

void ClusterControl::start() {
    if (!dynamic_) {
        std::string warning;
        publish(static_snapshot_input(cfg_, &warning));
        return;
    }
    publish_if_changed();
    if (!publisher_.current()) publish(membership_->snapshot_input());  // workers never run without one
    if (cfg_.cluster.mode == ClusterMode::igmp) send_igmp_join();
}

void ClusterControl::publish(core::SnapshotInput in) {
    in.rules_generation = rules_generation_;
    publisher_.publish(core::compile_snapshot(in));
    ++hb_.snapshots_published;
}

void ClusterControl::publish_static(config::Config c, bool started, const core::Snapshot* previous) {
    c.host.initial_state = started ? config::InitialState::started : config::InitialState::stopped;
    std::string warning;
    core::SnapshotInput in = static_snapshot_input(c, &warning);
    // Rule states on this host only (the other hosts assume it serves):
    // disabled drops the rule's traffic, connections too; draining takes no
    // new connection (its buckets and its single-host rules are nobody's on
    // this host) while the ones it holds continue (the connection table).
    if (!static_rule_states_.empty()) {
        if (in.rules.empty()) in.rules = rules_or_default(c.rules);
        const size_t n = in.rules.size();
        in.local_disabled.assign(n, 0);
        std::vector<HostId> single(n, kNoHost);
        bool any_single_drain = false;
        for (size_t i = 0; i < n; ++i) {
            const auto it = static_rule_states_.find(rule_name(in.rules[i]));
            const cluster::RuleState rs = it == static_rule_states_.end() ? cluster::RuleState::enabled : it->second;
            if (rs == cluster::RuleState::disabled) in.local_disabled[i] = 1;
            if (rs != cluster::RuleState::draining) continue;
            for (core::Member& m : in.members)
                if (m.id == c.host.id && i < m.weights.size()) m.weights[i] = 0;
            any_single_drain |= in.rules[i].mode == FilterMode::single;
        }
        if (any_single_drain) {
            // Single-host rules: the owner every host computes (best non-zero
            // priority, else the lowest live id), except that this host, when
            // it is that owner and drains the rule, leaves it to nobody.
            for (size_t i = 0; i < n; ++i) {
                if (in.rules[i].mode != FilterMode::single) continue;
                HostId best = in.members.empty() ? kNoHost : in.members.front().id;
                unsigned best_prio = 256;
                for (const core::Member& m : in.members) {
                    const uint8_t p = i < m.priorities.size() && m.priorities[i] != 0 ? m.priorities[i]
                                                                                     : in.rules[i].handling_priority;
                    if (p != 0 && p < best_prio) {
                        best_prio = p;
                        best = m.id;
                    }
                }
                const auto it = static_rule_states_.find(rule_name(in.rules[i]));
                if (best == c.host.id && it != static_rule_states_.end() && it->second == cluster::RuleState::draining)
                    best = kNoHost;
                single[i] = best;
            }
            in.single_owners = std::move(single);
        }
    }
    const core::Snapshot* cur = publisher_.current().get();
    in.epoch = (cur != nullptr ? cur->epoch : 0) + 1;
    in.previous = previous;
    publish(std::move(in));
}

bool ClusterControl::publish_if_changed() {
    if (!membership_->take_changed()) return false;
    core::SnapshotInput in = membership_->snapshot_input();
    in.previous = publisher_.current().get();
    publish(std::move(in));
    return true;
}

void ClusterControl::poll() noexcept {
    try {
        publisher_.reclaim();
        run_queued_commands();
        if (health != nullptr) apply_health(steady_ns());
        if (announcer_ && !dynamic_) {
            if (const uint64_t t = steady_ns(); t >= next_static_announce_ns_) {
                next_static_announce_ns_ = t + 100'000'000;
                update_announce(t, nullptr);
            }
        }
        if (!dynamic_) return;
        if (withdraw_first_) finish_withdraw_first(steady_ns());
        // The link first: heartbeats already queued after a link-up then
        // count as heard after it.
        if (const uint64_t t = steady_ns(); t >= next_link_check_ns_) check_link(t);
        // Before drain_rx(): what the RX lcores read up to the horizon is in
        // the ring then.
        update_rx_horizon(steady_ns());
        drain_rx();
        const uint64_t now = steady_ns();
        if (held_foreign) {
            const HeldForeign hf = held_foreign();
            if (hf.valid) membership_->set_held_foreign(hf.count, hf.generation, now);
        }
        membership_->tick(now);
        if (now >= membership_->next_send_ns()) {
            for (const cluster::Heartbeat& hb : membership_->frames_to_send(now, wall_ns())) {
                send_frame(cluster::encode_heartbeat(hb, hb_dst_, hb_src_,
                                                     cfg_.cluster.heartbeat_ethertype, send_key(now)));
                ++hb_.sent;
            }
        }
        // Membership events are stamped when the membership moves (a new
        // snapshot, epoch, convergence, link or state), not at the next
        // 100 ms watch: their timestamps time convergence.
        const bool published = publish_if_changed();
        const uint64_t key = membership_->epoch() << 8 ^ uint64_t(membership_->converged()) << 1 ^
                             uint64_t(membership_->link_up()) << 2 ^ uint64_t(membership_->rejoining()) << 3 ^
                             uint64_t(membership_->state()) << 4;
        if (published || now >= next_watch_ns_ || key != watch_key_) {
            watch_key_ = key;
            watch_membership(now);
        }
        if (!remote_requests_.empty()) expire_remote(now);
        if (drain_deadline_ns_ != 0) {
            if (membership_->state() != cluster::HostState::draining) {
                drain_deadline_ns_ = 0;  // stopped by itself, or another command
            } else if (now >= drain_deadline_ns_) {
                drain_deadline_ns_ = 0;
                const cluster::MembershipStatus st = membership_->status(now);
                membership_->set_state(cluster::HostState::stopped, now);
                publish_if_changed();
                save_state();
                events_.add(EventKind::host_state, log::Level::warning,
                            "drainstop timeout: stopped with " + std::to_string(st.held_foreign) +
                                " connection(s) still held");
            }
        }
        if (membership_->state() != saved_host_state_) save_state();  // e.g. a drainstop that ended
        // Not while the wire link is down (the PMD would send it stale at
        // link-up); check_link() reports at link-up.
        if (cfg_.cluster.mode == ClusterMode::igmp && link_up_ && Clock::now() >= next_igmp_)
            send_igmp_join();
    } catch (const std::exception& e) {
        // Control work must not take the data plane down; report and go on.
        ++poll_errors_;
        if (poll_errors_ < 10) NLBD_LOG(error, "control: %s", e.what());
    }
}

// An RX lcore whose loop counter moved between the previous sample (at
// rx_sample_ns_) and now has polled its queues after the previous sample:
// every frame that had reached them by then has been read (and heartbeats
// queued to the ring). The horizon is the oldest such time over the lcores.
void ClusterControl::update_rx_horizon(uint64_t now_ns) {
    if (!rx_loops) return;
    rx_loops_now_.clear();
    rx_loops(rx_loops_now_);
    if (rx_loops_now_.empty()) return;
    if (rx_loops_last_.size() != rx_loops_now_.size()) {
        rx_loops_last_ = rx_loops_now_;
        rx_progress_ns_.assign(rx_loops_now_.size(), now_ns);
        rx_sample_ns_ = now_ns;
        return;
    }
    uint64_t horizon = now_ns;
    for (size_t i = 0; i < rx_loops_now_.size(); ++i) {
        if (rx_loops_now_[i] != rx_loops_last_[i]) rx_progress_ns_[i] = rx_sample_ns_;
        horizon = std::min(horizon, rx_progress_ns_[i]);
    }
    rx_loops_last_.swap(rx_loops_now_);
    rx_sample_ns_ = now_ns;
    membership_->set_rx_horizon(horizon);
}

void ClusterControl::leave() noexcept {
    // Withdraw the VIPs: the announcer's destructor applies it (bounded).
    if (announcer_) {
        try {
            announcer_->want({});
            events_.add(EventKind::announce, log::Level::notice, "nlbd stops: withdrawing every VIP");
        } catch (const std::exception& e) {
            NLBD_LOG(error, "control: leave: %s", e.what());
        }
    }
    if (!dynamic_) return;
    try {
        const uint64_t now = steady_ns();
        membership_->set_state(cluster::HostState::stopped, now);
        for (const cluster::Heartbeat& hb : membership_->frames_to_send(now, wall_ns())) {
            send_frame(cluster::encode_heartbeat(hb, hb_dst_, hb_src_,
                                                 cfg_.cluster.heartbeat_ethertype, send_key(now)));
            ++hb_.sent;
        }
        if (cfg_.cluster.mode == ClusterMode::igmp) send_igmp_leave();
        publish_if_changed();
    } catch (const std::exception& e) {
        NLBD_LOG(error, "control: leave: %s", e.what());
    }
}

bool ClusterControl::read_link() const {
    bool up = true;
    if (wire_port_known_) {
        rte_eth_link link{};
        if (rte_eth_link_get_nowait(wire_port_, &link) == 0) up = link.link_status == RTE_ETH_LINK_UP;
    }
    if (up && ifreq_fd_ >= 0) {
        ifreq ifr{};
        std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", wire_iface_.c_str());
        if (::ioctl(ifreq_fd_, SIOCGIFFLAGS, &ifr) == 0)
            up = (ifr.ifr_flags & IFF_UP) != 0 && (ifr.ifr_flags & IFF_RUNNING) != 0;
        else if (errno == ENODEV)
            up = false;  // the interface is gone
    }
    return up;
}

void ClusterControl::check_link(uint64_t now_ns) {
    next_link_check_ns_ = now_ns + link_check_ns_;
    const bool up = read_link();
    if (up == link_up_) return;
    link_up_ = up;
    ++link_changes_;
    const std::string where = wire_iface_.empty() ? "" : " on " + wire_iface_;
    if (up)
        events_.add(EventKind::link, log::Level::notice,
                    "wire link up" + where + ": rejoining (owned buckets dirty until reconverged)");
    else
        events_.add(EventKind::link, log::Level::warning,
                    "wire link down" + where + ": no peer is declared dead, maps frozen until it is up");
    membership_->set_link(up, now_ns);
    publish_if_changed();
    // A switch forgets a port's groups when its link goes down: report again
    // at once rather than up to kIgmpReportIntervalS later (not after leave()).
    if (up && cfg_.cluster.mode == ClusterMode::igmp && next_igmp_ != Clock::time_point::max())
        send_igmp_join();
}

void ClusterControl::drain_rx() noexcept {
    void* objs[64];
    for (;;) {
        const unsigned n = rte_ring_sc_dequeue_burst(rx_ring_, objs, 64, nullptr);
        if (n == 0) return;
        const uint64_t now = steady_ns();
        for (unsigned i = 0; i < n; ++i) {
            auto* m = static_cast<rte_mbuf*>(objs[i]);
            ++hb_.received;
            const uint32_t len = std::min<uint32_t>(rte_pktmbuf_pkt_len(m), kMaxHeartbeatFrame);
            const auto* data =
                static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, rx_copy_.data()));
            cluster::Heartbeat hb;
            cluster::HeartbeatError e =
                data == nullptr ? cluster::HeartbeatError::truncated
                                : cluster::decode_heartbeat({data, len}, cfg_.cluster.heartbeat_ethertype,
                                                            cluster_id_, key_, hb);
            // Secret rotation: a peer not reloaded yet still signs with the old secret.
            if ((e == cluster::HeartbeatError::bad_mac || e == cluster::HeartbeatError::missing_mac ||
                 e == cluster::HeartbeatError::unexpected_mac) &&
                now < accept_old_until_ns_)
                e = cluster::decode_heartbeat({data, len}, cfg_.cluster.heartbeat_ethertype, cluster_id_,
                                              prev_key_, hb);
            rte_pktmbuf_free(m);
            if (e == cluster::HeartbeatError::none && hb.host == cfg_.host.id &&
                hb.boot_id == boot_id_)
                e = cluster::HeartbeatError::own_frame;
            if (e == cluster::HeartbeatError::none && !replay_.accept(hb.host, hb.boot_id, hb.sequence))
                e = cluster::HeartbeatError::replayed;
            if (e != cluster::HeartbeatError::none) {
                ++hb_.errors[static_cast<unsigned>(e)];
                if (flags_of(data, len) & cluster::kFlagCommand)
                    events_.add(EventKind::command, log::Level::warning,
                                "refused an operator command frame from " + source_of(data, len) + ": " +
                                    std::string(cluster::description_of(e)));
                continue;
            }
            ++hb_.accepted;
            if (hb.command) {
                on_command_frame(hb, now);
                continue;
            }
            try {
                membership_->on_heartbeat(hb, now);
            } catch (const std::exception& ex) {
                ++poll_errors_;
                if (poll_errors_ < 10) NLBD_LOG(error, "control: heartbeat: %s", ex.what());
            }
        }
    }
}

void ClusterControl::send_frame(const std::vector<uint8_t>& frame) {
    rte_mbuf* m = rte_pktmbuf_alloc(tx_pool_);
    if (m == nullptr) {
        ++hb_.tx_failed;
        return;
    }
    if (frame.size() > rte_pktmbuf_tailroom(m)) {
        rte_pktmbuf_free(m);
        ++hb_.tx_failed;
        return;
    }
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(),
                frame.size());
    if (rte_ring_sp_enqueue(tx_ring_, m) != 0) {
        rte_pktmbuf_free(m);
        ++hb_.tx_failed;
    }
}

// IGMPv2 membership report for 239.255.y.z (SPEC §3), at start and every
// kIgmpReportIntervalS: the switch's IGMP snooping then forwards the cluster
// MAC to this port.
void ClusterControl::send_igmp_join() {
    next_igmp_ = Clock::now() + std::chrono::seconds(kIgmpReportIntervalS);
    for (const IpAddr& v : cfg_.cluster.vips)
        if (v.family == Family::v4) {
            send_frame(igmp_v2_report(v, wire_mac_, cfg_.host.dedicated_ip));
            ++hb_.igmp_sent;
            return;
        }
}

// Shutdown (leave()): IGMPv2 Leave Group for the group the joins reported, so
// a snooping switch stops forwarding the cluster MAC here without waiting for
// the membership to time out. No report follows it: poll() still runs while
// the workers send the frame out.
void ClusterControl::send_igmp_leave() {
    next_igmp_ = Clock::time_point::max();
    for (const IpAddr& v : cfg_.cluster.vips)
        if (v.family == Family::v4) {
            send_frame(igmp_v2_leave(v, wire_mac_, cfg_.host.dedicated_ip));
            return;
        }
}

// --- commands ------------------------------------------------------------

void ClusterControl::run_queued_commands() noexcept {
    for (;;) {
        std::shared_ptr<Pending> p;
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (queue_.empty()) return;
            p = queue_.front();
            queue_.pop_front();
        }
        if (p->command == "host" && !start_host_command(p)) continue;  // completes later
        ctl::Json result;
        std::string error;
        try {
            result = run_command(p->command, p->args, p->caller);
        } catch (const std::exception& e) {
            error = e.what();
            if (error.empty()) error = "command failed";
        }
        {
            std::lock_guard<std::mutex> lk(mu_);
            p->result = std::move(result);
            p->error = std::move(error);
            p->done = true;
        }
        cv_.notify_all();
    }
}

ctl::Json ClusterControl::post(const std::string& command, const std::vector<std::string>& args,
                               const std::string& caller) {
    auto p = std::make_shared<Pending>();
    p->command = command;
    p->args = args;
    p->caller = caller;
    std::unique_lock<std::mutex> lk(mu_);
    if (closed_) throw std::runtime_error("nlbd is shutting down");
    queue_.push_back(p);
    if (!cv_.wait_for(lk, std::chrono::seconds(10), [&] { return p->done || closed_; }))
        throw std::runtime_error("the control thread did not answer within 10 s");
    if (!p->done) throw std::runtime_error("nlbd is shutting down");
    if (!p->error.empty()) throw std::runtime_error(p->error);
    return std::move(p->result);
}

void ClusterControl::close_commands() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        closed_ = true;
    }
    cv_.notify_all();
}

// Health transitions (SPEC §9) -> rule states. Down drains the rule on this
// host (the peers take its new connections at the next convergence; its
// connections stay); up re-enables it. The DrainGate keeps the operator's
// drain/disable: health only drains an enabled rule and only re-enables a
// rule it drained itself.
void ClusterControl::apply_health(uint64_t now) {
    for (const health::Transition& t : health->take_transitions()) {
        const std::string rule = "rule " + std::to_string(t.rule) +
                                 (t.rule < cfg_.rules.size() ? " (" + rule_name(cfg_.rules[t.rule]) + ")" : "");
        const bool down = t.state == health::State::down;
        if (!dynamic_) {
            events_.add(EventKind::health, down ? log::Level::warning : log::Level::notice,
                        rule + " is " + std::string(health::name_of(t.state)) + " (" + t.last +
                            "); static membership cannot drain a rule, state reported only");
            continue;
        }
        const cluster::RuleState rs = membership_->rule_state(t.rule);
        if (down) {
            if (health->gate().on_down(t.rule, rs == cluster::RuleState::enabled)) {
                membership_->set_rule_state(t.rule, cluster::RuleState::draining, now);
                events_.add(EventKind::health, log::Level::warning, rule + " down, drained on this host: " + t.last);
            } else {
                events_.add(EventKind::health, log::Level::warning,
                            rule + " down (" + t.last + "); left " + std::string(cluster::name_of(rs)) +
                                " as the operator set it");
            }
        } else if (t.state == health::State::up) {
            if (health->gate().on_up(t.rule, rs == cluster::RuleState::draining)) {
                membership_->set_rule_state(t.rule, cluster::RuleState::enabled, now);
                events_.add(EventKind::health, log::Level::notice, rule + " up, enabled again on this host: " + t.last);
            } else {
                events_.add(EventKind::health, log::Level::notice, rule + " up: " + t.last);
            }
        }
    }
    if (dynamic_) {
        uint16_t down = 0;
        for (const health::RuleHealth& h : health->statuses()) down += h.state == health::State::down;
        membership_->set_health_down(down);
        publish_if_changed();  // static: no membership
    }
}

namespace {

ctl::Json health_object(const health::RuleHealth& h, bool drained_by_health) {
    ctl::Json o = ctl::Json::object();
    o["check"] = health::name_of(h.kind);
    o["target"] = h.target;
    o["state"] = health::name_of(h.state);
    o["last"] = h.last;
    o["outcome"] = h.checks ? health::name_of(h.last_outcome) : std::string_view("none");
    const uint64_t now = health::Checker::now_ns();
    o["since_ms"] = now >= h.since_ns ? (now - h.since_ns) / 1'000'000 : uint64_t{0};
    o["checks"] = h.checks;
    o["ok"] = h.ok;
    o["failed"] = h.failed;
    o["transitions"] = h.transitions;
    o["drained_by_health"] = drained_by_health;
    return o;
}

}  // namespace

ctl::Json ClusterControl::params() const {
    ctl::Json j = ctl::Json::object();
    j["cluster"] = cfg_.cluster.name;
    j["host"] = unsigned(cfg_.host.id);
    j["mode"] = name_of(cfg_.cluster.mode);
    ctl::Json vips = ctl::Json::array();
    for (const IpAddr& v : cfg_.cluster.vips) vips.push_back(v.to_string());
    j["vips"] = std::move(vips);
    j["buckets"] = cfg_.cluster.buckets;
    j["membership"] = dynamic_ ? "dynamic" : "static";
    j["static_members"] = hosts_json(cfg_.cluster.static_members);
    j["heartbeat_interval_ms"] = cfg_.cluster.heartbeat_interval_ms;
    j["heartbeat_tolerance"] = cfg_.cluster.heartbeat_tolerance;
    j["heartbeat_redundancy"] = cfg_.cluster.heartbeat_redundancy;
    j["heartbeat_ethertype"] = cfg_.cluster.heartbeat_ethertype;
    j["authenticated"] = !key_.empty();
    j["cluster_id"] = hex64(cluster_id_);
    j["rules_fingerprint"] = hex64(dynamic_ ? membership_->rules_fingerprint()
                                            : cluster::rules_fingerprint(std::span<const PortRule>(
                                                  rules_or_default(cfg_.rules))));
    j["conn_table_size"] = cfg_.dataplane.conn_table_size;
    j["idle_policy"] = cfg_.dataplane.idle_policy == config::IdlePolicy::poll ? "poll" : "adaptive";
    ctl::Json rules = ctl::Json::array();
    static const config::HealthCheck kNoCheck;
    for (size_t i = 0; i < cfg_.rules.size(); ++i) {
        const PortRule& r = cfg_.rules[i];
        const config::HealthCheck& h = i < cfg_.health.size() ? cfg_.health[i] : kNoCheck;
        ctl::Json o = ctl::Json::object();
        o["index"] = static_cast<unsigned>(i);
        // Every field of the rule; its health check's, when it has one.
        for (const RuleField& f : kRuleFields) {
            if (f.access.part == Part::health && (h.kind == HealthKind::none || !applies(f, r, h))) continue;
            const config::Written w = config::written(f, r, h);
            ctl::Json v = ctl::Json::array();
            if (const auto* n = std::get_if<int64_t>(&w)) {
                v = *n;
            } else if (const auto* t = std::get_if<std::string>(&w)) {
                v = *t;
            } else {
                for (int64_t x : std::get<std::vector<int64_t>>(w)) v.push_back(x);
            }
            o[std::string(f.key)] = std::move(v);
        }
        rules.push_back(std::move(o));
    }
    j["rules"] = std::move(rules);
    return j;
}

ctl::Json ClusterControl::query() const {
    ctl::Json j = ctl::Json::object();
    j["host"] = unsigned(cfg_.host.id);
    j["cluster"] = cfg_.cluster.name;
    if (!dynamic_) {
        const core::Snapshot* s = publisher_.current().get();
        j["membership"] = "static";
        j["state"] = s != nullptr && s->started
                         ? (s->default_host == s->self ? "converged_default" : "converged")
                         : "stopped";
        j["host_state"] = s != nullptr && s->started ? "started" : "stopped";
        j["converged"] = true;
        j["epoch"] = s != nullptr ? s->epoch : 0;
        j["members"] = hosts_json(s != nullptr ? s->members : std::vector<HostId>{});
        j["default_host"] = s != nullptr ? unsigned(s->default_host) : 0u;
        if (health != nullptr) {
            ctl::Json rules = ctl::Json::array();
            for (const health::RuleHealth& h : health->statuses()) {
                ctl::Json o = ctl::Json::object();
                o["rule"] = static_cast<unsigned>(h.rule);
                o["health"] = health_object(h, false);
                rules.push_back(std::move(o));
            }
            j["rules"] = std::move(rules);
        }
        if (announcer_) j["announce"] = announce_json();
        return j;
    }
    const cluster::MembershipStatus st = membership_->status(steady_ns());
    j["membership"] = "dynamic";
    j["state"] = cluster::name_of(st.state);
    j["host_state"] = cluster::name_of(st.host_state);
    j["converged"] = st.converged;
    j["has_maps"] = st.has_maps;
    j["link"] = st.link_up ? "up" : "down";
    j["rejoining"] = st.rejoining;
    j["link_changes"] = st.link_changes;
    ctl::Json notices = ctl::Json::array();
    for (const std::string& n : st.notices) notices.push_back(n);
    j["notices"] = std::move(notices);
    j["epoch"] = st.epoch;
    j["base_epoch"] = st.base_epoch;
    j["view"] = view_json(st.view);
    j["map_digest"] = hex64(st.map_digest);
    j["default_host"] = unsigned(st.default_host);
    j["members"] = hosts_json(st.members);
    ctl::Json peers = ctl::Json::array();
    for (const cluster::PeerStatus& p : st.peers) {
        ctl::Json o = ctl::Json::object();
        o["id"] = unsigned(p.id);
        o["state"] = cluster::name_of(p.state);
        o["alive"] = p.alive;
        o["member"] = p.member;
        o["excluded"] = p.excluded;
        o["boot_id"] = hex64(p.boot_id);
        o["last_seen_ms"] = static_cast<double>(p.last_seen_age_ns) / 1e6;
        o["epoch"] = p.epoch;
        o["view"] = view_json(p.view);
        o["map_digest"] = hex64(p.map_digest);
        o["same_map"] = p.same_map;
        o["heard"] = view_json(p.heard);
        o["vouched"] = p.vouched;
        if (p.held_foreign == cluster::kHeldUnknown) o["held_foreign"] = nullptr;
        else o["held_foreign"] = p.held_foreign;
        peers.push_back(std::move(o));
    }
    j["peers"] = std::move(peers);
    ctl::Json mm = ctl::Json::array();
    for (const cluster::Mismatch& m : st.mismatches) {
        ctl::Json o = ctl::Json::object();
        o["kind"] = cluster::name_of(m.kind);
        o["host"] = unsigned(m.host);
        o["text"] = m.text;
        mm.push_back(std::move(o));
    }
    j["mismatches"] = std::move(mm);
    ctl::Json diffs = ctl::Json::array();
    for (const cluster::RuleDifference& d : st.rule_differences) {
        ctl::Json o = ctl::Json::object();
        o["rule"] = d.rule;
        ctl::Json versions = ctl::Json::array();
        for (const cluster::RuleVersion& v : d.versions) {
            ctl::Json x = ctl::Json::object();
            x["content"] = v.content;
            x["hosts"] = hosts_json(v.hosts);
            x["active"] = v.active;
            versions.push_back(std::move(x));
        }
        o["versions"] = std::move(versions);
        diffs.push_back(std::move(o));
    }
    j["rule_differences"] = std::move(diffs);
    ctl::Json rules = ctl::Json::array();
    for (const cluster::RuleOwnership& r : st.rules) {
        ctl::Json o = ctl::Json::object();
        o["rule"] = unsigned(r.rule);
        o["name"] = r.name;
        o["active"] = r.active;
        o["mode"] = name_of(r.mode);
        o["state"] = cluster::name_of(r.state);
        o["buckets_owned"] = r.owned;
        o["buckets_dirty"] = r.dirty;
        if (r.mode == FilterMode::single) o["single_owner"] = unsigned(r.single_owner);
        if (health != nullptr)
            if (const auto h = health->status(r.rule))
                o["health"] = health_object(*h, health->gate().drained_by_health(r.rule));
        rules.push_back(std::move(o));
    }
    j["rules"] = std::move(rules);
    j["buckets"] = cfg_.cluster.buckets;
    j["map_classes"] = st.map_classes;
    j["dirty_buckets"] = st.dirty_buckets;
    if (st.held_foreign == cluster::kHeldUnknown) j["held_foreign"] = nullptr;
    else j["held_foreign"] = st.held_foreign;
    j["epoch_changes"] = st.epoch_changes;
    j["map_adoptions"] = st.map_adoptions;
    j["chunks_sent"] = st.chunks_sent;
    if (announcer_) j["announce"] = announce_json();
    return j;
}

// ---- nlbctl commands ---------------------------------------------------------
// The registry (ctl/commands.hpp) says which commands exist, their arity,
// role and the states that accept them; run_command() enforces that, then
// calls the command's handler below. Handlers therefore get the arguments
// their row allows, and those of rows without with_static run only with
// dynamic membership (membership_ is set).

struct ClusterControl::CommandHandler {
    std::string_view name;
    ctl::Json (*run)(ClusterControl& self, const std::vector<std::string>& args);
};

std::span<const ClusterControl::CommandHandler> ClusterControl::command_handlers() {
    using Args = std::vector<std::string>;
    using cluster::HostState;
    using cluster::RuleState;
    static constexpr CommandHandler kHandlers[] = {
        {"query", [](ClusterControl& c, const Args&) { return c.query(); }},
        {"display",
         [](ClusterControl& c, const Args&) {
             ctl::Json j = ctl::Json::object();
             j["query"] = c.query();
             j["params"] = c.params();
             if (c.stats_provider) j["stats"] = ctl::Json::parse(c.stats_provider());
             j["events"] = c.events().to_json(kDisplayEvents);
             return j;
         }},
        {"params", [](ClusterControl& c, const Args&) { return c.params(); }},
        {"filter", [](ClusterControl& c, const Args& a) { return c.filter(a); }},
        {"cluster", [](ClusterControl& c, const Args&) { return c.cluster_view(); }},
        {"ip2mac", [](ClusterControl& c, const Args& a) { return c.ip2mac(a[0]); }},
        {"queryport", [](ClusterControl& c, const Args& a) { return c.queryport(a[0]); }},
        {"buckets", [](ClusterControl& c, const Args& a) { return c.bucket_owners(a[0]); }},
        {"host",
         [](ClusterControl&, const Args&) -> ctl::Json {
             // Queued commands only: it waits for the other hosts' answers.
             throw std::runtime_error("host: send it through the control socket (nlbctl host ...)");
         }},
        {"stats",
         [](ClusterControl& c, const Args&) {
             if (!c.stats_provider) throw std::runtime_error("stats: not available");
             return ctl::Json::parse(c.stats_provider());
         }},
        {"start",
         [](ClusterControl& c, const Args&) {
             return c.dynamic_ ? c.set_host_state(HostState::started) : c.set_static_started(true);
         }},
        {"stop",
         [](ClusterControl& c, const Args&) {
             return c.dynamic_ ? c.set_host_state(HostState::stopped) : c.set_static_started(false);
         }},
        {"drainstop",
         [](ClusterControl& c, const Args& a) {
             const HostState before = c.membership_->state();
             if (before != HostState::started)
                 throw std::runtime_error("drainstop: host is " + std::string(cluster::name_of(before)) +
                                          ", not started");
             if (c.withdraw_first_) {
                 ctl::Json j = ctl::Json::object();
                 j["message"] = "already withdrawing the VIPs before the drain";
                 j["state"] = "started";
                 j["withdraw_first"] = true;
                 return j;
             }
             // The cluster's last started host withdraws its VIPs first (SPEC
             // §11): the routers move new flows to other clusters while this
             // one still serves; the drain starts withdraw_delay_ms after
             // BIRD took the withdrawal.
             if (c.announcer_ && !c.announcer_->state().wanted.empty()) {
                 const uint64_t now = steady_ns();
                 const cluster::MembershipStatus st = c.membership_->status(now);
                 if (cluster::last_started_host(st.peers, c.cfg_.host.id)) {
                     c.withdraw_first_ = true;
                     c.withdraw_requested_ns_ = now;
                     c.withdraw_generation_ = c.announcer_->want({});
                     c.deferred_drain_at_ns_ = 0;
                     c.deferred_drain_timeout_s_ = a.empty() ? 0 : std::stoull(a[0]);
                     const uint64_t delay = c.cfg_.announce.withdraw_delay_ms;
                     c.deferred_drain_fallback_ns_ =
                         now + (delay + 2ull * c.cfg_.announce.command_timeout_ms) * 1'000'000ull;
                     c.announce_reason_ = "drainstop of the cluster's last started host";
                     c.events_.add(EventKind::announce, log::Level::notice,
                                   "drainstop of the cluster's last started host: withdrawing every VIP first, "
                                   "draining " + std::to_string(delay) + " ms after the withdrawal");
                     // No "previous": the state changes only after the delay.
                     ctl::Json j = ctl::Json::object();
                     j["message"] = "last started host of the cluster: withdrawing every VIP first; draining " +
                                    std::to_string(delay) + " ms after the routing daemon took the withdrawal";
                     j["state"] = "started";
                     j["withdraw_first"] = true;
                     j["drain_after_ms"] = delay;
                     if (!a.empty()) j["timeout_s"] = std::stoull(a[0]);
                     return j;
                 }
             }
             // NLB's Stop-NlbClusterNode -Drain -Timeout: stop then, connections or not.
             c.drain_deadline_ns_ = a.empty() ? 0 : steady_ns() + std::stoull(a[0]) * 1'000'000'000ull;
             ctl::Json j = c.set_host_state(HostState::draining);
             if (!a.empty()) j["timeout_s"] = std::stoull(a[0]);
             return j;
         }},
        {"suspend", [](ClusterControl& c, const Args&) { return c.set_host_state(HostState::suspended); }},
        {"resume",
         [](ClusterControl& c, const Args&) {
             if (c.membership_->state() != HostState::suspended)
                 throw std::runtime_error("resume: host is not suspended");
             return c.set_host_state(HostState::stopped);  // NLB: resume, then start
         }},
        {"enable",
         [](ClusterControl& c, const Args& a) { return c.set_rule_state("enable", a[0], RuleState::enabled); }},
        {"disable",
         [](ClusterControl& c, const Args& a) { return c.set_rule_state("disable", a[0], RuleState::disabled); }},
        {"drain",
         [](ClusterControl& c, const Args& a) { return c.set_rule_state("drain", a[0], RuleState::draining); }},
        {"reload", [](ClusterControl& c, const Args&) { return c.reload(); }},
    };
    static_assert(ctl::covers_every_command(kHandlers),
                  "every registry command needs exactly one nlbd handler");
    return kHandlers;
}

ctl::Json ClusterControl::run_command(const std::string& command, const std::vector<std::string>& args,
                                      const std::string& caller) {
    const ctl::Command* cmd = ctl::find_command(command);
    if (cmd == nullptr) throw std::runtime_error("unknown command '" + command + "'");
    if (std::string e = ctl::argument_error(*cmd, args); !e.empty()) throw std::runtime_error(e);
    // Static membership: the member list is fixed; only this host's
    // started/stopped flag can change (the others assume it is started).
    if (!dynamic_ && !cmd->with_static)
        throw std::runtime_error(command +
                                 ": static membership ([cluster] static_members) supports the read commands, "
                                 "start, stop, enable, disable, drain and reload");
    // NLB: a suspended host ignores every command but resume and query.
    if (dynamic_ && !cmd->while_suspended && membership_->state() == cluster::HostState::suspended)
        throw std::runtime_error(command + ": host is suspended; only 'resume' and 'query' are accepted");
    std::string line = command;
    for (const std::string& a : args) line += " " + a;
    for (const CommandHandler& h : command_handlers()) {
        if (h.name != cmd->name) continue;
        if (cmd->role != ctl::Role::admin) return h.run(*this, args);
        // What an operator changes goes to the event log, with who.
        try {
            ctl::Json r = h.run(*this, args);
            if (command == "reload") {
                events_.add(EventKind::reload, log::Level::notice,
                            r.get_bool("changed") ? "applied (" + std::to_string(r.find("changes")->size()) + " change(s))"
                                                  : "no change",
                            caller);
            } else {
                const std::string detail = outcome_of(r);
                events_.add(EventKind::command, log::Level::notice, detail.empty() ? line : line + ": " + detail,
                            caller);
            }
            return r;
        } catch (const std::exception& e) {
            events_.add(command == "reload" ? EventKind::reload : EventKind::command, log::Level::warning,
                        line + " refused: " + e.what(), caller);
            throw;
        }
    }
    // Unreachable: command_handlers() has a row per command (static_assert).
    throw std::logic_error("no handler for command '" + command + "'");
}

// Reload (SPEC §7, docs/reload.md): read and validate the whole new
// configuration, refuse it whole if it needs a restart, else apply what
// changed. Throws (nothing applied) on any error.
// The differences between two looks at the membership become events.
// Sampled every 100 ms (status() is too heavy for every poll).
void ClusterControl::watch_membership(uint64_t now_ns) {
    next_watch_ns_ = now_ns + 100'000'000;
    const cluster::MembershipStatus st = membership_->status(now_ns);
    Watched w;
    w.valid = true;
    w.state = st.state;
    w.host_state = st.host_state;
    w.epoch = st.epoch;
    w.members = st.members;
    for (const auto& m : st.mismatches) w.mismatches.emplace_back(m.kind, m.host);
    for (const auto& r : st.rules) w.rules.emplace_back(r.name, r.state);
    const Watched& o = watched_;
    const auto has = [](const auto& v, const auto& x) { return std::find(v.begin(), v.end(), x) != v.end(); };
    const auto host = [](HostId h) { return "host " + std::to_string(unsigned(h)); };
    if (o.valid) {
        for (HostId h : w.members)
            if (!has(o.members, h)) events_.add(EventKind::host_joined, log::Level::notice, host(h) + " joined");
        for (HostId h : o.members) {
            if (has(w.members, h)) continue;
            std::string why = "no heartbeat heard";
            for (const auto& p : st.peers) {
                if (p.id != h) continue;
                if (p.excluded) why = "excluded (see the mismatches)";
                else if (p.alive) why = std::string("announced ") + std::string(cluster::name_of(p.state));
                else why = "dead: no heartbeat for " + std::to_string(p.last_seen_age_ns / 1'000'000) + " ms";
            }
            events_.add(EventKind::host_left, h == cfg_.host.id ? log::Level::notice : log::Level::warning,
                        host(h) + " left the view: " + why);
        }
    }
    const bool conv = w.state == cluster::ClusterState::converged || w.state == cluster::ClusterState::converged_default;
    const bool was = o.valid && (o.state == cluster::ClusterState::converged ||
                                 o.state == cluster::ClusterState::converged_default);
    std::string members;
    for (HostId h : w.members) members += (members.empty() ? "" : ",") + std::to_string(unsigned(h));
    if (conv && (!was || o.state != w.state || o.epoch != w.epoch))
        events_.add(EventKind::converged, log::Level::notice,
                    std::string(w.state == cluster::ClusterState::converged_default ? "converged as the default host"
                                                                                    : "converged") +
                        " at epoch " + std::to_string(w.epoch) + " with hosts [" + members + "]");
    else if (!conv && was && w.state == cluster::ClusterState::converging)
        events_.add(EventKind::converging, log::Level::info,
                    "converging (was epoch " + std::to_string(o.epoch) + "), members [" + members + "]");
    for (const auto& m : st.mismatches)
        if (!has(o.mismatches, std::make_pair(m.kind, m.host)))
            events_.add(EventKind::mismatch, log::Level::warning,
                        std::string(cluster::name_of(m.kind)) + ": " + m.text);
    for (const auto& m : o.mismatches)
        if (!has(w.mismatches, m))
            events_.add(EventKind::mismatch, log::Level::notice,
                        std::string(cluster::name_of(m.first)) + " with " + host(m.second) + " cleared");
    if (o.valid && o.host_state != w.host_state)
        events_.add(EventKind::host_state, log::Level::notice,
                    "this host: " + std::string(cluster::name_of(o.host_state)) + " -> " +
                        std::string(cluster::name_of(w.host_state)));
    for (const auto& [name, rs] : w.rules)
        for (const auto& [oname, ors] : o.rules)
            if (oname == name && ors != rs)
                events_.add(EventKind::rule_state, log::Level::notice,
                            "rule " + name + ": " + std::string(cluster::name_of(ors)) + " -> " +
                                std::string(cluster::name_of(rs)));
    watched_ = std::move(w);
    if (announcer_) update_announce(now_ns, &st);
}

// ---- cluster-wide commands (docs/cluster.md, "Cluster-wide control") -----

bool ClusterControl::start_host_command(const std::shared_ptr<Pending>& p) {
    auto complete = [&](ctl::Json result, std::string error) {
        {
            std::lock_guard<std::mutex> lk(mu_);
            p->result = std::move(result);
            p->error = std::move(error);
            p->done = true;
        }
        cv_.notify_all();
        return false;
    };
    const ctl::Command* cmd = ctl::find_command("host");
    if (std::string e = ctl::argument_error(*cmd, p->args); !e.empty()) return complete({}, e);
    if (!dynamic_) return complete({}, "host: static membership has no heartbeats to carry commands");
    if (key_.empty())
        return complete({}, "host: cluster-wide commands need [cluster] secret_file; they are sent authenticated "
                            "with the heartbeat secret, never in the clear");
    if (membership_->state() == cluster::HostState::suspended)
        return complete({}, "host: host is suspended; only 'resume' and 'query' are accepted");
    const uint64_t now = steady_ns();
    const bool all = p->args[0] == "all";
    const HostId target = all ? cluster::kAllHosts : static_cast<HostId>(std::stoi(p->args[0]));
    const std::string verb = p->args[1];
    const std::vector<std::string> rest(p->args.begin() + 2, p->args.end());
    RemoteRequest r;
    r.id = ++next_request_;
    r.pending = p;
    r.deadline_ns = now + std::max<uint64_t>(2'000'000'000ull, 4ull * cfg_.cluster.heartbeat_interval_ms * 1'000'000);
    // This host, when it is a target: run here, like any local command.
    if (all || target == cfg_.host.id) {
        ctl::Json o = ctl::Json::object();
        o["host"] = unsigned(cfg_.host.id);
        try {
            const ctl::Json res = run_command(verb, rest, p->caller);
            o["ok"] = true;
            const std::string msg = outcome_of(res);
            o["message"] = msg.empty() ? std::string("ok") : msg;
        } catch (const std::exception& e) {
            o["ok"] = false;
            o["message"] = std::string(e.what());
        }
        r.results.push_back(std::move(o));
    }
    if (all) {
        // Every host alive on the segment, members or not (a stopped host is
        // no member, and `host all start` is for it too).
        for (const cluster::PeerStatus& ps : membership_->status(now).peers)
            if (ps.alive && !ps.excluded) r.waiting.push_back(ps.id);
    } else if (target != cfg_.host.id) {
        r.waiting.push_back(target);
    }
    if (!r.waiting.empty()) {
        cluster::OperatorCommand c;
        c.request = r.id;
        c.target = target;
        c.verb = verb;
        c.args = rest;
        c.text = frame_text(p->caller);
        try {
            send_command_frame(c, now);
        } catch (const std::exception& e) {
            return complete({}, std::string("host: cannot send the command: ") + e.what());
        }
        events_.add(EventKind::command, log::Level::notice,
                    "sent '" + verb + (rest.empty() ? "" : " " + rest[0]) + "' to " +
                        (all ? std::string("all hosts") : "host " + p->args[0]) + " (request " +
                        std::to_string(r.id) + ")",
                    p->caller);
        remote_requests_.push_back(std::move(r));
        return false;
    }
    finish_remote(r);
    return false;
}

void ClusterControl::send_command_frame(const cluster::OperatorCommand& c, uint64_t now_ns) {
    cluster::Heartbeat hb = membership_->command_frame(wall_ns());
    hb.command = c;
    send_frame(cluster::encode_heartbeat(hb, hb_dst_, hb_src_, cfg_.cluster.heartbeat_ethertype, send_key(now_ns)));
    ++hb_.sent;
}

// A command frame that passed the HMAC and the replay guard.
void ClusterControl::on_command_frame(const cluster::Heartbeat& hb, uint64_t now_ns) {
    const cluster::OperatorCommand& c = *hb.command;
    if (c.result) {
        if (c.target != cfg_.host.id) return;  // an answer to another host
        for (RemoteRequest& r : remote_requests_) {
            if (r.id != c.request) continue;
            const auto it = std::find(r.waiting.begin(), r.waiting.end(), hb.host);
            if (it == r.waiting.end()) return;  // duplicate or unasked
            r.waiting.erase(it);
            ctl::Json o = ctl::Json::object();
            o["host"] = unsigned(hb.host);
            o["ok"] = c.ok;
            o["message"] = c.text;
            r.results.push_back(std::move(o));
            if (r.waiting.empty()) finish_remote(r);
            return;
        }
        return;
    }
    if (c.target != cfg_.host.id && c.target != cluster::kAllHosts) return;
    const std::string who = "host " + std::to_string(unsigned(hb.host)) + (c.text.empty() ? "" : ": " + c.text);
    cluster::OperatorCommand answer;
    answer.request = c.request;
    answer.target = hb.host;
    answer.result = true;
    if (!ctl::remote_command_allowed(c.verb)) {
        answer.text = "'" + c.verb + "' is not accepted from another host";
        events_.add(EventKind::command, log::Level::warning, "refused '" + c.verb + "' from another host", who);
    } else {
        try {
            const ctl::Json res = run_command(c.verb, c.args, who);
            answer.ok = true;
            answer.text = outcome_of(res);
            if (answer.text.empty()) answer.text = "ok";
        } catch (const std::exception& e) {
            answer.text = e.what();
        }
    }
    answer.text = frame_text(answer.text);
    try {
        send_command_frame(answer, now_ns);
    } catch (const std::exception& e) {
        NLBD_LOG(error, "control: cannot answer a command from host %u: %s", unsigned(hb.host), e.what());
    }
}

void ClusterControl::finish_remote(RemoteRequest& r) {
    ctl::Json j = ctl::Json::object();
    j["command"] = r.pending->args.size() > 1 ? r.pending->args[1] : std::string();
    j["target"] = r.pending->args.empty() ? std::string() : r.pending->args[0];
    std::string failures;
    for (size_t i = 0; i < r.results.size(); ++i) {
        const ctl::Json& o = r.results.at(i);
        if (!o.get_bool("ok"))
            failures += "; host " + std::to_string(o.get_int("host")) + " refused: " + o.get_string("message");
    }
    ctl::Json missing = ctl::Json::array();
    for (HostId h : r.waiting) {
        missing.push_back(unsigned(h));
        failures += "; host " + std::to_string(unsigned(h)) + ": no answer";
    }
    j["results"] = r.results;
    j["missing"] = std::move(missing);
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (failures.empty()) {
            r.pending->result = std::move(j);
        } else {
            std::string ok;
            for (size_t i = 0; i < r.results.size(); ++i)
                if (r.results.at(i).get_bool("ok"))
                    ok += "; host " + std::to_string(r.results.at(i).get_int("host")) + ": " +
                          r.results.at(i).get_string("message");
            r.pending->error = "host " + j.get_string("target") + " " + j.get_string("command") + ":" +
                               failures.substr(1) + ok;
        }
        r.pending->done = true;
    }
    cv_.notify_all();
    r.waiting.clear();
    r.pending.reset();
}

void ClusterControl::expire_remote(uint64_t now_ns) {
    for (RemoteRequest& r : remote_requests_)
        if (r.pending && now_ns >= r.deadline_ns) finish_remote(r);
    std::erase_if(remote_requests_, [](const RemoteRequest& r) { return !r.pending; });
}

ctl::Json ClusterControl::ip2mac(const std::string& vip) const {
    const auto a = IpAddr::parse(vip);
    if (!a) throw std::runtime_error("ip2mac: '" + vip + "' is not an IP address");
    // NLB derives the cluster MAC from the VIP that gives it: an IPv4 address.
    // For an IPv6 VIP the cluster's MAC is that of its first IPv4 VIP.
    IpAddr v4 = *a;
    if (a->family != Family::v4) {
        bool found = false;
        for (const IpAddr& v : cfg_.cluster.vips)
            if (v.family == Family::v4) {
                v4 = v;
                found = true;
                break;
            }
        if (!found) throw std::runtime_error("ip2mac: the cluster has no IPv4 VIP to derive a MAC from");
    }
    ctl::Json j = ctl::Json::object();
    j["vip"] = vip;
    j["from"] = v4.to_string();
    for (ClusterMode m : {ClusterMode::unicast, ClusterMode::multicast, ClusterMode::igmp})
        j[name_of(m)] = core::cluster_mac(m, v4).to_string();
    j["mode"] = name_of(cfg_.cluster.mode);
    j["in_force"] = core::cluster_mac(cfg_.cluster.mode, v4).to_string();
    bool is_vip = false;
    for (const IpAddr& v : cfg_.cluster.vips) is_vip |= v == *a;
    j["is_vip"] = is_vip;
    return j;
}

ctl::Json ClusterControl::queryport(const std::string& target) const {
    const std::vector<PortRule> rules = rules_or_default(cfg_.rules);
    auto covering = rules_covering("queryport", target, rules);
    ctl::Json q = query();
    ctl::Json stats = stats_provider ? ctl::Json::parse(stats_provider()) : ctl::Json::object();
    ctl::Json matches = ctl::Json::array();
    for (auto& [i, o] : covering) {
        const PortRule& r = rules[i];
        o["affinity"] = std::string(name_of(r.affinity));
        if (const ctl::Json* rs = q.find("rules"); rs != nullptr && rs->is_array())
            for (size_t k = 0; k < rs->size(); ++k)
                if (rs->at(k).get_string("name") == rule_name(r))
                    for (const char* key : {"state", "active", "buckets_owned", "buckets_dirty", "single_owner", "health"})
                        if (const ctl::Json* v = rs->at(k).find(key)) o[key] = *v;
        if (const ctl::Json* ss = stats.find("rules"); ss != nullptr && ss->is_array())
            for (size_t k = 0; k < ss->size(); ++k)
                if (ss->at(k).get_int("index", -1) == static_cast<int64_t>(i))
                    for (const char* key : {"matched", "accepted", "not_owner", "dropped"})
                        if (const ctl::Json* v = ss->at(k).find(key)) o[key] = *v;
        matches.push_back(std::move(o));
    }
    ctl::Json j = ctl::Json::object();
    j["port"] = target;
    j["host"] = unsigned(cfg_.host.id);
    j["rules"] = std::move(matches);
    if (const ctl::Json* c = stats.find("connections")) j["connections"] = *c;  // this host's, all rules
    if (j.find("rules")->size() == 0)
        j["note"] = "no port rule covers it: the default host handles it (not balanced by a rule)";
    return j;
}

ctl::Json ClusterControl::bucket_owners(const std::string& target) const {
    const std::vector<PortRule> rules = rules_or_default(cfg_.rules);
    auto covering = rules_covering("buckets", target, rules);
    const std::shared_ptr<const core::Snapshot> cur = publisher_.current();
    if (!cur) throw std::runtime_error("buckets: no snapshot published yet");
    const core::Snapshot& s = *cur;
    ctl::Json matches = ctl::Json::array();
    for (auto& [i, o] : covering) {
        // The first compiled rule of this config rule (a rule on every VIP
        // compiles to one per family; they share the config rule's map).
        for (size_t k = 0; k < s.rules.rules.size(); ++k) {
            if (s.rules.rules[k].config_index != i) continue;
            if (s.rules.rules[k].mode == FilterMode::multiple &&
                s.owners.size() >= (k + 1) * static_cast<size_t>(s.buckets)) {
                ctl::Json owners = ctl::Json::array();
                std::map<unsigned, uint64_t> owned;
                for (uint32_t b = 0; b < s.buckets; ++b) {
                    const HostId h = s.owner(static_cast<uint16_t>(k), b);
                    owners.push_back(h == kNoHost ? 0u : unsigned(h));
                    ++owned[h == kNoHost ? 0u : unsigned(h)];
                }
                ctl::Json counts = ctl::Json::object();
                for (const auto& [h, n] : owned) counts[std::to_string(h)] = n;
                o["owned"] = std::move(counts);
                o["owners"] = std::move(owners);  // bucket b -> host id (0: no owner)
            } else if (s.rules.rules[k].mode == FilterMode::single) {
                o["single_owner"] = unsigned(s.rules.rules[k].single_owner);
            }
            break;
        }
        matches.push_back(std::move(o));
    }
    ctl::Json j = ctl::Json::object();
    j["port"] = target;
    j["host"] = unsigned(cfg_.host.id);
    j["epoch"] = s.epoch;
    j["buckets"] = s.buckets;
    j["rules"] = std::move(matches);
    if (j.find("rules")->size() == 0)
        j["note"] = "no port rule covers it: the default host handles it (not balanced by a rule)";
    return j;
}

ctl::Json ClusterControl::cluster_view() const {
    if (!dynamic_) {
        // Static membership hears nobody: the members are configured.
        ctl::Json j = query();
        j["note"] = "static membership: no heartbeats, the other hosts are not heard";
        return j;
    }
    const uint64_t now = steady_ns();
    const cluster::MembershipStatus st = membership_->status(now);
    ctl::Json j = ctl::Json::object();
    j["cluster"] = cfg_.cluster.name;
    j["asked"] = unsigned(cfg_.host.id);
    j["state"] = cluster::name_of(st.state);
    j["epoch"] = st.epoch;
    ctl::Json hosts = ctl::Json::array();
    auto rules_json = [&](HostId h) {
        ctl::Json a = ctl::Json::array();
        for (const cluster::Membership::HostRule& r : membership_->host_rules(h)) {
            ctl::Json o = ctl::Json::object();
            o["rule"] = r.name;
            o["mode"] = std::string(name_of(r.mode));
            o["state"] = cluster::name_of(r.state);
            if (r.mode == FilterMode::single) o["priority"] = unsigned(r.priority);
            else o["weight"] = unsigned(r.weight);
            o["in_force"] = r.in_force;
            o["owned"] = r.owned;
            a.push_back(std::move(o));
        }
        return a;
    };
    {
        ctl::Json self = ctl::Json::object();
        self["host"] = unsigned(cfg_.host.id);
        self["self"] = true;
        self["state"] = cluster::name_of(st.host_state);
        self["alive"] = true;
        self["member"] = std::find(st.members.begin(), st.members.end(), cfg_.host.id) != st.members.end();
        self["epoch"] = st.epoch;
        self["same_map"] = true;
        uint16_t down = 0;
        if (health != nullptr)
            for (const health::RuleHealth& h : health->statuses()) down += h.state == health::State::down;
        self["health_down"] = unsigned(down);
        self["hears"] = view_json(st.heard);
        self["rules"] = rules_json(cfg_.host.id);
        hosts.push_back(std::move(self));
    }
    for (const cluster::PeerStatus& p : st.peers) {
        ctl::Json o = ctl::Json::object();
        o["host"] = unsigned(p.id);
        o["self"] = false;
        o["state"] = cluster::name_of(p.state);
        o["alive"] = p.alive;
        o["member"] = p.member;
        o["excluded"] = p.excluded;
        o["last_seen_ms"] = p.last_seen_age_ns / 1'000'000;
        o["epoch"] = p.epoch;
        o["same_map"] = p.same_map;
        o["health_down"] = unsigned(p.health_down);
        o["hears"] = view_json(p.heard);
        o["vouched"] = p.vouched;
        o["rules"] = rules_json(p.id);
        hosts.push_back(std::move(o));
    }
    j["hosts"] = std::move(hosts);
    return j;
}

ctl::Json ClusterControl::filter(const std::vector<std::string>& args) const {
    const auto client = ctl::parse_endpoint(args.at(0));
    const auto vip = ctl::parse_endpoint(args.at(1));
    const auto src = client ? IpAddr::parse(client->address) : std::nullopt;
    const auto dst = vip ? IpAddr::parse(vip->address) : std::nullopt;
    if (!src) throw std::runtime_error("filter: '" + args[0] + "' is not an IP address");
    if (!dst || !vip->port) throw std::runtime_error("filter: '" + args[1] + "' is not vip:port");
    if (src->family != dst->family) throw std::runtime_error("filter: client and VIP are of different families");
    const bool udp = args.size() > 2 && args[2] == "udp";
    const std::shared_ptr<const core::Snapshot> cur = publisher_.current();
    if (!cur) throw std::runtime_error("filter: no snapshot published yet");
    // A new connection: a TCP SYN (or a UDP datagram) to the cluster MAC.
    core::ParsedFrame f;
    f.kind = src->family == Family::v4 ? core::FrameKind::ipv4 : core::FrameKind::ipv6;
    f.eth_dst = cur->cluster_mac;
    f.key.src = *src;
    f.key.dst = *dst;
    f.key.sport = client->port.value_or(0);
    f.key.dport = *vip->port;
    f.key.proto = udp ? 17 : 6;
    f.key.flags = core::kHasPorts | (udp ? 0 : core::kTcpSyn);
    // A stopped host decides nothing; what its map says is still the answer
    // for the others, so decide as if it were started.
    core::Snapshot started_copy;
    const core::Snapshot* s = cur.get();
    if (!s->started) {
        started_copy = *s;
        started_copy.started = true;
        s = &started_copy;
    }
    const core::Decision d = core::decide(f, *s);
    ctl::Json j = ctl::Json::object();
    j["flow"] = args[0] + " -> " + args[1] + (udp ? "/udp" : "/tcp");
    j["client_port"] = unsigned(f.key.sport);
    j["verdict"] = std::string(name_of(d.verdict));
    j["host"] = unsigned(cfg_.host.id);
    j["this_host_started"] = cur->started;
    j["epoch"] = cur->epoch;
    std::string rule, why;
    const std::vector<PortRule> rules = rules_or_default(cfg_.rules);
    if (d.rule != core::kNoRule && d.rule < s->rules.rules.size()) {
        const core::CompiledRule& cr = s->rules.rules[d.rule];
        rule = cr.config_index < rules.size() ? rule_name(rules[cr.config_index])
                                              : std::to_string(cr.port_lo) + "-" + std::to_string(cr.port_hi);
        j["rule"] = rule;
        j["mode"] = std::string(name_of(cr.mode));
        j["affinity"] = std::string(name_of(cr.affinity));
        if (cr.mode == FilterMode::multiple) j["bucket"] = d.bucket;
        if (cr.affinity == Affinity::none && !client->port)
            j["note"] = "affinity none hashes the client port too: port 0 assumed";
    } else {
        j["rule"] = nullptr;
    }
    const std::string owner = d.owner == kNoHost ? std::string("no host") : "host " + std::to_string(d.owner);
    HostId accepted_by = kNoHost;
    switch (d.verdict) {
    case Verdict::accepted:
    case Verdict::not_owner:
        accepted_by = d.owner;
        why = d.owner == kNoHost ? "bucket " + std::to_string(d.bucket) + " of rule " + rule +
                                       " has no owner now (converging or withheld): nobody accepts it yet"
              : s->rules.rules[d.rule].mode == FilterMode::single
                  ? "single-host rule " + rule + ": handled by " + owner + " (best handling priority)"
                  : "rule " + rule + ", bucket " + std::to_string(d.bucket) + " is owned by " + owner;
        break;
    case Verdict::default_host_accepted:
    case Verdict::default_host_other:
        accepted_by = d.owner;
        why = "no port rule covers it: the default host (" + owner + ") takes it";
        break;
    case Verdict::disabled_rule:
        why = "rule " + rule + " is disabled: every host drops it";
        break;
    case Verdict::passed_non_vip:
        why = args[1] + " is not a VIP of this cluster: passed to the local stack, not balanced";
        break;
    default:
        why = std::string(description_of(d.verdict));
        break;
    }
    j["accepted_by"] = accepted_by == kNoHost ? ctl::Json(nullptr) : ctl::Json(unsigned(accepted_by));
    j["this_host_accepts"] = cur->started && accepted_by == cur->self;
    j["reason"] = why;
    return j;
}

std::string ClusterControl::status_line() const {
    if (!dynamic_) {
        const core::Snapshot* cur = publisher_.current().get();
        return std::string("static membership, ") + (cur != nullptr && cur->started ? "started" : "stopped");
    }
    const cluster::MembershipStatus st = membership_->status(steady_ns());
    std::string s(cluster::name_of(st.state));
    s += ", members [";
    for (size_t i = 0; i < st.members.size(); ++i) {
        if (i != 0) s += ',';
        s += std::to_string(unsigned(st.members[i]));
    }
    s += "], epoch " + std::to_string(st.epoch);
    if (!st.mismatches.empty()) s += ", " + std::to_string(st.mismatches.size()) + " mismatch(es)";
    for (const std::string& n : st.notices) s += ", " + n;
    return s;
}

ctl::Json ClusterControl::reload() {
    // RELOADING=1 now, READY=1 however this ends.
    struct Progress {
        const std::function<void(bool)>& fn;
        explicit Progress(const std::function<void(bool)>& f) : fn(f) {
            if (fn) fn(true);
        }
        ~Progress() {
            if (fn) fn(false);
        }
    } progress(reload_progress);
    if (reload_source.cluster_file.empty()) throw std::runtime_error("reload: no configuration file to read");
    config::Config next;
    try {
        next = config::load_config(reload_source.cluster_file, reload_source.nic);
    } catch (const config::ConfigError& e) {
        throw std::runtime_error(std::string("reload refused, the running configuration is unchanged: ") + e.what());
    }
    config::ConfigDiff d = config::diff(cfg_, next);
    cluster::HmacKey new_key;
    if (!next.cluster.secret_file.empty()) {
        try {
            new_key = cluster::load_secret(next.cluster.secret_file);
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("reload refused, the running configuration is unchanged: ") +
                                     next.file + ": cluster.secret_file: " + e.what());
        }
        d.secret_changed = new_key.bytes != key_.bytes;
    }
    if (!d.restart.empty()) {
        std::string keys;
        for (const auto& k : d.restart) keys += (keys.empty() ? "" : "; ") + k.key + " (" + k.before + " -> " + k.after + ")";
        throw std::runtime_error("reload refused, nothing changed: these keys need a restart: " + keys);
    }
    // Rule indices may name other rules now: connection entries learn it
    // from the snapshot (Snapshot::rules_generation).
    if (!d.rules_added.empty() || !d.rules_removed.empty() || !d.rules_changed.empty()) ++rules_generation_;
    if (!dynamic_) {
        const core::Snapshot* cur = publisher_.current().get();
        publish_static(next, cur != nullptr && cur->started, cur);
    } else if (!d.empty()) {
        const uint64_t now = steady_ns();
        // Rules drained by a health check go back to the checker that is
        // rebuilt below (it drains them again if they still fail).
        if (health != nullptr)
            for (size_t i = 0; i < cfg_.rules.size(); ++i)
                if (health->gate().drained_by_health(i)) membership_->set_rule_state(i, cluster::RuleState::enabled, now);
        cluster::MembershipConfig mc;
        mc.interval_ns = uint64_t{next.cluster.heartbeat_interval_ms} * 1'000'000;
        mc.tolerance = next.cluster.heartbeat_tolerance;
        mc.redundancy = next.cluster.heartbeat_redundancy;
        mc.vips = next.cluster.vips;
        mc.rules = next.rules;
        membership_->reconfigure(std::move(mc), now);
        if (d.secret_changed) {
            prev_key_ = key_;
            key_ = new_key;
            const uint64_t grace = uint64_t{next.cluster.secret_grace_s} * 1'000'000'000ull;
            send_old_until_ns_ = now + grace;
            accept_old_until_ns_ = now + 2 * grace;
        }
        link_check_ns_ = std::max<uint64_t>(uint64_t{next.cluster.heartbeat_interval_ms} * 1'000'000 / 4, 1'000'000);
    }
    const config::Config before = cfg_;
    next.host.initial_state = cfg_.host.initial_state;
    cfg_ = std::move(next);
    if (dynamic_) publish_if_changed();  // static: published above; no membership
    // [announce]: next hop and timings live (the VIP set follows at the next
    // update_announce()); where the file and socket are needs a restart.
    if (announcer_) announcer_->settings(announcer_settings());
    ctl::Json j = ctl::Json::object();
    j["changed"] = !d.empty();
    ctl::Json lines = ctl::Json::array();
    for (const std::string& l : d.lines()) lines.push_back(l);
    ctl::Json added = ctl::Json::array(), removed = ctl::Json::array(), changed = ctl::Json::array();
    for (const auto& r : d.rules_added) added.push_back(r);
    for (const auto& r : d.rules_removed) removed.push_back(r);
    for (const auto& r : d.rules_changed) changed.push_back(r.rule);
    j["changes"] = std::move(lines);
    j["rules_added"] = std::move(added);
    j["rules_removed"] = std::move(removed);
    j["rules_changed"] = std::move(changed);
    j["rules_fingerprint"] = hex64(dynamic_ ? membership_->rules_fingerprint() : 0);
    if (on_reloaded && !d.empty()) {
        try {
            const std::string note = on_reloaded(before, cfg_);
            if (!note.empty()) j["warning"] = note;
        } catch (const std::exception& e) {
            j["warning"] = std::string("applied, but: ") + e.what();
        }
    }
    save_state();
    NLBD_LOG(notice, "reload: %s", d.empty() ? "no change" : "applied");
    for (const std::string& l : d.lines()) NLBD_LOG(notice, "reload:   %s", l.c_str());
    return j;
}

void ClusterControl::restore_state(bool ignore) {
    const std::string& path = cfg_.host.state_file;
    if (path.empty() || ignore) {
        if (!path.empty()) NLBD_LOG(notice, "state file %s ignored (--ignore-state)", path.c_str());
        return;
    }
    const cluster::LoadedState ls = cluster::load_state(path, cfg_.cluster.name, cfg_.host.id);
    if (!ls.warning.empty()) NLBD_LOG(warning, "%s; starting %s as configured",
                                          ls.warning.c_str(), config::initial_state_name(cfg_.host.initial_state));
    if (!ls.state) return;
    const cluster::PersistedState& st = *ls.state;
    const uint64_t now = steady_ns();
    if (!dynamic_) {
        cfg_.host.initial_state = st.host == cluster::HostState::started ? config::InitialState::started
                                                                        : config::InitialState::stopped;
        const std::vector<PortRule> rules = rules_or_default(cfg_.rules);
        for (const auto& [name, rs] : st.rules) {
            bool found = false;
            for (const PortRule& r : rules) found |= rule_name(r) == name;
            if (found) static_rule_states_[name] = rs;
            else
                NLBD_LOG(warning, "state file %s: rule %s is no longer configured; its state is dropped",
                         path.c_str(), name.c_str());
        }
    } else {
        membership_->set_state(st.host, now);
        const std::vector<PortRule> rules = rules_or_default(cfg_.rules);
        for (const auto& [name, rs] : st.rules) {
            bool found = false;
            for (size_t i = 0; i < rules.size(); ++i)
                if (rule_name(rules[i]) == name) {
                    membership_->set_rule_state(i, rs, now);
                    found = true;
                }
            if (!found)
                NLBD_LOG(warning, "state file %s: rule %s is no longer configured; its state is dropped",
                             path.c_str(), name.c_str());
        }
        saved_host_state_ = membership_->state();
    }
    NLBD_LOG(notice, "state file %s: restored host %s, %zu rule(s) not enabled", path.c_str(),
                 cluster::name_of(st.host).data(), st.rules.size());
}

// Writes the operator's state (control thread). Rules drained by a health
// check are not the operator's and are not saved.
void ClusterControl::save_state() noexcept {
    if (dynamic_) saved_host_state_ = membership_->state();
    if (cfg_.host.state_file.empty()) return;
    try {
        cluster::PersistedState st;
        st.cluster = cfg_.cluster.name;
        st.host_id = cfg_.host.id;
        if (dynamic_) {
            st.host = membership_->state() == cluster::HostState::draining ? cluster::HostState::stopped
                                                                            : membership_->state();
            const std::vector<PortRule> rules = rules_or_default(cfg_.rules);
            for (size_t i = 0; i < rules.size(); ++i) {
                const cluster::RuleState rs = membership_->rule_state(i);
                if (rs == cluster::RuleState::enabled) continue;
                if (health != nullptr && health->gate().drained_by_health(i)) continue;
                st.rules[rule_name(rules[i])] = rs;
            }
        } else {
            const core::Snapshot* cur = publisher_.current().get();
            st.host = cur != nullptr && cur->started ? cluster::HostState::started : cluster::HostState::stopped;
            for (const auto& [name, rs] : static_rule_states_) st.rules[name] = rs;
        }
        cluster::save_state(cfg_.host.state_file, st);
    } catch (const std::exception& e) {
        NLBD_LOG(warning, "cannot save the host state: %s", e.what());
    }
}

// Dynamic membership: this host's state, announced by the next heartbeats.
ctl::Json ClusterControl::set_host_state(cluster::HostState next) {
    if (withdraw_first_) {
        withdraw_first_ = false;  // another command: the deferred drain is off
        events_.add(EventKind::announce, log::Level::notice,
                    std::string("deferred drain cancelled: host set ") + std::string(cluster::name_of(next)));
    }
    ctl::Json j = ctl::Json::object();
    j["previous"] = cluster::name_of(membership_->state());
    membership_->set_state(next, steady_ns());
    publish_if_changed();
    save_state();
    j["state"] = cluster::name_of(membership_->state());
    return j;
}

// Static membership: start / stop publish a snapshot of the next epoch.
ctl::Json ClusterControl::set_static_started(bool start) {
    const core::Snapshot* cur = publisher_.current().get();
    const bool started = cur != nullptr && cur->started;
    publish_static(cfg_, start, nullptr);
    save_state();
    ctl::Json j = ctl::Json::object();
    j["previous"] = started ? "started" : "stopped";
    j["state"] = publisher_.current()->started ? "started" : "stopped";
    return j;
}

// enable | disable | drain <vip:port | port | all> (syntax checked by the registry).
ctl::Json ClusterControl::set_rule_state(std::string_view command, const std::string& target,
                                         cluster::RuleState rs) {
    const std::optional<ctl::RuleTarget> t = ctl::parse_rule_target(target);
    if (!t)
        throw std::runtime_error(std::string(command) + ": '" + target + "' is not vip:port, port or all");
    std::optional<IpAddr> vip;
    if (!t->vip.empty()) {
        vip = IpAddr::parse(t->vip);
        if (!vip) throw std::runtime_error(std::string(command) + ": '" + t->vip + "' is not an IP address");
    }
    const uint64_t now = steady_ns();
    ctl::Json j = ctl::Json::object();
    const std::vector<PortRule> rules = rules_or_default(cfg_.rules);
    ctl::Json changed = ctl::Json::array();
    if (!dynamic_) {
        // Static membership: this host only (docs/cluster.md).
        for (size_t i : select_rules(rules, vip, t->all_ports, t->port)) {
            if (rs == cluster::RuleState::enabled) static_rule_states_.erase(rule_name(rules[i]));
            else static_rule_states_[rule_name(rules[i])] = rs;
            changed.push_back(static_cast<unsigned>(i));
        }
        if (changed.size() == 0)
            throw std::runtime_error(std::string(command) + ": no port rule matches '" + target + "'");
        const core::Snapshot* cur = publisher_.current().get();
        publish_static(cfg_, cur != nullptr && cur->started, cur);
        save_state();
        j["rules"] = std::move(changed);
        j["rule_state"] = cluster::name_of(rs);
        j["message"] = std::string(command) + " " + target + ": " + std::to_string(j.find("rules")->size()) +
                       " rule(s) " + std::string(cluster::name_of(rs)) + " on this host (static membership)";
        return j;
    }
    j["previous"] = cluster::name_of(membership_->state());
    for (size_t i : select_rules(rules, vip, t->all_ports, t->port)) {
        if (health != nullptr) health->gate().on_operator(i);  // the operator owns the rule now
        membership_->set_rule_state(i, rs, now);
        changed.push_back(static_cast<unsigned>(i));
    }
    if (changed.size() == 0)
        throw std::runtime_error(std::string(command) + ": no port rule matches '" + target + "'");
    publish_if_changed();
    save_state();
    j["rules"] = std::move(changed);
    j["rule_state"] = cluster::name_of(rs);
    return j;
}

std::string ClusterControl::stats_members() const {
    std::string o = "\"heartbeats\":{\"sent\":" + std::to_string(hb_.sent) +
                    ",\"tx_failed\":" + std::to_string(hb_.tx_failed) +
                    ",\"received\":" + std::to_string(hb_.received) +
                    ",\"accepted\":" + std::to_string(hb_.accepted);
    for (unsigned e = 1; e < static_cast<unsigned>(cluster::HeartbeatError::count_); ++e)
        o += ",\"" + std::string(cluster::name_of(static_cast<cluster::HeartbeatError>(e))) +
             "\":" + std::to_string(hb_.errors[e]);
    o += ",\"igmp_sent\":" + std::to_string(hb_.igmp_sent) +
         ",\"snapshots_published\":" + std::to_string(hb_.snapshots_published) + "}";
    o += ",\n\"cluster_state\":" + query().dump();
    if (health != nullptr) o += ",\n\"health\":" + health->stats_json();
    ctl::Json ev = ctl::Json::object();
    ev["total"] = events_.total();
    ev["by_kind"] = events_.counts_json();
    o += ",\n\"events\":" + ev.dump();
    return o;
}

// ---- VIP announcement (docs/scale-out.md) -----------------------------------

AnnouncerSettings ClusterControl::announcer_settings() const {
    AnnouncerSettings a;
    a.include_file = cfg_.announce.include_file;
    a.control_socket = cfg_.announce.control_socket;
    a.birdc = cfg_.announce.birdc;
    a.next_hop = cfg_.announce.next_hop;
    a.command_timeout_ms = cfg_.announce.command_timeout_ms;
    a.retry_interval_ms = cfg_.announce.retry_interval_ms;
    a.origin = "cluster " + cfg_.cluster.name + ", host " + std::to_string(unsigned(cfg_.host.id));
    return a;
}

namespace {

std::string vip_list(const std::vector<IpAddr>& v) {
    std::string s;
    for (const IpAddr& a : v) s += (s.empty() ? "" : ", ") + a.to_string();
    return s.empty() ? "none" : s;
}

}  // namespace

void ClusterControl::update_announce(uint64_t now_ns, const cluster::MembershipStatus* st) {
    for (AnnounceResult& r : announcer_->take_results()) {
        if (r.ok)
            events_.add(EventKind::announce, log::Level::notice,
                        (r.vips.empty() ? std::string("withdrawn: every VIP") : "announced: " + vip_list(r.vips)) +
                            " (birdc configure, " + std::to_string(r.took_ms) + " ms)");
        else
            events_.add(EventKind::announce, log::Level::error,
                        "routing daemon did not take [" + vip_list(r.vips) + "]: " + r.detail + "; retrying every " +
                            std::to_string(cfg_.announce.retry_interval_ms) + " ms");
    }
    cluster::AnnounceInput in;
    in.withdrawing = withdraw_first_;
    in.converging_grace_ms = cfg_.announce.converging_grace_ms;
    in.announcing = !announcer_->state().wanted.empty();
    std::string state;
    if (st != nullptr) {
        in.started = st->host_state == cluster::HostState::started;
        in.converged = st->state == cluster::ClusterState::converged ||
                       st->state == cluster::ClusterState::converged_default;
        in.link_up = st->link_up;
        state = cluster::name_of(st->host_state);
    } else {
        const core::Snapshot* s = publisher_.current().get();
        in.started = s != nullptr && s->started;
        in.converged = true;  // static membership
        state = in.started ? "started" : "stopped";
    }
    if (in.converged) not_converged_since_ns_ = 0;
    else if (not_converged_since_ns_ == 0) not_converged_since_ns_ = now_ns;
    in.converging_ms = not_converged_since_ns_ == 0 ? 0 : (now_ns - not_converged_since_ns_) / 1'000'000;

    const std::vector<PortRule> rules = rules_or_default(cfg_.rules);
    std::vector<cluster::AnnounceRule> gate(rules.size());
    for (size_t i = 0; i < rules.size(); ++i) {
        gate[i].all_vips = !rules[i].vip.has_value();
        if (rules[i].vip) gate[i].vip = *rules[i].vip;
        bool enabled = true;
        if (dynamic_) {
            enabled = membership_->rule_state(i) == cluster::RuleState::enabled;
        } else if (const auto it = static_rule_states_.find(rule_name(rules[i])); it != static_rule_states_.end()) {
            enabled = it->second == cluster::RuleState::enabled;
        }
        bool healthy = true;
        if (health != nullptr)
            if (const auto h = health->status(i)) healthy = h->state != health::State::down;
        gate[i].serving = enabled && healthy;
    }
    std::vector<IpAddr> want = cluster::announced_vips(cfg_.announce.vips, gate, in);
    const std::vector<IpAddr> before = announcer_->state().wanted;
    if (want == before) return;
    std::string why;
    if (withdraw_first_) why = "drainstop of the cluster's last started host";
    else if (!in.started) why = "host is " + state;
    else if (!in.link_up) why = "wire link down";
    else if (!cluster::announce_allowed(in)) why = "not converged for " + std::to_string(in.converging_ms) + " ms";
    else if (want.size() < cfg_.announce.vips.size()) why = "started and converged; a rule of the other VIP(s) is not serving here";
    else why = "started, converged, every rule serving";
    announce_reason_ = why;
    ++announce_changes_;
    events_.add(EventKind::announce, log::Level::info, "wanted: [" + vip_list(want) + "] (" + why + ")");
    announcer_->want(std::move(want));
}

void ClusterControl::finish_withdraw_first(uint64_t now_ns) {
    if (!announcer_) {
        withdraw_first_ = false;
        return;
    }
    const AnnouncerState a = announcer_->state();
    if (deferred_drain_at_ns_ == 0 && a.applied_generation >= withdraw_generation_)
        deferred_drain_at_ns_ = now_ns + uint64_t{cfg_.announce.withdraw_delay_ms} * 1'000'000;
    const bool fallback = now_ns >= deferred_drain_fallback_ns_;
    if (!(deferred_drain_at_ns_ != 0 && now_ns >= deferred_drain_at_ns_) && !fallback) return;
    withdraw_first_ = false;
    events_.add(EventKind::announce, fallback && deferred_drain_at_ns_ == 0 ? log::Level::error : log::Level::notice,
                std::string(fallback && deferred_drain_at_ns_ == 0
                                ? "the routing daemon did not confirm the withdrawal: draining anyway"
                                : "VIPs withdrawn; withdraw_delay_ms passed: draining now") +
                    " (" + std::to_string((now_ns - withdraw_requested_ns_) / 1'000'000) + " ms after the drainstop)");
    if (membership_->state() != cluster::HostState::started) return;
    drain_deadline_ns_ = deferred_drain_timeout_s_ == 0 ? 0 : now_ns + deferred_drain_timeout_s_ * 1'000'000'000ull;
    set_host_state(cluster::HostState::draining);
}

ctl::Json ClusterControl::announce_json() const {
    const AnnouncerState a = announcer_->state();
    ctl::Json j = ctl::Json::object();
    j["daemon"] = "bird";
    j["next_hop"] = cfg_.announce.next_hop.to_string();
    ctl::Json vips = ctl::Json::array(), wanted = ctl::Json::array(), applied = ctl::Json::array();
    for (const IpAddr& v : cfg_.announce.vips) vips.push_back(v.to_string());
    for (const IpAddr& v : a.wanted) wanted.push_back(v.to_string());
    for (const IpAddr& v : a.applied) applied.push_back(v.to_string());
    j["vips"] = std::move(vips);
    j["wanted"] = std::move(wanted);
    j["announced"] = std::move(applied);
    // announced: BIRD has every wanted VIP; withdrawn: BIRD has none and none
    // is wanted; pending: an apply is under way or being retried.
    const bool synced = a.applied_generation == a.wanted_generation;
    j["state"] = !synced ? (a.last_error.empty() ? "pending" : "failing")
                         : (a.applied.empty() ? "withdrawn" : "announced");
    j["withdraw_first"] = withdraw_first_;
    j["reason"] = announce_reason_;
    j["applies"] = a.applies;
    j["failures"] = a.failures;
    j["changes"] = announce_changes_;
    j["last_apply_ms"] = a.last_took_ms;
    j["last_error"] = a.last_error;
    j["include_file"] = cfg_.announce.include_file;
    return j;
}

}  // namespace nlbd::daemon
