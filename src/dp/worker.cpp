// Packet path of nlbd. Built with -fno-exceptions/-fno-rtti (dp_override):
// no throw, no allocation, no lock, no system call, no logging per packet.

#include "nlbd/dp/worker.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstring>
#include <span>

#include "nlbd/core/pipeline.hpp"
#include "nlbd/core/reply.hpp"
#include "nlbd/dp/idle.hpp"

namespace nlbd::dp {
namespace {

static_assert(kMaxBurst <= core::kMaxBurst, "a worker burst must fit core::process_burst");

constexpr unsigned kTxCap = kMaxBurst;
// Adaptive idle (IdleBackoff): sleeps of at most this many microseconds.
constexpr uint32_t kMaxSleepUs = 500;
// Worker 0 sending for the others, or a worker fed by the distributor:
// it sleeps less.
constexpr uint32_t kDrainMaxSleepUs = 50;
// Fragment expiry runs every this many loops (cheap, but not per burst).
constexpr uint64_t kExpireEvery = 64;

// Frames queued for one port; flushed when full and at the end of each loop.
// Sent on the worker's own TX queue, or handed to worker 0 through the
// worker's TX ring (TxPath). Frames the driver (or the ring) does not take are
// freed and counted as tx_dropped. tx_packets/tx_bytes count what a queue
// took: handed frames are counted by worker 0 when it sends them.
struct TxBuffer {
    uint16_t port = 0;
    uint16_t queue = 0;
    uint16_t n = 0;
    rte_ring* ring = nullptr;
    PortCounters* pc = nullptr;
    uint64_t* handed = nullptr;
    // Hand-over ring full: worker 0 is late (descheduled on shared CPUs) or
    // overloaded. Wait for it up to hold_cycles (hand_over_hold_cycles,
    // wait_for_consumer), then drop what it did not take.
    uint64_t hold_cycles = 0;
    config::IdlePolicy idle = config::IdlePolicy::poll;
    rte_mbuf* pkts[kTxCap];

    void push(rte_mbuf* m) noexcept {
        if (n == kTxCap) flush();
        pkts[n++] = m;
    }
    void flush() noexcept {
        if (n == 0) return;
        if (ring != nullptr) {
            unsigned taken = 0;
            uint64_t since = 0;
            while (taken < n) {
                const unsigned k = rte_ring_sp_enqueue_burst(
                    ring, reinterpret_cast<void* const*>(pkts + taken), n - taken, nullptr);
                taken += k;
                if (taken == n) break;
                const uint64_t now = rte_get_timer_cycles();
                if (k != 0 || since == 0) since = now;
                else if (now - since > hold_cycles) break;
                wait_for_consumer(idle);
            }
            if (taken < n) {
                rte_pktmbuf_free_bulk(pkts + taken, n - taken);
                bump(pc->tx_dropped, n - taken);
            }
            bump(*handed, taken);
            n = 0;
            return;
        }
        uint64_t bytes = 0;
        for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(pkts[i]);
        const uint16_t sent = rte_eth_tx_burst(port, queue, pkts, n);
        if (sent < n) {
            uint64_t unsent_bytes = 0;
            for (uint16_t i = sent; i < n; ++i) unsent_bytes += rte_pktmbuf_pkt_len(pkts[i]);
            bytes -= unsent_bytes;
            rte_pktmbuf_free_bulk(pkts + sent, n - sent);
            bump(pc->tx_dropped, n - sent);
        }
        bump(pc->tx_packets, sent);
        bump(pc->tx_bytes, bytes);
        n = 0;
    }
};

struct DropBuffer {
    uint16_t n = 0;
    rte_mbuf* pkts[kTxCap];
    void push(rte_mbuf* m) noexcept {
        if (n == kTxCap) flush();
        pkts[n++] = m;
    }
    void flush() noexcept {
        if (n != 0) rte_pktmbuf_free_bulk(pkts, n);
        n = 0;
    }
};

bool is_rule_traffic_without_rule(Verdict v) noexcept {
    return v == Verdict::default_host_accepted || v == Verdict::default_host_other ||
           v == Verdict::stopped;
}

}  // namespace

struct Worker::Burst {
    WorkerCounters* c = nullptr;
    const core::Snapshot* snap = nullptr;
    MacAddr reply_src;  // Ethernet source of ARP/ND answers
    // Multicast/igmp modes: frames reach us addressed to the multicast cluster
    // MAC; a host stack drops unicast IP in a link-layer multicast frame, so
    // what is delivered locally is readdressed to the local port's MAC.
    bool readdress_local = false;
    MacAddr local_mac;
    TxBuffer to_local;
    TxBuffer to_wire;
    DropBuffer drop;

    rte_ring* heartbeat_rx = nullptr;  // to the control thread (multi-producer)
    core::BurstScratch scratch;        // core::process_burst's

    // Verdicts of the current burst, published once per burst (flush_tally):
    // one counter store per verdict seen instead of one per frame (+2.5%
    // end to end, docs/performance.md).
    uint32_t tally[kVerdictCount] = {};
    void flush_tally() noexcept {
        for (unsigned v = 0; v < kVerdictCount; ++v)
            if (tally[v] != 0) {
                bump(c->verdicts[v], tally[v]);
                tally[v] = 0;
            }
    }

    // Counts a frame's final verdict: exactly once per received wire frame.
    void account(const core::Decision& d) noexcept {
        ++tally[static_cast<unsigned>(d.verdict)];
        unsigned slot;
        if (d.rule != core::kNoRule) slot = std::min<unsigned>(d.rule, kNoRuleSlot - 1);
        else if (is_rule_traffic_without_rule(d.verdict)) slot = kNoRuleSlot;
        else return;
        RuleCounters& rc = c->rules[slot];
        bump(rc.matched);
        if (action_of(d.verdict) == Action::to_local) bump(rc.accepted);
        else if (d.verdict == Verdict::not_owner || d.verdict == Verdict::default_host_other ||
                 d.verdict == Verdict::conn_elsewhere)
            bump(rc.not_owner);
        else bump(rc.dropped);
    }

    void reply(rte_mbuf* m, const core::ParsedFrame& f, Verdict v) noexcept {
        if (rte_pktmbuf_linearize(m) != 0) {
            bump(c->reply_failed);
            drop.push(m);
            return;
        }
        const size_t len = rte_pktmbuf_data_len(m);
        std::span<uint8_t> buf(rte_pktmbuf_mtod(m, uint8_t*), len + rte_pktmbuf_tailroom(m));
        const size_t out = v == Verdict::arp_replied
                               ? core::build_arp_reply(buf, len, f, snap->cluster_mac, reply_src)
                               : core::build_nd_advert(buf, len, f, snap->cluster_mac, reply_src);
        if (out == 0) {
            bump(c->reply_failed);
            drop.push(m);
            return;
        }
        if (out > len) rte_pktmbuf_append(m, static_cast<uint16_t>(out - len));
        else if (out < len) rte_pktmbuf_trim(m, static_cast<uint16_t>(len - out));
        to_wire.push(m);
    }

    // core::process_burst's sink (core/pipeline.hpp).
    void heartbeat(void* handle) noexcept {
        auto* m = static_cast<rte_mbuf*>(handle);
        ++tally[static_cast<unsigned>(Verdict::heartbeat)];
        if (heartbeat_rx == nullptr || rte_ring_enqueue(heartbeat_rx, m) != 0) {
            if (heartbeat_rx != nullptr) bump(c->heartbeat_dropped);
            drop.push(m);
        }
    }

    void emit(void* handle, const core::ParsedFrame* f, const core::Decision& d) noexcept {
        auto* m = static_cast<rte_mbuf*>(handle);
        account(d);
        switch (action_of(d.verdict)) {
        case Action::to_local:
            if (readdress_local && rte_pktmbuf_data_len(m) >= 6) {
                uint8_t* dst = rte_pktmbuf_mtod(m, uint8_t*);
                if (std::memcmp(dst, snap->cluster_mac.b.data(), 6) == 0)
                    std::memcpy(dst, local_mac.b.data(), 6);
            }
            to_local.push(m);
            break;
        case Action::reply_wire:
            if (f != nullptr) reply(m, *f, d.verdict);
            else drop.push(m);
            break;
        case Action::hold:
        case Action::drop: drop.push(m); break;
        }
    }

    // A held fragment leaves the FragTable with its datagram's decision (or
    // frag_timeout / frag_evicted).
    void released(void* handle, const core::Decision& d) noexcept {
        if (d.verdict != Verdict::frag_timeout && d.verdict != Verdict::frag_evicted) bump(c->frag_released);
        emit(handle, nullptr, d);
    }
};

// core::process_burst's source: the frames of one RX burst. frame(i) is
// called once per frame, in order: a multi-segment frame is read into the
// one linear buffer, which the previous frame no longer needs.
struct MbufSource {
    rte_mbuf** pkts;
    uint8_t* linear;  // kLinearCopyBytes
    uint64_t bytes = 0;
    uint32_t linearized = 0;

    void prefetch(uint16_t i) const noexcept { rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*)); }
    void* handle(uint16_t i) const noexcept { return pkts[i]; }
    std::span<const uint8_t> frame(uint16_t i) noexcept {
        rte_mbuf* m = pkts[i];
        const uint32_t pkt_len = rte_pktmbuf_pkt_len(m);
        bytes += pkt_len;
        if (m->nb_segs == 1) return {rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)};
        const uint32_t len = std::min<uint32_t>(pkt_len, kLinearCopyBytes);
        ++linearized;
        return {static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, linear)), len};
    }
};

Worker::Worker(const WorkerConfig& cfg, const std::atomic<const core::Snapshot*>& snapshot)
    : cfg_(cfg),
      snapshot_(snapshot),
      counters_(std::make_unique<WorkerCounters>()),
      frags_(std::make_unique<core::FragTable>(cfg.frag)),
      conns_(std::make_unique<core::ConnTable>(cfg.conn)),
      linear_(std::make_unique<uint8_t[]>(kLinearCopyBytes)),
      burst_(std::make_unique<Burst>()) {
    cfg_.burst = std::clamp<uint16_t>(cfg_.burst, 1, kMaxBurst);
}

Worker::~Worker() = default;

const core::FragStats& Worker::frag_stats() const noexcept { return frags_->stats(); }
const core::ConnStats& Worker::conn_stats() const noexcept { return conns_->stats(); }
uint32_t Worker::conn_capacity() const noexcept { return conns_->capacity(); }

void Worker::verdicts_at_exit(uint64_t (&out)[kVerdictCount]) const noexcept {
    for (unsigned i = 0; i < kVerdictCount; ++i) out[i] = read_counter(counters_->verdicts[i]);
    out[static_cast<unsigned>(Verdict::frag_held)] += frags_->stats().held;
}

int Worker::lcore_main(void* arg) noexcept {
    auto* l = static_cast<Launch*>(arg);
    l->worker->run(*l->stop, ControlTick{});
    return 0;
}

// Wire -> decide: core::process_burst over the burst (the passes are
// described in core/pipeline.hpp), this worker's Burst as its sink.
// `on_port`: the frames came straight from a wire RX queue (counted on the
// port here), not from the distributor (which counted them).
void Worker::process_wire(rte_mbuf** pkts, uint16_t n_wire, bool on_port, uint64_t now_ns) noexcept {
    WorkerCounters& c = *counters_;
    Burst& b = *burst_;
    MbufSource src{pkts, linear_.get()};
    const core::BurstContext ctx{b.snap, conns_.get(), frags_.get(), cfg_.heartbeat_ethertype, now_ns};
    const core::BurstCounts n = core::process_burst(src, n_wire, ctx, b.scratch, b);
    for (unsigned e = 0; e < kParseErrorCount; ++e)
        if (n.parse_errors[e] != 0) bump(c.parse_errors[e], n.parse_errors[e]);
    if (src.linearized != 0) bump(c.linearized, src.linearized);
    b.flush_tally();
    bump(c.rx_total, n_wire);
    if (on_port) {
        bump(c.wire.rx_packets, n_wire);
        bump(c.wire.rx_bytes, src.bytes);
    }
}

void Worker::drain_after_stop() noexcept {
    Burst& b = *burst_;
    rte_mbuf* pkts[kMaxBurst];
    for (uint16_t w = 0; w < cfg_.n_drain; ++w) {
        for (int port = 0; port < 2; ++port) {
            rte_ring* r = port == 0 ? cfg_.drain_wire[w] : cfg_.drain_local[w];
            TxBuffer& tx = port == 0 ? b.to_wire : b.to_local;
            if (r == nullptr) continue;
            for (;;) {
                const uint32_t n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(pkts),
                                                             kMaxBurst, nullptr);
                if (n == 0) break;
                for (uint32_t i = 0; i < n; ++i) tx.push(pkts[i]);
                bump(counters_->tx_drained, n);
            }
        }
    }
    b.to_wire.flush();
    b.to_local.flush();
}

void Worker::run(const std::atomic<bool>& stop, const ControlTick& tick) noexcept {
    WorkerCounters& c = *counters_;
    Burst& b = *burst_;  // allocated by the constructor (~60 KiB of scratch)
    b.c = &c;
    b.local_mac = cfg_.local_mac;
    b.to_local.port = cfg_.local_port;
    b.to_local.queue = cfg_.local_tx.queue;
    b.to_local.ring = cfg_.local_tx.ring;
    b.to_local.pc = &c.local;
    b.to_local.handed = &c.tx_handed;
    b.to_wire.port = cfg_.wire_port;
    b.to_wire.queue = cfg_.wire_tx.queue;
    b.to_wire.ring = cfg_.wire_tx.ring;
    b.to_wire.pc = &c.wire;
    b.to_wire.handed = &c.tx_handed;
    // The idle policy in force; re-read every loop (a reload may change it).
    config::IdlePolicy idle = idle_policy(cfg_.idle);
    const auto set_idle = [&b](config::IdlePolicy p) {
        for (TxBuffer* t : {&b.to_wire, &b.to_local}) {
            t->idle = p;
            t->hold_cycles = hand_over_hold_cycles(p);
        }
    };
    set_idle(idle);
    b.heartbeat_rx = cfg_.heartbeat_rx;
    const core::FragReleaser releaser = core::frag_releaser(b);

    if (cfg_.qsbr != nullptr) {
        rte_rcu_qsbr_thread_register(cfg_.qsbr, cfg_.qsbr_thread);
        rte_rcu_qsbr_thread_online(cfg_.qsbr, cfg_.qsbr_thread);
    }
    const double ns_per_cycle = 1e9 / static_cast<double>(rte_get_timer_hz());
    const uint16_t burst = cfg_.burst;
    const uint16_t n_queues = cfg_.wire_ring != nullptr ? 0 : cfg_.n_wire_rx_queues;
    rte_mbuf* pkts[kMaxBurst];
    const uint64_t sweep_target_ns = uint64_t{cfg_.conn_sweep_target_ms} * 1'000'000;
    uint64_t sweep_start_ns =
        static_cast<uint64_t>(static_cast<double>(rte_get_timer_cycles()) * ns_per_cycle);

    // Worker 0 sending for others, or a worker fed by the distributor (whose
    // hold time is 2 ms): short sleeps.
    IdleBackoff backoff(cfg_.n_drain != 0 || cfg_.wire_ring != nullptr ? kDrainMaxSleepUs
                                                                        : kMaxSleepUs);
    for (uint64_t loop = 0;; ++loop) {
        // Stop; fed by a distributor (stopped first), only once its ring is
        // empty, so every frame it counted on the port gets a verdict.
        if (stop.load(std::memory_order_relaxed) &&
            (cfg_.wire_ring == nullptr || rte_ring_empty(cfg_.wire_ring) != 0))
            break;
        if (tick.fn != nullptr && loop % tick.every == 0) tick.fn(tick.ctx);
        // Quiescent: nothing from the previous loop's snapshot is used below.
        if (cfg_.qsbr != nullptr) rte_rcu_qsbr_quiescent(cfg_.qsbr, cfg_.qsbr_thread);
        const core::Snapshot* snap = snapshot_.load(std::memory_order_acquire);
        if (snap == nullptr) {
            rte_pause();
            continue;
        }
        b.snap = snap;
        const bool unicast = snap->mode == ClusterMode::unicast;
        b.reply_src = unicast ? snap->source_mac : cfg_.wire_mac;
        b.readdress_local = !unicast;
        const uint64_t now_ns =
            static_cast<uint64_t>(static_cast<double>(rte_get_timer_cycles()) * ns_per_cycle);

        // Wire: each of this worker's RX queues once, or its distributor ring.
        uint32_t n_wire = 0;
        if (cfg_.wire_ring != nullptr) {
            const uint16_t n = static_cast<uint16_t>(rte_ring_sc_dequeue_burst(
                cfg_.wire_ring, reinterpret_cast<void**>(pkts), burst, nullptr));
            if (n != 0) process_wire(pkts, n, false, now_ns);
            n_wire = n;
        }
        for (uint16_t q = 0; q < n_queues; ++q) {
            const uint16_t n = rte_eth_rx_burst(cfg_.wire_port, cfg_.wire_rx_queues[q], pkts, burst);
            if (n != 0) process_wire(pkts, n, true, now_ns);
            n_wire += n;
        }

        // Local -> wire: what the node's own stack sends. In unicast mode the
        // source MAC is masked so that switches never learn the cluster MAC.
        uint16_t n_local = 0;
        if (cfg_.local_rx) n_local = rte_eth_rx_burst(cfg_.local_port, cfg_.local_rx_queue, pkts, burst);
        if (n_local != 0) {
            uint64_t bytes = 0;
            for (uint16_t i = 0; i < n_local; ++i) {
                rte_mbuf* m = pkts[i];
                bytes += rte_pktmbuf_pkt_len(m);
                if (unicast && rte_pktmbuf_data_len(m) >= 12)
                    rte_memcpy(rte_pktmbuf_mtod_offset(m, uint8_t*, 6), snap->source_mac.b.data(), 6);
                b.to_wire.push(m);
            }
            bump(c.local.rx_packets, n_local);
            bump(c.local.rx_bytes, bytes);
            bump(c.local_to_wire, n_local);
        }

        // Control -> wire: heartbeats and IGMP joins built by the control thread.
        uint32_t n_ctl = 0;
        if (cfg_.control_tx != nullptr) {
            n_ctl = rte_ring_sc_dequeue_burst(cfg_.control_tx, reinterpret_cast<void**>(pkts),
                                              burst, nullptr);
            for (uint32_t i = 0; i < n_ctl; ++i) b.to_wire.push(pkts[i]);
            if (n_ctl != 0) bump(c.control_tx, n_ctl);
        }

        // Worker 0: frames the other workers handed over for ports with too
        // few TX queues.
        uint32_t n_drained = 0;
        for (uint16_t w = 0; w < cfg_.n_drain; ++w) {
            if (cfg_.drain_wire[w] != nullptr) {
                const uint32_t n = rte_ring_sc_dequeue_burst(
                    cfg_.drain_wire[w], reinterpret_cast<void**>(pkts), burst, nullptr);
                for (uint32_t i = 0; i < n; ++i) b.to_wire.push(pkts[i]);
                n_drained += n;
            }
            if (cfg_.drain_local[w] != nullptr) {
                const uint32_t n = rte_ring_sc_dequeue_burst(
                    cfg_.drain_local[w], reinterpret_cast<void**>(pkts), burst, nullptr);
                for (uint32_t i = 0; i < n; ++i) b.to_local.push(pkts[i]);
                n_drained += n;
            }
        }
        if (n_drained != 0) bump(c.tx_drained, n_drained);

        if (loop % kExpireEvery == 0) {
            frags_->expire(now_ns, releaser);
            b.flush_tally();  // fragments released with a timeout verdict
        }
        // Connection aging and the held-foreign count (drainstop, dirty
        // buckets, ConnTable::may_hold_foreign): a slice of the table per
        // loop, sized by the load (conn_expire_* in WorkerConfig).
        {
            uint32_t budget;
            if (n_wire == 0) {
                budget = 4 * cfg_.conn_expire_budget;
            } else {
                budget = std::max<uint32_t>(cfg_.conn_expire_min,
                                            n_wire * cfg_.conn_expire_per_packet);
                if (now_ns - sweep_start_ns > sweep_target_ns)
                    budget = std::max(budget, cfg_.conn_expire_budget);  // overdue: catch up
            }
            if (conns_->expire(now_ns, budget, snap).sweep_completed) sweep_start_ns = now_ns;
        }
        {
            const core::ForeignCount fc = conns_->held_foreign();
            const uint64_t packed =
                fc.valid ? (snap->generation << 32) |
                               std::min<uint64_t>(fc.count, 0xfffffffeull)
                         : kHeldForeignUnknown;
            if (packed != read_counter(c.held_foreign))
                __atomic_store_n(&c.held_foreign, packed, __ATOMIC_RELAXED);
        }

        b.to_local.flush();
        b.to_wire.flush();
        b.drop.flush();
        bump(c.loops);

        if (const config::IdlePolicy now_idle = idle_policy(cfg_.idle); now_idle != idle) {
            idle = now_idle;
            set_idle(idle);
            backoff.busy();
        }
        if (idle == config::IdlePolicy::adaptive) {
            if (n_wire != 0 || n_local != 0 || n_ctl != 0 || n_drained != 0) {
                backoff.busy();
            } else if (const uint32_t us = backoff.idle(); us != 0) {
                // Idle only: a system call is acceptable when no packet waits.
                // Sharing the lcore with control: let it run before sleeping.
                if (tick.fn != nullptr) tick.fn(tick.ctx);
                rte_delay_us_sleep(us);
                bump(c.idle_sleeps);
            }
        }
    }

    if (cfg_.qsbr != nullptr) {
        rte_rcu_qsbr_thread_offline(cfg_.qsbr, cfg_.qsbr_thread);
        rte_rcu_qsbr_thread_unregister(cfg_.qsbr, cfg_.qsbr_thread);
    }
}

}  // namespace nlbd::dp
