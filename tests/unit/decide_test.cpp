// Properties of the decision (decide.hpp, SPEC §2-3): exactly one host
// accepts each VIP flow, disabled rules drop everywhere, single rules go to
// the best priority, unmatched VIP traffic goes to the default host, ARP/ND
// answered by the default host only, non-VIP traffic passes, affinity keys
// hold, ICMP errors follow their inner flow. Table-driven cases run through
// the real parser (packet_builder + parse_frame) as well as hand-built keys.

#include "nlbd/core/decide.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <set>

#include "nlbd/core/hash.hpp"
#include "packet_builder.hpp"

using namespace nlbd;
using namespace nlbd::core;
using nlbd::testing::PacketBuilder;

namespace {

constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1;
const char* const kVip = "192.0.2.100";
const char* const kVip6 = "2001:db8::100";

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

PortRule rule(uint16_t lo, uint16_t hi, FilterMode m, Affinity a = Affinity::none,
              Protocol p = Protocol::both) {
    PortRule r;
    r.port_lo = lo;
    r.port_hi = hi;
    r.mode = m;
    r.affinity = a;
    r.protocol = p;
    return r;
}

// The seed scenario: HTTPS/HTTP balanced, SMTP excluded, one single-host
// service, port 9000 unconfigured (default host).
std::vector<PortRule> scenario_rules() {
    PortRule single = rule(3389, 3389, FilterMode::single);
    return {rule(443, 443, FilterMode::multiple, Affinity::none),
            rule(80, 80, FilterMode::multiple, Affinity::single),
            rule(25, 25, FilterMode::disabled),
            single,
            rule(1024, 8999, FilterMode::multiple, Affinity::network, Protocol::udp)};
}

// One snapshot per host of a cluster; every host sees the same membership.
std::vector<std::shared_ptr<const Snapshot>> cluster(std::vector<HostId> ids,
                                                     std::vector<PortRule> rules = scenario_rules(),
                                                     uint32_t buckets = 4096) {
    std::vector<std::shared_ptr<const Snapshot>> out;
    for (HostId self : ids) {
        SnapshotInput in;
        in.self = self;
        in.buckets = buckets;
        in.vips = {ip(kVip), ip(kVip6)};
        in.rules = rules;
        for (HostId id : ids) {
            // Handling priority for the single rule (index 3): reverse id order.
            std::vector<uint8_t> prio(rules.size(), 0);
            if (rules.size() > 3) prio[3] = static_cast<uint8_t>(100 - id);
            in.members.push_back(Member{id, {}, prio});
        }
        out.push_back(compile_snapshot(in));
    }
    return out;
}

ParsedFrame flow(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t proto = kTcp) {
    ParsedFrame f;
    f.key.src = ip(src);
    f.key.dst = ip(dst);
    f.kind = f.key.dst.family == Family::v6 ? FrameKind::ipv6 : FrameKind::ipv4;
    f.key.sport = sport;
    f.key.dport = dport;
    f.key.proto = proto;
    f.key.flags = kHasPorts;
    return f;
}

ParsedFrame parsed(const nlbd::testing::Bytes& frame) {
    ParsedFrame f;
    EXPECT_EQ(parse_frame(frame, f), ParseError::none);
    return f;
}

int accepted_count(const std::vector<std::shared_ptr<const Snapshot>>& c, const ParsedFrame& f) {
    int n = 0;
    for (const auto& s : c) {
        const Verdict v = decide(f, *s).verdict;
        n += v == Verdict::accepted || v == Verdict::default_host_accepted;
    }
    return n;
}

}  // namespace

TEST(Decide, ExactlyOneHostAcceptsEachVipFlow) {
    const auto c = cluster({1, 2, 3, 5, 8});
    std::mt19937 rng(1);
    const uint16_t ports[] = {443, 80, 3389, 9000, 1024, 8999, 5000};
    for (int i = 0; i < 5000; ++i) {
        char src[32];
        std::snprintf(src, sizeof src, "10.%u.%u.%u", static_cast<unsigned>(rng() % 256), static_cast<unsigned>(rng() % 256), static_cast<unsigned>(rng() % 256));
        const uint16_t dport = ports[rng() % 7];
        ParsedFrame f = flow(src, static_cast<uint16_t>(rng()), kVip, dport, (rng() & 1) ? kTcp : kUdp);
        ASSERT_EQ(accepted_count(c, f), 1) << src << " -> " << dport;
    }
}

TEST(Decide, EveryHostsShareIsNearItsBucketShare) {
    const auto c = cluster({1, 2, 3, 4});
    std::vector<int> per(c.size());
    for (uint32_t i = 0; i < 40000; ++i) {
        char src[32];
        std::snprintf(src, sizeof src, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        const ParsedFrame f = flow(src, 40000, kVip, 80);
        for (size_t h = 0; h < c.size(); ++h) per[h] += decide(f, *c[h]).verdict == Verdict::accepted;
    }
    for (int n : per) EXPECT_NEAR(n, 10000, 600);  // 1024 buckets each, sequential clients
}

TEST(Decide, DisabledRuleIsDroppedByEveryHost) {
    const auto c = cluster({1, 2, 3});
    for (const auto& s : c) {
        const Decision d = decide(flow("10.0.0.1", 5555, kVip, 25), *s);
        EXPECT_EQ(d.verdict, Verdict::disabled_rule);
        EXPECT_EQ(d.rule, 2);
    }
}

TEST(Decide, SingleRuleGoesToBestHandlingPriority) {
    const auto c = cluster({1, 2, 3});  // priorities 99, 98, 97: host 3 is best
    for (int sport = 1000; sport < 1100; ++sport) {
        const ParsedFrame f = flow("10.0.0.1", static_cast<uint16_t>(sport), kVip, 3389);
        EXPECT_EQ(decide(f, *c[0]).verdict, Verdict::not_owner);
        EXPECT_EQ(decide(f, *c[1]).verdict, Verdict::not_owner);
        const Decision d = decide(f, *c[2]);
        EXPECT_EQ(d.verdict, Verdict::accepted);
        EXPECT_EQ(d.owner, 3);
        EXPECT_EQ(d.rule, 3);
    }
}

TEST(Decide, UnmatchedVipTrafficGoesToDefaultHost) {
    const auto c = cluster({2, 4, 6});
    const ParsedFrame f = flow("10.0.0.1", 1234, kVip, 9000);  // TCP 9000: no rule
    EXPECT_EQ(decide(f, *c[0]).verdict, Verdict::default_host_accepted);
    EXPECT_EQ(decide(f, *c[1]).verdict, Verdict::default_host_other);
    EXPECT_EQ(decide(f, *c[2]).verdict, Verdict::default_host_other);
    EXPECT_EQ(decide(f, *c[1]).owner, 2);
    EXPECT_EQ(decide(f, *c[1]).rule, kNoRule);
    // Other protocols to a VIP, too.
    ParsedFrame gre = f;
    gre.key.proto = 47;
    gre.key.flags = 0;
    EXPECT_EQ(decide(gre, *c[0]).verdict, Verdict::default_host_accepted);
    EXPECT_EQ(decide(gre, *c[2]).verdict, Verdict::default_host_other);
}

TEST(Decide, NonVipTrafficPassesUnfiltered) {
    const auto c = cluster({1, 2});
    for (const auto& s : c) {
        EXPECT_EQ(decide(flow("10.0.0.1", 1, "192.0.2.1", 443), *s).verdict, Verdict::passed_non_vip);
        EXPECT_EQ(decide(flow("2001:db8::5", 1, "2001:db8::1", 443), *s).verdict, Verdict::passed_non_vip);
        ParsedFrame l2;
        l2.kind = FrameKind::other_l2;
        EXPECT_EQ(decide(l2, *s).verdict, Verdict::passed_non_vip);
    }
}

TEST(Decide, StoppedHostDropsVipTrafficButPassesTheRest) {
    SnapshotInput in;
    in.self = 1;
    in.started = false;
    in.vips = {ip(kVip)};
    in.members = {Member{2, {}, {}}};
    auto s = compile_snapshot(in);
    EXPECT_EQ(decide(flow("10.0.0.1", 1, kVip, 443), *s).verdict, Verdict::stopped);
    EXPECT_EQ(decide(flow("10.0.0.1", 1, "192.0.2.1", 443), *s).verdict, Verdict::passed_non_vip);
}

TEST(Decide, AffinitySingleKeepsAClientOnOneHost) {
    const auto c = cluster({1, 2, 3, 4});
    for (int client = 0; client < 50; ++client) {
        char src[32];
        std::snprintf(src, sizeof src, "172.16.%d.%d", client, client * 3);
        const Decision first = decide(flow(src, 1000, kVip, 80), *c[0]);
        for (uint16_t sport = 1001; sport < 1100; ++sport)
            EXPECT_EQ(decide(flow(src, sport, kVip, 80), *c[0]).owner, first.owner);
    }
}

TEST(Decide, AffinityNoneSpreadsOneClientsConnections) {
    const auto c = cluster({1, 2, 3, 4});
    std::set<HostId> owners;
    for (uint16_t sport = 1000; sport < 1100; ++sport)
        owners.insert(decide(flow("172.16.0.1", sport, kVip, 443), *c[0]).owner);
    EXPECT_EQ(owners.size(), 4u);
}

TEST(Decide, AffinityNetworkKeepsASlash24OnOneHost) {
    const auto c = cluster({1, 2, 3, 4});
    const HostId o = decide(flow("172.16.9.1", 1, kVip, 2000, kUdp), *c[0]).owner;
    for (int last = 2; last < 255; ++last) {
        char src[32];
        std::snprintf(src, sizeof src, "172.16.9.%d", last);
        EXPECT_EQ(decide(flow(src, static_cast<uint16_t>(last * 7), kVip, 2000, kUdp), *c[0]).owner, o);
    }
}

TEST(Decide, DecisionCarriesRuleOwnerAndBucket) {
    const auto c = cluster({1, 2});
    const ParsedFrame f = flow("10.1.1.1", 4242, kVip, 443);
    const Decision d = decide(f, *c[0]);
    EXPECT_EQ(d.rule, 0);
    EXPECT_EQ(d.bucket, bucket_of(affinity_hash(f.key, Affinity::none, c[0]->rules.rules[0].hash_seed), 4096));
    EXPECT_EQ(d.owner, c[0]->owner(0, d.bucket));
    EXPECT_EQ(d.verdict, d.owner == 1 ? Verdict::accepted : Verdict::not_owner);
}

TEST(Decide, NoLiveOwnerMeansNobodyAccepts) {
    SnapshotInput in;
    in.self = 1;
    in.vips = {ip(kVip)};
    in.rules = {rule(80, 80, FilterMode::multiple)};
    in.members = {Member{1, {0}, {}}};  // weight 0: owns nothing
    auto s = compile_snapshot(in);
    const Decision d = decide(flow("10.0.0.1", 1, kVip, 80), *s);
    EXPECT_EQ(d.verdict, Verdict::not_owner);
    EXPECT_EQ(d.owner, kNoHost);
}

TEST(Decide, BurstGivesTheSameDecisionsAsOneByOne) {
    const auto c = cluster({1, 2, 3});
    std::vector<ParsedFrame> frames;
    std::mt19937 rng(7);
    for (int i = 0; i < 100; ++i) {  // not a multiple of the internal chunk
        char src[32];
        std::snprintf(src, sizeof src, "10.0.%u.%u", static_cast<unsigned>(rng() % 256), static_cast<unsigned>(rng() % 256));
        const uint16_t ports[] = {443, 80, 25, 3389, 9000};
        frames.push_back(flow(src, static_cast<uint16_t>(rng()), (i % 9) ? kVip : "192.0.2.1",
                              ports[rng() % 5], (i % 3) ? kTcp : kUdp));
    }
    std::vector<Decision> out(frames.size());
    decide_burst(frames, *c[1], out);
    for (size_t i = 0; i < frames.size(); ++i) {
        const Decision d = decide(frames[i], *c[1]);
        EXPECT_EQ(out[i].verdict, d.verdict);
        EXPECT_EQ(out[i].owner, d.owner);
        EXPECT_EQ(out[i].rule, d.rule);
        EXPECT_EQ(out[i].bucket, d.bucket);
    }
}

// ---- through the real parser ------------------------------------------------

TEST(DecideParsed, ArpForVipAnsweredByDefaultHostOnly) {
    const auto c = cluster({3, 4});
    const ParsedFrame req = parsed(PacketBuilder().arp_request("02:00:00:00:00:09", "192.0.2.9", kVip).build());
    EXPECT_EQ(decide(req, *c[0]).verdict, Verdict::arp_replied);
    EXPECT_EQ(decide(req, *c[1]).verdict, Verdict::arp_not_default);
    const ParsedFrame other = parsed(PacketBuilder().arp_request("02:00:00:00:00:09", "192.0.2.9", "192.0.2.1").build());
    EXPECT_EQ(decide(other, *c[0]).verdict, Verdict::passed_non_vip);
    const ParsedFrame reply = parsed(
        PacketBuilder().arp_reply("02:00:00:00:00:09", kVip, "02:00:00:00:00:08", "192.0.2.8").build());
    EXPECT_EQ(decide(reply, *c[0]).verdict, Verdict::passed_non_vip);
}

TEST(DecideParsed, NeighbourSolicitationForVipAnsweredByDefaultHostOnly) {
    const auto c = cluster({3, 4});
    const ParsedFrame ns = parsed(PacketBuilder().eth("02:00:00:00:00:09", "33:33:ff:00:01:00")
                                      .nd_solicit(kVip6, "02:00:00:00:00:09").build());
    EXPECT_EQ(ns.kind, FrameKind::nd_solicit);
    EXPECT_EQ(decide(ns, *c[0]).verdict, Verdict::nd_replied);
    EXPECT_EQ(decide(ns, *c[1]).verdict, Verdict::nd_not_default);
    const ParsedFrame other = parsed(PacketBuilder().eth("02:00:00:00:00:09", "33:33:ff:00:00:01")
                                         .nd_solicit("2001:db8::1").build());
    EXPECT_EQ(decide(other, *c[0]).verdict, Verdict::passed_non_vip);
}

TEST(DecideParsed, TcpAndUdpOverIpv4AndIpv6HaveExactlyOneOwner) {
    const auto c = cluster({1, 2, 3});
    for (uint16_t sport = 30000; sport < 30200; ++sport) {
        const ParsedFrame a = parsed(PacketBuilder().ipv4("10.9.8.7", kVip).tcp(sport, 443).build());
        const ParsedFrame b = parsed(PacketBuilder().ipv6("2001:db8:9::7", kVip6).tcp(sport, 443).build());
        const ParsedFrame u = parsed(PacketBuilder().vlan(12).ipv4("10.9.8.7", kVip).udp(sport, 2000).build());
        EXPECT_EQ(accepted_count(c, a), 1);
        EXPECT_EQ(accepted_count(c, b), 1);
        EXPECT_EQ(accepted_count(c, u), 1);
    }
}

TEST(DecideParsed, IcmpErrorGoesToTheOwnerOfTheInnerFlow) {
    const auto c = cluster({1, 2, 3, 4});
    for (uint16_t sport = 40000; sport < 40050; ++sport) {
        // The client's flow, and the cluster's reply that a router bounces.
        const ParsedFrame client = parsed(PacketBuilder().ipv4("10.5.5.5", kVip).tcp(sport, 443).build());
        const auto reply = PacketBuilder().ipv4(kVip, "10.5.5.5").tcp(443, sport).payload(1400).build_l3();
        const ParsedFrame err = parsed(PacketBuilder().ipv4("10.0.0.254", kVip).icmp_frag_needed(1300, reply).build());
        ASSERT_TRUE(err.key.flags & kIcmpError);
        for (const auto& s : c) {
            const Decision a = decide(client, *s), b = decide(err, *s);
            EXPECT_EQ(a.verdict, b.verdict);
            EXPECT_EQ(a.owner, b.owner);
        }
        // IPv6 packet too big.
        const ParsedFrame client6 = parsed(PacketBuilder().ipv6("2001:db8:5::5", kVip6).tcp(sport, 443).build());
        const auto reply6 = PacketBuilder().ipv6(kVip6, "2001:db8:5::5").tcp(443, sport).payload(1400).build_l3();
        const ParsedFrame err6 =
            parsed(PacketBuilder().ipv6("2001:db8::fe", kVip6).icmpv6_packet_too_big(1280, reply6).build());
        for (const auto& s : c) EXPECT_EQ(decide(client6, *s).owner, decide(err6, *s).owner);
    }
}

TEST(DecideParsed, IcmpEchoToVipAnsweredByExactlyOneHost) {
    const auto c = cluster({1, 2, 3});
    std::set<HostId> owners;
    for (int i = 1; i < 200; ++i) {
        char src[32];
        std::snprintf(src, sizeof src, "10.7.%d.%d", i / 16, i);
        const ParsedFrame f = parsed(PacketBuilder().ipv4(src, kVip).icmp_echo(1, static_cast<uint16_t>(i)).build());
        EXPECT_EQ(accepted_count(c, f), 1);
        owners.insert(decide(f, *c[0]).owner);
        // The same client always lands on the same host.
        const ParsedFrame g = parsed(PacketBuilder().ipv4(src, kVip).icmp_echo(9, 9).build());
        EXPECT_EQ(decide(g, *c[0]).owner, decide(f, *c[0]).owner);
    }
    EXPECT_EQ(owners.size(), 3u);
}

TEST(DecideParsed, OtherIcmpToVipGoesToDefaultHost) {
    const auto c = cluster({1, 2});
    const ParsedFrame f = parsed(PacketBuilder().ipv4("10.0.0.1", kVip).icmp_echo(1, 1, /*reply=*/true).build());
    EXPECT_EQ(f.key.proto, kIcmp);
    EXPECT_EQ(decide(f, *c[0]).verdict, Verdict::default_host_accepted);
    EXPECT_EQ(decide(f, *c[1]).verdict, Verdict::default_host_other);
}

TEST(DecideParsed, FirstFragmentDecidesLikeTheWholeDatagram) {
    const auto c = cluster({1, 2, 3});
    for (uint16_t sport = 50000; sport < 50040; ++sport) {
        const auto whole = PacketBuilder().ipv4("10.6.6.6", kVip).ipv4_id(sport).udp(sport, 2000).payload(3000).build();
        const auto frags = nlbd::testing::fragment_ipv4(whole, 1500);
        ASSERT_GE(frags.size(), 2u);
        const ParsedFrame first = parsed(frags[0]);
        ASSERT_TRUE(first.key.flags & kFirstFragment);
        for (const auto& s : c) EXPECT_EQ(decide(first, *s).owner, decide(parsed(whole), *s).owner);
    }
}

// ---------------------------------------------------------------- early exit

namespace {

// The full path's answer for a frame: parse_frame + decide, or nothing when
// the frame does not parse (the worker counts it malformed).
std::optional<Decision> full_path(const nlbd::testing::Bytes& b, const Snapshot& s) {
    ParsedFrame f;
    if (parse_frame({b.data(), b.size()}, f) != ParseError::none) return std::nullopt;
    return decide(f, s);
}

// Frames of every shape the early exit must take or leave: TCP/UDP to the
// VIP on every rule (and no rule), IPv6, ICMP, VLAN-tagged, fragments,
// options, other VIPs and addresses, from many clients.
std::vector<nlbd::testing::Bytes> early_exit_corpus(std::mt19937& rng) {
    std::vector<nlbd::testing::Bytes> out;
    const uint16_t ports[] = {443, 80, 25, 3389, 1024, 5000, 8999, 9000, 53, 22};
    for (int i = 0; i < 4000; ++i) {
        const std::string src = "10." + std::to_string(rng() % 256) + "." + std::to_string(rng() % 256) + "." +
                                std::to_string(rng() % 256);
        const uint16_t sport = static_cast<uint16_t>(1024 + rng() % 60000);
        const uint16_t dport = ports[rng() % std::size(ports)];
        const char* dst = rng() % 8 == 0 ? "192.0.2.7" : kVip;
        PacketBuilder b;
        b.eth("02:00:00:00:00:01", "02:bf:c0:00:02:64");
        switch (rng() % 10) {
        case 0: b.vlan(5); [[fallthrough]];
        case 1:
        case 2:
        case 3: b.ipv4(src, dst).tcp(sport, dport, rng() % 4 ? nlbd::testing::kAck : nlbd::testing::kSyn).payload(rng() % 64); break;
        case 4: b.ipv4(src, dst).udp(sport, dport).payload(rng() % 64); break;
        case 5: b.ipv4(src, dst).ipv4_options({1, 1, 1, 0}).tcp(sport, dport); break;
        case 6: b.ipv4(src, dst).ipv4_frag(0, true).udp(sport, dport).payload(32); break;
        case 7: b.ipv4(src, dst).icmp_echo(1, 1).payload(8); break;
        case 8: b.ipv6("2001:db8:1::" + std::to_string(1 + rng() % 999), kVip6).tcp(sport, dport); break;
        default: b.ipv4(src, dst).df().tcp(sport, dport).tcp_options({1, 1, 1, 1}); break;
        }
        out.push_back(b.eth_pad().build());
    }
    return out;
}

}  // namespace

// decide_foreign_v4 answers only for frames another host owns, and then
// exactly what parse_frame + decide answer; whole and truncated frames,
// and every header byte of a frame flipped.
TEST(Decide, EarlyExitForAnotherHostsFrameEqualsTheFullPath) {
    const auto hosts = cluster({1, 2, 3});
    const Snapshot& s = *hosts[0];
    std::mt19937 rng(2026);
    size_t taken = 0, foreign_full = 0, checked = 0;
    auto check = [&](const nlbd::testing::Bytes& b) {
        ++checked;
        const std::optional<Decision> want = full_path(b, s);
        if (want && want->verdict == Verdict::not_owner && want->rule != kNoRule) ++foreign_full;
        Decision d;
        if (!decide_foreign_v4({b.data(), b.size()}, s, d)) return;
        ++taken;
        ASSERT_TRUE(want.has_value()) << "early exit on a frame parse_frame rejects";
        EXPECT_EQ(d.verdict, Verdict::not_owner);
        EXPECT_EQ(d.verdict, want->verdict);
        EXPECT_EQ(d.rule, want->rule);
        EXPECT_EQ(d.owner, want->owner);
        EXPECT_EQ(d.bucket, want->bucket);
    };
    for (const auto& b : early_exit_corpus(rng)) {
        check(b);
        for (size_t cut : {size_t{0}, size_t{13}, size_t{33}, size_t{34}, size_t{40}, size_t{53}, b.size() - 1})
            if (cut < b.size()) check(nlbd::testing::Bytes(b.begin(), b.begin() + static_cast<ptrdiff_t>(cut)));
        nlbd::testing::Bytes m = b;
        const size_t at = rng() % std::min<size_t>(m.size(), 60);
        m[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        check(m);
    }
    // It must not pass vacuously: most frames the full path gives to
    // another host under a multiple-host rule are plain IPv4 TCP/UDP here.
    EXPECT_GT(taken, foreign_full / 3) << "taken " << taken << " of " << foreign_full << " (" << checked << " frames)";
    EXPECT_GT(taken, 500u);
}

// decide_v4_fast answers what parse_frame + decide answer, for the frames
// this host owns as for the others', on every host of the cluster; whole,
// truncated and bit-flipped frames.
TEST(Decide, FastPathEqualsTheFullPath) {
    const auto hosts = cluster({1, 2, 3});
    std::mt19937 rng(2027);
    size_t answered = 0, owned = 0;
    for (const auto& host : hosts) {
        const Snapshot& s = *host;
        auto check = [&](const nlbd::testing::Bytes& b) {
            Decision d;
            if (!decide_v4_fast({b.data(), b.size()}, s, d)) return;
            ++answered;
            const std::optional<Decision> want = full_path(b, s);
            ASSERT_TRUE(want.has_value()) << "fast path on a frame parse_frame rejects";
            EXPECT_EQ(d.verdict, want->verdict);
            EXPECT_EQ(d.rule, want->rule);
            EXPECT_EQ(d.owner, want->owner);
            EXPECT_EQ(d.bucket, want->bucket);
            owned += d.verdict == Verdict::accepted;
        };
        for (const auto& b : early_exit_corpus(rng)) {
            check(b);
            for (size_t cut : {size_t{13}, size_t{34}, size_t{53}, b.size() - 1})
                if (cut < b.size()) check(nlbd::testing::Bytes(b.begin(), b.begin() + static_cast<ptrdiff_t>(cut)));
            nlbd::testing::Bytes m = b;
            m[rng() % std::min<size_t>(m.size(), 60)] ^= static_cast<uint8_t>(1u << (rng() % 8));
            check(m);
        }
    }
    // Not vacuous: each host owns about a third of what it answers.
    EXPECT_GT(answered, 1500u);
    EXPECT_GT(owned, answered / 5);
}

// Frames this host owns, and a stopped host's: never the early exit.
TEST(Decide, EarlyExitLeavesOwnedAndStoppedToTheFullPath) {
    const auto hosts = cluster({1});  // one host owns everything
    SnapshotInput in;
    in.self = 2;
    in.started = false;
    in.vips = {ip(kVip), ip(kVip6)};
    in.rules = scenario_rules();
    in.members = {Member{1, {}, {}}};
    const auto stopped = compile_snapshot(in);
    std::mt19937 rng(7);
    size_t stopped_full = 0;
    for (const auto& b : early_exit_corpus(rng)) {
        Decision d;
        EXPECT_FALSE(decide_foreign_v4({b.data(), b.size()}, *hosts[0], d));
        EXPECT_FALSE(decide_foreign_v4({b.data(), b.size()}, *stopped, d));
        if (const auto want = full_path(b, *stopped); want && want->verdict == Verdict::stopped) ++stopped_full;
    }
    EXPECT_GT(stopped_full, 1000u);  // the stopped host's full path does say stopped
}
