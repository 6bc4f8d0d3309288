// Properties of compile_snapshot: NLB default rule, content-derived seeds,
// single-host owners, default host, MAC formats (SPEC §3), minimal movement
// across snapshots.

#include "nlbd/core/snapshot.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

using namespace nlbd;
using namespace nlbd::core;

namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

PortRule rule(uint16_t lo, uint16_t hi, FilterMode m = FilterMode::multiple, Protocol p = Protocol::tcp) {
    PortRule r;
    r.port_lo = lo;
    r.port_hi = hi;
    r.mode = m;
    r.protocol = p;
    return r;
}

std::vector<Member> members(std::initializer_list<HostId> ids) {
    std::vector<Member> m;
    for (HostId id : ids) m.push_back(Member{id, {}, {}});
    return m;
}

SnapshotInput input(std::vector<PortRule> rules, std::vector<Member> m, HostId self = 1) {
    SnapshotInput in;
    in.self = self;
    in.buckets = 256;
    in.vips = {ip("192.0.2.10")};
    in.rules = std::move(rules);
    in.members = std::move(m);
    return in;
}

std::vector<HostId> row(const Snapshot& s, uint16_t r) {
    return {s.owners.begin() + static_cast<ptrdiff_t>(r) * s.buckets,
            s.owners.begin() + static_cast<ptrdiff_t>(r + 1) * s.buckets};
}

}  // namespace

TEST(Snapshot, EmptyRuleListGetsNlbDefaultRule) {
    auto s = compile_snapshot(input({}, members({1, 2})));
    ASSERT_EQ(s->rules.rules.size(), 1u);
    const CompiledRule& r = s->rules.rules[0];
    EXPECT_EQ(r.port_lo, 0);
    EXPECT_EQ(r.port_hi, 65535);
    EXPECT_EQ(r.mode, FilterMode::multiple);
    EXPECT_EQ(r.affinity, Affinity::single);
    EXPECT_EQ(s->rules.match(0, 6, 1), 0);
    EXPECT_EQ(s->rules.match(0, 17, 65535), 0);
    auto c = std::count(s->owners.begin(), s->owners.end(), HostId{1});
    EXPECT_EQ(c, 128);  // equal weights
}

TEST(Snapshot, IdenticalInputsGiveIdenticalTables) {
    auto in = input({rule(80, 80), rule(443, 443), rule(25, 25, FilterMode::disabled)}, members({3, 1, 2}));
    auto a = compile_snapshot(in);
    auto b = compile_snapshot(in);
    EXPECT_EQ(a->owners, b->owners);
    EXPECT_EQ(a->echo_owners, b->echo_owners);
    EXPECT_EQ(a->rule_ids, b->rule_ids);
    EXPECT_EQ(a->members, (std::vector<HostId>{1, 2, 3}));
}

TEST(Snapshot, RuleSeedsFollowContentNotPosition) {
    auto a = compile_snapshot(input({rule(80, 80), rule(443, 443)}, members({1, 2, 3})));
    auto b = compile_snapshot(input({rule(443, 443), rule(80, 80)}, members({1, 2, 3})));
    EXPECT_EQ(a->rules.rules[0].hash_seed, b->rules.rules[1].hash_seed);
    EXPECT_EQ(row(*a, 0), row(*b, 1));
    EXPECT_EQ(row(*a, 1), row(*b, 0));
    EXPECT_NE(a->rules.rules[0].hash_seed, a->rules.rules[1].hash_seed);
    EXPECT_NE(row(*a, 0), row(*a, 1));
    // Per-host fields do not change the seed.
    PortRule heavier = rule(80, 80);
    heavier.equal_weight = false;
    heavier.load_weight = 90;
    heavier.line = 77;
    auto c = compile_snapshot(input({heavier}, members({1, 2, 3})));
    EXPECT_EQ(c->rules.rules[0].hash_seed, a->rules.rules[0].hash_seed);
}

TEST(Snapshot, MemberWeightsPerRuleShapeTheMap) {
    std::vector<Member> m{{1, {100, 0}, {}}, {2, {50, 50}, {}}};
    auto s = compile_snapshot(input({rule(80, 80), rule(443, 443)}, m));
    auto r0 = row(*s, 0), r1 = row(*s, 1);
    EXPECT_EQ(std::count(r0.begin(), r0.end(), HostId{1}), 171);  // 256*2/3 = 170.7
    EXPECT_EQ(std::count(r0.begin(), r0.end(), HostId{2}), 85);
    EXPECT_EQ(std::count(r1.begin(), r1.end(), HostId{2}), 256);
}

TEST(Snapshot, AllWeightsZeroLeavesBucketsUnowned) {
    std::vector<Member> m{{1, {0}, {}}, {2, {0}, {}}};
    auto s = compile_snapshot(input({rule(80, 80)}, m));
    for (HostId h : row(*s, 0)) EXPECT_EQ(h, kNoHost);
}

TEST(Snapshot, SingleRuleOwnerIsBestHandlingPriority) {
    std::vector<Member> m{{1, {}, {3}}, {2, {}, {1}}, {3, {}, {2}}};
    auto s = compile_snapshot(input({rule(25, 25, FilterMode::single)}, m));
    EXPECT_EQ(s->rules.rules[0].single_owner, 2);
    // The best one gone: the next takes over.
    m.erase(m.begin() + 1);
    s = compile_snapshot(input({rule(25, 25, FilterMode::single)}, m));
    EXPECT_EQ(s->rules.rules[0].single_owner, 3);
    // No priorities at all: lowest host id.
    s = compile_snapshot(input({rule(25, 25, FilterMode::single)}, members({4, 2, 7})));
    EXPECT_EQ(s->rules.rules[0].single_owner, 2);
}

TEST(Snapshot, DefaultHostIsLowestLiveMember) {
    EXPECT_EQ(compile_snapshot(input({}, members({5, 3, 9})))->default_host, 3);
    EXPECT_EQ(compile_snapshot(input({}, {}))->default_host, kNoHost);
}

TEST(Snapshot, EchoOwnersAreAnEqualShareOfLiveMembers) {
    auto s = compile_snapshot(input({}, members({1, 2, 3, 4})));
    ASSERT_EQ(s->echo_owners.size(), 256u);
    for (HostId h = 1; h <= 4; ++h) EXPECT_EQ(std::count(s->echo_owners.begin(), s->echo_owners.end(), h), 64);
}

TEST(Snapshot, PreviousSnapshotMakesHostLossMoveOnlyItsBuckets) {
    auto in = input({rule(80, 80), rule(443, 443)}, members({1, 2, 3, 4}));
    auto before = compile_snapshot(in);
    in.members = members({1, 2, 4});
    in.previous = before.get();
    auto after = compile_snapshot(in);
    for (uint16_t r = 0; r < 2; ++r) {
        auto a = row(*before, r), b = row(*after, r);
        for (size_t i = 0; i < a.size(); ++i) {
            if (a[i] != 3) {
                EXPECT_EQ(b[i], a[i]);
            } else {
                EXPECT_NE(b[i], 3);
            }
        }
    }
    for (size_t i = 0; i < before->echo_owners.size(); ++i)
        if (before->echo_owners[i] != 3) {
            EXPECT_EQ(after->echo_owners[i], before->echo_owners[i]);
        }
}

TEST(Snapshot, AddingARuleKeepsTheOtherRulesMaps) {
    auto in = input({rule(80, 80), rule(443, 443)}, members({1, 2, 3}));
    auto before = compile_snapshot(in);
    // Mix the existing maps up first so that "kept" cannot mean "rebuilt alike".
    in.members = members({1, 2});
    in.previous = before.get();
    auto mid = compile_snapshot(in);
    in.members = members({1, 2, 3});
    in.previous = mid.get();
    auto rejoined = compile_snapshot(in);
    in.rules = {rule(8080, 8080), rule(443, 443), rule(80, 80)};
    in.previous = rejoined.get();
    auto after = compile_snapshot(in);
    EXPECT_EQ(row(*after, 2), row(*rejoined, 0));
    EXPECT_EQ(row(*after, 1), row(*rejoined, 1));
}

TEST(Snapshot, DifferentBucketCountIgnoresPrevious) {
    auto in = input({rule(80, 80)}, members({1, 2}));
    auto before = compile_snapshot(in);
    in.buckets = 60;
    in.previous = before.get();
    auto after = compile_snapshot(in);
    EXPECT_EQ(after->owners.size(), 60u);
    in.previous = nullptr;
    EXPECT_EQ(compile_snapshot(in)->owners, after->owners);
}

TEST(ClusterMac, UnicastMulticastAndIgmpFormats) {
    const IpAddr v = ip("10.20.30.40");
    EXPECT_EQ(cluster_mac(ClusterMode::unicast, v).to_string(), "02-bf-0a-14-1e-28");
    EXPECT_EQ(cluster_mac(ClusterMode::multicast, v).to_string(), "03-bf-0a-14-1e-28");
    EXPECT_EQ(cluster_mac(ClusterMode::igmp, v).to_string(), "01-00-5e-7f-1e-28");
    EXPECT_EQ(unicast_source_mac(7, v).to_string(), "02-07-0a-14-1e-28");
}

TEST(ClusterMac, SnapshotUsesFirstIpv4VipElseLastBytesOfFirstVip) {
    auto in = input({}, members({1}), 3);
    in.vips = {ip("2001:db8::aa:bb:ccdd"), ip("10.0.0.7"), ip("10.0.0.8")};
    auto s = compile_snapshot(in);
    EXPECT_EQ(s->cluster_mac.to_string(), "02-bf-0a-00-00-07");
    EXPECT_EQ(s->source_mac.to_string(), "02-03-0a-00-00-07");
    in.vips = {ip("2001:db8::aa:bb:ccdd")};
    in.mode = ClusterMode::multicast;
    s = compile_snapshot(in);
    EXPECT_EQ(s->cluster_mac.to_string(), "03-bf-00-bb-cc-dd");
}

TEST(Snapshot, ThousandRulesCompileWithFullTables) {
    std::vector<PortRule> rules;
    for (uint16_t i = 0; i < 1024; ++i) rules.push_back(rule(i * 10, i * 10 + 5));
    auto in = input(rules, members({1, 2, 3, 4, 5, 6, 7, 8}));
    in.buckets = 4096;
    auto s = compile_snapshot(in);
    ASSERT_EQ(s->owners.size(), 1024u * 4096);
    std::map<HostId, size_t> c;
    for (HostId h : s->owners) ++c[h];
    for (HostId h = 1; h <= 8; ++h) EXPECT_EQ(c[h], 1024u * 512);
}
