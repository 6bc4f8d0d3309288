// Properties of the fragment table (frag_table.hpp): every fragment gets the
// first fragment's decision in any arrival order; early fragments are held
// and released exactly once; bounded memory with oldest-first eviction and
// timeouts; keys never mix.

#include "nlbd/core/frag_table.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

using namespace nlbd;
using namespace nlbd::core;

namespace {

constexpr uint64_t kSec = 1'000'000'000;

FragKey key(uint32_t id, const char* src = "10.0.0.1", const char* dst = "192.0.2.100", uint8_t proto = 17) {
    return FragKey{*IpAddr::parse(src), *IpAddr::parse(dst), id, proto};
}

Decision accepted_by(HostId h) {
    Decision d;
    d.verdict = Verdict::accepted;
    d.owner = h;
    d.rule = 1;
    d.bucket = 42;
    return d;
}

// Records every release: handle -> decision. A handle released twice fails.
struct Sink {
    std::map<void*, Decision> released;
    int duplicates = 0;
    FragReleaser releaser() {
        return FragReleaser{[](void* ctx, void* h, const Decision& d) {
                                auto* s = static_cast<Sink*>(ctx);
                                if (!s->released.emplace(h, d).second) ++s->duplicates;
                            },
                            this};
    }
};

void* handle(uintptr_t n) { return reinterpret_cast<void*>(n); }

}  // namespace

TEST(FragTable, LaterFragmentsAfterTheFirstGetItsDecision) {
    FragTable t({});
    Sink sink;
    t.on_first(key(7), accepted_by(2), 0, sink.releaser());
    for (int i = 0; i < 5; ++i) {
        Decision d;
        ASSERT_EQ(t.on_later(key(7), handle(100 + i), 10, d, sink.releaser()), FragTable::Result::decided);
        EXPECT_EQ(d.verdict, Verdict::accepted);
        EXPECT_EQ(d.owner, 2);
        EXPECT_EQ(d.bucket, 42u);
    }
    EXPECT_TRUE(sink.released.empty());
    EXPECT_EQ(t.stats().held, 0u);
}

TEST(FragTable, EarlyFragmentsAreHeldThenReleasedWithTheFirstsDecision) {
    FragTable t({});
    Sink sink;
    Decision d;
    EXPECT_EQ(t.on_later(key(9), handle(1), 0, d, sink.releaser()), FragTable::Result::held);
    EXPECT_EQ(t.on_later(key(9), handle(2), 1, d, sink.releaser()), FragTable::Result::held);
    EXPECT_EQ(t.stats().held, 2u);
    EXPECT_TRUE(sink.released.empty());
    Decision no;
    no.verdict = Verdict::not_owner;
    no.owner = 3;
    t.on_first(key(9), no, 2, sink.releaser());
    ASSERT_EQ(sink.released.size(), 2u);
    EXPECT_EQ(sink.released[handle(1)].verdict, Verdict::not_owner);
    EXPECT_EQ(sink.released[handle(2)].owner, 3);
    EXPECT_EQ(t.stats().held, 0u);
    // And later ones after the first: decided, not held.
    EXPECT_EQ(t.on_later(key(9), handle(3), 3, d, sink.releaser()), FragTable::Result::decided);
    EXPECT_EQ(d.verdict, Verdict::not_owner);
    EXPECT_EQ(sink.duplicates, 0);
}

TEST(FragTable, KeysDifferingInAnyFieldDoNotMix) {
    FragTable t({});
    Sink sink;
    t.on_first(key(1), accepted_by(1), 0, sink.releaser());
    Decision d;
    const FragKey others[] = {key(2), key(1, "10.0.0.2"), key(1, "10.0.0.1", "192.0.2.101"),
                              key(1, "10.0.0.1", "192.0.2.100", 6), key(1, "::1", "::2")};
    for (const FragKey& k : others)
        EXPECT_EQ(t.on_later(k, handle(5), 1, d, sink.releaser()), FragTable::Result::held);
}

TEST(FragTable, HeldFragmentsTimeOut) {
    FragTable t({.capacity = 16, .max_held = 4, .timeout_ns = 2 * kSec});
    Sink sink;
    Decision d;
    t.on_later(key(1), handle(1), 0, d, sink.releaser());
    t.on_later(key(2), handle(2), kSec, d, sink.releaser());
    t.expire(2 * kSec - 1, sink.releaser());
    EXPECT_TRUE(sink.released.empty());
    t.expire(2 * kSec, sink.releaser());
    ASSERT_EQ(sink.released.size(), 1u);
    EXPECT_EQ(sink.released[handle(1)].verdict, Verdict::frag_timeout);
    t.expire(3 * kSec, sink.releaser());
    EXPECT_EQ(sink.released[handle(2)].verdict, Verdict::frag_timeout);
    EXPECT_EQ(t.stats().timed_out, 2u);
    EXPECT_EQ(t.stats().datagrams, 0u);
    EXPECT_EQ(t.stats().held, 0u);
}

TEST(FragTable, DecisionsAreForgottenAfterTheTimeout) {
    FragTable t({.capacity = 16, .max_held = 4, .timeout_ns = kSec});
    Sink sink;
    t.on_first(key(1), accepted_by(1), 0, sink.releaser());
    Decision d;
    EXPECT_EQ(t.on_later(key(1), handle(1), kSec - 1, d, sink.releaser()), FragTable::Result::decided);
    // A reused IP id much later is a new datagram (expiry also runs inline).
    EXPECT_EQ(t.on_later(key(1), handle(2), 5 * kSec, d, sink.releaser()), FragTable::Result::held);
}

TEST(FragTable, OldestDatagramIsEvictedWhenFull) {
    FragTable t({.capacity = 4, .max_held = 2, .timeout_ns = 100 * kSec});
    Sink sink;
    Decision d;
    for (uint32_t i = 0; i < 4; ++i) t.on_later(key(i), handle(10 + i), i, d, sink.releaser());
    EXPECT_TRUE(sink.released.empty());
    t.on_later(key(99), handle(99), 10, d, sink.releaser());
    ASSERT_EQ(sink.released.size(), 1u);
    EXPECT_EQ(sink.released[handle(10)].verdict, Verdict::frag_evicted);
    EXPECT_EQ(t.stats().evicted, 1u);
    EXPECT_EQ(t.stats().datagrams, 4u);
    // The survivors are intact: the first fragment of datagram 1 releases it.
    t.on_first(key(1), accepted_by(4), 11, sink.releaser());
    EXPECT_EQ(sink.released[handle(11)].verdict, Verdict::accepted);
    // Decided entries are evicted too, oldest first: datagram 1 goes now...
    t.on_first(key(100), accepted_by(1), 12, sink.releaser());
    EXPECT_EQ(sink.released.count(handle(12)), 0u);
    // ...so its next fragment starts over (and evicts datagram 2).
    EXPECT_EQ(t.on_later(key(1), handle(21), 13, d, sink.releaser()), FragTable::Result::held);
    EXPECT_EQ(sink.released[handle(12)].verdict, Verdict::frag_evicted);
    EXPECT_EQ(t.stats().evicted, 3u);
}

TEST(FragTable, TooManyHeldFragmentsForOneDatagramAreRefused) {
    FragTable t({.capacity = 4, .max_held = 3, .timeout_ns = kSec});
    Sink sink;
    Decision d;
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(t.on_later(key(1), handle(i + 1), 0, d, sink.releaser()), FragTable::Result::held);
    EXPECT_EQ(t.on_later(key(1), handle(4), 0, d, sink.releaser()), FragTable::Result::full);
    EXPECT_EQ(t.stats().held, 3u);
    t.on_first(key(1), accepted_by(1), 0, sink.releaser());
    EXPECT_EQ(sink.released.size(), 3u);
    EXPECT_EQ(sink.released.count(handle(4)), 0u);  // the caller dropped it
}

TEST(FragTable, ZeroCapacityTracksNothing) {
    FragTable t({.capacity = 0, .max_held = 4, .timeout_ns = kSec});
    Sink sink;
    Decision d;
    EXPECT_EQ(t.on_later(key(1), handle(1), 0, d, sink.releaser()), FragTable::Result::full);
    t.on_first(key(1), accepted_by(1), 0, sink.releaser());
    EXPECT_EQ(t.stats().datagrams, 0u);
}

TEST(FragTable, EveryHandleIsReleasedExactlyOnceUnderChurn) {
    // Random mix of firsts, laters and expiries over a small table: each held
    // handle comes back exactly once, and the counters stay consistent.
    FragTable t({.capacity = 64, .max_held = 4, .timeout_ns = 1000});
    Sink sink;
    std::mt19937 rng(3);
    std::map<void*, bool> outstanding;  // held and not yet released
    std::map<void*, uint32_t> id_of;
    uint64_t now = 0;
    uintptr_t next = 1;
    for (int i = 0; i < 200000; ++i) {
        now += rng() % 3;
        const FragKey k = key(rng() % 200);
        const unsigned op = rng() % 10;
        if (op == 0) {
            t.on_first(k, accepted_by(static_cast<HostId>(1 + k.id % 4)), now, sink.releaser());
        } else if (op == 1) {
            t.expire(now, sink.releaser());
        } else {
            Decision d;
            void* h = handle(next++);
            const auto r = t.on_later(k, h, now, d, sink.releaser());
            id_of[h] = k.id;
            if (r == FragTable::Result::held) outstanding[h] = true;
            if (r == FragTable::Result::decided) {
                ASSERT_EQ(d.owner, 1 + k.id % 4);
            }
        }
        ASSERT_LE(t.stats().datagrams, 64u);
    }
    t.expire(now + 2000, sink.releaser());
    EXPECT_EQ(sink.duplicates, 0);
    EXPECT_EQ(sink.released.size(), outstanding.size());
    for (const auto& [h, _] : outstanding) EXPECT_EQ(sink.released.count(h), 1u);
    // Released with the right datagram's decision, or dropped for a reason.
    for (const auto& [h, d] : sink.released) {
        if (d.verdict == Verdict::accepted) {
            EXPECT_EQ(d.owner, 1 + id_of[h] % 4);
        } else {
            EXPECT_TRUE(d.verdict == Verdict::frag_timeout || d.verdict == Verdict::frag_evicted);
        }
    }
    EXPECT_EQ(t.stats().held, 0u);
    EXPECT_EQ(t.stats().datagrams, 0u);
    EXPECT_EQ(t.stats().inserted, t.stats().evicted + t.stats().timed_out);
}
