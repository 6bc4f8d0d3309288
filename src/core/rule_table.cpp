// Port-rule and VIP lookup on the packet path. Reads only the immutable
// snapshot; never allocates.

#include <cstring>

#include "nlbd/core/snapshot.hpp"

namespace nlbd::core {
namespace {

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

// Sorted, non-overlapping intervals: the rule whose [lo, hi] holds port.
// blk (optional) is the list's block index, which narrows the search to the
// few intervals that can reach port's 256-port block.
inline uint16_t find_in(const std::vector<RuleTable::Interval>& list, const uint16_t* blk,
                        uint16_t port) noexcept {
    size_t first = 0, n = list.size();
    if (blk) {
        const size_t k = port >> 8;
        first = blk[k];
        // The interval at blk[k + 1] may still start inside this block.
        const size_t end = blk[k + 1] < list.size() ? blk[k + 1] + 1u : list.size();
        n = end - first;
    }
    // Interval before the first one with lo > port. Intervals before `first`
    // end below port's block, so they cannot hold port.
    size_t lo = first;
    while (n > 0) {
        const size_t half = n / 2;
        if (list[lo + half].lo <= port) {
            lo += half + 1;
            n -= half + 1;
        } else {
            n = half;
        }
    }
    if (lo == first) return kNoRule;
    const RuleTable::Interval& iv = list[lo - 1];
    return port <= iv.hi ? iv.rule : kNoRule;
}

}  // namespace

uint16_t RuleTable::match(uint16_t vip, uint8_t proto, uint16_t dport) const noexcept {
    if (proto != kProtoTcp && proto != kProtoUdp) return kNoRule;
    const size_t odd = proto == kProtoUdp ? 1 : 0;
    auto search = [&](size_t l) noexcept {
        const uint16_t* blk = nullptr;
        if (l < block_base.size() && block_base[l] != kNoBlocks) blk = blocks.data() + block_base[l];
        return find_in(lists[l], blk, dport);
    };
    if (vip != kNoVip) {
        const size_t specific = (static_cast<size_t>(vip) + 1) * 2 + odd;
        if (specific < lists.size()) {
            const uint16_t r = search(specific);
            if (r != kNoRule) return r;
        }
    }
    if (odd < lists.size()) return search(odd);
    return kNoRule;
}

// Hash of an address for vip_table: local to this process, so native loads
// are fine. compile_snapshot fills the table with the same function.
uint32_t detail::vip_slot_hash(const IpAddr& a) noexcept {
    uint64_t lo, hi;
    std::memcpy(&lo, a.b.data(), 8);
    std::memcpy(&hi, a.b.data() + 8, 8);
    uint64_t h = (lo ^ (hi * 0xc2b2ae3d27d4eb4full) ^ static_cast<uint64_t>(a.family)) *
                 0x9e3779b97f4a7c15ull;
    return static_cast<uint32_t>(h >> 32);
}

namespace {
// Address equality as two 64-bit compares (IpAddr keeps unused bytes zero).
inline bool same_addr(const IpAddr& x, const IpAddr& y) noexcept {
    uint64_t x0, x1, y0, y1;
    std::memcpy(&x0, x.b.data(), 8);
    std::memcpy(&x1, x.b.data() + 8, 8);
    std::memcpy(&y0, y.b.data(), 8);
    std::memcpy(&y1, y.b.data() + 8, 8);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0 && x.family == y.family;
}
}  // namespace

uint16_t Snapshot::vip_index(const IpAddr& a) const noexcept {
    if (vip_table.empty()) {
        for (size_t i = 0; i < vips.size(); ++i)
            if (same_addr(vips[i], a)) return static_cast<uint16_t>(i);
        return kNoVip;
    }
    // Linear probing; the table is at most half full, so a kNoVip slot ends
    // every probe sequence.
    const size_t mask = vip_table.size() - 1;
    for (size_t i = detail::vip_slot_hash(a) & mask;; i = (i + 1) & mask) {
        const uint16_t v = vip_table[i];
        if (v == kNoVip) return kNoVip;
        if (same_addr(vips[v], a)) return v;
    }
}

}  // namespace nlbd::core
