// The EAL command line nlbd builds (src/daemon/eal_args.cpp): the user decides
// first, nlbd fills in only what is missing.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "nlbd/daemon/eal_args.hpp"

namespace nlbd::daemon {
namespace {

using Args = std::vector<std::string>;

bool contains(const Args& a, const std::string& s) {
    return std::find(a.begin(), a.end(), s) != a.end();
}
// The value following option `opt`, or "" when absent.
std::string value_of(const Args& a, const std::string& opt) {
    auto it = std::find(a.begin(), a.end(), opt);
    return it == a.end() || it + 1 == a.end() ? "" : *(it + 1);
}

EalEnvironment env(bool huge, std::vector<unsigned> cpus) {
    EalEnvironment e;
    e.hugepages_available = huge;
    e.cpus = std::move(cpus);
    e.no_huge_memory_mb = 300;
    return e;
}

const PortDevice kPcapWire = port_device("net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap");
const PortDevice kPcapLocal = port_device("net_pcap1,rx_pcap=empty.pcap");

TEST(PortDevice, VdevIsNamedByTheTextBeforeTheFirstComma) {
    EXPECT_FALSE(kPcapWire.is_pci);
    EXPECT_EQ(kPcapWire.name, "net_pcap0");
    EXPECT_EQ(port_device("net_null0").name, "net_null0");
}

TEST(PortDevice, PciAddressesAreRecognisedAndGetTheirDomain) {
    EXPECT_TRUE(is_pci_address("0000:af:00.0"));
    EXPECT_TRUE(is_pci_address("af:00.1"));
    EXPECT_TRUE(is_pci_address("0000:af:00.0,rx_low_latency=1"));
    EXPECT_FALSE(is_pci_address("af:00.8"));
    EXPECT_FALSE(is_pci_address("net_tap0,iface=af:00.0"));
    EXPECT_FALSE(is_pci_address("0000:af:00"));
    EXPECT_EQ(port_device("af:00.1").name, "0000:af:00.1");
    EXPECT_EQ(port_device("0000:af:00.0,rx_low_latency=1").name, "0000:af:00.0");
}

TEST(EalArgs, VdevsWithHugepagesRunInMemoryWithoutPciOnTwoLcores) {
    const Args a = build_eal_args("nlbd", {}, {}, kPcapWire, kPcapLocal, env(true, {2, 3, 5}));
    EXPECT_EQ(a.front(), "nlbd");
    EXPECT_TRUE(contains(a, "--in-memory"));
    EXPECT_FALSE(contains(a, "--no-huge"));
    EXPECT_TRUE(contains(a, "--no-pci"));
    EXPECT_EQ(value_of(a, "-l"), "2,3");
    EXPECT_EQ(std::count(a.begin(), a.end(), "--vdev"), 2);
    EXPECT_TRUE(contains(a, kPcapWire.device));
    EXPECT_TRUE(contains(a, kPcapLocal.device));
}

TEST(EalArgs, HugepagesWithAFilePrefixShareTheConfigurationForCaptureTools) {
    EalEnvironment e = env(true, {0, 1});
    e.file_prefix = "nlbd-3";
    const Args a = build_eal_args("nlbd", {}, {}, kPcapWire, kPcapLocal, e);
    EXPECT_TRUE(contains(a, "--file-prefix=nlbd-3"));  // dpdk-dumpcap --file-prefix=nlbd-3 attaches
    EXPECT_FALSE(contains(a, "--in-memory"));
    EXPECT_FALSE(contains(a, "--no-shconf"));
    // Without hugepages there is nothing to share: the prefix is not used here.
    e.hugepages_available = false;
    const Args b = build_eal_args("nlbd", {}, {}, kPcapWire, kPcapLocal, e);
    EXPECT_FALSE(contains(b, "--file-prefix=nlbd-3"));
    EXPECT_TRUE(contains(b, "--no-shconf"));
}

TEST(EalArgs, NoHugepagesFallsBackToNoHugeWithoutInMemory) {
    const Args a = build_eal_args("nlbd", {}, {}, kPcapWire, kPcapLocal, env(false, {0, 1}));
    EXPECT_TRUE(contains(a, "--no-huge"));
    EXPECT_EQ(value_of(a, "-m"), "300");
    EXPECT_TRUE(contains(a, "--no-shconf"));
    // DPDK 22.11 refuses --in-memory together with --no-huge.
    EXPECT_FALSE(contains(a, "--in-memory"));
}

TEST(EalArgs, UserChoicesAreNeverOverridden) {
    const Args user = {"--file-prefix=n1", "-m", "1024", "--lcores", "0@4,1@5"};
    const Args a = build_eal_args("nlbd", user, {}, kPcapWire, kPcapLocal, env(false, {0, 1}));
    EXPECT_FALSE(contains(a, "--in-memory"));
    EXPECT_FALSE(contains(a, "--no-huge"));
    EXPECT_FALSE(contains(a, "--no-shconf"));
    EXPECT_FALSE(contains(a, "-l"));
    EXPECT_EQ(value_of(a, "-m"), "1024");
    // The user's options come right after the program name, in order.
    EXPECT_TRUE(std::equal(user.begin(), user.end(), a.begin() + 1));
}

TEST(EalArgs, ProfileOptionsFollowUserOptionsAndCountAsDecided) {
    const Args a = build_eal_args("nlbd", {"-a", "0000:af:00.0"}, {"--in-memory", "-l1"},
                                  port_device("0000:af:00.0"), kPcapLocal, env(true, {0, 1}));
    EXPECT_EQ(a[1], "-a");
    EXPECT_EQ(a[3], "--in-memory");
    EXPECT_EQ(std::count(a.begin(), a.end(), "--in-memory"), 1);
    EXPECT_FALSE(contains(a, "-l"));
    EXPECT_FALSE(contains(a, "--no-pci"));  // one port is PCI
}

TEST(EalArgs, OneCpuGivesOneLcore) {
    const Args a = build_eal_args("nlbd", {}, {}, kPcapWire, kPcapLocal, env(true, {7}));
    EXPECT_EQ(value_of(a, "-l"), "7");
}

TEST(EalArgs, PciPortsAreAllowListed) {
    const Args a = build_eal_args("nlbd", {}, {}, port_device("0000:af:00.0"),
                                  port_device("0000:af:00.1"), env(true, {0, 1}));
    EXPECT_EQ(std::count(a.begin(), a.end(), "-a"), 2);
    EXPECT_FALSE(contains(a, "--vdev"));
    EXPECT_FALSE(contains(a, "--no-pci"));
}

}  // namespace
}  // namespace nlbd::daemon
