// Properties of the affinity hash (hash.hpp): pinned values (every host and
// CPU computes the same), affinity key selection, seed sensitivity and
// uniformity over bucket ranges.

#include "nlbd/core/hash.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace nlbd;
using namespace nlbd::core;

namespace {

FlowKey key(const char* src, uint16_t sport, const char* dst = "198.51.100.10", uint16_t dport = 443) {
    FlowKey k;
    k.src = *IpAddr::parse(src);
    k.dst = *IpAddr::parse(dst);
    k.sport = sport;
    k.dport = dport;
    k.proto = 6;
    return k;
}

FlowKey v4(uint32_t ip, uint16_t sport = 1000) {
    const uint8_t b[4] = {static_cast<uint8_t>(ip >> 24), static_cast<uint8_t>(ip >> 16),
                          static_cast<uint8_t>(ip >> 8), static_cast<uint8_t>(ip)};
    FlowKey k;
    k.src = IpAddr::from_v4(b);
    k.sport = sport;
    return k;
}

// Pearson chi-square of n hashes over `buckets` bins.
template <class F>
double chi_square(uint32_t n, uint32_t buckets, F&& hash_of_i) {
    std::vector<uint32_t> bins(buckets);
    for (uint32_t i = 0; i < n; ++i) ++bins[bucket_of(hash_of_i(i), buckets)];
    const double expect = double(n) / buckets;
    double chi = 0;
    for (uint32_t c : bins) chi += (c - expect) * (c - expect) / expect;
    return chi;
}

// chi-square with 4095 degrees of freedom: mean 4095, sd ~90.5. The inputs
// are fixed, so the statistic is fixed; the bound is 6 sd.
constexpr uint32_t kBins = 4096;
constexpr double kChiBound = 4095 + 6 * 90.5;

}  // namespace

TEST(AffinityHash, PinnedValuesAreTheSameOnEveryHostAndCpu) {
    // These values are part of the cluster protocol: hosts running different
    // builds or CPUs must agree. Changing them needs a heartbeat version bump.
    const FlowKey k4 = key("192.0.2.33", 51515);
    const FlowKey k6 = key("2001:db8:1:2::77", 443, "2001:db8::1");
    const uint32_t expect[] = {0x129ed568u, 0x187aa7e9u, 0xabc018d9u, 0x564ebb0cu,
                               0x1c55fd77u, 0x94e03d54u, 0x3551164eu, 0x80139cbdu,
                               0x74b0120au, 0xa5c4517fu, 0x4c4d02ffu, 0x74856e33u};
    size_t i = 0;
    for (const FlowKey* k : {&k4, &k6})
        for (Affinity a : {Affinity::none, Affinity::single, Affinity::network})
            for (uint32_t seed : {0u, 0x12345678u}) EXPECT_EQ(affinity_hash(*k, a, seed), expect[i++]) << i;
}

TEST(AffinityHash, NoneKeysOnSourceAddressAndPort) {
    const auto a = key("10.0.0.1", 1111), b = key("10.0.0.1", 2222), c = key("10.0.0.2", 1111);
    EXPECT_NE(affinity_hash(a, Affinity::none, 1), affinity_hash(b, Affinity::none, 1));
    EXPECT_NE(affinity_hash(a, Affinity::none, 1), affinity_hash(c, Affinity::none, 1));
}

TEST(AffinityHash, SingleIgnoresThePortsAndTheDestination) {
    const auto a = key("10.0.0.1", 1111, "198.51.100.10", 80);
    const auto b = key("10.0.0.1", 2222, "198.51.100.11", 443);
    EXPECT_EQ(affinity_hash(a, Affinity::single, 9), affinity_hash(b, Affinity::single, 9));
    EXPECT_NE(affinity_hash(a, Affinity::single, 9),
              affinity_hash(key("10.0.0.2", 1111), Affinity::single, 9));
    const auto x = key("2001:db8::1", 1, "2001:db8::80", 80), y = key("2001:db8::1", 2, "2001:db8::81", 81);
    EXPECT_EQ(affinity_hash(x, Affinity::single, 9), affinity_hash(y, Affinity::single, 9));
    EXPECT_NE(affinity_hash(x, Affinity::single, 9),
              affinity_hash(key("2001:db8::2", 1, "2001:db8::80"), Affinity::single, 9));
}

TEST(AffinityHash, NetworkKeysOnSlash24AndSlash48) {
    EXPECT_EQ(affinity_hash(key("10.1.2.3", 1), Affinity::network, 5),
              affinity_hash(key("10.1.2.250", 9), Affinity::network, 5));
    EXPECT_NE(affinity_hash(key("10.1.2.3", 1), Affinity::network, 5),
              affinity_hash(key("10.1.3.3", 1), Affinity::network, 5));
    EXPECT_EQ(affinity_hash(key("2001:db8:aaaa:1::1", 1), Affinity::network, 5),
              affinity_hash(key("2001:db8:aaaa:ffff:1:2:3:4", 7), Affinity::network, 5));
    EXPECT_NE(affinity_hash(key("2001:db8:aaaa::1", 1), Affinity::network, 5),
              affinity_hash(key("2001:db8:aaab::1", 1), Affinity::network, 5));
}

TEST(AffinityHash, SeedChangesEveryValue) {
    for (uint32_t ip = 0; ip < 1000; ++ip)
        EXPECT_NE(affinity_hash(v4(0x0a000000 + ip), Affinity::single, 1),
                  affinity_hash(v4(0x0a000000 + ip), Affinity::single, 2));
}

TEST(AffinityHash, Ipv4AndIpv6WithTheSameBytesDiffer) {
    FlowKey a = key("10.0.0.1", 1);
    FlowKey b = a;
    b.src.family = Family::v6;  // 10.0.0.1 followed by zeros, as IPv6
    EXPECT_NE(affinity_hash(a, Affinity::single, 0), affinity_hash(b, Affinity::single, 0));
}

TEST(AffinityHash, SequentialClientsSpreadUniformlyOverBuckets) {
    // 100 keys per bin, sequential inputs: the hardest case for a weak mix.
    const uint32_t n = kBins * 100;
    EXPECT_LT(chi_square(n, kBins, [](uint32_t i) { return affinity_hash(v4(0xc0a80000 + i), Affinity::single, 7); }),
              kChiBound);
    EXPECT_LT(chi_square(n, kBins, [](uint32_t i) {
                  return affinity_hash(v4(0x0a000001 + (i >> 16), static_cast<uint16_t>(i)), Affinity::none, 7);
              }),
              kChiBound);
    EXPECT_LT(chi_square(n, kBins, [](uint32_t i) { return affinity_hash(v4(i << 8), Affinity::network, 7); }),
              kChiBound);
    EXPECT_LT(chi_square(n, kBins, [](uint32_t i) {
                  FlowKey k = key("2001:db8::", 0);
                  k.src.b[12] = static_cast<uint8_t>(i >> 24);
                  k.src.b[13] = static_cast<uint8_t>(i >> 16);
                  k.src.b[14] = static_cast<uint8_t>(i >> 8);
                  k.src.b[15] = static_cast<uint8_t>(i);
                  return affinity_hash(k, Affinity::single, 7);
              }),
              kChiBound);
    EXPECT_LT(chi_square(n, kBins, [](uint32_t i) {
                  FlowKey k = key("2001:db8::", 0);
                  k.src.b[3] = static_cast<uint8_t>(i >> 16);
                  k.src.b[4] = static_cast<uint8_t>(i >> 8);
                  k.src.b[5] = static_cast<uint8_t>(i);
                  return affinity_hash(k, Affinity::network, 7);
              }),
              kChiBound);
}

TEST(BucketOf, MapsTheWholeHashRangeOntoEveryBucket) {
    EXPECT_EQ(bucket_of(0, 60), 0u);
    EXPECT_EQ(bucket_of(0xffffffffu, 60), 59u);
    EXPECT_EQ(bucket_of(0xffffffffu, 65536), 65535u);
    std::vector<bool> seen(60);
    for (uint64_t h = 0; h <= 0xffffffffu; h += 0x1000000) seen[bucket_of(static_cast<uint32_t>(h), 60)] = true;
    for (bool s : seen) EXPECT_TRUE(s);
}
