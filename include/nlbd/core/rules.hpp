#pragma once
// Port rules as the operator writes them (SPEC §2), after parsing, before
// compilation. Control plane type: may allocate.

#include <array>
#include <cstddef>
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

// Short names, as the configuration spells them ("tcp", "multiple", "single",
// "unicast", ...): reports, --check-config, reload diffs, query.
const char* name_of(Protocol p) noexcept;
const char* name_of(FilterMode m) noexcept;
const char* name_of(Affinity a) noexcept;
const char* name_of(ClusterMode m) noexcept;

// The rules a host applies: `configured`, or NLB's default rule when empty.
inline std::vector<PortRule> rules_or_default(const std::vector<PortRule>& configured) {
    return configured.empty() ? std::vector<PortRule>{default_port_rule()} : configured;
}

// The one canonical encoding of a rule's cluster-wide content: what must be
// equal on every host for them to apply "the same rule". Big-endian, fixed
// size, compared bytewise:
//   [0]      VIP family (0 = "all")      [1..16]  VIP address (zero for "all")
//   [17..18] port_lo                     [19..20] port_hi
//   [21]     protocol                    [22]     filtering mode
//   [23]     affinity                    [24..27] affinity_timeout_s
// Bytes [0, kRuleKeyLen) are the rule's key (VIP, ports, protocol): the rule's
// name. Per-host fields (load_weight, equal_weight, handling_priority,
// static_*) and health checks are not part of it. It feeds the rules
// fingerprint, the canonical rule order (heartbeat per-rule arrays, map
// classes), the rule-list frames and the hash seed (core::rule_identity).
inline constexpr size_t kRuleRecordLen = 28;
inline constexpr size_t kRuleKeyLen = 22;  // through the protocol byte [21]
using RuleRecord = std::array<uint8_t, kRuleRecordLen>;
RuleRecord rule_record(const PortRule& r);
// The cluster-wide fields back from a record (weights and priorities left at
// their defaults); nullopt when a field is out of range (hostile input).
std::optional<PortRule> rule_from_record(const RuleRecord& rec);
inline bool same_rule_key(const RuleRecord& a, const RuleRecord& b) noexcept {
    for (size_t i = 0; i < kRuleKeyLen; ++i)
        if (a[i] != b[i]) return false;
    return true;
}

}  // namespace nlbd
