#include "nlbd/config/diff.hpp"

#include <algorithm>
#include <map>
#include <sstream>

#include "nlbd/config/rule_keys.hpp"

namespace nlbd::config {
namespace {

// The texts of v's items, separated by sep.
template <class T, class Text>
std::string join(const std::vector<T>& v, const char* sep, Text text) {
    std::string s;
    for (const T& x : v) {
        if (!s.empty()) s += sep;
        s += text(x);
    }
    return s;
}
std::string join(const std::vector<std::string>& v) {
    return join(v, " ", [](const std::string& x) { return x; });
}
std::string vips(const std::vector<IpAddr>& v) {
    return join(v, ",", [](const IpAddr& a) { return a.to_string(); });
}
std::string hosts(const std::vector<HostId>& v) {
    return join(v, ",", [](HostId h) { return std::to_string(unsigned(h)); });
}

std::string str(const std::optional<IpAddr>& a) { return a ? a->to_string() : std::string("none"); }

// Collects changes of one scalar.
struct Collector {
    std::vector<KeyChange>& out;
    template <class T>
    void operator()(const std::string& key, const T& a, const T& b) {
        if (a == b) return;
        std::ostringstream x, y;
        x << a;
        y << b;
        out.push_back({key, x.str(), y.str()});
    }
    void str(const std::string& key, const std::string& a, const std::string& b) {
        if (a != b) out.push_back({key, a, b});
    }
};

std::string first_v4(const std::vector<IpAddr>& v) {
    for (const IpAddr& a : v)
        if (a.family == Family::v4) return a.to_string();
    return "none";
}

}  // namespace

std::vector<std::string> ConfigDiff::lines() const {
    std::vector<std::string> l;
    for (const auto& r : rules_added) l.push_back("rule added: " + r);
    for (const auto& r : rules_removed) l.push_back("rule removed: " + r);
    for (const auto& r : rules_changed) {
        std::string s = "rule changed: " + r.rule + ":";
        for (const auto& f : r.fields) s += " " + f.key + " " + f.before + " -> " + f.after + ";";
        s.pop_back();
        l.push_back(s);
    }
    for (const auto& p : params) l.push_back(p.key + ": " + p.before + " -> " + p.after);
    if (secret_changed) l.push_back("cluster.secret_file: new secret (rotation, both accepted during the grace period)");
    for (const auto& p : restart) l.push_back(p.key + ": " + p.before + " -> " + p.after + " (needs a restart)");
    return l;
}

ConfigDiff diff(const Config& a, const Config& b) {
    ConfigDiff d;
    Collector live{d.params}, restart{d.restart};

    // --- restart-only keys ----------------------------------------------
    restart.str("cluster.name", a.cluster.name, b.cluster.name);
    restart("cluster.mode", unsigned(a.cluster.mode), unsigned(b.cluster.mode));
    restart("cluster.buckets", a.cluster.buckets, b.cluster.buckets);
    restart("cluster.heartbeat_ethertype", a.cluster.heartbeat_ethertype, b.cluster.heartbeat_ethertype);
    restart.str("cluster.static_members", hosts(a.cluster.static_members), hosts(b.cluster.static_members));
    restart.str("cluster.vips (first IPv4 VIP: the cluster MAC)", first_v4(a.cluster.vips), first_v4(b.cluster.vips));
    restart.str("cluster.secret_file (authenticated or not)", a.cluster.secret_file.empty() ? "none" : "set",
                b.cluster.secret_file.empty() ? "none" : "set");
    restart("host.id", unsigned(a.host.id), unsigned(b.host.id));
    restart.str("host.dedicated_ip", str(a.host.dedicated_ip), str(b.host.dedicated_ip));
    restart.str("ports.wire.device", a.wire.device, b.wire.device);
    restart.str("ports.local.device", a.local.device, b.local.device);
    const DataplaneConfig &x = a.dataplane, &y = b.dataplane;
    restart("dataplane.frag_table_size", x.frag_table_size, y.frag_table_size);
    restart("dataplane.frag_timeout_ms", x.frag_timeout_ms, y.frag_timeout_ms);
    restart("dataplane.frag_max_held", x.frag_max_held, y.frag_max_held);
    restart("dataplane.conn_table_size", x.conn_table_size, y.conn_table_size);
    restart("dataplane.tcp_syn_timeout_s", x.tcp_syn_timeout_s, y.tcp_syn_timeout_s);
    restart("dataplane.tcp_established_timeout_s", x.tcp_established_timeout_s, y.tcp_established_timeout_s);
    restart("dataplane.tcp_fin_timeout_s", x.tcp_fin_timeout_s, y.tcp_fin_timeout_s);
    restart("telemetry.dpdk_telemetry", a.telemetry.dpdk_telemetry, b.telemetry.dpdk_telemetry);
    const NicProfile &n = a.nic, &m = b.nic;
    restart.str("nic (profile file)", n.file, m.file);
    restart("nic.workers", n.workers, m.workers);
    restart("nic.dispatch", unsigned(n.dispatch), unsigned(m.dispatch));
    restart("nic.rx_queues", n.rx_queues, m.rx_queues);
    restart("nic.tx_queues", n.tx_queues, m.tx_queues);
    restart("nic.rx_descriptors", n.rx_descriptors, m.rx_descriptors);
    restart("nic.tx_descriptors", n.tx_descriptors, m.tx_descriptors);
    restart("nic.burst", n.burst, m.burst);
    restart("nic.mempool_size", n.mempool_size, m.mempool_size);
    restart("nic.mempool_cache", n.mempool_cache, m.mempool_cache);
    restart("nic.mbuf_data_room", n.mbuf_data_room, m.mbuf_data_room);
    restart("nic.rx_checksum_offload", n.rx_checksum_offload, m.rx_checksum_offload);
    restart("nic.tx_checksum_offload", n.tx_checksum_offload, m.tx_checksum_offload);
    restart("nic.promiscuous", n.promiscuous, m.promiscuous);
    restart.str("nic.rss_key", n.rss_key, m.rss_key);
    restart.str("nic.rss_fields", join(n.rss_fields), join(m.rss_fields));
    restart.str("nic.eal_args", join(n.eal_args), join(m.eal_args));

    // [announce]: where and how nlbd drives the routing daemon needs a
    // restart (the old include file would keep its routes); what it
    // announces is live.
    const AnnounceConfig &aa = a.announce, &ab = b.announce;
    restart.str("announce (section present)", aa.enabled ? "yes" : "no", ab.enabled ? "yes" : "no");
    restart.str("announce.include_file", aa.include_file, ab.include_file);
    restart.str("announce.control_socket", aa.control_socket, ab.control_socket);
    restart.str("announce.birdc", aa.birdc, ab.birdc);

    // --- live keys ------------------------------------------------------
    live.str("announce.next_hop", aa.enabled ? aa.next_hop.to_string() : "", ab.enabled ? ab.next_hop.to_string() : "");
    live.str("announce.vips", vips(aa.vips), vips(ab.vips));
    live("announce.withdraw_delay_ms", aa.withdraw_delay_ms, ab.withdraw_delay_ms);
    live("announce.command_timeout_ms", aa.command_timeout_ms, ab.command_timeout_ms);
    live("announce.retry_interval_ms", aa.retry_interval_ms, ab.retry_interval_ms);
    live("announce.converging_grace_ms", aa.converging_grace_ms, ab.converging_grace_ms);
    live("cluster.heartbeat_interval_ms", a.cluster.heartbeat_interval_ms, b.cluster.heartbeat_interval_ms);
    live("cluster.heartbeat_tolerance", a.cluster.heartbeat_tolerance, b.cluster.heartbeat_tolerance);
    live("cluster.heartbeat_redundancy", a.cluster.heartbeat_redundancy, b.cluster.heartbeat_redundancy);
    live.str("cluster.vips", vips(a.cluster.vips), vips(b.cluster.vips));
    live.str("cluster.secret_file (path)", a.cluster.secret_file, b.cluster.secret_file);
    live.str("telemetry.prometheus_listen", a.telemetry.prometheus_listen, b.telemetry.prometheus_listen);
    live.str("log.level", log::name_of(a.log_level), log::name_of(b.log_level));
    live.str("dataplane.idle_policy", a.dataplane.idle_policy == IdlePolicy::poll ? "poll" : "adaptive",
             b.dataplane.idle_policy == IdlePolicy::poll ? "poll" : "adaptive");
    live.str("control.remote_listen", a.control.remote_listen, b.control.remote_listen);
    live.str("control.remote_cert", a.control.remote_cert, b.control.remote_cert);
    live.str("control.remote_key", a.control.remote_key, b.control.remote_key);
    live.str("control.remote_ca", a.control.remote_ca, b.control.remote_ca);
    {
        std::string p, q;
        for (const auto& [cn, role] : a.control.remote_allow) p += cn + "=" + role + " ";
        for (const auto& [cn, role] : b.control.remote_allow) q += cn + "=" + role + " ";
        live.str("control.remote_allow", p, q);
    }

    // --- rules, by key ----------------------------------------------------
    auto rules_of = [](const Config& c) {
        std::map<std::string, std::pair<const PortRule*, const HealthCheck*>> m;
        static const PortRule kDefault = default_port_rule();
        static const HealthCheck kNoCheck;
        if (c.rules.empty()) m[rule_name(kDefault)] = {&kDefault, &kNoCheck};
        for (size_t i = 0; i < c.rules.size(); ++i)
            m[rule_name(c.rules[i])] = {&c.rules[i], i < c.health.size() ? &c.health[i] : &kNoCheck};
        return m;
    };
    const auto ra = rules_of(a), rb = rules_of(b);
    for (const auto& [key, r] : rb)
        if (!ra.count(key)) d.rules_added.push_back(key);
    for (const auto& [key, r] : ra) {
        auto it = rb.find(key);
        if (it == rb.end()) {
            d.rules_removed.push_back(key);
            continue;
        }
        const PortRule &p = *r.first, &q = *it->second.first;
        const HealthCheck &h = *r.second, &k = *it->second.second;
        RuleChange c{key, {}};
        Collector f{c.fields};
        // Every field of kRuleFields but the key (the rule's name); a health
        // check's keys only between two rules that both have a check.
        for (const RuleField& field : kRuleFields) {
            if (field.scope == Scope::key) continue;
            if (field.checks != 0 && (h.kind == HealthKind::none || k.kind == HealthKind::none)) continue;
            f.str(std::string(field.key), text(written(field, p, h)), text(written(field, q, k)));
        }
        if (!c.fields.empty()) d.rules_changed.push_back(std::move(c));
    }
    return d;
}

}  // namespace nlbd::config
