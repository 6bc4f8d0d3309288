// Bucket maps (docs/design.md, "Bucket map").
//
// Both functions share one scheme:
//   1. quotas by largest remainder (exact, integer only);
//   2. a starting assignment: rendezvous (highest random weight) for a fresh
//      map, the previous owners for a rebalance;
//   3. hosts above quota shed the buckets they score lowest on;
//   4. every free bucket (in index order) goes to the under-quota host that
//      scores highest on it.
// Scores are a pure integer function of (seed, bucket, host), so every host
// computes the same map; ties are broken by the lower host id. Nothing here
// depends on the order of `members`.

#include "nlbd/core/bucket_map.hpp"

#include <algorithm>
#include <array>

namespace nlbd::core {
namespace {

constexpr unsigned kIdSlots = 256;  // HostId is 8 bits

// Rendezvous score of `host` for `bucket` under `seed`: a 64-bit integer mix,
// the same on every CPU.
inline uint64_t score(uint32_t seed, uint32_t bucket, HostId host) noexcept {
    uint64_t h = (static_cast<uint64_t>(seed) << 32) | bucket;
    h ^= static_cast<uint64_t>(host) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

// True when a beats b for the bucket: higher score, then lower host id.
inline bool better(uint64_t sa, HostId a, uint64_t sb, HostId b) noexcept {
    return sa != sb ? sa > sb : a < b;
}

struct Plan {
    std::array<uint32_t, kIdSlots> quota{};
    std::array<uint32_t, kIdSlots> count{};
    std::vector<HostId> eligible;  // hosts with quota > 0, ascending id
};

Plan make_plan(std::span<const MemberWeight> members, uint32_t buckets) {
    Plan p;
    const std::vector<uint32_t> q = bucket_quotas(members, buckets);
    for (size_t i = 0; i < members.size(); ++i) p.quota[members[i].host] += q[i];
    for (unsigned id = 1; id < kIdSlots; ++id)
        if (p.quota[id] > 0) p.eligible.push_back(static_cast<HostId>(id));
    return p;
}

// Steps 3 and 4. `map` holds a starting assignment in which kNoHost marks a
// free bucket; p.count matches it.
void settle(std::vector<HostId>& map, Plan& p, uint32_t seed) {
    const uint32_t buckets = static_cast<uint32_t>(map.size());
    // Step 3: shed. Collect each over-quota host's buckets, drop the lowest.
    bool any_over = false;
    for (HostId h : p.eligible) any_over |= p.count[h] > p.quota[h];
    for (unsigned id = 1; id < kIdSlots && any_over; ++id) {
        if (p.count[id] <= p.quota[id]) continue;
        const HostId h = static_cast<HostId>(id);
        std::vector<std::pair<uint64_t, uint32_t>> mine;
        mine.reserve(p.count[h]);
        for (uint32_t b = 0; b < buckets; ++b)
            if (map[b] == h) mine.emplace_back(score(seed, b, h), b);
        const size_t excess = p.count[h] - p.quota[h];
        std::partial_sort(mine.begin(), mine.begin() + static_cast<ptrdiff_t>(excess), mine.end());
        for (size_t i = 0; i < excess; ++i) map[mine[i].second] = kNoHost;
        p.count[h] = p.quota[h];
    }
    // Step 4: fill. The under-quota set only shrinks, so keep it compact.
    std::vector<HostId> under;
    for (HostId h : p.eligible)
        if (p.count[h] < p.quota[h]) under.push_back(h);
    for (uint32_t b = 0; b < buckets && !under.empty(); ++b) {
        if (map[b] != kNoHost) continue;
        size_t best = 0;
        uint64_t best_score = score(seed, b, under[0]);
        for (size_t i = 1; i < under.size(); ++i) {
            const uint64_t s = score(seed, b, under[i]);
            if (better(s, under[i], best_score, under[best])) {
                best = i;
                best_score = s;
            }
        }
        const HostId h = under[best];
        map[b] = h;
        if (++p.count[h] == p.quota[h]) under.erase(under.begin() + static_cast<ptrdiff_t>(best));
    }
}

}  // namespace

std::vector<uint32_t> bucket_quotas(std::span<const MemberWeight> members, uint32_t buckets) {
    std::vector<uint32_t> q(members.size(), 0);
    uint64_t total = 0;
    for (const auto& m : members) total += m.weight;
    if (total == 0) return q;
    // Exact shares B*w/total: integer part now, remainders ranked afterwards.
    std::vector<uint64_t> rem(members.size());
    uint64_t given = 0;
    for (size_t i = 0; i < members.size(); ++i) {
        const uint64_t num = static_cast<uint64_t>(buckets) * members[i].weight;
        q[i] = static_cast<uint32_t>(num / total);
        rem[i] = num % total;
        given += q[i];
    }
    // The leftover is smaller than the number of members with a non-zero
    // remainder, so weight-0 members never receive one.
    std::vector<size_t> order(members.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (rem[a] != rem[b]) return rem[a] > rem[b];
        return members[a].host < members[b].host;
    });
    for (uint64_t left = buckets - given, i = 0; left > 0; --left, ++i) ++q[order[i]];
    return q;
}

std::vector<HostId> build_bucket_map(std::span<const MemberWeight> members, uint32_t buckets,
                                     uint32_t seed) {
    std::vector<HostId> map(buckets, kNoHost);
    Plan p = make_plan(members, buckets);
    if (p.eligible.empty()) return map;
    // Step 2: rendezvous among the hosts that take buckets at all.
    for (uint32_t b = 0; b < buckets; ++b) {
        HostId best = p.eligible[0];
        uint64_t best_score = score(seed, b, best);
        for (size_t i = 1; i < p.eligible.size(); ++i) {
            const HostId h = p.eligible[i];
            const uint64_t s = score(seed, b, h);
            if (better(s, h, best_score, best)) {
                best = h;
                best_score = s;
            }
        }
        map[b] = best;
        ++p.count[best];
    }
    settle(map, p, seed);
    return map;
}

std::vector<HostId> rebalance_bucket_map(std::span<const HostId> prev,
                                         std::span<const MemberWeight> members, uint32_t buckets,
                                         uint32_t seed) {
    if (prev.size() != buckets) return build_bucket_map(members, buckets, seed);
    std::vector<HostId> map(buckets, kNoHost);
    Plan p = make_plan(members, buckets);
    if (p.eligible.empty()) return map;
    // Step 2: keep every bucket whose owner still takes buckets. Hosts then
    // keep min(previous count, quota) buckets each, which is the least
    // movement any exact-quota map allows.
    for (uint32_t b = 0; b < buckets; ++b) {
        const HostId o = prev[b];
        if (o != kNoHost && p.quota[o] > 0) {
            map[b] = o;
            ++p.count[o];
        }
    }
    settle(map, p, seed);
    return map;
}

}  // namespace nlbd::core
