// Frame parser (see include/nlbd/core/parse.hpp for the contract).
//
// Invariants kept throughout:
//  - every read goes through a bounds check against `end`, where `end` is
//    frame.size() for L2 and the trusted IP length (l3_offset + l3_length,
//    itself <= frame.size()) from L3 on; trailing Ethernet padding past the IP
//    length is never read;
//  - the first problem found decides the ParseError; nothing after it is read;
//  - no allocation, no exceptions, no system calls (packet path).
//
// Fragment policy (RFC 1858 / RFC 7112 / RFC 6946):
//  - IPv4: MF set or offset != 0 is a fragment. Offset 0 is the first fragment
//    (it carries the transport header); a first fragment that does not hold the
//    whole TCP header (with options) or the UDP/ICMP header is tiny_fragment,
//    and so is a TCP fragment at offset 8 (it could overwrite the TCP flags).
//  - IPv6: a Fragment header with offset 0 and M=0 is an atomic fragment and is
//    NOT a fragment. In a first fragment the rest of the header chain and the
//    transport header must be present, else tiny_fragment (RFC 7112).
//  - offset + IP length past 65535 (reassembly would overflow) is
//    bad_fragment_offset.
//  - Non-first fragments get no L4 parse: l4_offset = 0, no kHasPorts.

#include "nlbd/core/parse.hpp"

#include <bit>
#include <cstring>

namespace nlbd::core {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherArp = 0x0806;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEtherVlan = 0x8100;
constexpr uint16_t kEtherQinQ = 0x88a8;
constexpr uint16_t kEtherVlanOld = 0x9100;

constexpr uint8_t kIpHopByHop = 0;
constexpr uint8_t kIpIcmp = 1;
constexpr uint8_t kIpTcp = 6;
constexpr uint8_t kIpUdp = 17;
constexpr uint8_t kIpRouting = 43;
constexpr uint8_t kIpFragment = 44;
constexpr uint8_t kIpAh = 51;
constexpr uint8_t kIpIcmpv6 = 58;
constexpr uint8_t kIpNoNext = 59;
constexpr uint8_t kIpDestOpts = 60;

constexpr unsigned kEthHeader = 14;
constexpr unsigned kVlanTag = 4;
constexpr unsigned kArpIpv4Size = 28;
constexpr unsigned kArpFixed = 8;
constexpr unsigned kIpv4MinHeader = 20;
constexpr unsigned kIpv6Header = 40;
constexpr unsigned kTcpMinHeader = 20;
constexpr unsigned kUdpHeader = 8;
constexpr unsigned kIcmpHeader = 8;
constexpr unsigned kNdSolicitMin = 24;  // ICMPv6 header + target address
constexpr unsigned kPortBytes = 4;      // sport + dport at the start of TCP/UDP
constexpr uint32_t kMaxIpDatagram = 65535;

inline uint16_t be16(const uint8_t* p) noexcept {
    return static_cast<uint16_t>((static_cast<unsigned>(p[0]) << 8) | p[1]);
}
inline uint32_t be32(const uint8_t* p) noexcept {
    return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
           (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

// Address setters that write the whole IpAddr as 64-bit words in place.
// IpAddr::from_v4 builds the address on the stack (an 8-byte, a 4-byte and
// a 4-byte store) and copies it as one 16-byte load: the load cannot be
// forwarded from the narrower stores and stalls; perf attributed half of
// parse_frame's samples to that one copy.
inline void set_v4(IpAddr& a, const uint8_t* p) noexcept {
    uint32_t v;
    std::memcpy(&v, p, 4);
    const uint64_t w[2] = {v, 0};  // little-endian: bytes p[0..3], then 12 zero bytes
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(a.b.data(), w, 16);
    } else {
        std::memset(a.b.data(), 0, 16);
        std::memcpy(a.b.data(), p, 4);
    }
    a.family = Family::v4;
}
inline void set_v6(IpAddr& a, const uint8_t* p) noexcept {
    std::memcpy(a.b.data(), p, 16);
    a.family = Family::v6;
}

inline bool is_ipv6_ext(uint8_t nh) noexcept {
    return nh == kIpHopByHop || nh == kIpRouting || nh == kIpDestOpts || nh == kIpFragment ||
           nh == kIpAh;
}

// Length in bytes of the generic extension header at p (2 bytes readable).
inline uint32_t ipv6_ext_len(uint8_t nh, const uint8_t* p) noexcept {
    if (nh == kIpAh) return (static_cast<uint32_t>(p[1]) + 2) * 4;
    return (static_cast<uint32_t>(p[1]) + 1) * 8;
}

inline bool is_icmpv4_error(uint8_t type) noexcept {
    // destination unreachable, source quench, redirect, time exceeded, parameter problem
    return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}
inline bool is_icmpv6_error(uint8_t type) noexcept {
    // destination unreachable, packet too big, time exceeded, parameter problem
    return type >= 1 && type <= 4;
}

// Inner flow quoted by an ICMP error, as sent by the cluster (src = VIP).
struct InnerFlow {
    IpAddr src;
    IpAddr dst;
    uint16_t sport = 0;
    uint16_t dport = 0;
    uint8_t proto = 0;
    bool has_ports = false;
};

// Parses the IP header (+ 4 bytes of ports) quoted inside an ICMP error.
// [p, end) is what the error carries; the quote is normally truncated, so the
// inner length fields are not checked against it, only the headers needed to
// reach the ports are. Returns false when the quote is unusable.
[[gnu::cold]] bool parse_icmp_inner(const uint8_t* p, const uint8_t* end, Family family,
                                    InnerFlow& in) noexcept {
    const size_t avail = static_cast<size_t>(end - p);
    const uint8_t* l4 = nullptr;
    bool later_fragment = false;
    if (family == Family::v4) {
        if (avail < kIpv4MinHeader || (p[0] >> 4) != 4) return false;
        const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
        if (ihl < kIpv4MinHeader || ihl > avail) return false;
        in.src = IpAddr::from_v4(p + 12);
        in.dst = IpAddr::from_v4(p + 16);
        in.proto = p[9];
        later_fragment = (be16(p + 6) & 0x1fff) != 0;
        l4 = p + ihl;
    } else {
        if (avail < kIpv6Header || (p[0] >> 4) != 6) return false;
        in.src = IpAddr::from_v6(p + 8);
        in.dst = IpAddr::from_v6(p + 24);
        uint8_t nh = p[6];
        const uint8_t* q = p + kIpv6Header;
        unsigned count = 0;
        while (is_ipv6_ext(nh)) {
            if (++count > kMaxIpv6ExtHeaders) return false;
            if (end - q < 2) return false;
            const uint32_t len = nh == kIpFragment ? 8u : ipv6_ext_len(nh, q);
            if (static_cast<size_t>(end - q) < len) return false;
            if (nh == kIpFragment && (be16(q + 2) & 0xfff8) != 0) later_fragment = true;
            nh = q[0];
            q += len;
            if (later_fragment) break;
        }
        in.proto = nh;
        l4 = q;
    }
    if ((in.proto == kIpTcp || in.proto == kIpUdp) && !later_fragment) {
        if (static_cast<size_t>(end - l4) < kPortBytes) return false;
        in.sport = be16(l4);
        in.dport = be16(l4 + 2);
        in.has_ports = true;
    }
    return true;
}

// ICMP / ICMPv6 after the IP header (echo, errors with their quoted flow,
// neighbour solicitation). Out of line: rare next to TCP/UDP.
[[gnu::noinline]] ParseError parse_icmp(const uint8_t* p, const uint8_t* end, Family family,
                                        bool first_fragment, uint8_t hop_limit,
                                        ParsedFrame& out) noexcept {
    FlowKey& key = out.key;
    const size_t avail = static_cast<size_t>(end - p);
    const bool v6 = key.proto == kIpIcmpv6;
    if (v6 != (family == Family::v6)) return ParseError::none;  // wrong family: opaque
    if (avail < kIcmpHeader)
        return first_fragment ? ParseError::tiny_fragment : ParseError::truncated_icmp;
    const uint8_t type = p[0];
    key.icmp_type = type;
    if (type == (v6 ? 128 : 8)) {
        key.flags |= kIcmpEcho;
        return ParseError::none;
    }
    if (v6 ? is_icmpv6_error(type) : is_icmpv4_error(type)) {
        InnerFlow in;
        if (!parse_icmp_inner(p + kIcmpHeader, end, family, in))
            return ParseError::truncated_icmp_inner;
        // The quoted packet was sent by the cluster; seen from the client
        // the flow runs the other way.
        key.src = in.dst;
        key.dst = in.src;
        key.sport = in.dport;
        key.dport = in.sport;
        key.proto = in.proto;
        key.flags |= kIcmpError;
        if (in.has_ports) key.flags |= kHasPorts;
        return ParseError::none;
    }
    if (v6 && type == 135) {
        // RFC 4861 7.1.1 validation: hop limit 255, code 0, >= 24 bytes,
        // unicast target, options well formed.
        if (avail < kNdSolicitMin || p[1] != 0 || hop_limit != 255) return ParseError::bad_nd;
        const uint8_t* target = p + 8;
        if (target[0] == 0xff) return ParseError::bad_nd;
        for (const uint8_t* o = p + kNdSolicitMin; o < end;) {
            if (end - o < 2 || o[1] == 0) return ParseError::bad_nd;
            const size_t olen = static_cast<size_t>(o[1]) * 8;
            if (static_cast<size_t>(end - o) < olen) return ParseError::bad_nd;
            o += olen;
        }
        out.kind = FrameKind::nd_solicit;
        key.dst = IpAddr::from_v6(target);
        return ParseError::none;
    }
    return ParseError::none;
}

// Parses the transport header at [p, end). `first_fragment`: the datagram is
// fragmented and this is its first piece, so truncation means tiny_fragment
// and the UDP length refers to the whole datagram.
[[gnu::always_inline]] inline ParseError parse_l4(const uint8_t* frame, const uint8_t* p,
                                                  const uint8_t* end, Family family,
                                                  bool first_fragment, uint8_t hop_limit,
                                                  ParsedFrame& out) noexcept {
    FlowKey& key = out.key;
    const size_t avail = static_cast<size_t>(end - p);
    out.l4_offset = static_cast<uint16_t>(p - frame);
    switch (key.proto) {
    case kIpTcp: {
        if (avail < kTcpMinHeader)
            return first_fragment ? ParseError::tiny_fragment : ParseError::truncated_tcp;
        const size_t doff = static_cast<size_t>(p[12] >> 4) * 4;
        if (doff < kTcpMinHeader) return ParseError::bad_tcp_offset;
        if (doff > avail)
            return first_fragment ? ParseError::tiny_fragment : ParseError::bad_tcp_offset;
        key.sport = be16(p);
        key.dport = be16(p + 2);
        const uint8_t f = p[13];
        uint16_t flags = kHasPorts;
        if ((f & 0x02) && !(f & 0x10)) flags |= kTcpSyn;
        if (f & 0x01) flags |= kTcpFin;
        if (f & 0x04) flags |= kTcpRst;
        if (f & 0x10) flags |= kTcpAck;
        key.flags |= flags;
        return ParseError::none;
    }
    case kIpUdp: {
        if (avail < kUdpHeader)
            return first_fragment ? ParseError::tiny_fragment : ParseError::truncated_udp;
        const size_t ulen = be16(p + 4);
        // In a first fragment the UDP length covers the reassembled datagram.
        if (ulen < kUdpHeader || (!first_fragment && ulen > avail))
            return ParseError::bad_udp_length;
        key.sport = be16(p);
        key.dport = be16(p + 2);
        key.flags |= kHasPorts;
        return ParseError::none;
    }
    case kIpIcmp:
    case kIpIcmpv6: return parse_icmp(p, end, family, first_fragment, hop_limit, out);
    default: return ParseError::none;  // other protocols: no ports
    }
}

ParseError parse_arp(const uint8_t* frame, size_t off, size_t size, ParsedFrame& out) noexcept {
    if (size - off < kArpFixed) return ParseError::truncated_arp;
    const uint8_t* p = frame + off;
    if (be16(p) != 1 || be16(p + 2) != kEtherIpv4 || p[4] != 6 || p[5] != 4)
        return ParseError::bad_arp;
    if (size - off < kArpIpv4Size) return ParseError::truncated_arp;
    out.kind = FrameKind::arp;
    out.l3_length = kArpIpv4Size;
    const uint16_t op = be16(p + 6);
    if (op == 1) out.key.flags |= kArpRequest;
    else if (op == 2) out.key.flags |= kArpReply;
    set_v4(out.key.src, p + 14);
    set_v4(out.key.dst, p + 24);
    return ParseError::none;
}

ParseError parse_ipv4(const uint8_t* frame, size_t off, size_t size, ParsedFrame& out) noexcept {
    const size_t avail = size - off;
    if (avail < kIpv4MinHeader) return ParseError::truncated_ipv4;
    const uint8_t* p = frame + off;
    if ((p[0] >> 4) != 4) return ParseError::bad_ipv4_version;
    const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
    if (ihl < kIpv4MinHeader) return ParseError::bad_ipv4_ihl;
    if (ihl > avail) return ParseError::truncated_ipv4;
    const size_t total = be16(p + 2);
    if (total < ihl || total > avail) return ParseError::bad_ipv4_total_length;
    // Options: EOL ends the list, NOP is one byte, every other option has a
    // length byte >= 2 that must stay inside the header.
    for (size_t o = kIpv4MinHeader; o < ihl;) {
        const uint8_t type = p[o];
        if (type == 0) break;
        if (type == 1) {
            ++o;
            continue;
        }
        if (ihl - o < 2 || p[o + 1] < 2 || p[o + 1] > ihl - o) return ParseError::bad_ipv4_options;
        o += p[o + 1];
    }

    FlowKey& key = out.key;
    out.kind = FrameKind::ipv4;
    out.l3_length = static_cast<uint16_t>(total);
    set_v4(key.src, p + 12);
    set_v4(key.dst, p + 16);
    key.proto = p[9];
    key.frag_id = be16(p + 4);

    const uint16_t ff = be16(p + 6);
    const bool more = (ff & 0x2000) != 0;
    const size_t frag_off = static_cast<size_t>(ff & 0x1fff) * 8;
    bool first_fragment = false;
    if (more || frag_off != 0) {
        if (frag_off + total > kMaxIpDatagram) return ParseError::bad_fragment_offset;
        out.frag_offset = static_cast<uint16_t>(frag_off);
        key.flags |= kFragment;
        if (frag_off != 0) {
            // RFC 1858: a TCP fragment at offset 8 can rewrite the TCP flags.
            if (key.proto == kIpTcp && frag_off == 8) return ParseError::tiny_fragment;
            return ParseError::none;  // later fragment: no transport header
        }
        key.flags |= kFirstFragment;
        first_fragment = true;
        if (total == ihl) return ParseError::tiny_fragment;
    }
    return parse_l4(frame, p + ihl, p + total, Family::v4, first_fragment, p[8], out);
}

ParseError parse_ipv6(const uint8_t* frame, size_t off, size_t size, ParsedFrame& out) noexcept {
    const size_t avail = size - off;
    if (avail < kIpv6Header) return ParseError::truncated_ipv6;
    const uint8_t* p = frame + off;
    if ((p[0] >> 4) != 6) return ParseError::bad_ipv6_version;
    const size_t total = kIpv6Header + be16(p + 4);
    // l3_length is 16 bits: a payload that large cannot come in one frame anyway.
    if (total > avail || total > kMaxIpDatagram) return ParseError::bad_ipv6_payload_length;

    FlowKey& key = out.key;
    out.kind = FrameKind::ipv6;
    out.l3_length = static_cast<uint16_t>(total);
    set_v6(key.src, p + 8);
    set_v6(key.dst, p + 24);

    const uint8_t* const end = p + total;
    const uint8_t* q = p + kIpv6Header;
    uint8_t nh = p[6];
    unsigned count = 0;
    bool seen_fragment = false;
    bool first_fragment = false;
    while (is_ipv6_ext(nh)) {
        if (++count > kMaxIpv6ExtHeaders) return ParseError::ipv6_ext_chain_too_long;
        // Hop-by-Hop must come first (RFC 8200 4.1); a Fragment header once.
        if ((nh == kIpHopByHop && count != 1) || (nh == kIpFragment && seen_fragment))
            return ParseError::bad_ipv6_ext_order;
        const size_t left = static_cast<size_t>(end - q);
        const ParseError trunc =
            first_fragment ? ParseError::tiny_fragment : ParseError::truncated_ipv6_ext;
        if (left < 2) return trunc;
        const uint32_t len = nh == kIpFragment ? 8u : ipv6_ext_len(nh, q);
        if (left < len) return trunc;
        if (nh == kIpFragment) {
            seen_fragment = true;
            const uint16_t ofm = be16(q + 2);
            const size_t frag_off = ofm & 0xfff8;
            const bool more = (ofm & 1) != 0;
            if (frag_off != 0 || more) {  // offset 0, M=0: atomic, not a fragment
                // Reassembled payload = unfragmentable headers + offset + this piece.
                const size_t unfrag = static_cast<size_t>(q - (p + kIpv6Header));
                const size_t frag_payload = static_cast<size_t>(end - (q + 8));
                if (unfrag + frag_off + frag_payload > kMaxIpDatagram)
                    return ParseError::bad_fragment_offset;
                key.flags |= kFragment;
                key.frag_id = be32(q + 4);
                out.frag_offset = static_cast<uint16_t>(frag_off);
                if (frag_off != 0) {
                    key.proto = q[0];  // as declared; the rest is not parsed
                    return ParseError::none;
                }
                key.flags |= kFirstFragment;
                first_fragment = true;
            }
        }
        nh = q[0];
        q += len;
    }
    key.proto = nh;
    if (nh == kIpNoNext) return ParseError::none;
    if (first_fragment && q == end) return ParseError::tiny_fragment;
    return parse_l4(frame, q, end, Family::v6, first_fragment, p[7], out);
}

}  // namespace

ParseError parse_frame(std::span<const uint8_t> frame, ParsedFrame& out) noexcept {
    out = ParsedFrame{};
    const uint8_t* const f = frame.data();
    const size_t size = frame.size();
    if (size < kEthHeader) return ParseError::truncated_ethernet;
    std::memcpy(out.eth_dst.b.data(), f, 6);
    std::memcpy(out.eth_src.b.data(), f + 6, 6);
    uint16_t type = be16(f + 12);
    size_t off = kEthHeader;
    while (type == kEtherVlan || type == kEtherQinQ || type == kEtherVlanOld) {
        if (out.vlan_count == kMaxVlanTags) return ParseError::too_many_vlans;
        if (size - off < kVlanTag) return ParseError::truncated_vlan;
        type = be16(f + off + 2);
        off += kVlanTag;
        ++out.vlan_count;
    }
    out.l3_offset = static_cast<uint16_t>(off);
    switch (type) {
    case kEtherArp: return parse_arp(f, off, size, out);
    case kEtherIpv4: return parse_ipv4(f, off, size, out);
    case kEtherIpv6: return parse_ipv6(f, off, size, out);
    default: return ParseError::none;  // other_l2
    }
}

}  // namespace nlbd::core
