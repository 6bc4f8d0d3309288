#pragma once
// Flow hash of the RX distributor (distributor dispatch mode,
// docs/multicore.md): which worker a received wire frame goes to.
//
// Contract: every frame of one flow gets the same value, so each flow stays
// on one worker and the per-worker connection and fragment tables stay
// correct. It follows what a NIC's RSS does with the profile's rss_fields:
//   - IPv4 / IPv6: source and destination address (L3);
//   - with `l4`: also the TCP/UDP ports, but only for frames that carry them
//     directly: never for IP fragments (a fragmented datagram's pieces and
//     its first fragment hash alike, on L3) nor for IPv6 with extension
//     headers;
//   - anything else (ARP, unknown EtherTypes, truncated headers): 0, i.e.
//     worker 0. (Neighbour discovery is IPv6 and hashes on L3.)
// Up to two VLAN tags (802.1Q / 802.1ad) are skipped. Reads at most the first
// 58 bytes after the tags; never reads past `len`. Pure and allocation-free:
// packet-path code. The value is local to this host (not a cluster protocol
// hash): it only has to be stable within one process.

#include <cstdint>
#include <cstring>

namespace nlbd::core {

namespace detail {
inline uint64_t load64(const uint8_t* p) noexcept {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
inline uint32_t load32(const uint8_t* p) noexcept {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
// A 64-bit multiply-xorshift finaliser: every input bit reaches the top half.
inline uint32_t mix64(uint64_t x) noexcept {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return static_cast<uint32_t>(x);
}
}  // namespace detail

inline uint32_t dispatch_hash(const uint8_t* d, uint32_t len, bool l4) noexcept {
    if (len < 14) return 0;
    uint32_t off = 12;
    uint16_t et = static_cast<uint16_t>(d[off] << 8 | d[off + 1]);
    for (int tags = 0; tags < 2 && (et == 0x8100 || et == 0x88a8); ++tags) {
        off += 4;
        if (len < off + 2) return 0;
        et = static_cast<uint16_t>(d[off] << 8 | d[off + 1]);
    }
    off += 2;  // start of the network header
    if (et == 0x0800) {
        if (len < off + 20) return 0;
        const uint8_t* ip = d + off;
        uint64_t x = uint64_t{detail::load32(ip + 12)} << 32 | detail::load32(ip + 16);
        const uint8_t proto = ip[9];
        const uint32_t ihl = (ip[0] & 0x0fu) * 4u;
        const bool fragment = ((ip[6] & 0x3fu) | ip[7]) != 0;  // MF or an offset
        if (l4 && !fragment && (proto == 6 || proto == 17) && ihl >= 20 && len >= off + ihl + 4)
            x ^= uint64_t{detail::load32(ip + ihl)} * 0x9e3779b97f4a7c15ull;
        return detail::mix64(x ^ proto);
    }
    if (et == 0x86dd) {
        if (len < off + 40) return 0;
        const uint8_t* ip = d + off;
        uint64_t x = detail::load64(ip + 8) ^ (detail::load64(ip + 16) * 0xc2b2ae3d27d4eb4full) ^
                     (detail::load64(ip + 24) * 0x165667b19e3779f9ull) ^
                     (detail::load64(ip + 32) * 0x27d4eb2f165667c5ull);
        const uint8_t nh = ip[6];
        if (l4 && (nh == 6 || nh == 17) && len >= off + 44)
            x ^= uint64_t{detail::load32(ip + 40)} * 0x9e3779b97f4a7c15ull;
        return detail::mix64(x);
    }
    return 0;
}

// EtherType after at most one VLAN tag (host order), 0 when too short: how
// the workers and the RX distributor recognise heartbeat frames.
inline uint16_t inner_ethertype(const uint8_t* d, uint32_t len) noexcept {
    if (len < 14) return 0;
    uint16_t et = static_cast<uint16_t>(d[12] << 8 | d[13]);
    if ((et == 0x8100 || et == 0x88a8) && len >= 18) et = static_cast<uint16_t>(d[16] << 8 | d[17]);
    return et;
}

// Maps a hash onto [0, n) (multiply-shift, no division).
inline uint32_t dispatch_worker(uint32_t hash, uint32_t n) noexcept {
    return static_cast<uint32_t>((uint64_t{hash} * n) >> 32);
}

}  // namespace nlbd::core
