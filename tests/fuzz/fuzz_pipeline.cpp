// libFuzzer target for nlbd::core::process_burst (core/pipeline.hpp), built
// by run_fuzz.sh with -fsanitize=fuzzer,address,undefined. The input is a
// burst: records of a 2-byte big-endian length (taken modulo 2048) and that
// many bytes, at most kMaxFrames frames; libFuzzer's buffer is exact, so
// ASan reports any read past a frame. Run on hosts 1, 2 and 3 of one
// cluster, it checks:
//   - every frame leaves exactly once: a heartbeat, an emitted decision, or
//     held and released (at the latest when the fragment table expires);
//   - the counts add up: frames = heartbeats + early exits + parsed + parse
//     errors, and no emitted frame is both parsed and counted early;
//   - one burst gives each frame what it gets alone, frame by frame;
//   - no frame is taken (accepted) by two hosts;
//   - a datagram's later fragments get its first fragment's verdict (when
//     the input holds one first fragment for it and few later ones).
// A violation aborts.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

#include "fuzz_cluster.hpp"
#include "nlbd/core/conn_table.hpp"
#include "nlbd/core/frag_table.hpp"
#include "nlbd/core/pipeline.hpp"
#include "nlbd/core/snapshot.hpp"

namespace {

using namespace nlbd::core;
using nlbd::Verdict;

constexpr size_t kMaxFrames = 64;
constexpr uint16_t kHeartbeat = 0x88B5;
constexpr uint64_t kNow = 1'000'000'000'000ull;
constexpr uint64_t kLater = kNow + 100'000'000'000ull;

struct Source {
    const std::vector<std::span<const uint8_t>>* frames;
    size_t first = 0;  // frames [first, first + n) of the input
    std::span<const uint8_t> frame(uint16_t i) const { return (*frames)[first + i]; }
    void* handle(uint16_t i) const { return reinterpret_cast<void*>(first + i + 1); }
    void prefetch(uint16_t) const {}
};

// What happened to each frame (index = handle - 1).
struct Sink {
    std::array<Verdict, kMaxFrames> verdict{};
    std::array<uint8_t, kMaxFrames> times{};
    std::array<uint8_t, kMaxFrames> parsed{};
    void note(void* h, Verdict v, bool p) {
        const auto i = reinterpret_cast<uintptr_t>(h) - 1;
        CHECK(i < kMaxFrames);
        verdict[i] = v;
        ++times[i];
        parsed[i] = p;
    }
    void heartbeat(void* h) { note(h, Verdict::heartbeat, false); }
    void emit(void* h, const ParsedFrame* f, const Decision& d) { note(h, d.verdict, f != nullptr); }
    void released(void* h, const Decision& d) { note(h, d.verdict, false); }
};

// One host: snapshot and tables, rebuilt empty for every run.
struct Host {
    std::shared_ptr<const Snapshot> snap;
    std::unique_ptr<ConnTable> conns;
    std::unique_ptr<FragTable> frags;
    std::unique_ptr<BurstScratch> scratch = std::make_unique<BurstScratch>();

    explicit Host(nlbd::HostId self) : snap(nlbd::fuzz::cluster_snapshot_of(self)) {
        ConnTable::Config cc;
        cc.capacity = 1024;
        conns = std::make_unique<ConnTable>(cc);
    }
    void reset() {
        conns->clear();
        // A whole sweep under the snapshot: the early exit is taken.
        for (int i = 0; i < 4 && conns->may_hold_foreign(*snap); ++i)
            while (!conns->expire(kNow, 1u << 20, snap.get()).sweep_completed) {
            }
        frags = std::make_unique<FragTable>(FragTable::Config{});
    }
    // The frames in one burst (one_burst) or one by one; then expiry.
    Sink run(const std::vector<std::span<const uint8_t>>& frames, bool one_burst) {
        reset();
        Sink sink;
        const BurstContext ctx{snap.get(), conns.get(), frags.get(), kHeartbeat, kNow};
        const size_t step = one_burst ? frames.size() : 1;
        for (size_t first = 0; first < frames.size(); first += step) {
            Source src{&frames, first};
            const auto n = static_cast<uint16_t>(std::min(step, frames.size() - first));
            const BurstCounts c = process_burst(src, n, ctx, *scratch, sink);
            uint32_t errors = 0;
            for (uint32_t e : c.parse_errors) errors += e;
            CHECK(c.frames == n);
            CHECK(c.frames == c.heartbeats + c.early_exits + c.parsed + errors);
        }
        frags->expire(kLater, frag_releaser(sink));
        for (size_t i = 0; i < frames.size(); ++i) CHECK(sink.times[i] == 1);
        return sink;
    }
};

std::array<std::unique_ptr<Host>, 3>& hosts() {
    static std::array<std::unique_ptr<Host>, 3> h = {std::make_unique<Host>(1), std::make_unique<Host>(2),
                                                     std::make_unique<Host>(3)};
    return h;
}

bool taken(Verdict v) {
    return v == Verdict::accepted || v == Verdict::accepted_conn;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::span<const uint8_t>> frames;
    for (size_t at = 0; at + 2 <= size && frames.size() < kMaxFrames;) {
        const size_t len = ((size_t{data[at]} << 8) | data[at + 1]) % 2048;
        at += 2;
        const size_t n = len < size - at ? len : size - at;
        frames.push_back({data + at, n});
        at += n;
    }
    if (frames.empty()) return 0;
    std::array<Sink, 3> burst;
    for (size_t h = 0; h < 3; ++h) burst[h] = hosts()[h]->run(frames, true);
    const Sink alone = hosts()[0]->run(frames, false);
    // Fragments, as parse_frame sees them.
    struct Frag {
        bool first = false, later = false;
        FragKey key;
    };
    std::vector<Frag> frag(frames.size());
    for (size_t i = 0; i < frames.size(); ++i) {
        ParsedFrame f;
        if (parse_frame(frames[i], f) != nlbd::ParseError::none || (f.key.flags & kFragment) == 0) continue;
        frag[i].first = (f.key.flags & kFirstFragment) != 0;
        frag[i].later = !frag[i].first;
        frag[i].key = frag_key_of(f.key);
    }
    for (size_t i = 0; i < frames.size(); ++i) {
        if (!frag[i].later) continue;
        size_t firsts = 0, laters = 0, first = 0;
        for (size_t j = 0; j < frames.size(); ++j) {
            if (!(frag[j].key == frag[i].key)) continue;
            if (frag[j].first) first = j, ++firsts;
            laters += frag[j].later;
        }
        if (firsts == 1 && laters <= 8)
            for (const Sink& s : burst) CHECK(s.verdict[i] == s.verdict[first]);
    }
    for (size_t i = 0; i < frames.size(); ++i) {
        CHECK(burst[0].verdict[i] == alone.verdict[i]);
        // A new connection, or an adopted one: at most one host takes it
        // (every table starts empty, so no host holds an older connection).
        int takers = 0;
        for (const Sink& s : burst) takers += taken(s.verdict[i]);
        CHECK(takers <= 1);
    }
    return 0;
}
