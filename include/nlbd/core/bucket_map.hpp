#pragma once
// Bucket maps: which live host owns each of B buckets of a multiple-host rule.
// Control plane (allocates). The data plane only indexes the result.
//
// Properties (tested in tests/unit/bucket_map_test.cpp):
//  - deterministic: same inputs give the same map on every host;
//  - balanced: each host gets its quota, quota_h = B * w_h / sum(w) rounded by
//    largest remainder (ties to the lower host id); equal weights give every
//    host its fair share +-1 bucket;
//  - minimal movement (rebalance): when a host leaves only its buckets move;
//    when a host joins only the buckets it takes move.

#include <cstdint>
#include <span>
#include <vector>

#include "nlbd/core/types.hpp"

namespace nlbd::core {

struct MemberWeight {
    HostId host = kNoHost;
    uint32_t weight = 0;  // 0..100; 0 = takes no buckets
};

// Quota per member (same order as members); sums to `buckets` unless every
// weight is 0 (then all quotas are 0).
std::vector<uint32_t> bucket_quotas(std::span<const MemberWeight> members, uint32_t buckets);

// Canonical map from nothing (cold start, static membership). `seed` spreads
// different rules' maps differently. Unowned buckets (all weights 0) = kNoHost.
std::vector<HostId> build_bucket_map(std::span<const MemberWeight> members, uint32_t buckets,
                                     uint32_t seed);

// Minimal-movement update of `prev` to a new membership/weights.
std::vector<HostId> rebalance_bucket_map(std::span<const HostId> prev,
                                         std::span<const MemberWeight> members, uint32_t buckets,
                                         uint32_t seed);

}  // namespace nlbd::core
