#include "nlbd/core/reply.hpp"

#include <cstring>

namespace nlbd::core {
namespace {

constexpr uint8_t kIcmpv6NeighbourAdvert = 136;
constexpr uint8_t kIcmpv6NeighbourSolicit = 135;
constexpr uint8_t kNextHeaderIcmpv6 = 58;
constexpr uint8_t kNaFlagSolicited = 0x40;
constexpr uint8_t kNaFlagOverride = 0x20;
constexpr uint8_t kOptTargetLinkLayer = 2;

uint16_t load_be16(const uint8_t* p) noexcept {
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
void store_be16(uint8_t* p, uint16_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

// Sums big-endian 16-bit words (odd tail padded with zero) into a 32-bit
// accumulator; folded by fold().
uint32_t sum_words(const uint8_t* p, size_t n, uint32_t acc) noexcept {
    for (; n >= 2; p += 2, n -= 2) acc += load_be16(p);
    if (n != 0) acc += static_cast<uint32_t>(p[0]) << 8;
    return acc;
}
uint16_t fold(uint32_t acc) noexcept {
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return static_cast<uint16_t>(~acc & 0xffff);
}

bool all_zero(const uint8_t* p, size_t n) noexcept {
    for (size_t i = 0; i < n; ++i)
        if (p[i] != 0) return false;
    return true;
}

void set_macs(uint8_t* frame, const uint8_t* dst, const MacAddr& src) noexcept {
    std::memmove(frame, dst, 6);
    std::memcpy(frame + 6, src.b.data(), 6);
}

}  // namespace

uint16_t icmpv6_checksum(const uint8_t* src16, const uint8_t* dst16,
                         std::span<const uint8_t> msg) noexcept {
    uint32_t acc = 0;
    acc = sum_words(src16, 16, acc);
    acc = sum_words(dst16, 16, acc);
    const auto n = static_cast<uint32_t>(msg.size());
    acc += n >> 16;
    acc += n & 0xffff;
    acc += kNextHeaderIcmpv6;
    acc = sum_words(msg.data(), msg.size(), acc);
    return fold(acc);
}

size_t build_arp_reply(std::span<uint8_t> buf, size_t len, const ParsedFrame& f,
                       const MacAddr& cluster_mac, const MacAddr& eth_src) noexcept {
    if (f.kind != FrameKind::arp || len > buf.size()) return 0;
    const size_t l3 = f.l3_offset;
    if (l3 < 14 || l3 + kArpLength > len) return 0;
    uint8_t* a = buf.data() + l3;
    // Ethernet (1) / IPv4 (0x0800), 6-byte MACs, 4-byte addresses, request.
    if (load_be16(a) != 1 || load_be16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4 ||
        load_be16(a + 6) != 1)
        return 0;

    uint8_t req_sha[6], req_spa[4], vip[4];
    std::memcpy(req_sha, a + 8, 6);
    std::memcpy(req_spa, a + 14, 4);
    std::memcpy(vip, a + 24, 4);

    store_be16(a + 6, 2);
    std::memcpy(a + 8, cluster_mac.b.data(), 6);
    std::memcpy(a + 14, vip, 4);
    std::memcpy(a + 18, req_sha, 6);
    std::memcpy(a + 24, req_spa, 4);

    // Answer the station that asked: its Ethernet source (equal to the ARP
    // sender hardware address for any sane requester).
    uint8_t eth_dst[6];
    std::memcpy(eth_dst, buf.data() + 6, 6);
    set_macs(buf.data(), eth_dst, eth_src);
    return len;
}

size_t build_nd_advert(std::span<uint8_t> buf, size_t len, const ParsedFrame& f,
                       const MacAddr& cluster_mac, const MacAddr& eth_src) noexcept {
    if (f.kind != FrameKind::nd_solicit || len > buf.size()) return 0;
    const size_t l3 = f.l3_offset;
    const size_t l4 = f.l4_offset;
    // The solicitation: IPv6 header at l3, ICMPv6 NS (type, code, checksum,
    // reserved, 16-byte target) at l4.
    if (l3 < 14 || l3 + kIpv6HeaderLength > len || l4 < l3 + kIpv6HeaderLength ||
        l4 + 24 > len)
        return 0;
    uint8_t* ip = buf.data() + l3;
    const uint8_t* ns = buf.data() + l4;
    if ((ip[0] >> 4) != 6 || ns[0] != kIcmpv6NeighbourSolicit || ns[1] != 0) return 0;

    const size_t out_len = l3 + kIpv6HeaderLength + kNdAdvertLength;
    if (out_len > buf.size()) return 0;

    uint8_t req_src[16], target[16], req_mac[6];
    std::memcpy(req_src, ip + 8, 16);
    std::memcpy(target, ns + 8, 16);
    std::memcpy(req_mac, buf.data() + 6, 6);
    const bool dad = all_zero(req_src, 16);

    // IPv6 header: version 6, no traffic class / flow label, hop limit 255
    // (RFC 4861 §7.1.2 requires receivers to check it).
    ip[0] = 0x60;
    ip[1] = ip[2] = ip[3] = 0;
    store_be16(ip + 4, static_cast<uint16_t>(kNdAdvertLength));
    ip[6] = kNextHeaderIcmpv6;
    ip[7] = 255;
    std::memcpy(ip + 8, target, 16);
    if (dad) {
        static constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0,
                                                  0,    0,    0, 0, 0, 0, 0, 1};
        std::memcpy(ip + 24, kAllNodes, 16);
    } else {
        std::memcpy(ip + 24, req_src, 16);
    }

    uint8_t* na = ip + kIpv6HeaderLength;
    std::memset(na, 0, kNdAdvertLength);
    na[0] = kIcmpv6NeighbourAdvert;
    na[4] = static_cast<uint8_t>(kNaFlagOverride | (dad ? 0 : kNaFlagSolicited));
    std::memcpy(na + 8, target, 16);
    na[24] = kOptTargetLinkLayer;
    na[25] = 1;  // option length in units of 8 bytes
    std::memcpy(na + 26, cluster_mac.b.data(), 6);
    store_be16(na + 2, icmpv6_checksum(ip + 8, ip + 24, {na, kNdAdvertLength}));

    static constexpr uint8_t kAllNodesMac[6] = {0x33, 0x33, 0, 0, 0, 1};
    set_macs(buf.data(), dad ? kAllNodesMac : req_mac, eth_src);
    return out_len;
}

}  // namespace nlbd::core
