// Parser tests: table-driven good frames per protocol, one malformed case (at
// least) per ParseError, and robustness properties (every prefix and random
// byte mutations of valid frames parse without reading past the frame and keep
// the output invariants).

#include "nlbd/core/parse.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "packet_builder.hpp"

namespace nlbd {
// Readable names in gtest failure messages.
inline void PrintTo(ParseError e, std::ostream* os) { *os << name_of(e); }
}  // namespace nlbd

namespace {

using nlbd::IpAddr;
using nlbd::ParseError;
using nlbd::core::FrameKind;
using nlbd::core::ParsedFrame;
using nlbd::core::parse_frame;
using namespace nlbd::testing;
namespace core = nlbd::core;

constexpr const char* kClient = "10.0.0.1";
constexpr const char* kVip = "192.168.1.100";
constexpr const char* kClient6 = "2001:db8::1";
constexpr const char* kVip6 = "2001:db8:100::100";

// Parses a copy of `f` in an exactly-sized heap buffer, so that a read past
// the end is caught by ASan/valgrind when the tests run under them.
ParseError parse(const Bytes& f, ParsedFrame& out) {
    std::unique_ptr<uint8_t[]> copy(new uint8_t[f.size() + 1]);
    if (!f.empty()) std::memcpy(copy.get(), f.data(), f.size());
    return parse_frame(std::span<const uint8_t>(copy.get(), f.size()), out);
}

// Output invariants that hold for every frame, good or bad.
void check_invariants(const Bytes& f, ParseError err, const ParsedFrame& out) {
    ASSERT_LT(static_cast<unsigned>(err), nlbd::kParseErrorCount);
    if (err != ParseError::none) return;
    ASSERT_LE(out.vlan_count, core::kMaxVlanTags);
    ASSERT_EQ(out.l3_offset, 14u + 4u * out.vlan_count);
    ASSERT_LE(out.l3_offset + size_t{out.l3_length}, f.size());
    if (out.l4_offset != 0) {
        ASSERT_GT(out.l4_offset, out.l3_offset);
        ASSERT_LE(out.l4_offset, out.l3_offset + size_t{out.l3_length});
    }
    const uint16_t fl = out.key.flags;
    switch (out.kind) {
    case FrameKind::other_l2:
        ASSERT_EQ(out.l3_length, 0u);
        ASSERT_EQ(fl, 0u);
        break;
    case FrameKind::arp:
        ASSERT_EQ(out.key.src.family, nlbd::Family::v4);
        ASSERT_EQ(fl & ~(core::kArpRequest | core::kArpReply), 0u);
        break;
    case FrameKind::ipv4:
    case FrameKind::ipv6:
    case FrameKind::nd_solicit: {
        const auto fam = out.kind == FrameKind::ipv4 ? nlbd::Family::v4 : nlbd::Family::v6;
        ASSERT_EQ(out.key.src.family, fam);
        ASSERT_EQ(out.key.dst.family, fam);
        ASSERT_EQ(fl & (core::kArpRequest | core::kArpReply), 0u);
        if (fl & core::kFirstFragment) {
            ASSERT_TRUE(fl & core::kFragment);
        }
        if ((fl & core::kFragment) && !(fl & core::kFirstFragment)) {
            ASSERT_FALSE(fl & core::kHasPorts);
            ASSERT_EQ(out.l4_offset, 0u);
        }
        if (!(fl & core::kFragment)) {
            ASSERT_EQ(out.frag_offset, 0u);
        }
        if (!(fl & core::kHasPorts)) {
            ASSERT_EQ(out.key.sport, 0u);
            ASSERT_EQ(out.key.dport, 0u);
        }
        if (fl & (core::kTcpSyn | core::kTcpFin | core::kTcpRst | core::kTcpAck)) {
            ASSERT_EQ(out.key.proto, kProtoTcp);
        }
        break;
    }
    }
}

// ---------------------------------------------------------------------------
// Good frames

struct Good {
    std::string name;
    Bytes frame;
    FrameKind kind;
    std::string src, dst;  // "" = not checked (family none)
    uint16_t sport, dport;
    uint8_t proto;
    uint16_t flags;
    uint8_t icmp_type;
    uint8_t vlans;
};

Bytes tcp4(uint8_t flags) {
    return PacketBuilder().ipv4(kClient, kVip).tcp(40000, 443, flags).payload(10).build();
}

std::vector<Good> good_frames() {
    using namespace nlbd::core;
    const auto inner_tcp4 =
        PacketBuilder().ipv4(kVip, kClient).tcp(443, 40000, kAck).payload(1400).build_l3();
    const auto inner_udp6 =
        PacketBuilder().ipv6(kVip6, kClient6).udp(53, 5353).payload(1300).build_l3();
    const auto inner_echo4 = PacketBuilder().ipv4(kVip, kClient).icmp_echo(1, 2).build_l3();
    const auto inner_tcp6_ext = PacketBuilder()
                                    .ipv6(kVip6, kClient6)
                                    .ipv6_ext(kProtoDestOpts, 16)
                                    .tcp(443, 50000, kAck)
                                    .build_l3();
    const auto big4 = PacketBuilder().ipv4(kClient, kVip).ipv4_id(0x4242).udp(5000, 53).payload(3000).build();
    const auto frags4 = fragment_ipv4(big4, 1500);
    const auto big6 = PacketBuilder().ipv6(kClient6, kVip6).ipv6_ext(kProtoHopByHop).tcp(40000, 443, kAck).payload(3000).build();
    const auto frags6 = fragment_ipv6(big6, 1280, 0xdeadbeef);
    const uint16_t tcp_ports = kHasPorts;

    std::vector<Good> g = {
        {"tcp4_syn", tcp4(kSyn), FrameKind::ipv4, kClient, kVip, 40000, 443, 6, uint16_t(tcp_ports | kTcpSyn), 0, 0},
        {"tcp4_synack", tcp4(kSyn | kAck), FrameKind::ipv4, kClient, kVip, 40000, 443, 6, uint16_t(tcp_ports | kTcpAck), 0, 0},
        {"tcp4_fin_ack", tcp4(kFin | kAck), FrameKind::ipv4, kClient, kVip, 40000, 443, 6, uint16_t(tcp_ports | kTcpFin | kTcpAck), 0, 0},
        {"tcp4_rst", tcp4(kRst), FrameKind::ipv4, kClient, kVip, 40000, 443, 6, uint16_t(tcp_ports | kTcpRst), 0, 0},
        {"tcp4_with_options", PacketBuilder().ipv4(kClient, kVip).tcp(1, 2, kSyn).tcp_options({2, 4, 5, 0xb4, 1, 1, 4, 2}).build(),
         FrameKind::ipv4, kClient, kVip, 1, 2, 6, uint16_t(tcp_ports | kTcpSyn), 0, 0},
        {"udp4_padded_to_60", PacketBuilder().ipv4(kClient, kVip).udp(5000, 53).payload(2).eth_pad(60).build(),
         FrameKind::ipv4, kClient, kVip, 5000, 53, 17, kHasPorts, 0, 0},
        {"vlan_8100", PacketBuilder().vlan(100).ipv4(kClient, kVip).udp(1, 2).build(),
         FrameKind::ipv4, kClient, kVip, 1, 2, 17, kHasPorts, 0, 1},
        {"qinq_88a8", PacketBuilder().vlan(10, kEthQinQ).vlan(20).ipv4(kClient, kVip).udp(1, 2).build(),
         FrameKind::ipv4, kClient, kVip, 1, 2, 17, kHasPorts, 0, 2},
        {"qinq_9100", PacketBuilder().vlan(10, kEthVlan9100).vlan(20).ipv6(kClient6, kVip6).udp(1, 2).build(),
         FrameKind::ipv6, kClient6, kVip6, 1, 2, 17, kHasPorts, 0, 2},
        {"ipv4_options_nop_rr_eol",
         PacketBuilder().ipv4(kClient, kVip).ipv4_options({1, 7, 7, 4, 0, 0, 0, 0, 0}).tcp(7, 8, kAck).build(),
         FrameKind::ipv4, kClient, kVip, 7, 8, 6, uint16_t(tcp_ports | kTcpAck), 0, 0},
        {"ipv4_options_full_40",
         PacketBuilder().ipv4(kClient, kVip).ipv4_options(std::vector<uint8_t>(40, 1)).udp(7, 8).build(),
         FrameKind::ipv4, kClient, kVip, 7, 8, 17, kHasPorts, 0, 0},
        {"ipv4_gre_no_ports", PacketBuilder().ipv4(kClient, kVip).l4_raw(kProtoGre, {0, 0, 0x08, 0}).payload(20).build(),
         FrameKind::ipv4, kClient, kVip, 0, 0, kProtoGre, 0, 0, 0},
        {"tcp6", PacketBuilder().ipv6(kClient6, kVip6).tcp(40000, 443, kSyn).build(),
         FrameKind::ipv6, kClient6, kVip6, 40000, 443, 6, uint16_t(tcp_ports | kTcpSyn), 0, 0},
        {"udp6", PacketBuilder().ipv6(kClient6, kVip6).udp(5353, 53).payload(5).eth_pad(80).build(),
         FrameKind::ipv6, kClient6, kVip6, 5353, 53, 17, kHasPorts, 0, 0},
        {"ipv6_ext_chain_hbh_rt_do_ah",
         PacketBuilder().ipv6(kClient6, kVip6).ipv6_ext(kProtoHopByHop, 8).ipv6_ext(kProtoRouting, 24)
             .ipv6_ext(kProtoDestOpts, 16).ipv6_ext(kProtoAh, 24).tcp(1000, 80, kAck).build(),
         FrameKind::ipv6, kClient6, kVip6, 1000, 80, 6, uint16_t(tcp_ports | kTcpAck), 0, 0},
        {"ipv6_ext_chain_at_limit",
         [] {
             PacketBuilder b;
             b.ipv6(kClient6, kVip6);
             for (unsigned i = 0; i < core::kMaxIpv6ExtHeaders; ++i) b.ipv6_ext(kProtoDestOpts);
             return b.udp(1, 2).build();
         }(),
         FrameKind::ipv6, kClient6, kVip6, 1, 2, 17, kHasPorts, 0, 0},
        {"ipv6_atomic_fragment_is_not_fragment",
         PacketBuilder().ipv6(kClient6, kVip6).ipv6_frag(0, false, 77).udp(1, 2).build(),
         FrameKind::ipv6, kClient6, kVip6, 1, 2, 17, kHasPorts, 0, 0},
        {"ipv6_no_next_header", PacketBuilder().ipv6(kClient6, kVip6).ipv6_ext(kProtoDestOpts).build(),
         FrameKind::ipv6, kClient6, kVip6, 0, 0, kProtoNoNext, 0, 0, 0},
        {"ipv4_first_fragment", frags4.at(0), FrameKind::ipv4, kClient, kVip, 5000, 53, 17,
         uint16_t(kFragment | kFirstFragment | kHasPorts), 0, 0},
        {"ipv4_later_fragment", frags4.at(1), FrameKind::ipv4, kClient, kVip, 0, 0, 17, kFragment, 0, 0},
        {"ipv4_last_fragment", frags4.back(), FrameKind::ipv4, kClient, kVip, 0, 0, 17, kFragment, 0, 0},
        {"ipv6_first_fragment", frags6.at(0), FrameKind::ipv6, kClient6, kVip6, 40000, 443, 6,
         uint16_t(kFragment | kFirstFragment | kHasPorts | kTcpAck), 0, 0},
        {"ipv6_later_fragment", frags6.at(1), FrameKind::ipv6, kClient6, kVip6, 0, 0, 6, kFragment, 0, 0},
        {"icmp4_echo", PacketBuilder().ipv4(kClient, kVip).icmp_echo(7, 1).payload(56).build(),
         FrameKind::ipv4, kClient, kVip, 0, 0, 1, kIcmpEcho, 8, 0},
        {"icmp4_echo_reply_no_flag", PacketBuilder().ipv4(kClient, kVip).icmp_echo(7, 1, true).build(),
         FrameKind::ipv4, kClient, kVip, 0, 0, 1, 0, 0, 0},
        {"icmp6_echo", PacketBuilder().ipv6(kClient6, kVip6).icmp_echo(7, 1).payload(56).build(),
         FrameKind::ipv6, kClient6, kVip6, 0, 0, 58, kIcmpEcho, 128, 0},
        // Errors: the key is the quoted flow seen from the client.
        {"icmp4_frag_needed_inner_tcp",
         PacketBuilder().ipv4("10.9.9.9", kVip).icmp_frag_needed(1400, inner_tcp4).build(),
         FrameKind::ipv4, kClient, kVip, 40000, 443, 6, uint16_t(kIcmpError | kHasPorts), 3, 0},
        {"icmp4_frag_needed_rfc792_quote_28_bytes",
         PacketBuilder().ipv4("10.9.9.9", kVip).icmp_error(3, 4, inner_tcp4, 1400, 28).build(),
         FrameKind::ipv4, kClient, kVip, 40000, 443, 6, uint16_t(kIcmpError | kHasPorts), 3, 0},
        {"icmp4_time_exceeded_inner_echo",
         PacketBuilder().ipv4("10.9.9.9", kVip).icmp_error(11, 0, inner_echo4).build(),
         FrameKind::ipv4, kClient, kVip, 0, 0, 1, kIcmpError, 11, 0},
        {"icmp4_param_problem_vlan",
         PacketBuilder().vlan(5).ipv4("10.9.9.9", kVip).icmp_error(12, 0, inner_tcp4, 0, 48).build(),
         FrameKind::ipv4, kClient, kVip, 40000, 443, 6, uint16_t(kIcmpError | kHasPorts), 12, 1},
        {"icmp6_packet_too_big_inner_udp",
         PacketBuilder().ipv6("2001:db8:ffff::1", kVip6).icmpv6_packet_too_big(1280, inner_udp6).build(),
         FrameKind::ipv6, kClient6, kVip6, 5353, 53, 17, uint16_t(kIcmpError | kHasPorts), 2, 0},
        {"icmp6_unreachable_inner_ext_chain",
         PacketBuilder().ipv6("2001:db8:ffff::1", kVip6).icmp_error(1, 4, inner_tcp6_ext).build(),
         FrameKind::ipv6, kClient6, kVip6, 50000, 443, 6, uint16_t(kIcmpError | kHasPorts), 1, 0},
        {"nd_solicit", PacketBuilder().nd_solicit(kVip6, "02:00:00:00:00:05").build(),
         FrameKind::nd_solicit, "fe80::1", kVip6, 0, 0, 58, 0, 135, 0},
        {"nd_solicit_no_option", PacketBuilder().ipv6(kClient6, "ff02::1:ff00:100").nd_solicit(kVip6).build(),
         FrameKind::nd_solicit, kClient6, kVip6, 0, 0, 58, 0, 135, 0},
        {"arp_request", PacketBuilder().arp_request("02:00:00:00:00:05", kClient, kVip).eth_pad().build(),
         FrameKind::arp, kClient, kVip, 0, 0, 0, kArpRequest, 0, 0},
        {"arp_reply_vlan",
         PacketBuilder().vlan(7).arp_reply("02:00:00:00:00:05", kClient, "02:00:00:00:00:06", kVip).build(),
         FrameKind::arp, kClient, kVip, 0, 0, 0, kArpReply, 0, 1},
        {"lldp_other_l2", PacketBuilder().ethertype(0x88cc).payload(30).build(),
         FrameKind::other_l2, "", "", 0, 0, 0, 0, 0, 0},
        {"vlan_other_l2", PacketBuilder().vlan(3).ethertype(0x88b5).payload(30).build(),
         FrameKind::other_l2, "", "", 0, 0, 0, 0, 0, 1},
        {"ieee8023_length_field", PacketBuilder().ethertype(0x0026).payload(38).build(),
         FrameKind::other_l2, "", "", 0, 0, 0, 0, 0, 0},
    };
    return g;
}

TEST(Parse, GoodFramesYieldTheExpectedKey) {
    for (const auto& c : good_frames()) {
        SCOPED_TRACE(c.name);
        ParsedFrame out;
        const ParseError err = parse(c.frame, out);
        ASSERT_EQ(err, ParseError::none) << nlbd::name_of(err);
        check_invariants(c.frame, err, out);
        EXPECT_EQ(out.kind, c.kind);
        EXPECT_EQ(out.vlan_count, c.vlans);
        EXPECT_EQ(out.l3_offset, 14 + 4 * c.vlans);
        if (!c.src.empty()) {
            EXPECT_EQ(out.key.src, ip(c.src)) << out.key.src.to_string();
        }
        if (!c.dst.empty()) {
            EXPECT_EQ(out.key.dst, ip(c.dst)) << out.key.dst.to_string();
        }
        EXPECT_EQ(out.key.sport, c.sport);
        EXPECT_EQ(out.key.dport, c.dport);
        EXPECT_EQ(out.key.proto, c.proto);
        EXPECT_EQ(out.key.flags, c.flags) << std::hex << out.key.flags;
        EXPECT_EQ(out.key.icmp_type, c.icmp_type);
    }
}

TEST(Parse, EthernetAddressesAreCopied) {
    const auto f = PacketBuilder().eth("02:00:00:00:00:0a", "02:bf:c0:a8:01:64").ipv4(kClient, kVip).udp(1, 2).build();
    ParsedFrame out;
    ASSERT_EQ(parse(f, out), ParseError::none);
    EXPECT_EQ(out.eth_src, mac("02:00:00:00:00:0a"));
    EXPECT_EQ(out.eth_dst, mac("02:bf:c0:a8:01:64"));
}

TEST(Parse, OffsetsAndLengthsPointAtTheHeaders) {
    ParsedFrame out;
    // IPv4 with 8 bytes of options behind one VLAN tag, padded frame.
    auto f = PacketBuilder().vlan(1).ipv4(kClient, kVip).ipv4_options({1, 1, 1, 1, 1, 1, 1, 1}).udp(1, 2).eth_pad(80).build();
    ASSERT_EQ(parse(f, out), ParseError::none);
    EXPECT_EQ(out.l3_offset, 18);
    EXPECT_EQ(out.l4_offset, 18 + 28);
    EXPECT_EQ(out.l3_length, 28 + 8);  // padding excluded
    // IPv6 with a 16-byte destination options header.
    f = PacketBuilder().ipv6(kClient6, kVip6).ipv6_ext(kProtoDestOpts, 16).tcp(1, 2).payload(3).build();
    ASSERT_EQ(parse(f, out), ParseError::none);
    EXPECT_EQ(out.l3_offset, 14);
    EXPECT_EQ(out.l4_offset, 14 + 40 + 16);
    EXPECT_EQ(out.l3_length, 40 + 16 + 20 + 3);
    // ARP
    f = PacketBuilder().arp_request("02:00:00:00:00:05", kClient, kVip).eth_pad().build();
    ASSERT_EQ(parse(f, out), ParseError::none);
    EXPECT_EQ(out.l3_length, 28);
}

TEST(Parse, Ipv4FragmentsCarryIdOffsetAndOnlyTheFirstHasPorts) {
    const auto big = PacketBuilder().ipv4(kClient, kVip).ipv4_id(0xbeef).tcp(40000, 443, kAck).payload(4000).build();
    const auto frags = fragment_ipv4(big, 1500);
    ASSERT_EQ(frags.size(), 3u);
    size_t expect_off = 0;
    for (size_t i = 0; i < frags.size(); ++i) {
        SCOPED_TRACE(i);
        ParsedFrame out;
        ASSERT_EQ(parse(frags[i], out), ParseError::none);
        EXPECT_EQ(out.key.frag_id, 0xbeefu);
        EXPECT_EQ(out.frag_offset, expect_off);
        EXPECT_TRUE(out.key.flags & core::kFragment);
        EXPECT_EQ(bool(out.key.flags & core::kFirstFragment), i == 0);
        EXPECT_EQ(bool(out.key.flags & core::kHasPorts), i == 0);
        EXPECT_EQ(out.l4_offset, i == 0 ? 34 : 0);
        expect_off += out.l3_length - 20;
    }
    EXPECT_EQ(expect_off, 20u + 4000u);  // TCP header + payload
}

TEST(Parse, Ipv6FragmentsCarryIdentOffsetAndOnlyTheFirstHasPorts) {
    const auto big = PacketBuilder().ipv6(kClient6, kVip6).udp(5000, 53).payload(3000).build();
    const auto frags = fragment_ipv6(big, 1280, 0x01020304);
    ASSERT_EQ(frags.size(), 3u);
    size_t expect_off = 0;
    for (size_t i = 0; i < frags.size(); ++i) {
        SCOPED_TRACE(i);
        ParsedFrame out;
        ASSERT_EQ(parse(frags[i], out), ParseError::none);
        EXPECT_EQ(out.key.frag_id, 0x01020304u);
        EXPECT_EQ(out.frag_offset, expect_off);
        EXPECT_EQ(out.key.proto, kProtoUdp);
        EXPECT_EQ(bool(out.key.flags & core::kFirstFragment), i == 0);
        EXPECT_EQ(bool(out.key.flags & core::kHasPorts), i == 0);
        if (i == 0) {
            EXPECT_EQ(out.key.sport, 5000);
            EXPECT_EQ(out.l4_offset, 14 + 40 + 8);
        }
        expect_off += out.l3_length - 48;
    }
    EXPECT_EQ(expect_off, 8u + 3000u);
}

TEST(Parse, FragmentingAFragmentKeepsMoreFragmentsOnItsLastPiece) {
    const auto big = PacketBuilder().ipv4(kClient, kVip).udp(1, 2).payload(3000).build();
    const auto once = fragment_ipv4(big, 1500);
    const auto twice = fragment_ipv4(once.at(0), 600);  // a router with a smaller MTU
    ASSERT_GE(twice.size(), 2u);
    ParsedFrame out;
    ASSERT_EQ(parse(twice.back(), out), ParseError::none);
    EXPECT_TRUE(out.key.flags & core::kFragment);
    EXPECT_FALSE(out.key.flags & core::kFirstFragment);
    EXPECT_EQ(bool(twice.back()[14 + 6] & 0x20), true);  // MF still set
}

// ---------------------------------------------------------------------------
// Malformed frames: each yields exactly its reason.

struct Bad {
    std::string name;
    Bytes frame;
    ParseError expect;
};

Bytes cut(Bytes f, size_t n) {
    f.resize(n);
    return f;
}
Bytes patch(Bytes f, size_t at, uint8_t v) {
    f.at(at) = v;
    return f;
}
Bytes patch16(Bytes f, size_t at, uint16_t v) {
    f.at(at) = static_cast<uint8_t>(v >> 8);
    f.at(at + 1) = static_cast<uint8_t>(v);
    return f;
}

std::vector<Bad> bad_frames() {
    const auto udp4 = PacketBuilder().ipv4(kClient, kVip).udp(1, 2).payload(20).build();  // l3 at 14, l4 at 34
    const auto tcp4f = tcp4(kAck);
    const auto udp6 = PacketBuilder().ipv6(kClient6, kVip6).udp(1, 2).payload(20).build();  // l4 at 54
    const auto arp = PacketBuilder().arp_request("02:00:00:00:00:05", kClient, kVip).build();
    const auto tcp4_big = PacketBuilder().ipv4(kClient, kVip).tcp(1, 2, kAck).payload(200).build();
    const auto tcp6_big = PacketBuilder().ipv6(kClient6, kVip6).tcp(1, 2, kAck).payload(200).build();
    const auto inner_tcp4 = PacketBuilder().ipv4(kVip, kClient).tcp(443, 40000, kAck).build_l3();
    const auto inner_tcp6 = PacketBuilder().ipv6(kVip6, kClient6).tcp(443, 40000, kAck).build_l3();
    auto chain = [](unsigned n) {
        PacketBuilder b;
        b.ipv6(kClient6, kVip6);
        for (unsigned i = 0; i < n; ++i) b.ipv6_ext(kProtoDestOpts);
        return b.udp(1, 2).build();
    };
    const auto nd = PacketBuilder().nd_solicit(kVip6, "02:00:00:00:00:05").build();  // icmp at 54

    return {
        {"empty", {}, ParseError::truncated_ethernet},
        {"eth_13_bytes", cut(udp4, 13), ParseError::truncated_ethernet},
        {"vlan_tag_cut", cut(PacketBuilder().vlan(1).ipv4(kClient, kVip).udp(1, 2).build(), 16), ParseError::truncated_vlan},
        {"qinq_inner_tag_cut", cut(PacketBuilder().vlan(1, kEthQinQ).vlan(2).ipv4(kClient, kVip).udp(1, 2).build(), 20),
         ParseError::truncated_vlan},
        {"three_vlan_tags", PacketBuilder().vlan(1, kEthQinQ).vlan(2).vlan(3).ipv4(kClient, kVip).udp(1, 2).build(),
         ParseError::too_many_vlans},
        {"arp_cut_in_fixed_header", cut(arp, 14 + 7), ParseError::truncated_arp},
        {"arp_cut_in_addresses", cut(arp, 14 + 27), ParseError::truncated_arp},
        {"arp_hw_type_not_ethernet", patch(arp, 15, 6), ParseError::bad_arp},
        {"arp_proto_not_ipv4", patch16(arp, 16, 0x86dd), ParseError::bad_arp},
        {"arp_plen_16", patch(arp, 19, 16), ParseError::bad_arp},
        {"ipv4_cut_in_header", cut(udp4, 14 + 19), ParseError::truncated_ipv4},
        {"ipv4_no_header", cut(udp4, 14), ParseError::truncated_ipv4},
        {"ipv4_ihl_past_frame", cut(patch(udp4, 14, 0x4f), 14 + 40), ParseError::truncated_ipv4},
        {"ipv4_version_6", patch(udp4, 14, 0x65), ParseError::bad_ipv4_version},
        {"ipv4_ihl_4", patch(udp4, 14, 0x44), ParseError::bad_ipv4_ihl},
        {"ipv4_ihl_0", patch(udp4, 14, 0x40), ParseError::bad_ipv4_ihl},
        {"ipv4_total_below_header", patch16(udp4, 16, 19), ParseError::bad_ipv4_total_length},
        {"ipv4_total_past_frame", patch16(udp4, 16, static_cast<uint16_t>(udp4.size() - 14 + 1)),
         ParseError::bad_ipv4_total_length},
        {"ipv4_truncated_by_capture", cut(udp4, udp4.size() - 1), ParseError::bad_ipv4_total_length},
        {"ipv4_option_len_overruns",
         PacketBuilder().ipv4(kClient, kVip).ipv4_options({1, 7, 9, 4, 0, 0, 0, 0}).udp(1, 2).build(),
         ParseError::bad_ipv4_options},
        {"ipv4_option_len_1", PacketBuilder().ipv4(kClient, kVip).ipv4_options({7, 1, 0, 0}).udp(1, 2).build(),
         ParseError::bad_ipv4_options},
        {"ipv4_option_no_len_byte", PacketBuilder().ipv4(kClient, kVip).ipv4_options({1, 1, 1, 7}).udp(1, 2).build(),
         ParseError::bad_ipv4_options},
        {"ipv6_cut_in_header", cut(udp6, 14 + 39), ParseError::truncated_ipv6},
        {"ipv6_version_4", patch(udp6, 14, 0x40), ParseError::bad_ipv6_version},
        {"ipv6_payload_length_past_frame", patch16(udp6, 18, static_cast<uint16_t>(udp6.size() - 54 + 1)),
         ParseError::bad_ipv6_payload_length},
        {"ipv6_truncated_by_capture", cut(udp6, udp6.size() - 1), ParseError::bad_ipv6_payload_length},
        {"ipv6_ext_cut_before_length",
         PacketBuilder().ipv6(kClient6, kVip6).ip_proto(kProtoDestOpts).l4_raw(kProtoDestOpts, {59}).build(),
         ParseError::truncated_ipv6_ext},
        {"ipv6_ext_length_past_payload",
         PacketBuilder().ipv6(kClient6, kVip6).ip_proto(kProtoDestOpts).l4_raw(kProtoDestOpts, {59, 1, 1, 4, 0, 0, 0, 0}).build(),
         ParseError::truncated_ipv6_ext},
        {"ipv6_fragment_header_cut",
         PacketBuilder().ipv6(kClient6, kVip6).ip_proto(kProtoFragment).l4_raw(kProtoFragment, {17, 0, 0, 1}).build(),
         ParseError::truncated_ipv6_ext},
        {"ipv6_ah_length_past_payload",
         PacketBuilder().ipv6(kClient6, kVip6).ip_proto(kProtoAh).l4_raw(kProtoAh, {17, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}).build(),
         ParseError::truncated_ipv6_ext},
        {"ipv6_chain_of_9", chain(core::kMaxIpv6ExtHeaders + 1), ParseError::ipv6_ext_chain_too_long},
        {"ipv6_chain_of_64", chain(64), ParseError::ipv6_ext_chain_too_long},
        {"ipv6_two_fragment_headers",
         PacketBuilder().ipv6(kClient6, kVip6).ipv6_frag(0, true, 1).ipv6_frag(0, true, 1).udp(1, 2).build(),
         ParseError::bad_ipv6_ext_order},
        {"ipv6_hop_by_hop_not_first",
         PacketBuilder().ipv6(kClient6, kVip6).ipv6_ext(kProtoDestOpts).ipv6_ext(kProtoHopByHop).udp(1, 2).build(),
         ParseError::bad_ipv6_ext_order},
        {"ipv4_first_fragment_8_bytes_of_tcp", fragment_ipv4(tcp4_big, 28).at(0), ParseError::tiny_fragment},
        {"ipv4_first_fragment_tcp_options_cut",
         fragment_ipv4(PacketBuilder().ipv4(kClient, kVip).tcp(1, 2, kSyn).tcp_options(std::vector<uint8_t>(20, 1)).payload(100).build(), 44).at(0),
         ParseError::tiny_fragment},
        {"ipv4_first_fragment_empty", PacketBuilder().ipv4(kClient, kVip).ipv4_frag(0, true).ip_proto(kProtoUdp).build(),
         ParseError::tiny_fragment},
        {"ipv4_first_fragment_udp_cut", PacketBuilder().ipv4(kClient, kVip).ipv4_frag(0, true).l4_raw(kProtoUdp, {0, 1, 0, 2}).build(),
         ParseError::tiny_fragment},
        {"ipv4_tcp_fragment_at_offset_8", PacketBuilder().ipv4(kClient, kVip).ipv4_frag(8, false).l4_raw(kProtoTcp).payload(16).build(),
         ParseError::tiny_fragment},
        {"ipv6_first_fragment_8_bytes_of_tcp", fragment_ipv6(tcp6_big, 40 + 8 + 8, 9).at(0), ParseError::tiny_fragment},
        {"ipv6_first_fragment_chain_cut",
         PacketBuilder().ipv6(kClient6, kVip6).ipv6_frag(0, true, 5).ip_proto(kProtoDestOpts).l4_raw(kProtoDestOpts, {17, 1, 0, 0, 0, 0, 0, 0}).build(),
         ParseError::tiny_fragment},
        {"ipv6_first_fragment_empty", PacketBuilder().ipv6(kClient6, kVip6).ipv6_frag(0, true, 5).ip_proto(kProtoTcp).build(),
         ParseError::tiny_fragment},
        {"ipv4_fragment_past_65535", PacketBuilder().ipv4(kClient, kVip).ipv4_frag(65528, false).l4_raw(kProtoUdp).payload(16).build(),
         ParseError::bad_fragment_offset},
        {"ipv4_fragment_ending_at_65536", PacketBuilder().ipv4(kClient, kVip).ipv4_frag(65512, true).l4_raw(kProtoUdp).payload(4).build(),
         ParseError::bad_fragment_offset},
        {"ipv6_fragment_past_65535", PacketBuilder().ipv6(kClient6, kVip6).ipv6_frag(65528, false, 3).l4_raw(kProtoUdp).payload(16).build(),
         ParseError::bad_fragment_offset},
        {"tcp_cut_19_bytes", cut(tcp4f, 34 + 19), ParseError::bad_ipv4_total_length},
        {"tcp_header_19_bytes", PacketBuilder().ipv4(kClient, kVip).l4_raw(kProtoTcp).payload(19).build(), ParseError::truncated_tcp},
        {"tcp_no_header", PacketBuilder().ipv4(kClient, kVip).ip_proto(kProtoTcp).build(), ParseError::truncated_tcp},
        {"tcp6_header_10_bytes", PacketBuilder().ipv6(kClient6, kVip6).l4_raw(kProtoTcp).payload(10).build(), ParseError::truncated_tcp},
        {"tcp_data_offset_4", patch(tcp4f, 34 + 12, 0x40), ParseError::bad_tcp_offset},
        {"tcp_data_offset_past_packet", patch(tcp4f, 34 + 12, 0xf0), ParseError::bad_tcp_offset},
        {"udp_header_7_bytes", PacketBuilder().ipv4(kClient, kVip).l4_raw(kProtoUdp).payload(7).build(), ParseError::truncated_udp},
        {"udp6_no_header", PacketBuilder().ipv6(kClient6, kVip6).ip_proto(kProtoUdp).build(), ParseError::truncated_udp},
        {"udp_length_7", patch16(udp4, 34 + 4, 7), ParseError::bad_udp_length},
        {"udp_length_past_payload", patch16(udp4, 34 + 4, 8 + 21), ParseError::bad_udp_length},
        {"icmp_header_7_bytes", PacketBuilder().ipv4(kClient, kVip).l4_raw(kProtoIcmp).payload(7).build(), ParseError::truncated_icmp},
        {"icmp6_header_4_bytes", PacketBuilder().ipv6(kClient6, kVip6).l4_raw(kProtoIcmpv6, {128, 0, 0, 0}).build(),
         ParseError::truncated_icmp},
        {"icmp4_error_inner_cut_in_ip", PacketBuilder().ipv4("10.9.9.9", kVip).icmp_error(3, 4, inner_tcp4, 1400, 19).build(),
         ParseError::truncated_icmp_inner},
        {"icmp4_error_no_inner", PacketBuilder().ipv4("10.9.9.9", kVip).icmp_error(11, 0, {}).build(), ParseError::truncated_icmp_inner},
        {"icmp4_error_inner_ports_cut", PacketBuilder().ipv4("10.9.9.9", kVip).icmp_error(3, 3, inner_tcp4, 0, 23).build(),
         ParseError::truncated_icmp_inner},
        {"icmp4_error_inner_is_ipv6", PacketBuilder().ipv4("10.9.9.9", kVip).icmp_error(3, 3, inner_tcp6).build(),
         ParseError::truncated_icmp_inner},
        {"icmp4_error_inner_bad_ihl", PacketBuilder().ipv4("10.9.9.9", kVip).icmp_error(3, 3, patch(inner_tcp4, 0, 0x43)).build(),
         ParseError::truncated_icmp_inner},
        {"icmp6_error_inner_cut", PacketBuilder().ipv6("2001:db8:ffff::1", kVip6).icmpv6_packet_too_big(1280, cut(inner_tcp6, 39)).build(),
         ParseError::truncated_icmp_inner},
        {"icmp6_error_inner_ports_cut", PacketBuilder().ipv6("2001:db8:ffff::1", kVip6).icmp_error(1, 0, inner_tcp6, 0, 43).build(),
         ParseError::truncated_icmp_inner},
        {"icmp6_error_inner_is_ipv4", PacketBuilder().ipv6("2001:db8:ffff::1", kVip6).icmp_error(1, 0, inner_tcp4).build(),
         ParseError::truncated_icmp_inner},
        {"nd_cut_before_target", cut(patch16(nd, 18, 8 + 8), 54 + 16), ParseError::bad_nd},
        {"nd_hop_limit_64", patch(nd, 21, 64), ParseError::bad_nd},
        {"nd_code_1", patch(nd, 55, 1), ParseError::bad_nd},
        {"nd_multicast_target", patch(nd, 62, 0xff), ParseError::bad_nd},
        {"nd_option_length_0", patch(nd, 54 + 24 + 1, 0), ParseError::bad_nd},
        {"nd_option_past_end", patch(nd, 54 + 24 + 1, 2), ParseError::bad_nd},
    };
}

TEST(Parse, EachMalformedFrameYieldsExactlyItsReason) {
    for (const auto& c : bad_frames()) {
        SCOPED_TRACE(c.name);
        ParsedFrame out;
        const ParseError err = parse(c.frame, out);
        EXPECT_EQ(err, c.expect) << "got " << nlbd::name_of(err) << ", want " << nlbd::name_of(c.expect);
    }
}

TEST(Parse, EveryParseErrorHasAMalformedCase) {
    std::set<ParseError> covered;
    for (const auto& c : bad_frames()) covered.insert(c.expect);
    for (unsigned i = 1; i < nlbd::kParseErrorCount; ++i) {
        const auto e = static_cast<ParseError>(i);
        EXPECT_TRUE(covered.count(e)) << "no test case for " << nlbd::name_of(e);
    }
}

TEST(Parse, OutputIsResetBetweenFrames) {
    ParsedFrame out;
    ASSERT_EQ(parse(tcp4(kSyn), out), ParseError::none);
    ASSERT_EQ(parse(PacketBuilder().ethertype(0x88cc).payload(10).build(), out), ParseError::none);
    EXPECT_EQ(out.kind, FrameKind::other_l2);
    EXPECT_EQ(out.key.flags, 0);
    EXPECT_EQ(out.key.sport, 0);
    EXPECT_EQ(out.key.src.family, nlbd::Family::none);
}

// ---------------------------------------------------------------------------
// Robustness properties

std::vector<Bytes> corpus() {
    std::vector<Bytes> all;
    for (auto& g : good_frames()) all.push_back(std::move(g.frame));
    for (auto& b : bad_frames()) all.push_back(std::move(b.frame));
    return all;
}

TEST(Parse, EveryPrefixOfAValidFrameParsesSafelyAndShortIpIsAnError) {
    for (const auto& g : good_frames()) {
        SCOPED_TRACE(g.name);
        ParsedFrame full;
        ASSERT_EQ(parse(g.frame, full), ParseError::none);
        const size_t needed = g.kind == FrameKind::other_l2 ? full.l3_offset : full.l3_offset + size_t{full.l3_length};
        for (size_t n = 0; n < g.frame.size(); ++n) {
            SCOPED_TRACE(n);
            const Bytes prefix(g.frame.begin(), g.frame.begin() + static_cast<std::ptrdiff_t>(n));
            ParsedFrame out;
            const ParseError err = parse(prefix, out);
            check_invariants(prefix, err, out);
            if (n < needed) {
                EXPECT_NE(err, ParseError::none);
            } else {
                // Only Ethernet padding was removed: same result.
                EXPECT_EQ(err, ParseError::none);
                EXPECT_EQ(out.key.flags, full.key.flags);
            }
        }
    }
}

TEST(Parse, RandomMutationsKeepTheInvariants) {
    std::mt19937 rng(12345);  // deterministic
    const auto frames = corpus();
    for (int round = 0; round < 20000; ++round) {
        Bytes f = frames[rng() % frames.size()];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !f.empty(); ++e) {
            switch (rng() % 4) {
            case 0: f[rng() % f.size()] = static_cast<uint8_t>(rng()); break;
            case 1: f[rng() % f.size()] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
            case 2: f.resize(rng() % (f.size() + 1)); break;
            default: f.insert(f.begin() + static_cast<std::ptrdiff_t>(rng() % (f.size() + 1)), static_cast<uint8_t>(rng())); break;
            }
        }
        ParsedFrame out;
        const ParseError err = parse(f, out);
        ASSERT_NO_FATAL_FAILURE(check_invariants(f, err, out)) << "round " << round;
    }
}

}  // namespace
