#pragma once
// Frame parser: Ethernet, 802.1Q/802.1ad, ARP, IPv4 (options, fragments),
// IPv6 (extension header chains, fragments), TCP, UDP, ICMP, ICMPv6.
//
// Contract: parse_frame() reads only frame[0, frame.size()); it never writes,
// allocates, throws or makes a system call. Every length field is checked
// against the real frame length before it is trusted. On error it returns the
// single ParseError that describes the first problem found.

#include <cstdint>
#include <span>

#include "nlbd/core/reasons.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::core {

inline constexpr unsigned kMaxVlanTags = 2;
inline constexpr unsigned kMaxIpv6ExtHeaders = 8;

enum class FrameKind : uint8_t {
    other_l2,       // not IP/ARP (LLDP, STP, unknown EtherType): passed to local
    arp,            // ARP; FlowKey.src = sender IP, FlowKey.dst = target IP
    ipv4,
    ipv6,
    nd_solicit,     // ICMPv6 neighbour solicitation; FlowKey.dst = target address
};

// Flags on FlowKey::flags.
enum FlowFlag : uint16_t {
    kFragment = 1u << 0,        // part of a fragmented datagram (any fragment)
    kFirstFragment = 1u << 1,   // offset 0 with more-fragments set: has L4 header
    kHasPorts = 1u << 2,        // sport/dport are valid (TCP/UDP, or ICMP error inner)
    kIcmpEcho = 1u << 3,        // ICMP/ICMPv6 echo request
    kIcmpError = 1u << 4,       // ICMP error: key holds the inner flow seen from the
                                // client's side (src = client, dst = VIP)
    kTcpSyn = 1u << 5,          // SYN without ACK
    kTcpFin = 1u << 6,
    kTcpRst = 1u << 7,
    kTcpAck = 1u << 8,
    kArpRequest = 1u << 9,      // ARP op 1
    kArpReply = 1u << 10,       // ARP op 2
};

// The flow identity the rest of the pipeline works on. src/dst are the outer
// addresses except for ICMP errors (see kIcmpError). Ports in host order.
struct FlowKey {
    IpAddr src;
    IpAddr dst;
    uint16_t sport = 0;
    uint16_t dport = 0;
    uint8_t proto = 0;        // IPPROTO_TCP/UDP/ICMP/ICMPV6/... (0 for ARP/other)
    uint8_t icmp_type = 0;    // outer ICMP type when proto is ICMP/ICMPv6
    uint16_t flags = 0;
    uint32_t frag_id = 0;     // IPv4 identification or IPv6 fragment identification
};

struct ParsedFrame {
    FrameKind kind = FrameKind::other_l2;
    uint8_t vlan_count = 0;
    uint16_t l3_offset = 0;        // offset of ARP/IPv4/IPv6 header in the frame
    uint16_t l4_offset = 0;        // offset of the transport header (0 if none)
    uint16_t l3_length = 0;        // IP total length as trusted (<= frame - l3_offset)
    uint16_t frag_offset = 0;      // fragment offset in bytes
    MacAddr eth_dst;
    MacAddr eth_src;
    FlowKey key;
};

// Parses one frame. Returns ParseError::none on success and fills *out.
ParseError parse_frame(std::span<const uint8_t> frame, ParsedFrame& out) noexcept;

}  // namespace nlbd::core
