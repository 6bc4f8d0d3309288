#pragma once
// Answers to address resolution for a VIP (SPEC §2: "ARP requests (and IPv6
// neighbour solicitations) for a VIP are answered with the cluster MAC by
// exactly one node"). Pure frame rewriting, no DPDK: the data plane rewrites
// the request's own buffer into the reply and sends it back on the wire port.
//
// Contract for both builders:
//  - `buf` is the writable storage that holds the frame: buf[0, len) is the
//    received frame, buf.size() the capacity the reply may grow into;
//  - `f` is what parse_frame() returned for buf[0, len);
//  - the Ethernet header and any VLAN tags (bytes before f.l3_offset) are
//    kept, except the two MAC addresses;
//  - they return the length of the reply, or 0 when the frame cannot be
//    answered (not a request, inconsistent offsets, no room): buf may then
//    hold a partly rewritten frame and must be dropped.
// Packet path: no allocation, no exceptions, no system calls.

#include <cstddef>
#include <cstdint>
#include <span>

#include "nlbd/core/parse.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::core {

inline constexpr size_t kArpLength = 28;          // Ethernet/IPv4 ARP body
inline constexpr size_t kIpv6HeaderLength = 40;
inline constexpr size_t kNdAdvertLength = 32;     // NA + target link-layer option

// ARP request (op 1) for a VIP -> ARP reply (op 2): sender = cluster_mac +
// the requested VIP, target = the requester; Ethernet dst = requester's MAC,
// Ethernet src = eth_src. Same length as the request (padding is kept).
size_t build_arp_reply(std::span<uint8_t> buf, size_t len, const ParsedFrame& f,
                       const MacAddr& cluster_mac, const MacAddr& eth_src) noexcept;

// ICMPv6 neighbour solicitation for a VIP -> neighbour advertisement from the
// VIP: hop limit 255, Solicited + Override flags (Solicited clear and sent to
// ff02::1 when the solicitation came from :: for duplicate address
// detection), target link-layer address option = cluster_mac, valid ICMPv6
// checksum. IPv6 extension headers of the request are not repeated.
size_t build_nd_advert(std::span<uint8_t> buf, size_t len, const ParsedFrame& f,
                       const MacAddr& cluster_mac, const MacAddr& eth_src) noexcept;

// The ICMPv6 checksum (RFC 4443 §2.3) of `msg` sent from src to dst; the
// checksum field inside msg must be zero when computing it.
uint16_t icmpv6_checksum(const uint8_t* src16, const uint8_t* dst16,
                         std::span<const uint8_t> msg) noexcept;

}  // namespace nlbd::core
