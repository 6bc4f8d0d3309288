// The project's own affinity hash (see docs/design.md, "Affinity hash").
//
// Contract: the value depends only on the key bytes, the affinity and the
// seed, never on the CPU, the compiler or the byte order of the machine:
// address bytes are read as big-endian integers with explicit shifts, and
// only 64-bit multiply, xor, shift and rotate are used. Packet path: no
// allocation, no branches beyond the family/affinity selection.

#include "nlbd/core/hash.hpp"

namespace nlbd::core {
namespace {

// Odd 64-bit multipliers with well spread bits (the first is 2^64 / phi).
constexpr uint64_t kMulA = 0x9e3779b97f4a7c15ull;
constexpr uint64_t kMulB = 0xd1b54a32d192ed03ull;
constexpr uint64_t kMulC = 0xaef17502108ef2d9ull;

// Domain separation so that equal numeric keys of different kinds (an IPv4
// address vs. the first word of an IPv6 address) do not collide by design.
constexpr uint64_t kTagV4 = 0x4e4c4244'00000004ull;
constexpr uint64_t kTagV6 = 0x4e4c4244'00000006ull;

// Big-endian load of n <= 8 bytes into the low bits of a word.
inline uint64_t load_be(const uint8_t* p, unsigned n) noexcept {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v = (v << 8) | p[i];
    return v;
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

}  // namespace

uint32_t affinity_hash(const FlowKey& k, Affinity a, uint32_t seed) noexcept {
    const uint8_t* s = k.src.b.data();
    if (k.src.family != Family::v6) {
        // IPv4: one word holds the whole key.
        uint64_t w;
        switch (a) {
        case Affinity::none: w = (load_be(s, 4) << 16) | k.sport; break;
        case Affinity::single: w = load_be(s, 4); break;
        default: w = load_be(s, 3); break;  // network: /24
        }
        return finish(absorb(start(seed, kTagV4, a), w));
    }
    uint64_t h = start(seed, kTagV6, a);
    switch (a) {
    case Affinity::none:
        h = absorb(h, load_be(s, 8));
        h = absorb(h, load_be(s + 8, 8));
        h = absorb(h, k.sport);
        break;
    case Affinity::single:
        h = absorb(h, load_be(s, 8));
        h = absorb(h, load_be(s + 8, 8));
        break;
    default:  // network: /48
        h = absorb(h, load_be(s, 6));
        break;
    }
    return finish(h);
}

}  // namespace nlbd::core
