#pragma once
// Inline bodies of the packet-path lookups in the snapshot (VIP index, port
// rule match), private to src/core: rule_table.cpp defines the public
// out-of-line API (Snapshot::vip_index, RuleTable::match) with them, and
// decide.cpp calls them inline (one call per packet each otherwise; the
// project is built without LTO). Same results by construction: the public
// functions are these.

#include <cstdint>
#include <cstring>
#include <vector>

#include "nlbd/core/snapshot.hpp"

namespace nlbd::core::lookup {

inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;

// Address equality as two 64-bit compares (IpAddr keeps unused bytes zero).
inline bool same_addr(const IpAddr& x, const IpAddr& y) noexcept {
    uint64_t x0, x1, y0, y1;
    std::memcpy(&x0, x.b.data(), 8);
    std::memcpy(&x1, x.b.data() + 8, 8);
    std::memcpy(&y0, y.b.data(), 8);
    std::memcpy(&y1, y.b.data() + 8, 8);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0 && x.family == y.family;
}

// Hash of an address for vip_table: local to this process, so native loads
// are fine. compile_snapshot fills the table with detail::vip_slot_hash,
// which is this function.
inline uint32_t vip_slot_hash_words(uint64_t lo, uint64_t hi, Family family) noexcept {
    uint64_t h = (lo ^ (hi * 0xc2b2ae3d27d4eb4full) ^ static_cast<uint64_t>(family)) *
                 0x9e3779b97f4a7c15ull;
    return static_cast<uint32_t>(h >> 32);
}
inline uint32_t vip_slot_hash(const IpAddr& a) noexcept {
    uint64_t lo, hi;
    std::memcpy(&lo, a.b.data(), 8);
    std::memcpy(&hi, a.b.data() + 8, 8);
    return vip_slot_hash_words(lo, hi, a.family);
}

inline uint16_t vip_index(const Snapshot& s, const IpAddr& a) noexcept {
    const IpAddr* const vips = s.vips.data();
    if (s.vip_table.empty()) {
        for (size_t i = 0; i < s.vips.size(); ++i)
            if (same_addr(vips[i], a)) return static_cast<uint16_t>(i);
        return kNoVip;
    }
    // Linear probing; the table is at most half full, so a kNoVip slot ends
    // every probe sequence.
    const uint16_t* const table = s.vip_table.data();
    const size_t mask = s.vip_table.size() - 1;
    for (size_t i = vip_slot_hash(a) & mask;; i = (i + 1) & mask) {
        const uint16_t v = table[i];
        if (v == kNoVip) return kNoVip;
        if (same_addr(vips[v], a)) return v;
    }
}

// vip_index of the IPv4 address at p (4 bytes, network order), without an
// IpAddr: its first word as IpAddr holds it (bytes 4-15 zero), read in
// registers (building an IpAddr on the stack and reading it back as words
// stalls on store forwarding).
inline uint16_t vip_index_v4(const Snapshot& s, const uint8_t* p) noexcept {
    const uint8_t word[8] = {p[0], p[1], p[2], p[3], 0, 0, 0, 0};
    uint64_t lo;
    std::memcpy(&lo, word, 8);
    const IpAddr* const vips = s.vips.data();
    auto same = [&](const IpAddr& v) {
        uint64_t v0, v1;
        std::memcpy(&v0, v.b.data(), 8);
        std::memcpy(&v1, v.b.data() + 8, 8);
        return ((v0 ^ lo) | v1) == 0 && v.family == Family::v4;
    };
    if (s.vip_table.empty()) {
        for (size_t i = 0; i < s.vips.size(); ++i)
            if (same(vips[i])) return static_cast<uint16_t>(i);
        return kNoVip;
    }
    const uint16_t* const table = s.vip_table.data();
    const size_t mask = s.vip_table.size() - 1;
    for (size_t i = vip_slot_hash_words(lo, 0, Family::v4) & mask;; i = (i + 1) & mask) {
        const uint16_t v = table[i];
        if (v == kNoVip) return kNoVip;
        if (same(vips[v])) return v;
    }
}

// Sorted, non-overlapping intervals [list, list + size): the rule whose
// [lo, hi] holds port. blk (optional) is the list's block index, which
// narrows the search to the few intervals that can reach port's 256-port
// block.
inline uint16_t find_in(const RuleTable::Interval* list, size_t size, const uint16_t* blk,
                        uint16_t port) noexcept {
    size_t first = 0, n = size;
    if (blk) {
        const size_t k = port >> 8;
        first = blk[k];
        // The interval at blk[k + 1] may still start inside this block.
        const size_t end = blk[k + 1] < size ? blk[k + 1] + 1u : size;
        n = end - first;
    }
    size_t lo = first;
    if (!blk && n <= 8) {
        // A short list (no block index): count the intervals that start at
        // or below port, without a data-dependent branch (the binary
        // search's branches mispredict on a port mix; measured: seed rules
        // 13.8 -> 7.1 ns). Not for a block's candidates: their count varies
        // per port, so the loop exit mispredicts instead (1024 rules: 7.8 ->
        // 11.8 ns).
        for (size_t i = 0; i < n; ++i) lo += list[first + i].lo <= port;
    } else {
        // Interval before the first one with lo > port. Intervals before
        // `first` end below port's block, so they cannot hold port.
        while (n > 0) {
            const size_t half = n / 2;
            if (list[lo + half].lo <= port) {
                lo += half + 1;
                n -= half + 1;
            } else {
                n = half;
            }
        }
    }
    if (lo == first) return kNoRule;
    const RuleTable::Interval& iv = list[lo - 1];
    return port <= iv.hi ? iv.rule : kNoRule;
}

inline uint16_t search_list(const RuleTable& t, size_t l, uint16_t port) noexcept {
    const std::vector<RuleTable::Interval>& list = t.lists[l];
    if (list.empty()) return kNoRule;
    const uint16_t* blk = nullptr;
    if (l < t.block_base.size() && t.block_base[l] != RuleTable::kNoBlocks)
        blk = t.blocks.data() + t.block_base[l];
    return find_in(list.data(), list.size(), blk, port);
}

inline uint16_t rule_match(const RuleTable& t, uint16_t vip, uint8_t proto,
                           uint16_t dport) noexcept {
    if (proto != kProtoTcp && proto != kProtoUdp) return kNoRule;
    const size_t odd = proto == kProtoUdp ? 1 : 0;
    const size_t nlists = t.lists.size();
    if (vip != kNoVip) {
        const size_t specific = (static_cast<size_t>(vip) + 1) * 2 + odd;
        if (specific < nlists) {
            const uint16_t r = search_list(t, specific, dport);
            if (r != kNoRule) return r;
        }
    }
    if (odd < nlists) return search_list(t, odd, dport);
    return kNoRule;
}

}  // namespace nlbd::core::lookup
