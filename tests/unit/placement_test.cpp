// Lcore placement (src/daemon/placement.cpp): workers on the NIC's NUMA node, one
// PU per physical core, control elsewhere, small machines as before; and the
// real machine read through hwloc.

#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "nlbd/daemon/eal_args.hpp"
#include "nlbd/daemon/placement.hpp"

namespace nlbd::daemon {
namespace {

// `sockets` nodes of `cores_per_node` cores, 2-way SMT numbered like Linux
// on x86: core k has PUs k and k + total_cores.
Topology smt_machine(unsigned sockets, unsigned cores_per_node, bool smt) {
    Topology t;
    const unsigned total = sockets * cores_per_node;
    for (unsigned k = 0; k < total; ++k) {
        TopoCore c;
        c.id = k;
        c.node = static_cast<int>(k / cores_per_node);
        c.pus.push_back(k);
        if (smt) c.pus.push_back(k + total);
        t.cores.push_back(c);
    }
    return t;
}

const TopoCore* core_of(const Topology& t, unsigned cpu) {
    for (const auto& c : t.cores)
        if (std::count(c.pus.begin(), c.pus.end(), cpu)) return &c;
    return nullptr;
}

// The invariants every multi-core placement must keep.
void expect_no_shared_core(const Topology& t, const Placement& p) {
    std::set<unsigned> cores;
    for (unsigned w : p.workers) {
        const TopoCore* c = core_of(t, w);
        ASSERT_NE(c, nullptr) << "cpu" << w;
        EXPECT_TRUE(cores.insert(c->id).second) << "two workers on core " << c->id;
    }
    const TopoCore* cc = core_of(t, p.control);
    ASSERT_NE(cc, nullptr);
    EXPECT_EQ(cores.count(cc->id), 0u) << "control shares core " << cc->id << " with a worker";
}

TEST(Placement, TwoSocketSmtPutsWorkersOnNicNodeOnePerCoreAndControlElsewhere) {
    Topology t = smt_machine(2, 16, true);
    t.nic_node = 1;
    t.nic = "0000:3b:00.0";
    const Placement p = plan_placement(t, 4);
    ASSERT_EQ(p.workers.size(), 4u);
    EXPECT_EQ(p.node, 1);
    for (unsigned w : p.workers) EXPECT_EQ(core_of(t, w)->node, 1) << "cpu" << w;
    EXPECT_EQ(p.workers, (std::vector<unsigned>{16, 17, 18, 19}));
    EXPECT_NE(core_of(t, p.control)->node, 1);
    EXPECT_EQ(p.control, 0u);
    expect_no_shared_core(t, p);
    // The siblings of worker PUs are named as avoided and never used.
    EXPECT_EQ(p.avoided, (std::vector<unsigned>{48, 49, 50, 51}));
    EXPECT_TRUE(p.warnings.empty());
    EXPECT_NE(p.description.find("NIC 0000:3b:00.0 on NUMA 1"), std::string::npos) << p.description;
    EXPECT_NE(p.description.find("SMT siblings avoided: cpu48"), std::string::npos);
    EXPECT_EQ(p.lcore_list(), "0,16,17,18,19");
}

TEST(Placement, TooFewCoresOnNicNodeSpillsToOtherNodeWithWarning) {
    Topology t = smt_machine(2, 4, true);
    t.nic_node = 0;
    const Placement p = plan_placement(t, 6);
    // Control takes node 1's first core; node 0's 4 cores, then node 1's others.
    EXPECT_EQ(p.control, 4u);
    ASSERT_EQ(p.workers.size(), 6u);
    EXPECT_EQ(p.workers, (std::vector<unsigned>{0, 1, 2, 3, 5, 6}));
    expect_no_shared_core(t, p);
    EXPECT_FALSE(p.warnings.empty());
}

TEST(Placement, MoreWorkersThanCoresAreCappedWithWarningNeverOnSiblings) {
    Topology t = smt_machine(1, 4, true);  // 4 cores, 8 PUs
    t.nic_node = 0;
    const Placement p = plan_placement(t, 16);
    EXPECT_EQ(p.workers.size(), 3u);  // 4 cores minus control's
    expect_no_shared_core(t, p);
    ASSERT_FALSE(p.warnings.empty());
    EXPECT_NE(p.description.find("capped at 3"), std::string::npos) << p.description;
}

TEST(Placement, TwoCpusKeepControlOnFirstAndWorkerOnSecond) {
    Topology t = smt_machine(1, 2, false);
    t.allowed = {0, 1};
    const Placement p = plan_placement(t, 1);
    EXPECT_EQ(p.control, 0u);
    EXPECT_EQ(p.workers, (std::vector<unsigned>{1}));
    EXPECT_TRUE(p.warnings.empty());
    EXPECT_EQ(p.lcore_list(), "0,1");
}

TEST(Placement, OneCpuIsSingleLcoreMode) {
    Topology t = smt_machine(1, 4, false);
    t.allowed = {3};
    const Placement p = plan_placement(t, 1);
    EXPECT_EQ(p.control, 3u);
    EXPECT_TRUE(p.workers.empty());
    EXPECT_NE(p.description.find("single lcore"), std::string::npos) << p.description;
    EXPECT_EQ(p.lcore_list(), "3");
}

TEST(Placement, RestrictedAffinityIsNeverLeft) {
    Topology t = smt_machine(2, 8, true);
    t.nic_node = 1;
    // Allowed: node 0 cores 2..3 (both siblings), node 1 cores 9..11 (first PU only).
    t.allowed = {2, 3, 18, 19, 9, 10, 11};
    const Placement p = plan_placement(t, 8);
    const std::set<unsigned> allowed(t.allowed.begin(), t.allowed.end());
    EXPECT_TRUE(allowed.count(p.control));
    for (unsigned w : p.workers) EXPECT_TRUE(allowed.count(w)) << "cpu" << w;
    expect_no_shared_core(t, p);
    // Node 1's three allowed cores first, then node 0's remaining one.
    EXPECT_EQ(p.control, 2u);
    EXPECT_EQ(p.workers, (std::vector<unsigned>{9, 10, 11, 3}));
    EXPECT_FALSE(p.warnings.empty());
}

TEST(Placement, NicNodeWithoutAllowedCpuFallsBackToFirstAllowedCpusNode) {
    Topology t = smt_machine(2, 4, false);
    t.nic_node = 1;
    t.allowed = {0, 1, 2};
    const Placement p = plan_placement(t, 2);
    EXPECT_EQ(p.node, 0);
    EXPECT_EQ(p.control, 0u);
    EXPECT_EQ(p.workers, (std::vector<unsigned>{1, 2}));
    EXPECT_FALSE(p.warnings.empty());
}

TEST(Placement, UnknownNicNodeUsesNodeOfFirstAllowedCpu) {
    Topology t = smt_machine(2, 4, true);
    t.nic_node = kUnknownNode;
    t.nic = "net_pcap0";
    t.allowed = {4, 5, 6, 7, 12, 13, 14, 15};  // node 1 only, with siblings
    const Placement p = plan_placement(t, 2);
    EXPECT_EQ(p.node, 1);
    EXPECT_EQ(p.control, 4u);
    EXPECT_EQ(p.workers, (std::vector<unsigned>{5, 6}));
    expect_no_shared_core(t, p);
    EXPECT_NE(p.description.find("NUMA unknown"), std::string::npos) << p.description;
}

TEST(Placement, OnePhysicalCoreWithManySiblingsWarns) {
    Topology t;
    t.cores.push_back(TopoCore{0, 0, {0, 1, 2, 3}});
    const Placement p = plan_placement(t, 2);
    EXPECT_EQ(p.control, 0u);
    EXPECT_EQ(p.workers, (std::vector<unsigned>{1}));
    EXPECT_GE(p.warnings.size(), 1u);
}

TEST(Placement, EalArgsUseChosenLcoresAndNameTheMainLcore) {
    EalEnvironment e;
    e.cpus = {0, 1, 2, 3};
    e.lcores = {3, 0, 1};  // control 3, workers 0 and 1
    const PortDevice wire = port_device("net_null0");
    const PortDevice local = port_device("net_null1");
    auto a = build_eal_args("nlbd", {}, {}, wire, local, e);
    auto l = std::find(a.begin(), a.end(), "-l");
    ASSERT_NE(l, a.end());
    EXPECT_EQ(*(l + 1), "0,1,3");
    auto m = std::find(a.begin(), a.end(), "--main-lcore");
    ASSERT_NE(m, a.end());
    EXPECT_EQ(*(m + 1), "3");
    // The user's -l still wins.
    a = build_eal_args("nlbd", {"-l", "5"}, {}, wire, local, e);
    EXPECT_EQ(std::count(a.begin(), a.end(), "-l"), 1);
    EXPECT_EQ(std::count(a.begin(), a.end(), "--main-lcore"), 0);
}

TEST(Placement, RealMachineTopologyIsReadAndPlanned) {
    Topology t;
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    for (unsigned c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) t.allowed.push_back(c);
    std::string err;
    ASSERT_TRUE(read_topology("", t, err)) << err;
    ASSERT_FALSE(t.cores.empty());
    size_t pus = 0;
    for (const auto& c : t.cores) pus += c.pus.size();
    EXPECT_GE(pus, t.allowed.size());
    EXPECT_EQ(t.nic_node, kUnknownNode);  // no NIC asked for
    const Placement p = plan_placement(t, 1);
    const std::set<unsigned> allowed(t.allowed.begin(), t.allowed.end());
    EXPECT_TRUE(allowed.count(p.control));
    for (unsigned w : p.workers) EXPECT_TRUE(allowed.count(w));
    if (t.allowed.size() == 2) {  // this VM: the behaviour nlbd always had
        EXPECT_EQ(p.control, t.allowed[0]);
        EXPECT_EQ(p.workers, (std::vector<unsigned>{t.allowed[1]}));
    }
    if (t.allowed.size() >= 2) {
        EXPECT_EQ(p.workers.size(), 1u);
    }
    std::printf("%s\n", p.description.c_str());
    // An address no machine has reads as NUMA unknown, not as a failure.
    Topology t2;
    ASSERT_TRUE(read_topology("0000:ff:1f.7", t2, err)) << err;
    EXPECT_EQ(t2.nic_node, kUnknownNode);
}

}  // namespace
}  // namespace nlbd::daemon
