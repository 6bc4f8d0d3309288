// Properties of port-rule matching (RuleTable::match) and VIP lookup
// (Snapshot::vip_index) on compiled snapshots.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "nlbd/core/snapshot.hpp"

using namespace nlbd;
using namespace nlbd::core;

namespace {

constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1;

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

PortRule rule(std::optional<IpAddr> vip, uint16_t lo, uint16_t hi, Protocol p,
              FilterMode m = FilterMode::multiple) {
    PortRule r;
    r.vip = vip;
    r.port_lo = lo;
    r.port_hi = hi;
    r.protocol = p;
    r.mode = m;
    return r;
}

std::shared_ptr<const Snapshot> compile(std::vector<IpAddr> vips, std::vector<PortRule> rules,
                                        uint32_t buckets = 64) {
    SnapshotInput in;
    in.self = 1;
    in.buckets = buckets;
    in.vips = std::move(vips);
    in.rules = std::move(rules);
    in.members = {Member{1, {}, {}}, Member{2, {}, {}}};
    return compile_snapshot(in);
}

}  // namespace

TEST(RuleTable, VipSpecificRuleBeatsAllRule) {
    auto s = compile({ip("10.0.0.100"), ip("10.0.0.101")},
                     {rule(std::nullopt, 0, 65535, Protocol::both),
                      rule(ip("10.0.0.101"), 25, 25, Protocol::tcp, FilterMode::disabled)});
    const uint16_t v0 = s->vip_index(ip("10.0.0.100")), v1 = s->vip_index(ip("10.0.0.101"));
    EXPECT_EQ(s->rules.match(v1, kTcp, 25), 1);
    EXPECT_EQ(s->rules.match(v0, kTcp, 25), 0);   // the other VIP keeps the "all" rule
    EXPECT_EQ(s->rules.match(v1, kTcp, 26), 0);   // outside the specific range: "all"
    EXPECT_EQ(s->rules.match(v1, kUdp, 25), 0);   // specific rule is TCP only
}

TEST(RuleTable, ProtocolSelectsTheList) {
    auto s = compile({ip("10.0.0.100")}, {rule(std::nullopt, 80, 80, Protocol::tcp),
                                          rule(std::nullopt, 53, 53, Protocol::udp),
                                          rule(std::nullopt, 443, 443, Protocol::both)});
    EXPECT_EQ(s->rules.match(0, kTcp, 80), 0);
    EXPECT_EQ(s->rules.match(0, kUdp, 80), kNoRule);
    EXPECT_EQ(s->rules.match(0, kUdp, 53), 1);
    EXPECT_EQ(s->rules.match(0, kTcp, 53), kNoRule);
    EXPECT_EQ(s->rules.match(0, kTcp, 443), 2);
    EXPECT_EQ(s->rules.match(0, kUdp, 443), 2);
}

TEST(RuleTable, OtherProtocolsMatchNoRule) {
    auto s = compile({ip("10.0.0.100")}, {rule(std::nullopt, 0, 65535, Protocol::both)});
    EXPECT_EQ(s->rules.match(0, kIcmp, 0), kNoRule);
    EXPECT_EQ(s->rules.match(0, 47, 0), kNoRule);
    EXPECT_EQ(s->rules.match(0, 132, 80), kNoRule);  // SCTP
}

TEST(RuleTable, RangesAreInclusiveAndGapsMatchNothing) {
    auto s = compile({ip("10.0.0.100")}, {rule(std::nullopt, 1024, 2047, Protocol::tcp),
                                          rule(std::nullopt, 0, 0, Protocol::tcp),
                                          rule(std::nullopt, 65535, 65535, Protocol::tcp),
                                          rule(std::nullopt, 2048, 2048, Protocol::tcp)});
    EXPECT_EQ(s->rules.match(0, kTcp, 0), 1);
    EXPECT_EQ(s->rules.match(0, kTcp, 1), kNoRule);
    EXPECT_EQ(s->rules.match(0, kTcp, 1023), kNoRule);
    EXPECT_EQ(s->rules.match(0, kTcp, 1024), 0);
    EXPECT_EQ(s->rules.match(0, kTcp, 2047), 0);
    EXPECT_EQ(s->rules.match(0, kTcp, 2048), 3);
    EXPECT_EQ(s->rules.match(0, kTcp, 2049), kNoRule);
    EXPECT_EQ(s->rules.match(0, kTcp, 65534), kNoRule);
    EXPECT_EQ(s->rules.match(0, kTcp, 65535), 2);
}

TEST(RuleTable, ARuleForAnAddressThatIsNotAVipNeverMatches) {
    auto s = compile({ip("10.0.0.100")}, {rule(ip("10.9.9.9"), 80, 80, Protocol::tcp)});
    EXPECT_EQ(s->rules.match(0, kTcp, 80), kNoRule);
    EXPECT_EQ(s->rules.match(kNoVip, kTcp, 80), kNoRule);
}

TEST(RuleTable, Handles1024RulesOn256Vips) {
    // 256 VIPs (half IPv4, half IPv6) x 4 rules each = 1024 rules, plus
    // the check that every port lands on exactly the rule covering it.
    std::vector<IpAddr> vips;
    for (int i = 0; i < 128; ++i) vips.push_back(ip(("10.1." + std::to_string(i) + ".1").c_str()));
    for (int i = 0; i < 128; ++i) vips.push_back(ip(("2001:db8::" + std::to_string(i + 1)).c_str()));
    std::vector<PortRule> rules;
    for (size_t v = 0; v < vips.size(); ++v) {
        const uint16_t base = static_cast<uint16_t>(1000 + v * 100);
        rules.push_back(rule(vips[v], base, base + 9, Protocol::tcp));
        rules.push_back(rule(vips[v], base + 10, base + 19, Protocol::udp));
        rules.push_back(rule(vips[v], base + 20, base + 29, Protocol::both));
        rules.push_back(rule(vips[v], base + 40, base + 40, Protocol::both, FilterMode::disabled));
    }
    ASSERT_EQ(rules.size(), kMaxRules);
    auto s = compile(vips, rules, 16);
    ASSERT_EQ(s->rules.rules.size(), 1024u);
    for (size_t v = 0; v < vips.size(); ++v) {
        const uint16_t vi = s->vip_index(vips[v]);
        ASSERT_EQ(vi, v);
        const uint16_t base = static_cast<uint16_t>(1000 + v * 100);
        const uint16_t r0 = static_cast<uint16_t>(v * 4);
        for (uint16_t p = base - 5; p < base + 60; ++p) {
            uint16_t tcp = kNoRule, udp = kNoRule;
            if (p >= base && p <= base + 9) tcp = r0;
            if (p >= base + 10 && p <= base + 19) udp = r0 + 1;
            if (p >= base + 20 && p <= base + 29) tcp = udp = r0 + 2;
            if (p == base + 40) tcp = udp = r0 + 3;
            ASSERT_EQ(s->rules.match(vi, kTcp, p), tcp) << "vip " << v << " port " << p;
            ASSERT_EQ(s->rules.match(vi, kUdp, p), udp) << "vip " << v << " port " << p;
        }
    }
}

TEST(VipIndex, FindsEveryVipAndNothingElse) {
    std::vector<IpAddr> vips;
    for (int i = 0; i < 128; ++i) vips.push_back(ip(("192.0.2." + std::to_string(i)).c_str()));
    for (int i = 0; i < 128; ++i) vips.push_back(ip(("2001:db8:ffff::" + std::to_string(i)).c_str()));
    auto s = compile(vips, {});
    for (size_t v = 0; v < vips.size(); ++v) EXPECT_EQ(s->vip_index(vips[v]), v);
    for (int i = 128; i < 256; ++i)
        EXPECT_EQ(s->vip_index(ip(("192.0.2." + std::to_string(i)).c_str())), kNoVip);
    EXPECT_EQ(s->vip_index(ip("2001:db8:ffff::1:0")), kNoVip);
    EXPECT_EQ(s->vip_index(IpAddr{}), kNoVip);
    // Same bytes, other family: not the VIP.
    IpAddr as_v6 = vips[0];
    as_v6.family = Family::v6;
    EXPECT_EQ(s->vip_index(as_v6), kNoVip);
}

TEST(VipIndex, HandBuiltSnapshotWithoutTableScansTheList) {
    Snapshot s;
    s.vips = {ip("10.0.0.1"), ip("::1")};
    EXPECT_EQ(s.vip_index(ip("::1")), 1);
    EXPECT_EQ(s.vip_index(ip("10.0.0.1")), 0);
    EXPECT_EQ(s.vip_index(ip("10.0.0.2")), kNoVip);
}

TEST(VipIndex, RepeatedVipResolvesToItsFirstIndex) {
    auto s = compile({ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.1")}, {});
    EXPECT_EQ(s->vip_index(ip("10.0.0.1")), 0);
    EXPECT_EQ(s->vip_index(ip("10.0.0.2")), 1);
}

TEST(RuleTable, LongListsMatchExactlyLikeABruteForceScan) {
    // Long lists get a block index; every port of every list must still land
    // on exactly the rule covering it: narrow rules at block edges, wide
    // rules spanning many blocks, gaps everywhere.
    std::vector<PortRule> rules;
    uint32_t port = 0;
    unsigned i = 0;
    while (port < 65536 && rules.size() < 1000) {
        const uint32_t width = (i % 7 == 0) ? 700 + i : (i % 3 == 0) ? 1 : 1 + i % 40;
        const uint32_t hi = std::min<uint32_t>(port + width - 1, 65535);
        const Protocol p = (i % 5 == 0) ? Protocol::udp : Protocol::both;
        rules.push_back(rule(std::nullopt, static_cast<uint16_t>(port), static_cast<uint16_t>(hi), p));
        port = hi + 1 + (i % 4 == 0 ? 0 : (i % 11));  // sometimes adjacent, sometimes a gap
        ++i;
    }
    rules.push_back(rule(ip("10.0.0.1"), 255, 257, Protocol::tcp));  // specific VIP over a block edge
    auto s = compile({ip("10.0.0.1")}, rules);
    ASSERT_FALSE(s->rules.blocks.empty());
    for (uint32_t p = 0; p < 65536; ++p) {
        uint16_t tcp = kNoRule, udp = kNoRule;
        for (size_t r = 0; r + 1 < rules.size(); ++r) {
            if (p < rules[r].port_lo || p > rules[r].port_hi) continue;
            if (rules[r].protocol != Protocol::udp) tcp = static_cast<uint16_t>(r);
            if (rules[r].protocol != Protocol::tcp) udp = static_cast<uint16_t>(r);
        }
        const uint16_t port16 = static_cast<uint16_t>(p);
        ASSERT_EQ(s->rules.match(kNoVip, kTcp, port16), tcp) << p;
        ASSERT_EQ(s->rules.match(kNoVip, kUdp, port16), udp) << p;
        const uint16_t vip_tcp = (p >= 255 && p <= 257) ? static_cast<uint16_t>(rules.size() - 1) : tcp;
        ASSERT_EQ(s->rules.match(0, kTcp, port16), vip_tcp) << p;
    }
}
