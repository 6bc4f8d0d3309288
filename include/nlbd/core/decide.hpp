#pragma once
// filter -> hash -> decide (SPEC §2-3), as pure functions over parsed frames.
// Packet path: no allocation, no locks, no exceptions, no system calls.

#include <cstdint>
#include <span>

#include "nlbd/core/parse.hpp"
#include "nlbd/core/reasons.hpp"
#include "nlbd/core/snapshot.hpp"

namespace nlbd::core {

struct Decision {
    Verdict verdict = Verdict::malformed;
    uint16_t rule = kNoRule;   // CompiledRule index, kNoRule when none matched
    HostId owner = kNoHost;    // who owns it (for counters and tests)
    uint32_t bucket = 0;
};

// Decides one parsed frame. Non-first fragments (kFragment without
// kFirstFragment) are not decided here: the caller consults FragTable first;
// if called with one anyway it is decided on L3 only.
Decision decide(const ParsedFrame& f, const Snapshot& s) noexcept;

// Burst form (STYLE.md): decides frames[i] into out[i] for i < n.
void decide_burst(std::span<const ParsedFrame> frames, const Snapshot& s,
                  std::span<Decision> out) noexcept;

}  // namespace nlbd::core
