#include "nlbd/config/rule_keys.hpp"

#include <stdexcept>

namespace nlbd::config {
namespace {

std::string range_text(const RuleField& f) { return std::to_string(f.lo) + ".." + std::to_string(f.hi); }

// `"a"`, `"a" or "b"`, `"a", "b" or "c"`: names[i] for each bit i of mask.
std::string or_list(std::span<const std::string_view> names, unsigned mask) {
    std::vector<std::string_view> picked;
    for (size_t i = 0; i < names.size(); ++i)
        if ((mask >> i) & 1u) picked.push_back(names[i]);
    std::string s;
    for (size_t i = 0; i < picked.size(); ++i) {
        if (i != 0) s += i + 1 == picked.size() ? " or " : ", ";
        s.append("\"").append(picked[i]).append("\"");
    }
    return s;
}

std::string ports_text(const PortRange& p) {
    return p.lo == p.hi ? std::to_string(p.lo) : std::to_string(p.lo) + "-" + std::to_string(p.hi);
}

std::string scope_text(const RuleField& f) {
    switch (f.scope) {
    case Scope::key: return "rule key, hash seed";
    case Scope::cluster: return f.seeded ? "cluster-wide, hash seed" : "cluster-wide";
    case Scope::advertised: return "this host, in heartbeats";
    case Scope::local: return "this host";
    }
    return "?";
}

std::string applies_text(const RuleField& f) {
    std::string s;
    if (f.modes != kAnyMode) s.append("`").append(modes_text(f.modes)).append("`");
    if (f.required_in != 0) s += " (required)";
    if (f.checks == kAnyCheck) s = "any `health_check`";
    else if (f.checks != 0) s.assign("`").append(checks_text(f.checks)).append("`");
    return s.empty() ? "any rule" : s;
}

std::string default_cell(const RuleField& f) {
    if (!f.default_text.empty()) return std::string(f.default_text);
    static const PortRule kRule = default_port_rule();
    static const HealthCheck kCheck;
    return std::string("`").append(toml_value(written(f, kRule, kCheck))).append("`");
}

std::string record_encoding(const RuleField& f) {
    switch (f.type) {
    case FieldType::vip:
        return "address family (0 = \"all\", 4, 6), then the address in 16 bytes (IPv4: the first 4, "
               "the rest 0)";
    case FieldType::ports: return "first port, last port: 2 bytes each";
    case FieldType::choice: {
        std::string s;
        for (int64_t v = f.lo; v <= f.hi; ++v)
            s.append(s.empty() ? "" : ", ").append(std::to_string(v)).append(" ").append(f.names[size_t(v)]);
        return s;
    }
    default: return "unsigned integer";
    }
}

std::string rule_keys_table(bool health_only) {
    std::string s =
        "\n| key | applies to | scope | allowed | default | meaning |\n"
        "|---|---|---|---|---|---|\n";
    for (const RuleField& f : kRuleFields) {
        if (health_only && f.access.part != Part::health) continue;
        s.append("| `").append(f.key).append("` | ").append(applies_text(f)).append(" | ");
        s.append(scope_text(f)).append(" | ").append(allowed_text(f)).append(" | ");
        s.append(default_cell(f)).append(" | ").append(f.meaning).append(" |\n");
    }
    return s + "\n";
}

// `text` as comment lines of at most 79 columns, each starting with `lead`.
std::string wrap(std::string_view text, const std::string& lead) {
    std::string out, line = lead;
    size_t at = 0;
    while (at < text.size()) {
        size_t end = text.find(' ', at);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view word = text.substr(at, end - at);
        if (line.size() > lead.size() && line.size() + 1 + word.size() > 79) {
            out.append(line).append("\n");
            line = lead;
        }
        if (line.size() > lead.size()) line += ' ';
        line.append(word);
        at = end + 1;
    }
    return out.append(line).append("\n");
}

// The keys as comments of a cluster file (configs/cluster.example.toml).
std::string rule_keys_comment() {
    static const PortRule kRule = default_port_rule();
    static const HealthCheck kCheck;
    std::string s;
    for (const RuleField& f : kRuleFields) {
        s.append("#   ").append(f.key);
        if (f.default_text.empty()) s.append(" = ").append(toml_value(written(f, kRule, kCheck)));
        else s.append(" (default: ").append(f.default_text).append(")");
        s += '\n';
        std::string where;
        if (f.modes != kAnyMode) where.append("only in ").append(modes_text(f.modes));
        if (f.required_in != 0) where += ", required there";
        if (f.checks == kAnyCheck) where = "with any health_check";
        else if (f.checks != 0) where.assign("only with ").append(checks_text(f.checks));
        if (!where.empty()) where += "; ";
        s += wrap(where.append("allowed: ").append(allowed_text(f)).append("; ").append(f.meaning), "#       ");
    }
    return s;
}

std::string record_table() {
    std::string s =
        "\n| offset | size | field | encoding (big-endian) | part of |\n"
        "|---|---|---|---|---|\n";
    size_t offset = 0;
    for (const RuleField& f : kRuleFields) {
        if (f.record == 0) continue;
        const char* part = f.scope == Scope::key ? "rule key, hash seed" : f.seeded ? "hash seed" : "-";
        s += "| " + std::to_string(offset) + " | " + std::to_string(f.record) + " | `" + std::string(f.key) +
             "` | " + record_encoding(f) + " | " + part + " |\n";
        offset += f.record;
    }
    return s + "\n";
}

}  // namespace

std::string allowed_text(const RuleField& f) {
    if (!f.allowed.empty()) return std::string(f.allowed);
    switch (f.type) {
    case FieldType::vip: return "\"all\" or one of cluster.vips";
    case FieldType::address: return std::string(kAddressAllowed);
    case FieldType::ports:
        return "a port \"443\", a range \"1024-65535\" (lo <= hi) or an integer, ports " + range_text(f);
    case FieldType::choice: {
        std::string s;
        for (int64_t v = f.lo; v <= f.hi; ++v) s.append(s.empty() ? "" : ", ").append(f.names[size_t(v)]);
        return s;
    }
    case FieldType::integer: return "an integer " + range_text(f);
    case FieldType::weight: return "\"equal\" or an integer " + range_text(f);
    case FieldType::integers: return "an array of integers " + range_text(f);
    case FieldType::dns_name: return "a DNS name such as \"mail.ehlo.dk\"";
    case FieldType::url_path: return "an absolute request path such as \"/owa/healthcheck.htm\" (no spaces)";
    case FieldType::file: return "an existing file, path relative to this file";
    }
    return "?";
}

std::string modes_text(uint8_t modes) { return "mode = " + or_list(kFilterModeNames, modes); }

std::string checks_text(uint8_t checks) { return "health_check = " + or_list(kHealthKindNames, checks); }

Written written(const RuleField& f, const PortRule& r, const HealthCheck& h) {
    const FieldValue v = f.access.get(r, h);
    switch (f.type) {
    case FieldType::vip:
    case FieldType::address: {
        const auto& a = std::get<std::optional<IpAddr>>(v);
        return a ? a->to_string() : std::string(f.type == FieldType::vip ? "all" : "none");
    }
    case FieldType::ports: return ports_text(std::get<PortRange>(v));
    case FieldType::choice: {
        const int64_t x = std::get<int64_t>(v);
        return x >= 0 && size_t(x) < f.names.size() ? std::string(f.names[size_t(x)]) : std::to_string(x);
    }
    case FieldType::weight:
        if (std::get<int64_t>(v) == kEqualWeightValue) return std::string("equal");
        return std::get<int64_t>(v);
    case FieldType::integer: return std::get<int64_t>(v);
    case FieldType::integers: return std::get<std::vector<int64_t>>(v);
    case FieldType::dns_name:
    case FieldType::url_path:
    case FieldType::file: return std::get<std::string>(v);
    }
    return std::string("?");
}

std::string text(const Written& w) {
    if (const auto* i = std::get_if<int64_t>(&w)) return std::to_string(*i);
    if (const auto* s = std::get_if<std::string>(&w)) return *s;
    std::string s;
    for (int64_t x : std::get<std::vector<int64_t>>(w)) s.append(s.empty() ? "" : ",").append(std::to_string(x));
    return s;
}

std::string toml_value(const Written& w) {
    if (const auto* i = std::get_if<int64_t>(&w)) return std::to_string(*i);
    if (const auto* s = std::get_if<std::string>(&w)) {
        std::string q = "\"";
        for (char c : *s) {
            if (c == '"' || c == '\\') q += '\\';
            q += c;
        }
        return q + "\"";
    }
    std::string s;
    for (int64_t x : std::get<std::vector<int64_t>>(w)) s.append(s.empty() ? "" : ", ").append(std::to_string(x));
    return "[" + s + "]";
}

std::string key_table(std::string_view name) {
    if (name == "port_rule") return rule_keys_table(false);
    if (name == "health") return rule_keys_table(true);
    if (name == "record") return record_table();
    if (name == "port_rule_toml") return rule_keys_comment();
    throw std::runtime_error("unknown rule-schema table '" + std::string(name) +
                             "'; allowed: port_rule, health, record, port_rule_toml");
}

std::string refresh_key_tables(std::string_view text) {
    std::string out;
    size_t at = 0;
    for (;;) {
        const size_t begin = text.find(kKeyTableBegin, at);
        if (begin == std::string_view::npos) break;
        const size_t name_at = begin + kKeyTableBegin.size();
        const size_t close = text.find(" -->", name_at);
        const size_t eol = text.find('\n', name_at);
        if (close == std::string_view::npos || eol == std::string_view::npos || close > eol)
            throw std::runtime_error("rule-schema block without \" -->\" on its line");
        const std::string_view name = text.substr(name_at, close - name_at);
        const size_t end = text.find(kKeyTableEnd, eol);
        if (end == std::string_view::npos)
            throw std::runtime_error("rule-schema block '" + std::string(name) + "' without " +
                                     std::string(kKeyTableEnd));
        out.append(text.substr(at, eol + 1 - at)).append(key_table(name));
        at = text.rfind('\n', end) + 1;  // the end marker's line stays
    }
    return out.append(text.substr(at));
}

}  // namespace nlbd::config
