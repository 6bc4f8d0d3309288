// The distributor's flow hash (core/dispatch.hpp): each flow on one worker,
// fragments with their datagram, frames spread over the workers.
#include "nlbd/core/dispatch.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "packet_builder.hpp"

namespace nlbd::core {
namespace {

namespace tb = nlbd::testing;
using tb::PacketBuilder;

uint32_t h(const tb::Bytes& f, bool l4) { return dispatch_hash(f.data(), static_cast<uint32_t>(f.size()), l4); }

TEST(Dispatch, SameFlowSameHashWhateverThePayloadAndFlags) {
    const auto a = PacketBuilder().ipv4("192.0.2.7", "198.51.100.10").tcp(40000, 443, tb::kSyn).build();
    const auto b = PacketBuilder().ipv4("192.0.2.7", "198.51.100.10").tcp(40000, 443, tb::kAck).payload(900).build();
    for (bool l4 : {false, true}) EXPECT_EQ(h(a, l4), h(b, l4));
}

TEST(Dispatch, PortsCountOnlyWithL4) {
    const auto a = PacketBuilder().ipv4("192.0.2.7", "198.51.100.10").tcp(40000, 443).build();
    const auto b = PacketBuilder().ipv4("192.0.2.7", "198.51.100.10").tcp(40001, 443).build();
    EXPECT_EQ(h(a, false), h(b, false));
    EXPECT_NE(h(a, true), h(b, true));
    const auto a6 = PacketBuilder().ipv6("2001:db8::7", "2001:db8:100::10").udp(5353, 53).build();
    const auto b6 = PacketBuilder().ipv6("2001:db8::7", "2001:db8:100::10").udp(5354, 53).build();
    EXPECT_EQ(h(a6, false), h(b6, false));
    EXPECT_NE(h(a6, true), h(b6, true));
}

TEST(Dispatch, EveryFragmentOfADatagramHashesAlikeEvenWithL4) {
    const auto big = PacketBuilder().ipv4("192.0.2.9", "198.51.100.10").ipv4_id(7).udp(5000, 4000).payload(3000).build();
    const auto frags = tb::fragment_ipv4(big, 1500);
    ASSERT_GE(frags.size(), 3u);
    for (const auto& f : frags) EXPECT_EQ(h(f, true), h(frags[0], true));
    const auto big6 = PacketBuilder().ipv6("2001:db8::9", "2001:db8:100::10").udp(5000, 4000).payload(3000).build();
    const auto frags6 = tb::fragment_ipv6(big6, 1280, 0xbeef);
    ASSERT_GE(frags6.size(), 3u);
    for (const auto& f : frags6) EXPECT_EQ(h(f, true), h(frags6[0], true));
}

TEST(Dispatch, VlanTagsAreSkipped) {
    const auto plain = PacketBuilder().ipv4("192.0.2.7", "198.51.100.10").tcp(40000, 443).build();
    const auto tagged = PacketBuilder().vlan(10).ipv4("192.0.2.7", "198.51.100.10").tcp(40000, 443).build();
    const auto qinq = PacketBuilder().vlan(100, tb::kEthQinQ).vlan(10).ipv4("192.0.2.7", "198.51.100.10").tcp(40000, 443).build();
    for (bool l4 : {false, true}) {
        EXPECT_EQ(h(plain, l4), h(tagged, l4));
        EXPECT_EQ(h(plain, l4), h(qinq, l4));
    }
}

TEST(Dispatch, NonIpAndTruncatedFramesGoToWorkerZero) {
    const auto arp = PacketBuilder().arp_request("02:00:00:00:00:07", "192.0.2.7", "198.51.100.10").build();
    EXPECT_EQ(h(arp, true), 0u);
    auto tcp = PacketBuilder().ipv4("192.0.2.7", "198.51.100.10").tcp(40000, 443).build();
    for (size_t n = 0; n < 14 + 20; ++n)
        EXPECT_EQ(dispatch_hash(tcp.data(), static_cast<uint32_t>(n), true), 0u) << n;
    // An IPv4 header without its ports still hashes (on L3) and reads nothing past len.
    EXPECT_EQ(dispatch_hash(tcp.data(), 34, true), h(tcp, false));
}

TEST(Dispatch, ManyClientsSpreadEvenlyOverWorkers) {
    constexpr unsigned kWorkers = 4, kClients = 8000;
    unsigned count[kWorkers] = {};
    for (unsigned i = 0; i < kClients; ++i) {
        const std::string src = "10." + std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255) + ".1";
        const auto f = PacketBuilder().ipv4(src, "198.51.100.10").tcp(40000, 443).build();
        ++count[dispatch_worker(h(f, false), kWorkers)];
    }
    // 4-sigma bound of a fair split: 2000 +- 4*sqrt(8000*0.25*0.75) ~ +-155.
    for (unsigned w = 0; w < kWorkers; ++w) {
        EXPECT_GT(count[w], 1845u) << w;
        EXPECT_LT(count[w], 2155u) << w;
    }
}

TEST(Dispatch, WorkerIndexStaysInRange) {
    for (uint32_t n = 1; n <= 64; ++n)
        for (uint32_t hv : {0u, 1u, 0x7fffffffu, 0xffffffffu}) EXPECT_LT(dispatch_worker(hv, n), n);
}

}  // namespace
}  // namespace nlbd::core
