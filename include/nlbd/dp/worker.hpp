#pragma once
// The packet loop of one worker lcore (SPEC §6, STYLE.md picture,
// docs/multicore.md for several workers):
//   rx_burst(wire queues) or the distributor's ring -> parse -> fragments ->
//     decide -> to local / reply / drop
//   rx_burst(local) -> (unicast: masked source MAC) -> tx_burst(wire)
//
// Threading contract:
//  - run() is the only code that touches the worker's queues, its FragTable
//    and writes its counters. It takes no lock, allocates nothing, makes no
//    system call on the packet path (the adaptive idle policy sleeps only
//    when nothing came in, or while worker 0's hand-over ring is full) and
//    never throws (built with -fno-exceptions).
//  - The snapshot is read through `snapshot` (acquire) once per poll loop;
//    the worker reports a quiescent state (rte_rcu_qsbr) once per loop, after
//    which it holds no pointer into an older snapshot.
//  - Counters are written with relaxed atomic stores by the worker only and
//    may be read by the control thread at any time (relaxed loads): values
//    are monotonic, never torn; exact totals once run() has returned.

#include <atomic>
#include <cstdint>
#include <memory>

#include "nlbd/config/config.hpp"
#include "nlbd/core/conn_table.hpp"
#include "nlbd/core/frag_table.hpp"
#include "nlbd/core/reasons.hpp"
#include "nlbd/core/snapshot.hpp"
#include "nlbd/core/types.hpp"

struct rte_rcu_qsbr;
struct rte_mbuf;
struct rte_ring;

namespace nlbd::dp {

inline constexpr unsigned kMaxBurst = 256;
// Per-rule counter slots: one per compiled rule, the last one for VIP traffic
// that matched no rule (default host).
inline constexpr unsigned kRuleSlots = kMaxRules + 1;
inline constexpr unsigned kNoRuleSlot = kMaxRules;
// Multi-segment frames are parsed from a linear copy of up to this many bytes
// (a 9000-byte jumbo frame plus headers fits).
inline constexpr unsigned kLinearCopyBytes = 16384;

struct PortCounters {
    uint64_t rx_packets = 0;
    uint64_t rx_bytes = 0;
    uint64_t tx_packets = 0;
    uint64_t tx_bytes = 0;
    uint64_t tx_dropped = 0;  // handed to tx_burst but not taken: freed
};

struct RuleCounters {
    uint64_t matched = 0;    // frames decided under this rule
    uint64_t accepted = 0;   // ... delivered to the local port
    uint64_t not_owner = 0;  // ... owned by another host
    uint64_t dropped = 0;    // ... dropped for any other reason (disabled, stopped, ...)
};

// One per worker, written only by it. Invariant once run() returned:
// rx_total == wire.rx_packets == sum(verdicts), where fragments still held by
// the FragTable are counted under Verdict::frag_held by the reader (see
// Worker::verdicts_at_exit) and every other frame under its final verdict.
struct alignas(64) WorkerCounters {
    uint64_t rx_total = 0;
    uint64_t verdicts[kVerdictCount] = {};
    uint64_t parse_errors[kParseErrorCount] = {};
    PortCounters wire;
    PortCounters local;
    uint64_t local_to_wire = 0;   // frames from the local port sent on the wire
    uint64_t linearized = 0;      // multi-segment frames parsed from a copy
    uint64_t reply_failed = 0;    // ARP/ND answers that could not be built (dropped)
    uint64_t frag_released = 0;   // held fragments released with their datagram's verdict
    uint64_t loops = 0;
    uint64_t idle_sleeps = 0;
    uint64_t heartbeat_dropped = 0;  // heartbeat frames the control ring had no room for
    uint64_t control_tx = 0;         // frames from the control thread queued on the wire
    uint64_t tx_handed = 0;          // frames handed to worker 0's TX (ring), both ports
    uint64_t tx_drained = 0;         // worker 0: frames taken from other workers' TX rings
    // Connections held in buckets this host does not own, counted over a
    // whole ConnTable sweep under the snapshot whose generation's low 32 bits
    // are the high half: (generation << 32) | count. kHeldForeignUnknown
    // until a sweep completed under the current snapshot.
    uint64_t held_foreign = ~0ull;
    alignas(64) RuleCounters rules[kRuleSlots] = {};
};

// Where a worker sends the frames of one port: a TX queue it owns, or (the
// port has fewer TX queues than workers) a single-producer ring that worker 0
// drains onto the port's queue 0 (WorkerConfig::drain_*).
struct TxPath {
    uint16_t queue = 0;
    rte_ring* ring = nullptr;
};

inline constexpr unsigned kMaxWorkerQueues = 16;  // wire RX queues per worker

struct WorkerConfig {
    uint16_t index = 0;                     // worker number, 0 .. workers-1
    uint16_t wire_port = 0;
    uint16_t local_port = 0;
    uint16_t burst = 32;                    // <= kMaxBurst
    // The idle policy, read every loop (a reload changes it live); null: poll.
    const std::atomic<config::IdlePolicy>* idle = nullptr;
    // Wire RX (docs/multicore.md). rss dispatch: the wire RX queues this
    // worker polls, each once per loop. distributor dispatch: wire_ring, the
    // frames the RX distributor chose for this worker (single producer: the
    // distributor, single consumer: this worker); it already counted them on
    // the port (wire.rx_packets/rx_bytes), the worker counts rx_total and
    // their verdicts.
    uint16_t wire_rx_queues[kMaxWorkerQueues] = {0};
    uint16_t n_wire_rx_queues = 1;
    rte_ring* wire_ring = nullptr;
    // Local RX: the local port's queue this worker polls (what the node's own
    // stack sends), or none.
    bool local_rx = true;
    uint16_t local_rx_queue = 0;
    TxPath wire_tx;
    TxPath local_tx;
    // Worker 0 when other workers hand it frames: their TX rings, sent on
    // wire_tx / local_tx.queue.
    rte_ring* drain_wire[config::kMaxWorkers] = {};
    rte_ring* drain_local[config::kMaxWorkers] = {};
    uint16_t n_drain = 0;
    MacAddr wire_mac;                       // source MAC outside unicast mode
    MacAddr local_mac;                      // multicast modes: destination of frames delivered locally
    core::FragTable::Config frag;
    core::ConnTable::Config conn;
    // Connection-table aging (ConnTable::expire) per poll loop, adaptive:
    //  - a loop that received wire frames ages max(conn_expire_min,
    //    frames x conn_expire_per_packet) slots (a few ns per packet, so
    //    aging never dominates the packet cost under load);
    //  - a loop that received none ages 4 x conn_expire_budget slots;
    //  - when the current sweep has run longer than conn_sweep_target_ms, a
    //    busy loop ages at least conn_expire_budget slots until it ends.
    // A whole sweep is what refreshes held_foreign and may_hold_foreign after
    // a snapshot change (drainstop ends on it). With the defaults and the
    // default table (2^19 slots) a sweep takes ~30 ms at 10 Mpps and far
    // less idle; the largest table (2^25 slots) needs the catch-up under load
    // and ends a sweep in about the target.
    uint32_t conn_expire_budget = 1024;
    uint32_t conn_expire_per_packet = 2;
    uint32_t conn_expire_min = 16;
    uint32_t conn_sweep_target_ms = 1000;
    rte_rcu_qsbr* qsbr = nullptr;           // registered as thread qsbr_thread
    unsigned qsbr_thread = 0;
    // Heartbeats (SPEC §4). Wire frames whose EtherType (after at most one
    // 802.1Q/802.1ad tag) is heartbeat_ethertype get Verdict::heartbeat and,
    // when heartbeat_rx is set, are enqueued on it (single producer: this
    // worker; single consumer: the control thread, which frees them); when
    // the ring is full they are freed and counted as heartbeat_dropped.
    // Frames the control thread enqueues on control_tx (single producer:
    // control; single consumer: this worker) are sent on the wire queue.
    uint16_t heartbeat_ethertype = 0x88B5;
    rte_ring* heartbeat_rx = nullptr;
    rte_ring* control_tx = nullptr;
};

// Called by run() every `control_every` loops when the worker shares the main
// lcore with the control plane (one CPU). Must not throw.
struct ControlTick {
    void (*fn)(void* ctx) noexcept = nullptr;
    void* ctx = nullptr;
    uint32_t every = 1024;
};

class Worker {
public:
    Worker(const WorkerConfig& cfg, const std::atomic<const core::Snapshot*>& snapshot);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Polls until stop is set. Registers itself online with the QSBR variable
    // and goes offline before returning.
    void run(const std::atomic<bool>& stop, const ControlTick& tick) noexcept;

    // For rte_eal_remote_launch: arg is {Worker*, stop*}.
    struct Launch {
        Worker* worker;
        const std::atomic<bool>* stop;
    };
    static int lcore_main(void* launch) noexcept;

    // Worker 0, after every worker's run() has returned: sends what the
    // others handed over in their last loop (their TX rings).
    void drain_after_stop() noexcept;

    const WorkerCounters& counters() const noexcept { return *counters_; }
    const core::FragStats& frag_stats() const noexcept;
    const core::ConnStats& conn_stats() const noexcept;
    uint32_t conn_capacity() const noexcept;
    const core::ConnTable& conn_table() const noexcept { return *conns_; }
    // counters().verdicts with fragments still held counted as frag_held.
    void verdicts_at_exit(uint64_t (&out)[kVerdictCount]) const noexcept;

    struct Burst;  // per-loop scratch (detail, worker.cpp)

private:
    void process_wire(rte_mbuf** pkts, uint16_t n, bool on_port, uint64_t now_ns) noexcept;

    WorkerConfig cfg_;
    const std::atomic<const core::Snapshot*>& snapshot_;
    std::unique_ptr<WorkerCounters> counters_;
    std::unique_ptr<core::FragTable> frags_;
    std::unique_ptr<core::ConnTable> conns_;
    std::unique_ptr<uint8_t[]> linear_;  // kLinearCopyBytes
    std::unique_ptr<Burst> burst_;       // run()'s per-loop scratch
};

inline constexpr uint64_t kHeldForeignUnknown = ~0ull;

// Relaxed single-writer counter updates (see the threading contract).
inline void bump(uint64_t& c, uint64_t n = 1) noexcept {
    __atomic_store_n(&c, __atomic_load_n(&c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}
inline uint64_t read_counter(const uint64_t& c) noexcept {
    return __atomic_load_n(&c, __ATOMIC_RELAXED);
}

}  // namespace nlbd::dp
