// Connection persistence (persist.hpp, SPEC §5): when a bucket moves from A to
// B while A is alive, A keeps its connections (accepted_conn), B takes only
// new ones while the bucket is dirty (conn_elsewhere for the rest); FIN/RST
// handling; UDP extended affinity. Frames go through the real parser
// (packet_builder + parse_frame), decide() and apply_persistence().

#include "nlbd/core/persist.hpp"

#include <gtest/gtest.h>

#include <memory>

#include "packet_builder.hpp"

using namespace nlbd;
using namespace nlbd::core;
using nlbd::testing::Bytes;
using nlbd::testing::kAck;
using nlbd::testing::kFin;
using nlbd::testing::kPsh;
using nlbd::testing::kRst;
using nlbd::testing::kSyn;
using nlbd::testing::PacketBuilder;

namespace {

constexpr uint64_t kSec = 1'000'000'000ull;
const char* const kVip = "192.0.2.100";
constexpr HostId kA = 1, kB = 2;
constexpr uint32_t kBuckets = 256;
// Rules: 0 = TCP 80 multiple/none, 1 = UDP 5000-5100 multiple/single with a
// 60 s affinity timeout, 2 = UDP 6000 multiple without one, 3 = TCP 22
// single host, 4 = TCP 25 disabled, 5 = TCP 443 multiple/single with a 60 s
// affinity timeout (TCP extended affinity), 6 = TCP 8443 multiple/network
// with one.
constexpr uint16_t kWeb = 0, kUdpAff = 1, kUdpPlain = 2, kSsh = 3, kSmtp = 4, kTcpAff = 5,
                   kTcpNet = 6;

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

std::vector<PortRule> rules() {
    PortRule web;
    web.port_lo = web.port_hi = 80;
    web.protocol = Protocol::tcp;
    web.affinity = Affinity::none;
    PortRule aff;
    aff.port_lo = 5000;
    aff.port_hi = 5100;
    aff.protocol = Protocol::udp;
    aff.affinity = Affinity::single;
    aff.affinity_timeout_s = 60;
    PortRule plain;
    plain.port_lo = plain.port_hi = 6000;
    plain.protocol = Protocol::udp;
    PortRule ssh;
    ssh.port_lo = ssh.port_hi = 22;
    ssh.protocol = Protocol::tcp;
    ssh.mode = FilterMode::single;
    PortRule smtp;
    smtp.port_lo = smtp.port_hi = 25;
    smtp.mode = FilterMode::disabled;
    PortRule tls;
    tls.port_lo = tls.port_hi = 443;
    tls.protocol = Protocol::tcp;
    tls.affinity = Affinity::single;
    tls.affinity_timeout_s = 60;
    PortRule net = tls;
    net.port_lo = net.port_hi = 8443;
    net.affinity = Affinity::network;
    return {web, aff, plain, ssh, smtp, tls, net};
}

std::shared_ptr<Snapshot> snapshot_of(HostId self) {
    SnapshotInput in;
    in.self = self;
    in.buckets = kBuckets;
    in.epoch = 1;
    in.generation = 1;
    in.vips = {ip(kVip)};
    in.rules = rules();
    // Host A has the best handling priority for the single-host rule.
    in.members = {Member{kA, {}, {0, 0, 0, 1, 0, 0, 0}}, Member{kB, {}, {0, 0, 0, 2, 0, 0, 0}}};
    auto s = compile_snapshot(in);
    return std::make_shared<Snapshot>(*s);
}

ParsedFrame tcp(const char* client, uint16_t sport, uint16_t dport, uint8_t flags) {
    const Bytes b = PacketBuilder()
                        .eth("02:00:00:00:00:01", "02:bf:c0:00:02:64")
                        .ipv4(client, kVip)
                        .tcp(sport, dport, flags)
                        .payload(flags & kSyn ? 0 : 32)
                        .build();
    ParsedFrame f;
    EXPECT_EQ(parse_frame(b, f), ParseError::none);
    return f;
}

ParsedFrame udp(const char* client, uint16_t sport, uint16_t dport) {
    const Bytes b = PacketBuilder()
                        .eth("02:00:00:00:00:01", "02:bf:c0:00:02:64")
                        .ipv4(client, kVip)
                        .udp(sport, dport)
                        .payload(20)
                        .build();
    ParsedFrame f;
    EXPECT_EQ(parse_frame(b, f), ParseError::none);
    return f;
}

// One host: its current snapshot and its worker's table.
struct Host {
    std::shared_ptr<Snapshot> snap;
    ConnTable table{ConnTable::Config{}};
    explicit Host(HostId id) : snap(snapshot_of(id)) {}
    Verdict see(const ParsedFrame& f, uint64_t now) {
        return apply_persistence(f, decide(f, *snap), *snap, table, now).verdict;
    }
};

// The bucket moves from its owner to `to` in both hosts' views, dirty on the
// new owner when `dirty`.
void move(Host& a, Host& b, uint16_t rule, uint32_t bucket, HostId to, bool dirty) {
    for (Host* h : {&a, &b}) {
        auto s = std::make_shared<Snapshot>(*h->snap);
        ++s->epoch;
        ++s->generation;
        s->owners[static_cast<size_t>(rule) * s->buckets + bucket] = to;
        if (s->dirty.empty()) s->dirty.assign(s->owners.size(), 0);
        s->dirty[static_cast<size_t>(rule) * s->buckets + bucket] = dirty && s->self == to;
        h->snap = s;
    }
}

// A client port whose flow to `dport` falls in a bucket owned by `owner`,
// other than `avoid_port`, optionally in bucket `want` (kAny = any).
constexpr uint32_t kAny = ~0u;
uint16_t port_in(const Snapshot& s, const char* client, uint16_t dport, HostId owner,
                 uint32_t want = kAny, uint16_t avoid_port = 0) {
    for (uint32_t p = 1024; p < 65535; ++p) {
        if (p == avoid_port) continue;
        const Decision d = decide(tcp(client, static_cast<uint16_t>(p), dport, kSyn), s);
        if (d.owner == owner && (want == kAny || d.bucket == want)) return static_cast<uint16_t>(p);
    }
    ADD_FAILURE() << "no port found";
    return 0;
}

}  // namespace

TEST(Persist, BucketMoveKeepsOldOwnersConnectionsAndNewOwnerTakesOnlyNewOnes) {
    Host a(kA), b(kB);
    const char* client = "198.51.100.7";
    const uint16_t p = port_in(*a.snap, client, 80, kA);
    const uint32_t bucket = decide(tcp(client, p, 80, kSyn), *a.snap).bucket;

    // Before the move: A owns it and tracks the connection, B ignores it.
    EXPECT_EQ(a.see(tcp(client, p, 80, kSyn), 1 * kSec), Verdict::accepted);
    EXPECT_EQ(b.see(tcp(client, p, 80, kSyn), 1 * kSec), Verdict::not_owner);
    EXPECT_EQ(a.see(tcp(client, p, 80, kAck), 2 * kSec), Verdict::accepted);
    EXPECT_EQ(b.see(tcp(client, p, 80, kAck), 2 * kSec), Verdict::not_owner);
    EXPECT_EQ(a.table.stats().entries, 1u);
    EXPECT_EQ(b.table.stats().entries, 0u);

    move(a, b, kWeb, bucket, kB, /*dirty=*/true);

    // The established connection stays on A only.
    struct Case {
        uint8_t flags;
        Verdict on_a, on_b;
    };
    const Case mid_flow[] = {
        {kAck, Verdict::accepted_conn, Verdict::conn_elsewhere},
        {kAck | kPsh, Verdict::accepted_conn, Verdict::conn_elsewhere},
    };
    uint64_t now = 3 * kSec;
    for (const Case& c : mid_flow) {
        EXPECT_EQ(a.see(tcp(client, p, 80, c.flags), now), c.on_a);
        EXPECT_EQ(b.see(tcp(client, p, 80, c.flags), now), c.on_b);
        now += kSec;
    }
    EXPECT_EQ(b.table.stats().entries, 0u) << "B must not adopt in a dirty bucket";

    // A new connection in the same bucket goes to B only, and stays there.
    const uint16_t q = port_in(*b.snap, client, 80, kB, bucket, p);
    EXPECT_EQ(a.see(tcp(client, q, 80, kSyn), now), Verdict::not_owner);
    EXPECT_EQ(b.see(tcp(client, q, 80, kSyn), now), Verdict::accepted);
    EXPECT_EQ(a.see(tcp(client, q, 80, kAck), now), Verdict::not_owner);
    EXPECT_EQ(b.see(tcp(client, q, 80, kAck), now), Verdict::accepted);

    // Every packet of both connections is accepted by exactly one host.
    for (uint16_t port : {p, q}) {
        const Verdict va = a.see(tcp(client, port, 80, kAck), now);
        const Verdict vb = b.see(tcp(client, port, 80, kAck), now);
        EXPECT_EQ((action_of(va) == Action::to_local) + (action_of(vb) == Action::to_local), 1)
            << port;
    }
}

TEST(Persist, CleanBucketAdoptsMidFlowConnections) {
    // The previous owner is gone (bucket not dirty): B takes every packet and
    // tracks the connection from then on.
    Host a(kA), b(kB);
    const char* client = "198.51.100.8";
    const uint16_t p = port_in(*a.snap, client, 80, kA);
    const uint32_t bucket = decide(tcp(client, p, 80, kSyn), *a.snap).bucket;
    move(a, b, kWeb, bucket, kB, /*dirty=*/false);
    EXPECT_EQ(b.see(tcp(client, p, 80, kAck), kSec), Verdict::accepted);
    EXPECT_EQ(b.table.stats().entries, 1u);
    // Adopted as established: it survives longer than a SYN would.
    EXPECT_EQ(b.see(tcp(client, p, 80, kAck), 1000 * kSec), Verdict::accepted);
    EXPECT_EQ(b.table.stats().expired[static_cast<unsigned>(ConnState::established)], 0u);
}

TEST(Persist, DirtyFlagClearsAndNewOwnerThenAdopts) {
    Host a(kA), b(kB);
    const char* client = "198.51.100.9";
    const uint16_t p = port_in(*a.snap, client, 80, kA);
    const uint32_t bucket = decide(tcp(client, p, 80, kSyn), *a.snap).bucket;
    move(a, b, kWeb, bucket, kB, true);
    EXPECT_TRUE(bucket_dirty(*b.snap, kWeb, bucket));
    EXPECT_FALSE(bucket_dirty(*a.snap, kWeb, bucket));
    EXPECT_EQ(b.see(tcp(client, p, 80, kAck), kSec), Verdict::conn_elsewhere);
    auto clean = std::make_shared<Snapshot>(*b.snap);
    clean->dirty.assign(clean->owners.size(), 0);
    b.snap = clean;
    EXPECT_EQ(b.see(tcp(client, p, 80, kAck), kSec), Verdict::accepted);
}

TEST(Persist, FinClosesAfterItsTimeoutAndRstRemovesAtOnce) {
    Host a(kA), b(kB);
    const char* client = "198.51.100.10";
    const uint16_t p1 = port_in(*a.snap, client, 80, kA);
    const uint32_t bucket = decide(tcp(client, p1, 80, kSyn), *a.snap).bucket;
    const uint16_t p2 = port_in(*a.snap, client, 80, kA, bucket, p1);
    for (uint16_t p : {p1, p2}) {
        EXPECT_EQ(a.see(tcp(client, p, 80, kSyn), 0), Verdict::accepted);
        EXPECT_EQ(a.see(tcp(client, p, 80, kAck), 0), Verdict::accepted);
    }
    move(a, b, kWeb, bucket, kB, true);

    // p1 closes with FIN: A keeps it while closing, then lets it go.
    EXPECT_EQ(a.see(tcp(client, p1, 80, kFin | kAck), 1 * kSec), Verdict::accepted_conn);
    EXPECT_EQ(a.see(tcp(client, p1, 80, kAck), 5 * kSec), Verdict::accepted_conn);
    EXPECT_EQ(a.see(tcp(client, p1, 80, kAck), 16 * kSec), Verdict::not_owner);
    EXPECT_EQ(a.table.stats().expired[static_cast<unsigned>(ConnState::fin)], 1u);

    // p2 is reset: the RST itself still reaches A's server, then nothing.
    EXPECT_EQ(a.see(tcp(client, p2, 80, kRst), 2 * kSec), Verdict::accepted_conn);
    EXPECT_EQ(a.table.stats().removed, 1u);
    EXPECT_EQ(a.see(tcp(client, p2, 80, kAck), 2 * kSec), Verdict::not_owner);
    EXPECT_EQ(a.table.stats().entries, 0u);
}

TEST(Persist, SynReusingAClosedTupleIsANewConnection) {
    Host a(kA), b(kB);
    const char* client = "198.51.100.11";
    const uint16_t p = port_in(*a.snap, client, 80, kA);
    const uint32_t bucket = decide(tcp(client, p, 80, kSyn), *a.snap).bucket;
    a.see(tcp(client, p, 80, kSyn), 0);
    a.see(tcp(client, p, 80, kAck), 0);
    a.see(tcp(client, p, 80, kFin | kAck), 0);
    move(a, b, kWeb, bucket, kB, true);
    // Same 4-tuple, new SYN after the close: it belongs to the new owner.
    EXPECT_EQ(a.see(tcp(client, p, 80, kSyn), kSec), Verdict::not_owner);
    EXPECT_EQ(b.see(tcp(client, p, 80, kSyn), kSec), Verdict::accepted);
    EXPECT_EQ(a.table.stats().entries, 0u);
    // A SYN retransmission of a live half-open connection stays put.
    Host c(kA);
    c.see(tcp(client, p, 80, kSyn), 0);
    EXPECT_EQ(c.see(tcp(client, p, 80, kSyn), kSec), Verdict::accepted);
    EXPECT_EQ(c.table.stats().entries, 1u);
}

TEST(Persist, SynTimesOutWhenTheHandshakeNeverCompletes) {
    Host a(kA), b(kB);
    const char* client = "198.51.100.12";
    const uint16_t p = port_in(*a.snap, client, 80, kA);
    const uint32_t bucket = decide(tcp(client, p, 80, kSyn), *a.snap).bucket;
    a.see(tcp(client, p, 80, kSyn), 0);
    move(a, b, kWeb, bucket, kB, true);
    EXPECT_EQ(a.see(tcp(client, p, 80, kSyn), 20 * kSec), Verdict::accepted_conn);
    EXPECT_EQ(a.see(tcp(client, p, 80, kAck), 51 * kSec), Verdict::not_owner);
}

TEST(Persist, IcmpErrorFollowsTheConnectionWithoutCreatingOne) {
    Host a(kA), b(kB);
    const char* client = "198.51.100.13";
    const uint16_t p = port_in(*a.snap, client, 80, kA);
    const uint32_t bucket = decide(tcp(client, p, 80, kSyn), *a.snap).bucket;
    a.see(tcp(client, p, 80, kSyn), 0);
    a.see(tcp(client, p, 80, kAck), 0);
    move(a, b, kWeb, bucket, kB, true);
    // "Fragmentation needed" from a router about the server's reply (VIP:80 ->
    // client): the inner flow, seen from the client, is this connection.
    const Bytes inner =
        PacketBuilder().ipv4(kVip, client).tcp(80, p, kAck).payload(8).build_l3();
    const Bytes err = PacketBuilder()
                          .eth("02:00:00:00:00:09", "02:bf:c0:00:02:64")
                          .ipv4("203.0.113.1", kVip)
                          .icmp_error(3, 4, inner)
                          .build();
    ParsedFrame f;
    ASSERT_EQ(parse_frame(err, f), ParseError::none);
    ASSERT_TRUE(f.key.flags & kIcmpError);
    EXPECT_EQ(a.see(f, kSec), Verdict::accepted_conn);
    EXPECT_EQ(b.see(f, kSec), Verdict::conn_elsewhere);
    EXPECT_EQ(b.table.stats().entries, 0u);
    EXPECT_EQ(a.table.stats().entries, 1u);
}

TEST(Persist, UdpExtendedAffinityHoldsTheClientUntilItsTimeout) {
    Host a(kA), b(kB);
    // A client whose affinity bucket for rule 1 is A's.
    const char* client = nullptr;
    static const char* const clients[] = {"198.51.100.1", "198.51.100.2", "198.51.100.3",
                                          "198.51.100.4", "198.51.100.5", "198.51.100.6",
                                          "203.0.113.9",  "203.0.113.10"};
    for (const char* c : clients)
        if (decide(udp(c, 4000, 5000), *a.snap).owner == kA) {
            client = c;
            break;
        }
    ASSERT_NE(client, nullptr);
    const uint32_t bucket = decide(udp(client, 4000, 5000), *a.snap).bucket;
    EXPECT_EQ(a.see(udp(client, 4000, 5000), 0), Verdict::accepted);
    // Same client, other port of the rule: the same affinity entry.
    EXPECT_EQ(a.see(udp(client, 4001, 5050), 0), Verdict::accepted);
    EXPECT_EQ(a.table.stats().entries, 1u);

    move(a, b, kUdpAff, bucket, kB, true);
    EXPECT_EQ(a.see(udp(client, 4002, 5000), 30 * kSec), Verdict::accepted_conn);
    EXPECT_EQ(b.see(udp(client, 4002, 5000), 30 * kSec), Verdict::conn_elsewhere);
    // Idle past the affinity timeout: A lets go.
    EXPECT_EQ(a.see(udp(client, 4002, 5000), 91 * kSec), Verdict::not_owner);
    // Once clean, B takes the client and holds it in turn.
    auto clean = std::make_shared<Snapshot>(*b.snap);
    clean->dirty.assign(clean->owners.size(), 0);
    b.snap = clean;
    EXPECT_EQ(b.see(udp(client, 4002, 5000), 92 * kSec), Verdict::accepted);
    EXPECT_EQ(b.table.stats().entries, 1u);
}

TEST(Persist, UdpWithoutAffinityTimeoutMovesAtOnce) {
    Host a(kA), b(kB);
    const char* client = "198.51.100.20";
    uint16_t p = 0;
    for (uint32_t q = 1024; q < 65535 && !p; ++q)
        if (decide(udp(client, static_cast<uint16_t>(q), 6000), *a.snap).owner == kA)
            p = static_cast<uint16_t>(q);
    ASSERT_NE(p, 0);
    const uint32_t bucket = decide(udp(client, p, 6000), *a.snap).bucket;
    EXPECT_EQ(a.see(udp(client, p, 6000), 0), Verdict::accepted);
    move(a, b, kUdpPlain, bucket, kB, true);
    EXPECT_EQ(a.see(udp(client, p, 6000), 0), Verdict::not_owner);
    EXPECT_EQ(b.see(udp(client, p, 6000), 0), Verdict::accepted);
    EXPECT_EQ(a.table.stats().entries + b.table.stats().entries, 0u);
}

TEST(Persist, SingleHostRuleKeepsConnectionsOnTheOldOwner) {
    Host a(kA), b(kB);
    const char* client = "198.51.100.30";
    EXPECT_EQ(a.see(tcp(client, 5555, 22, kSyn), 0), Verdict::accepted);
    EXPECT_EQ(a.see(tcp(client, 5555, 22, kAck), 0), Verdict::accepted);
    // Rule taken over by B from A, which is alive and holds the connection.
    for (Host* h : {&a, &b}) {
        auto s = std::make_shared<Snapshot>(*h->snap);
        s->rules.rules[kSsh].single_owner = kB;
        s->rules.rules[kSsh].single_dirty = s->self == kB;
        h->snap = s;
    }
    EXPECT_EQ(a.see(tcp(client, 5555, 22, kAck), kSec), Verdict::accepted_conn);
    EXPECT_EQ(b.see(tcp(client, 5555, 22, kAck), kSec), Verdict::conn_elsewhere);
    EXPECT_EQ(b.see(tcp(client, 5556, 22, kSyn), kSec), Verdict::accepted);
    EXPECT_EQ(a.see(tcp(client, 5556, 22, kSyn), kSec), Verdict::not_owner);
}

TEST(Persist, StoppedHostAndDisabledRuleAreNeverOverridden) {
    Host a(kA);
    const char* client = "198.51.100.40";
    const uint16_t p = port_in(*a.snap, client, 80, kA);
    a.see(tcp(client, p, 80, kSyn), 0);
    a.see(tcp(client, p, 80, kAck), 0);
    auto stopped = std::make_shared<Snapshot>(*a.snap);
    stopped->started = false;
    auto running = a.snap;
    a.snap = stopped;
    EXPECT_EQ(a.see(tcp(client, p, 80, kAck), kSec), Verdict::stopped);
    // Disable the rule: its connections are dropped at once.
    auto disabled = std::make_shared<Snapshot>(*running);
    disabled->rules.rules[kWeb].mode = FilterMode::disabled;
    a.snap = disabled;
    EXPECT_EQ(a.see(tcp(client, p, 80, kAck), kSec), Verdict::disabled_rule);
    EXPECT_EQ(a.see(tcp(client, 1234, 25, kSyn), kSec), Verdict::disabled_rule);
}

TEST(Persist, OtherTrafficIsUnchanged) {
    Host a(kA);
    // Unmatched port (default host), non-VIP, ARP.
    const Bytes frames[] = {
        PacketBuilder().eth("02:00:00:00:00:01", "02:bf:c0:00:02:64").ipv4("198.51.100.1", kVip)
            .tcp(1000, 9999, kAck).build(),
        PacketBuilder().eth("02:00:00:00:00:01", "02:bf:c0:00:02:64").ipv4("198.51.100.1", "192.0.2.1")
            .tcp(1000, 80, kAck).build(),
        PacketBuilder().eth("02:00:00:00:00:01", "02:bf:c0:00:02:64").ipv4("198.51.100.1", kVip)
            .icmp_echo(1, 1).build(),
    };
    for (const Bytes& fr : frames) {
        ParsedFrame f;
        ASSERT_EQ(parse_frame(fr, f), ParseError::none);
        const Decision d = decide(f, *a.snap);
        const Decision p = apply_persistence(f, d, *a.snap, a.table, 0);
        EXPECT_EQ(p.verdict, d.verdict);
        EXPECT_EQ(p.owner, d.owner);
        EXPECT_EQ(p.bucket, d.bucket);
    }
    EXPECT_EQ(a.table.stats().entries, 0u);
}

TEST(Persist, BurstGivesTheSameVerdictsAsOneByOne) {
    Host one(kA), burst(kA);
    std::vector<ParsedFrame> frames;
    for (uint32_t i = 0; i < 100; ++i) {
        const std::string c = "198.51.100." + std::to_string(i % 7 + 1);
        const uint16_t port = static_cast<uint16_t>(2000 + i % 13);
        const uint8_t flags = i < 40 ? kSyn : (i % 11 == 0 ? kRst : (i % 5 == 0 ? kFin | kAck : kAck));
        frames.push_back(i % 3 == 0 ? udp(c.c_str(), port, 5000) : tcp(c.c_str(), port, 80, flags));
    }
    std::vector<Decision> expect, got(frames.size());
    for (const ParsedFrame& f : frames)
        expect.push_back(apply_persistence(f, decide(f, *one.snap), *one.snap, one.table, kSec));
    decide_burst(frames, *burst.snap, got);
    // Frames of one burst with the same key must resolve in order: the burst
    // form hashes ahead but resolves one by one.
    apply_persistence_burst(frames, got, *burst.snap, burst.table, kSec);
    for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(got[i].verdict, expect[i].verdict) << i;
    EXPECT_EQ(one.table.stats().entries, burst.table.stats().entries);
    EXPECT_EQ(one.table.stats().removed, burst.table.stats().removed);
}

TEST(Persist, HeldForeignDropsToZeroWhenTheOldOwnersConnectionsEnd) {
    Host a(kA), b(kB);
    const char* client = "198.51.100.50";
    const uint16_t p = port_in(*a.snap, client, 80, kA);
    const uint32_t bucket = decide(tcp(client, p, 80, kSyn), *a.snap).bucket;
    a.see(tcp(client, p, 80, kSyn), 0);
    a.see(tcp(client, p, 80, kAck), 0);
    move(a, b, kWeb, bucket, kB, true);
    auto sweep = [&](uint64_t now) {
        while (!a.table.expire(now, 4096, a.snap.get()).sweep_completed) {
        }
        while (!a.table.expire(now, 4096, a.snap.get()).sweep_completed) {
        }
        return a.table.held_foreign();
    };
    ForeignCount fc = sweep(kSec);
    ASSERT_TRUE(fc.valid);
    EXPECT_EQ(fc.count, 1u);
    EXPECT_EQ(fc.generation, a.snap->generation);
    EXPECT_EQ(a.see(tcp(client, p, 80, kRst), 2 * kSec), Verdict::accepted_conn);
    fc = sweep(2 * kSec);
    ASSERT_TRUE(fc.valid);
    EXPECT_EQ(fc.count, 0u);
}

// After a reload that changed the rules, a rule index stored in an entry may
// name another rule: until the connection's next packet rewrites it, the
// entry counts as foreign (peers keep their buckets dirty), even where the
// stale index would say this host owns it.
TEST(Persist, EntriesFromBeforeARuleReloadCountForeignUntilTheirNextPacket) {
    Host a(kA);
    const char* client = "198.51.100.51";
    const uint16_t p = port_in(*a.snap, client, 80, kA);
    a.see(tcp(client, p, 80, kSyn), 0);
    a.see(tcp(client, p, 80, kAck), 0);
    auto sweep = [&](uint64_t now) {
        while (!a.table.expire(now, 4096, a.snap.get()).sweep_completed) {
        }
        while (!a.table.expire(now, 4096, a.snap.get()).sweep_completed) {
        }
        return a.table.held_foreign();
    };
    ForeignCount fc = sweep(kSec);
    ASSERT_TRUE(fc.valid);
    EXPECT_EQ(fc.count, 0u);  // its own bucket
    auto reloaded = std::make_shared<Snapshot>(*a.snap);
    ++reloaded->generation;
    ++reloaded->rules_generation;  // same maps: only the rules' meaning changed
    a.snap = reloaded;
    fc = sweep(kSec);
    ASSERT_TRUE(fc.valid);
    EXPECT_EQ(fc.count, 1u);
    EXPECT_EQ(a.see(tcp(client, p, 80, kAck), 2 * kSec), Verdict::accepted);
    fc = sweep(2 * kSec);
    ASSERT_TRUE(fc.valid);
    EXPECT_EQ(fc.count, 0u);  // the packet stamped it with the current rules
}

// The not-owner fast path (ConnTable::may_hold_foreign): once a whole sweep
// under the current snapshot found nothing foreign, packets owned elsewhere
// skip the lookup. A bucket move must switch the fast path off at once, so the
// old owner keeps its established connection right after the move (before
// any sweep ran under the new snapshot), and while it holds it (sweeps count
// it); only when the connection is gone does the fast path come back.
TEST(Persist, OldOwnerKeepsItsConnectionRightAfterAMoveDespiteTheNotOwnerFastPath) {
    Host a(kA), b(kB);
    const char* client = "198.51.100.60";
    const uint16_t p = port_in(*a.snap, client, 80, kA);
    const uint32_t bucket = decide(tcp(client, p, 80, kSyn), *a.snap).bucket;
    const uint16_t other = port_in(*a.snap, client, 80, kB);  // never A's
    auto sweep = [](Host& h, uint64_t now) {
        // Two calls: the first may finish a sweep begun under another view.
        while (!h.table.expire(now, 4096, h.snap.get()).sweep_completed) {
        }
        while (!h.table.expire(now, 4096, h.snap.get()).sweep_completed) {
        }
    };

    EXPECT_EQ(a.see(tcp(client, p, 80, kSyn), 1 * kSec), Verdict::accepted);
    EXPECT_EQ(a.see(tcp(client, p, 80, kAck), 1 * kSec), Verdict::accepted);
    // Before any sweep the table may hold anything: the fast path is off.
    EXPECT_TRUE(a.table.may_hold_foreign(*a.snap));
    sweep(a, 2 * kSec);
    EXPECT_FALSE(a.table.may_hold_foreign(*a.snap)) << "all of A's connections are in its buckets";
    // Fast path on: a packet of a flow A never had is not_owner, and nothing
    // is inserted or counted for it.
    const uint64_t inserted = a.table.stats().inserted;
    EXPECT_EQ(a.see(tcp(client, other, 80, kAck), 2 * kSec), Verdict::not_owner);
    EXPECT_EQ(a.table.stats().inserted, inserted);

    move(a, b, kWeb, bucket, kB, /*dirty=*/true);
    // Right after the move, before any sweep under the new snapshot: the new
    // view switches the fast path off and A still delivers the connection.
    EXPECT_TRUE(a.table.may_hold_foreign(*a.snap));
    EXPECT_EQ(a.see(tcp(client, p, 80, kAck), 3 * kSec), Verdict::accepted_conn);
    EXPECT_EQ(b.see(tcp(client, p, 80, kAck), 3 * kSec), Verdict::conn_elsewhere);
    // Sweeps under the new snapshot count the connection: still off.
    sweep(a, 4 * kSec);
    EXPECT_EQ(a.table.held_foreign().count, 1u);
    EXPECT_TRUE(a.table.may_hold_foreign(*a.snap));
    EXPECT_EQ(a.see(tcp(client, p, 80, kAck | kPsh), 5 * kSec), Verdict::accepted_conn);

    // The client closes (RST): the entry goes, the next whole sweep finds
    // nothing foreign and the fast path is back.
    EXPECT_EQ(a.see(tcp(client, p, 80, kRst), 6 * kSec), Verdict::accepted_conn);
    sweep(a, 7 * kSec);
    EXPECT_EQ(a.table.held_foreign().count, 0u);
    EXPECT_FALSE(a.table.may_hold_foreign(*a.snap));
    EXPECT_EQ(a.see(tcp(client, p, 80, kAck), 8 * kSec), Verdict::not_owner);
}

// The burst form takes the same fast path and gives the same verdicts.
TEST(Persist, BurstFastPathGivesTheSameVerdictsAsOneByOne) {
    Host one(kA), burst(kA);
    std::vector<ParsedFrame> frames;
    for (uint32_t i = 0; i < 200; ++i) {
        const std::string c = "198.51.100." + std::to_string(i % 9 + 1);
        frames.push_back(tcp(c.c_str(), static_cast<uint16_t>(3000 + i % 17), 80,
                             i < 60 ? kSyn : kAck));
    }
    for (Host* h : {&one, &burst}) {
        while (!h->table.expire(0, 1u << 20, h->snap.get()).sweep_completed) {
        }
        ASSERT_FALSE(h->table.may_hold_foreign(*h->snap));
    }
    std::vector<Decision> expect, got(frames.size());
    for (const ParsedFrame& f : frames)
        expect.push_back(apply_persistence(f, decide(f, *one.snap), *one.snap, one.table, kSec));
    decide_burst(frames, *burst.snap, got);
    apply_persistence_burst(frames, got, *burst.snap, burst.table, kSec);
    size_t not_owner = 0;
    for (size_t i = 0; i < frames.size(); ++i) {
        EXPECT_EQ(got[i].verdict, expect[i].verdict) << i;
        not_owner += got[i].verdict == Verdict::not_owner;
    }
    EXPECT_GT(not_owner, 0u);
    EXPECT_EQ(one.table.stats().entries, burst.table.stats().entries);
}

// ---------------------------------------------------------------- TCP extended affinity

namespace {

// A client address of the form prefix + i whose bucket for (rule, dport) is
// owned by `owner` in s.
std::string client_owned_by(const Snapshot& s, const char* prefix, uint16_t dport, HostId owner,
                            unsigned from = 1) {
    for (unsigned i = from; i < 255; ++i) {
        const std::string c = std::string(prefix) + std::to_string(i);
        if (decide(tcp(c.c_str(), 40000, dport, kSyn), s).owner == owner) return c;
    }
    ADD_FAILURE() << "no client found";
    return {};
}

// Both hosts see f; returns {A's verdict, B's verdict}.
std::pair<Verdict, Verdict> both(Host& a, Host& b, const ParsedFrame& f, uint64_t now) {
    return {a.see(f, now), b.see(f, now)};
}

bool accepts(Verdict v) { return v == Verdict::accepted || v == Verdict::accepted_conn; }

}  // namespace

// The scenario of issue 13: a client with an open session on A; its bucket
// moves to B (B joins); the session keeps sending; the client's new TCP
// connections go to A (B leaves them: conn_elsewhere) until the affinity
// times out, and then to B. Exactly one host accepts every SYN.
TEST(ExtendedAffinity, HeldClientKeepsItsNewConnectionsOnTheOldOwnerUntilTheTimeout) {
    Host a(kA), b(kB);
    const std::string c = client_owned_by(*a.snap, "198.51.100.", 443, kA);
    const char* client = c.c_str();
    const uint32_t bucket = decide(tcp(client, 40000, 443, kSyn), *a.snap).bucket;

    EXPECT_EQ(both(a, b, tcp(client, 40001, 443, kSyn), 0),
              std::make_pair(Verdict::accepted, Verdict::not_owner));
    both(a, b, tcp(client, 40001, 443, kAck), 0);
    EXPECT_EQ(a.table.stats().affinity_entries, 1u);

    move(a, b, kTcpAff, bucket, kB, true);
    // The session goes on: A keeps it, B leaves it and marks the client.
    EXPECT_EQ(both(a, b, tcp(client, 40001, 443, kAck | kPsh), 1 * kSec),
              std::make_pair(Verdict::accepted_conn, Verdict::conn_elsewhere));
    EXPECT_EQ(b.table.stats().affinity_entries, 1u);
    both(a, b, tcp(client, 40001, 443, kAck | kPsh), 4 * kSec);  // confirms on A

    // New connection of the held client: A only.
    EXPECT_EQ(both(a, b, tcp(client, 40002, 443, kSyn), 5 * kSec),
              std::make_pair(Verdict::accepted_conn, Verdict::conn_elsewhere));
    EXPECT_EQ(both(a, b, tcp(client, 40002, 443, kAck), 5 * kSec),
              std::make_pair(Verdict::accepted_conn, Verdict::conn_elsewhere));
    EXPECT_EQ(a.table.stats().affinity_hits, 1u);
    EXPECT_EQ(b.table.stats().affinity_yielded, 1u);

    // Another client of the same bucket with no session on A: B at once.
    const std::string other = [&] {
        for (unsigned i = 1; i < 255; ++i) {
            const std::string o = "203.0.113." + std::to_string(i);
            if (decide(tcp(o.c_str(), 40000, 443, kSyn), *b.snap).bucket == bucket) return o;
        }
        return std::string();
    }();
    if (!other.empty()) {
        EXPECT_EQ(both(a, b, tcp(other.c_str(), 50000, 443, kSyn), 5 * kSec),
                  std::make_pair(Verdict::not_owner, Verdict::accepted));
    }

    // Both sessions end at 10 s; the affinity lasts 60 s more on A.
    both(a, b, tcp(client, 40001, 443, kRst), 10 * kSec);
    both(a, b, tcp(client, 40002, 443, kRst), 10 * kSec);
    EXPECT_EQ(both(a, b, tcp(client, 40003, 443, kSyn), 69 * kSec),
              std::make_pair(Verdict::accepted_conn, Verdict::conn_elsewhere));
    both(a, b, tcp(client, 40003, 443, kRst), 69 * kSec);
    // Past the timeout A lets go; B's mark lasts kElsewhereGuardS longer (a
    // SYN there is dropped by both and retransmitted), then B accepts, even
    // before A's zero held_foreign clears the dirty mark.
    EXPECT_EQ(both(a, b, tcp(client, 40004, 443, kSyn), 130 * kSec),
              std::make_pair(Verdict::not_owner, Verdict::conn_elsewhere));
    EXPECT_EQ(both(a, b, tcp(client, 40004, 443, kSyn), (130 + kElsewhereGuardS) * kSec),
              std::make_pair(Verdict::not_owner, Verdict::accepted));
}

// A client whose session sends nothing after the move gives the new owner no
// way to know about it: it moves at once (and is never answered twice).
TEST(ExtendedAffinity, ClientSilentSinceTheMoveMovesAtOnce) {
    Host a(kA), b(kB);
    const std::string c = client_owned_by(*a.snap, "198.51.100.", 443, kA);
    const uint32_t bucket = decide(tcp(c.c_str(), 40000, 443, kSyn), *a.snap).bucket;
    both(a, b, tcp(c.c_str(), 40001, 443, kSyn), 0);
    both(a, b, tcp(c.c_str(), 40001, 443, kAck), 0);
    move(a, b, kTcpAff, bucket, kB, true);
    EXPECT_EQ(both(a, b, tcp(c.c_str(), 40002, 443, kSyn), 5 * kSec),
              std::make_pair(Verdict::not_owner, Verdict::accepted));
    // Right after the move (inside the grace) the old owner does not take
    // new connections by affinity either: the new owner may not have
    // published the move yet.
    Host a2(kA), b2(kB);
    both(a2, b2, tcp(c.c_str(), 40001, 443, kSyn), 0);
    move(a2, b2, kTcpAff, bucket, kB, true);
    both(a2, b2, tcp(c.c_str(), 40001, 443, kAck), 1 * kSec);
    const auto v = both(a2, b2, tcp(c.c_str(), 40003, 443, kSyn), 1 * kSec + kSec / 2);
    EXPECT_FALSE(accepts(v.first) && accepts(v.second));
    EXPECT_FALSE(accepts(v.first));
}

// Network affinity: the client's /24 is the key, so a neighbour of a held
// client is held too.
TEST(ExtendedAffinity, NetworkAffinityHoldsTheClientsSlash24) {
    Host a(kA), b(kB);
    const std::string c = client_owned_by(*a.snap, "198.51.100.", 8443, kA);
    const uint32_t bucket = decide(tcp(c.c_str(), 40000, 8443, kSyn), *a.snap).bucket;
    both(a, b, tcp(c.c_str(), 40001, 8443, kSyn), 0);
    both(a, b, tcp(c.c_str(), 40001, 8443, kAck), 0);
    move(a, b, kTcpNet, bucket, kB, true);
    both(a, b, tcp(c.c_str(), 40001, 8443, kAck | kPsh), 1 * kSec);
    both(a, b, tcp(c.c_str(), 40001, 8443, kAck | kPsh), 4 * kSec);
    const std::string neighbour = c == "198.51.100.77" ? "198.51.100.78" : "198.51.100.77";
    EXPECT_EQ(both(a, b, tcp(neighbour.c_str(), 50000, 8443, kSyn), 5 * kSec),
              std::make_pair(Verdict::accepted_conn, Verdict::conn_elsewhere));
    // Another /24 in the same bucket is not held.
    for (unsigned i = 1; i < 255; ++i) {
        const std::string o = "203.0." + std::to_string(i) + ".9";
        if (decide(tcp(o.c_str(), 1, 8443, kSyn), *b.snap).bucket != bucket) continue;
        EXPECT_EQ(both(a, b, tcp(o.c_str(), 50001, 8443, kSyn), 5 * kSec),
                  std::make_pair(Verdict::not_owner, Verdict::accepted));
        break;
    }
}

// The holder's affinity entries count as foreign connections, so the new
// owner's bucket stays dirty (its marks stay effective) until they expire.
TEST(ExtendedAffinity, AffinityEntriesKeepTheMoveDirtyUntilTheyExpire) {
    Host a(kA), b(kB);
    const std::string c = client_owned_by(*a.snap, "198.51.100.", 443, kA);
    const uint32_t bucket = decide(tcp(c.c_str(), 40000, 443, kSyn), *a.snap).bucket;
    both(a, b, tcp(c.c_str(), 40001, 443, kSyn), 0);
    both(a, b, tcp(c.c_str(), 40001, 443, kAck), 0);
    move(a, b, kTcpAff, bucket, kB, true);
    both(a, b, tcp(c.c_str(), 40001, 443, kRst), 1 * kSec);
    auto sweep = [&](Host& h, uint64_t now) {
        for (int i = 0; i < 2; ++i)
            while (!h.table.expire(now, 1u << 20, h.snap.get()).sweep_completed) {
            }
        return h.table.held_foreign();
    };
    EXPECT_EQ(sweep(a, 2 * kSec).count, 1u);   // the affinity entry
    EXPECT_EQ(sweep(b, 2 * kSec).count, 0u);   // a mark is no connection
    EXPECT_EQ(sweep(a, 62 * kSec).count, 0u);  // expired
    EXPECT_EQ(a.table.stats().affinity_entries, 0u);
}

// Bounded: affinity entries live in the connection table; past its capacity
// the oldest are evicted (counted), established connections never are.
TEST(ExtendedAffinity, AffinityEntriesAreBoundedAndEvictionsCounted) {
    auto s = snapshot_of(kA);
    ConnTable::Config cfg;
    cfg.capacity = 64;
    ConnTable t(cfg);
    auto see = [&](const ParsedFrame& f, uint64_t now) {
        return apply_persistence(f, decide(f, *s), *s, t, now).verdict;
    };
    unsigned owned = 0;
    for (unsigned hi = 1; hi < 5; ++hi)
        for (unsigned i = 1; i < 255; ++i) {
            const std::string c = "10." + std::to_string(hi) + ".0." + std::to_string(i);
            if (decide(tcp(c.c_str(), 1, 443, kSyn), *s).owner != kA) continue;
            ++owned;
            EXPECT_EQ(see(tcp(c.c_str(), 1000, 443, kSyn), i * 1000), Verdict::accepted);
            see(tcp(c.c_str(), 1000, 443, kRst), i * 1000);
        }
    ASSERT_GT(owned, 100u);
    EXPECT_LE(t.stats().entries, 64u);
    EXPECT_EQ(t.stats().affinity_entries, t.stats().entries);
    EXPECT_GT(t.stats().affinity_evicted + t.stats().affinity_insert_failed, 0u);
}

// Rules without a timeout, affinity none, and single-host rules keep no
// client entries.
TEST(ExtendedAffinity, OnlyRulesWithATimeoutAndClientAffinityKeepEntries) {
    Host a(kA);
    const uint16_t p = port_in(*a.snap, "198.51.100.9", 80, kA);
    a.see(tcp("198.51.100.9", p, 80, kSyn), 0);
    a.see(tcp("198.51.100.9", 1234, 22, kSyn), 0);
    EXPECT_EQ(a.table.stats().affinity_entries, 0u);
}

// A draining host (out of the members) takes no client by affinity, and its
// affinity entries do not keep its held_foreign above zero (drainstop ends
// with its connections).
TEST(ExtendedAffinity, DrainingHostTakesNoClientByAffinity) {
    Host a(kA), b(kB);
    const std::string c = client_owned_by(*a.snap, "198.51.100.", 443, kA);
    const uint32_t bucket = decide(tcp(c.c_str(), 40000, 443, kSyn), *a.snap).bucket;
    both(a, b, tcp(c.c_str(), 40001, 443, kSyn), 0);
    both(a, b, tcp(c.c_str(), 40001, 443, kAck), 0);
    move(a, b, kTcpAff, bucket, kB, true);
    both(a, b, tcp(c.c_str(), 40001, 443, kAck | kPsh), 1 * kSec);
    both(a, b, tcp(c.c_str(), 40001, 443, kAck | kPsh), 4 * kSec);
    auto drained = std::make_shared<Snapshot>(*a.snap);
    drained->members = {kB};
    ++drained->generation;
    a.snap = drained;
    EXPECT_EQ(a.see(tcp(c.c_str(), 40002, 443, kSyn), 5 * kSec), Verdict::not_owner);
    both(a, b, tcp(c.c_str(), 40001, 443, kRst), 6 * kSec);
    for (int i = 0; i < 2; ++i)
        while (!a.table.expire(7 * kSec, 1u << 20, a.snap.get()).sweep_completed) {
        }
    EXPECT_EQ(a.table.held_foreign().count, 0u);
}

// Property: whatever the client does (new connections, data, resets, long
// pauses past the timeout) and however late the new owner publishes the
// move after the old owner (up to 1.5 s, under kAffinityGraceMs), no SYN is
// accepted by both hosts. The new owner's bucket stays dirty until a sweep
// on the old owner finds nothing held (as its heartbeat would say). (Checked
// to catch a holder that refreshes its entry on the SYNs it accepts: 23
// double answers in these rounds.) The new owner publishing *before* the old
// owner would let both answer a SYN without extended affinity too: not
// modelled.
TEST(ExtendedAffinity, NoSynIsAcceptedTwiceUnderRandomTraffic) {
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    auto next = [&](uint64_t n) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng % n;
    };
    unsigned syns = 0, held = 0, doubles = 0;
    for (int round = 0; round < 40; ++round) {
        Host a(kA), b(kB);
        std::vector<std::string> clients;
        for (unsigned from = 1; clients.size() < 3; ++from) {
            const std::string c = client_owned_by(*a.snap, "198.51.100.", 443, kA, from);
            from = static_cast<unsigned>(std::stoul(c.substr(c.rfind('.') + 1)));
            clients.push_back(c);
        }
        std::vector<uint32_t> buckets;
        for (const auto& c : clients) buckets.push_back(decide(tcp(c.c_str(), 1, 443, kSyn), *a.snap).bucket);
        const uint64_t move_a = (2 + next(5)) * kSec;
        const uint64_t move_b = move_a + next(1500) * 1'000'000ull;
        bool moved_a = false, moved_b = false, clean = false;
        std::vector<std::pair<std::string, uint16_t>> open;
        uint16_t port = 20000;
        uint64_t now = 0;
        auto move_one = [&](Host& h, bool dirty) {
            auto s = std::make_shared<Snapshot>(*h.snap);
            ++s->epoch;
            ++s->generation;
            if (s->dirty.empty()) s->dirty.assign(s->owners.size(), 0);
            for (uint32_t bk : buckets) {
                s->owners[static_cast<size_t>(kTcpAff) * s->buckets + bk] = kB;
                s->dirty[static_cast<size_t>(kTcpAff) * s->buckets + bk] = dirty && s->self == kB;
            }
            h.snap = s;
        };
        for (int step = 0; step < 120; ++step) {
            const unsigned g = static_cast<unsigned>(next(50));
            const uint64_t gap = g == 0   ? (40 + next(40)) * kSec
                                 : g < 8 ? (5 + next(25)) * kSec
                                          : (50 + next(1500)) * 1'000'000ull;
            now += gap;
            if (!moved_a && now >= move_a) { move_one(a, false); moved_a = true; }
            if (!moved_b && now >= move_b) { move_one(b, true); moved_b = true; }
            if (moved_a && moved_b && !clean) {
                for (int i = 0; i < 2; ++i)
                    while (!a.table.expire(now, 1u << 20, a.snap.get()).sweep_completed) {
                    }
                if (a.table.held_foreign().valid && a.table.held_foreign().count == 0) {
                    auto s = std::make_shared<Snapshot>(*b.snap);
                    s->dirty.assign(s->owners.size(), 0);
                    ++s->generation;
                    b.snap = s;
                    clean = true;
                }
            }
            const unsigned what = static_cast<unsigned>(next(10));
            if (what < 4 || open.empty()) {
                const std::string& c = clients[next(clients.size())];
                const uint16_t p = port++;
                const auto v = both(a, b, tcp(c.c_str(), p, 443, kSyn), now);
                ++syns;
                if (accepts(v.first) && accepts(v.second)) ++doubles;
                if (v.first == Verdict::accepted_conn) ++held;
                // Some handshakes never complete (the client gives up).
                if ((accepts(v.first) || accepts(v.second)) && next(2) != 0) {
                    both(a, b, tcp(c.c_str(), p, 443, kAck), now);
                    open.emplace_back(c, p);
                }
            } else if (what < 7) {
                const auto& [c, p] = open[next(open.size())];
                both(a, b, tcp(c.c_str(), p, 443, kAck | kPsh), now);
            } else {
                const size_t i = next(open.size());
                both(a, b, tcp(open[i].first.c_str(), open[i].second, 443, kRst), now);
                open.erase(open.begin() + static_cast<ptrdiff_t>(i));
            }
        }
    }
    EXPECT_EQ(doubles, 0u) << "of " << syns << " SYNs";
    EXPECT_GT(held, 0u);  // the property is not vacuous: the holder did take some
}
