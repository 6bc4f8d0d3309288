#pragma once
// Pure helpers of the control thread's cluster work (no DPDK), unit-tested
// in tests/unit/cluster_frames_test.cpp. Control plane: may allocate.

#include <cstdint>
#include <optional>
#include <vector>

#include "nlbd/core/rules.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::daemon {

// IGMPv2 membership report for 239.255.y.z, where y.z are the last two bytes
// of `first_v4_vip` (SPEC §3, igmp mode): Ethernet to 01-00-5e-7f-y-z, IPv4
// with TTL 1 and the router alert option, source `src_ip` (0.0.0.0 when
// absent or not IPv4). Empty when `first_v4_vip` is not IPv4.
std::vector<uint8_t> igmp_v2_report(const IpAddr& first_v4_vip, const MacAddr& src_mac,
                                    const std::optional<IpAddr>& src_ip);

// IGMPv2 Leave Group for the same group (RFC 2236): Ethernet to
// 01-00-5e-00-00-02, IPv4 to 224.0.0.2 (all routers), type 0x17, group
// 239.255.y.z; TTL 1, router alert, source as above. Empty for IPv6.
std::vector<uint8_t> igmp_v2_leave(const IpAddr& first_v4_vip, const MacAddr& src_mac,
                                   const std::optional<IpAddr>& src_ip);

// Seconds between the unsolicited membership reports nlbd sends in igmp mode
// (the first at start). Below the IGMPv2 group membership interval (260 s
// with the default 125 s query interval) and below a Linux bridge's
// (mcast_membership_interval), so a snooping switch without a querier keeps
// the group too. scripts/lab.sh checks the spacing on the bridge.
inline constexpr unsigned kIgmpReportIntervalS = 10;

// The rules (indices into `rules`, ascending) that `enable|disable|drain`
// addresses: with a VIP, the rules of that VIP and the "all"-VIP rules; with
// a port, those whose range contains it; all_ports = every port.
std::vector<size_t> select_rules(const std::vector<PortRule>& rules, const std::optional<IpAddr>& vip,
                                 bool all_ports, uint16_t port);

}  // namespace nlbd::daemon
