#pragma once
// The project's own affinity hash (not NLB's). Stable across hosts, builds
// and CPU models: it must give the same value on every node of a cluster, so
// it uses only portable integer arithmetic (no CRC instruction dependence).
//
// Contract: the value depends only on the key bytes, the affinity and the
// seed, never on the CPU, the compiler or the byte order of the machine:
// address bytes are read as big-endian integers (a byte swap on little-endian
// CPUs, explicit shifts elsewhere), and only 64-bit multiply, xor and shift
// are used. Defined inline (packet path: decide() calls it per packet; an
// out-of-line call cost ~1 ns of the ~3 ns). Golden values in
// tests/unit/hash_test.cpp pin the outputs (part of the cluster protocol).

#include <bit>
#include <cstdint>
#include <cstring>

#include "nlbd/core/parse.hpp"
#include "nlbd/core/rules.hpp"

namespace nlbd::core {

namespace hash_detail {

// Odd 64-bit multipliers with well spread bits (the first is 2^64 / phi).
inline constexpr uint64_t kMulA = 0x9e3779b97f4a7c15ull;
inline constexpr uint64_t kMulB = 0xd1b54a32d192ed03ull;
inline constexpr uint64_t kMulC = 0xaef17502108ef2d9ull;

// Domain separation so that equal numeric keys of different kinds (an IPv4
// address vs. the first word of an IPv6 address) do not collide by design.
inline constexpr uint64_t kTagV4 = 0x4e4c4244'00000004ull;
inline constexpr uint64_t kTagV6 = 0x4e4c4244'00000006ull;

// Big-endian loads into the low bits of a word.
inline uint64_t be64(const uint8_t* p) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        return __builtin_bswap64(v);
    } else {
        uint64_t v = 0;
        for (unsigned i = 0; i < 8; ++i) v = (v << 8) | p[i];
        return v;
    }
}
inline uint64_t be32(const uint8_t* p) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        uint32_t v;
        std::memcpy(&v, p, 4);
        return __builtin_bswap32(v);
    } else {
        return (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) | (uint64_t{p[2]} << 8) | p[3];
    }
}

// Absorbs one 64-bit word into the state: multiply, fold the high half down.
inline uint64_t absorb(uint64_t h, uint64_t w) noexcept {
    h ^= w;
    h *= kMulA;
    h ^= h >> 32;
    return h;
}

// Final avalanche: every input bit affects every output bit of the 32 we keep.
inline uint32_t finish(uint64_t h) noexcept {
    h ^= h >> 31;
    h *= kMulB;
    h ^= h >> 29;
    h *= kMulC;
    h ^= h >> 32;
    return static_cast<uint32_t>(h);
}

inline uint64_t start(uint32_t seed, uint64_t tag, Affinity a) noexcept {
    return (static_cast<uint64_t>(seed) * kMulC) ^ tag ^ (static_cast<uint64_t>(a) << 56);
}

}  // namespace hash_detail

// Hash of the affinity key of k (SPEC §2): none = source IP + source port,
// single = source IP, network = source /24 (IPv4) or /48 (IPv6).
// The IPv4 case of affinity_hash, from the source address as a host-order
// integer (affinity_hash's own IPv4 path: one definition).
inline uint32_t affinity_hash_v4(uint32_t src, uint16_t sport, Affinity a, uint32_t seed) noexcept {
    using namespace hash_detail;
    const uint64_t ip = src;
    uint64_t w;
    switch (a) {
    case Affinity::none: w = (ip << 16) | sport; break;
    case Affinity::single: w = ip; break;
    default: w = ip >> 8; break;  // network: /24
    }
    return finish(absorb(start(seed, kTagV4, a), w));
}

inline uint32_t affinity_hash(const FlowKey& k, Affinity a, uint32_t seed) noexcept {
    using namespace hash_detail;
    const uint8_t* s = k.src.b.data();
    if (k.src.family != Family::v6)  // IPv4: one word holds the whole key
        return affinity_hash_v4(static_cast<uint32_t>(be32(s)), k.sport, a, seed);
    uint64_t h = start(seed, kTagV6, a);
    switch (a) {
    case Affinity::none:
        h = absorb(h, be64(s));
        h = absorb(h, be64(s + 8));
        h = absorb(h, k.sport);
        break;
    case Affinity::single:
        h = absorb(h, be64(s));
        h = absorb(h, be64(s + 8));
        break;
    default:  // network: /48
        h = absorb(h, be64(s) >> 16);
        break;
    }
    return finish(h);
}

// Maps a 32-bit hash onto [0, buckets) without a division (Lemire's
// multiply-shift); uniform when the hash is.
inline uint32_t bucket_of(uint32_t hash, uint32_t buckets) noexcept {
    return static_cast<uint32_t>((static_cast<uint64_t>(hash) * buckets) >> 32);
}

}  // namespace nlbd::core
