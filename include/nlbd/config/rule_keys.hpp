#pragma once
// The port-rule schema (core/rule_schema.hpp) as the configuration shows it:
// the "allowed" part of errors and docs, a field's value as a cluster file
// writes it (reload diffs, nlbctl params), and the generated key tables of
// the docs. Control plane: allocates, throws std::runtime_error.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nlbd/core/rule_schema.hpp"

namespace nlbd::config {

// What an address key allows (rule keys, cluster.vips, host.dedicated_ip).
inline constexpr const char* kAddressAllowed =
    "an IPv4 or IPv6 address such as \"10.0.0.10\" or \"2001:db8::10\"";

// What errors and docs say f allows: its own `allowed`, else from its type
// and range ("an integer 1..64", "tcp, udp, both", ...).
std::string allowed_text(const RuleField& f);
// `mode = "single"`, `mode = "multiple" or "single"`: the modes in a mask.
std::string modes_text(uint8_t modes);
// `health_check = "http" or "https"`: the checks in a mask.
std::string checks_text(uint8_t checks);

// A field's value as a cluster file writes it: an integer ("30"), a string
// ("all", "1024-65535", "equal", "single") or an array of integers.
using Written = std::variant<int64_t, std::string, std::vector<int64_t>>;
Written written(const RuleField& f, const PortRule& r, const HealthCheck& h);
// For messages and diffs: 30, all, 1024-65535, 200,204.
std::string text(const Written& w);
// As a TOML value: 30, "all", [200, 204].
std::string toml_value(const Written& w);

// The key tables the docs embed, generated from kRuleFields:
//   "port_rule":      every key of a [[port_rule]] (docs/port-rules.md),
//   "health":         the health check keys (docs/health.md),
//   "record":         the canonical record's layout (docs/heartbeat.md),
//   "port_rule_toml": every key as comment lines (configs/cluster.example.toml).
// Whole lines; the Markdown tables with a blank line before and after.
// Throws on another name.
std::string key_table(std::string_view name);
// `text` with every generated block rewritten: the lines between the line
// holding "<!-- rule-schema: NAME -->" and the line holding
// "<!-- /rule-schema -->" become key_table(NAME) (the marker lines stay, so
// they may be comments: "# <!-- ... -->"). Throws on an unknown NAME or an
// unterminated block. src/tools/nlbd_rule_keys.cpp rewrites the docs with
// it; tests/unit/rule_schema_test.cpp fails when a doc is not what it returns.
std::string refresh_key_tables(std::string_view text);
inline constexpr std::string_view kKeyTableBegin = "<!-- rule-schema: ";
inline constexpr std::string_view kKeyTableEnd = "<!-- /rule-schema -->";

}  // namespace nlbd::config
