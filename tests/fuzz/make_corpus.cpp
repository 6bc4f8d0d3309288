// Regenerates the committed seed corpus (one raw frame per file):
//   g++ -std=c++20 -I include -I tests/support tests/fuzz/make_corpus.cpp
//       src/core/types.cpp -o /tmp/make_corpus && /tmp/make_corpus tests/fuzz/corpus
#include <cstdio>
#include <string>

#include "packet_builder.hpp"

using namespace nlbd::testing;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    const char* c4 = "10.0.0.1";
    const char* v4 = "192.168.1.100";
    const char* c6 = "2001:db8::1";
    const char* v6 = "2001:db8:100::100";
    const auto inner4 = PacketBuilder().ipv4(v4, c4).tcp(443, 40000, kAck).build_l3();
    const auto inner6 = PacketBuilder().ipv6(v6, c6).ipv6_ext(kProtoDestOpts).udp(53, 5353).build_l3();
    const auto big4 = PacketBuilder().ipv4(c4, v4).udp(5000, 53).payload(300).build();
    const auto big6 = PacketBuilder().ipv6(c6, v6).ipv6_ext(kProtoHopByHop).tcp(1, 2, kAck).payload(300).build();
    const auto f4 = fragment_ipv4(big4, 200);
    const auto f6 = fragment_ipv6(big6, 200, 77);
    const std::pair<const char*, Bytes> seeds[] = {
        {"tcp4_syn", PacketBuilder().ipv4(c4, v4).tcp(40000, 443, kSyn).tcp_options({2, 4, 5, 0xb4}).build()},
        {"udp4_vlan_padded", PacketBuilder().vlan(100).ipv4(c4, v4).udp(5000, 53).payload(4).eth_pad().build()},
        {"qinq_tcp6", PacketBuilder().vlan(1, kEthQinQ).vlan(2).ipv6(c6, v6).tcp(1, 2, kFin | kAck).build()},
        {"ipv4_options", PacketBuilder().ipv4(c4, v4).ipv4_options({1, 7, 7, 4, 0, 0, 0, 0}).udp(1, 2).build()},
        {"ipv6_chain", PacketBuilder().ipv6(c6, v6).ipv6_ext(kProtoHopByHop).ipv6_ext(kProtoRouting, 24)
                           .ipv6_ext(kProtoDestOpts).ipv6_ext(kProtoAh, 16).udp(1, 2).build()},
        {"ipv4_frag_first", f4.at(0)},
        {"ipv4_frag_later", f4.at(1)},
        {"ipv6_frag_first", f6.at(0)},
        {"ipv6_frag_later", f6.at(1)},
        {"icmp4_echo", PacketBuilder().ipv4(c4, v4).icmp_echo(1, 1).payload(8).build()},
        {"icmp6_echo", PacketBuilder().ipv6(c6, v6).icmp_echo(1, 1).payload(8).build()},
        {"icmp4_frag_needed", PacketBuilder().ipv4("10.9.9.9", v4).icmp_frag_needed(1400, inner4).build()},
        {"icmp6_too_big", PacketBuilder().ipv6("2001:db8:ffff::1", v6).icmpv6_packet_too_big(1280, inner6).build()},
        {"nd_solicit", PacketBuilder().nd_solicit(v6, "02:00:00:00:00:05").build()},
        {"arp_request", PacketBuilder().arp_request("02:00:00:00:00:05", c4, v4).build()},
        {"lldp", PacketBuilder().ethertype(0x88cc).payload(16).build()},
    };
    for (const auto& [name, frame] : seeds) {
        const std::string path = dir + "/" + name;
        std::FILE* f = std::fopen(path.c_str(), "wb");
        if (f == nullptr || std::fwrite(frame.data(), 1, frame.size(), f) != frame.size()) {
            std::perror(path.c_str());
            return 1;
        }
        std::fclose(f);
    }
    return 0;
}
