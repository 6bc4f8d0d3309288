// Properties of the per-worker connection table (conn_table.hpp): bounded,
// timeouts per state on a virtual clock, eviction never pushes out an
// established connection unless configured, incremental aging, and the
// held-foreign count a draining host reports.

#include "nlbd/core/conn_table.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

using namespace nlbd;
using namespace nlbd::core;

namespace {

constexpr uint64_t kSec = 1'000'000'000ull;

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

// Distinct client 5-tuples to one VIP: client 10.x.y.z, port from i.
ConnKey key(uint32_t i, uint16_t dport = 80) {
    FlowKey k;
    const uint8_t a[4] = {10, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
                          static_cast<uint8_t>(i)};
    k.src = IpAddr::from_v4(a);
    k.dst = ip("192.0.2.100");
    k.sport = static_cast<uint16_t>(1024 + (i % 50000));
    k.dport = dport;
    k.proto = 6;
    k.flags = kHasPorts;
    return conn_key_of(k);
}

ConnTable::Config small(uint32_t capacity, bool evict_established = false) {
    ConnTable::Config c;
    c.capacity = capacity;
    c.evict_established = evict_established;
    return c;
}

ConnEntry* put(ConnTable& t, const ConnKey& k, ConnState st, uint64_t now = 0, uint16_t rule = 0,
               uint32_t bucket = 0, uint32_t timeout_s = 0) {
    return t.insert(k, t.hash(k), st, rule, bucket, now, timeout_s);
}

ConnEntry* get(ConnTable& t, const ConnKey& k, uint64_t now = 0) { return t.find(k, t.hash(k), now); }

}  // namespace

TEST(ConnTable, FindsWhatWasInsertedAndNothingElse) {
    ConnTable t(small(1024));
    for (uint32_t i = 0; i < 500; ++i) ASSERT_NE(put(t, key(i), ConnState::established, 0, 3, i), nullptr);
    for (uint32_t i = 0; i < 500; ++i) {
        ConnEntry* e = get(t, key(i));
        ASSERT_NE(e, nullptr) << i;
        EXPECT_EQ(e->key, key(i));
        EXPECT_EQ(e->rule, 3);
        EXPECT_EQ(e->bucket, i);
        EXPECT_EQ(e->state, ConnState::established);
    }
    for (uint32_t i = 500; i < 1000; ++i) EXPECT_EQ(get(t, key(i)), nullptr);
    EXPECT_EQ(t.stats().entries, 500u);
    EXPECT_EQ(t.stats().inserted, 500u);
}

TEST(ConnTable, OneConnectionIsOneCacheLine) {
    EXPECT_EQ(sizeof(ConnEntry), 64u);
    EXPECT_EQ(alignof(ConnEntry), 64u);
    ConnTable t(small(1000));
    EXPECT_GE(t.slots(), 1000u);
    EXPECT_EQ(t.slots() % ConnTable::kWays, 0u);
    EXPECT_EQ(ConnTable::kBytesPerSlot, 66u);
}

TEST(ConnTable, CapacityIsAHardBound) {
    ConnTable t(small(1000));
    uint32_t ok = 0;
    for (uint32_t i = 0; i < 5000; ++i) ok += put(t, key(i), ConnState::established) != nullptr;
    EXPECT_EQ(t.stats().entries, 1000u);
    EXPECT_EQ(ok, 1000u);
    EXPECT_EQ(t.stats().insert_failed, 4000u);
    EXPECT_EQ(t.stats().evicted, 0u);
}

TEST(ConnTable, TableFillsToCapacityBeforeRefusing) {
    // Two-choice buckets at <= 80% load: every one of `capacity` inserts fits.
    for (uint32_t cap : {64u, 1000u, 4096u, 100000u, 104857u}) {  // 104857: 80% load
        ConnTable t(small(cap));
        for (uint32_t i = 0; i < cap; ++i) put(t, key(i), ConnState::established);
        EXPECT_EQ(t.stats().entries, cap) << cap;
        EXPECT_EQ(t.stats().insert_failed, 0u) << cap;
    }
}

TEST(ConnTable, SynFloodOfTenTimesCapacityNeverEvictsEstablished) {
    const uint32_t cap = 4096;
    ConnTable t(small(cap));
    const uint32_t established = cap / 2;
    for (uint32_t i = 0; i < established; ++i)
        ASSERT_NE(put(t, key(i), ConnState::established, 0), nullptr);
    for (uint32_t i = 0; i < 10 * cap; ++i)
        put(t, key(1'000'000 + i), ConnState::syn, (1 + i) * 1000);  // within the syn timeout
    for (uint32_t i = 0; i < established; ++i) {
        ConnEntry* e = get(t, key(i), 10 * cap * 1000);
        ASSERT_NE(e, nullptr) << i;
        EXPECT_EQ(e->state, ConnState::established);
    }
    EXPECT_LE(t.stats().entries, cap);
    EXPECT_GT(t.stats().evicted, 0u);
    EXPECT_EQ(t.stats().evicted_established, 0u);
    // The flood keeps only recent half-open entries: the newest SYN is there.
    EXPECT_NE(get(t, key(1'000'000 + 10 * cap - 1), 10 * cap * 1000), nullptr);
}

TEST(ConnTable, SynEvictsOldestHalfOpenFirst) {
    ConnTable t(small(8));  // 2 buckets x 8 ways, capacity 8
    for (uint32_t i = 0; i < 8; ++i) ASSERT_NE(put(t, key(i), ConnState::syn, (i + 1) * kSec), nullptr);
    ASSERT_NE(put(t, key(100), ConnState::syn, 20 * kSec), nullptr);
    EXPECT_EQ(t.stats().evicted, 1u);
    EXPECT_EQ(get(t, key(0), 20 * kSec), nullptr);  // the oldest went
    for (uint32_t i = 1; i < 8; ++i) EXPECT_NE(get(t, key(i), 20 * kSec), nullptr) << i;
}

TEST(ConnTable, EstablishedIsEvictedOnlyWhenConfigured) {
    for (bool evict : {false, true}) {
        ConnTable t(small(64, evict));
        for (uint32_t i = 0; i < 64; ++i) ASSERT_NE(put(t, key(i), ConnState::established, i), nullptr);
        ConnEntry* e = put(t, key(999), ConnState::syn, 100);
        EXPECT_EQ(e != nullptr, evict);
        EXPECT_EQ(t.stats().evicted_established, evict ? 1u : 0u);
        EXPECT_EQ(t.stats().insert_failed, evict ? 0u : 1u);
        EXPECT_EQ(t.stats().entries, 64u);
    }
}

TEST(ConnTable, UdpAffinityYieldsToAdoptedTcpButNotToSyn) {
    ConnTable t(small(8));
    for (uint32_t i = 0; i < 8; ++i)
        ASSERT_NE(put(t, key(i, 53), ConnState::udp, i * kSec, 0, 0, 600), nullptr);
    EXPECT_EQ(put(t, key(100), ConnState::syn, 10 * kSec), nullptr);
    EXPECT_NE(put(t, key(101), ConnState::established, 10 * kSec), nullptr);
    EXPECT_EQ(get(t, key(0, 53), 10 * kSec), nullptr);  // the oldest affinity went
}

TEST(ConnTable, TimeoutsPerStateOnAVirtualClock) {
    ConnTable::Config c = small(1024);
    ASSERT_EQ(c.timeouts.syn_s, 30u);
    ASSERT_EQ(c.timeouts.established_s, 7440u);
    ASSERT_EQ(c.timeouts.fin_s, 10u);
    struct Case {
        ConnState st;
        uint32_t udp_timeout;
        uint64_t alive_s, dead_s;
    };
    const Case cases[] = {
        {ConnState::syn, 0, 30, 31},
        {ConnState::established, 0, 7440, 7441},
        {ConnState::fin, 0, 10, 11},
        {ConnState::udp, 300, 300, 301},
    };
    for (const Case& k : cases) {
        ConnTable t(c);
        const uint64_t t0 = 1000 * kSec;
        put(t, key(1), k.st, t0, 0, 0, k.udp_timeout);
        EXPECT_NE(get(t, key(1), t0 + k.alive_s * kSec), nullptr) << int(k.st);
        EXPECT_EQ(get(t, key(1), t0 + k.dead_s * kSec), nullptr) << int(k.st);
        EXPECT_EQ(t.stats().expired[static_cast<unsigned>(k.st)], 1u);
        EXPECT_EQ(t.stats().entries, 0u);
    }
}

TEST(ConnTable, ActivityRefreshesAndStateChangesTheTimeout) {
    ConnTable t(small(64));
    ConnEntry* e = put(t, key(1), ConnState::syn, 0);
    e->last_seen_ns = 25 * kSec;
    t.set_state(e, ConnState::established);
    EXPECT_NE(get(t, key(1), 25 * kSec + 7000 * kSec), nullptr);
    e = get(t, key(1), 7100 * kSec);
    ASSERT_NE(e, nullptr);
    e->last_seen_ns = 7100 * kSec;
    t.set_state(e, ConnState::fin);
    EXPECT_EQ(get(t, key(1), 7111 * kSec), nullptr);
    EXPECT_EQ(t.stats().expired[static_cast<unsigned>(ConnState::fin)], 1u);
}

TEST(ConnTable, RemoveFreesTheSlotAndCounts) {
    ConnTable t(small(8));
    for (uint32_t i = 0; i < 8; ++i) put(t, key(i), ConnState::established);
    t.remove(get(t, key(3)));
    EXPECT_EQ(get(t, key(3)), nullptr);
    EXPECT_EQ(t.stats().removed, 1u);
    EXPECT_EQ(t.stats().entries, 7u);
    EXPECT_NE(put(t, key(50), ConnState::established), nullptr);
    t.clear();
    EXPECT_EQ(t.stats().entries, 0u);
    EXPECT_EQ(get(t, key(50)), nullptr);
}

TEST(ConnTable, ExpireIsIncrementalAndCountsPerState) {
    ConnTable t(small(4096));
    for (uint32_t i = 0; i < 300; ++i) put(t, key(i), ConnState::syn, 0);
    for (uint32_t i = 300; i < 500; ++i) put(t, key(i), ConnState::established, 0);
    for (uint32_t i = 500; i < 600; ++i) put(t, key(i), ConnState::fin, 0);
    const uint64_t now = 60 * kSec;  // syn and fin idle past, established not
    const uint32_t budget = 256;
    uint32_t calls = 0, expired = 0;
    ExpireResult r;
    do {
        r = t.expire(now, budget, nullptr);
        ++calls;
        expired += r.expired;
        if (!r.sweep_completed) {
            EXPECT_EQ(r.scanned, budget);
        }
    } while (!r.sweep_completed);
    EXPECT_EQ(calls, (t.slots() + budget - 1) / budget);
    EXPECT_EQ(expired, 400u);
    EXPECT_EQ(t.stats().expired[static_cast<unsigned>(ConnState::syn)], 300u);
    EXPECT_EQ(t.stats().expired[static_cast<unsigned>(ConnState::fin)], 100u);
    EXPECT_EQ(t.stats().expired[static_cast<unsigned>(ConnState::established)], 0u);
    EXPECT_EQ(t.stats().entries, 200u);
}

TEST(ConnTable, HeldForeignCountsEntriesInBucketsOwnedElsewhereAfterAWholeSweep) {
    SnapshotInput in;
    in.self = 1;
    in.buckets = 64;
    in.vips = {ip("192.0.2.100")};
    PortRule single;
    single.mode = FilterMode::single;
    single.port_lo = single.port_hi = 22;
    PortRule off;
    off.mode = FilterMode::disabled;
    off.port_lo = off.port_hi = 25;
    PortRule multi;
    multi.port_lo = multi.port_hi = 80;
    in.rules = {multi, single, off};
    in.members = {Member{1, {}, {0, 2, 0}}, Member{2, {}, {0, 1, 0}}};  // host 2 gets rule 1
    auto s = compile_snapshot(in);
    ASSERT_EQ(s->rules.rules[1].single_owner, 2);

    ConnTable t(small(1024));
    uint64_t foreign = 0;
    for (uint32_t b = 0; b < 64; ++b) {
        put(t, key(b), ConnState::established, 0, 0, b);
        foreign += s->owner(0, b) != 1;
    }
    put(t, key(100), ConnState::established, 0, 1, 0);  // single rule owned by 2: foreign
    put(t, key(101), ConnState::established, 0, 2, 0);  // disabled rule: not counted
    ++foreign;
    ASSERT_GT(foreign, 1u);

    EXPECT_FALSE(t.held_foreign().valid);
    ExpireResult r;
    uint32_t calls = 0;
    do {
        r = t.expire(1, 100, s.get());
        ++calls;
        if (!r.sweep_completed) {
            EXPECT_FALSE(t.held_foreign().valid);
        }
    } while (!r.sweep_completed);
    ASSERT_TRUE(t.held_foreign().valid);
    EXPECT_EQ(t.held_foreign().count, foreign);
    EXPECT_EQ(t.held_foreign().epoch, s->epoch);

    // A new view invalidates the count at once; a sweep begun mid-way under
    // it does not count; the next whole sweep does.
    auto s2 = std::make_shared<Snapshot>(*s);
    s2->epoch += 1;
    s2->generation += 1;
    for (uint32_t b = 0; b < 64; ++b) s2->owners[b] = 2;  // host 1 owns nothing of rule 0
    t.expire(1, 100, s.get());          // cursor mid-sweep
    t.expire(1, 100, s2.get());
    EXPECT_FALSE(t.held_foreign().valid);
    while (!t.expire(1, 100, s2.get()).sweep_completed) {
    }
    EXPECT_FALSE(t.held_foreign().valid);  // that sweep began under s
    while (!t.expire(1, 100, s2.get()).sweep_completed) {
    }
    ASSERT_TRUE(t.held_foreign().valid);
    EXPECT_EQ(t.held_foreign().count, 65u);
    EXPECT_EQ(t.held_foreign().epoch, s2->epoch);
    EXPECT_EQ(t.held_foreign().generation, s2->generation);
}

TEST(ConnTable, AffinityKeysFollowTheRulesAffinity) {
    auto fk = [](const char* src, uint16_t sport) {
        FlowKey k;
        k.src = ip(src);
        k.dst = ip("192.0.2.100");
        k.sport = sport;
        k.dport = 53;
        k.proto = 17;
        return k;
    };
    EXPECT_EQ(affinity_key_of(fk("10.0.0.1", 1000), Affinity::single, 4),
              affinity_key_of(fk("10.0.0.1", 2000), Affinity::single, 4));
    EXPECT_NE(affinity_key_of(fk("10.0.0.1", 1000), Affinity::single, 4),
              affinity_key_of(fk("10.0.0.1", 1000), Affinity::single, 5));
    EXPECT_NE(affinity_key_of(fk("10.0.0.1", 1000), Affinity::single, 4),
              affinity_key_of(fk("10.0.0.2", 1000), Affinity::single, 4));
    EXPECT_EQ(affinity_key_of(fk("10.0.0.1", 1000), Affinity::network, 4),
              affinity_key_of(fk("10.0.0.254", 7), Affinity::network, 4));
    EXPECT_NE(affinity_key_of(fk("10.0.0.1", 1000), Affinity::network, 4),
              affinity_key_of(fk("10.0.1.1", 1000), Affinity::network, 4));
    EXPECT_EQ(affinity_key_of(fk("2001:db8:1:2::1", 1), Affinity::network, 4),
              affinity_key_of(fk("2001:db8:1:ffff::9", 2), Affinity::network, 4));
    EXPECT_NE(affinity_key_of(fk("10.0.0.1", 1000), Affinity::none, 4),
              affinity_key_of(fk("10.0.0.1", 1001), Affinity::none, 4));
    // Never equal to a 5-tuple key.
    EXPECT_NE(affinity_key_of(fk("10.0.0.1", 1000), Affinity::none, 4).proto,
              conn_key_of(fk("10.0.0.1", 1000)).proto);
}

TEST(ConnTable, Ipv4AndIpv6KeysAreDistinct) {
    ConnTable t(small(64));
    FlowKey a;
    a.src = ip("10.0.0.1");
    a.dst = ip("192.0.2.100");
    a.sport = 1000;
    a.dport = 80;
    a.proto = 6;
    FlowKey b = a;
    b.src = ip("::a00:1");  // same leading bytes would differ anyway; family distinguishes
    b.dst = ip("2001:db8::100");
    put(t, conn_key_of(a), ConnState::established);
    EXPECT_EQ(get(t, conn_key_of(b)), nullptr);
    EXPECT_NE(get(t, conn_key_of(a)), nullptr);
}

TEST(ConnTable, FiveTupleKeyEqualsTheKeyBuiltFieldByField) {
    // conn_key_of builds the key as five words; it must be exactly the
    // field-by-field key (what operator== and hash() read), pad included.
    for (const char* src : {"198.51.100.7", "2001:db8::7"}) {
        const bool v6 = src[4] == ':';
        FlowKey k;
        k.src = ip(src);
        k.dst = ip(v6 ? "2001:db8::100" : "192.0.2.100");
        k.sport = 0xbeef;
        k.dport = 443;
        k.proto = 6;
        k.flags = kHasPorts;
        ConnKey want;
        want.src = k.src.b;
        want.dst = k.dst.b;
        want.sport = k.sport;
        want.dport = k.dport;
        want.proto = k.proto;
        want.family = static_cast<uint8_t>(k.src.family);
        const ConnKey got = conn_key_of(k);
        EXPECT_EQ(std::memcmp(&got, &want, sizeof(ConnKey)), 0) << src;
        EXPECT_TRUE(got == want);
        EXPECT_EQ(got.pad, 0);
        ConnKey other = want;
        other.pad = 0;
        other.sport ^= 1;
        EXPECT_FALSE(got == other) << "a one-bit difference in the last word";
        other = want;
        other.src[15] ^= 0x80;
        EXPECT_FALSE(got == other) << "a one-bit difference in the second word";
    }
}

// The caller's allocator (the daemon: EAL hugepages on the worker's socket)
// holds both arrays and gets them back; one that fails leaves the table on
// its own memory, working the same.
struct CountingAllocator {
    int allocs = 0;
    int frees = 0;
    size_t bytes = 0;
    bool fail = false;
    static void* alloc(size_t n, void* ctx) {
        auto* a = static_cast<CountingAllocator*>(ctx);
        if (a->fail) return nullptr;
        ++a->allocs;
        a->bytes += n;
        return ::operator new(n, std::align_val_t{64});
    }
    static void free(void* p, void* ctx) {
        ++static_cast<CountingAllocator*>(ctx)->frees;
        ::operator delete(p, std::align_val_t{64});
    }
    TableAllocator get() { return {&alloc, &free, this}; }
};

TEST(ConnTable, LivesInTheCallersMemoryWhenGivenAndGivesItBack) {
    CountingAllocator a;
    {
        ConnTable::Config cfg;
        cfg.capacity = 1000;
        cfg.memory = a.get();
        ConnTable t(cfg);
        EXPECT_EQ(t.backing(), TableBacking::allocator);
        EXPECT_EQ(a.allocs, 2);  // tags and entries
        EXPECT_EQ(a.bytes, t.memory_bytes());
        const ConnKey k = key(1);
        ASSERT_NE(t.insert(k, t.hash(k), ConnState::established, 0, 0, 1), nullptr);
        EXPECT_NE(t.find(k, t.hash(k), 2), nullptr);
        EXPECT_EQ(a.frees, 0);
    }
    EXPECT_EQ(a.frees, 2);
}

TEST(ConnTable, FallsBackToItsOwnMemoryWhenTheAllocatorFails) {
    CountingAllocator a;
    a.fail = true;
    ConnTable::Config cfg;
    cfg.capacity = 1u << 16;  // arrays of megabytes: the mapping
    cfg.memory = a.get();
    {
        ConnTable t(cfg);
        EXPECT_NE(t.backing(), TableBacking::allocator);
        const ConnKey k = key(7);
        ASSERT_NE(t.insert(k, t.hash(k), ConnState::established, 0, 0, 1), nullptr);
        EXPECT_NE(t.find(k, t.hash(k), 2), nullptr);
    }
    EXPECT_EQ(a.frees, 0);
}
