#pragma once
// The benchmark traffic and cluster, shared by bench_pipeline (micro) and
// nlbd-bench-pcapgen (the capture that scripts/bench_e2e.sh replays), so the
// micro and end-to-end numbers are about the same frames.
//
// Flow mix (one frame per flow, deterministic, shuffled):
//   70% TCP/IPv4 to a VIP (443 50%, 80 30%, 25 5% [disabled rule],
//       1..1000 5% [no rule: default host], 1024+ 10%; 5% SYN, rest ACK)
//   15% UDP/IPv4 to a VIP (53 or 1024+)
//   10% TCP/IPv6 to the IPv6 VIP (443 or 80)
//    5% others: IPv4 fragments of 3000-byte UDP datagrams (first and later
//       fragments), ARP requests for a VIP, TCP to the node's own address
//       (not a VIP), ICMP echo to a VIP.
// Frame sizes IMIX-like: 7/12 60 bytes, 4/12 590 bytes, 1/12 1514 bytes
// (without FCS; i.e. 64 / 594 / 1518 on the wire).
//
// Cluster: VIPs 10.0.0.100-103 and 2001:db8::100, unicast, static members
// 1, 2, 3 with equal weights; this node is host 1.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "nlbd/core/rules.hpp"
#include "nlbd/core/types.hpp"
#include "fixtures.hpp"
#include "packet_builder.hpp"

namespace nlbd::bench {

using nlbd::testing::Bytes;
using nlbd::testing::PacketBuilder;

// The cluster is the fixture table's (tests/support/fixtures.hpp).
using fixture::kClusterMac;
using fixture::kDedicated;
using fixture::kVip4;
using fixture::kVip6;
using fixture::make_rule;
using fixture::rules;
using fixture::vips;

struct MixFrame {
    Bytes bytes;
    const char* kind;  // tcp4, udp4, tcp6, frag4, arp, non_vip, icmp_echo
};

namespace detail {

// IMIX-like frame sizes between 64 and 1518 bytes on the wire.
inline size_t pick_size(std::mt19937& rng) {
    const unsigned p = rng() % 12;
    if (p < 7) return 60;
    if (p < 11) return 590;
    return 1514;
}

using fixture::v4_client;
using fixture::v6_client;

inline uint16_t pick_dport(std::mt19937& rng) {
    const unsigned p = rng() % 100;
    if (p < 50) return 443;
    if (p < 80) return 80;
    if (p < 85) return 25;
    if (p < 90) return static_cast<uint16_t>(rng() % 1000 + 1);
    return static_cast<uint16_t>(1024 + rng() % 64000);
}

}  // namespace detail

// `count` frames of the mix (one per flow), shuffled; every frame is at least
// 60 bytes. Deterministic for a given count and seed on one standard library.
inline std::vector<MixFrame> flow_mix(size_t count, uint32_t seed = 12345) {
    using detail::v4_client;
    using detail::v6_client;
    std::mt19937 rng(seed);
    std::vector<MixFrame> frames;
    frames.reserve(count + 4);
    for (uint32_t i = 0; frames.size() < count; ++i) {
        const unsigned cls = rng() % 100;
        const size_t size = detail::pick_size(rng);
        const auto sport = static_cast<uint16_t>(1024 + rng() % 64000);
        const char* vip = kVip4[rng() % kVip4.size()];
        PacketBuilder b;
        b.eth("02:00:00:00:00:01", kClusterMac);
        if (cls < 70) {
            const uint8_t flags = rng() % 20 == 0 ? nlbd::testing::kSyn : nlbd::testing::kAck;
            b.ipv4(v4_client(i), vip).tcp(sport, detail::pick_dport(rng), flags).payload(size > 54 ? size - 54 : 0);
            frames.push_back({b.build(), "tcp4"});
        } else if (cls < 85) {
            const uint16_t dport = rng() % 2 ? 53 : static_cast<uint16_t>(1024 + rng() % 64000);
            b.ipv4(v4_client(i), vip).udp(sport, dport).payload(size > 42 ? size - 42 : 0);
            frames.push_back({b.build(), "udp4"});
        } else if (cls < 95) {
            const uint16_t dport = rng() % 3 ? 443 : 80;
            b.ipv6(v6_client(i), kVip6).tcp(sport, dport).payload(size > 74 ? size - 74 : 0);
            frames.push_back({b.build(), "tcp6"});
        } else if (cls < 97) {
            // A 3000-byte UDP datagram in MTU-1500 fragments, in order.
            b.ipv4(v4_client(i), vip).ipv4_id(static_cast<uint16_t>(i)).udp(sport, 4500).payload(3000);
            for (auto& f : nlbd::testing::fragment_ipv4(b.build(), 1500))
                frames.push_back({std::move(f), "frag4"});
        } else if (cls < 98) {
            PacketBuilder a;
            a.arp_request("02:00:00:00:00:01", v4_client(i), vip).eth_pad();
            frames.push_back({a.build(), "arp"});
        } else if (cls < 99) {
            b.ipv4(v4_client(i), kDedicated).tcp(sport, 22).payload(size > 54 ? size - 54 : 0);
            frames.push_back({b.build(), "non_vip"});
        } else {
            b.ipv4(v4_client(i), vip).icmp_echo(static_cast<uint16_t>(i), 1).payload(56);
            frames.push_back({b.build(), "icmp_echo"});
        }
    }
    frames.resize(count);
    // Fragments of one datagram stay in order relative to each other only by
    // chance after the shuffle: the data plane must cope (FragTable holds).
    std::shuffle(frames.begin(), frames.end(), rng);
    for (auto& f : frames)
        if (f.bytes.size() < 60) f.bytes.resize(60, 0);
    return frames;
}

}  // namespace nlbd::bench
