#pragma once
// The fixture table (issue 15): frames built with PacketBuilder, each with
// what the cluster must do with it, for one cluster. The pipeline's unit test
// (tests/unit/pipeline_test.cpp) checks every entry on hosts 1, 2 and 3, and
// the benchmark (bench/bench_pipeline.cpp, BM_Fixtures and BM_ByClass) times
// the same frames and counts how many got their expected verdict, so what is
// measured is what is tested. bench/flow_mix.hpp (the end-to-end capture)
// uses the same cluster.
//
// Cluster: VIPs 10.0.0.100-103 and 2001:db8::100, unicast, static members
// 1, 2, 3 with equal weights, default host 1. Rules: the seed-like set
// (rules(0)) and, in the fixture cluster only, a single-host rule for
// 10.0.0.103:3389/tcp whose best handling priority is host 3's.

#include <array>
#include <cstdio>
#include <memory>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlbd/core/reasons.hpp"
#include "nlbd/core/rules.hpp"
#include "nlbd/core/snapshot.hpp"
#include "nlbd/core/types.hpp"
#include "packet_builder.hpp"

namespace nlbd::fixture {

using nlbd::testing::Bytes;
using nlbd::testing::PacketBuilder;

inline constexpr const char* kClusterMac = "02:bf:0a:00:00:64";
inline constexpr const char* kClientMac = "02:00:00:00:00:01";
inline constexpr std::array<const char*, 4> kVip4 = {"10.0.0.100", "10.0.0.101", "10.0.0.102",
                                                     "10.0.0.103"};
inline constexpr const char* kVip6 = "2001:db8::100";
inline constexpr const char* kDedicated = "10.0.0.11";  // this node's own address: not a VIP
inline constexpr uint16_t kHeartbeatEthertype = 0x88B5;  // the daemon's default
inline constexpr uint16_t kSingleHostPort = 3389;        // fixture cluster: 10.0.0.103 only
inline constexpr HostId kSingleHostBest = 3;

inline std::vector<IpAddr> vips() {
    std::vector<IpAddr> v;
    for (const char* a : kVip4) v.push_back(nlbd::testing::ip(a));
    v.push_back(nlbd::testing::ip(kVip6));
    return v;
}

inline PortRule make_rule(std::optional<IpAddr> vip, uint16_t lo, uint16_t hi, Protocol p, FilterMode m,
                          Affinity a) {
    PortRule r;
    r.vip = vip;
    r.port_lo = lo;
    r.port_hi = hi;
    r.protocol = p;
    r.mode = m;
    r.affinity = a;
    r.handling_priority = m == FilterMode::single ? 1 : 0;
    return r;
}

// n == 0: the seed-like hand-written set (HTTPS affinity none, HTTP single,
// SMTP disabled, DNS/UDP none, 1024-65535 single). n == 1: NLB's default
// rule. n > 1: n rules spread over the VIPs, each VIP's port space cut into
// equal ranges, protocol both; affinities cycle none/single/network, every
// 7th rule single-host, every 16th disabled.
inline std::vector<PortRule> rules(unsigned n) {
    std::vector<PortRule> out;
    if (n == 0) {
        out.push_back(make_rule({}, 443, 443, Protocol::tcp, FilterMode::multiple, Affinity::none));
        out.push_back(make_rule({}, 80, 80, Protocol::tcp, FilterMode::multiple, Affinity::single));
        out.push_back(make_rule({}, 25, 25, Protocol::tcp, FilterMode::disabled, Affinity::single));
        out.push_back(make_rule({}, 53, 53, Protocol::udp, FilterMode::multiple, Affinity::none));
        out.push_back(make_rule({}, 1024, 65535, Protocol::both, FilterMode::multiple, Affinity::single));
        return out;
    }
    if (n == 1) {
        out.push_back(default_port_rule());
        return out;
    }
    const auto v = vips();
    const auto nv = static_cast<unsigned>(v.size());
    const unsigned per_vip = (n + nv - 1) / nv;
    const unsigned width = 65536 / per_vip;
    for (unsigned i = 0; i < n; ++i) {
        const unsigned j = i / nv;
        const auto lo = static_cast<uint16_t>(j * width);
        const auto hi = static_cast<uint16_t>(j + 1 == per_vip ? 65535 : (j + 1) * width - 1);
        FilterMode m = FilterMode::multiple;
        if (i % 16 == 15) m = FilterMode::disabled;
        else if (i % 7 == 6) m = FilterMode::single;
        out.push_back(make_rule(v[i % nv], lo, hi, Protocol::both, m, static_cast<Affinity>(i % 3)));
    }
    return out;
}

// Host `self` of the three static members, equal weights; single-host rules:
// host 1 first (handling priority = id). affinity_timeout_s > 0: every
// multiple-host rule with client affinity gets it (extended affinity).
// with_single_host_rule: the fixture cluster (the 3389 rule, host 3 first).
inline core::SnapshotInput cluster_input(HostId self, unsigned nrules = 0, uint32_t affinity_timeout_s = 0,
                                         bool with_single_host_rule = false) {
    core::SnapshotInput in;
    in.self = self;
    in.epoch = 1;
    in.buckets = kDefaultBuckets;
    in.vips = vips();
    in.rules = rules(nrules);
    for (PortRule& r : in.rules)
        if (r.mode == FilterMode::multiple && r.affinity != Affinity::none) r.affinity_timeout_s = affinity_timeout_s;
    if (with_single_host_rule)
        in.rules.push_back(make_rule(nlbd::testing::ip(kVip4[3]), kSingleHostPort, kSingleHostPort, Protocol::tcp,
                                     FilterMode::single, Affinity::none));
    const size_t n = in.rules.empty() ? 1 : in.rules.size();
    for (HostId h = 1; h <= 3; ++h) {
        core::Member m;
        m.id = h;
        m.weights.assign(n, 50);
        m.priorities.assign(n, h);
        if (with_single_host_rule) m.priorities.back() = static_cast<uint8_t>(h % 3 + 1);  // 3 -> 1: best
        in.members.push_back(std::move(m));
    }
    return in;
}

// The fixture cluster as host `self` sees it.
inline std::shared_ptr<const core::Snapshot> fixture_snapshot(HostId self) {
    return core::compile_snapshot(cluster_input(self, 0, 0, true));
}

// A client address per index: 172.16-31.x.y, and 2001:db8:1xx:y::z.
inline std::string v4_client(uint32_t i) {
    return "172." + std::to_string(16 + (i >> 16) % 16) + "." + std::to_string((i >> 8) & 255) + "." +
           std::to_string(i & 255);
}

inline std::string v6_client(uint32_t i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "2001:db8:%x:%x::%x", 0x100 + (i >> 16), (i >> 8) & 255, (i & 255) + 1);
    return buf;
}

// A 64-byte TCP/IPv4 frame from client i to VIP:dport (the benchmark's
// per-class frames are these).
inline Bytes tcp4(uint32_t client, const char* vip, uint16_t dport, uint8_t flags) {
    PacketBuilder b;
    b.eth(kClientMac, kClusterMac)
        .ipv4(v4_client(client), vip)
        .tcp(static_cast<uint16_t>(1024 + (client * 7919) % 64000), dport, flags)
        .eth_pad();
    return b.build();
}

// How many of hosts 1, 2, 3 take a fixture, i.e. give it `taken`; the others
// give it `left`.
enum class Takers : uint8_t { one, every, none };

struct Fixture {
    std::string name;
    std::vector<Bytes> frames;  // in this order, in one burst; all get the same verdicts
    Takers takers = Takers::one;
    Verdict taken = Verdict::accepted;
    Verdict left = Verdict::not_owner;
    HostId taker = kNoHost;  // Takers::one: the host the cluster names (default host, best
                             // priority); kNoHost when the hash picks it
    ParseError error = ParseError::none;  // Verdict::malformed: the parse error counted
    bool heartbeat = false;               // handed to the control thread, no verdict from decide
    bool held = false;  // a lone later fragment: held, then frag_timeout at expiry (every host)
};

// The table. `variant` changes the clients (addresses and ports), never what
// must happen: the benchmark takes many variants for distinct flows.
inline std::vector<Fixture> fixture_table(uint32_t variant = 0) {
    using namespace nlbd::testing;
    const uint32_t c = variant * 64;  // client index base
    const std::string v6c = v6_client(variant);
    const auto sp = [&](uint32_t k) { return static_cast<uint16_t>(1024 + (variant * 131 + k * 977) % 64000); };
    std::vector<Fixture> t;
    const auto one = [&](std::string name, Bytes f, Verdict taken = Verdict::accepted,
                         Verdict left = Verdict::not_owner, HostId taker = kNoHost) {
        Fixture x;
        x.name = std::move(name);
        x.frames.push_back(std::move(f));
        x.taken = taken;
        x.left = left;
        x.taker = taker;
        t.push_back(std::move(x));
    };
    // The same verdict on every host; returns the entry for its extra flags.
    const auto all = [&](std::string name, Bytes f, Takers k, Verdict v) -> Fixture& {
        Fixture x;
        x.name = std::move(name);
        x.frames.push_back(std::move(f));
        x.takers = k;
        x.taken = x.left = v;
        t.push_back(std::move(x));
        return t.back();
    };

    // Multiple-host rules: one host by the hash (persistence: a SYN is a new
    // connection, an ACK in a clean bucket is adopted: both accepted).
    one("tcp4 443 syn", tcp4(c + 1, kVip4[0], 443, kSyn));
    one("tcp4 443 ack", tcp4(c + 2, kVip4[1], 443, kAck));
    one("tcp4 80 ack (affinity single)", tcp4(c + 3, kVip4[2], 80, kAck));
    one("tcp4 50000 syn (1024-65535, both)", tcp4(c + 4, kVip4[3], 50000, kSyn));
    one("udp4 53",
        PacketBuilder().eth(kClientMac, kClusterMac).ipv4(v4_client(c + 5), kVip4[0]).udp(sp(5), 53).payload(30).build());
    one("udp4 5000 (1024-65535, both)",
        PacketBuilder().eth(kClientMac, kClusterMac).ipv4(v4_client(c + 6), kVip4[1]).udp(sp(6), 5000).eth_pad().build());
    one("tcp6 443 syn", PacketBuilder().eth(kClientMac, kClusterMac).ipv6(v6c, kVip6).tcp(sp(7), 443, kSyn).build());
    one("tcp6 80 ack", PacketBuilder().eth(kClientMac, kClusterMac).ipv6(v6c, kVip6).tcp(sp(8), 80, kAck).build());
    one("tcp4 443 vlan 100", PacketBuilder()
                                 .eth(kClientMac, kClusterMac)
                                 .vlan(100)
                                 .ipv4(v4_client(c + 9), kVip4[0])
                                 .tcp(sp(9), 443, kAck)
                                 .eth_pad()
                                 .build());
    one("tcp4 443 ip options", PacketBuilder()
                                   .eth(kClientMac, kClusterMac)
                                   .ipv4(v4_client(c + 10), kVip4[0])
                                   .ipv4_options({1, 1, 1, 0})
                                   .tcp(sp(10), 443, kAck)
                                   .eth_pad()
                                   .build());
    one("icmp echo to a VIP",
        PacketBuilder().eth(kClientMac, kClusterMac).ipv4(v4_client(c + 11), kVip4[0]).icmp_echo(7, 1).payload(8).build());
    {
        // ICMP "fragmentation needed" about a TCP flow: the flow's owner.
        const Bytes inner = PacketBuilder().ipv4(kVip4[0], v4_client(c + 12)).tcp(443, sp(12), kAck).build_l3();
        one("icmp error about a tcp4 443 flow", PacketBuilder()
                                                    .eth(kClientMac, kClusterMac)
                                                    .ipv4("192.0.2.1", kVip4[0])
                                                    .icmp_frag_needed(1400, inner)
                                                    .build());
    }
    {
        // A fragmented UDP datagram (port 53): the first fragment decides,
        // the later ones follow it; in order and last fragment first.
        const Bytes whole = PacketBuilder()
                                .eth(kClientMac, kClusterMac)
                                .ipv4(v4_client(c + 13), kVip4[2])
                                .ipv4_id(static_cast<uint16_t>(variant))
                                .udp(sp(13), 53)
                                .payload(3000)
                                .build();
        Fixture x;
        x.name = "udp4 53 in 3 fragments";
        x.frames = fragment_ipv4(whole, 1500);
        t.push_back(x);
        x.name = "udp4 53 in 3 fragments, last first";
        std::swap(x.frames.front(), x.frames.back());
        // Another datagram: other id, so the table sees it as new.
        for (Bytes& f : x.frames) f[14 + 5] ^= 0x5a;  // IPv4 identification, low byte
        for (Bytes& f : x.frames) {                   // and a valid header checksum again
            f[14 + 10] = f[14 + 11] = 0;
            nlbd::testing::detail::put16(f, 14 + 10,
                                         nlbd::testing::detail::fold(nlbd::testing::detail::sum16(f.data() + 14, 20)));
        }
        t.push_back(std::move(x));
    }

    // Decided by the cluster, not the hash.
    one("tcp4 3389 (single-host rule, host 3 first)", tcp4(c + 14, kVip4[3], kSingleHostPort, kSyn),
        Verdict::accepted, Verdict::not_owner, kSingleHostBest);
    one("tcp4 8 (no rule: default host)", tcp4(c + 15, kVip4[0], 8, kSyn), Verdict::default_host_accepted,
        Verdict::default_host_other, 1);
    one("arp request for a VIP",
        PacketBuilder().arp_request(kClientMac, v4_client(c + 16), kVip4[1]).eth_pad().build(), Verdict::arp_replied,
        Verdict::arp_not_default, 1);
    one("neighbour solicitation for the IPv6 VIP",
        PacketBuilder().nd_solicit(kVip6, kClientMac).build(),
        Verdict::nd_replied, Verdict::nd_not_default, 1);

    // Every host, or none.
    all("tcp4 25 (disabled rule)", tcp4(c + 17, kVip4[0], 25, kSyn), Takers::none, Verdict::disabled_rule);
    all("tcp4 to the node's own address", tcp4(c + 18, kDedicated, 22, kSyn), Takers::every, Verdict::passed_non_vip);
    all("arp request for another address",
        PacketBuilder().arp_request(kClientMac, v4_client(c + 19), "10.0.0.99").eth_pad().build(), Takers::every,
        Verdict::passed_non_vip);
    all("heartbeat",
        PacketBuilder().eth("02:01:0a:00:00:64", "ff:ff:ff:ff:ff:ff").ethertype(kHeartbeatEthertype).payload(80).build(),
        Takers::every, Verdict::heartbeat)
        .heartbeat = true;
    all("lone later fragment (its first never comes)",
        PacketBuilder()
            .eth(kClientMac, kClusterMac)
            .ipv4(v4_client(c + 20), kVip4[0])
            .ipv4_id(static_cast<uint16_t>(0x8000 | variant))
            .ipv4_frag(1480, false)
            .l4_raw(kProtoUdp)
            .payload(100)
            .build(),
        Takers::none, Verdict::frag_timeout)
        .held = true;
    {
        Bytes f = tcp4(c + 21, kVip4[0], 443, kAck);
        f[14 + 20 + 12] = 0x10;  // TCP data offset 1 (4 bytes), below the minimum of 5
        all("tcp4 with a 4-byte header (malformed)", std::move(f), Takers::none, Verdict::malformed).error =
            ParseError::bad_tcp_offset;
    }
    {
        Bytes f = tcp4(c + 22, kVip4[0], 443, kAck);
        f.resize(14 + 12);
        all("ipv4 header cut short (malformed)", std::move(f), Takers::none, Verdict::malformed).error =
            ParseError::truncated_ipv4;
    }
    return t;
}

}  // namespace nlbd::fixture
