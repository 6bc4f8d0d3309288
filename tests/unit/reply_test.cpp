// ARP replies and neighbour advertisements for a VIP (SPEC §2), built in
// place from the request the data plane received.

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "nlbd/core/parse.hpp"
#include "nlbd/core/reply.hpp"
#include "packet_builder.hpp"

namespace nlbd::core {
namespace {

using nlbd::testing::Bytes;
using nlbd::testing::PacketBuilder;
using nlbd::testing::ip;
using nlbd::testing::mac;

const MacAddr kClusterMac = mac("02:bf:c0:00:02:0a");
const MacAddr kSourceMac = mac("02:01:c0:00:02:0a");
const MacAddr kClientMac = mac("00:11:22:33:44:55");

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Parses frame and asserts it parsed; returns the result.
ParsedFrame parsed(const Bytes& frame) {
    ParsedFrame f;
    EXPECT_EQ(parse_frame({frame.data(), frame.size()}, f), ParseError::none);
    return f;
}

// Rewrites `frame` (with `room` spare bytes) with the builder; returns the reply.
template <typename Builder>
Bytes rewrite(Bytes frame, size_t room, Builder build, size_t* out_len = nullptr) {
    const ParsedFrame f = parsed(frame);
    const size_t len = frame.size();
    frame.resize(len + room);
    const size_t n = build({frame.data(), frame.size()}, len, f, kClusterMac, kSourceMac);
    if (out_len != nullptr) *out_len = n;
    frame.resize(n);
    return frame;
}

TEST(ArpReply, AdvertisesClusterMacForTheRequestedVip) {
    const Bytes req = PacketBuilder().arp_request(kClientMac, "192.0.2.1", "192.0.2.10").build();
    size_t n = 0;
    const Bytes rep = rewrite(req, 0, build_arp_reply, &n);
    ASSERT_EQ(n, req.size());

    // Ethernet: back to the requester, from our (masked) source MAC.
    EXPECT_EQ(0, std::memcmp(rep.data(), kClientMac.b.data(), 6));
    EXPECT_EQ(0, std::memcmp(rep.data() + 6, kSourceMac.b.data(), 6));
    const uint8_t* a = rep.data() + 14;
    EXPECT_EQ(be16(a + 6), 2);  // reply
    EXPECT_EQ(0, std::memcmp(a + 8, kClusterMac.b.data(), 6));
    EXPECT_EQ(0, std::memcmp(a + 14, ip("192.0.2.10").b.data(), 4));
    EXPECT_EQ(0, std::memcmp(a + 18, kClientMac.b.data(), 6));
    EXPECT_EQ(0, std::memcmp(a + 24, ip("192.0.2.1").b.data(), 4));

    const ParsedFrame f = parsed(rep);
    EXPECT_EQ(f.kind, FrameKind::arp);
    EXPECT_NE(f.key.flags & kArpReply, 0);
    EXPECT_EQ(f.key.src, ip("192.0.2.10"));
    EXPECT_EQ(f.key.dst, ip("192.0.2.1"));
}

TEST(ArpReply, KeepsVlanTags) {
    const Bytes req = PacketBuilder()
                          .eth(kClientMac, mac("ff:ff:ff:ff:ff:ff"))
                          .vlan(10, testing::kEthQinQ)
                          .vlan(20)
                          .arp_request(kClientMac, "192.0.2.1", "192.0.2.10")
                          .build();
    const Bytes rep = rewrite(req, 0, build_arp_reply);
    ASSERT_EQ(rep.size(), req.size());
    EXPECT_EQ(0, std::memcmp(rep.data() + 12, req.data() + 12, 8));  // both tags
    const ParsedFrame f = parsed(rep);
    EXPECT_EQ(f.vlan_count, 2);
    EXPECT_NE(f.key.flags & kArpReply, 0);
    EXPECT_EQ(f.eth_dst, kClientMac);
}

TEST(ArpReply, RefusesAnythingButARequest) {
    const Bytes rep_in =
        PacketBuilder().arp_reply("00:11:22:33:44:55", "192.0.2.1", "02:00:00:00:00:09", "192.0.2.10")
            .build();
    size_t n = 1;
    rewrite(rep_in, 0, build_arp_reply, &n);
    EXPECT_EQ(n, 0u);

    const Bytes ns = PacketBuilder().nd_solicit("2001:db8::10").build();
    n = 1;
    rewrite(ns, 64, build_arp_reply, &n);
    EXPECT_EQ(n, 0u);
}

// Checks the advertisement's IPv6 + ICMPv6 fields; returns its ICMPv6 body.
const uint8_t* check_na(const Bytes& rep, size_t l3, const IpAddr& target, const IpAddr& dst) {
    EXPECT_EQ(rep.size(), l3 + kIpv6HeaderLength + kNdAdvertLength);
    const uint8_t* ip6 = rep.data() + l3;
    EXPECT_EQ(ip6[0] >> 4, 6);
    EXPECT_EQ(be16(ip6 + 4), kNdAdvertLength);
    EXPECT_EQ(ip6[6], 58);
    EXPECT_EQ(ip6[7], 255);
    EXPECT_EQ(0, std::memcmp(ip6 + 8, target.b.data(), 16));
    EXPECT_EQ(0, std::memcmp(ip6 + 24, dst.b.data(), 16));
    const uint8_t* na = ip6 + kIpv6HeaderLength;
    EXPECT_EQ(na[0], 136);
    EXPECT_EQ(na[1], 0);
    EXPECT_EQ(0, std::memcmp(na + 8, target.b.data(), 16));
    EXPECT_EQ(na[24], 2);  // target link-layer address option
    EXPECT_EQ(na[25], 1);
    EXPECT_EQ(0, std::memcmp(na + 26, kClusterMac.b.data(), 6));
    // A valid checksum sums (with itself) to zero.
    EXPECT_EQ(icmpv6_checksum(ip6 + 8, ip6 + 24, {na, kNdAdvertLength}), 0);
    return na;
}

TEST(NdAdvert, AnswersSolicitationWithSolicitedOverrideAndValidChecksum) {
    const Bytes req = PacketBuilder()
                          .eth(kClientMac, mac("33:33:ff:00:00:10"))
                          .ipv6("2001:db8::1", "ff02::1:ff00:10")
                          .nd_solicit("2001:db8::10", "00:11:22:33:44:55")
                          .build();
    const Bytes rep = rewrite(req, 64, build_nd_advert);
    ASSERT_FALSE(rep.empty());
    const uint8_t* na = check_na(rep, 14, ip("2001:db8::10"), ip("2001:db8::1"));
    EXPECT_EQ(na[4], 0x60);  // solicited + override, not router
    EXPECT_EQ(0, std::memcmp(rep.data(), kClientMac.b.data(), 6));
    EXPECT_EQ(0, std::memcmp(rep.data() + 6, kSourceMac.b.data(), 6));
    const ParsedFrame f = parsed(rep);
    EXPECT_EQ(f.kind, FrameKind::ipv6);
    EXPECT_EQ(f.key.proto, 58);
}

TEST(NdAdvert, DuplicateAddressDetectionGoesToAllNodesUnsolicited) {
    const Bytes req = PacketBuilder()
                          .eth(kClientMac, mac("33:33:ff:00:00:10"))
                          .ipv6("::", "ff02::1:ff00:10")
                          .nd_solicit("2001:db8::10")
                          .build();
    const Bytes rep = rewrite(req, 64, build_nd_advert);
    ASSERT_FALSE(rep.empty());
    const uint8_t* na = check_na(rep, 14, ip("2001:db8::10"), ip("ff02::1"));
    EXPECT_EQ(na[4], 0x20);  // override only
    EXPECT_EQ(0, std::memcmp(rep.data(), mac("33:33:00:00:00:01").b.data(), 6));
}

TEST(NdAdvert, DropsRequestExtensionHeadersAndKeepsVlan) {
    const Bytes req = PacketBuilder()
                          .eth(kClientMac, mac("33:33:ff:00:00:10"))
                          .vlan(7)
                          .ipv6("2001:db8::1", "ff02::1:ff00:10")
                          .ipv6_ext(testing::kProtoHopByHop, 8)
                          .nd_solicit("2001:db8::10", "00:11:22:33:44:55")
                          .build();
    const Bytes rep = rewrite(req, 64, build_nd_advert);
    ASSERT_FALSE(rep.empty());
    check_na(rep, 18, ip("2001:db8::10"), ip("2001:db8::1"));
    EXPECT_EQ(be16(rep.data() + 12), 0x8100);
    EXPECT_EQ(be16(rep.data() + 16), 0x86dd);
}

TEST(NdAdvert, RefusesWhenTheBufferCannotHoldTheAdvert) {
    // NS without options: 78 bytes; the advertisement needs 86.
    const Bytes req = PacketBuilder().nd_solicit("2001:db8::10").build();
    ASSERT_LT(req.size(), 14 + kIpv6HeaderLength + kNdAdvertLength);
    size_t n = 1;
    rewrite(req, 0, build_nd_advert, &n);
    EXPECT_EQ(n, 0u);
    rewrite(req, 8, build_nd_advert, &n);
    EXPECT_EQ(n, 14 + kIpv6HeaderLength + kNdAdvertLength);
}

TEST(NdAdvert, RefusesAnArpFrame) {
    const Bytes req = PacketBuilder().arp_request(kClientMac, "192.0.2.1", "192.0.2.10").build();
    size_t n = 1;
    rewrite(req, 64, build_nd_advert, &n);
    EXPECT_EQ(n, 0u);
}

TEST(Icmpv6Checksum, MatchesAnIndependentlyBuiltSolicitation) {
    // The packet builder computes ICMPv6 checksums on its own.
    const Bytes ns = PacketBuilder()
                         .ipv6("2001:db8::1", "ff02::1:ff00:10")
                         .nd_solicit("2001:db8::10", "00:11:22:33:44:55")
                         .build();
    Bytes msg(ns.begin() + 14 + 40, ns.end());
    const uint16_t stored = be16(msg.data() + 2);
    msg[2] = msg[3] = 0;
    EXPECT_EQ(icmpv6_checksum(ns.data() + 14 + 8, ns.data() + 14 + 24, {msg.data(), msg.size()}),
              stored);
}

}  // namespace
}  // namespace nlbd::core
