#pragma once
// The project's own affinity hash (not NLB's). Stable across hosts, builds
// and CPU models: it must give the same value on every node of a cluster, so
// it uses only portable integer arithmetic (no CRC instruction dependence).

#include <cstdint>

#include "nlbd/core/parse.hpp"
#include "nlbd/core/rules.hpp"

namespace nlbd::core {

// Hash of the affinity key of k (SPEC §2): none = source IP + source port,
// single = source IP, network = source /24 (IPv4) or /48 (IPv6).
uint32_t affinity_hash(const FlowKey& k, Affinity a, uint32_t seed) noexcept;

// Maps a 32-bit hash onto [0, buckets) without a division (Lemire's
// multiply-shift); uniform when the hash is.
inline uint32_t bucket_of(uint32_t hash, uint32_t buckets) noexcept {
    return static_cast<uint32_t>((static_cast<uint64_t>(hash) * buckets) >> 32);
}

}  // namespace nlbd::core
