#pragma once
// Waiting on the packet path, shared by the workers and the RX distributor
// (packet-path code: no allocation, no lock; system calls only where a
// comment says so).

#include <rte_cycles.h>
#include <rte_pause.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "nlbd/config/config.hpp"

namespace nlbd::dp {

// Adaptive idle policy: after an empty poll, spin kSpinLoops polls, then pause
// kPauseLoops polls, then sleep with a delay doubling from 1 us up to
// max_sleep_us; any traffic (busy()) starts over.
class IdleBackoff {
public:
    static constexpr uint32_t kSpinLoops = 100;
    static constexpr uint32_t kPauseLoops = 1000;

    explicit IdleBackoff(uint32_t max_sleep_us) noexcept : max_sleep_us_(max_sleep_us) {}

    void busy() noexcept {
        empty_ = 0;
        sleep_us_ = 1;
    }
    // An empty poll: spins or pauses here and returns 0, or returns how many
    // microseconds the caller is to sleep (it may run other work first).
    uint32_t idle() noexcept {
        if (++empty_ <= kSpinLoops) return 0;
        if (empty_ <= kSpinLoops + kPauseLoops) {
            rte_pause();
            return 0;
        }
        const uint32_t us = sleep_us_;
        sleep_us_ = std::min(sleep_us_ * 2, max_sleep_us_);
        return us;
    }

private:
    uint32_t max_sleep_us_;
    uint32_t empty_ = 0;
    uint32_t sleep_us_ = 1;
};

// The policy now in force (a reload may change it while the lcore runs).
inline config::IdlePolicy idle_policy(const std::atomic<config::IdlePolicy>* p) noexcept {
    return p != nullptr ? p->load(std::memory_order_relaxed) : config::IdlePolicy::poll;
}

// How long a producer waits for a consumer that does not take its frames
// (a full ring) before it counts them as dropped: the consumer is then
// overloaded, not merely late. Dedicated cores (poll): 2 ms. Shared CPUs
// (adaptive): a descheduled consumer is late, not overloaded; 50 ms.
inline uint64_t hand_over_hold_cycles(config::IdlePolicy idle) noexcept {
    return rte_get_timer_hz() / 1000 * (idle == config::IdlePolicy::adaptive ? 50 : 2);
}

// One step of that wait: on shared CPUs give the consumer the CPU (a 10 us
// sleep: a system call, only while blocked), else pause.
inline void wait_for_consumer(config::IdlePolicy idle) noexcept {
    if (idle == config::IdlePolicy::adaptive) rte_delay_us_sleep(10);
    else rte_pause();
}

}  // namespace nlbd::dp
