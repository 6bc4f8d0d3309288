#pragma once
// Fluent builder of test frames (Ethernet / VLAN / ARP / IPv4 / IPv6 + extension
// headers / TCP / UDP / ICMP / ICMPv6 / ND) with correct lengths and checksums,
// plus real IPv4 / IPv6 fragmentation helpers.
//
//   auto f = PacketBuilder().eth("02:00:00:00:00:01", "02:bf:0a:00:00:64")
//                .vlan(100).ipv4("10.0.0.1", "192.168.1.100").tcp(40000, 443, kSyn)
//                .payload(64).build();
//
// Test-only, header-only: depends on <vector>/<string>/... and
// nlbd/core/types.hpp (IpAddr::parse lives in src/core/types.cpp, linked via
// core_dep). Invalid arguments (bad address text, wrong family) abort with a
// message: they are bugs in the test, not conditions to handle.
//
// Layer order in build(): Ethernet, VLAN tags (outermost first, in call
// order), then one L3 (ipv4 / ipv6 [+ ipv6_ext...] / arp / raw ethertype),
// then one L4 (tcp / udp / icmp_echo / icmp_error / nd_solicit / l4_raw), then
// the payload. Lengths (IPv4 total length, IPv6 payload length, UDP length)
// and checksums (IPv4 header, TCP/UDP/ICMPv6 with pseudo-header, ICMPv4) are
// computed in build() unless explicitly overridden.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "nlbd/core/types.hpp"

namespace nlbd::testing {

using Bytes = std::vector<uint8_t>;
using Frames = std::vector<Bytes>;

// TCP flag bits (wire values).
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
inline constexpr uint8_t kUrg = 0x20;

// IP protocol / IPv6 next-header numbers.
inline constexpr uint8_t kProtoHopByHop = 0;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoRouting = 43;
inline constexpr uint8_t kProtoFragment = 44;
inline constexpr uint8_t kProtoGre = 47;
inline constexpr uint8_t kProtoEsp = 50;
inline constexpr uint8_t kProtoAh = 51;
inline constexpr uint8_t kProtoIcmpv6 = 58;
inline constexpr uint8_t kProtoNoNext = 59;
inline constexpr uint8_t kProtoDestOpts = 60;

// EtherTypes.
inline constexpr uint16_t kEthIpv4 = 0x0800;
inline constexpr uint16_t kEthArp = 0x0806;
inline constexpr uint16_t kEthIpv6 = 0x86dd;
inline constexpr uint16_t kEthVlan = 0x8100;
inline constexpr uint16_t kEthQinQ = 0x88a8;
inline constexpr uint16_t kEthVlan9100 = 0x9100;

namespace detail {

[[noreturn]] inline void die(const char* what, std::string_view arg) {
    std::fprintf(stderr, "packet_builder: %s: '%.*s'\n", what, static_cast<int>(arg.size()),
                 arg.data());
    std::abort();
}

inline void put16(Bytes& v, size_t at, uint16_t x) {
    v[at] = static_cast<uint8_t>(x >> 8);
    v[at + 1] = static_cast<uint8_t>(x);
}
inline void push16(Bytes& v, uint16_t x) {
    v.push_back(static_cast<uint8_t>(x >> 8));
    v.push_back(static_cast<uint8_t>(x));
}
inline void push32(Bytes& v, uint32_t x) {
    push16(v, static_cast<uint16_t>(x >> 16));
    push16(v, static_cast<uint16_t>(x));
}
inline uint16_t get16(const Bytes& v, size_t at) {
    return static_cast<uint16_t>((v[at] << 8) | v[at + 1]);
}
inline void append(Bytes& v, const uint8_t* p, size_t n) { v.insert(v.end(), p, p + n); }

// One's-complement sum over bytes (big-endian 16-bit words), not folded.
inline uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
    for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
    if (n & 1) acc += static_cast<uint32_t>(p[n - 1] << 8);
    return acc;
}
inline uint16_t fold(uint32_t acc) {
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return static_cast<uint16_t>(~acc & 0xffff);
}

}  // namespace detail

// Parses "02:00:00:00:00:01" or "02-00-00-00-00-01"; aborts on bad text.
inline MacAddr mac(std::string_view text) {
    MacAddr m;
    if (text.size() != 17) detail::die("bad MAC", text);
    for (unsigned i = 0; i < 6; ++i) {
        auto hex = [&](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            detail::die("bad MAC", text);
        };
        if (i > 0 && text[i * 3 - 1] != ':' && text[i * 3 - 1] != '-') detail::die("bad MAC", text);
        m.b[i] = static_cast<uint8_t>(hex(text[i * 3]) * 16 + hex(text[i * 3 + 1]));
    }
    return m;
}

// Parses an IPv4 or IPv6 address; aborts on bad text.
inline IpAddr ip(std::string_view text) {
    auto a = IpAddr::parse(text);
    if (!a) detail::die("bad IP address", text);
    return *a;
}

// Offset of the L3 header (after Ethernet and any 0x8100/0x88a8/0x9100 tags).
inline size_t l3_offset(const Bytes& frame) {
    size_t off = 12;
    while (off + 2 <= frame.size()) {
        uint16_t t = detail::get16(frame, off);
        if (t != kEthVlan && t != kEthQinQ && t != kEthVlan9100) return off + 2;
        off += 4;
    }
    return frame.size();
}

// The frame from its L3 header on (what an ICMP error quotes).
inline Bytes l3_bytes(const Bytes& frame) {
    return Bytes(frame.begin() + static_cast<std::ptrdiff_t>(l3_offset(frame)), frame.end());
}

class PacketBuilder {
public:
    PacketBuilder() {
        eth_src_ = mac("02:00:00:00:00:01");
        eth_dst_ = mac("02:00:00:00:00:02");
    }

    // ---- L2 -------------------------------------------------------------
    PacketBuilder& eth(const MacAddr& src, const MacAddr& dst) {
        eth_src_ = src;
        eth_dst_ = dst;
        eth_set_ = true;
        return *this;
    }
    PacketBuilder& eth(std::string_view src, std::string_view dst) { return eth(mac(src), mac(dst)); }
    // Adds one tag; call twice for QinQ (outer first, e.g. vlan(10, kEthQinQ).vlan(20)).
    PacketBuilder& vlan(uint16_t vid, uint16_t tpid = kEthVlan, uint8_t pcp = 0) {
        vlans_.push_back({tpid, static_cast<uint16_t>((pcp << 13) | (vid & 0x0fff))});
        return *this;
    }
    // A non-IP frame: raw EtherType, payload() becomes its body.
    PacketBuilder& ethertype(uint16_t type) {
        l3_ = L3::raw;
        ethertype_ = type;
        return *this;
    }
    // Pads the finished frame with zeros up to min_len (60 = minimum without FCS).
    PacketBuilder& eth_pad(size_t min_len = 60) {
        pad_to_ = min_len;
        return *this;
    }

    // ---- L3 -------------------------------------------------------------
    PacketBuilder& ipv4(const IpAddr& src, const IpAddr& dst) {
        if (src.family != Family::v4 || dst.family != Family::v4) detail::die("ipv4() needs v4", "");
        l3_ = L3::v4;
        src_ = src;
        dst_ = dst;
        return *this;
    }
    PacketBuilder& ipv4(std::string_view src, std::string_view dst) { return ipv4(ip(src), ip(dst)); }
    PacketBuilder& ipv6(const IpAddr& src, const IpAddr& dst) {
        if (src.family != Family::v6 || dst.family != Family::v6) detail::die("ipv6() needs v6", "");
        l3_ = L3::v6;
        src_ = src;
        dst_ = dst;
        return *this;
    }
    PacketBuilder& ipv6(std::string_view src, std::string_view dst) { return ipv6(ip(src), ip(dst)); }
    // IPv4 identification.
    PacketBuilder& ipv4_id(uint16_t id) {
        ip_id_ = id;
        return *this;
    }
    // IPv4 TTL / IPv6 hop limit.
    PacketBuilder& ttl(uint8_t t) {
        ttl_ = t;
        ttl_set_ = true;
        return *this;
    }
    PacketBuilder& tos(uint8_t t) {
        tos_ = t;
        return *this;
    }
    PacketBuilder& df(bool on = true) {
        df_ = on;
        return *this;
    }
    // Raw IPv4 options (padded with EOL to a multiple of 4; at most 40 bytes).
    PacketBuilder& ipv4_options(std::vector<uint8_t> opts) {
        while (opts.size() % 4) opts.push_back(0);
        if (opts.size() > 40) detail::die("IPv4 options longer than 40 bytes", "");
        ip_opts_ = std::move(opts);
        return *this;
    }
    // Marks this IPv4 packet as a fragment (offset in bytes, multiple of 8).
    PacketBuilder& ipv4_frag(uint16_t offset_bytes, bool more_fragments) {
        frag_off_ = offset_bytes;
        frag_mf_ = more_fragments;
        return *this;
    }
    // Overrides the IPv4 protocol / IPv6 next header written after the headers.
    PacketBuilder& ip_proto(uint8_t proto) {
        proto_override_ = proto;
        proto_override_set_ = true;
        return *this;
    }
    // Overrides the IPv4 total length / IPv6 payload length (for malformed frames).
    PacketBuilder& ip_length(uint16_t len) {
        len_override_ = len;
        len_override_set_ = true;
        return *this;
    }
    // Appends an IPv6 extension header of `kind` (kProtoHopByHop, kProtoRouting,
    // kProtoDestOpts, kProtoAh) with a total size of `len` bytes (multiple of 8,
    // >= 8; for AH a multiple of 4, >= 12). Options are PadN-filled; routing is
    // type 0 with segments left 0. For a fragment header use ipv6_frag().
    PacketBuilder& ipv6_ext(uint8_t kind, size_t len = 8) {
        Bytes h(len, 0);
        if (kind == kProtoAh) {
            if (len < 12 || len % 4) detail::die("bad AH length", "");
            h[1] = static_cast<uint8_t>(len / 4 - 2);
            h[7] = 1;  // SPI
        } else if (kind == kProtoFragment) {
            return ipv6_frag(0, false, 0);
        } else {
            if (len < 8 || len % 8 || len > 2048) detail::die("bad IPv6 ext length", "");
            h[1] = static_cast<uint8_t>(len / 8 - 1);
            if (kind == kProtoHopByHop || kind == kProtoDestOpts) {
                // One PadN option covering bytes 2..len-1.
                h[2] = 1;
                h[3] = static_cast<uint8_t>(len - 4);
            }
        }
        exts_.push_back({kind, std::move(h)});
        return *this;
    }
    // Appends an IPv6 Fragment header (offset in bytes, multiple of 8).
    PacketBuilder& ipv6_frag(uint16_t offset_bytes, bool more_fragments, uint32_t ident) {
        Bytes h(8, 0);
        detail::put16(h, 2, static_cast<uint16_t>((offset_bytes & 0xfff8) | (more_fragments ? 1 : 0)));
        h[4] = static_cast<uint8_t>(ident >> 24);
        h[5] = static_cast<uint8_t>(ident >> 16);
        h[6] = static_cast<uint8_t>(ident >> 8);
        h[7] = static_cast<uint8_t>(ident);
        exts_.push_back({kProtoFragment, std::move(h)});
        return *this;
    }
    // ARP over Ethernet/IPv4. Sets the Ethernet source to sender_mac and, unless
    // eth() was called, the destination to broadcast.
    PacketBuilder& arp_request(const MacAddr& sender_mac, std::string_view sender_ip,
                               std::string_view target_ip) {
        return arp(1, sender_mac, ip(sender_ip), MacAddr{}, ip(target_ip));
    }
    PacketBuilder& arp_request(std::string_view sender_mac, std::string_view sender_ip,
                               std::string_view target_ip) {
        return arp_request(mac(sender_mac), sender_ip, target_ip);
    }
    PacketBuilder& arp_reply(std::string_view sender_mac, std::string_view sender_ip,
                             std::string_view target_mac, std::string_view target_ip) {
        if (!eth_set_) eth_dst_ = mac(target_mac);
        eth_set_ = true;
        return arp(2, mac(sender_mac), ip(sender_ip), mac(target_mac), ip(target_ip));
    }
    PacketBuilder& arp(uint16_t op, const MacAddr& sha, const IpAddr& spa, const MacAddr& tha,
                       const IpAddr& tpa) {
        l3_ = L3::arp;
        arp_op_ = op;
        if (!eth_set_) {
            eth_src_ = sha;
            eth_dst_.b.fill(0xff);
        }
        arp_sha_ = sha;
        arp_tha_ = tha;
        src_ = spa;
        dst_ = tpa;
        return *this;
    }

    // ---- L4 -------------------------------------------------------------
    PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags = kAck, uint32_t seq = 1,
                       uint32_t ack = 0, uint16_t window = 65535) {
        l4_ = L4::tcp;
        sport_ = sport;
        dport_ = dport;
        tcp_flags_ = flags;
        seq_ = seq;
        ack_ = ack;
        window_ = window;
        return *this;
    }
    // Raw TCP options (padded with EOL to a multiple of 4; at most 40 bytes).
    PacketBuilder& tcp_options(std::vector<uint8_t> opts) {
        while (opts.size() % 4) opts.push_back(0);
        if (opts.size() > 40) detail::die("TCP options longer than 40 bytes", "");
        tcp_opts_ = std::move(opts);
        return *this;
    }
    PacketBuilder& udp(uint16_t sport, uint16_t dport) {
        l4_ = L4::udp;
        sport_ = sport;
        dport_ = dport;
        return *this;
    }
    // ICMP echo request (IPv4 type 8, IPv6 type 128), or echo reply if reply.
    PacketBuilder& icmp_echo(uint16_t id, uint16_t seq, bool reply = false) {
        l4_ = L4::icmp;
        icmp_reply_echo_ = reply;
        icmp_echo_ = true;
        icmp_rest_ = (static_cast<uint32_t>(id) << 16) | seq;
        return *this;
    }
    // ICMP(v4) or ICMPv6 error (family follows the L3 layer) quoting `inner`
    // (L3 bytes of the offending packet, e.g. l3_bytes(frame) or build_l3()),
    // cut to at most max_inner bytes. `rest` is the 32-bit word after the
    // checksum (next-hop MTU for v4 3/4 in its low 16 bits, MTU for v6 type 2,
    // pointer for parameter problem).
    PacketBuilder& icmp_error(uint8_t type, uint8_t code, const Bytes& inner, uint32_t rest = 0,
                              size_t max_inner = SIZE_MAX) {
        l4_ = L4::icmp;
        icmp_echo_ = false;
        icmp_type_ = type;
        icmp_code_ = code;
        icmp_rest_ = rest;
        icmp_inner_.assign(inner.begin(), inner.begin() + static_cast<std::ptrdiff_t>(
                                                               std::min(inner.size(), max_inner)));
        return *this;
    }
    // IPv4 "fragmentation needed" (3/4) with next-hop MTU.
    PacketBuilder& icmp_frag_needed(uint16_t mtu, const Bytes& inner) {
        return icmp_error(3, 4, inner, mtu);
    }
    // ICMPv6 packet too big (type 2) with MTU.
    PacketBuilder& icmpv6_packet_too_big(uint32_t mtu, const Bytes& inner) {
        return icmp_error(2, 0, inner, mtu);
    }
    // Generic ICMP / ICMPv6 message: type, code, rest-of-header word, then payload().
    PacketBuilder& icmp_raw(uint8_t type, uint8_t code, uint32_t rest = 0) {
        return icmp_error(type, code, {}, rest);
    }
    // ICMPv6 neighbour solicitation for `target` with an optional source
    // link-layer address option (empty src_lla = none). Unless ipv6() was
    // called, the IPv6 source is fe80::1 and the destination the solicited-node
    // multicast address of target; the hop limit is 255 unless ttl() was set.
    PacketBuilder& nd_solicit(std::string_view target, std::string_view src_lla = "") {
        IpAddr t = ip(target);
        if (t.family != Family::v6) detail::die("nd_solicit target must be IPv6", target);
        if (l3_ != L3::v6) {
            IpAddr snm = ip("ff02::1:ff00:0");
            snm.b[13] = t.b[13];
            snm.b[14] = t.b[14];
            snm.b[15] = t.b[15];
            ipv6(ip("fe80::1"), snm);
            if (!eth_set_) {
                eth_dst_ = MacAddr{{0x33, 0x33, snm.b[12], snm.b[13], snm.b[14], snm.b[15]}};
            }
        }
        if (!ttl_set_) ttl_ = 255;
        l4_ = L4::icmp;
        icmp_echo_ = false;
        icmp_type_ = 135;
        icmp_code_ = 0;
        icmp_rest_ = 0;
        icmp_inner_.assign(t.b.begin(), t.b.end());
        if (!src_lla.empty()) {
            MacAddr m = mac(src_lla);
            icmp_inner_.push_back(1);  // source link-layer address
            icmp_inner_.push_back(1);  // length in 8-byte units
            icmp_inner_.insert(icmp_inner_.end(), m.b.begin(), m.b.end());
        }
        return *this;
    }
    // Arbitrary upper-layer protocol with the given header bytes (payload follows).
    PacketBuilder& l4_raw(uint8_t proto, Bytes header = {}) {
        l4_ = L4::raw;
        raw_proto_ = proto;
        raw_l4_ = std::move(header);
        return *this;
    }

    // ---- payload ----------------------------------------------------------
    // n bytes of a recognisable pattern (0x00, 0x01, ...).
    PacketBuilder& payload(size_t n) {
        for (size_t i = 0; i < n; ++i) payload_.push_back(static_cast<uint8_t>(i));
        return *this;
    }
    PacketBuilder& payload(const Bytes& bytes) {
        payload_.insert(payload_.end(), bytes.begin(), bytes.end());
        return *this;
    }

    // ---- output -----------------------------------------------------------
    // The L3 packet (IP header onwards, or the ARP body) without Ethernet.
    Bytes build_l3() const {
        switch (l3_) {
        case L3::none:
        case L3::raw: return build_l4(0);
        case L3::arp: return build_arp();
        case L3::v4: return build_v4();
        case L3::v6: return build_v6();
        }
        return {};
    }
    // The complete Ethernet frame.
    Bytes build() const {
        Bytes f;
        detail::append(f, eth_dst_.b.data(), 6);
        detail::append(f, eth_src_.b.data(), 6);
        for (const auto& t : vlans_) {
            detail::push16(f, t.tpid);
            detail::push16(f, t.tci);
        }
        uint16_t et = ethertype_;
        if (l3_ == L3::v4) et = kEthIpv4;
        else if (l3_ == L3::v6) et = kEthIpv6;
        else if (l3_ == L3::arp) et = kEthArp;
        detail::push16(f, et);
        Bytes l3 = build_l3();
        f.insert(f.end(), l3.begin(), l3.end());
        if (f.size() < pad_to_) f.resize(pad_to_, 0);
        return f;
    }

private:
    enum class L3 { none, raw, arp, v4, v6 };
    enum class L4 { none, tcp, udp, icmp, raw };
    struct Tag {
        uint16_t tpid;
        uint16_t tci;
    };
    struct Ext {
        uint8_t kind;
        Bytes bytes;
    };

    uint8_t l4_proto() const {
        switch (l4_) {
        case L4::tcp: return kProtoTcp;
        case L4::udp: return kProtoUdp;
        case L4::icmp: return l3_ == L3::v6 ? kProtoIcmpv6 : kProtoIcmp;
        case L4::raw: return raw_proto_;
        case L4::none: return l3_ == L3::v6 ? kProtoNoNext : 255;
        }
        return 255;
    }

    // L4 header + payload, with checksum computed from the pseudo-header sum
    // `pseudo` (0 for ICMPv4 and raw).
    Bytes build_l4(uint32_t pseudo) const {
        Bytes s;
        size_t csum_at = SIZE_MAX;
        switch (l4_) {
        case L4::none: break;
        case L4::tcp: {
            detail::push16(s, sport_);
            detail::push16(s, dport_);
            detail::push32(s, seq_);
            detail::push32(s, ack_);
            s.push_back(static_cast<uint8_t>(((20 + tcp_opts_.size()) / 4) << 4));
            s.push_back(tcp_flags_);
            detail::push16(s, window_);
            detail::push16(s, 0);
            detail::push16(s, 0);
            s.insert(s.end(), tcp_opts_.begin(), tcp_opts_.end());
            csum_at = 16;
            break;
        }
        case L4::udp:
            detail::push16(s, sport_);
            detail::push16(s, dport_);
            detail::push16(s, static_cast<uint16_t>(8 + payload_.size()));
            detail::push16(s, 0);
            csum_at = 6;
            break;
        case L4::icmp: {
            uint8_t type = icmp_type_;
            if (icmp_echo_) {
                bool v6 = l3_ == L3::v6;
                type = icmp_reply_echo_ ? (v6 ? 129 : 0) : (v6 ? 128 : 8);
            }
            s.push_back(type);
            s.push_back(icmp_echo_ ? 0 : icmp_code_);
            detail::push16(s, 0);
            detail::push32(s, icmp_rest_);
            s.insert(s.end(), icmp_inner_.begin(), icmp_inner_.end());
            csum_at = 2;
            break;
        }
        case L4::raw: s = raw_l4_; break;
        }
        s.insert(s.end(), payload_.begin(), payload_.end());
        if (csum_at != SIZE_MAX) {
            uint16_t c = detail::fold(detail::sum16(s.data(), s.size(), pseudo));
            if (l4_ == L4::udp && c == 0) c = 0xffff;
            detail::put16(s, csum_at, c);
        }
        return s;
    }

    uint32_t pseudo_sum(uint8_t proto, size_t l4_len) const {
        if (l4_ == L4::icmp && l3_ == L3::v4) return 0;  // ICMPv4: no pseudo-header
        if (l4_ == L4::raw || l4_ == L4::none) return 0;
        uint32_t acc = detail::sum16(src_.b.data(), src_.size());
        acc = detail::sum16(dst_.b.data(), dst_.size(), acc);
        acc += proto;
        acc += static_cast<uint32_t>(l4_len >> 16) + static_cast<uint32_t>(l4_len & 0xffff);
        return acc;
    }

    size_t l4_size() const {
        size_t n = payload_.size();
        switch (l4_) {
        case L4::none: break;
        case L4::tcp: n += 20 + tcp_opts_.size(); break;
        case L4::udp: n += 8; break;
        case L4::icmp: n += 8 + icmp_inner_.size(); break;
        case L4::raw: n += raw_l4_.size(); break;
        }
        return n;
    }

    Bytes build_arp() const {
        Bytes a;
        detail::push16(a, 1);       // Ethernet
        detail::push16(a, 0x0800);  // IPv4
        a.push_back(6);
        a.push_back(4);
        detail::push16(a, arp_op_);
        detail::append(a, arp_sha_.b.data(), 6);
        detail::append(a, src_.b.data(), 4);
        detail::append(a, arp_tha_.b.data(), 6);
        detail::append(a, dst_.b.data(), 4);
        a.insert(a.end(), payload_.begin(), payload_.end());
        return a;
    }

    Bytes build_v4() const {
        uint8_t proto = proto_override_set_ ? proto_override_ : l4_proto();
        Bytes l4 = build_l4(pseudo_sum(l4_proto(), l4_size()));
        size_t hlen = 20 + ip_opts_.size();
        Bytes h;
        h.push_back(static_cast<uint8_t>(0x40 | (hlen / 4)));
        h.push_back(tos_);
        detail::push16(h, len_override_set_ ? len_override_
                                            : static_cast<uint16_t>(hlen + l4.size()));
        detail::push16(h, ip_id_);
        uint16_t ff = static_cast<uint16_t>((frag_off_ / 8) & 0x1fff);
        if (frag_mf_) ff |= 0x2000;
        if (df_) ff |= 0x4000;
        detail::push16(h, ff);
        h.push_back(ttl_);
        h.push_back(proto);
        detail::push16(h, 0);
        detail::append(h, src_.b.data(), 4);
        detail::append(h, dst_.b.data(), 4);
        h.insert(h.end(), ip_opts_.begin(), ip_opts_.end());
        detail::put16(h, 10, detail::fold(detail::sum16(h.data(), h.size())));
        h.insert(h.end(), l4.begin(), l4.end());
        return h;
    }

    Bytes build_v6() const {
        uint8_t upper = proto_override_set_ ? proto_override_ : l4_proto();
        Bytes l4 = build_l4(pseudo_sum(l4_proto(), l4_size()));
        Bytes exts;
        for (size_t i = 0; i < exts_.size(); ++i) {
            Bytes e = exts_[i].bytes;
            e[0] = i + 1 < exts_.size() ? exts_[i + 1].kind : upper;
            exts.insert(exts.end(), e.begin(), e.end());
        }
        Bytes h;
        h.push_back(static_cast<uint8_t>(0x60 | (tos_ >> 4)));
        h.push_back(static_cast<uint8_t>(tos_ << 4));
        detail::push16(h, 0);
        detail::push16(h, len_override_set_ ? len_override_
                                            : static_cast<uint16_t>(exts.size() + l4.size()));
        h.push_back(exts_.empty() ? upper : exts_[0].kind);
        h.push_back(ttl_);
        detail::append(h, src_.b.data(), 16);
        detail::append(h, dst_.b.data(), 16);
        h.insert(h.end(), exts.begin(), exts.end());
        h.insert(h.end(), l4.begin(), l4.end());
        return h;
    }

    MacAddr eth_src_, eth_dst_;
    bool eth_set_ = false;
    std::vector<Tag> vlans_;
    uint16_t ethertype_ = 0x88b6;  // local experimental, for raw frames
    size_t pad_to_ = 0;

    L3 l3_ = L3::none;
    IpAddr src_, dst_;
    uint16_t ip_id_ = 0x1234;
    uint8_t ttl_ = 64;
    bool ttl_set_ = false;
    uint8_t tos_ = 0;
    bool df_ = false;
    Bytes ip_opts_;
    uint16_t frag_off_ = 0;
    bool frag_mf_ = false;
    uint8_t proto_override_ = 0;
    bool proto_override_set_ = false;
    uint16_t len_override_ = 0;
    bool len_override_set_ = false;
    std::vector<Ext> exts_;
    uint16_t arp_op_ = 1;
    MacAddr arp_sha_, arp_tha_;

    L4 l4_ = L4::none;
    uint16_t sport_ = 0, dport_ = 0;
    uint8_t tcp_flags_ = 0;
    uint32_t seq_ = 0, ack_ = 0;
    uint16_t window_ = 0;
    Bytes tcp_opts_;
    bool icmp_echo_ = false, icmp_reply_echo_ = false;
    uint8_t icmp_type_ = 0, icmp_code_ = 0;
    uint32_t icmp_rest_ = 0;
    Bytes icmp_inner_;
    uint8_t raw_proto_ = 0;
    Bytes raw_l4_;
    Bytes payload_;
};

// ---- fragmentation ------------------------------------------------------

// Splits an Ethernet/IPv4 frame into real fragments whose IP packets are at
// most `mtu` bytes: payload chunks are multiples of 8 (except the last),
// offsets are in 8-byte units, MF is set on all but the last (the last keeps
// the original MF, so fragmenting a fragment works), options are copied into
// every fragment, the header checksum is recomputed. A frame whose packet
// already fits is returned unchanged as the single element.
inline Frames fragment_ipv4(const Bytes& frame, size_t mtu) {
    const size_t l3 = l3_offset(frame);
    if (l3 + 20 > frame.size()) detail::die("fragment_ipv4: not an IPv4 frame", "");
    const size_t hlen = static_cast<size_t>(frame[l3] & 0x0f) * 4;
    const size_t total = detail::get16(frame, l3 + 2);
    if (total < hlen || l3 + total > frame.size()) detail::die("fragment_ipv4: bad lengths", "");
    if (total <= mtu) return {frame};
    const size_t chunk = (mtu - hlen) / 8 * 8;
    if (mtu <= hlen || chunk == 0) detail::die("fragment_ipv4: MTU too small", "");
    const uint16_t orig_ff = detail::get16(frame, l3 + 6);
    const size_t base_off = static_cast<size_t>(orig_ff & 0x1fff) * 8;
    const bool orig_mf = (orig_ff & 0x2000) != 0;
    const size_t plen = total - hlen;
    Frames out;
    for (size_t pos = 0; pos < plen; pos += chunk) {
        const size_t n = std::min(chunk, plen - pos);
        const bool last = pos + n >= plen;
        Bytes f(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(l3 + hlen));
        f.insert(f.end(), frame.begin() + static_cast<std::ptrdiff_t>(l3 + hlen + pos),
                 frame.begin() + static_cast<std::ptrdiff_t>(l3 + hlen + pos + n));
        detail::put16(f, l3 + 2, static_cast<uint16_t>(hlen + n));
        uint16_t ff = static_cast<uint16_t>((orig_ff & 0x4000) | (((base_off + pos) / 8) & 0x1fff));
        if (!last || orig_mf) ff |= 0x2000;
        detail::put16(f, l3 + 6, ff);
        detail::put16(f, l3 + 10, 0);
        detail::put16(f, l3 + 10, detail::fold(detail::sum16(f.data() + l3, hlen)));
        out.push_back(std::move(f));
    }
    return out;
}

// Splits an Ethernet/IPv6 frame into real fragments whose IP packets are at
// most `mtu` bytes. The unfragmentable part (IPv6 header plus extension
// headers up to and including the last Hop-by-Hop or Routing header) is
// copied into each fragment, followed by a Fragment header with `ident`,
// offset in 8-byte units and M set on all but the last. A frame that already
// fits is returned unchanged.
inline Frames fragment_ipv6(const Bytes& frame, size_t mtu, uint32_t ident) {
    const size_t l3 = l3_offset(frame);
    if (l3 + 40 > frame.size()) detail::die("fragment_ipv6: not an IPv6 frame", "");
    const size_t total = 40 + detail::get16(frame, l3 + 4);
    if (l3 + total > frame.size()) detail::die("fragment_ipv6: bad lengths", "");
    if (total <= mtu) return {frame};
    // Find the unfragmentable part.
    size_t next_at = l3 + 6;  // position of the "next header" byte to patch
    size_t unfrag_end = l3 + 40;
    size_t pos = l3 + 40;
    uint8_t nh = frame[l3 + 6];
    while (nh == kProtoHopByHop || nh == kProtoRouting || nh == kProtoDestOpts) {
        if (pos + 2 > l3 + total) break;
        const size_t len = (static_cast<size_t>(frame[pos + 1]) + 1) * 8;
        if (nh != kProtoDestOpts) {
            next_at = pos;
            unfrag_end = pos + len;
        }
        nh = frame[pos];
        pos += len;
    }
    const uint8_t frag_next = frame[next_at];
    const size_t unfrag = unfrag_end - l3;
    if (mtu <= unfrag + 8 || (mtu - unfrag - 8) / 8 == 0) detail::die("fragment_ipv6: MTU too small", "");
    const size_t chunk = (mtu - unfrag - 8) / 8 * 8;
    const size_t plen = l3 + total - unfrag_end;
    Frames out;
    for (size_t p = 0; p < plen; p += chunk) {
        const size_t n = std::min(chunk, plen - p);
        const bool last = p + n >= plen;
        Bytes f(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(unfrag_end));
        f[next_at] = kProtoFragment;
        f.push_back(frag_next);
        f.push_back(0);
        detail::push16(f, static_cast<uint16_t>((p & 0xfff8) | (last ? 0 : 1)));
        detail::push32(f, ident);
        f.insert(f.end(), frame.begin() + static_cast<std::ptrdiff_t>(unfrag_end + p),
                 frame.begin() + static_cast<std::ptrdiff_t>(unfrag_end + p + n));
        detail::put16(f, l3 + 4, static_cast<uint16_t>(unfrag - 40 + 8 + n));
        out.push_back(std::move(f));
    }
    return out;
}

}  // namespace nlbd::testing
