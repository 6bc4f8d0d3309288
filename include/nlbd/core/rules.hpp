#pragma once
// Port rules as the operator writes them (SPEC §2), after parsing, before
// compilation. Control plane type: may allocate.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlbd/core/types.hpp"

namespace nlbd {

enum class Protocol : uint8_t { tcp, udp, both };
enum class FilterMode : uint8_t { multiple, single, disabled };
enum class Affinity : uint8_t { none, single, network };
enum class ClusterMode : uint8_t { unicast, multicast, igmp };

struct PortRule {
    std::optional<IpAddr> vip;       // nullopt = "all"
    uint16_t port_lo = 0;
    uint16_t port_hi = 65535;
    Protocol protocol = Protocol::both;
    FilterMode mode = FilterMode::multiple;
    Affinity affinity = Affinity::single;
    bool equal_weight = true;        // load_weight = "equal"
    uint8_t load_weight = 50;        // 0..100, this host's weight when !equal_weight
    uint8_t handling_priority = 0;   // 1..64, single mode only (0 = unset)
    uint32_t affinity_timeout_s = 0; // extended affinity, 0 = off

    // Static membership only: the other members' weights / priorities, in the
    // order of [cluster] static_members. Empty = every member uses this
    // host's load_weight; priorities default to host-id order.
    std::vector<uint8_t> static_weights;
    std::vector<uint8_t> static_priorities;

    unsigned line = 0;               // where the rule starts in its file
};

// NLB's default when a cluster file has no [[port_rule]]: all VIPs, all ports,
// both protocols, multiple host, single affinity, equal weights.
inline PortRule default_port_rule() { return PortRule{}; }

// A rule's name, from its identity (VIP, ports, protocol), never its
// position: "10.0.0.10:443/tcp", "all:1024-65535/both", "[2001:db8::1]:80/udp".
// The same on every host whatever order its file lists the rules in; what
// commands, counters, query, metrics and the state file call a rule.
std::string rule_name(const PortRule& r);

}  // namespace nlbd
