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

// Keys, ranges, modes and defaults of every field: kRuleFields
// (core/rule_schema.hpp), the one declaration parsing, validation, the
// canonical record, reload diffs, params and the docs follow.
struct PortRule {
    std::optional<IpAddr> vip;       // nullopt = "all"
    uint16_t port_lo = 0;
    uint16_t port_hi = 65535;
    Protocol protocol = Protocol::both;
    FilterMode mode = FilterMode::multiple;
    Affinity affinity = Affinity::single;
    bool equal_weight = true;        // load_weight = "equal"
    uint8_t load_weight = 50;        // this host's weight when !equal_weight
    uint8_t handling_priority = 0;   // 0 = unset
    uint32_t affinity_timeout_s = 0; // extended affinity, 0 = off

    // Static membership only: the other members' weights / priorities, in the
    // order of [cluster] static_members. Empty = every member uses this
    // host's load_weight; priorities default to host-id order.
    std::vector<uint8_t> static_weights;
    std::vector<uint8_t> static_priorities;

    unsigned line = 0;               // where the rule starts in its file
};

// Health check of one [[port_rule]] (SPEC §9; the health_* keys of
// kRuleFields). A failing check drains the rule on this host (see
// docs/health.md). Defaults are resolved by load_config: port = the rule's
// first port, address = the rule's VIP (nullopt for a vip = "all" rule: the
// host's dedicated_ip, else 127.0.0.1, chosen by the checker), name =
// cluster.name, sni = name. Per host: never part of the rule's content.
enum class HealthKind : uint8_t { none, tcp, tls, http, https };

struct HealthCheck {
    HealthKind kind = HealthKind::none;
    uint16_t port = 0;
    std::optional<IpAddr> address;
    std::string path = "/";                      // http/https
    std::vector<uint16_t> expect_status{200};    // http/https
    std::string sni;                             // tls/https
    std::string name;                            // tls/https: the certificate must cover it; http Host
    std::string ca_file;                         // tls/https, optional: chain verification
    uint32_t interval_ms = 1000;
    uint32_t timeout_ms = 500;                   // < interval_ms
    uint32_t rise = 2;
    uint32_t fall = 3;
};

// NLB's default when a cluster file has no [[port_rule]]: all VIPs, all ports,
// both protocols, multiple host, single affinity, equal weights.
inline PortRule default_port_rule() { return PortRule{}; }

// A rule's name, from its identity (VIP, ports, protocol), never its
// position: "10.0.0.10:443/tcp", "all:1024-65535/both", "[2001:db8::1]:80/udp".
// The same on every host whatever order its file lists the rules in; what
// commands, counters, query, metrics and the state file call a rule.
std::string rule_name(const PortRule& r);

// The load weight `load_weight = "equal"` stands for (NLB: equal shares).
inline constexpr uint8_t kEqualWeight = 50;
// A multiple-mode rule's weight as the maps use it: 0..100.
inline uint8_t effective_weight(const PortRule& r) noexcept {
    return r.equal_weight ? kEqualWeight : (r.load_weight > 100 ? uint8_t{100} : r.load_weight);
}

// Short names, as the configuration spells them ("tcp", "multiple", "single",
// "unicast", ...): reports, --check-config, reload diffs, query. The rule
// enums' names are the choices of kRuleFields (core/rule_schema.hpp).
const char* name_of(Protocol p) noexcept;
const char* name_of(FilterMode m) noexcept;
const char* name_of(Affinity a) noexcept;
const char* name_of(ClusterMode m) noexcept;

// The rules a host applies: `configured`, or NLB's default rule when empty.
inline std::vector<PortRule> rules_or_default(const std::vector<PortRule>& configured) {
    return configured.empty() ? std::vector<PortRule>{default_port_rule()} : configured;
}

// The canonical record of a rule's cluster-wide content (RuleRecord,
// rule_record) is declared with the schema, which gives its layout:
// core/rule_schema.hpp.

}  // namespace nlbd
