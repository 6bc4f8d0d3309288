// core::process_burst (core/pipeline.hpp) against the fixture table
// (tests/support/fixtures.hpp): every entry on hosts 1, 2 and 3 of the
// fixture cluster, one burst against frame by frame, the early exit against
// the full path. bench_pipeline times the same table (BM_Fixtures).

#include "nlbd/core/pipeline.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fixtures.hpp"

namespace {

using namespace nlbd;
using namespace nlbd::core;
using nlbd::fixture::Fixture;
using nlbd::fixture::Takers;
using nlbd::testing::Bytes;

constexpr uint64_t kNow = 1'000'000'000'000ull;
constexpr uint64_t kLater = kNow + 10'000'000'000ull;  // past every fragment timeout

// What happened to one frame (identified by its handle).
struct Outcome {
    Verdict verdict = Verdict::count_;
    bool parsed = false;    // emitted with its ParsedFrame
    bool released = false;  // left the FragTable (held first)
    int records = 0;        // must end at exactly 1
};

struct RecordingSink {
    std::vector<std::pair<uintptr_t, Outcome>> log;  // in emission order
    void heartbeat(void* h) { log.push_back({id(h), {Verdict::heartbeat, false, false, 1}}); }
    void emit(void* h, const ParsedFrame* f, const Decision& d) {
        log.push_back({id(h), {d.verdict, f != nullptr, false, 1}});
    }
    void released(void* h, const Decision& d) { log.push_back({id(h), {d.verdict, false, true, 1}}); }
    static uintptr_t id(void* h) { return reinterpret_cast<uintptr_t>(h); }
};

// Frames with handles 1 .. n (0 would be a null handle).
struct VectorSource {
    std::vector<const Bytes*> frames;
    std::vector<uintptr_t> ids;
    int calls = 0;
    std::span<const uint8_t> frame(uint16_t i) {
        ++calls;
        return {frames[i]->data(), frames[i]->size()};
    }
    void* handle(uint16_t i) const { return reinterpret_cast<void*>(ids[i]); }
    void prefetch(uint16_t) const {}
};

// One host of the fixture cluster: snapshot and its own tables.
struct Host {
    std::shared_ptr<const Snapshot> snap;
    std::unique_ptr<ConnTable> conns;
    std::unique_ptr<FragTable> frags;
    BurstScratch scratch;
    RecordingSink sink;
    BurstCounts total;

    explicit Host(HostId self) : snap(nlbd::fixture::fixture_snapshot(self)) {
        ConnTable::Config cc;
        cc.capacity = 1u << 14;
        conns = std::make_unique<ConnTable>(cc);
        frags = std::make_unique<FragTable>(FragTable::Config{});
    }
    // A whole aging sweep under the snapshot: from then on the table cannot
    // hold a foreign connection and the early exit is taken.
    void sweep() {
        for (int i = 0; i < 4 && conns->may_hold_foreign(*snap); ++i)
            while (!conns->expire(kNow, 1u << 20, snap.get()).sweep_completed) {
            }
        ASSERT_FALSE(conns->may_hold_foreign(*snap));
    }
    void run(VectorSource& src, uint64_t now = kNow) {
        const BurstContext ctx{snap.get(), conns.get(), frags.get(), nlbd::fixture::kHeartbeatEthertype, now};
        const BurstCounts c = process_burst(src, static_cast<uint16_t>(src.frames.size()), ctx, scratch, sink);
        total.frames += c.frames;
        total.heartbeats += c.heartbeats;
        total.early_exits += c.early_exits;
        total.parsed += c.parsed;
        for (unsigned e = 0; e < kParseErrorCount; ++e) total.parse_errors[e] += c.parse_errors[e];
    }
    void expire_fragments() {
        const FragReleaser r = frag_releaser(sink);
        frags->expire(kLater, r);
    }
    std::map<uintptr_t, Outcome> outcomes() const {
        std::map<uintptr_t, Outcome> m;
        for (const auto& [id, o] : sink.log) {
            Outcome& x = m[id];
            const int n = x.records + 1;
            x = o;
            x.records = n;
        }
        return m;
    }
};

// The frames of a list of fixtures, handles numbered in order from 1.
struct Batch {
    std::vector<Fixture> fixtures;
    VectorSource src;
    std::vector<std::pair<size_t, size_t>> span_of;  // fixture -> [first, last) handle index
    explicit Batch(std::vector<Fixture> f) : fixtures(std::move(f)) {
        for (const Fixture& x : fixtures) {
            const size_t first = src.frames.size();
            for (const Bytes& b : x.frames) {
                src.frames.push_back(&b);
                src.ids.push_back(src.frames.size());
            }
            span_of.push_back({first, src.frames.size()});
        }
    }
};

std::vector<Fixture> table_variants(uint32_t n) {
    std::vector<Fixture> all;
    for (uint32_t v = 0; v < n; ++v)
        for (Fixture& f : nlbd::fixture::fixture_table(v)) all.push_back(std::move(f));
    return all;
}

// Runs a batch on hosts 1, 2, 3 (in one burst, or frame by frame), expires
// held fragments, and returns each host's outcomes.
std::vector<std::map<uintptr_t, Outcome>> run_cluster(Batch& b, bool one_burst, bool swept,
                                                      std::vector<BurstCounts>* counts = nullptr) {
    std::vector<std::map<uintptr_t, Outcome>> out;
    for (HostId h = 1; h <= 3; ++h) {
        auto host = std::make_unique<Host>(h);
        if (swept) host->sweep();
        if (one_burst) {
            host->run(b.src);
            EXPECT_EQ(b.src.calls, static_cast<int>(b.src.frames.size())) << "frame(i) once per frame";
            b.src.calls = 0;
        } else {
            for (size_t i = 0; i < b.src.frames.size(); ++i) {
                VectorSource one{{b.src.frames[i]}, {b.src.ids[i]}};
                host->run(one);
            }
        }
        host->expire_fragments();
        out.push_back(host->outcomes());
        if (counts != nullptr) counts->push_back(host->total);
    }
    return out;
}

void check_fixture(const Fixture& x, size_t first, size_t last,
                   const std::vector<std::map<uintptr_t, Outcome>>& hosts) {
    int takers = 0;
    HostId taker = kNoHost;
    for (size_t h = 0; h < hosts.size(); ++h) {
        std::optional<Verdict> v;
        for (size_t i = first; i < last; ++i) {
            const auto it = hosts[h].find(i + 1);
            ASSERT_NE(it, hosts[h].end()) << x.name << ": frame " << i - first << " never left host " << h + 1;
            const Outcome& o = it->second;
            EXPECT_EQ(o.records, 1) << x.name << ": frame " << i - first << " on host " << h + 1;
            if (v) {
                EXPECT_EQ(o.verdict, *v) << x.name << ": frames of one fixture split on host " << h + 1;
            }
            v = o.verdict;
            if (x.held) {
                EXPECT_TRUE(o.released) << x.name << ": held, released at expiry";
            }
        }
        ASSERT_TRUE(v.has_value());
        EXPECT_TRUE(*v == x.taken || *v == x.left)
            << x.name << " on host " << h + 1 << ": " << name_of(*v) << ", want " << name_of(x.taken) << " or "
            << name_of(x.left);
        if (*v == x.taken && x.taken != x.left) {
            ++takers;
            taker = static_cast<HostId>(h + 1);
        }
    }
    if (x.takers == Takers::one) {
        EXPECT_EQ(takers, 1) << x.name << ": taken by exactly one host";
        if (x.taker != kNoHost) {
            EXPECT_EQ(taker, x.taker) << x.name;
        }
    }
}

}  // namespace

TEST(Pipeline, EveryFixtureOnEveryHostOfTheCluster) {
    Batch b(nlbd::fixture::fixture_table());
    ASSERT_LE(b.src.frames.size(), kMaxBurst);
    for (bool swept : {false, true}) {
        std::vector<BurstCounts> counts;
        const auto hosts = run_cluster(b, true, swept, &counts);
        for (size_t k = 0; k < b.fixtures.size(); ++k) {
            SCOPED_TRACE(swept ? "swept table (early exit)" : "fresh table");
            check_fixture(b.fixtures[k], b.span_of[k].first, b.span_of[k].second, hosts);
        }
        // What the pipeline counted.
        for (const BurstCounts& c : counts) {
            EXPECT_EQ(c.frames, b.src.frames.size());
            unsigned heartbeats = 0;
            std::array<uint32_t, kParseErrorCount> errors{};
            for (const Fixture& x : b.fixtures) {
                heartbeats += x.heartbeat ? 1 : 0;
                if (x.error != ParseError::none) ++errors[static_cast<unsigned>(x.error)];
            }
            EXPECT_EQ(c.heartbeats, heartbeats);
            for (unsigned e = 0; e < kParseErrorCount; ++e)
                EXPECT_EQ(c.parse_errors[e], errors[e]) << name_of(static_cast<ParseError>(e));
            // A fresh table may hold a foreign connection: no early exit;
            // swept, some foreign frames leave early.
            if (swept) {
                EXPECT_GT(c.early_exits, 0u);
            } else {
                EXPECT_EQ(c.early_exits, 0u);
            }
            EXPECT_EQ(c.frames, c.heartbeats + c.early_exits + c.parsed +
                                    [&] {
                                        uint32_t n = 0;
                                        for (uint32_t e : c.parse_errors) n += e;
                                        return n;
                                    }());
        }
    }
}

// The table covers what it says: each verdict class and each way out.
TEST(Pipeline, FixtureTableCoversEveryWayOut) {
    const auto t = nlbd::fixture::fixture_table();
    std::map<Verdict, int> taken;
    int held = 0, heartbeat = 0, malformed = 0, fragments = 0;
    for (const Fixture& x : t) {
        ++taken[x.taken];
        held += x.held;
        heartbeat += x.heartbeat;
        malformed += x.error != ParseError::none;
        fragments += x.frames.size() > 1;
    }
    for (Verdict v : {Verdict::accepted, Verdict::default_host_accepted, Verdict::arp_replied, Verdict::nd_replied,
                      Verdict::disabled_rule, Verdict::passed_non_vip, Verdict::malformed, Verdict::heartbeat,
                      Verdict::frag_timeout})
        EXPECT_GT(taken[v], 0) << name_of(v);
    EXPECT_GT(held, 0);
    EXPECT_GT(heartbeat, 0);
    EXPECT_GE(malformed, 2);
    EXPECT_GE(fragments, 2);
}

// One burst of many fixtures gives each frame what it gets alone, in the
// same order of emission (fragments released where their first decides).
TEST(Pipeline, OneBurstEqualsFrameByFrame) {
    Batch b(table_variants(6));
    ASSERT_LE(b.src.frames.size(), kMaxBurst);
    for (bool swept : {false, true}) {
        const auto burst = run_cluster(b, true, swept);
        const auto alone = run_cluster(b, false, swept);
        for (size_t h = 0; h < 3; ++h) {
            ASSERT_EQ(burst[h].size(), b.src.frames.size());
            for (const auto& [id, o] : burst[h]) {
                const Outcome& a = alone[h].at(id);
                EXPECT_EQ(o.verdict, a.verdict) << "frame " << id << " on host " << h + 1;
                EXPECT_EQ(o.released, a.released) << "frame " << id;
            }
        }
        for (size_t k = 0; k < b.fixtures.size(); ++k)
            check_fixture(b.fixtures[k], b.span_of[k].first, b.span_of[k].second, burst);
    }
}

// The early exit (swept table) changes nothing a frame gets, and is taken
// only for frames another host owns.
TEST(Pipeline, EarlyExitGivesWhatTheFullPathGives) {
    Batch b(table_variants(6));
    const auto full = run_cluster(b, true, false);
    const auto early = run_cluster(b, true, true);
    for (size_t h = 0; h < 3; ++h)
        for (const auto& [id, o] : full[h]) {
            const Outcome& e = early[h].at(id);
            EXPECT_EQ(o.verdict, e.verdict) << "frame " << id << " on host " << h + 1;
            if (!e.parsed && e.verdict != Verdict::malformed && e.verdict != Verdict::heartbeat && !e.released) {
                EXPECT_EQ(e.verdict, Verdict::not_owner) << "frame " << id << " left early";
            }
        }
}

// Connections through the pipeline: a SYN the host takes is tracked, its
// ACK hits the entry; the other hosts keep dropping the flow.
TEST(Pipeline, ConnectionOfAFixtureIsTrackedByItsTaker) {
    const Bytes syn = nlbd::fixture::tcp4(4242, nlbd::fixture::kVip4[0], 443, nlbd::testing::kSyn);
    const Bytes ack = nlbd::fixture::tcp4(4242, nlbd::fixture::kVip4[0], 443, nlbd::testing::kAck);
    int takers = 0;
    for (HostId h = 1; h <= 3; ++h) {
        Host host(h);
        host.sweep();
        VectorSource s1{{&syn}, {1}};
        host.run(s1);
        const uint64_t inserted = host.conns->stats().inserted;
        VectorSource s2{{&ack}, {2}};
        host.run(s2);
        const auto o = host.outcomes();
        ASSERT_EQ(o.size(), 2u);
        EXPECT_EQ(o.at(1).verdict, o.at(2).verdict);
        if (o.at(1).verdict == Verdict::accepted) {
            ++takers;
            EXPECT_EQ(inserted, 1u);
            EXPECT_EQ(host.conns->stats().inserted, 1u) << "the ACK hits the SYN's entry";
        } else {
            EXPECT_EQ(o.at(1).verdict, Verdict::not_owner);
            EXPECT_EQ(inserted, 0u);
            EXPECT_EQ(host.total.early_exits, 2u) << "foreign frames leave before the table";
        }
    }
    EXPECT_EQ(takers, 1);
}
