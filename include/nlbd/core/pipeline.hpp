#pragma once
// One received burst, wire -> final decisions (issue 15): the whole
// per-frame logic of a worker, on byte spans and opaque handles. The worker
// keeps only the mbuf adapter (a Source), what it does with each decision (a
// Sink: counters, TX, heartbeat ring) and the TX queues; unit tests and the
// benchmark drive the same function with vectors of frames.
//
// For every frame of the burst, in arrival order, exactly one of:
//   sink.heartbeat(handle)                 the heartbeat EtherType (after at
//                                          most one VLAN tag);
//   sink.emit(handle, parsed, decision)    the frame's final decision; parsed
//                                          is null for frames that were not
//                                          parsed (malformed, early exit);
//   nothing                                a non-first fragment the FragTable
//                                          now holds (Verdict::frag_held):
//                                          it reaches sink.released later.
// Fragments held earlier leave through sink.released(handle, decision) (the
// FragReleaser of frag_releaser(sink)) at the point where their datagram's
// first fragment is decided, or with frag_timeout/frag_evicted.
//
// Passes (the result equals deciding frame by frame, in order):
//  1. per frame: heartbeats leave; plain IPv4 TCP/UDP frames under a
//     multiple-host rule are decided from their bytes (decide_v4_fast), and
//     those another host owns leave at once while the connection table
//     cannot hold a foreign connection (ConnTable::may_hold_foreign): no
//     parse, no table work; the rest is parsed (malformed frames leave) and
//     queued in arrival order: frames to decide, later fragments apart;
//  2. decide_burst (for the frames the fast path did not decide) +
//     apply_persistence_burst over the queued frames;
//  3. in arrival order: emit each decided frame (a first fragment's decision
//     is recorded in the FragTable, which releases what it held for it);
//     later fragments are looked up in the FragTable.
//
// Source (the frames; the worker's adapter reads mbufs):
//   std::span<const uint8_t> frame(uint16_t i)  the frame's first bytes,
//       linear; valid until the next call (ParsedFrame keeps no pointer);
//   void* handle(uint16_t i)                   passed back to the sink;
//   void prefetch(uint16_t i)                  a hint before frame(i).
// Sink:
//   void heartbeat(void* handle);
//   void emit(void* handle, const ParsedFrame* f, const Decision& d);
//   void released(void* handle, const Decision& d);
// Templates, not function pointers: the sink's work is inlined into the
// loop (a call per frame through a pointer is what the worker cannot
// afford). Packet path: no allocation, lock, exception or system call.

#include <cstdint>
#include <span>

#include "nlbd/core/conn_table.hpp"
#include "nlbd/core/decide.hpp"
#include "nlbd/core/dispatch.hpp"
#include "nlbd/core/frag_table.hpp"
#include "nlbd/core/parse.hpp"
#include "nlbd/core/persist.hpp"
#include "nlbd/core/reasons.hpp"
#include "nlbd/core/snapshot.hpp"

namespace nlbd::core {

// The most frames one process_burst call takes.
inline constexpr unsigned kMaxBurst = 256;

// What one burst needs besides its frames.
struct BurstContext {
    const Snapshot* snap = nullptr;
    ConnTable* conns = nullptr;
    FragTable* frags = nullptr;
    uint16_t heartbeat_ethertype = 0;
    uint64_t now_ns = 0;
};

// What process_burst counted (the sink counts the decisions).
struct BurstCounts {
    uint32_t frames = 0;       // every frame of the burst
    uint32_t heartbeats = 0;
    uint32_t early_exits = 0;  // another host's, left before parse_frame
    uint32_t parsed = 0;       // parsed without error
    uint32_t parse_errors[kParseErrorCount] = {};
};

// process_burst's scratch: one per worker (about 40 KiB), reused.
struct BurstScratch {
    struct Pending {
        void* handle;
        uint16_t index;  // into frames/decisions, or later
        bool later;      // a non-first fragment
    };
    ParsedFrame frames[kMaxBurst];
    Decision decisions[kMaxBurst];
    uint8_t decided[kMaxBurst];  // decisions[i] came from decide_v4_fast
    ParsedFrame later[kMaxBurst];
    Pending order[kMaxBurst];
};

// The FragReleaser that hands released fragments to sink.released.
template <class Sink>
FragReleaser frag_releaser(Sink& sink) noexcept {
    return FragReleaser{[](void* ctx, void* h, const Decision& d) { static_cast<Sink*>(ctx)->released(h, d); },
                        &sink};
}

// Frames 0 .. n-1 of `in` (n <= kMaxBurst; more are ignored).
template <class Source, class Sink>
BurstCounts process_burst(Source& in, uint16_t n, const BurstContext& ctx, BurstScratch& sc,
                          Sink& sink) noexcept {
    BurstCounts counts;
    if (n > kMaxBurst) n = kMaxBurst;
    counts.frames = n;
    const Snapshot& snap = *ctx.snap;
    const FragReleaser releaser = frag_releaser(sink);
    uint16_t n_dec = 0, n_later = 0, n_order = 0, n_fast = 0;
    // Frames another host owns leave before parse_frame while no connection
    // of ours can be in their buckets.
    const bool early_exit = !ctx.conns->may_hold_foreign(snap);
    for (uint16_t i = 0; i < n; ++i) {
        if (i + 1 < n) in.prefetch(static_cast<uint16_t>(i + 1));
        const std::span<const uint8_t> data = in.frame(i);
        void* const h = in.handle(i);
        if (inner_ethertype(data.data(), static_cast<uint32_t>(data.size())) == ctx.heartbeat_ethertype) {
            ++counts.heartbeats;
            sink.heartbeat(h);
            continue;
        }
        // Plain IPv4 TCP/UDP under a multiple-host rule: decided from the
        // bytes (decide_v4_fast); another host's leaves at once while it
        // may, ours (or one persistence must see) skips decide_burst.
        Decision fast;
        const bool is_fast = decide_v4_fast(data, snap, fast);
        if (is_fast && early_exit && fast.verdict == Verdict::not_owner) {
            ++counts.early_exits;
            sink.emit(h, nullptr, fast);
            continue;
        }
        ParsedFrame& f = sc.frames[n_dec];
        const ParseError e = parse_frame(data, f);
        if (e != ParseError::none) {
            ++counts.parse_errors[static_cast<unsigned>(e)];
            Decision d;
            d.verdict = Verdict::malformed;
            sink.emit(h, nullptr, d);
            continue;
        }
        ++counts.parsed;
        const uint16_t flags = f.key.flags;
        if ((flags & kFragment) != 0 && (flags & kFirstFragment) == 0) {
            sc.later[n_later] = f;
            sc.order[n_order++] = {h, n_later++, true};
        } else {
            sc.decided[n_dec] = is_fast;
            if (is_fast) sc.decisions[n_dec] = fast;
            n_fast += is_fast;
            sc.order[n_order++] = {h, n_dec++, false};
        }
    }

    if (n_dec != 0) {
        const std::span<const ParsedFrame> fs(sc.frames, n_dec);
        const std::span<Decision> ds(sc.decisions, n_dec);
        if (n_fast != n_dec) decide_burst(fs, snap, ds, sc.decided);
        apply_persistence_burst(fs, ds, snap, *ctx.conns, ctx.now_ns);
    }

    for (uint16_t i = 0; i < n_order; ++i) {
        void* const h = sc.order[i].handle;
        const uint16_t k = sc.order[i].index;
        if (sc.order[i].later) {
            const ParsedFrame& f = sc.later[k];
            Decision d;
            switch (ctx.frags->on_later(frag_key_of(f.key), h, ctx.now_ns, d, releaser)) {
            case FragTable::Result::held: continue;  // reaches sink.released
            case FragTable::Result::full:
                d = Decision{};
                d.verdict = Verdict::frag_table_full;
                break;
            case FragTable::Result::decided: break;
            }
            sink.emit(h, &f, d);
            continue;
        }
        const ParsedFrame& f = sc.frames[k];
        const Decision& d = sc.decisions[k];
        sink.emit(h, &f, d);
        if ((f.key.flags & kFirstFragment) != 0) ctx.frags->on_first(frag_key_of(f.key), d, ctx.now_ns, releaser);
    }
    return counts;
}

}  // namespace nlbd::core
