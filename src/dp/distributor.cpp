// RX distributor: packet path, built with -fno-exceptions/-fno-rtti.
#include "nlbd/dp/distributor.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <algorithm>

#include "nlbd/core/dispatch.hpp"
#include "nlbd/dp/idle.hpp"

namespace nlbd::dp {
namespace {

constexpr uint32_t kMaxSleepUs = 200;  // adaptive idle (IdleBackoff)
constexpr uint16_t kPrefetchAhead = 4;

}  // namespace

Distributor::Distributor(const DistributorConfig& cfg)
    : cfg_(cfg),
      counters_(std::make_unique<WorkerCounters>()),
      dispatched_(std::make_unique<uint64_t[]>(config::kMaxWorkers)),
      stage_(std::make_unique<rte_mbuf*[]>(size_t{config::kMaxWorkers} * kStage)) {
    cfg_.burst = std::clamp<uint16_t>(cfg_.burst, 1, kMaxBurst);
    cfg_.workers = std::clamp<uint16_t>(cfg_.workers, 1, config::kMaxWorkers);
}

Distributor::~Distributor() = default;

uint64_t Distributor::dispatched(unsigned worker) const noexcept {
    return worker < config::kMaxWorkers ? read_counter(dispatched_[worker]) : 0;
}

int Distributor::lcore_main(void* arg) noexcept {
    auto* l = static_cast<Launch*>(arg);
    l->distributor->run(*l->stop);
    return 0;
}

// Hands the staged frames of every worker to its ring. What a full ring
// does not take stays staged (backpressure: the next loop reads no new
// burst while a worker's stage is too full to take one), unless it has
// waited longer than hand_over_hold_cycles(): then the worker is overloaded, not merely
// late, and its frames are dropped (dispatch_full) rather than stall every
// other worker's flows. Returns true when nothing is left staged.
bool Distributor::flush(uint64_t now, bool give_up) noexcept {
    WorkerCounters& c = *counters_;
    bool empty = true;
    for (uint16_t w = 0; w < cfg_.workers; ++w) {
        uint16_t& k = staged_[w];
        if (k == 0) continue;
        rte_mbuf** s = &stage_[size_t{w} * kStage];
        const unsigned taken =
            rte_ring_sp_enqueue_burst(cfg_.rings[w], reinterpret_cast<void* const*>(s), k, nullptr);
        if (taken != 0) {
            bump(dispatched_[w], taken);
            if (taken < k) std::memmove(s, s + taken, (k - taken) * sizeof(rte_mbuf*));
            k = static_cast<uint16_t>(k - taken);
            since_[w] = now;
        }
        if (k == 0) continue;
        if (give_up || now - since_[w] > hold_cycles_) {
            rte_pktmbuf_free_bulk(s, k);
            bump(c.verdicts[static_cast<unsigned>(Verdict::dispatch_full)], k);
            bump(c.rx_total, k);
            k = 0;
            continue;
        }
        empty = false;
    }
    return empty;
}

void Distributor::run(const std::atomic<bool>& stop) noexcept {
    WorkerCounters& c = *counters_;
    const uint16_t burst = cfg_.burst;
    const uint16_t workers = cfg_.workers;
    rte_mbuf* pkts[kMaxBurst];
    IdleBackoff backoff(kMaxSleepUs);
    config::IdlePolicy idle = idle_policy(cfg_.idle);
    hold_cycles_ = hand_over_hold_cycles(idle);

    while (!stop.load(std::memory_order_relaxed)) {
        const uint64_t now = rte_get_timer_cycles();
        if (const config::IdlePolicy now_idle = idle_policy(cfg_.idle); now_idle != idle) {
            idle = now_idle;  // a reload changed it
            hold_cycles_ = hand_over_hold_cycles(idle);
        }
        flush(now, false);
        // Backpressure: no new burst while a worker could not take it.
        bool room = true;
        for (uint16_t w = 0; w < workers; ++w) room &= staged_[w] + burst <= kStage;
        const uint16_t n = room ? rte_eth_rx_burst(cfg_.wire_port, cfg_.wire_queue, pkts, burst) : 0;
        bump(c.loops);
        if (n == 0) {
            if (!room) {
                wait_for_consumer(idle);  // a worker is behind
            } else if (idle == config::IdlePolicy::adaptive) {
                if (const uint32_t us = backoff.idle(); us != 0) {
                    rte_delay_us_sleep(us);  // idle only
                    bump(c.idle_sleeps);
                }
            }
            continue;
        }
        backoff.busy();

        for (uint16_t i = 0; i < n && i < kPrefetchAhead; ++i)
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
        uint64_t bytes = 0;
        uint32_t heartbeats = 0;
        for (uint16_t i = 0; i < n; ++i) {
            if (i + kPrefetchAhead < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kPrefetchAhead], void*));
            rte_mbuf* m = pkts[i];
            bytes += rte_pktmbuf_pkt_len(m);
            const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
            const uint32_t len = rte_pktmbuf_data_len(m);
            if (core::inner_ethertype(d, len) == cfg_.heartbeat_ethertype) {
                bump(c.verdicts[static_cast<unsigned>(Verdict::heartbeat)]);
                ++heartbeats;
                if (cfg_.heartbeat_rx == nullptr || rte_ring_enqueue(cfg_.heartbeat_rx, m) != 0) {
                    if (cfg_.heartbeat_rx != nullptr) bump(c.heartbeat_dropped);
                    rte_pktmbuf_free(m);
                }
                continue;
            }
            const uint32_t w = core::dispatch_worker(core::dispatch_hash(d, len, cfg_.l4), workers);
            if (staged_[w] == 0) since_[w] = now;
            stage_[size_t{w} * kStage + staged_[w]++] = m;
        }
        bump(c.wire.rx_packets, n);
        bump(c.wire.rx_bytes, bytes);
        if (heartbeats != 0) bump(c.rx_total, heartbeats);
        flush(now, false);
    }
    // Stopping (the workers still run and empty their rings): hand over what
    // is staged, for at most the hold time, then count the rest as dropped.
    const uint64_t t0 = rte_get_timer_cycles();
    while (!flush(rte_get_timer_cycles(), false) && rte_get_timer_cycles() - t0 < hold_cycles_) rte_pause();
    flush(rte_get_timer_cycles(), true);
}

}  // namespace nlbd::dp
