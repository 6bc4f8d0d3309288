// Pure helpers of nlbd's control thread (src/daemon/cluster_frames.cpp).

#include "nlbd/daemon/cluster_frames.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace nlbd::daemon {
namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

PortRule rule(uint16_t lo, uint16_t hi, std::optional<IpAddr> vip = std::nullopt) {
    PortRule r;
    r.port_lo = lo;
    r.port_hi = hi;
    r.vip = vip;
    return r;
}

uint16_t sum16(const uint8_t* p, size_t n) {
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(s);
}

TEST(IgmpReport, JoinsTheGroupOfTheVipWithValidChecksums) {
    MacAddr src;
    src.b = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
    const auto f = igmp_v2_report(ip("10.1.2.3"), src, ip("192.0.2.7"));
    ASSERT_EQ(f.size(), 14u + 24 + 8);
    const uint8_t dst[6] = {0x01, 0x00, 0x5e, 0x7f, 2, 3};
    EXPECT_EQ(0, std::memcmp(f.data(), dst, 6));
    EXPECT_EQ(0, std::memcmp(f.data() + 6, src.b.data(), 6));
    const uint8_t* ip4 = f.data() + 14;
    EXPECT_EQ(ip4[0], 0x46);
    EXPECT_EQ(ip4[8], 1);  // TTL 1
    EXPECT_EQ(ip4[9], 2);  // IGMP
    const uint8_t group[4] = {239, 255, 2, 3};
    EXPECT_EQ(0, std::memcmp(ip4 + 16, group, 4));
    const uint8_t from[4] = {192, 0, 2, 7};
    EXPECT_EQ(0, std::memcmp(ip4 + 12, from, 4));
    EXPECT_EQ(sum16(ip4, 24), 0xffff);  // header checksum verifies
    const uint8_t* igmp = ip4 + 24;
    EXPECT_EQ(igmp[0], 0x16);
    EXPECT_EQ(0, std::memcmp(igmp + 4, group, 4));
    EXPECT_EQ(sum16(igmp, 8), 0xffff);
}

TEST(IgmpReport, NothingForAnIpv6Vip) {
    EXPECT_TRUE(igmp_v2_report(ip("2001:db8::1"), MacAddr{}, std::nullopt).empty());
}

TEST(IgmpLeave, LeavesTheGroupOfTheJoinsToAllRouters) {
    MacAddr src;
    src.b = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
    const auto f = igmp_v2_leave(ip("10.1.2.3"), src, ip("192.0.2.7"));
    ASSERT_EQ(f.size(), 14u + 24 + 8);
    const uint8_t dst[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x02};  // 224.0.0.2's MAC
    EXPECT_EQ(0, std::memcmp(f.data(), dst, 6));
    EXPECT_EQ(0, std::memcmp(f.data() + 6, src.b.data(), 6));
    EXPECT_EQ(f[12], 0x08);
    EXPECT_EQ(f[13], 0x00);
    const uint8_t* ip4 = f.data() + 14;
    EXPECT_EQ(ip4[0], 0x46);
    EXPECT_EQ(ip4[3], 32);  // total length
    EXPECT_EQ(ip4[8], 1);   // TTL 1
    EXPECT_EQ(ip4[9], 2);   // IGMP
    EXPECT_EQ(ip4[20], 0x94);  // router alert
    const uint8_t from[4] = {192, 0, 2, 7};
    EXPECT_EQ(0, std::memcmp(ip4 + 12, from, 4));
    const uint8_t all_routers[4] = {224, 0, 0, 2};
    EXPECT_EQ(0, std::memcmp(ip4 + 16, all_routers, 4));
    EXPECT_EQ(sum16(ip4, 24), 0xffff);
    const uint8_t* igmp = ip4 + 24;
    EXPECT_EQ(igmp[0], 0x17);  // IGMPv2 leave group
    const uint8_t group[4] = {239, 255, 2, 3};  // the group the reports join
    EXPECT_EQ(0, std::memcmp(igmp + 4, group, 4));
    EXPECT_EQ(sum16(igmp, 8), 0xffff);
    // Same group as the report of the same VIP.
    const auto r = igmp_v2_report(ip("10.1.2.3"), src, ip("192.0.2.7"));
    EXPECT_EQ(0, std::memcmp(r.data() + 14 + 24 + 4, igmp + 4, 4));
}

TEST(IgmpLeave, UnsetSourceIsZeroAndNothingForIpv6) {
    const auto f = igmp_v2_leave(ip("10.1.2.3"), MacAddr{}, std::nullopt);
    ASSERT_EQ(f.size(), 14u + 24 + 8);
    const uint8_t zero[4] = {0, 0, 0, 0};
    EXPECT_EQ(0, std::memcmp(f.data() + 14 + 12, zero, 4));
    EXPECT_EQ(sum16(f.data() + 14, 24), 0xffff);
    EXPECT_TRUE(igmp_v2_leave(ip("2001:db8::1"), MacAddr{}, std::nullopt).empty());
}

TEST(SelectRules, PortVipAndAllSelectTheRulesNlbWould) {
    const std::vector<PortRule> rules = {rule(80, 80), rule(443, 443, ip("10.0.0.1")),
                                         rule(1000, 2000, ip("10.0.0.2")), rule(443, 443, ip("10.0.0.2"))};
    EXPECT_EQ(select_rules(rules, std::nullopt, true, 0), (std::vector<size_t>{0, 1, 2, 3}));
    EXPECT_EQ(select_rules(rules, std::nullopt, false, 443), (std::vector<size_t>{1, 3}));
    EXPECT_EQ(select_rules(rules, ip("10.0.0.1"), false, 443), (std::vector<size_t>{1}));
    // An "all"-VIP rule applies to every VIP.
    EXPECT_EQ(select_rules(rules, ip("10.0.0.2"), false, 80), (std::vector<size_t>{0}));
    EXPECT_EQ(select_rules(rules, ip("10.0.0.2"), true, 0), (std::vector<size_t>{0, 2, 3}));
    EXPECT_TRUE(select_rules(rules, std::nullopt, false, 22).empty());
}

}  // namespace
}  // namespace nlbd::daemon
