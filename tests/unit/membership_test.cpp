// Properties of the membership / convergence state machine, on a virtual
// clock, with a small in-test network that loses, delays, duplicates and
// partitions heartbeats between N Membership instances.

#include "nlbd/cluster/membership.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <random>

#include "nlbd/core/bucket_map.hpp"
#include "nlbd/core/decide.hpp"
#include "nlbd/core/snapshot.hpp"

namespace nlbd::cluster {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kInterval = 100 * kMs;
constexpr uint32_t kTolerance = 3;
// A host declared dead counts as holding its connections until it has been
// silent for the dead interval and the hold (3 dead intervals) after it.
constexpr uint64_t kHoldEnd = 4 * kTolerance * kInterval;

PortRule multiple_rule(uint16_t lo, uint16_t hi, uint8_t weight = 0) {
    PortRule r;
    r.port_lo = lo;
    r.port_hi = hi;
    r.mode = FilterMode::multiple;
    r.affinity = Affinity::single;
    r.equal_weight = weight == 0;
    r.load_weight = weight;
    return r;
}

PortRule single_rule(uint16_t port, uint8_t priority) {
    PortRule r;
    r.port_lo = r.port_hi = port;
    r.mode = FilterMode::single;
    r.handling_priority = priority;
    return r;
}

// Emulates the wire: per-receiver replay check (as ReplayGuard does), loss,
// delay (one delay per burst and receiver, so a burst is not reordered),
// duplication, partitions, hosts going down.
class Net {
public:
    struct Node {
        HostId id = kNoHost;
        std::unique_ptr<Membership> m;
        bool up = true;
        uint32_t held = 0;  // connections this host holds in buckets it does not own
        std::shared_ptr<const core::Snapshot> snap;
        uint64_t rebuilds = 0;
    };

    explicit Net(uint64_t seed = 1) : rng_(seed) {}

    double loss = 0.0;
    double duplicate = 0.0;
    uint64_t max_delay = 0;
    uint64_t now = 0;
    std::function<bool(HostId, HostId)> link = [](HostId, HostId) { return true; };

    MembershipConfig config(HostId id, std::vector<PortRule> rules) const {
        MembershipConfig c;
        c.self = id;
        c.cluster_id = 42;
        c.boot_id = 1000 + id;
        c.buckets = buckets;
        c.interval_ns = kInterval;
        c.tolerance = tolerance;
        c.redundancy = redundancy;
        c.rules = std::move(rules);
        c.vips = vips;
        c.chunk_buckets = 100;
        return c;
    }

    size_t add(MembershipConfig c) {
        Node n;
        n.id = c.self;
        n.m = std::make_unique<Membership>(std::move(c), now);
        nodes.push_back(std::move(n));
        return nodes.size() - 1;
    }
    size_t add(HostId id, std::vector<PortRule> rules = {multiple_rule(0, 65535)}) {
        rules_of_[id] = rules;
        return add(config(id, std::move(rules)));
    }

    // One step of the virtual clock.
    void step(uint64_t dt) {
        now += dt;
        while (!queue_.empty() && queue_.begin()->first <= now) {
            auto node = queue_.extract(queue_.begin());
            Msg& msg = node.mapped();
            Node& dst = nodes[msg.to];
            if (!dst.up) continue;
            uint64_t& last = seen_[{msg.to, msg.hb.boot_id, msg.hb.host}];
            if (msg.hb.sequence <= last) continue;  // replay guard
            last = msg.hb.sequence;
            dst.m->on_heartbeat(msg.hb, now);
        }
        for (size_t i = 0; i < nodes.size(); ++i) {
            Node& n = nodes[i];
            if (!n.up) continue;
            n.m->tick(now);
            auto frames = n.m->frames_to_send(now, now);
            if (!frames.empty()) {
                for (size_t j = 0; j < nodes.size(); ++j) {
                    if (j == i || !link(n.id, nodes[j].id)) continue;
                    const uint64_t delay =
                        max_delay ? std::uniform_int_distribution<uint64_t>(0, max_delay)(rng_) : 0;
                    for (const Heartbeat& hb : frames) {
                        if (chance(loss)) continue;
                        queue_.emplace(now + delay + 1, Msg{j, hb});
                        if (chance(duplicate)) queue_.emplace(now + delay + 2, Msg{j, hb});
                    }
                }
            }
            rebuild(n);
        }
    }

    void rebuild(Node& n) {
        if (!n.m->take_changed() && n.snap) {
            n.m->set_held_foreign(n.held, n.snap->generation, now);
            return;
        }
        n.snap = core::compile_snapshot(n.m->snapshot_input());
        ++n.rebuilds;
        n.m->set_held_foreign(n.held, n.snap->generation, now);
    }

    void run_for(uint64_t duration, uint64_t dt = kInterval / 10) {
        const uint64_t end = now + duration;
        while (now < end) step(dt);
    }

    // Reload: the same process takes a new rule set (Membership::reconfigure).
    void reload(HostId id, std::vector<PortRule> rules) {
        rules_of_[id] = rules;
        node(id).m->reconfigure(config(id, std::move(rules)), now);
    }

    // Process restart: a fresh instance with a new boot id.
    void restart(HostId id) {
        Node& n = node(id);
        auto c = config(id, rules_of_[id]);
        c.boot_id = 5000 + id + 100 * ++restarts_;
        n.m = std::make_unique<Membership>(std::move(c), now);
        n.up = true;
        n.snap.reset();
    }

    // Runs until pred() holds (checked every step) or the limit passes.
    bool run_until(const std::function<bool()>& pred, uint64_t limit, uint64_t dt = kInterval / 10) {
        const uint64_t end = now + limit;
        while (now < end) {
            step(dt);
            if (pred()) return true;
        }
        return pred();
    }

    Node& node(HostId id) {
        for (Node& n : nodes)
            if (n.id == id) return n;
        ADD_FAILURE() << "no node " << int(id);
        return nodes.front();
    }

    // Every up, started node converged with one identical map set.
    bool all_converged() const {
        const Membership* first = nullptr;
        for (const Node& n : nodes) {
            if (!n.up || n.m->state() != HostState::started) continue;
            if (!n.m->converged() || !n.m->has_maps()) return false;
            if (!first) {
                first = n.m.get();
                continue;
            }
            if (n.m->map_digest() != first->map_digest() || n.m->epoch() != first->epoch() ||
                n.m->view() != first->view() || n.m->class_maps() != first->class_maps())
                return false;
        }
        return first != nullptr;
    }

    // all_converged() with exactly these members.
    bool converged_on(std::initializer_list<HostId> members) const {
        return converged_on(std::vector<HostId>(members));
    }
    bool converged_on(const std::vector<HostId>& members) const {
        uint64_t view = 0;
        for (HostId h : members) view |= 1ull << (h - 1);
        if (!all_converged()) return false;
        for (const Node& n : nodes)
            if (n.up && n.m->state() == HostState::started && n.m->view() != view) return false;
        return true;
    }

    std::vector<HostId> map_of(HostId id, size_t rule = 0) {
        std::vector<HostId> out;
        for (uint32_t b = 0; b < buckets; ++b) out.push_back(node(id).m->owner(rule, b));
        return out;
    }

    uint32_t buckets = 240;
    uint32_t tolerance = kTolerance;
    uint32_t redundancy = 3;
    std::vector<IpAddr> vips;  // MembershipConfig::vips of every node (for decide())
    std::vector<Node> nodes;

private:
    struct Msg {
        size_t to;
        Heartbeat hb;
    };
    bool chance(double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
    std::mt19937_64 rng_;
    std::multimap<uint64_t, Msg> queue_;
    std::map<std::tuple<size_t, uint64_t, HostId>, uint64_t> seen_;
    std::map<HostId, std::vector<PortRule>> rules_of_;
    unsigned restarts_ = 0;
};

std::map<HostId, uint32_t> counts(const std::vector<HostId>& map) {
    std::map<HostId, uint32_t> c;
    for (HostId h : map) ++c[h];
    return c;
}

void expect_fair(const std::vector<HostId>& map, const std::vector<HostId>& hosts) {
    const auto c = counts(map);
    const uint32_t lo = static_cast<uint32_t>(map.size() / hosts.size());
    const uint32_t hi = lo + (map.size() % hosts.size() ? 1 : 0);
    for (HostId h : hosts) {
        const uint32_t got = c.count(h) ? c.at(h) : 0;
        EXPECT_GE(got, lo) << "host " << int(h);
        EXPECT_LE(got, hi) << "host " << int(h);
    }
    EXPECT_EQ(c.count(kNoHost), 0u) << "unowned buckets";
}

std::vector<HostId> ids(unsigned n) {
    std::vector<HostId> v;
    for (unsigned i = 1; i <= n; ++i) v.push_back(static_cast<HostId>(i));
    return v;
}

// ---------------------------------------------------------------------------

TEST(Membership, ColdStartOfThreeHostsConvergesToIdenticalFairMaps) {
    Net net;
    for (HostId h : ids(3)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 20 * kInterval));
    const auto map = net.map_of(1);
    EXPECT_EQ(net.map_of(2), map);
    EXPECT_EQ(net.map_of(3), map);
    expect_fair(map, ids(3));
    const auto st = net.node(1).m->status(net.now);
    EXPECT_EQ(st.state, ClusterState::converged_default);
    EXPECT_EQ(st.members, ids(3));
    EXPECT_EQ(net.node(2).m->status(net.now).state, ClusterState::converged);
    EXPECT_TRUE(st.mismatches.empty());
    // The snapshot the packet path gets carries the same owners, nothing dirty.
    const auto& snap = *net.node(2).snap;
    for (uint32_t b = 0; b < net.buckets; ++b) {
        EXPECT_EQ(snap.owner(0, b), map[b]);
        EXPECT_FALSE(snap.is_dirty(0, b));
    }
    EXPECT_EQ(snap.default_host, 1);
    EXPECT_EQ(snap.members, ids(3));
}

TEST(Membership, ColdStartOfSixteenHostsConvergesDespiteLossDelayAndDuplicates) {
    Net net(7);
    net.loss = 0.2;
    net.duplicate = 0.2;
    net.max_delay = kInterval / 2;
    for (HostId h : ids(16)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 100 * kInterval));
    const auto map = net.map_of(1);
    for (HostId h : ids(16)) EXPECT_EQ(net.map_of(h), map) << "host " << int(h);
    expect_fair(map, ids(16));
}

TEST(Membership, SixtyFourHostsConvergeWithFairShares) {
    Net net(3);
    net.buckets = 4096;
    net.max_delay = kInterval / 4;
    for (HostId h : ids(64)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 50 * kInterval));
    const auto map = net.map_of(64);
    EXPECT_EQ(net.map_of(1), map);
    EXPECT_EQ(net.map_of(33), map);
    expect_fair(map, ids(64));
}

TEST(Membership, SurvivorsOwnDeadHostsBucketsWithinBoundAndOnlyThoseMove) {
    Net net(11);
    net.max_delay = kInterval / 5;
    for (HostId h : ids(4)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    const auto before = net.map_of(1);
    const uint64_t adoptions = net.node(1).m->status(net.now).map_adoptions +
                               net.node(2).m->status(net.now).map_adoptions +
                               net.node(4).m->status(net.now).map_adoptions;
    net.run_for(kInterval / 3);  // die at an arbitrary phase of the interval
    net.node(3).up = false;
    const uint64_t died = net.now;
    const uint64_t bound = (kTolerance + 2) * kInterval;
    // Every bucket owned by exactly one survivor, by each survivor's own maps.
    auto covered = [&] {
        for (uint32_t b = 0; b < net.buckets; ++b) {
            int claims = 0;
            for (HostId h : {1, 2, 4})
                if (net.node(h).m->owner(0, b) == h) ++claims;
            if (claims != 1) return false;
        }
        return true;
    };
    ASSERT_TRUE(net.run_until(covered, bound));
    EXPECT_LE(net.now - died, bound);
    const auto after = net.map_of(1);
    for (uint32_t b = 0; b < net.buckets; ++b)
        if (before[b] != 3) {
            EXPECT_EQ(after[b], before[b]) << "bucket " << b << " moved";
        }
    expect_fair(after, {1, 2, 4});
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 4}); }, 10 * kInterval));
    // Each survivor computed the same map itself: no map transfer was needed.
    EXPECT_EQ(net.node(1).m->status(net.now).map_adoptions +
                  net.node(2).m->status(net.now).map_adoptions +
                  net.node(4).m->status(net.now).map_adoptions,
              adoptions);
    EXPECT_EQ(net.map_of(2), after);
    EXPECT_EQ(net.node(1).m->status(net.now).members, (std::vector<HostId>{1, 2, 4}));
    // Until the hold ends, the buckets taken from the dead host are dirty
    // (it may be alive behind a lossy path): new connections only.
    uint32_t taken = 0;
    for (uint32_t b = 0; b < net.buckets; ++b) {
        if (after[b] != 2) continue;
        taken += before[b] == 3;
        EXPECT_EQ(net.node(2).snap->is_dirty(0, b), before[b] == 3) << "bucket " << b;
    }
    EXPECT_GT(taken, 0u);
    EXPECT_EQ(net.node(2).m->status(net.now).dirty_buckets, taken);
    // Then the dead host leaves nothing dirty behind.
    ASSERT_LT(net.now, died + kHoldEnd);
    net.run_for(died + kHoldEnd + kInterval - net.now);
    EXPECT_EQ(net.node(2).m->status(net.now).dirty_buckets, 0u);
}


// ---- Failure detection under heartbeat loss (docs/cluster.md) -------------

// Epoch changes summed over the nodes, and whether any node ever lost a
// member, over `duration` of virtual time.
struct LossRun {
    uint64_t epoch_changes = 0;
    bool member_lost = false;
};
LossRun run_with_loss(Net& net, size_t hosts, uint64_t duration) {
    const uint64_t before = [&] {
        uint64_t e = 0;
        for (const auto& n : net.nodes) e += n.m->status(net.now).epoch_changes;
        return e;
    }();
    LossRun r;
    const uint64_t end = net.now + duration;
    while (net.now < end) {
        net.step(kInterval / 10);
        for (const auto& n : net.nodes)
            if (n.m->status(net.now).members.size() != hosts) r.member_lost = true;
    }
    for (const auto& n : net.nodes) r.epoch_changes += n.m->status(net.now).epoch_changes;
    r.epoch_changes -= before;
    return r;
}

// NLB's lab setting (100 ms x 5) with 20% of the heartbeat frames lost at
// random, independently per frame and receiver: ten minutes without a death
// with three heartbeats per interval; one per interval (NLB) flaps.
TEST(Membership, TwentyPercentHeartbeatLossKillsNobodyForTenMinutes) {
    for (const uint32_t redundancy : {3u, 1u}) {
        Net net(97);
        net.tolerance = 5;
        net.redundancy = redundancy;
        for (HostId h : ids(2)) net.add(h);
        ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2}); }, 30 * kInterval));
        net.loss = 0.20;
        const LossRun r = run_with_loss(net, 2, 600'000 * kMs);
        if (redundancy == 3) {
            EXPECT_FALSE(r.member_lost);
            EXPECT_EQ(r.epoch_changes, 0u);
        } else {
            EXPECT_TRUE(r.member_lost) << "one heartbeat per interval should flap at 20% loss";
            EXPECT_GT(r.epoch_changes, 0u);
        }
    }
}

// Indirect confirmation: heavy loss on the path between hosts 1 and 2 only;
// host 3 hears both and says so in its heartbeats, so neither declares the
// other dead. Without a third host the same path flaps.
TEST(Membership, AThirdHostVouchesForAPeerBehindALossyPath) {
    for (const size_t hosts : {size_t{3}, size_t{2}}) {
        Net net(101);
        net.tolerance = 5;
        for (HostId h : ids(hosts)) net.add(h);
        ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
        std::mt19937_64 rng(7);
        net.link = [&rng](HostId a, HostId b) {
            if ((a == 1 && b == 2) || (a == 2 && b == 1))
                return std::uniform_real_distribution<double>(0, 1)(rng) >= 0.7;
            return true;
        };
        const LossRun r = run_with_loss(net, hosts, 120'000 * kMs);
        if (hosts == 3) {
            EXPECT_FALSE(r.member_lost);
            EXPECT_EQ(r.epoch_changes, 0u);
        } else {
            EXPECT_TRUE(r.member_lost) << "70% loss should flap between two hosts alone";
        }
    }
}

// Sixteen hosts, 40% of every frame lost independently per receiver, two
// minutes: redundancy and vouching keep every host in every view.
TEST(Membership, SixteenHostsAtFortyPercentLossKeepOneView) {
    Net net(109);
    net.tolerance = 5;
    net.buckets = 1024;
    for (HostId h : ids(16)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 50 * kInterval));
    net.loss = 0.40;
    const LossRun r = run_with_loss(net, 16, 120'000 * kMs);
    EXPECT_FALSE(r.member_lost);
    EXPECT_EQ(r.epoch_changes, 0u);
}

// A real death is still seen within (tolerance + 2) x interval although the
// dead host's last heartbeats were vouched for by the others.
TEST(Membership, VouchingDelaysARealDeathByAtMostTwoIntervals) {
    Net net(103);
    net.tolerance = 5;
    for (HostId h : ids(5)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3, 4, 5}); }, 30 * kInterval));
    net.run_for(kInterval / 7);
    net.node(5).up = false;
    const uint64_t died = net.now;
    const uint64_t bound = (net.tolerance + 2) * kInterval;
    ASSERT_TRUE(net.run_until(
        [&] {
            for (HostId h : ids(4))
                if ((net.node(h).m->view() & (1ull << 4)) != 0) return false;
            return true;
        },
        bound));
    EXPECT_LE(net.now - died, bound);
}

// A host declared dead while alive (every frame between the two lost for
// longer than the dead interval: a partition) loses no connection: from the
// death until the two have converged again, every bucket the survivor took
// from it is dirty on the survivor (new connections only), so packets of its
// established connections are left to it.
TEST(Membership, AFalseDeathLeavesTheLivingHostsConnectionsToIt) {
    Net net(107);
    net.tolerance = 5;
    for (HostId h : ids(2)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2}); }, 30 * kInterval));
    const auto before = net.map_of(2);
    net.node(1).held = 0;
    net.link = [](HostId, HostId) { return false; };
    const uint64_t cut = net.now;
    bool took = false;
    uint64_t violations = 0;
    auto check = [&] {
        const Net::Node& n2 = net.node(2);
        for (uint32_t b = 0; b < net.buckets; ++b) {
            if (before[b] != 1 || n2.m->owner(0, b) != 2) continue;
            took = true;
            if (!n2.snap->is_dirty(0, b)) ++violations;
        }
    };
    while (net.now < cut + 8 * net.tolerance * kInterval / 5) {  // 1.6 dead intervals
        net.step(kInterval / 10);
        check();
    }
    EXPECT_TRUE(took) << "host 2 should have declared host 1 dead and taken its buckets";
    // Heal: host 1 was alive all along and holds connections in what it owned.
    net.link = [](HostId, HostId) { return true; };
    net.node(1).held = 3;
    const uint64_t healed = net.now;
    while (!net.converged_on({1, 2}) && net.now < healed + 60 * kInterval) {
        net.step(kInterval / 10);
        check();
    }
    ASSERT_TRUE(net.converged_on({1, 2}));
    EXPECT_EQ(violations, 0u);
    // Host 1's connections end: the marks clear.
    net.node(1).held = 0;
    ASSERT_TRUE(net.run_until([&] { return net.node(2).m->status(net.now).dirty_buckets == 0; },
                              20 * kInterval));
}

TEST(Membership, TwoSimultaneousDeathsGiveTheSameMapOnEverySurvivor) {
    Net net(5);
    net.max_delay = kInterval / 3;
    for (HostId h : ids(6)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    const auto before = net.map_of(1);
    net.node(2).up = false;
    net.run_for(kInterval / 2);
    net.node(5).up = false;
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 3, 4, 6}); }, 20 * kInterval));
    const auto after = net.map_of(1);
    for (uint32_t b = 0; b < net.buckets; ++b)
        if (before[b] != 2 && before[b] != 5) {
            EXPECT_EQ(after[b], before[b]);
        }
    expect_fair(after, {1, 3, 4, 6});
}

TEST(Membership, JoinMovesOnlyBucketsTheJoinerTakesAndJoinerGetsTheSameMap) {
    Net net(13);
    net.max_delay = kInterval / 5;
    for (HostId h : {1, 2, 3}) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    const auto before = net.map_of(1);
    net.run_for(kInterval / 2);
    net.add(4);
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3, 4}); }, 30 * kInterval));
    const auto after = net.map_of(1);
    EXPECT_EQ(net.map_of(4), after);
    for (uint32_t b = 0; b < net.buckets; ++b)
        if (after[b] != 4) {
            EXPECT_EQ(after[b], before[b]) << "bucket " << b;
        }
    expect_fair(after, ids(4));
    EXPECT_GE(net.node(4).m->status(net.now).map_adoptions, 1u);
}

TEST(Membership, JoinedBucketsAreDirtyUntilPreviousOwnersReleaseThem) {
    Net net(17);
    for (HostId h : {1, 2}) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    // The old owners hold connections in buckets they are about to lose.
    net.node(1).held = 5;
    net.node(2).held = 5;
    net.add(3);
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 30 * kInterval));
    net.run_for(3 * kInterval);
    const auto& s3 = *net.node(3).snap;
    uint32_t owned = 0, dirty = 0;
    for (uint32_t b = 0; b < net.buckets; ++b)
        if (s3.owner(0, b) == 3) {
            ++owned;
            dirty += s3.is_dirty(0, b);
        }
    EXPECT_EQ(owned, net.buckets / 3);
    EXPECT_EQ(dirty, owned);
    net.node(1).held = 0;
    net.node(2).held = 0;
    ASSERT_TRUE(net.run_until([&] { return net.node(3).m->status(net.now).dirty_buckets == 0; },
                              5 * kInterval));
    net.run_for(kInterval);
    for (uint32_t b = 0; b < net.buckets; ++b) EXPECT_FALSE(net.node(3).snap->is_dirty(0, b));
}

TEST(Membership, DuplicateHostIdIsReportedAndDoesNotConverge) {
    Net net;
    for (HostId h : {1, 2, 3}) net.add(h);
    auto c = net.config(2, {multiple_rule(0, 65535)});
    c.boot_id = 999;  // a second process configured with id 2
    net.add(std::move(c));
    net.run_for(30 * kInterval);
    // Host 1 and 3 see two processes claiming id 2 and exclude it.
    for (HostId h : {1, 3}) {
        const auto st = net.node(h).m->status(net.now);
        ASSERT_FALSE(st.mismatches.empty()) << "host " << int(h);
        EXPECT_EQ(st.mismatches.front().kind, MismatchKind::duplicate_peer);
        EXPECT_EQ(st.mismatches.front().host, 2);
        EXPECT_EQ(st.members, (std::vector<HostId>{1, 3}));
    }
    // Each host 2 sees another process with its own id: reported, owns nothing.
    for (size_t i : {size_t{1}, size_t{3}}) {
        Membership& m = *net.nodes[i].m;
        const auto st = m.status(net.now);
        EXPECT_FALSE(st.converged);
        EXPECT_EQ(st.state, ClusterState::converging);
        bool dup = false;
        for (const auto& mm : st.mismatches) dup |= mm.kind == MismatchKind::duplicate_id;
        EXPECT_TRUE(dup);
        for (uint32_t b = 0; b < net.buckets; ++b) EXPECT_NE(m.owner(0, b), 2);
    }
    // The others still split every bucket between themselves.
    expect_fair(net.map_of(1), {1, 3});
    EXPECT_EQ(net.map_of(3), net.map_of(1));
}

TEST(Membership, DifferingRuleIsReportedOnBothSidesAndTheMajorityVersionIsInForce) {
    Net net;
    net.add(1);
    net.add(2);
    PortRule other = multiple_rule(0, 65535);
    other.affinity = Affinity::none;  // same key, other content
    net.add(3, {other});
    net.run_for(20 * kInterval);
    for (HostId h : {1, 2, 3}) {
        const auto st = net.node(h).m->status(net.now);
        EXPECT_EQ(st.members, (std::vector<HostId>{1, 2, 3})) << unsigned(h);
        EXPECT_FALSE(st.converged) << unsigned(h);
        ASSERT_EQ(st.rule_differences.size(), 1u) << unsigned(h);
        const auto& d = st.rule_differences[0];
        EXPECT_EQ(d.rule, "all:0-65535/both");
        ASSERT_EQ(d.versions.size(), 2u);
        for (const auto& v : d.versions) {
            if (v.hosts == std::vector<HostId>{1, 2}) {
                EXPECT_TRUE(v.active) << v.content;
            } else {
                EXPECT_EQ(v.hosts, std::vector<HostId>{3});
                EXPECT_FALSE(v.active) << v.content;
            }
        }
        bool fp = false;
        for (const auto& mm : st.mismatches) fp |= mm.kind == MismatchKind::rules_fingerprint;
        EXPECT_TRUE(fp) << unsigned(h);
    }
    const auto s3 = net.node(3).m->status(net.now);
    ASSERT_EQ(s3.mismatches.size(), 2u);
    EXPECT_EQ(s3.mismatches[0].host, 1);
    EXPECT_EQ(s3.mismatches[1].host, 2);
    EXPECT_NE(s3.mismatches[0].text.find("host 1"), std::string::npos);
    EXPECT_FALSE(s3.rules[0].active);
    EXPECT_EQ(s3.rules[0].owned, 0u);
    // One map on every host; the rule's buckets are split by 1 and 2 only.
    EXPECT_EQ(net.map_of(1), net.map_of(2));
    for (HostId o : net.map_of(3)) EXPECT_EQ(o, kNoHost);  // its version is not in force
    expect_fair(net.map_of(1), {1, 2});
    EXPECT_EQ(net.node(1).m->map_digest(), net.node(3).m->map_digest());
}

// The protocol is part of a rule's key: two rules on one VIP and port range,
// one for TCP and one for UDP, are two rules, not two versions of one. A
// host listing both stays a member while the hosts' rule sets differ, and
// both rules stay in force.
TEST(Membership, SamePortsOtherProtocolAreTwoRulesWhileRuleSetsDiffer) {
    Net net;
    PortRule dns_tcp = multiple_rule(53, 53), dns_udp = multiple_rule(53, 53);
    dns_tcp.protocol = Protocol::tcp;
    dns_udp.protocol = Protocol::udp;
    const PortRule web = multiple_rule(80, 80), extra = multiple_rule(8080, 8080);
    net.add(1, {dns_tcp, dns_udp, web});
    net.add(2, {dns_tcp, dns_udp, web});
    net.add(3, {dns_tcp, dns_udp, web, extra});
    net.run_for(30 * kInterval);
    for (HostId h : {1, 2, 3}) {
        const auto st = net.node(h).m->status(net.now);
        EXPECT_EQ(st.members, (std::vector<HostId>{1, 2, 3})) << unsigned(h);
        ASSERT_EQ(st.rule_differences.size(), 1u) << unsigned(h);
        EXPECT_EQ(st.rule_differences[0].rule, "all:8080/both") << unsigned(h);
        for (size_t k : {0u, 1u}) {
            EXPECT_TRUE(st.rules[k].active) << unsigned(h) << " " << st.rules[k].name;
            EXPECT_GT(st.rules[k].owned, 0u) << unsigned(h) << " " << st.rules[k].name;
        }
    }
}

TEST(Membership, SameRulesInAnotherOrderConvergeWithOneMap) {
    Net net;
    const PortRule web = multiple_rule(80, 80), tls = multiple_rule(443, 443, 30), smtp = single_rule(25, 1);
    net.add(1, {web, tls, smtp});
    // Handling priorities are per host (and must differ: duplicate_priority).
    net.add(2, {single_rule(25, 3), tls, web});
    PortRule smtp3 = single_rule(25, 2);
    net.add(3, {tls, smtp3, web});
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 30 * kInterval));
    for (HostId h : {1, 2, 3}) {
        const auto st = net.node(h).m->status(net.now);
        EXPECT_TRUE(st.mismatches.empty()) << unsigned(h);
        EXPECT_TRUE(st.rule_differences.empty()) << unsigned(h);
    }
    // Rule 443 is index 1 on host 1, index 1 on host 2, index 0 on host 3.
    EXPECT_EQ(net.map_of(1, 1), net.map_of(2, 1));
    EXPECT_EQ(net.map_of(1, 1), net.map_of(3, 0));
    EXPECT_EQ(net.node(1).m->single_owner(2), 1);
    EXPECT_EQ(net.node(3).m->single_owner(1), 1);
}

// A rolling change, one host at a time: the rule that does not change keeps
// every bucket owner throughout; the rule that changes never has two owners
// for one bucket; the cluster ends converged on the new rule.
TEST(Membership, RollingRuleChangeKeepsUnchangedOwnersAndNeverDoubleOwns) {
    Net net(7);
    const PortRule web = multiple_rule(80, 80);
    PortRule tls = multiple_rule(443, 443);
    PortRule tls2 = tls;
    tls2.affinity = Affinity::none;  // the change
    const PortRule extra = multiple_rule(8080, 8080);
    for (HostId h : {1, 2, 3}) net.add(h, {web, tls});
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 30 * kInterval));
    const std::vector<HostId> web_map = net.map_of(1, 0);
    expect_fair(web_map, {1, 2, 3});

    auto check = [&](const char* phase) {
        for (HostId h : {1, 2, 3}) {
            // `web` is rule 0 on every host, whatever else they list.
            ASSERT_EQ(net.map_of(h, 0), web_map) << phase << " host " << unsigned(h);
        }
        for (uint32_t b = 0; b < net.buckets; ++b) {
            unsigned owners = 0;
            for (HostId h : {1, 2, 3}) {
                const auto& snap = net.node(h).snap;
                owners += snap && snap->owner(1, b) == h;  // 443 is rule 1 everywhere
            }
            ASSERT_LE(owners, 1u) << phase << " bucket " << b << " at " << net.now << ": "
                                  << unsigned(net.node(1).snap->owner(1, b)) << unsigned(net.node(2).snap->owner(1, b))
                                  << unsigned(net.node(3).snap->owner(1, b)) << " conv "
                                  << net.node(1).m->converged() << net.node(2).m->converged()
                                  << net.node(3).m->converged();
        }
    };
    const std::vector<PortRule> next = {web, tls2, extra};
    net.reload(1, next);
    for (int i = 0; i < 100; ++i) {
        net.step(kInterval / 10);
        check("host 1 reloaded");
    }
    {
        // 2 of 3 keep the old 443: it stays in force, host 1 takes none of it.
        const auto st = net.node(2).m->status(net.now);
        EXPECT_EQ(st.members, (std::vector<HostId>{1, 2, 3}));
        EXPECT_EQ(st.rule_differences.size(), 2u);  // 443 changed, 8080 added
        EXPECT_FALSE(net.node(1).m->status(net.now).rules[1].active);
    }
    net.reload(2, next);
    for (int i = 0; i < 100; ++i) {
        net.step(kInterval / 10);
        check("host 2 reloaded");
    }
    EXPECT_FALSE(net.node(3).m->status(net.now).rules[1].active);  // old 443 lost the majority
    net.reload(3, next);
    ASSERT_TRUE(net.run_until([&] {
        check("host 3 reloaded");
        return net.converged_on({1, 2, 3});
    }, 40 * kInterval));
    for (HostId h : {1, 2, 3}) {
        const auto st = net.node(h).m->status(net.now);
        EXPECT_TRUE(st.rule_differences.empty());
        EXPECT_TRUE(st.mismatches.empty());
    }
    expect_fair(net.map_of(1, 1), {1, 2, 3});
    expect_fair(net.map_of(1, 2), {1, 2, 3});
    EXPECT_EQ(net.map_of(1, 0), web_map);
}

TEST(Membership, ReloadKeepsOperatorRuleStatesByRuleKey) {
    Net net;
    PortRule tls = multiple_rule(443, 443);
    net.add(1, {multiple_rule(80, 80), tls});
    net.run_for(5 * kInterval);
    net.node(1).m->set_rule_state(1, RuleState::disabled, net.now);
    tls.affinity = Affinity::none;  // same key, new content: still the rule the operator disabled
    net.reload(1, {tls, multiple_rule(8080, 8080)});
    EXPECT_EQ(net.node(1).m->rule_state(0), RuleState::disabled);
    EXPECT_EQ(net.node(1).m->rule_state(1), RuleState::enabled);
}

TEST(Membership, DrainstopMakesMovedBucketsDirtyAndEndsWhenConnectionsAreGone) {
    Net net(19);
    for (HostId h : ids(3)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    const auto before = net.map_of(1);
    net.node(2).held = 7;  // connections it keeps serving
    net.node(2).m->set_state(HostState::draining, net.now);
    EXPECT_EQ(net.node(2).m->status(net.now).state, ClusterState::draining);
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 3}); }, 20 * kInterval));
    net.run_for(2 * kInterval);
    const auto after = net.map_of(1);
    expect_fair(after, {1, 3});
    for (uint32_t b = 0; b < net.buckets; ++b) {
        if (before[b] != 2) {
            EXPECT_EQ(after[b], before[b]);
            EXPECT_FALSE(net.node(after[b]).snap->is_dirty(0, b));
        } else {
            EXPECT_TRUE(net.node(after[b]).snap->is_dirty(0, b)) << "bucket " << b;
        }
    }
    // The draining host still serves its connections (started snapshot, owns nothing).
    EXPECT_TRUE(net.node(2).snap->started);
    EXPECT_EQ(net.node(2).m->state(), HostState::draining);
    net.node(2).held = 0;
    ASSERT_TRUE(net.run_until([&] { return net.node(2).m->state() == HostState::stopped; },
                              2 * kInterval));
    ASSERT_TRUE(net.run_until(
        [&] {
            return net.node(1).m->status(net.now).dirty_buckets == 0 &&
                   net.node(3).m->status(net.now).dirty_buckets == 0;
        },
        5 * kInterval));
    EXPECT_EQ(net.map_of(1), after);  // stopping does not move buckets again
    EXPECT_EQ(net.node(2).m->status(net.now).state, ClusterState::stopped);
    EXPECT_FALSE(net.node(2).snap->started);
}

TEST(Membership, StoppedAndSuspendedHostsLeaveAtOnce) {
    Net net;
    for (HostId h : ids(3)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    net.node(3).held = 4;
    net.node(3).m->set_state(HostState::suspended, net.now);
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2}); }, 10 * kInterval));
    expect_fair(net.map_of(1), {1, 2});
    // Not dirty: a suspended host drops its connections.
    net.run_for(kInterval);
    EXPECT_EQ(net.node(1).m->status(net.now).dirty_buckets, 0u);
    EXPECT_EQ(net.node(3).m->status(net.now).state, ClusterState::suspended);
    net.node(3).m->set_state(HostState::started, net.now);
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 20 * kInterval));
    expect_fair(net.map_of(3), ids(3));
}

TEST(Membership, RuleDrainMovesOnlyThatRulesBucketsWithDirtyHandover) {
    Net net(23);
    const std::vector<PortRule> rules{multiple_rule(80, 80), multiple_rule(443, 443)};
    for (HostId h : ids(3)) net.add(h, rules);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    // Equal weight vectors: one map class serves both rules.
    EXPECT_EQ(net.node(1).m->class_maps().size(), 2u);  // + echo
    EXPECT_EQ(net.map_of(1, 0), net.map_of(1, 1));
    const auto r1 = net.map_of(1, 1);
    net.node(2).held = 3;
    const uint64_t e = net.node(1).m->epoch();
    net.node(2).m->set_rule_state(0, RuleState::draining, net.now);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged() && net.node(1).m->epoch() > e; },
                              20 * kInterval));
    net.run_for(2 * kInterval);
    EXPECT_EQ(net.node(1).m->class_maps().size(), 3u);  // classes split
    EXPECT_EQ(net.map_of(1, 1), r1);                    // rule 1 untouched
    const auto r0 = net.map_of(1, 0);
    expect_fair(r0, {1, 3});
    for (uint32_t b = 0; b < net.buckets; ++b) {
        if (r1[b] != 2) {
            EXPECT_EQ(r0[b], r1[b]);
        }
        EXPECT_EQ(net.node(r0[b]).snap->is_dirty(0, b), r1[b] == 2);
    }
    EXPECT_EQ(net.node(2).m->status(net.now).state, ClusterState::converged);
}

TEST(Membership, RuleDisableDropsTheRuleLocallyAtOnce) {
    Net net(29);
    const std::vector<PortRule> rules{multiple_rule(80, 80), multiple_rule(443, 443)};
    for (HostId h : ids(2)) net.add(h, rules);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    net.node(2).held = 3;
    const uint64_t e = net.node(1).m->epoch();
    net.node(2).m->set_rule_state(1, RuleState::disabled, net.now);
    net.run_for(kInterval / 10);
    EXPECT_EQ(net.node(2).snap->rules.rules[1].mode, FilterMode::disabled);
    EXPECT_EQ(net.node(2).snap->rules.rules[0].mode, FilterMode::multiple);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged() && net.node(1).m->epoch() > e; },
                              20 * kInterval));
    net.run_for(kInterval);
    const auto r1 = net.map_of(1, 1);
    EXPECT_EQ(counts(r1)[1], net.buckets);
    // Host 2 dropped its connections of the rule: nothing is dirty on host 1.
    for (uint32_t b = 0; b < net.buckets; ++b) EXPECT_FALSE(net.node(1).snap->is_dirty(1, b));
    // The hash seed stays the cluster's.
    EXPECT_EQ(net.node(2).snap->rules.rules[1].hash_seed, net.node(1).snap->rules.rules[1].hash_seed);
}

TEST(Membership, SingleHostRuleFailsOverToBestLivePriority) {
    Net net(31);
    for (HostId h : ids(3)) {
        const uint8_t prio = h == 1 ? 3 : h == 2 ? 1 : 2;  // host 2 best, then 3
        net.add(h, {multiple_rule(80, 80), single_rule(25, prio)});
    }
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    for (HostId h : ids(3)) {
        EXPECT_EQ(net.node(h).m->single_owner(1), 2);
        EXPECT_EQ(net.node(h).snap->rules.rules[1].single_owner, 2);
    }
    net.node(2).up = false;
    const uint64_t died = net.now;
    ASSERT_TRUE(net.run_until(
        [&] { return net.node(1).m->single_owner(1) == 3 && net.node(3).m->single_owner(1) == 3; },
        (kTolerance + 2) * kInterval));
    net.run_for(kInterval);
    EXPECT_EQ(net.node(3).snap->rules.rules[1].single_owner, 3);
    // New connections only while the old owner may still be alive (hold).
    EXPECT_TRUE(net.node(3).snap->rules.rules[1].single_dirty);
    net.run_for(died + kHoldEnd + kInterval - net.now);
    EXPECT_FALSE(net.node(3).snap->rules.rules[1].single_dirty);  // the old owner is dead
    const auto st = net.node(3).m->status(net.now);
    EXPECT_EQ(st.rules[1].owned, 1u);
}

TEST(Membership, DuplicateHandlingPriorityIsReportedAndTheLowerIdHandles) {
    Net net(33);
    for (HostId h : ids(3)) {
        const uint8_t prio = h == 1 ? 3 : 2;  // hosts 2 and 3 both claim priority 2
        net.add(h, {multiple_rule(80, 80), single_rule(25, prio)});
    }
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    for (HostId h : ids(3)) {
        EXPECT_EQ(net.node(h).m->single_owner(1), 2);
        const auto st = net.node(h).m->status(net.now);
        size_t dup = 0;
        for (const auto& m : st.mismatches) {
            if (m.kind != MismatchKind::duplicate_priority) continue;
            ++dup;
            EXPECT_EQ(m.host, 3);
            EXPECT_NE(m.text.find("hosts 2 and 3 both have handling priority 2"), std::string::npos) << m.text;
            EXPECT_NE(m.text.find(":25/"), std::string::npos) << m.text;  // names the rule
        }
        EXPECT_EQ(dup, 1u) << "host " << unsigned(h);
    }
    // Distinct priorities: no such mismatch.
    Net ok(34);
    for (HostId h : ids(2)) ok.add(h, {single_rule(25, static_cast<uint8_t>(h))});
    ASSERT_TRUE(ok.run_until([&] { return ok.all_converged(); }, 30 * kInterval));
    for (const auto& m : ok.node(1).m->status(ok.now).mismatches)
        EXPECT_NE(m.kind, MismatchKind::duplicate_priority) << m.text;
}

TEST(Membership, MixedWeightsGiveProportionalShares) {
    Net net(37);
    net.buckets = 1000;
    const uint8_t w[] = {0, 10, 20, 30, 40};
    for (HostId h : {1, 2, 3, 4}) net.add(h, {multiple_rule(0, 65535, w[h])});
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    const auto c = counts(net.map_of(1));
    EXPECT_EQ(c.at(1), 100u);
    EXPECT_EQ(c.at(2), 200u);
    EXPECT_EQ(c.at(3), 300u);
    EXPECT_EQ(c.at(4), 400u);
    EXPECT_EQ(net.map_of(4), net.map_of(1));
}

TEST(Membership, SameInputsGiveSameMaps) {
    auto run = [](uint64_t seed) {
        Net net(seed);
        net.max_delay = kInterval / 3;
        net.loss = 0.1;
        for (HostId h : ids(5)) net.add(h);
        EXPECT_TRUE(net.run_until([&] { return net.all_converged(); }, 60 * kInterval));
        return std::make_pair(net.map_of(1), net.node(1).m->map_digest());
    };
    const auto a = run(1), b = run(1), c = run(99);
    EXPECT_EQ(a, b);
    // A different network history, same membership: the same cold-start map.
    EXPECT_EQ(a.first, c.first);
    EXPECT_EQ(a.second, c.second);
}

TEST(Membership, PartitionHealConvergesToOneMap) {
    Net net(41);
    for (HostId h : ids(4)) net.add(h);
    auto side = [](HostId h) { return h <= 2; };
    net.link = [&](HostId a, HostId b) { return side(a) == side(b); };
    net.run_for(20 * kInterval);
    expect_fair(net.map_of(1), {1, 2});
    expect_fair(net.map_of(3), {3, 4});
    EXPECT_TRUE(net.node(3).m->converged());
    net.link = [](HostId, HostId) { return true; };
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3, 4}); }, 30 * kInterval));
    expect_fair(net.map_of(4), ids(4));
    EXPECT_EQ(net.map_of(4), net.map_of(1));
}

TEST(Membership, RandomChurnAlwaysSettlesToOneFairMap) {
    for (uint64_t seed = 1; seed <= 40; ++seed) {
        Net net(seed);
        net.max_delay = kInterval / 2;
        net.loss = 0.1;
        net.duplicate = 0.1;
        for (HostId h : ids(8)) net.add(h);
        std::mt19937_64 rng(seed);
        for (int round = 0; round < 12; ++round) {
            const HostId h = static_cast<HostId>(1 + rng() % 8);
            switch (rng() % 4) {
            case 0: net.node(h).up = false; break;           // crash
            case 1: net.restart(h); break;                   // (re)start
            case 2: net.node(h).m->set_state(HostState::stopped, net.now); break;
            case 3: net.node(h).m->set_state(HostState::started, net.now); break;
            }
            net.run_for((rng() % 8) * kInterval / 2);
        }
        net.loss = 0;
        std::vector<HostId> live;
        for (auto& n : net.nodes)
            if (n.up && n.m->state() == HostState::started) live.push_back(n.id);
        if (live.empty()) continue;
        const bool ok = net.run_until([&] { return net.converged_on(live); }, 60 * kInterval);
        if (!ok) {
            for (auto& n : net.nodes) {
                const auto st = n.m->status(net.now);
                std::string peers;
                for (const auto& p : st.peers)
                    peers += " [" + std::to_string(p.id) + " " + std::string(name_of(p.state)) +
                             (p.alive ? "" : " dead") + " e" + std::to_string(p.epoch) + " v" +
                             std::to_string(p.view) + " d" + std::to_string(p.map_digest % 1000) + "]";
                ADD_FAILURE() << "host " << int(n.id) << (n.up ? "" : " DOWN") << " "
                              << name_of(st.state) << " e" << st.epoch << " base" << st.base_epoch
                              << " v" << st.view << " d" << st.map_digest % 1000 << " maps"
                              << st.has_maps << peers;
            }
        }
        ASSERT_TRUE(ok) << "seed " << seed;
        const auto map = net.map_of(live.front());
        for (HostId h : live) EXPECT_EQ(net.map_of(h), map) << "seed " << seed;
        expect_fair(map, live);
        EXPECT_EQ(net.node(live.front()).m->status(net.now).members, live);
    }
}

TEST(Membership, HostAloneBuildsItsMapAfterListening) {
    Net net;
    net.add(5);
    net.run_for(kInterval);
    EXPECT_FALSE(net.node(5).m->has_maps());  // still listening
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 5 * kInterval));
    EXPECT_EQ(counts(net.map_of(5))[5], net.buckets);
    EXPECT_EQ(net.node(5).m->status(net.now).state, ClusterState::converged_default);
}

TEST(Membership, HeldForeignCountedAgainstOldMapsIsIgnored) {
    Net net;
    net.add(1);
    net.run_for(5 * kInterval);
    Membership& m = *net.node(1).m;
    const uint64_t old_gen = net.node(1).snap->generation;
    m.set_state(HostState::draining, net.now);
    // A count made against the previous snapshot must not end the drain.
    m.set_held_foreign(0, old_gen, net.now);
    m.tick(net.now);
    EXPECT_EQ(m.state(), HostState::draining);
    auto in = m.snapshot_input();
    m.set_held_foreign(0, in.generation, net.now);
    EXPECT_EQ(m.state(), HostState::stopped);
}


// What a fresh join gives: the agreed map `prev` rebalanced (minimal movement)
// for `members` with equal weights, for rule `rule`.
std::vector<HostId> rebalanced(const std::vector<HostId>& prev, const std::vector<HostId>& members,
                               const PortRule& rule, uint32_t buckets) {
    std::vector<core::MemberWeight> mw;
    for (HostId h : members) mw.push_back(core::MemberWeight{h, 50});
    return core::rebalance_bucket_map(prev, mw, buckets, core::rule_seed(core::rule_identity(rule)));
}

// Host `lone` cut off from every other host (messages among the others flow).
std::function<bool(HostId, HostId)> isolate(HostId lone) {
    return [lone](HostId a, HostId b) { return (a == lone) == (b == lone); };
}

TEST(Membership, IsolatedLowestIdHostRejoinsWithTheMajorityMapAndTakesOnlyItsShare) {
    Net net(43);
    net.buckets = 600;
    for (HostId h : ids(3)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    net.link = isolate(1);
    ASSERT_TRUE(net.run_until(
        [&] {
            const auto& n2 = *net.node(2).m;
            return n2.converged() && n2.view() == 0b110 && net.node(3).m->converged() &&
                   net.node(3).m->view() == 0b110 && net.node(1).m->converged() &&
                   net.node(1).m->view() == 0b001;
        },
        20 * kInterval));
    net.run_for(kHoldEnd);
    // Alone, host 1 owns everything, and once the hold is over nothing is
    // dirty (its peers look dead).
    EXPECT_EQ(counts(net.map_of(1))[1], net.buckets);
    EXPECT_EQ(net.node(1).m->status(net.now).dirty_buckets, 0u);
    const auto m23 = net.map_of(2);
    ASSERT_EQ(net.map_of(3), m23);
    expect_fair(m23, {2, 3});

    net.link = [](HostId, HostId) { return true; };
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 40 * kInterval));
    const auto after = net.map_of(1);
    EXPECT_EQ(net.map_of(2), after);
    EXPECT_EQ(net.map_of(3), after);
    // Exactly what a fresh join of host 1 to the {2,3} cluster gives.
    EXPECT_EQ(after, rebalanced(m23, ids(3), multiple_rule(0, 65535), net.buckets));
    expect_fair(after, ids(3));
    uint32_t moved = 0;
    for (uint32_t b = 0; b < net.buckets; ++b) {
        if (after[b] != m23[b]) {
            ++moved;
            EXPECT_EQ(after[b], 1) << "bucket " << b << " moved from " << int(m23[b]) << " to "
                                   << int(after[b]);
        }
    }
    EXPECT_EQ(moved, net.buckets / 3);
    // Host 1 adopted the majority's maps; hosts 2 and 3 adopted nothing.
    EXPECT_GE(net.node(1).m->status(net.now).map_adoptions, 1u);
}

TEST(Membership, HealingHostLeavesUnagreedBucketsToItsPeersUntilConvergence) {
    Net net(47);
    net.buckets = 600;
    for (HostId h : ids(3)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    net.link = isolate(1);
    ASSERT_TRUE(net.run_until(
        [&] {
            return net.node(2).m->converged() && net.node(2).m->view() == 0b110 &&
                   net.node(1).m->converged() && net.node(1).m->view() == 0b001;
        },
        20 * kInterval));
    net.run_for(3 * kInterval);
    const auto m23 = net.map_of(2);
    // Hosts 2 and 3 hold connections in buckets they will hand to host 1.
    net.node(2).held = 4;
    net.node(3).held = 4;
    net.link = [](HostId, HostId) { return true; };
    // From the moment host 1 hears a peer until it is converged, every bucket
    // its snapshot gives it that it did not own in the agreed {2,3} map (in
    // fact every bucket it owns) is dirty: non-SYN packets of unknown
    // connections are left to the hosts that may hold them.
    const auto& n1 = *net.node(1).m;
    uint32_t checked = 0;
    while (!net.converged_on({1, 2, 3})) {
        ASSERT_LT(checked, 400u) << "no convergence";
        net.step(kInterval / 10);
        bool heard = false;
        for (const auto& p : n1.status(net.now).peers) heard |= p.alive;
        if (!heard || n1.converged()) continue;
        const auto& snap = *net.node(1).snap;
        uint32_t owned = 0;
        for (uint32_t b = 0; b < net.buckets; ++b) {
            if (snap.owner(0, b) != 1) continue;
            ++owned;
            EXPECT_TRUE(snap.is_dirty(0, b)) << "bucket " << b << " (owner " << int(m23[b])
                                             << " in the agreed map) at step " << checked;
        }
        EXPECT_GT(owned, 0u);
        ++checked;
    }
    EXPECT_GT(checked, 0u);
    // Converged: the buckets host 1 took stay dirty while 2 and 3 hold
    // connections (normal hand-over), then clear.
    net.run_for(3 * kInterval);
    const auto after = net.map_of(1);
    uint32_t owned = 0, dirty = 0;
    for (uint32_t b = 0; b < net.buckets; ++b)
        if (after[b] == 1) {
            ++owned;
            dirty += net.node(1).snap->is_dirty(0, b);
        }
    EXPECT_EQ(owned, net.buckets / 3);
    EXPECT_EQ(dirty, owned);
    net.node(2).held = 0;
    net.node(3).held = 0;
    ASSERT_TRUE(net.run_until([&] { return net.node(1).m->status(net.now).dirty_buckets == 0; },
                              5 * kInterval));
    net.run_for(kInterval);
    for (uint32_t b = 0; b < net.buckets; ++b) EXPECT_FALSE(net.node(1).snap->is_dirty(0, b));
}

// Two halves of equal size: every host picks the half with the lowest id.
TEST(Membership, SymmetricPartitionHealAdoptsTheLowestIdGroupsMapOnEveryHost) {
    for (uint64_t seed : {51, 52, 53}) {
        Net net(seed);
        net.buckets = 600;
        net.max_delay = kInterval / 5;
        for (HostId h : ids(4)) net.add(h);
        ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
        net.link = [](HostId a, HostId b) { return (a <= 2) == (b <= 2); };
        ASSERT_TRUE(net.run_until(
            [&] {
                return net.node(1).m->converged() && net.node(1).m->view() == 0b0011 &&
                       net.node(2).m->view() == 0b0011 && net.node(3).m->converged() &&
                       net.node(3).m->view() == 0b1100 && net.node(4).m->view() == 0b1100;
            },
            20 * kInterval));
        net.run_for(3 * kInterval);
        const auto m12 = net.map_of(1);
        net.link = [](HostId, HostId) { return true; };
        ASSERT_TRUE(net.run_until([&] { return net.converged_on(ids(4)); }, 40 * kInterval));
        const auto after = net.map_of(1);
        for (HostId h : ids(4)) EXPECT_EQ(net.map_of(h), after) << "host " << int(h);
        EXPECT_EQ(after, rebalanced(m12, ids(4), multiple_rule(0, 65535), net.buckets))
            << "seed " << seed;
        for (uint32_t b = 0; b < net.buckets; ++b)
            if (after[b] != m12[b]) {
                EXPECT_TRUE(after[b] == 3 || after[b] == 4) << "bucket " << b;
            }
    }
}

// The larger group wins even when the smaller one holds the lowest id.
TEST(Membership, MinorityWithTheLowestIdAdoptsTheMajorityMap) {
    Net net(57);
    net.buckets = 600;
    for (HostId h : ids(5)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    net.link = [](HostId a, HostId b) { return (a <= 2) == (b <= 2); };
    ASSERT_TRUE(net.run_until(
        [&] {
            return net.node(1).m->converged() && net.node(1).m->view() == 0b00011 &&
                   net.node(3).m->converged() && net.node(3).m->view() == 0b11100 &&
                   net.node(5).m->converged() && net.node(5).m->view() == 0b11100;
        },
        20 * kInterval));
    net.run_for(3 * kInterval);
    const auto m345 = net.map_of(3);
    net.link = [](HostId, HostId) { return true; };
    ASSERT_TRUE(net.run_until([&] { return net.converged_on(ids(5)); }, 40 * kInterval));
    const auto after = net.map_of(5);
    for (HostId h : ids(5)) EXPECT_EQ(net.map_of(h), after) << "host " << int(h);
    EXPECT_EQ(after, rebalanced(m345, ids(5), multiple_rule(0, 65535), net.buckets));
    for (uint32_t b = 0; b < net.buckets; ++b)
        if (after[b] != m345[b]) {
            EXPECT_TRUE(after[b] == 1 || after[b] == 2) << "bucket " << b;
        }
}

// ---- wire link down / up ------------------------------------------------------

// Buckets host `id` owns in its published snapshot, and how many are dirty.
std::pair<uint32_t, uint32_t> owned_dirty(Net& net, HostId id, size_t rule = 0) {
    const core::Snapshot& snap = *net.node(id).snap;
    uint32_t owned = 0, dirty = 0;
    for (uint32_t b = 0; b < net.buckets; ++b) {
        if (snap.owner(rule, b) != id) continue;
        ++owned;
        dirty += snap.is_dirty(rule, b);
    }
    return {owned, dirty};
}

// Converges hosts 1..3, then cuts host 1's own wire link (it hears nothing,
// nobody hears it) and tells it so; runs until hosts 2 and 3 own everything.
void cut_host1_link(Net& net) {
    for (HostId h : ids(3)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    net.link = isolate(1);
    net.node(1).m->set_link(false, net.now);
    ASSERT_TRUE(net.run_until(
        [&] {
            return net.node(2).m->converged() && net.node(2).m->view() == 0b110 &&
                   net.node(3).m->converged() && net.node(3).m->view() == 0b110;
        },
        20 * kInterval));
}

TEST(Membership, OwnLinkDownDeclaresNoPeerDeadAndChangesNoMap) {
    Net net(61);
    net.buckets = 600;
    for (HostId h : ids(3)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    const auto map = net.map_of(1);
    const uint64_t epoch = net.node(1).m->epoch(), changes = net.node(1).m->status(net.now).epoch_changes;
    net.link = isolate(1);
    net.node(1).m->set_link(false, net.now);
    net.run_for(10 * kTolerance * kInterval);
    Membership& m1 = *net.node(1).m;
    EXPECT_EQ(net.map_of(1), map);
    EXPECT_EQ(m1.epoch(), epoch);
    const auto st = m1.status(net.now);
    EXPECT_EQ(st.epoch_changes, changes);
    EXPECT_EQ(st.members, ids(3));
    for (const auto& p : st.peers) EXPECT_TRUE(p.alive) << "host " << int(p.id);
    EXPECT_FALSE(st.link_up);
    EXPECT_FALSE(st.converged);
    EXPECT_EQ(st.state, ClusterState::converging);
    ASSERT_FALSE(st.notices.empty());
    EXPECT_NE(st.notices.front().find("wire link down"), std::string::npos);
    // Its map keeps its share, but what it publishes to its workers owns
    // nothing and it is not the default host: at link-up, packets (SYNs too)
    // of connections the peers opened meanwhile may arrive before any
    // heartbeat, and the peers accept them.
    const auto [owned, dirty] = owned_dirty(net, 1);
    EXPECT_EQ(owned, 0u);
    EXPECT_EQ(dirty, 0u);
    EXPECT_NE(net.node(1).snap->default_host, HostId{1});
    uint32_t in_map = 0;
    for (HostId h : net.map_of(1)) in_map += h == 1;
    EXPECT_EQ(in_map, net.buckets / 3);
    // The others did fail over.
    EXPECT_TRUE(net.node(2).m->converged());
    EXPECT_EQ(net.node(2).m->view(), 0b110u);
}

TEST(Membership, LinkUpKeepsOwnedBucketsDirtyUntilReconvergedWithTheHeardPeers) {
    Net net(67);
    net.buckets = 600;
    cut_host1_link(net);
    net.run_for(3 * kInterval);
    const auto m23 = net.map_of(2);
    net.node(2).held = 4;  // connections in buckets they will hand to host 1
    net.node(3).held = 4;
    net.link = [](HostId, HostId) { return true; };
    net.node(1).m->set_link(true, net.now);
    EXPECT_TRUE(net.node(1).m->status(net.now).rejoining);
    // From link-up (before any heartbeat is heard) until converged with the
    // peers it hears, host 1 takes nothing new: its snapshot owns no bucket.
    uint32_t checked = 0;
    while (!net.converged_on({1, 2, 3})) {
        ASSERT_LT(checked, 400u) << "no convergence";
        net.step(kInterval / 10);
        const auto st = net.node(1).m->status(net.now);
        if (st.converged) continue;
        const auto [owned, dirty] = owned_dirty(net, 1);
        EXPECT_EQ(owned, 0u) << "step " << checked;
        EXPECT_NE(net.node(1).snap->default_host, HostId{1}) << "step " << checked;
        EXPECT_EQ(st.state, ClusterState::converging);
        ++checked;
    }
    EXPECT_GT(checked, 0u);
    const auto after = net.map_of(1);
    EXPECT_EQ(net.map_of(2), after);
    EXPECT_EQ(after, rebalanced(m23, ids(3), multiple_rule(0, 65535), net.buckets));
    EXPECT_FALSE(net.node(1).m->status(net.now).rejoining);
    // Converged: the normal hand-over keeps them dirty while 2 and 3 hold
    // connections, then they clear.
    net.run_for(3 * kInterval);
    {
        const auto [owned, dirty] = owned_dirty(net, 1);
        EXPECT_EQ(owned, net.buckets / 3);
        EXPECT_EQ(dirty, owned);
    }
    net.node(2).held = 0;
    net.node(3).held = 0;
    ASSERT_TRUE(net.run_until([&] { return net.node(1).m->status(net.now).dirty_buckets == 0; },
                              5 * kInterval));
    net.run_for(kInterval);
    EXPECT_EQ(owned_dirty(net, 1).second, 0u);
    EXPECT_EQ(net.node(1).m->status(net.now).state, ClusterState::converged_default);
}

TEST(Membership, LinkUpWithEveryPeerDeadContinuesAloneAfterTheGraceNotDirty) {
    Net net(71);
    net.buckets = 600;
    for (HostId h : ids(3)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    const auto map = net.map_of(1);
    net.node(1).m->set_link(false, net.now);
    net.node(2).up = false;
    net.node(3).up = false;
    net.run_for(3 * kTolerance * kInterval);
    EXPECT_EQ(net.map_of(1), map);
    const uint64_t t_up = net.now;
    net.node(1).m->set_link(true, net.now);
    // Grace: the peers get tolerance x interval to be heard again.
    net.run_for((kTolerance - 1) * kInterval);
    {
        const auto st = net.node(1).m->status(net.now);
        for (const auto& p : st.peers) EXPECT_TRUE(p.alive) << "host " << int(p.id);
        EXPECT_EQ(net.map_of(1), map);
        const auto [owned, dirty] = owned_dirty(net, 1);
        EXPECT_EQ(dirty, owned);
        EXPECT_FALSE(st.converged);
    }
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1}); }, (kTolerance + 2) * kInterval));
    EXPECT_LE(net.now - t_up, (kTolerance + 2) * kInterval);
    net.run_for(kInterval);
    EXPECT_EQ(counts(net.map_of(1))[1], net.buckets);
    // The peers' buckets stay dirty for the hold after their death.
    EXPECT_GT(net.node(1).m->status(net.now).dirty_buckets, 0u);
    net.run_for(t_up + kHoldEnd + kInterval - net.now);
    const auto st = net.node(1).m->status(net.now);
    EXPECT_FALSE(st.rejoining);
    EXPECT_EQ(st.dirty_buckets, 0u);
    EXPECT_EQ(owned_dirty(net, 1), std::make_pair(net.buckets, 0u));
    EXPECT_EQ(st.state, ClusterState::converged_default);
}

// Host 2 drainstops (its buckets move to 1 and 3, dirty from 2); then host 3
// dies: the buckets 3 took from 2 move to 1 and must stay dirty from 2, which
// still serves their connections.
TEST(Membership, DrainedBucketsStayDirtyWhenTheirNewOwnerDies) {
    Net net(73);
    net.buckets = 600;
    for (HostId h : ids(3)) net.add(h);
    ASSERT_TRUE(net.run_until([&] { return net.all_converged(); }, 30 * kInterval));
    const auto before = net.map_of(1);
    net.node(2).held = 7;
    net.node(2).m->set_state(HostState::draining, net.now);
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 3}); }, 20 * kInterval));
    net.run_for(2 * kInterval);
    const auto drained = net.map_of(1);
    uint32_t via3 = 0;
    for (uint32_t b = 0; b < net.buckets; ++b) via3 += before[b] == 2 && drained[b] == 3;
    ASSERT_GT(via3, 0u);
    net.node(3).up = false;
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1}); }, (kTolerance + 4) * kInterval));
    net.run_for(kHoldEnd);  // host 3's own buckets are clean again after the hold
    EXPECT_EQ(counts(net.map_of(1))[1], net.buckets);
    const core::Snapshot& snap = *net.node(1).snap;
    for (uint32_t b = 0; b < net.buckets; ++b)
        EXPECT_EQ(snap.is_dirty(0, b), before[b] == 2)
            << "bucket " << b << " (" << int(before[b]) << " -> " << int(drained[b]) << " -> 1)";
    // Host 2's connections end: everything clears, host 2 stops.
    net.node(2).held = 0;
    ASSERT_TRUE(net.run_until([&] { return net.node(1).m->status(net.now).dirty_buckets == 0; },
                              5 * kInterval));
    EXPECT_EQ(net.node(2).m->state(), HostState::stopped);
}

}  // namespace
TEST(Membership, ReloadToAMinorityVersionKeepsAHostAliveAndReporting) {
    Net net(3);
    net.buckets = 4096;
    PortRule a = multiple_rule(8080, 8080), b = multiple_rule(9000, 9000);
    a.affinity = Affinity::none;
    net.add(1, {a, b});
    net.add(2, {a, b});
    net.add(3, {b, a});
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 30 * kInterval));
    PortRule b2 = b;
    b2.affinity = Affinity::none;
    net.reload(1, {a, b2});
    for (int i = 0; i < 60; ++i) {
        net.step(kInterval / 10);
        for (HostId h : {1, 2, 3}) {
            const auto st = net.node(h).m->status(net.now);
            EXPECT_LE(st.rule_differences.size(), 1u);
        }
    }
    EXPECT_EQ(net.node(2).m->status(net.now).members, (std::vector<HostId>{1, 2, 3}));
}

// A host holding a connection made under the old version of a rule (node 3
// here, the last to reload) keeps it through the change: wherever the new
// version's buckets move while node 3 still reports foreign connections,
// their owners accept only SYNs and their own connections (dirty), even when
// the bucket's previous owner under the new version holds nothing.
TEST(Membership, ConnectionsUnderAnOldRuleVersionKeepNewOwnersDirtyUntilReleased) {
    Net net(11);
    const PortRule web = multiple_rule(80, 80);
    PortRule tls = multiple_rule(443, 443);
    PortRule tls2 = tls;
    tls2.affinity = Affinity::none;
    for (HostId h : {1, 2, 3}) net.add(h, {web, tls});
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 30 * kInterval));
    net.node(3).held = 1;  // e.g. a long-lived connection under the old 443
    for (HostId h : {1, 2, 3}) {
        net.reload(h, {web, tls2});
        net.run_for(15 * kInterval);
    }
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 30 * kInterval));
    net.run_for(10 * kInterval);
    for (HostId h : {1, 2}) {
        const auto& snap = *net.node(h).snap;
        for (uint32_t b = 0; b < net.buckets; ++b)
            if (snap.owner(1, b) == h) {
                ASSERT_TRUE(snap.is_dirty(1, b)) << "host " << unsigned(h) << " bucket " << b;
            }
    }
    net.node(3).held = 0;  // released: the marks clear
    net.run_for(10 * kInterval);
    for (HostId h : {1, 2}) {
        const auto& snap = *net.node(h).snap;
        for (uint32_t b = 0; b < net.buckets; ++b) ASSERT_FALSE(snap.is_dirty(1, b)) << unsigned(h) << " " << b;
    }
}

// A rule removed host by host from the default host on (docs/reload.md): the
// default host, without the rule but while the rule is still in force on the
// others, must not take its traffic as traffic matching no rule (it would
// answer every SYN beside the rule's owner). Each SYN is accepted by exactly
// one host at every step: the rule's owners while it is in force, then the
// default host once absence has the majority.
TEST(Membership, HostWithoutARuleStillInForceTakesNoneOfItsTraffic) {
    Net net(5);
    net.vips = {*IpAddr::parse("192.0.2.100")};
    PortRule web = multiple_rule(80, 80), extra = multiple_rule(8083, 8083);
    web.vip = extra.vip = net.vips[0];
    web.protocol = extra.protocol = Protocol::tcp;
    extra.affinity = Affinity::none;
    for (HostId h : {1, 2, 3}) net.add(h, {web, extra});
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 30 * kInterval));
    // Accepting hosts of SYNs to 8083 from many source ports; `max` of them.
    auto acceptors = [&](unsigned& min, unsigned& max, std::map<HostId, unsigned>& by) {
        min = 99;
        max = 0;
        for (uint16_t sport = 1000; sport < 1400; ++sport) {
            core::ParsedFrame f;
            f.kind = core::FrameKind::ipv4;
            f.key.src = *IpAddr::parse("10.0.0.7");
            f.key.dst = net.vips[0];
            f.key.sport = sport;
            f.key.dport = 8083;
            f.key.proto = 6;
            f.key.flags = core::kHasPorts | core::kTcpSyn;
            unsigned n = 0;
            for (HostId h : {1, 2, 3}) {
                const Verdict v = core::decide(f, *net.node(h).snap).verdict;
                if (v == Verdict::accepted || v == Verdict::default_host_accepted) {
                    ++n;
                    ++by[h];
                }
            }
            min = std::min(min, n);
            max = std::max(max, n);
        }
    };
    for (HostId h : {1, 2, 3}) {
        net.reload(h, {web});
        for (int i = 0; i < 30; ++i) {
            net.step(kInterval / 10);
            unsigned lo, hi;
            std::map<HostId, unsigned> by;
            acceptors(lo, hi, by);
            ASSERT_LE(hi, 1u) << "a SYN to 8083 accepted by two hosts after host " << unsigned(h)
                              << " removed the rule, step " << i;
        }
        ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 30 * kInterval));
        unsigned lo, hi;
        std::map<HostId, unsigned> by;
        acceptors(lo, hi, by);
        EXPECT_EQ(lo, 1u) << "after host " << unsigned(h) << " removed the rule, settled";
        EXPECT_EQ(hi, 1u);
        if (h == 1) {
            // Still in force (hosts 2 and 3): they share it, host 1 takes none.
            EXPECT_EQ(by[1], 0u);
            EXPECT_GT(by[2], 0u);
            EXPECT_GT(by[3], 0u);
        } else {
            // Absence has the majority: the default host (1) takes it all.
            EXPECT_EQ(by[1], 400u);
        }
    }
}

// A rule changed from multiple to single host by host while a host holds a
// connection of the old version (so the single version stays "fresh"): the
// last host to reload has the best priority and takes the rule over from the
// current owner. It must withhold it until the cluster has converged, as for
// any ownership gained by a reload: before the fix the fresh-version branch
// skipped that, and both the old and the new owner answered SYNs until the
// old one heard of the change (found by tests/cluster/test_reload_live.sh).
TEST(Membership, RuleTurnedSingleHostByHostIsNeverOwnedByTwoHosts) {
    Net net(13);
    const PortRule web = multiple_rule(80, 80);
    PortRule mail = multiple_rule(25, 25);
    for (HostId h : {1, 2, 3}) net.add(h, {web, mail});
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 30 * kInterval));
    net.node(2).held = 1;  // a connection under the multiple version
    for (HostId h : {1, 2, 3}) {
        net.reload(h, {web, single_rule(25, static_cast<uint8_t>(4 - h))});  // 3 best, then 2, then 1
        for (int i = 0; i < 150; ++i) {
            net.step(kInterval / 10);
            unsigned owners = 0;
            for (HostId o : {1, 2, 3}) {
                const auto& snap = net.node(o).snap;
                owners += snap && snap->rules.rules[1].mode == FilterMode::single &&
                          snap->rules.rules[1].single_owner == o;
            }
            ASSERT_LE(owners, 1u) << "after host " << unsigned(h) << " reloaded, step " << i;
        }
    }
    ASSERT_TRUE(net.run_until([&] { return net.converged_on({1, 2, 3}); }, 30 * kInterval));
    net.run_for(kInterval);
    for (HostId o : {1, 2, 3}) EXPECT_EQ(net.node(o).snap->rules.rules[1].single_owner, 3);
}

}  // namespace nlbd::cluster
