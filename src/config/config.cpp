// Cluster file parsing (SPEC §7): TOML -> typed Config with defaults. Every
// type, range and enum problem of a single key is caught here, where the
// key's line is known; cross-field checks live in validate.cpp.

#include "nlbd/config/config.hpp"

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "nlbd/config/rule_keys.hpp"
#include "reader.hpp"

namespace nlbd::config {

namespace {

std::string format_message(const std::string& file, unsigned line, const std::string& key,
                           const std::string& what) {
    std::string m = file + ":" + std::to_string(line) + ": ";
    if (!key.empty()) m += key + ": ";
    return m + what;
}

}  // namespace

ConfigError::ConfigError(std::string file, unsigned line, std::string key, const std::string& what)
    : std::runtime_error(format_message(file, line, key, what)),
      file_(std::move(file)),
      line_(line),
      key_(std::move(key)) {}

namespace detail {

// Resolves path against the directory of the file that names it.
std::string resolve_relative(const std::string& from_file, const std::string& path) {
    std::filesystem::path p(path);
    if (p.is_absolute()) return path;
    const auto dir = std::filesystem::path(from_file).parent_path();
    return dir.empty() ? path : (dir / p).lexically_normal().string();
}

}  // namespace detail

namespace {

using detail::element_integer;
using detail::element_line;
using detail::element_path;
using detail::element_string;
using detail::quote;
using detail::Section;

IpAddr parse_address(const Section& s, const std::string& text, unsigned line,
                     const std::string& key_path) {
    auto a = IpAddr::parse(text);
    if (!a) detail::fail(s.file(), line, key_path, quote(text) + " is not an IP address", kAddressAllowed);
    return *a;
}

std::optional<uint16_t> parse_port_number(std::string_view t) {
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    if (t.empty() || t.size() > 6) return std::nullopt;
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size() || v > 65535) return std::nullopt;
    return static_cast<uint16_t>(v);
}

void parse_cluster(const Section& root, Config& cfg) {
    auto c = root.table("cluster", {"name", "vips", "mode", "buckets", "static_members",
                                    "heartbeat_interval_ms", "heartbeat_tolerance", "heartbeat_redundancy",
                                    "heartbeat_ethertype", "secret_file", "secret_grace_s",
                                    "nic_profile"});
    if (!c) root.missing("cluster", "a [cluster] table with name and vips");
    ClusterConfig& cl = cfg.cluster;

    cl.name = c->required_string("name", "a non-empty cluster name such as \"mail.ehlo.dk\"");
    if (cl.name.empty()) c->fail("name", "is empty", "a non-empty cluster name such as \"mail.ehlo.dk\"");

    const std::string vips_allowed =
        "a non-empty array of up to " + std::to_string(kMaxVips) + " distinct IPv4/IPv6 addresses";
    const toml::array* vips = c->array("vips", vips_allowed);
    if (vips == nullptr) c->missing("vips", vips_allowed);
    if (vips->empty()) c->fail("vips", "is empty", vips_allowed);
    if (vips->size() > kMaxVips)
        c->fail("vips", std::to_string(vips->size()) + " addresses", vips_allowed);
    for (size_t i = 0; i < vips->size(); ++i) {
        const std::string text = element_string(*c, "vips", *vips, i, kAddressAllowed);
        const unsigned line = element_line(*c, "vips", (*vips)[i]);
        const std::string path = element_path(*c, "vips", i);
        IpAddr a = parse_address(*c, text, line, path);
        for (size_t j = 0; j < cl.vips.size(); ++j)
            if (cl.vips[j] == a)
                detail::fail(c->file(), line, path,
                             quote(text) + " duplicates " + element_path(*c, "vips", j), vips_allowed);
        cfg.lines.emplace(path, line);
        cl.vips.push_back(a);
    }

    if (auto m = c->choice<ClusterMode>("mode", {{"unicast", ClusterMode::unicast},
                                                 {"multicast", ClusterMode::multicast},
                                                 {"igmp", ClusterMode::igmp}}))
        cl.mode = *m;
    if (auto b = c->integer("buckets", kMinBuckets, kMaxBuckets)) cl.buckets = static_cast<uint32_t>(*b);

    const std::string members_allowed = "an array of 1..64 distinct host ids 1..64 that includes host.id";
    if (const toml::array* m = c->array("static_members", members_allowed)) {
        if (m->empty() || m->size() > kMaxHosts)
            c->fail("static_members", std::to_string(m->size()) + " members", members_allowed);
        for (size_t i = 0; i < m->size(); ++i) {
            const auto id = static_cast<HostId>(element_integer(*c, "static_members", *m, i, 1, kMaxHosts));
            for (HostId prev : cl.static_members)
                if (prev == id)
                    detail::fail(c->file(), element_line(*c, "static_members", (*m)[i]),
                                 element_path(*c, "static_members", i),
                                 "host id " + std::to_string(id) + " is listed twice", members_allowed);
            cl.static_members.push_back(id);
        }
    }
    if (auto v = c->integer("heartbeat_interval_ms", 10, 10000)) cl.heartbeat_interval_ms = static_cast<uint32_t>(*v);
    if (auto v = c->integer("heartbeat_tolerance", 2, 100)) cl.heartbeat_tolerance = static_cast<uint32_t>(*v);
    if (auto v = c->integer("heartbeat_redundancy", 1, 10)) cl.heartbeat_redundancy = static_cast<uint32_t>(*v);
    if (const toml::node* n = c->node("heartbeat_ethertype")) {
        const auto* i = n->as_integer();
        if (i == nullptr)
            c->fail("heartbeat_ethertype", "expected an integer, got " + detail::type_name(*n),
                    "an integer 0x0600..0xFFFF such as 0x88B5");
        if (i->get() < 0 || i->get() > 0xFFFF)
            c->fail("heartbeat_ethertype", std::to_string(i->get()) + " is not an EtherType",
                    "an integer 0x0600..0xFFFF such as 0x88B5");
        cl.heartbeat_ethertype = static_cast<uint16_t>(i->get());
        // Range and reserved values are checked (once) in validate().
    }
    if (auto s = c->string("secret_file", "a path to the shared secret, relative to this file")) {
        if (s->empty()) c->fail("secret_file", "is empty", "a path to the shared secret, relative to this file");
        cl.secret_file = detail::resolve_relative(cfg.file, *s);
        std::error_code ec;
        if (!std::filesystem::is_regular_file(cl.secret_file, ec))
            c->fail("secret_file", quote(cl.secret_file) + " does not exist or is not a file",
                    "an existing file, path relative to this file");
        // Whoever reads the secret can forge heartbeats and take the cluster
        // over: refuse one that group or others may read or write.
        const auto perms = std::filesystem::status(cl.secret_file, ec).permissions();
        using P = std::filesystem::perms;
        if (!ec && (perms & (P::group_all | P::others_all)) != P::none) {
            char mode[8];
            std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(perms) & 07777);
            c->fail("secret_file", quote(cl.secret_file) + " has mode " + mode + ": group or others may read it",
                    "a file only its owner can read or write (chmod 600 " + cl.secret_file + ")");
        }
    }
    if (auto v = c->integer("secret_grace_s", 1, 86400)) cl.secret_grace_s = static_cast<uint32_t>(*v);
    if (auto s = c->string("nic_profile", "a path to a NIC profile, relative to this file")) {
        if (s->empty()) c->fail("nic_profile", "is empty", "a path to a NIC profile, relative to this file");
        cl.nic_profile = *s;
    }
}

void parse_host(const Section& root, Config& cfg) {
    auto h = root.table("host", {"id", "dedicated_ip", "initial_state", "state_file"});
    if (!h) root.missing("host", "a [host] table with id = 1..64");
    cfg.host.id = static_cast<HostId>(h->required_integer("id", 1, kMaxHosts));
    if (auto s = h->string("dedicated_ip", kAddressAllowed))
        cfg.host.dedicated_ip = parse_address(*h, *s, h->line("dedicated_ip"),
                                              h->key_path("dedicated_ip"));
    if (auto s = h->choice<InitialState>("initial_state", {{"started", InitialState::started},
                                                           {"stopped", InitialState::stopped},
                                                           {"suspended", InitialState::suspended}}))
        cfg.host.initial_state = *s;
    if (auto s = h->string("state_file", "a path for the host state file, relative to this file")) {
        if (s->empty()) h->fail("state_file", "is empty", "a path for the host state file, relative to this file");
        cfg.host.state_file = detail::resolve_relative(cfg.file, *s);
    }
}

void parse_dataplane(const Section& root, Config& cfg) {
    auto d = root.table("dataplane", {"idle_policy", "frag_table_size", "frag_timeout_ms", "frag_max_held",
                                      "conn_table_size", "tcp_syn_timeout_s",
                                      "tcp_established_timeout_s", "tcp_fin_timeout_s"});
    if (!d) return;
    DataplaneConfig& dp = cfg.dataplane;
    if (auto p = d->choice<IdlePolicy>("idle_policy", {{"poll", IdlePolicy::poll}, {"adaptive", IdlePolicy::adaptive}}))
        dp.idle_policy = *p;
    if (auto v = d->integer("frag_table_size", 16, 1048576)) dp.frag_table_size = static_cast<uint32_t>(*v);
    if (auto v = d->integer("frag_timeout_ms", 10, 60000)) dp.frag_timeout_ms = static_cast<uint32_t>(*v);
    if (auto v = d->integer("frag_max_held", 1, 64)) dp.frag_max_held = static_cast<uint32_t>(*v);
    if (auto v = d->integer("conn_table_size", 1024, 16777216)) dp.conn_table_size = static_cast<uint32_t>(*v);
    if (auto v = d->integer("tcp_established_timeout_s", 10, 86400))
        dp.tcp_established_timeout_s = static_cast<uint32_t>(*v);
    if (auto v = d->integer("tcp_syn_timeout_s", 1, 3600)) dp.tcp_syn_timeout_s = static_cast<uint32_t>(*v);
    if (auto v = d->integer("tcp_fin_timeout_s", 1, 3600)) dp.tcp_fin_timeout_s = static_cast<uint32_t>(*v);
}

// [telemetry] prometheus_listen = "PORT" (127.0.0.1), "ADDR:PORT" or "[v6]:PORT"; dpdk_telemetry.
void parse_telemetry(const Section& root, Config& cfg) {
    auto t = root.table("telemetry", {"prometheus_listen", "dpdk_telemetry"});
    if (!t) return;
    TelemetryConfig& tc = cfg.telemetry;
    if (auto b = t->boolean("dpdk_telemetry")) tc.dpdk_telemetry = *b;
    const std::string allowed =
        "\"PORT\" (loopback: 127.0.0.1) or \"ADDRESS:PORT\", e.g. \"9101\", \"0.0.0.0:9101\" or \"[::1]:9101\"";
    auto text = t->string("prometheus_listen", allowed);
    if (!text) return;
    // A bare port listens on loopback: exposing the metrics (and /healthz)
    // beyond the machine is a decision the operator writes down.
    if (!text->empty() && text->find_first_not_of("0123456789") == std::string::npos) *text = "127.0.0.1:" + *text;
    const size_t colon = text->rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text->size())
        t->fail("prometheus_listen", quote(*text) + " has no ADDRESS:PORT form", allowed);
    std::string host = text->substr(0, colon);
    const std::string port = text->substr(colon + 1);
    const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) host = host.substr(1, host.size() - 2);
    const std::optional<IpAddr> addr = IpAddr::parse(host);
    if (!addr || (addr->family == Family::v6) != bracketed)
        t->fail("prometheus_listen", quote(*text) + ": " + quote(host) +
                " is not an IPv4 address or a bracketed IPv6 address", allowed);
    unsigned long p = 0;
    bool digits = port.size() <= 5;
    for (char c : port) digits = digits && c >= '0' && c <= '9';
    if (digits) p = std::stoul(port);
    if (!digits || p == 0 || p > 65535)
        t->fail("prometheus_listen", quote(*text) + ": port " + quote(port) + " is not 1..65535",
                allowed);
    tc.prometheus = true;
    tc.prometheus_listen = *text;
    tc.prometheus_address = *addr;
    tc.prometheus_port = static_cast<uint16_t>(p);
}

// [log] level = "error" | "warning" | "notice" | "info" | "debug".
void parse_log(const Section& root, Config& cfg) {
    auto l = root.table("log", {"level"});
    if (!l) return;
    using log::Level;
    if (auto v = l->choice<Level>("level", {{"error", Level::error},
                                            {"warning", Level::warning},
                                            {"notice", Level::notice},
                                            {"info", Level::info},
                                            {"debug", Level::debug}}))
        cfg.log_level = *v;
}

void parse_ports_section(const Section& root, Config& cfg) {
    auto p = root.table("ports", {"wire", "local"});
    if (!p) return;
    const std::string allowed = "a PCI address (\"0000:3b:00.0\") or a DPDK vdev string (\"net_pcap0,rx_pcap=in.pcap\")";
    auto read = [&](std::string_view name, PortConfig& port) {
        auto s = p->table(name, {"device"});
        if (!s) return;
        port.device = s->required_string("device", allowed);
        if (port.device.empty()) s->fail("device", "is empty", allowed);
        port.line = s->line("device");
    };
    read("wire", cfg.wire);
    read("local", cfg.local);
}

// ---- [[port_rule]]: the keys of kRuleFields (core/rule_schema.hpp) ---------

// ports: "443", "1024-65535" or an integer.
PortRange read_ports(const Section& r, const RuleField& f, const std::string& allowed) {
    const toml::node* n = r.node(f.key);
    const std::string range = std::to_string(f.lo) + ".." + std::to_string(f.hi);
    if (const auto* i = n->as_integer()) {
        const int64_t v = i->get();
        if (v < f.lo || v > f.hi) r.fail(f.key, std::to_string(v) + " is not a port", allowed);
        return {static_cast<uint16_t>(v), static_cast<uint16_t>(v)};
    }
    const auto* s = n->as_string();
    if (s == nullptr) r.fail(f.key, "expected a string or an integer, got " + detail::type_name(*n), allowed);
    const std::string& text = s->get();
    const auto dash = text.find('-');
    if (dash == std::string::npos) {
        auto v = parse_port_number(text);
        if (!v || *v < f.lo || *v > f.hi) r.fail(f.key, quote(text) + " is not a port " + range, allowed);
        return {*v, *v};
    }
    auto lo = parse_port_number(std::string_view(text).substr(0, dash));
    auto hi = parse_port_number(std::string_view(text).substr(dash + 1));
    if (!lo || !hi || *lo > *hi || *lo < f.lo || *hi > f.hi)
        r.fail(f.key, quote(text) + " is not a range lo-hi with lo <= hi (" + range + ")", allowed);
    return {*lo, *hi};
}

// The value of key f.key, which r holds, checked against f's type and range.
FieldValue read_value(const Section& r, const RuleField& f, const Config& cfg) {
    const std::string allowed = allowed_text(f);
    const std::string_view k = f.key;
    switch (f.type) {
    case FieldType::vip: {
        const std::string v = *r.string(k, allowed);
        if (v == "all") return std::optional<IpAddr>();
        const std::optional<IpAddr> a = IpAddr::parse(v);
        if (!a) r.fail(k, quote(v) + " is not \"all\" nor an IP address", allowed);
        return a;  // membership in cluster.vips: validate()
    }
    case FieldType::address:
        return std::optional<IpAddr>(parse_address(r, *r.string(k, allowed), r.line(k), r.key_path(k)));
    case FieldType::ports: return read_ports(r, f, allowed);
    case FieldType::choice: {
        const std::string v = *r.string(k, allowed);
        for (int64_t x = f.lo; x <= f.hi; ++x)
            if (f.names[static_cast<size_t>(x)] == v) return x;
        r.fail(k, quote(v) + " is not a valid value", allowed);
    }
    case FieldType::integer: return *r.integer(k, f.lo, f.hi);
    case FieldType::weight: {
        const toml::node* n = r.node(k);
        if (const auto* s = n->as_string()) {
            if (s->get() != "equal") r.fail(k, quote(s->get()) + " is not a weight", allowed);
            return kEqualWeightValue;
        }
        const auto* i = n->as_integer();
        if (i == nullptr) r.fail(k, "expected a string or an integer, got " + detail::type_name(*n), allowed);
        if (i->get() < f.lo || i->get() > f.hi) r.fail(k, std::to_string(i->get()) + " is out of range", allowed);
        return i->get();
    }
    case FieldType::integers: {
        const toml::array* a = r.array(k, allowed);
        if (a->size() < f.min_items)
            r.fail(k, a->empty() ? std::string("is empty") : std::to_string(a->size()) + " entries", allowed);
        std::vector<int64_t> v;
        for (size_t i = 0; i < a->size(); ++i) {
            v.push_back(element_integer(r, k, *a, i, f.lo, f.hi));
            r.lines().emplace(element_path(r, k, i), element_line(r, k, (*a)[i]));
        }
        return v;
    }
    case FieldType::dns_name: {
        const std::string v = *r.string(k, allowed);
        if (v.empty() || v.find_first_of(" \t\r\n/") != std::string::npos)
            r.fail(k, quote(v) + " is not a DNS name", allowed);
        return v;
    }
    case FieldType::url_path: {
        const std::string v = *r.string(k, allowed);
        if (v.empty() || v.front() != '/' || v.find_first_of(" \t\r\n") != std::string::npos)
            r.fail(k, quote(v) + " is not an absolute path", allowed);
        return v;
    }
    case FieldType::file: {
        const std::string v = *r.string(k, allowed);
        if (v.empty()) r.fail(k, "is empty", allowed);
        const std::string path = detail::resolve_relative(cfg.file, v);
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec))
            r.fail(k, quote(path) + " does not exist or is not a file", allowed);
        return path;
    }
    }
    r.fail(k, "has a type the schema does not know", allowed);
}

// A health check's defaults that depend on its rule and the cluster
// (kRuleFields names them in words), and timeout < interval.
void resolve_health(const Section& r, const PortRule& rule, HealthCheck& h, const Config& cfg) {
    if (!r.has("health_port")) {
        if (rule.port_lo == 0)
            r.fail("health_check", "the rule's first port is 0 and health_port is not set",
                   "health_port = 1..65535 when the rule's ports start at 0");
        h.port = rule.port_lo;
    }
    if (!r.has("health_address")) h.address = rule.vip;  // nullopt for "all": the checker picks
    if (!r.has("health_name")) h.name = cfg.cluster.name;
    if (!r.has("health_sni")) h.sni = h.name;
    if (h.timeout_ms >= h.interval_ms)
        r.fail(r.has("health_timeout_ms") ? "health_timeout_ms" : "health_interval_ms",
               "timeout " + std::to_string(h.timeout_ms) + " ms is not below the interval " +
                   std::to_string(h.interval_ms) + " ms",
               "health_timeout_ms < health_interval_ms");
}

// One [[port_rule]] table, key by key in kRuleFields order: mode and
// health_check are read before the keys that apply only to some of their
// values, and a key set where it does not apply is rejected, not ignored.
void parse_rule(const Section& r, PortRule& rule, HealthCheck& h, const Config& cfg) {
    for (const RuleField& f : kRuleFields) {
        if (!r.has(f.key)) continue;
        if ((f.modes & mode_bit(rule.mode)) == 0)
            r.fail(f.key, std::string("is set on a ") + name_of(rule.mode) + " mode rule",
                   "only in " + modes_text(f.modes));
        if (f.checks != 0 && h.kind == HealthKind::none)
            r.fail(f.key, "is set without health_check", checks_text(kAnyCheck) + " in the same rule");
        if (f.checks != 0 && (f.checks & check_bit(h.kind)) == 0)
            r.fail(f.key, "is set on a health_check = \"" + std::string(name_of(h.kind)) + "\" rule",
                   "only with " + checks_text(f.checks));
        f.access.set(rule, h, read_value(r, f, cfg));
    }
    if (h.kind != HealthKind::none) resolve_health(r, rule, h, cfg);
}

void parse_rules(const Section& root, Config& cfg) {
    const toml::node* n = root.node("port_rule");
    if (n == nullptr) {
        cfg.rules = {default_port_rule()};
        return;
    }
    const std::string allowed = "an array of tables [[port_rule]], at most " + std::to_string(kMaxRules);
    const auto* a = n->as_array();
    if (a == nullptr || !a->is_array_of_tables())
        root.fail("port_rule", "expected [[port_rule]] tables, got " + detail::type_name(*n), allowed);
    if (a->size() > kMaxRules)
        detail::fail(root.file(), element_line(root, "port_rule", (*a)[kMaxRules]), "port_rule",
                     std::to_string(a->size()) + " rules", allowed);
    std::vector<std::string_view> keys;
    for (const RuleField& f : kRuleFields) keys.push_back(f.key);
    std::vector<HealthCheck> health;
    bool any_health = false;
    for (size_t i = 0; i < a->size(); ++i) {
        const auto& t = *(*a)[i].as_table();
        const std::string path = element_path(root, "port_rule", i);
        Section r(root.file(), cfg.lines, t, path, element_line(root, "port_rule", t), keys);
        PortRule rule;
        rule.line = r.line();
        HealthCheck h;
        parse_rule(r, rule, h, cfg);
        any_health = any_health || h.kind != HealthKind::none;
        health.push_back(std::move(h));
        cfg.rules.push_back(std::move(rule));
    }
    if (any_health) cfg.health = std::move(health);  // else empty: no rule has a check
}

// [control] remote_listen/remote_cert/remote_key/remote_ca/remote_allow.
void parse_control(const Section& root, Config& cfg) {
    auto t = root.table("control", {"remote_listen", "remote_cert", "remote_key", "remote_ca", "remote_allow"});
    if (!t) return;
    ControlConfig& cc = cfg.control;
    const std::string listen_allowed = "\"ADDRESS:PORT\", \"[IPv6]:PORT\" or \":PORT\" (any address), port 1..65535";
    auto listen = t->string("remote_listen", listen_allowed);
    if (!listen) {
        for (std::string_view k : {"remote_cert", "remote_key", "remote_ca", "remote_allow"})
            if (t->has(k)) t->missing("remote_listen", "remote_listen with " + std::string(k) + ": " + listen_allowed);
        return;
    }
    {
        const std::string& text = *listen;
        const size_t colon = text.rfind(':');
        if (colon == std::string::npos || colon + 1 == text.size())
            t->fail("remote_listen", quote(text) + " has no ADDRESS:PORT form", listen_allowed);
        std::string host = text.substr(0, colon);
        const std::string port = text.substr(colon + 1);
        if (!host.empty()) {
            const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
            if (bracketed) host = host.substr(1, host.size() - 2);
            const std::optional<IpAddr> addr = IpAddr::parse(host);
            if (!addr || (addr->family == Family::v6) != bracketed)
                t->fail("remote_listen", quote(text) + ": " + quote(host) +
                        " is not an IPv4 address or a bracketed IPv6 address", listen_allowed);
        }
        bool digits = !port.empty() && port.size() <= 5;
        for (char c : port) digits = digits && c >= '0' && c <= '9';
        const unsigned long p = digits ? std::stoul(port) : 0;
        if (p == 0 || p > 65535)
            t->fail("remote_listen", quote(text) + ": port " + quote(port) + " is not 1..65535", listen_allowed);
        cc.remote_listen = text;
    }
    auto file = [&](std::string_view key, const char* what) {
        const std::string allowed = std::string("a PEM file with ") + what + ", path relative to this file";
        auto v = t->string(key, allowed);
        if (!v) t->missing(key, allowed + " (required with remote_listen)");
        if (v->empty()) t->fail(key, "is empty", allowed);
        std::string path = detail::resolve_relative(cfg.file, *v);
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec))
            t->fail(key, quote(path) + " does not exist or is not a file", allowed);
        return path;
    };
    cc.remote_cert = file("remote_cert", "nlbd's server certificate (chain)");
    cc.remote_key = file("remote_key", "the server certificate's private key");
    cc.remote_ca = file("remote_ca", "the CA certificate(s) that sign client certificates");

    const std::string allow_allowed =
        "an array of client certificate CNs [\"CN=ops1\", ...] (role admin) or a table "
        "{ \"CN=ops1\" = \"admin\", \"CN=mon\" = \"read\" }";
    const toml::node* n = t->node("remote_allow");
    if (n == nullptr) t->missing("remote_allow", allow_allowed + " (required with remote_listen)");
    auto add = [&](std::string cn, const std::string& role, unsigned line, const std::string& path) {
        if (cn.rfind("CN=", 0) == 0) cn.erase(0, 3);
        if (cn.empty()) detail::fail(t->file(), line, path, "an empty CN", allow_allowed);
        if (role != "read" && role != "admin")
            detail::fail(t->file(), line, path, quote(role) + " is not a role", "\"read\" or \"admin\"");
        if (!cc.remote_allow.emplace(cn, role).second)
            detail::fail(t->file(), line, path, "CN=" + cn + " is listed twice", allow_allowed);
    };
    if (const auto* a = n->as_array()) {
        for (size_t i = 0; i < a->size(); ++i)
            add(element_string(*t, "remote_allow", *a, i, allow_allowed), "admin",
                element_line(*t, "remote_allow", (*a)[i]), element_path(*t, "remote_allow", i));
    } else if (const auto* tab = n->as_table()) {
        for (auto&& [k, v] : *tab) {
            const std::string path = t->key_path("remote_allow") + "." + std::string(k.str());
            unsigned line = k.source().begin.line ? k.source().begin.line : t->line("remote_allow");
            const auto* role = v.as_string();
            if (role == nullptr)
                detail::fail(t->file(), line, path, "expected a string, got " + detail::type_name(v),
                             "\"read\" or \"admin\"");
            add(std::string(k.str()), role->get(), line, path);
        }
    } else {
        t->fail("remote_allow", "expected an array or a table, got " + detail::type_name(*n), allow_allowed);
    }
    if (cc.remote_allow.empty()) t->fail("remote_allow", "is empty: nobody could use remote control", allow_allowed);
}

// [announce] (docs/scale-out.md): types and ranges here; that next_hop and
// vips are cluster VIPs is checked by validate().
void parse_announce(const Section& root, Config& cfg) {
    auto t = root.table("announce", {"daemon", "include_file", "control_socket", "birdc", "next_hop", "vips",
                                     "withdraw_delay_ms", "command_timeout_ms", "retry_interval_ms",
                                     "converging_grace_ms"});
    if (!t) return;
    AnnounceConfig& a = cfg.announce;
    a.enabled = true;
    if (auto d = t->choice<AnnounceDaemon>("daemon", {{"bird", AnnounceDaemon::bird}})) a.daemon = *d;
    const std::string include_allowed =
        "a path for the BIRD include file nlbd writes, relative to this file, in an existing directory";
    a.include_file = t->required_string("include_file", include_allowed);
    if (a.include_file.empty()) t->fail("include_file", "is empty", include_allowed);
    a.include_file = detail::resolve_relative(cfg.file, a.include_file);
    {
        std::error_code ec;
        const std::filesystem::path dir = std::filesystem::path(a.include_file).parent_path();
        if (!std::filesystem::is_directory(dir, ec))
            t->fail("include_file", quote(a.include_file) + ": directory " + quote(dir.string()) + " does not exist",
                    include_allowed);
    }
    const std::string socket_allowed = "the path of BIRD's control socket (bird -s), e.g. \"/run/bird/bird.ctl\"";
    if (auto s = t->string("control_socket", socket_allowed)) {
        if (s->empty()) t->fail("control_socket", "is empty", socket_allowed);
        a.control_socket = detail::resolve_relative(cfg.file, *s);
    }
    const std::string birdc_allowed = "the path of the birdc program, e.g. \"/usr/sbin/birdc\"";
    if (auto s = t->string("birdc", birdc_allowed)) {
        if (s->empty()) t->fail("birdc", "is empty", birdc_allowed);
        a.birdc = *s;
    }
    const std::string nh_allowed =
        "an IPv4 address of cluster.vips on the cluster's segment (the default host answers ARP for it with "
        "the cluster MAC, so every host sees every frame)";
    const std::string nh = t->required_string("next_hop", nh_allowed);
    a.next_hop = parse_address(*t, nh, t->line("next_hop"), t->key_path("next_hop"));
    const std::string vips_allowed = "an array of IPv4 addresses of cluster.vips, other than next_hop";
    if (const toml::array* v = t->array("vips", vips_allowed)) {
        if (v->empty()) t->fail("vips", "is empty", vips_allowed + " (leave the key out: every VIP but next_hop)");
        for (size_t i = 0; i < v->size(); ++i) {
            const std::string text = element_string(*t, "vips", *v, i, vips_allowed);
            const unsigned line = element_line(*t, "vips", (*v)[i]);
            const std::string path = element_path(*t, "vips", i);
            IpAddr x = parse_address(*t, text, line, path);
            for (size_t j = 0; j < a.vips.size(); ++j)
                if (a.vips[j] == x)
                    detail::fail(t->file(), line, path, quote(text) + " duplicates " + element_path(*t, "vips", j),
                                 vips_allowed);
            cfg.lines.emplace(path, line);
            a.vips.push_back(x);
        }
    } else {
        for (const IpAddr& x : cfg.cluster.vips)
            if (!(x == a.next_hop)) a.vips.push_back(x);
    }
    if (auto v = t->integer("withdraw_delay_ms", 0, 600000)) a.withdraw_delay_ms = static_cast<uint32_t>(*v);
    if (auto v = t->integer("command_timeout_ms", 100, 60000)) a.command_timeout_ms = static_cast<uint32_t>(*v);
    if (auto v = t->integer("retry_interval_ms", 100, 600000)) a.retry_interval_ms = static_cast<uint32_t>(*v);
    if (auto v = t->integer("converging_grace_ms", 0, 600000)) a.converging_grace_ms = static_cast<uint32_t>(*v);
}

}  // namespace

Config load_config(const std::string& cluster_file, const std::optional<std::string>& nic_file) {
    const toml::table root_table = detail::parse_toml_file(cluster_file);
    Config cfg;
    cfg.file = cluster_file;
    const Section root(cluster_file, cfg.lines, root_table, "", 0,
                       {"cluster", "host", "dataplane", "port_rule", "ports", "telemetry", "control", "log",
                        "announce"});
    parse_cluster(root, cfg);
    parse_host(root, cfg);
    parse_dataplane(root, cfg);
    parse_ports_section(root, cfg);
    parse_rules(root, cfg);
    parse_telemetry(root, cfg);
    parse_control(root, cfg);
    parse_log(root, cfg);
    parse_announce(root, cfg);

    if (nic_file) {
        cfg.nic = load_nic_profile(*nic_file);
    } else if (!cfg.cluster.nic_profile.empty()) {
        const std::string path = detail::resolve_relative(cluster_file, cfg.cluster.nic_profile);
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec)) {
            auto it = cfg.lines.find("cluster.nic_profile");
            detail::fail(cluster_file, it == cfg.lines.end() ? 0 : it->second, "cluster.nic_profile",
                         quote(path) + " does not exist or is not a file",
                         "an existing NIC profile, path relative to this file (or --nic FILE)");
        }
        cfg.nic = load_nic_profile(path);
    }
    validate(cfg);
    return cfg;
}

}  // namespace nlbd::config
