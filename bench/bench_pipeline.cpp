// Micro-benchmarks of the pure packet path (SPEC §10): parse, rule match,
// affinity hash, decide, and a whole burst (parse + decide_burst of 32
// frames; also with connection persistence), on a realistic flow mix; the
// connection table (find / insert / aging sweep, memory per connection, up
// to 2M connections); bucket-map build / rebalance cost and its quality
// (buckets_moved_pct on host loss); snapshot compilation; and the decision
// stages behind a PMD-like frame copy (BM_CopyPipeline), as end to end.
//
// Every frame, snapshot and map is built before the timed loop (STYLE.md);
// the timed loops only read them. Results are reported as time per packet
// (user counters) besides Google Benchmark's own time per iteration.
//
//   ninja -C BUILD bench/bench_pipeline && BUILD/bench/bench_pipeline
//   BUILD/bench/bench_pipeline --benchmark_filter=Burst --benchmark_repetitions=5
//
// Numbers are recorded in docs/performance.md; nothing here is asserted.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "nlbd/core/bucket_map.hpp"
#include "nlbd/core/conn_table.hpp"
#include "nlbd/core/decide.hpp"
#include "nlbd/core/hash.hpp"
#include "nlbd/core/parse.hpp"
#include "nlbd/core/persist.hpp"
#include "nlbd/core/pipeline.hpp"
#include "nlbd/core/snapshot.hpp"
#include "flow_mix.hpp"

namespace {

using namespace nlbd;
using namespace nlbd::core;
using nlbd::testing::Bytes;

constexpr size_t kBurst = 32;
// Frames in the corpus: one per flow. A multiple of kBurst.
constexpr size_t kFlows = 10240;
// Frames sit kSlot bytes apart, like the data rooms of consecutive mbufs
// (RTE_MBUF_DEFAULT_BUF_SIZE minus the headroom), so the parser walks a
// working set of the size a real RX ring gives it (~21 MB, beyond L2).
constexpr size_t kSlot = 2048;

// ---------------------------------------------------------------- corpus

// Frames stored at a fixed stride in one arena.
struct Corpus {
    std::vector<uint8_t> arena;
    std::vector<uint16_t> length;
    std::vector<const char*> kind;  // for the summary only
    size_t size() const { return length.size(); }
    std::span<const uint8_t> frame(size_t i) const {
        return {arena.data() + i * kSlot, length[i]};
    }
};

Corpus build_corpus() {
    auto frames = nlbd::bench::flow_mix(kFlows);
    Corpus c;
    c.arena.assign(kFlows * kSlot, 0);
    for (size_t i = 0; i < frames.size(); ++i) {
        const Bytes& f = frames[i].bytes;
        if (f.size() > kSlot) std::abort();
        std::memcpy(c.arena.data() + i * kSlot, f.data(), f.size());
        c.length.push_back(static_cast<uint16_t>(f.size()));
        c.kind.push_back(frames[i].kind);
    }
    return c;
}

const Corpus& corpus() {
    static const Corpus c = build_corpus();
    return c;
}

std::vector<ParsedFrame> parse_all(const Corpus& c) {
    std::vector<ParsedFrame> out(c.size());
    for (size_t i = 0; i < c.size(); ++i) {
        if (parse_frame(c.frame(i), out[i]) != ParseError::none) {
            std::fprintf(stderr, "bench: corpus frame %zu (%s) does not parse\n", i, c.kind[i]);
        }
    }
    return out;
}

const std::vector<ParsedFrame>& parsed() {
    static const std::vector<ParsedFrame> p = parse_all(corpus());
    return p;
}

// ---------------------------------------------------------------- snapshots

// Three static members (hosts 1, 2, 3), equal weights; this node is host 1.
// affinity_timeout_s > 0: every multiple-host rule with client affinity
// (single or network) gets it (extended affinity).
std::shared_ptr<const Snapshot> make_snapshot(unsigned nrules, uint32_t affinity_timeout_s = 0) {
    return compile_snapshot(nlbd::fixture::cluster_input(1, nrules, affinity_timeout_s));
}

const Snapshot& snapshot(unsigned nrules) {
    static std::array<std::shared_ptr<const Snapshot>, 4> cache;
    const size_t slot = nrules == 0 ? 0 : nrules == 1 ? 1 : nrules == 64 ? 2 : 3;
    if (!cache[slot]) cache[slot] = make_snapshot(nrules);
    return *cache[slot];
}

// Time per packet (items_per_second gives the rate) from the item count (rate counters
// divide by the measured CPU time; kInvert turns packets/s into s/packet).
void report(benchmark::State& state, size_t packets_per_iter) {
    const auto items = static_cast<double>(state.iterations()) * static_cast<double>(packets_per_iter);
    state.SetItemsProcessed(static_cast<int64_t>(items));
    // Printed with an SI prefix, e.g. "per_pkt=19.3ns".
    state.counters["per_pkt"] =
        benchmark::Counter(items, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

const char* rules_label(unsigned n) {
    switch (n) {
    case 0: return "rules=seed(5)";
    case 1: return "rules=1(default)";
    case 64: return "rules=64";
    default: return "rules=1024";
    }
}

// ---------------------------------------------------------------- stages

// Parse only: frame bytes -> ParsedFrame, 32 frames per iteration.
void BM_Parse(benchmark::State& state) {
    const Corpus& c = corpus();
    std::array<ParsedFrame, kBurst> out;
    size_t base = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < kBurst; ++i) {
            benchmark::DoNotOptimize(parse_frame(c.frame(base + i), out[i]));
        }
        benchmark::ClobberMemory();
        base = base + kBurst == c.size() ? 0 : base + kBurst;
    }
    report(state, kBurst);
}
BENCHMARK(BM_Parse);

// Rule match: VIP lookup + interval search, on parsed VIP-bound IP frames.
void BM_RuleMatch(benchmark::State& state) {
    const auto n = static_cast<unsigned>(state.range(0));
    const Snapshot& s = snapshot(n);
    std::vector<FlowKey> keys;
    for (const ParsedFrame& p : parsed())
        if ((p.kind == FrameKind::ipv4 || p.kind == FrameKind::ipv6) && (p.key.flags & kHasPorts) &&
            s.vip_index(p.key.dst) != kNoVip)
            keys.push_back(p.key);
    keys.resize(keys.size() / kBurst * kBurst);
    size_t base = 0;
    for (auto _ : state) {
        uint32_t acc = 0;
        for (size_t i = 0; i < kBurst; ++i) {
            const FlowKey& k = keys[base + i];
            acc += s.rules.match(s.vip_index(k.dst), k.proto, k.dport);
        }
        benchmark::DoNotOptimize(acc);
        base = base + kBurst == keys.size() ? 0 : base + kBurst;
    }
    report(state, kBurst);
    state.SetLabel(rules_label(n));
}
BENCHMARK(BM_RuleMatch)->Arg(0)->Arg(1)->Arg(64)->Arg(1024);

// Affinity hash + bucket index, per affinity mode, on every IP key.
void BM_Hash(benchmark::State& state) {
    const auto a = static_cast<Affinity>(state.range(0));
    std::vector<FlowKey> keys;
    for (const ParsedFrame& p : parsed())
        if (p.kind == FrameKind::ipv4 || p.kind == FrameKind::ipv6) keys.push_back(p.key);
    keys.resize(keys.size() / kBurst * kBurst);
    size_t base = 0;
    for (auto _ : state) {
        uint32_t acc = 0;
        for (size_t i = 0; i < kBurst; ++i)
            acc += bucket_of(affinity_hash(keys[base + i], a, 0x5eed), kDefaultBuckets);
        benchmark::DoNotOptimize(acc);
        base = base + kBurst == keys.size() ? 0 : base + kBurst;
    }
    report(state, kBurst);
    state.SetLabel(a == Affinity::none ? "affinity=none" : a == Affinity::single ? "affinity=single"
                                                                                  : "affinity=network");
}
BENCHMARK(BM_Hash)->Arg(0)->Arg(1)->Arg(2);

// decide() one frame at a time on already parsed frames (all kinds).
void BM_Decide(benchmark::State& state) {
    const auto n = static_cast<unsigned>(state.range(0));
    const Snapshot& s = snapshot(n);
    const auto& p = parsed();
    size_t base = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < kBurst; ++i) benchmark::DoNotOptimize(decide(p[base + i], s));
        base = base + kBurst == p.size() ? 0 : base + kBurst;
    }
    report(state, kBurst);
    state.SetLabel(rules_label(n));
}
BENCHMARK(BM_Decide)->Arg(0)->Arg(1)->Arg(64)->Arg(1024);

// The worker's per-burst work without DPDK: parse 32 frames, decide_burst,
// tally verdicts (as the per-lcore counters do). Second argument: how many
// frames of the corpus the loop cycles through: 10240 (cold: 21 MB of
// mbuf-like slots, as a deep RX ring) or 256 (hot: 512 KB, fits L2, as when
// the PMD has just written the frames, e.g. net_pcap's copy).
void BM_Burst(benchmark::State& state) {
    const auto n = static_cast<unsigned>(state.range(0));
    const auto window = static_cast<size_t>(state.range(1));
    const Snapshot& s = snapshot(n);
    const Corpus& c = corpus();
    std::array<ParsedFrame, kBurst> frames;
    std::array<Decision, kBurst> out;
    std::array<uint64_t, kVerdictCount> verdicts{};
    std::array<uint64_t, kParseErrorCount> errors{};
    size_t base = 0;
    for (auto _ : state) {
        uint16_t ok = 0;
        for (size_t i = 0; i < kBurst; ++i) {
            const ParseError e = parse_frame(c.frame(base + i), frames[ok]);
            if (e == ParseError::none) ++ok;
            else ++errors[static_cast<unsigned>(e)];
        }
        decide_burst(std::span<const ParsedFrame>(frames.data(), ok), s,
                     std::span<Decision>(out.data(), ok));
        for (uint16_t i = 0; i < ok; ++i) ++verdicts[static_cast<unsigned>(out[i].verdict)];
        benchmark::ClobberMemory();
        base = base + kBurst == window ? 0 : base + kBurst;
    }
    benchmark::DoNotOptimize(verdicts);
    benchmark::DoNotOptimize(errors);
    report(state, kBurst);
    // Share of the mix this node accepts / passes (a sanity check of the mix).
    uint64_t total = 0, local = 0;
    for (unsigned v = 0; v < kVerdictCount; ++v) {
        total += verdicts[v];
        if (action_of(static_cast<Verdict>(v)) == Action::to_local) local += verdicts[v];
    }
    state.counters["to_local_pct"] = total ? 100.0 * static_cast<double>(local) / static_cast<double>(total) : 0;
    state.SetLabel(std::string(rules_label(n)) + (window < c.size() ? " hot" : " cold"));
}
BENCHMARK(BM_Burst)
    ->ArgNames({"rules", "frames"})
    ->Args({0, kFlows})->Args({1, kFlows})->Args({64, kFlows})->Args({1024, kFlows})
    ->Args({0, 256})->Args({1024, 256});

// ---------------------------------------------------------------- connections

// Distinct client->VIP TCP 5-tuples (client 172.16.0.0/12 + port, VIP :443).
ConnKey synthetic_conn(uint32_t i) {
    ConnKey k;
    k.src = {172, static_cast<uint8_t>(16 + ((i >> 24) & 15)), static_cast<uint8_t>(i >> 16),
             static_cast<uint8_t>(i >> 8)};
    k.dst = {10, 0, 0, static_cast<uint8_t>(100 + (i & 3))};
    k.sport = static_cast<uint16_t>(1024 + ((i & 0xff) << 6 | (i >> 28)));
    k.dport = 443;
    k.proto = 6;
    k.family = 4;
    return k;
}

constexpr uint64_t kNow = 1'000'000'000'000ull;  // any time; nothing expires during a run

// Steady state: two whole aging sweeps under s (the first may have started
// before the warm-up's inserts), after which ConnTable::may_hold_foreign(s)
// is false when no foreign connection is held.
void sweep(ConnTable& t, uint64_t now, const Snapshot& s) {
    for (int i = 0; i < 2; ++i)
        while (!t.expire(now, 1u << 20, &s).sweep_completed) {
        }
}

// A table of `capacity` filled with `live` established connections.
std::unique_ptr<ConnTable> filled_table(uint32_t capacity, uint32_t live) {
    ConnTable::Config cfg;
    cfg.capacity = capacity;
    auto t = std::make_unique<ConnTable>(cfg);
    for (uint32_t i = 0; i < live; ++i) {
        const ConnKey k = synthetic_conn(i);
        t->insert(k, t->hash(k), ConnState::established, 0, i % kDefaultBuckets, kNow);
    }
    return t;
}

void conn_memory(benchmark::State& state, const ConnTable& t) {
    const double bytes = static_cast<double>(t.slots()) * ConnTable::kBytesPerSlot;
    state.counters["table_MiB"] = bytes / (1024.0 * 1024.0);
    state.counters["bytes_per_conn"] = bytes / t.capacity();
    state.counters["live"] = static_cast<double>(t.stats().entries);
}

// Lookup of live connections (hits) in random order, in a table of capacity
// C filled to 90%: the per-packet cost for an established flow. 32 lookups
// per iteration, hashes computed in the loop, tags prefetched a burst ahead.
void BM_ConnFindHit(benchmark::State& state) {
    const auto cap = static_cast<uint32_t>(state.range(0));
    const uint32_t live = cap / 10 * 9;
    auto t = filled_table(cap, live);
    std::vector<ConnKey> probe(65536);
    std::mt19937 rng(7);
    for (auto& k : probe) k = synthetic_conn(rng() % live);
    size_t base = 0;
    uint64_t found = 0;
    for (auto _ : state) {
        std::array<uint64_t, kBurst> h;
        for (size_t i = 0; i < kBurst; ++i) {
            h[i] = t->hash(probe[base + i]);
            t->prefetch(h[i]);
        }
        for (size_t i = 0; i < kBurst; ++i) found += t->find(probe[base + i], h[i], kNow) != nullptr;
        base = base + kBurst == probe.size() ? 0 : base + kBurst;
    }
    benchmark::DoNotOptimize(found);
    report(state, kBurst);
    conn_memory(state, *t);
    state.counters["hit_pct"] = 100.0 * static_cast<double>(found) /
                                (static_cast<double>(state.iterations()) * kBurst);
}
BENCHMARK(BM_ConnFindHit)->Arg(1 << 16)->Arg(1 << 18)->Arg(1 << 20)->Arg(1 << 21);

// Lookup misses (new flows) in the same tables.
void BM_ConnFindMiss(benchmark::State& state) {
    const auto cap = static_cast<uint32_t>(state.range(0));
    const uint32_t live = cap / 10 * 9;
    auto t = filled_table(cap, live);
    std::vector<ConnKey> probe(65536);
    for (uint32_t i = 0; i < probe.size(); ++i) probe[i] = synthetic_conn(live + 1 + i);
    size_t base = 0;
    uint64_t found = 0;
    for (auto _ : state) {
        std::array<uint64_t, kBurst> h;
        for (size_t i = 0; i < kBurst; ++i) {
            h[i] = t->hash(probe[base + i]);
            t->prefetch(h[i]);
        }
        for (size_t i = 0; i < kBurst; ++i) found += t->find(probe[base + i], h[i], kNow) != nullptr;
        base = base + kBurst == probe.size() ? 0 : base + kBurst;
    }
    benchmark::DoNotOptimize(found);
    report(state, kBurst);
    conn_memory(state, *t);
}
BENCHMARK(BM_ConnFindMiss)->Arg(1 << 16)->Arg(1 << 20);

// Filling an empty table to 90% of its capacity, one insert per new flow.
void BM_ConnInsert(benchmark::State& state) {
    const auto cap = static_cast<uint32_t>(state.range(0));
    const uint32_t n = cap / 10 * 9;
    ConnTable::Config cfg;
    cfg.capacity = cap;
    ConnTable t(cfg);
    std::vector<ConnKey> keys(n);
    for (uint32_t i = 0; i < n; ++i) keys[i] = synthetic_conn(i);
    for (auto _ : state) {
        state.PauseTiming();
        t.clear();
        state.ResumeTiming();
        for (uint32_t i = 0; i < n; ++i)
            benchmark::DoNotOptimize(t.insert(keys[i], t.hash(keys[i]), ConnState::syn, 0, 0, kNow));
    }
    report(state, n);
    conn_memory(state, t);
    state.counters["insert_failed"] = static_cast<double>(t.stats().insert_failed);
}
BENCHMARK(BM_ConnInsert)->Arg(1 << 16)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

// The aging sweep the worker runs between bursts: ns per slot examined
// (nothing is due), over a table filled to `fill` percent of its capacity.
// The worker's cost per packet is per_slot x budget per loop / packets per loop.
void BM_ConnExpireSweep(benchmark::State& state) {
    const auto cap = static_cast<uint32_t>(state.range(0));
    auto t = filled_table(cap, static_cast<uint32_t>(uint64_t{cap} * state.range(1) / 100));
    const Snapshot& s = snapshot(0);
    constexpr uint32_t kBudget = 1024;
    for (auto _ : state) benchmark::DoNotOptimize(t->expire(kNow, kBudget, &s));
    const auto slots = static_cast<double>(state.iterations()) * kBudget;
    state.SetItemsProcessed(static_cast<int64_t>(slots));
    state.counters["per_slot"] =
        benchmark::Counter(slots, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    conn_memory(state, *t);
}
BENCHMARK(BM_ConnExpireSweep)
    ->ArgNames({"capacity", "fill_pct"})
    ->Args({1 << 18, 1})->Args({1 << 18, 90})->Args({1 << 20, 90});

// The burst with connection persistence, as the worker runs it: parse,
// decide_burst, apply_persistence_burst (the flows this host accepts are
// tracked), cold frames, seed rules, table capacity range(0) (2^18 default).
// range(1) = 1: steady state: the table was swept under the snapshot
// first (as the worker's aging does within milliseconds), so it is known to
// hold no foreign connection and packets owned elsewhere skip the lookup;
// 0: every TCP packet looks the table up (right after a snapshot change).
// range(2) = 1: extended affinity (affinity_timeout_s = 300) on the rules
// with client affinity: owned SYNs also record the client (TCP and UDP).
void BM_BurstPersist(benchmark::State& state) {
    static const std::shared_ptr<const Snapshot> ext = make_snapshot(0, 300);
    const Snapshot& s = state.range(2) != 0 ? *ext : snapshot(0);
    const Corpus& c = corpus();
    ConnTable::Config cfg;
    cfg.capacity = static_cast<uint32_t>(state.range(0));
    const bool swept = state.range(1) != 0;
    ConnTable t(cfg);
    std::array<ParsedFrame, kBurst> frames;
    std::array<Decision, kBurst> out;
    std::array<uint64_t, kVerdictCount> verdicts{};
    uint64_t now = kNow;
    size_t base = 0;
    auto burst = [&] {
        uint16_t ok = 0;
        for (size_t i = 0; i < kBurst; ++i)
            if (parse_frame(c.frame(base + i), frames[ok]) == ParseError::none) ++ok;
        const std::span<const ParsedFrame> fs(frames.data(), ok);
        const std::span<Decision> ds(out.data(), ok);
        decide_burst(fs, s, ds);
        apply_persistence_burst(fs, ds, s, t, now);
        for (uint16_t i = 0; i < ok; ++i) ++verdicts[static_cast<unsigned>(out[i].verdict)];
        now += 1000;  // 1 us per burst
        base = base + kBurst == c.size() ? 0 : base + kBurst;
    };
    // Warm-up outside the timed loop: one pass over the corpus tracks every
    // flow this host accepts; then, for the steady state, one whole sweep.
    for (size_t i = 0; i < c.size(); i += kBurst) burst();
    if (swept) {
        sweep(t, now, s);
    }
    for (auto _ : state) burst();
    benchmark::DoNotOptimize(verdicts);
    report(state, kBurst);
    state.counters["conns"] = static_cast<double>(t.stats().entries);
    state.counters["may_hold_foreign"] = t.may_hold_foreign(s) ? 1 : 0;
}
BENCHMARK(BM_BurstPersist)
    ->ArgNames({"capacity", "swept", "ext_affinity"})
    ->Args({1 << 18, 0, 0})->Args({1 << 18, 1, 0})->Args({1 << 18, 0, 1})->Args({1 << 18, 1, 1});

// core::process_burst's source over frames copied into PMD-like slots, and a
// sink that counts verdicts (what the worker's sink does besides TX).
struct SlotSource {
    uint8_t* const* data;
    const uint16_t* length;
    std::span<const uint8_t> frame(uint16_t i) const noexcept { return {data[i], length[i]}; }
    void* handle(uint16_t i) const noexcept { return data[i]; }
    void prefetch(uint16_t) const noexcept {}
};

struct TallySink {
    std::array<uint64_t, kVerdictCount>* verdicts;
    void heartbeat(void*) noexcept { ++(*verdicts)[static_cast<unsigned>(Verdict::heartbeat)]; }
    void emit(void*, const ParsedFrame*, const Decision& d) noexcept {
        ++(*verdicts)[static_cast<unsigned>(d.verdict)];
    }
    void released(void*, const Decision& d) noexcept { ++(*verdicts)[static_cast<unsigned>(d.verdict)]; }
};

// Frames copied into mbuf-like slots of a small recycled pool, as net_pcap's
// infinite_rx copies each frame into a fresh mbuf that the mempool cache
// recycles (the PMD's part of a received frame).
struct SlotPool {
    static constexpr size_t kSlots = 512;  // mempool cache scale
    std::vector<uint8_t> bytes = std::vector<uint8_t>(kSlots * kSlot);
    size_t next = 0;
    // Copies frames [base, base + kBurst) of c into the next slots.
    void copy_burst(const Corpus& c, size_t base, uint8_t* (&data)[kBurst]) noexcept {
        for (size_t i = 0; i < kBurst; ++i) {
            const auto f = c.frame(base + i);
            data[i] = bytes.data() + next * kSlot;
            next = (next + 1) % kSlots;
            std::memcpy(data[i], f.data(), f.size());
        }
    }
};

// What core::process_burst needs besides the snapshot and the connection
// table, with a verdict tally as its sink. Not movable (the sink and the
// releaser point into it).
struct PipelineRig {
    FragTable frags;
    std::unique_ptr<BurstScratch> scratch = std::make_unique<BurstScratch>();
    std::array<uint64_t, kVerdictCount> verdicts{};
    TallySink sink{&verdicts};
    FragReleaser releaser = frag_releaser(sink);
    uint64_t bursts = 0;

    explicit PipelineRig(const FragTable::Config& fc = FragTable::Config{}) : frags(fc) {}
    PipelineRig(const PipelineRig&) = delete;
    PipelineRig& operator=(const PipelineRig&) = delete;

    // One burst of kBurst frames; fragment expiry every `expire_every` bursts
    // (the worker: every 64 poll loops).
    void run(uint8_t* const* data, const uint16_t* length, const Snapshot& s, ConnTable& t, uint64_t now,
             unsigned expire_every = 64) noexcept {
        SlotSource src{data, length};
        const BurstContext ctx{&s, &t, &frags, nlbd::fixture::kHeartbeatEthertype, now};
        process_burst(src, kBurst, ctx, *scratch, sink);
        if (++bursts % expire_every == 0) frags.expire(now, releaser);
    }
};

// The worker's decision work as the end-to-end run sees it: every frame is
// first copied into an mbuf-like slot taken from a small LIFO-recycled pool
// (as net_pcap's infinite_rx copies each frame into a fresh mbuf that the
// mempool cache recycles), then parse, decide_burst and
// apply_persistence_burst (steady state: swept table, capacity 2^18, ~2.5k
// live connections), verdict tally. Frames come from the corpus in order
// (the whole mix, 10240 frames). What it leaves out: the PMD's own work, the
// worker's dispatch/counters/TX, aging. Stage timings of the same loop:
// range(0) = 0: copy only; 1: + parse; 2: + decide_burst; 3: + persistence;
// 4: copy + core::process_burst (what the worker runs: the fast path, the
// early exit, fragments, the sink's tally).
void BM_CopyPipeline(benchmark::State& state) {
    const unsigned upto = static_cast<unsigned>(state.range(0));
    const Snapshot& s = snapshot(0);
    const Corpus& c = corpus();
    SlotPool pool;
    ConnTable t(ConnTable::Config{});
    std::array<ParsedFrame, kBurst> frames;
    std::array<Decision, kBurst> out;
    PipelineRig rig;
    std::array<uint64_t, kVerdictCount>& verdicts = rig.verdicts;
    uint64_t now = kNow;
    size_t base = 0;
    auto burst = [&] {
        uint8_t* data[kBurst];
        pool.copy_burst(c, base, data);
        if (upto == 4) {
            rig.run(data, &c.length[base], s, t, now);
        } else if (upto >= 1) {
            uint16_t ok = 0;
            for (size_t i = 0; i < kBurst; ++i)
                if (parse_frame({data[i], c.length[base + i]}, frames[ok]) == ParseError::none) ++ok;
            const std::span<const ParsedFrame> fs(frames.data(), ok);
            const std::span<Decision> ds(out.data(), ok);
            if (upto >= 2) decide_burst(fs, s, ds);
            if (upto >= 3) apply_persistence_burst(fs, ds, s, t, now);
            if (upto >= 2)
                for (uint16_t i = 0; i < ok; ++i) ++verdicts[static_cast<unsigned>(out[i].verdict)];
        }
        benchmark::ClobberMemory();
        now += 1000;
        base = base + kBurst == c.size() ? 0 : base + kBurst;
    };
    for (size_t i = 0; i < c.size(); i += kBurst) burst();
    sweep(t, now, s);
    for (auto _ : state) burst();
    benchmark::DoNotOptimize(verdicts);
    report(state, kBurst);
    static const char* const kStage[] = {"copy", "copy+parse", "copy+parse+decide",
                                         "copy+parse+decide+persist", "copy+process_burst"};
    state.SetLabel(kStage[upto]);
    state.counters["conns"] = static_cast<double>(t.stats().entries);
}
BENCHMARK(BM_CopyPipeline)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Arg(4);

// ---------------------------------------------------------------- process_burst

// The fixture table (tests/support/fixtures.hpp, what pipeline_test checks)
// through core::process_burst on host 1 of the fixture cluster: 64
// variants of the table (distinct clients), bursts of 32 frames copied into
// PMD-like slots, swept table. range(0) = 0: copy only; 1: copy +
// process_burst. expected_pct: frames whose verdict is one the table allows
// on some host (100 unless the pipeline broke).
void BM_Fixtures(benchmark::State& state) {
    const bool work = state.range(0) != 0;
    static const auto snap = nlbd::fixture::fixture_snapshot(1);
    const Snapshot& s = *snap;
    struct Entry {
        Bytes bytes;
        Verdict taken, left;
    };
    static const std::vector<Entry> entries = [] {
        std::vector<Entry> e;
        for (uint32_t v = 0; v < 64; ++v)
            for (const auto& f : nlbd::fixture::fixture_table(v))
                for (const Bytes& b : f.frames) e.push_back({b, f.taken, f.left});
        return e;
    }();
    const size_t n = entries.size() / kBurst * kBurst;
    Corpus c;
    c.arena.assign(n * kSlot, 0);
    for (size_t i = 0; i < n; ++i) {
        std::memcpy(c.arena.data() + i * kSlot, entries[i].bytes.data(), entries[i].bytes.size());
        c.length.push_back(static_cast<uint16_t>(entries[i].bytes.size()));
    }
    SlotPool pool;
    ConnTable::Config cc;
    cc.capacity = 1u << 16;
    ConnTable t(cc);
    // The clock advances 1 us per burst: the table's lone fragments time out
    // within a pass over the corpus (20 bursts), as they would in a second.
    FragTable::Config fc;
    fc.timeout_ns = 20'000;
    PipelineRig rig(fc);
    std::array<uint64_t, kVerdictCount>& verdicts = rig.verdicts;
    uint64_t now = kNow;
    size_t base = 0;
    auto burst = [&] {
        uint8_t* data[kBurst];
        pool.copy_burst(c, base, data);
        if (work) rig.run(data, &c.length[base], s, t, now, 8);
        benchmark::ClobberMemory();
        now += 1000;
        base = base + kBurst == n ? 0 : base + kBurst;
    };
    for (size_t i = 0; i < n; i += kBurst) burst();
    sweep(t, now, s);
    verdicts = {};
    for (auto _ : state) burst();
    rig.frags.expire(now + 10'000'000'000ull, rig.releaser);
    report(state, kBurst);
    state.SetLabel(work ? "copy+process_burst" : "copy");
    if (work) {
        // Check, not timing: every verdict is one the table allows.
        std::array<bool, kVerdictCount> allowed{};
        for (const Entry& e : entries) allowed[static_cast<unsigned>(e.taken)] = allowed[static_cast<unsigned>(e.left)] = true;
        uint64_t total = 0, ok = 0;
        for (unsigned v = 0; v < kVerdictCount; ++v) {
            total += verdicts[v];
            if (allowed[v]) ok += verdicts[v];
        }
        state.counters["expected_pct"] = total ? 100.0 * static_cast<double>(ok) / static_cast<double>(total) : 0;
    }
}
BENCHMARK(BM_Fixtures)->Arg(0)->Arg(1);

// ---------------------------------------------------------------- per class

// The three kinds of packet whose cost sets a cluster's capacity (issue 15),
// each alone, 64-byte TCP/IPv4 frames toward VIP:443 (seed rules: multiple
// hosts, affinity none), this node host 1 of 3, swept table (steady state):
//   foreign: owned by another host (not_owner): what every host spends on
//            the (N-1)/N of the traffic it drops;
//   known:   ACKs of connections this host tracks (accepted, table hit);
//   new:     SYNs this host owns (accepted, table miss + insert); the table
//            is cleared (untimed) when the 16384 distinct SYNs are used up.
// Stages as BM_CopyPipeline: range(1) = 0 copy only (the PMD's part), 1 +
// parse, 2 + decide_burst, 3 + persistence (the whole decision), 4 the
// whole decision as the worker makes it: core::process_burst (with the
// early exit for foreign frames); the difference between 3 (or 4) and 0 is
// nlbd's own work.
struct ClassCorpus {
    Corpus frames;
    size_t count = 0;
};

ClassCorpus class_corpus(unsigned cls) {
    const Snapshot& s = snapshot(0);
    constexpr size_t kWant = 16384;
    ClassCorpus out;
    out.frames.arena.assign(kWant * kSlot, 0);
    for (uint32_t i = 0; out.count < kWant && i < 64 * kWant; ++i) {
        // The fixture table's "tcp4 443 syn" / "tcp4 443 ack" frames.
        const Bytes f = nlbd::fixture::tcp4(i, nlbd::fixture::kVip4[i % 4], 443,
                                            cls == 2 ? nlbd::testing::kSyn : nlbd::testing::kAck);
        ParsedFrame p;
        if (parse_frame({f.data(), f.size()}, p) != ParseError::none) std::abort();
        const Verdict v = decide(p, s).verdict;
        if ((cls == 0) != (v == Verdict::not_owner) || (cls != 0 && v != Verdict::accepted)) continue;
        std::memcpy(out.frames.arena.data() + out.count * kSlot, f.data(), f.size());
        out.frames.length.push_back(static_cast<uint16_t>(f.size()));
        out.frames.kind.push_back("tcp4");
        ++out.count;
    }
    if (out.count != kWant) std::abort();
    return out;
}

void BM_ByClass(benchmark::State& state) {
    static const char* const kClass[] = {"foreign", "known", "new"};
    const auto cls = static_cast<unsigned>(state.range(0));
    const auto upto = static_cast<unsigned>(state.range(1));
    const bool work = upto != 0;
    static std::array<std::optional<ClassCorpus>, 3> cache;
    if (!cache[cls]) cache[cls] = class_corpus(cls);
    const ClassCorpus& cc = *cache[cls];
    const Snapshot& s = snapshot(0);
    SlotPool pool;
    ConnTable t(ConnTable::Config{});
    std::array<ParsedFrame, kBurst> frames;
    std::array<Decision, kBurst> out;
    PipelineRig rig;
    std::array<uint64_t, kVerdictCount>& verdicts = rig.verdicts;
    uint64_t now = kNow;
    size_t base = 0;
    auto burst = [&](bool timed) {
        uint8_t* data[kBurst];
        pool.copy_burst(cc.frames, base, data);
        if (upto == 4 && timed) {
            // Stage 4: core::process_burst, as the worker calls it.
            rig.run(data, &cc.frames.length[base], s, t, now);
        } else if (work) {
            uint16_t ok = 0;
            for (size_t i = 0; i < kBurst; ++i) {
                const std::span<const uint8_t> raw(data[i], cc.frames.length[base + i]);
                if (parse_frame(raw, frames[ok]) == ParseError::none) ++ok;
            }
            const std::span<const ParsedFrame> fs(frames.data(), ok);
            const std::span<Decision> ds(out.data(), ok);
            if (upto >= 2 || !timed) decide_burst(fs, s, ds);
            if (upto >= 3 || !timed) apply_persistence_burst(fs, ds, s, t, now);
            if (upto >= 2)
                for (uint16_t i = 0; i < ok; ++i) ++verdicts[static_cast<unsigned>(out[i].verdict)];
        }
        benchmark::ClobberMemory();
        now += 1000;
        base += kBurst;
        if (base == cc.count) {
            base = 0;
            if (cls == 2 && timed) {  // every SYN again new
                state.PauseTiming();
                t.clear();
                state.ResumeTiming();
            }
        }
    };
    // Warm-up: known connections are tracked (adopted) by one pass; then a
    // whole sweep, so that foreign packets skip the lookup (steady state).
    for (size_t i = 0; i < cc.count; i += kBurst) burst(false);
    sweep(t, now, s);
    if (cls == 2) t.clear();
    verdicts = {};
    for (auto _ : state) burst(true);
    benchmark::DoNotOptimize(verdicts);
    report(state, kBurst);
    static const char* const kStage[] = {" copy", " copy+parse", " copy+parse+decide", " copy+parse+decide+persist",
                                         " copy+process_burst"};
    state.SetLabel(std::string(kClass[cls]) + kStage[upto]);
    if (upto >= 2) {
        // The verdict every frame of the class must get (a check, not a timing).
        const Verdict want = cls == 0 ? Verdict::not_owner : Verdict::accepted;
        uint64_t total = 0;
        for (uint64_t v : verdicts) total += v;
        state.counters["expected_pct"] =
            total ? 100.0 * static_cast<double>(verdicts[static_cast<unsigned>(want)]) / static_cast<double>(total) : 0;
    }
}
BENCHMARK(BM_ByClass)
    ->ArgNames({"class", "stage"})
    ->ArgsProduct({{0, 1, 2}, {0, 1, 2, 3, 4}});

// ---------------------------------------------------------------- bucket map

std::vector<MemberWeight> hosts(unsigned n, HostId skip = kNoHost) {
    std::vector<MemberWeight> m;
    for (unsigned h = 1; h <= n; ++h)
        if (h != skip) m.push_back({static_cast<HostId>(h), 50});
    return m;
}

// Cold build of one rule's map for 64 equal hosts x B buckets, with the
// map's quality: share of buckets that move when one host (id 17) is lost
// (ideal: exactly its own 1/64 = 1.5625%), and the worst deviation from the
// fair share in buckets (SPEC: +-1).
void BM_BucketMapBuild(benchmark::State& state) {
    const auto buckets = static_cast<uint32_t>(state.range(0));
    const auto all = hosts(64);
    for (auto _ : state) benchmark::DoNotOptimize(build_bucket_map(all, buckets, 0x5eed));

    const auto before = build_bucket_map(all, buckets, 0x5eed);
    const auto after = rebalance_bucket_map(before, hosts(64, 17), buckets, 0x5eed);
    uint32_t moved = 0;
    for (uint32_t b = 0; b < buckets; ++b) moved += before[b] != after[b];
    std::array<uint32_t, 65> count{};
    for (HostId h : before) ++count[h];
    double worst = 0;
    const double fair = static_cast<double>(buckets) / 64.0;
    for (unsigned h = 1; h <= 64; ++h)
        worst = std::max(worst, std::abs(static_cast<double>(count[h]) - fair));
    state.counters["buckets_moved_pct"] = 100.0 * moved / buckets;
    state.counters["ideal_moved_pct"] = 100.0 * count[17] / buckets;
    state.counters["max_dev_buckets"] = worst;
}
BENCHMARK(BM_BucketMapBuild)->Arg(60)->Arg(1024)->Arg(4096)->Arg(65536)->Unit(benchmark::kMicrosecond);

// Minimal-movement rebalance on host loss (what convergence runs per rule).
void BM_BucketMapRebalanceHostLoss(benchmark::State& state) {
    const auto buckets = static_cast<uint32_t>(state.range(0));
    const auto before = build_bucket_map(hosts(64), buckets, 0x5eed);
    const auto survivors = hosts(64, 17);
    for (auto _ : state) benchmark::DoNotOptimize(rebalance_bucket_map(before, survivors, buckets, 0x5eed));
}
BENCHMARK(BM_BucketMapRebalanceHostLoss)->Arg(60)->Arg(1024)->Arg(4096)->Arg(65536)
    ->Unit(benchmark::kMicrosecond);

// Whole snapshot compilation (3 members, B = default) per rule count: what a
// reload or a membership change costs the control thread.
void BM_CompileSnapshot(benchmark::State& state) {
    const auto n = static_cast<unsigned>(state.range(0));
    for (auto _ : state) benchmark::DoNotOptimize(make_snapshot(n));
    state.SetLabel(rules_label(n));
}
BENCHMARK(BM_CompileSnapshot)->Arg(0)->Arg(64)->Arg(1024)->Unit(benchmark::kMillisecond);

// Prints the mix once so the report says what was measured.
struct MixSummary {
    MixSummary() {
        const Corpus& c = corpus();
        std::vector<std::pair<std::string, unsigned>> n;
        size_t bytes = 0;
        for (size_t i = 0; i < c.size(); ++i) {
            bytes += c.length[i];
            auto it = std::find_if(n.begin(), n.end(), [&](auto& e) { return e.first == c.kind[i]; });
            if (it == n.end()) n.emplace_back(c.kind[i], 1);
            else ++it->second;
        }
        std::fprintf(stderr, "flow mix: %zu frames, mean %zu bytes:", c.size(), bytes / c.size());
        for (auto& [k, v] : n) std::fprintf(stderr, " %s %.1f%%", k.c_str(), 100.0 * v / c.size());
        std::fprintf(stderr, "\n");
    }
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    MixSummary summary;
    (void)summary;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
