// nlbd-pcapgen: writes the replay capture and its manifest.
//
//   nlbd-pcapgen --config SCENARIO/cluster.toml.in --out DIR [--wire-in TEXT]
//                [--vlan VID] [--seed N]
//
// Writes DIR/in.pcap (the wire input every host receives), DIR/empty.pcap (an
// empty capture for the local ports' rx side), DIR/host1.toml .. host3.toml
// (the scenario's config filled in for each host: what nlbd runs) and
// DIR/manifest.tsv: one line per input frame, in capture order, with the
// frame's class, the port rule it exercises, its affinity groups and what the
// cluster must do with it (the format is described by `nlbd-replay-check
// --help`).
//
// Every cluster fact the manifest depends on (VIPs, mode, members, default
// host, each class's port rule: its ports, best host, weights) is read from
// the scenario's config with nlbd's config loader (replay_scenario.hpp), so
// the expectations cannot drift from what the hosts run; a class that finds
// no rule of its kind there is an error, not a wrong manifest.
// Deterministic: the same arguments give byte-identical files (own PRNG use,
// no std distributions, whose output is implementation-defined). Every frame
// is unique (IPv4 id / sequence numbers / payload vary), so an output frame
// can be matched to its input frame by its exact bytes.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <unordered_set>
#include <string>
#include <vector>

#include "packet_builder.hpp"
#include "pcap_writer.hpp"
#include "replay_scenario.hpp"

namespace {

using nlbd::testing::Bytes;
using nlbd::testing::Frames;
using nlbd::testing::PacketBuilder;
using nlbd::tools::ClassRule;
using nlbd::tools::Scenario;
using nlbd::tools::Traffic;
namespace tb = nlbd::testing;

struct Options {
    std::string out;
    std::string config;   // the scenario's cluster.toml.in
    std::string wire_in;  // what @IN@ stands for; empty = OUT/in.pcap
    int vlan = -1;
    uint32_t seed = 20240601;
};

class Rng {
public:
    explicit Rng(uint32_t seed) : g_(seed) {}
    uint32_t below(uint32_t n) { return static_cast<uint32_t>(g_() % n); }
    bool chance(uint32_t percent) { return below(100) < percent; }

private:
    std::mt19937 g_;  // its sequence is fixed by the standard
};

// A frame plus its manifest line (everything but the index).
struct Item {
    Bytes frame;
    std::string cls, rule, groups, expect, notes;
};

class Generator {
public:
    Generator(const Options& o, const Scenario& sc) : opt_(o), sc_(sc), rng_(o.seed) {
        // SPEC §3, from the first IPv4 VIP (load_scenario allows unicast and multicast).
        char m[18];
        const auto& v = sc.vip4.b;
        std::snprintf(m, sizeof m, "%02x:bf:%02x:%02x:%02x:%02x", sc.mode == nlbd::ClusterMode::multicast ? 3 : 2,
                      v[0], v[1], v[2], v[3]);
        cluster_mac_ = m;
    }

    // A base builder: Ethernet from a client MAC to the cluster MAC, the
    // scenario's VLAN tag.
    PacketBuilder base(uint32_t client_index, const std::string& dst_mac = "") {
        char src[18];
        std::snprintf(src, sizeof src, "02:00:%02x:%02x:%02x:%02x", (client_index >> 24) & 0xff,
                      (client_index >> 16) & 0xff, (client_index >> 8) & 0xff, client_index & 0xff);
        PacketBuilder b;
        b.eth(src, dst_mac.empty() ? cluster_mac_ : dst_mac);
        if (opt_.vlan >= 0) b.vlan(static_cast<uint16_t>(opt_.vlan));
        return b;
    }
    uint16_t next_id() { return ip_id_++; }

    static std::string v4_client(uint32_t i) {  // 198.18.0.0/15, benchmarking range
        return "198.18." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250);
    }
    static std::string v6_client(uint32_t i) {
        char s[64];
        std::snprintf(s, sizeof s, "2001:db8:c1:%x::%x", i / 200, 0x100 + i % 200);
        return s;
    }

    // One stream = frames that must stay in this order (a flow, a datagram's
    // fragments in the order chosen for them). Streams are interleaved.
    void stream(std::vector<Item> s) { streams_.push_back(std::move(s)); }

    // A TCP exchange client -> vip:dport: SYN, data, FIN (the server's side is
    // not on this segment's input: replies leave through the local port).
    void tcp_flow(const std::string& cls, const std::string& rule, const std::string& expect, uint32_t ci,
                  const std::string& src, const std::string& vip, uint16_t sport, uint16_t dport,
                  const std::string& groups, bool v6, bool fancy = false) {
        std::vector<Item> s;
        const uint32_t isn = 1000 + rng_.below(1u << 30);
        const std::string flow = "flow:" + std::to_string(flows_++);
        const std::string all_groups = groups == "-" || groups.empty() ? flow : groups + "," + flow;
        struct Step {
            uint8_t flags;
            uint32_t seq;
            size_t payload;
            const char* what;
        } steps[] = {{tb::kSyn, isn, 0, "SYN"},
                     {tb::kAck | tb::kPsh, isn + 1, 40 + rng_.below(400), "data"},
                     {tb::kAck | tb::kFin, isn + 600, 0, "FIN"}};
        for (const auto& st : steps) {
            PacketBuilder b = base(ci);
            if (v6) {
                b.ipv6(src, vip);
                if (fancy) b.ipv6_ext(tb::kProtoHopByHop, 8).ipv6_ext(tb::kProtoDestOpts, 16);
            } else {
                b.ipv4(src, vip).ipv4_id(next_id());
                if (fancy) b.ipv4_options({0x94, 0x04, 0x00, 0x00});  // router alert
            }
            b.tcp(sport, dport, st.flags, st.seq, st.flags == tb::kSyn ? 0 : 77).payload(st.payload);
            if (st.payload == 0) b.eth_pad(60);  // small frames carry Ethernet padding, as on a real wire
            s.push_back({b.build(), cls, rule, all_groups, expect,
                         std::string(st.what) + " " + src + ":" + std::to_string(sport) + " -> " + vip + ":" +
                             std::to_string(dport) + (fancy ? (v6 ? " +ext hdrs" : " +ip options") : "")});
        }
        stream(std::move(s));
    }

    void udp_one(const std::string& cls, const std::string& rule, const std::string& expect, uint32_t ci,
                 const std::string& src, const std::string& vip, uint16_t sport, uint16_t dport,
                 const std::string& groups, bool v6, size_t payload) {
        PacketBuilder b = base(ci);
        if (v6) b.ipv6(src, vip);
        else b.ipv4(src, vip).ipv4_id(next_id());
        Bytes pl(payload);
        for (size_t i = 0; i < payload; ++i) pl[i] = static_cast<uint8_t>(rng_.below(256));
        b.udp(sport, dport).payload(pl).eth_pad(60);
        stream({{b.build(), cls, rule, groups, expect,
                 "UDP " + src + ":" + std::to_string(sport) + " -> " + vip + ":" + std::to_string(dport)}});
    }

    // A fragmented UDP datagram (2-4 fragments), in order or last fragment first.
    void udp_fragmented(const std::string& cls, const std::string& rule, uint32_t ci, const std::string& src,
                        const std::string& vip, uint16_t sport, uint16_t dport, const std::string& aff_group,
                        bool v6, uint32_t dgram) {
        const unsigned nfrag = 2 + rng_.below(3);
        const size_t mtu = 600;
        const size_t per = v6 ? mtu - 48 : mtu - 20;  // payload bytes per fragment
        const size_t payload = per * (nfrag - 1) + 100 + rng_.below(300) - 8;
        Bytes pl(payload);
        for (size_t i = 0; i < payload; ++i) pl[i] = static_cast<uint8_t>(rng_.below(256));
        PacketBuilder b = base(ci);
        const uint16_t id = next_id();
        if (v6) b.ipv6(src, vip);
        else b.ipv4(src, vip).ipv4_id(id);
        b.udp(sport, dport).payload(pl);
        Frames frags = v6 ? tb::fragment_ipv6(b.build(), mtu, 0x10000 + dgram) : tb::fragment_ipv4(b.build(), mtu);
        const bool reversed = rng_.chance(35);
        const std::string dg = std::string(v6 ? "dg6:" : "dg4:") + std::to_string(dgram);
        std::vector<Item> s;
        for (size_t k = 0; k < frags.size(); ++k)
            s.push_back({frags[k], cls, rule, aff_group + "," + dg, "one",
                         "fragment " + std::to_string(k + 1) + "/" + std::to_string(frags.size()) + " of " + dg +
                             " " + src + ":" + std::to_string(sport) + " -> " + vip + ":" + std::to_string(dport) +
                             (reversed ? " (sent last first)" : "")});
        if (reversed) std::rotate(s.begin(), s.end() - 1, s.end());  // last fragment first
        stream(std::move(s));
    }

    void generate() {
        // The rule each class exercises (its manifest name, port, best host,
        // VIP) as the scenario's config has it.
        const auto rule = [&](Traffic t) -> const ClassRule& { return sc_.rule(t); };
        const auto name = [](Traffic t) { return std::string(nlbd::tools::traffic_name(t)); };
        const auto host = [](nlbd::HostId h) { return "host=" + std::to_string(h); };
        const std::string v4a = sc_.vip4.to_string(), v6 = sc_.vip6.to_string();
        const std::string v4b = rule(Traffic::override_vip).vip.to_string();  // only for the override rule
        const std::string web = name(Traffic::web), frag = name(Traffic::frag);
        const uint16_t web_port = rule(Traffic::web).port;
        uint32_t ci = 1;  // client index (MAC)

        // The web rule (multiple host, affinity none; port 80 in tests/replay),
        // IPv4: 300 clients x 3 ports.
        for (uint32_t c = 0; c < 300; ++c, ++ci)
            for (uint16_t p = 0; p < 3; ++p) {
                const std::string src = v4_client(c);
                const uint16_t sport = static_cast<uint16_t>(20000 + c * 7 + p * 1000);
                tcp_flow("tcp_multi_v4", web, "one", ci, src, v4a, sport, web_port,
                         web + ":" + src + ":" + std::to_string(sport), false, c % 50 == 7);
            }
        // Same rule, IPv6: 150 clients x 2 ports.
        for (uint32_t c = 0; c < 150; ++c, ++ci)
            for (uint16_t p = 0; p < 2; ++p) {
                const std::string src = v6_client(c);
                const uint16_t sport = static_cast<uint16_t>(30000 + c * 5 + p * 2000);
                tcp_flow("tcp_multi_v6", web, "one", ci, src, v6, sport, web_port,
                         web + ":" + src + ":" + std::to_string(sport), true, c % 40 == 3);
            }
        // Multiple-host UDP, affinity none (the dns rule, port 53), v4 and v6.
        const std::string dns = name(Traffic::dns);
        const uint16_t dns_port = rule(Traffic::dns).port;
        for (uint32_t c = 0; c < 400; ++c, ++ci)
            for (uint16_t p = 0; p < 2; ++p) {
                const std::string src = v4_client(1000 + c);
                const uint16_t sport = static_cast<uint16_t>(40000 + c * 3 + p);
                udp_one("udp_multi_v4", dns, "one", ci, src, v4a, sport, dns_port,
                        dns + ":" + src + ":" + std::to_string(sport), false, 20 + rng_.below(60));
            }
        for (uint32_t c = 0; c < 200; ++c, ++ci)
            for (uint16_t p = 0; p < 2; ++p) {
                const std::string src = v6_client(1000 + c);
                const uint16_t sport = static_cast<uint16_t>(41000 + c * 3 + p);
                udp_one("udp_multi_v6", dns, "one", ci, src, v6, sport, dns_port,
                        dns + ":" + src + ":" + std::to_string(sport), true, 20 + rng_.below(60));
            }
        // Affinity single (the https rule, 443): one client, many source ports -> one host.
        const std::string https = name(Traffic::https);
        for (uint32_t c = 0; c < 200; ++c, ++ci) {
            const bool is6 = c % 4 == 3;
            const std::string src = is6 ? v6_client(2000 + c) : v4_client(2000 + c);
            for (uint16_t p = 0; p < 4; ++p) {
                const uint16_t sport = static_cast<uint16_t>(50000 + c * 11 + p * 3);
                tcp_flow(is6 ? "aff_single_v6" : "aff_single_v4", https, "one", ci, src, is6 ? v6 : v4a, sport,
                         rule(Traffic::https).port, https + ":" + src, is6, false);
            }
        }
        // Affinity network (the netaff rule, 8080): clients of a /24 (v4) or /48 (v6) -> one host.
        const std::string netaff = name(Traffic::netaff);
        const uint16_t netaff_port = rule(Traffic::netaff).port;
        for (uint32_t net = 0; net < 120; ++net)
            for (uint32_t h = 0; h < 4; ++h, ++ci) {
                const std::string src =
                    "198.19." + std::to_string(net) + "." + std::to_string(10 + h * 37 + net % 20);
                const uint16_t sport = static_cast<uint16_t>(33000 + net * 13 + h);
                tcp_flow("aff_network_v4", netaff, "one", ci, src, v4a, sport, netaff_port,
                         netaff + ":198.19." + std::to_string(net) + ".0/24", false);
            }
        for (uint32_t net = 0; net < 60; ++net)
            for (uint32_t h = 0; h < 3; ++h, ++ci) {
                char src[64], grp[64];
                std::snprintf(src, sizeof src, "2001:db8:%x:%x::%x", 0x5000 + net, h * 0x111, 0x20 + h);
                std::snprintf(grp, sizeof grp, "%s:2001:db8:%x::/48", netaff.c_str(), 0x5000 + net);
                tcp_flow("aff_network_v6", netaff, "one", ci, src, v6, static_cast<uint16_t>(34000 + net * 7 + h),
                         netaff_port, grp, true);
            }
        // Fragmented UDP datagrams of a multiple rule (ports 4000-4999, affinity
        // none), v4 and v6, some last fragment first; each client also sends an
        // unfragmented datagram from the same source port (same affinity key).
        const nlbd::PortRule& frag_rule = rule(Traffic::frag).rule;
        uint32_t dgram = 0;
        for (uint32_t c = 0; c < 160; ++c, ++ci) {
            const bool is6 = c % 3 == 2;
            const std::string src = is6 ? v6_client(3000 + c) : v4_client(3000 + c);
            const uint16_t sport = static_cast<uint16_t>(45000 + c);
            const uint16_t dport =
                static_cast<uint16_t>(frag_rule.port_lo + rng_.below(frag_rule.port_hi - frag_rule.port_lo + 1u));
            const std::string aff = frag + ":" + src + ":" + std::to_string(sport);
            udp_fragmented(is6 ? "frag_v6" : "frag_v4", frag, ci, src, is6 ? v6 : v4a, sport, dport, aff, is6,
                           dgram++);
            if (c % 4 == 0)
                udp_fragmented(is6 ? "frag_v6" : "frag_v4", frag, ci, src, is6 ? v6 : v4a, sport, dport, aff, is6,
                               dgram++);
            udp_one(is6 ? "frag_rule_unfragmented_v6" : "frag_rule_unfragmented_v4", frag, "one", ci, src,
                    is6 ? v6 : v4a, sport, dport, aff, is6, 30);
        }
        // Orphan fragments (their first fragment never comes): nobody delivers them.
        for (uint32_t k = 0; k < 2; ++k, ++ci) {
            const bool is6 = k == 1;
            PacketBuilder b = base(ci);
            const std::string src = is6 ? v6_client(4000) : v4_client(4000);
            if (is6) b.ipv6(src, v6).ipv6_frag(1480, false, 0xdead0000 + k);
            else b.ipv4(src, v4a).ipv4_id(next_id()).ipv4_frag(1480, false);
            b.ip_proto(tb::kProtoUdp).payload(200);
            stream({{b.build(), is6 ? "frag_orphan_v6" : "frag_orphan_v4", frag, "-", "none",
                     "non-first fragment whose first fragment never arrives"}});
        }
        // Disabled rule (SMTP 25, both protocols): dropped by every host.
        const std::string smtp = name(Traffic::smtp);
        const uint16_t smtp_port = rule(Traffic::smtp).port;
        for (uint32_t c = 0; c < 30; ++c, ++ci) {
            const bool is6 = c % 3 == 0;
            const std::string src = is6 ? v6_client(5000 + c) : v4_client(5000 + c);
            if (c % 5 == 4)
                udp_one("disabled_smtp", smtp, "none", ci, src, is6 ? v6 : v4a, static_cast<uint16_t>(1025 + c),
                        smtp_port, "-", is6, 40);
            else
                tcp_flow("disabled_smtp", smtp, "none", ci, src, is6 ? v6 : v4a, static_cast<uint16_t>(1025 + c),
                         smtp_port, "-", is6);
        }
        // Single-host rule (the rdp rule, 3389): the best handling priority takes all.
        const ClassRule& rdp = rule(Traffic::rdp);
        for (uint32_t c = 0; c < 40; ++c, ++ci) {
            const bool is6 = c % 4 == 1;
            const std::string src = is6 ? v6_client(6000 + c) : v4_client(6000 + c);
            tcp_flow("single_rdp", name(Traffic::rdp), host(rdp.best), ci, src, is6 ? v6 : v4a,
                     static_cast<uint16_t>(52000 + c), rdp.port, "-", is6);
        }
        // A rule for one VIP beats the "all" rule: VIP B port 80 is a single
        // rule, while port 80 on the other VIPs is the multiple web rule.
        const ClassRule& override_vip = rule(Traffic::override_vip);
        for (uint32_t c = 0; c < 30; ++c, ++ci) {
            const std::string src = v4_client(6100 + c);
            tcp_flow("vip_specific_single", name(Traffic::override_vip), host(override_vip.best), ci, src, v4b,
                     static_cast<uint16_t>(53000 + c), override_vip.port, "-", false);
        }
        // Weighted multiple rule (VIP A 8443, both; weights 50/25/25 in tests/replay).
        const std::string weighted = name(Traffic::weighted);
        const ClassRule& weighted_rule = rule(Traffic::weighted);
        const std::string weighted_vip = weighted_rule.vip.to_string();
        for (uint32_t c = 0; c < 500; ++c, ++ci) {
            const std::string src = v4_client(7000 + c);
            const uint16_t sport = static_cast<uint16_t>(10000 + c * 3);
            if (c % 2)
                udp_one("weighted_multi", weighted, "one", ci, src, weighted_vip, sport, weighted_rule.port,
                        weighted + ":" + src + ":" + std::to_string(sport), false, 16);
            else
                tcp_flow("weighted_multi", weighted, "one", ci, src, weighted_vip, sport, weighted_rule.port,
                         weighted + ":" + src + ":" + std::to_string(sport), false);
        }
        // VIP traffic matching no rule: the default host takes it.
        for (uint32_t c = 0; c < 40; ++c, ++ci) {
            const bool is6 = c % 2 == 1;
            const std::string src = is6 ? v6_client(8000 + c) : v4_client(8000 + c);
            if (c % 4 < 2)
                tcp_flow("vip_no_rule", "-", host(sc_.default_host), ci, src, is6 ? v6 : v4a,
                         static_cast<uint16_t>(54000 + c), nlbd::tools::kNoRuleTcpPort, "-", is6);
            else
                udp_one("vip_no_rule", "-", host(sc_.default_host), ci, src, is6 ? v6 : v4a,
                        static_cast<uint16_t>(54000 + c), nlbd::tools::kNoRuleUdpPort, "-", is6, 24);
        }
        // Not for a VIP: every host passes it to its local port.
        for (uint32_t c = 0; c < 60; ++c, ++ci) {
            const bool is6 = c % 3 == 0;
            const std::string src = is6 ? v6_client(9000 + c) : v4_client(9000 + c);
            const std::string dst = is6 ? nlbd::tools::kNonVip6 : nlbd::tools::kNonVip4[c % 3];
            char dmac[18];
            std::snprintf(dmac, sizeof dmac, "02:00:00:aa:00:%02x", 1 + c % 3);
            PacketBuilder b = base(ci, sc_.mode == nlbd::ClusterMode::multicast ? dmac : cluster_mac_);
            if (is6) b.ipv6(src, dst);
            else b.ipv4(src, dst).ipv4_id(next_id());
            if (c % 2) b.tcp(static_cast<uint16_t>(22000 + c), 22, tb::kSyn, 5000 + c).eth_pad(60);
            else b.udp(static_cast<uint16_t>(22000 + c), 161).payload(30);
            stream({{b.build(), "non_vip", "-", "-", "all", src + " -> dedicated " + dst}});
        }
        {  // LLDP (not IP): passed unfiltered.
            PacketBuilder b = base(ci++, "01:80:c2:00:00:0e");
            b.ethertype(0x88cc).payload(46);
            stream({{b.build(), "non_ip_l2", "-", "-", "all", "LLDP"}});
        }
        // ICMP echo to a VIP: one host, chosen by source IP.
        for (uint32_t c = 0; c < 60; ++c, ++ci) {
            const bool is6 = c % 3 == 0;
            const std::string src = is6 ? v6_client(9500 + c) : v4_client(9500 + c);
            std::vector<Item> s;
            for (uint16_t seq = 1; seq <= 2; ++seq) {
                PacketBuilder b = base(ci);
                if (is6) b.ipv6(src, v6);
                else b.ipv4(src, v4a).ipv4_id(next_id());
                b.icmp_echo(static_cast<uint16_t>(0x4000 + c), seq).payload(56);
                s.push_back({b.build(), is6 ? "icmp_echo_v6" : "icmp_echo_v4", "-", "echo:" + src, "one",
                             "echo request " + src + " seq " + std::to_string(seq)});
            }
            stream(std::move(s));
        }
        // ICMP errors about a multiple-rule flow go to the host that owns the
        // flow (path MTU discovery): same group as the flow (the web rule).
        for (uint32_t c = 0; c < 30; ++c) {
            const bool is6 = c % 3 == 1;
            // One of the web flows above (its first source port).
            const uint32_t client = is6 ? (c * 9) % 150 : c * 9;
            const std::string cl = is6 ? v6_client(client) : v4_client(client);
            const uint16_t cport = static_cast<uint16_t>(is6 ? 30000 + client * 5 : 20000 + client * 7);
            PacketBuilder inner;  // the VIP's segment that was too big, as the router saw it
            if (is6) inner.ipv6(v6, cl);
            else inner.ipv4(v4a, cl).ipv4_id(static_cast<uint16_t>(0x7000 + c)).df();
            inner.tcp(web_port, cport, tb::kAck | tb::kPsh, 9000 + c, 1).payload(1400);
            const Bytes quoted = inner.build_l3();
            const std::string router = is6 ? "2001:db8:ff::1" : "198.18.250.1";
            PacketBuilder b = base(1000000 + c);
            // ICMPv4 quotes the IP header + 8 bytes (RFC 792); ICMPv6 as much
            // as fits (here 120 bytes).
            if (is6) b.ipv6(router, v6).icmpv6_packet_too_big(1280, Bytes(quoted.begin(), quoted.begin() + 120));
            else b.ipv4(router, v4a).ipv4_id(next_id()).icmp_frag_needed(1400, Bytes(quoted.begin(), quoted.begin() + 28));
            stream({{b.build(), is6 ? "icmp_error_v6" : "icmp_error_v4", web,
                     web + ":" + cl + ":" + std::to_string(cport), "one",
                     std::string(is6 ? "packet too big" : "frag needed") + " about " + cl + ":" +
                         std::to_string(cport)}});
        }
        // ARP / neighbour solicitation. For a VIP: one reply from the default
        // host, the request itself is not delivered. Otherwise: passed to all.
        auto arp = [&](const std::string& cls, const std::string& sender, const std::string& target,
                       const std::string& expect) {
            PacketBuilder b = base(ci);
            char smac[18];
            std::snprintf(smac, sizeof smac, "02:00:%02x:%02x:%02x:%02x", (ci >> 24) & 0xff, (ci >> 16) & 0xff,
                          (ci >> 8) & 0xff, ci & 0xff);
            ++ci;
            b.eth(smac, "ff:ff:ff:ff:ff:ff").arp_request(smac, sender, target).eth_pad(60);
            stream({{b.build(), cls, "-", "-", expect, "who-has " + target + " tell " + sender}});
        };
        arp("arp_vip", "198.18.200.1", v4a, "reply");
        arp("arp_vip", "198.18.200.2", v4b, "reply");
        arp("arp_non_vip", "198.18.200.3", nlbd::tools::kNonVip4[1], "all");
        auto ns = [&](const std::string& cls, const std::string& sender, const std::string& target,
                      const std::string& expect) {
            char smac[18];
            std::snprintf(smac, sizeof smac, "02:00:%02x:%02x:%02x:%02x", (ci >> 24) & 0xff, (ci >> 16) & 0xff,
                          (ci >> 8) & 0xff, ci & 0xff);
            ++ci;
            const auto t = tb::ip(target);
            char snm[64], dmac[18];
            std::snprintf(snm, sizeof snm, "ff02::1:ff%02x:%02x%02x", t.b[13], t.b[14], t.b[15]);
            std::snprintf(dmac, sizeof dmac, "33:33:ff:%02x:%02x:%02x", t.b[13], t.b[14], t.b[15]);
            PacketBuilder b;
            b.eth(smac, dmac);
            if (opt_.vlan >= 0) b.vlan(static_cast<uint16_t>(opt_.vlan));
            b.ipv6(sender, snm).nd_solicit(target, smac);
            stream({{b.build(), cls, "-", "-", expect, "neighbour solicitation for " + target + " from " + sender}});
        };
        ns("nd_vip", "2001:db8:100::99", v6, "reply");
        ns("nd_non_vip", "2001:db8:100::98", nlbd::tools::kNonVip6, "all");

        // Malformed frames, all sent to the VIP: counted, dropped by every host.
        // notes carry the parse error every host must count it under; their
        // ports do not matter (parsing fails before any rule is looked up).
        auto bad = [&](const std::string& what, const std::string& reason, Bytes f) {
            stream({{std::move(f), "malformed", "-", "-", "none", "parse_error=" + reason + " " + what}});
        };
        {
            Bytes f = base(ci++).ipv4(v4_client(9900), v4a).ipv4_id(next_id()).tcp(1111, 80, tb::kSyn).build();
            f.resize(f.size() - 30);  // cut inside the IPv4 header
            bad("truncated inside the IPv4 header", "truncated_ipv4", f);
        }
        {
            Bytes f = base(ci++).ipv4(v4_client(9901), v4a).ipv4_id(next_id()).tcp(1112, 80, tb::kSyn).build();
            const size_t l3 = tb::l3_offset(f);
            f[l3] = 0x44;  // IHL 4 = 16 bytes < 20
            bad("bad IHL (4)", "bad_ipv4_ihl", f);
        }
        {
            Bytes f = base(ci++).ipv4(v4_client(9902), v4a).ipv4_id(next_id()).tcp(1113, 80, tb::kSyn).build();
            const size_t l3 = tb::l3_offset(f);
            f[l3] = 0x55;  // version 5
            bad("IPv4 EtherType with version 5", "bad_ipv4_version", f);
        }
        {
            Bytes f = base(ci++).ipv4(v4_client(9903), v4a).ipv4_id(next_id()).ip_length(400).tcp(1114, 80, tb::kSyn).build();
            bad("IPv4 total length 400 beyond the frame", "bad_ipv4_total_length", f);
        }
        {
            Bytes f = base(ci++).ipv6(v6_client(9904), v6).ip_length(900).udp(1115, 53).payload(20).build();
            bad("IPv6 payload length 900 beyond the frame", "bad_ipv6_payload_length", f);
        }
        {
            Bytes f = base(ci++).ipv4(v4_client(9905), v4a).ipv4_id(next_id()).l4_raw(tb::kProtoTcp, Bytes(10, 0x11)).build();
            bad("TCP header cut to 10 bytes", "truncated_tcp", f);
        }
        {
            Bytes f = base(ci++).ipv4(v4_client(9906), v4a).ipv4_id(next_id()).tcp(1116, 80, tb::kSyn).build();
            // 13 bytes: inside the EtherType; with a tag, 15 bytes: inside the tag.
            f.resize(opt_.vlan >= 0 ? 15 : 13);
            bad(opt_.vlan >= 0 ? "frame cut inside the VLAN tag" : "frame cut inside the Ethernet header",
                opt_.vlan >= 0 ? "truncated_vlan" : "truncated_ethernet", f);
        }
    }

    // Interleaves the streams (each keeps its internal order) and writes files.
    bool write() {
        std::vector<Item> out;
        std::vector<size_t> next(streams_.size(), 0);
        std::vector<size_t> live;
        for (size_t i = 0; i < streams_.size(); ++i)
            if (!streams_[i].empty()) live.push_back(i);
        while (!live.empty()) {
            const size_t k = rng_.below(static_cast<uint32_t>(live.size()));
            const size_t s = live[k];
            out.push_back(std::move(streams_[s][next[s]++]));
            if (next[s] == streams_[s].size()) {
                live[k] = live.back();
                live.pop_back();
            }
        }
        std::unordered_set<std::string> seen;
        for (size_t i = 0; i < out.size(); ++i)
            if (!seen.emplace(out[i].frame.begin(), out[i].frame.end()).second) {
                std::fprintf(stderr, "nlbd-pcapgen: frame %zu (%s, %s) is not unique\n", i, out[i].cls.c_str(),
                             out[i].notes.c_str());
                return false;
            }

        tb::PcapWriter in(opt_.out + "/in.pcap");
        for (const auto& it : out) in.write(it.frame);
        tb::PcapWriter empty(opt_.out + "/empty.pcap");
        std::ofstream m(opt_.out + "/manifest.tsv");
        m << "#nlbd-replay-manifest v1 seed " << opt_.seed << "\n";
        m << "#meta mode " << nlbd::name_of(sc_.mode) << "\n";
        m << "#meta members ";
        for (size_t i = 0; i < sc_.members.size(); ++i) m << (i ? "," : "") << int{sc_.members[i]};
        m << "\n";
        for (const nlbd::IpAddr& v : sc_.vips) m << "#meta vip " << v.to_string() << "\n";
        if (opt_.vlan >= 0) m << "#meta vlan " << opt_.vlan << "\n";
        // Multiple-host rules: each member's weight as nlbd uses it ("equal" = 50).
        for (size_t t = 0; t < nlbd::tools::kTrafficCount; ++t) {
            const ClassRule& r = sc_.rule(static_cast<Traffic>(t));
            if (r.rule.mode != nlbd::FilterMode::multiple) continue;
            m << "#balance " << nlbd::tools::traffic_name(static_cast<Traffic>(t)) << ' ';
            for (auto it = r.weights.begin(); it != r.weights.end(); ++it)
                m << (it == r.weights.begin() ? "" : ",") << int{it->first} << ':' << int{it->second};
            m << "\n";
        }
        m << "index\tclass\trule\tgroups\texpect\tnotes\n";
        for (size_t i = 0; i < out.size(); ++i) {
            const auto& it = out[i];
            m << i << '\t' << it.cls << '\t' << it.rule << '\t' << (it.groups.empty() ? "-" : it.groups) << '\t'
              << it.expect << '\t' << it.notes << '\n';
        }
        const bool ok = in.close() && empty.close() && static_cast<bool>(m.flush());
        if (ok)
            std::printf("nlbd-pcapgen: %zu frames -> %s/in.pcap, manifest.tsv (cluster of %s: host1..%zu.toml)\n",
                        out.size(), opt_.out.c_str(), sc_.file.c_str(), sc_.host_files.size());
        return ok;
    }

private:
    Options opt_;
    const Scenario& sc_;
    Rng rng_;
    std::string cluster_mac_;
    uint16_t ip_id_ = 1;
    uint32_t flows_ = 0;
    std::vector<std::vector<Item>> streams_;
};

constexpr const char* kUsage =
    "usage: nlbd-pcapgen --config FILE --out DIR [--wire-in TEXT] [--vlan VID] [--seed N]\n"
    "Writes a replay scenario's capture (wire input), its expected verdicts and each host's config into DIR.\n"
    "  --config FILE   the scenario's cluster.toml.in (tests/replay/README.md): the cluster the traffic is\n"
    "                  for. Filled in for hosts 1, 2, 3 (DIR/hostH.toml) and loaded as nlbd loads it; the\n"
    "                  VIPs, mode, members and each traffic class's port rule (ports, best host, weights)\n"
    "                  come from it. A class that finds no rule of its kind is an error (exit 1)\n"
    "  --out DIR       output directory (it must exist)\n"
    "  --wire-in TEXT  what @IN@ stands for (default DIR/in.pcap)\n"
    "  --vlan VID      tag every frame with 802.1Q VLAN VID (0..4094)\n"
    "  --seed N        random seed of the generated flows\n"
    "  -h, --help      this text\n";

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has = i + 1 < argc;
        if (a == "-h" || a == "--help") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (a == "--out" && has) opt.out = argv[++i];
        else if (a == "--config" && has) opt.config = argv[++i];
        else if (a == "--wire-in" && has) opt.wire_in = argv[++i];
        else if (a == "--vlan" && has) opt.vlan = std::stoi(argv[++i]);
        else if (a == "--seed" && has) opt.seed = static_cast<uint32_t>(std::stoul(argv[++i]));
        else {
            std::fputs(kUsage, stderr);
            return 2;
        }
    }
    if (opt.out.empty() || opt.config.empty() || opt.vlan > 4094) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    Scenario sc;
    try {
        sc = nlbd::tools::load_scenario(
            opt.config, {opt.wire_in.empty() ? opt.out + "/in.pcap" : opt.wire_in, opt.out + "/empty.pcap", opt.out});
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nlbd-pcapgen: %s\n", e.what());
        return 1;
    }
    Generator g(opt, sc);
    g.generate();
    return g.write() ? 0 : 1;
}
