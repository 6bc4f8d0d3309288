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

// Burst form (STYLE.md): decides frames[i] into out[i] for i < n, except
// where decided[i] != 0 (out[i] already holds the decision, e.g. from
// decide_v4_fast); decided may be null.
void decide_burst(std::span<const ParsedFrame> frames, const Snapshot& s, std::span<Decision> out,
                  const uint8_t* decided = nullptr) noexcept;

// The fast path for the commonest frame (issue 15), straight from the
// frame's bytes, without parse_frame: untagged Ethernet, IPv4 without
// options or fragmentation, TCP or UDP with a well-formed header, to a VIP,
// under a multiple-host rule. Returns true with *d set to exactly what
// parse_frame + decide give (Verdict::accepted or not_owner, rule, owner,
// bucket); false, *d untouched, for everything else (the caller takes the
// full path). Checked against the full path frame by frame (decide_test,
// fuzz_parse).
bool decide_v4_fast(std::span<const uint8_t> frame, const Snapshot& s, Decision& d) noexcept;

// The early exit for a frame this host does not own (issue 15: in an
// N-host cluster (N-1)/N of the traffic): decide_v4_fast said not_owner.
// Returns true with *d set only then. The frame may leave without
// persistence only while ConnTable::may_hold_foreign(s) is false.
bool decide_foreign_v4(std::span<const uint8_t> frame, const Snapshot& s, Decision& d) noexcept;

}  // namespace nlbd::core
