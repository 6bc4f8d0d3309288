#pragma once
// RX distributor (distributor dispatch mode, docs/multicore.md): one lcore
// reads the wire port's single RX queue and spreads the frames to the
// workers over single-producer/single-consumer rte_rings, by the flow hash of
// core/dispatch.hpp, so that every frame of a flow reaches the same worker
// (whose connection and fragment tables must see the whole flow). Heartbeat
// frames go straight to the control thread's ring.
//
// Threading contract: run() is the only code touching the wire RX queue and
// the producer side of the rings; no lock, no allocation, no system call on
// the packet path (adaptive idle sleeps only when the queue came back empty
// or a worker's ring is full);
// built with -fno-exceptions. Counters as in worker.hpp: the distributor
// counts every received frame on the port (wire.rx_packets/rx_bytes) and
// gives a verdict (and rx_total) only to those it finishes itself
// (heartbeat, dispatch_full); the workers count the rest. Summed over the
// distributor and the workers: rx_total == wire.rx_packets == sum(verdicts).
// Backpressure: a full worker ring keeps the frames staged and stops reading
// the wire queue (the NIC's own ring absorbs, then counts imissed); frames
// staged for longer than hand_over_hold_cycles() (idle.hpp: 2 ms, 50 ms with
// the adaptive idle policy, whose CPUs are shared and whose workers may be
// descheduled) are dropped as dispatch_full.
// Stop order: the distributor first, then the workers (they empty their
// rings before returning).

#include <atomic>
#include <cstdint>
#include <memory>

#include "nlbd/config/config.hpp"
#include "nlbd/dp/worker.hpp"

struct rte_ring;

namespace nlbd::dp {

struct DistributorConfig {
    uint16_t wire_port = 0;
    uint16_t wire_queue = 0;
    uint16_t burst = 32;
    const std::atomic<config::IdlePolicy>* idle = nullptr;  // read every loop; null: poll
    rte_ring* rings[config::kMaxWorkers] = {};  // worker i's input (SP/SC)
    uint16_t workers = 1;
    bool l4 = false;  // hash TCP/UDP ports too (profile rss_fields has tcp/udp)
    uint16_t heartbeat_ethertype = 0x88B5;
    rte_ring* heartbeat_rx = nullptr;  // multi-producer, see cluster_control.hpp
};

class Distributor {
public:
    explicit Distributor(const DistributorConfig& cfg);
    ~Distributor();
    Distributor(const Distributor&) = delete;
    Distributor& operator=(const Distributor&) = delete;

    void run(const std::atomic<bool>& stop) noexcept;

    struct Launch {
        Distributor* distributor;
        const std::atomic<bool>* stop;
    };
    static int lcore_main(void* launch) noexcept;

    const WorkerCounters& counters() const noexcept { return *counters_; }
    // Frames handed to worker i (ring enqueues that succeeded).
    uint64_t dispatched(unsigned worker) const noexcept;

private:
    static constexpr unsigned kStage = 2 * kMaxBurst;  // frames staged per worker
    bool flush(uint64_t now_cycles, bool give_up) noexcept;

    DistributorConfig cfg_;
    uint64_t hold_cycles_ = 0;
    uint16_t staged_[config::kMaxWorkers] = {};
    uint64_t since_[config::kMaxWorkers] = {};  // when the oldest staged frame last moved
    std::unique_ptr<WorkerCounters> counters_;
    std::unique_ptr<uint64_t[]> dispatched_;  // per worker, relaxed single-writer
    std::unique_ptr<rte_mbuf*[]> stage_;      // workers x kStage
};

}  // namespace nlbd::dp
