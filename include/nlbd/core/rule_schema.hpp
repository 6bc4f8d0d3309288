#pragma once
// The port-rule schema (SPEC §2, §9): every key of a [[port_rule]] table is
// declared once, in kRuleFields, with its type, range, the modes and health
// checks it applies to, its scope (rule key, cluster-wide, per host) and its
// bytes in the canonical record. Everything that names a rule field iterates
// the table:
//   - parsing and validation (config/config.cpp, config/validate.cpp): keys,
//     types, ranges, "only in mode", "only with health_check", the messages'
//     "allowed" part;
//   - the canonical record (rule_record below): fingerprint, canonical order,
//     rule-list frames, hash seed;
//   - reload diffs (config/diff.cpp) and `nlbctl params` (the daemon);
//   - the key tables of docs/port-rules.md, docs/health.md and the record
//     layout in docs/heartbeat.md (config/rule_keys.hpp writes them,
//     tests/unit/rule_schema_test.cpp fails when they differ).
// A new field is a row here, the code that uses its value, and a sample in
// rule_schema_test.cpp (which refuses a field without one).
//
// Control plane: the accessors may allocate; the packet path never includes
// this header.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "nlbd/core/rules.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd {

// Spellings, indexed by the enum's value: the one name table of each enum
// (name_of() and the configuration read them).
inline constexpr std::string_view kProtocolNames[] = {"tcp", "udp", "both"};
inline constexpr std::string_view kFilterModeNames[] = {"multiple", "single", "disabled"};
inline constexpr std::string_view kAffinityNames[] = {"none", "single", "network"};
inline constexpr std::string_view kHealthKindNames[] = {"none", "tcp", "tls", "http", "https"};
static_assert(std::size(kProtocolNames) == size_t(Protocol::both) + 1);
static_assert(std::size(kFilterModeNames) == size_t(FilterMode::disabled) + 1);
static_assert(std::size(kAffinityNames) == size_t(Affinity::network) + 1);
static_assert(std::size(kHealthKindNames) == size_t(HealthKind::https) + 1);

// How a field is written in the cluster file, and which FieldValue holds it.
enum class FieldType : uint8_t {
    vip,       // "all" or an address: std::optional<IpAddr> (nullopt = "all")
    address,   // an IP address: std::optional<IpAddr>
    ports,     // "443", "1024-65535" or an integer: PortRange
    choice,    // one of names[lo..hi]: the enum's value, int64_t
    integer,   // lo..hi: int64_t
    weight,    // "equal" or lo..hi: int64_t, kEqualWeightValue for "equal"
    integers,  // an array of lo..hi: std::vector<int64_t>
    dns_name,  // std::string
    url_path,  // an absolute request path: std::string
    file,      // a path relative to the cluster file, which must exist: std::string
};

// Who must agree on a field's value.
enum class Scope : uint8_t {
    key,         // names the rule (rule_name): VIP, ports, protocol
    cluster,     // the rule's content: equal on every host that applies "the same rule"
    advertised,  // this host's own value, sent in every heartbeat (the per-rule load byte)
    local,       // this host's own value, never sent
};

// Which struct holds the field.
enum class Part : uint8_t { rule, health };

struct PortRange {
    uint16_t lo = 0;
    uint16_t hi = 65535;
    friend bool operator==(const PortRange&, const PortRange&) = default;
};

inline constexpr int64_t kEqualWeightValue = -1;  // load_weight = "equal"

// A field's typed value (FieldType says which alternative).
using FieldValue =
    std::variant<int64_t, PortRange, std::optional<IpAddr>, std::string, std::vector<int64_t>>;

// Reads and writes one field of a rule and its health check. set() takes a
// value the reader has range-checked.
struct RuleAccess {
    Part part = Part::rule;
    FieldValue (*get)(const PortRule&, const HealthCheck&) = nullptr;
    void (*set)(PortRule&, HealthCheck&, const FieldValue&) = nullptr;
};

constexpr uint8_t mode_bit(FilterMode m) noexcept { return static_cast<uint8_t>(1u << unsigned(m)); }
constexpr uint8_t check_bit(HealthKind k) noexcept { return static_cast<uint8_t>(1u << unsigned(k)); }
inline constexpr uint8_t kAnyMode =
    mode_bit(FilterMode::multiple) | mode_bit(FilterMode::single) | mode_bit(FilterMode::disabled);
inline constexpr uint8_t kAnyCheck = check_bit(HealthKind::tcp) | check_bit(HealthKind::tls) |
                                     check_bit(HealthKind::http) | check_bit(HealthKind::https);
inline constexpr uint8_t kHttpChecks = check_bit(HealthKind::http) | check_bit(HealthKind::https);
inline constexpr uint8_t kTlsChecks = check_bit(HealthKind::tls) | check_bit(HealthKind::https);

struct RuleField {
    std::string_view key;          // in [[port_rule]]
    FieldType type;
    Scope scope;
    uint8_t record = 0;            // bytes in the canonical record (key and cluster scope only)
    bool seeded = false;           // its record bytes feed the hash seed: changing it moves flows
    int64_t lo = 0;                // integer, weight, each element of integers; choice: the
    int64_t hi = 0;                //   enum values the file may write
    std::span<const std::string_view> names = {};  // choice: spelling of each enum value
    uint8_t modes = kAnyMode;      // mode_bit()s of the rules it may be set on
    uint8_t required_in = 0;       // mode_bit()s of the rules that must set it
    uint8_t checks = 0;            // check_bit()s it may be set with (a health_* key); 0 = any rule
    uint8_t min_items = 0;         // integers
    std::string_view allowed = {}; // what errors and docs say is allowed; empty = from type and range
    std::string_view default_text = {};  // docs: empty = the default rule's value
    std::string_view meaning = {};       // docs
    RuleAccess access = {};
};

namespace detail {

template <class M>
struct MemberTraits;
template <class C, class T>
struct MemberTraits<T C::*> {
    using Class = C;
    using Type = T;
};
template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};

template <class C>
constexpr const C& part_of(const PortRule& r, const HealthCheck& h) {
    if constexpr (std::is_same_v<C, PortRule>) return r;
    else return h;
}
template <class C>
constexpr C& part_of(PortRule& r, HealthCheck& h) {
    if constexpr (std::is_same_v<C, PortRule>) return r;
    else return h;
}

}  // namespace detail

// Access to a member of PortRule or HealthCheck: integers and enums as
// int64_t, vectors of integers as std::vector<int64_t>, the rest as is.
template <auto M>
constexpr RuleAccess member() {
    using C = typename detail::MemberTraits<decltype(M)>::Class;
    using T = typename detail::MemberTraits<decltype(M)>::Type;
    static_assert(std::is_same_v<C, PortRule> || std::is_same_v<C, HealthCheck>);
    RuleAccess a;
    a.part = std::is_same_v<C, PortRule> ? Part::rule : Part::health;
    a.get = [](const PortRule& r, const HealthCheck& h) -> FieldValue {
        const T& v = detail::part_of<C>(r, h).*M;
        if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) return static_cast<int64_t>(v);
        else if constexpr (detail::IsVector<T>::value) return std::vector<int64_t>(v.begin(), v.end());
        else return v;
    };
    a.set = [](PortRule& r, HealthCheck& h, const FieldValue& x) {
        T& v = detail::part_of<C>(r, h).*M;
        if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
            v = static_cast<T>(std::get<int64_t>(x));
        } else if constexpr (detail::IsVector<T>::value) {
            v.clear();
            for (int64_t e : std::get<std::vector<int64_t>>(x))
                v.push_back(static_cast<typename T::value_type>(e));
        } else {
            v = std::get<T>(x);
        }
    };
    return a;
}

inline constexpr RuleAccess kPortsAccess = {
    Part::rule,
    [](const PortRule& r, const HealthCheck&) -> FieldValue { return PortRange{r.port_lo, r.port_hi}; },
    [](PortRule& r, HealthCheck&, const FieldValue& v) {
        r.port_lo = std::get<PortRange>(v).lo;
        r.port_hi = std::get<PortRange>(v).hi;
    }};

inline constexpr RuleAccess kLoadWeightAccess = {
    Part::rule,
    [](const PortRule& r, const HealthCheck&) -> FieldValue {
        return r.equal_weight ? kEqualWeightValue : int64_t{r.load_weight};
    },
    [](PortRule& r, HealthCheck&, const FieldValue& v) {
        const int64_t w = std::get<int64_t>(v);
        r.equal_weight = w == kEqualWeightValue;
        if (!r.equal_weight) r.load_weight = static_cast<uint8_t>(w);
    }};

// Every key of a [[port_rule]] table. Order matters: it is the order keys are
// read and reported in, mode and health_check come before the keys that
// depend on them, and the record fields' order is the canonical record's
// layout (key fields first, then the other seeded ones).
inline constexpr RuleField kRuleFields[] = {
    {.key = "vip", .type = FieldType::vip, .scope = Scope::key, .record = 17, .seeded = true,
     .meaning = "the VIP the rule applies to; \"all\": every VIP (a rule for a specific VIP wins over "
                "an \"all\" rule)",
     .access = member<&PortRule::vip>()},
    {.key = "ports", .type = FieldType::ports, .scope = Scope::key, .record = 4, .seeded = true,
     .lo = 0, .hi = 65535,
     .meaning = "destination port or range",
     .access = kPortsAccess},
    {.key = "protocol", .type = FieldType::choice, .scope = Scope::key, .record = 1, .seeded = true,
     .lo = 0, .hi = 2, .names = kProtocolNames,
     .meaning = "transport protocol; \"both\" = TCP and UDP",
     .access = member<&PortRule::protocol>()},
    {.key = "mode", .type = FieldType::choice, .scope = Scope::cluster, .record = 1, .seeded = true,
     .lo = 0, .hi = 2, .names = kFilterModeNames,
     .meaning = "filtering mode: \"multiple\" hosts share the traffic by buckets, a \"single\" host "
                "(the best handling priority) takes all of it, \"disabled\": every host drops it",
     .access = member<&PortRule::mode>()},
    {.key = "affinity", .type = FieldType::choice, .scope = Scope::cluster, .record = 1, .seeded = true,
     .lo = 0, .hi = 2, .names = kAffinityNames, .modes = mode_bit(FilterMode::multiple),
     .meaning = "what a flow is hashed by: \"none\" = source IP and port, \"single\" = source IP, "
                "\"network\" = source /24 (IPv4) or /48 (IPv6)",
     .access = member<&PortRule::affinity>()},
    {.key = "load_weight", .type = FieldType::weight, .scope = Scope::advertised,
     .lo = 0, .hi = 100, .modes = mode_bit(FilterMode::multiple),
     .meaning = "this host's share of the rule's buckets, relative to the other hosts'; "
                "\"equal\" counts as 50",
     .access = kLoadWeightAccess},
    {.key = "handling_priority", .type = FieldType::integer, .scope = Scope::advertised,
     .lo = 1, .hi = kMaxHosts, .modes = mode_bit(FilterMode::single),
     .required_in = mode_bit(FilterMode::single), .default_text = "none",
     .meaning = "this host's rank for the rule, unique across the hosts: the live host with the "
                "lowest value takes all of the rule's traffic",
     .access = member<&PortRule::handling_priority>()},
    {.key = "affinity_timeout_s", .type = FieldType::integer, .scope = Scope::cluster, .record = 4,
     .lo = 0, .hi = 86400,
     .meaning = "extended affinity: keep a client on its host this long after its bucket moves; 0 = off",
     .access = member<&PortRule::affinity_timeout_s>()},
    {.key = "static_weights", .type = FieldType::integers, .scope = Scope::local,
     .lo = 0, .hi = 100, .modes = mode_bit(FilterMode::multiple),
     .allowed = "an array of weights 0..100 aligned with cluster.static_members",
     .default_text = "none",
     .meaning = "with cluster.static_members only: every member's load_weight, in static_members "
                "order (this host's entry must equal its load_weight, which must be a number)",
     .access = member<&PortRule::static_weights>()},
    {.key = "static_priorities", .type = FieldType::integers, .scope = Scope::local,
     .lo = 1, .hi = kMaxHosts, .modes = mode_bit(FilterMode::single),
     .allowed = "an array of priorities 1..64 aligned with cluster.static_members",
     .default_text = "none",
     .meaning = "with cluster.static_members only: every member's handling_priority, distinct, in "
                "static_members order",
     .access = member<&PortRule::static_priorities>()},
    {.key = "health_check", .type = FieldType::choice, .scope = Scope::local,
     .lo = 1, .hi = 4, .names = kHealthKindNames, .default_text = "none",
     .meaning = "probe of the rule's service (docs/health.md): \"tcp\" connect, \"tls\" handshake, "
                "\"http\" GET, \"https\" GET over TLS; while it fails the rule is drained on this host",
     .access = member<&HealthCheck::kind>()},
    {.key = "health_port", .type = FieldType::integer, .scope = Scope::local,
     .lo = 1, .hi = 65535, .checks = kAnyCheck, .default_text = "the rule's first port",
     .meaning = "port to probe; required when the rule's ports start at 0",
     .access = member<&HealthCheck::port>()},
    {.key = "health_address", .type = FieldType::address, .scope = Scope::local,
     .checks = kAnyCheck, .default_text = "the rule's VIP",
     .meaning = "address to probe; for vip = \"all\": [host] dedicated_ip, else 127.0.0.1",
     .access = member<&HealthCheck::address>()},
    {.key = "health_path", .type = FieldType::url_path, .scope = Scope::local,
     .checks = kHttpChecks,
     .meaning = "request path",
     .access = member<&HealthCheck::path>()},
    {.key = "health_expect_status", .type = FieldType::integers, .scope = Scope::local,
     .lo = 100, .hi = 599, .checks = kHttpChecks, .min_items = 1,
     .allowed = "a non-empty array of HTTP status codes 100..599 such as [200, 204]",
     .meaning = "accepted status codes",
     .access = member<&HealthCheck::expect_status>()},
    {.key = "health_sni", .type = FieldType::dns_name, .scope = Scope::local,
     .checks = kTlsChecks, .default_text = "health_name",
     .meaning = "server name sent in the ClientHello",
     .access = member<&HealthCheck::sni>()},
    {.key = "health_name", .type = FieldType::dns_name, .scope = Scope::local,
     .checks = kAnyCheck & ~check_bit(HealthKind::tcp), .default_text = "cluster.name",
     .meaning = "the certificate must cover it (SAN / CN, wildcards as RFC 6125); also the HTTP Host",
     .access = member<&HealthCheck::name>()},
    {.key = "health_ca", .type = FieldType::file, .scope = Scope::local,
     .checks = kTlsChecks,
     .allowed = "a PEM file of CA certificates, path relative to this file", .default_text = "none",
     .meaning = "the server's certificate chain must verify against these CAs",
     .access = member<&HealthCheck::ca_file>()},
    {.key = "health_interval_ms", .type = FieldType::integer, .scope = Scope::local,
     .lo = 100, .hi = 3600000, .checks = kAnyCheck,
     .meaning = "one probe per interval",
     .access = member<&HealthCheck::interval_ms>()},
    {.key = "health_timeout_ms", .type = FieldType::integer, .scope = Scope::local,
     .lo = 10, .hi = 60000, .checks = kAnyCheck,
     .meaning = "below health_interval_ms; bounds connect + handshake + request + response",
     .access = member<&HealthCheck::timeout_ms>()},
    {.key = "health_rise", .type = FieldType::integer, .scope = Scope::local,
     .lo = 1, .hi = 100, .checks = kAnyCheck,
     .meaning = "consecutive successes to become up",
     .access = member<&HealthCheck::rise>()},
    {.key = "health_fall", .type = FieldType::integer, .scope = Scope::local,
     .lo = 1, .hi = 100, .checks = kAnyCheck,
     .meaning = "consecutive failures to become down",
     .access = member<&HealthCheck::fall>()},
};

constexpr bool cluster_wide(const RuleField& f) noexcept {
    return f.scope == Scope::key || f.scope == Scope::cluster;
}

// Whether f may be set on rule r with health check h: r's mode is one of
// f.modes and, for a key that depends on health_check, h.kind is one of
// f.checks.
constexpr bool applies(const RuleField& f, const PortRule& r, const HealthCheck& h) noexcept {
    return (f.modes & mode_bit(r.mode)) != 0 && (f.checks == 0 || (f.checks & check_bit(h.kind)) != 0);
}

namespace detail {

constexpr size_t index_of(std::string_view key) {
    for (size_t i = 0; i < std::size(kRuleFields); ++i)
        if (kRuleFields[i].key == key) return i;
    return std::size(kRuleFields);
}

template <class Pred>
constexpr size_t record_bytes(Pred pred) {
    size_t n = 0;
    for (const RuleField& f : kRuleFields)
        if (pred(f)) n += f.record;
    return n;
}

// The record fields for which pred holds come before all the others.
template <class Pred>
constexpr bool record_prefix(Pred pred) {
    bool left = false;
    for (const RuleField& f : kRuleFields) {
        if (f.record == 0) continue;
        if (!pred(f)) left = true;
        else if (left) return false;
    }
    return true;
}

constexpr size_t record_width(FieldType t) {
    switch (t) {
    case FieldType::vip: return 17;
    case FieldType::ports: return 4;
    case FieldType::choice: return 1;
    default: return 0;
    }
}

constexpr bool schema_is_consistent() {
    const size_t mode = index_of("mode"), check = index_of("health_check");
    if (mode == std::size(kRuleFields) || check == std::size(kRuleFields)) return false;
    for (size_t i = 0; i < std::size(kRuleFields); ++i) {
        const RuleField& f = kRuleFields[i];
        if (index_of(f.key) != i || !f.access.get || !f.access.set) return false;
        // Only cluster-wide fields are in the record, each with its type's width.
        if ((f.record != 0) != cluster_wide(f)) return false;
        if (f.record != 0 && f.type != FieldType::integer && f.record != record_width(f.type)) return false;
        if (f.type == FieldType::integer && f.record > 8) return false;
        if (f.seeded && f.record == 0) return false;
        if ((f.type == FieldType::choice) != !f.names.empty()) return false;
        if (f.type == FieldType::choice && (f.lo < 0 || f.lo > f.hi || size_t(f.hi) >= f.names.size()))
            return false;
        // A key that depends on the mode or the check is read after it.
        if (f.modes != kAnyMode && i < mode) return false;
        if (f.checks != 0 && (i < check || f.access.part != Part::health)) return false;
        if ((f.required_in & ~f.modes) != 0 || f.modes == 0) return false;
        if (f.min_items != 0 && f.type != FieldType::integers) return false;
    }
    return kRuleFields[mode].names.data() == kFilterModeNames &&
           kRuleFields[check].names.data() == kHealthKindNames;
}

}  // namespace detail

static_assert(detail::schema_is_consistent(), "kRuleFields: see detail::schema_is_consistent");

// ---- The canonical record ------------------------------------------------
// A rule's cluster-wide content, what must be equal on every host for them to
// apply "the same rule": the record fields of kRuleFields in table order,
// each big-endian in its `record` bytes (vip: family 0 = "all", 4 or 6, then
// 16 address bytes, IPv4 in the first 4; ports: first and last port, 2 bytes
// each; choice: the enum value). Fixed size, compared bytewise. Bytes
// [0, kRuleKeyLen) are the rule's key (VIP, ports, protocol), its name; bytes
// [0, kRuleSeedLen) feed the hash seed (core::rule_identity). Per-host fields
// and health checks are not part of it. It feeds the rules fingerprint, the
// canonical rule order (heartbeat per-rule arrays, map classes) and the
// rule-list frames. A new record field changes every fingerprint and hash
// seed: hosts of different versions then hold different versions of every
// rule (tests/unit/rule_schema_test.cpp pins today's bytes).
inline constexpr size_t kRuleRecordLen = detail::record_bytes([](const RuleField&) { return true; });
inline constexpr size_t kRuleKeyLen =
    detail::record_bytes([](const RuleField& f) { return f.scope == Scope::key; });
inline constexpr size_t kRuleSeedLen = detail::record_bytes([](const RuleField& f) { return f.seeded; });
static_assert(detail::record_prefix([](const RuleField& f) { return f.scope == Scope::key; }),
              "the rule key must be the record's first bytes");
static_assert(detail::record_prefix([](const RuleField& f) { return f.seeded; }) &&
                  kRuleKeyLen <= kRuleSeedLen,
              "the hash seed must cover the record's first bytes, the key included");
static_assert(kRuleRecordLen == 28 && kRuleKeyLen == 22 && kRuleSeedLen == 24,
              "the canonical record is a wire format shared by every host of a cluster");

using RuleRecord = std::array<uint8_t, kRuleRecordLen>;
RuleRecord rule_record(const PortRule& r);
// The cluster-wide fields back from a record (the others at their defaults);
// nullopt when an address family, a port range or a choice is invalid
// (hostile input). Integers are taken as they are: a peer's range is its own.
std::optional<PortRule> rule_from_record(const RuleRecord& rec);
inline bool same_rule_key(const RuleRecord& a, const RuleRecord& b) noexcept {
    return std::equal(a.begin(), a.begin() + kRuleKeyLen, b.begin());
}

}  // namespace nlbd
