#pragma once
// Plain value types shared by every layer. No DPDK, no allocation.

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace nlbd {

// Host ids are 1..64 (NLB host priority: lower id = higher priority).
using HostId = uint8_t;
inline constexpr HostId kNoHost = 0;
inline constexpr unsigned kMaxHosts = 64;
inline constexpr unsigned kMaxRules = 1024;
inline constexpr unsigned kMaxVips = 256;
inline constexpr uint32_t kMinBuckets = 1;
inline constexpr uint32_t kMaxBuckets = 65536;
// Default bucket count: see docs/design.md (balance measurement).
inline constexpr uint32_t kDefaultBuckets = 4096;

struct MacAddr {
    std::array<uint8_t, 6> b{};

    friend bool operator==(const MacAddr&, const MacAddr&) = default;
    bool is_broadcast() const noexcept {
        return b == std::array<uint8_t, 6>{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    }
    bool is_multicast() const noexcept { return (b[0] & 1) != 0; }
    std::string to_string() const;  // "02-bf-0a-00-00-01"
};

enum class Family : uint8_t { none = 0, v4 = 4, v6 = 6 };

// An IPv4 or IPv6 address in network byte order. IPv4 uses b[0..3]; the rest
// stays zero so that comparison and hashing of the whole struct is exact.
struct IpAddr {
    std::array<uint8_t, 16> b{};
    Family family = Family::none;

    friend bool operator==(const IpAddr&, const IpAddr&) = default;

    static IpAddr from_v4(const uint8_t* p) noexcept {
        IpAddr a;
        std::memcpy(a.b.data(), p, 4);
        a.family = Family::v4;
        return a;
    }
    static IpAddr from_v6(const uint8_t* p) noexcept {
        IpAddr a;
        std::memcpy(a.b.data(), p, 16);
        a.family = Family::v6;
        return a;
    }
    unsigned size() const noexcept { return family == Family::v6 ? 16 : 4; }

    // Control plane only (uses inet_pton / inet_ntop).
    static std::optional<IpAddr> parse(std::string_view text);
    std::string to_string() const;
};

}  // namespace nlbd
