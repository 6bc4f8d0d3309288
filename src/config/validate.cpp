// Cross-field checks of a Config (SPEC §7): everything that needs more than one
// key to decide, plus a re-check of every typed range so that a Config built
// in code gets the same guarantees as one loaded from a file. Lines come from
// Config::lines (absent for a Config built in code: line 0 or the rule's line).

#include <string>
#include <string_view>

#include "nlbd/config/config.hpp"
#include "nlbd/config/rule_keys.hpp"
#include "reader.hpp"

namespace nlbd::config {

namespace {

struct ReservedEtherType {
    uint16_t type;
    const char* name;
};

// EtherTypes the heartbeat must not use: NLB's own (0x886F, we are not
// wire-compatible) and protocols that switches, NICs or stacks interpret.
constexpr ReservedEtherType kReservedEtherTypes[] = {
    {0x0800, "IPv4"},          {0x0806, "ARP"},          {0x0842, "Wake-on-LAN"},
    {0x8035, "RARP"},          {0x86DD, "IPv6"},         {0x8100, "802.1Q VLAN"},
    {0x8808, "Ethernet flow control"}, {0x8809, "slow protocols (LACP)"},
    {0x8847, "MPLS"},          {0x8848, "MPLS multicast"}, {0x8863, "PPPoE discovery"},
    {0x8864, "PPPoE session"}, {0x886F, "Microsoft NLB heartbeat"}, {0x888E, "EAPOL (802.1X)"},
    {0x88A8, "802.1ad QinQ"},  {0x88CC, "LLDP"},         {0x88E5, "MACsec"},
    {0x88F7, "PTP"},           {0x8906, "FCoE"},         {0x8914, "FCoE initialization"},
    {0x9100, "QinQ (legacy)"},
};

constexpr const char* kEtherTypeAllowed =
    "0x0600..0xFFFF except NLB's 0x886F and well-known protocols (IPv4, ARP, IPv6, VLAN, QinQ, "
    "LLDP, LACP, MPLS, PPPoE, 802.1X, MACsec, PTP, FCoE); default 0x88B5";

std::string hex16(uint16_t v) {
    static const char* digits = "0123456789ABCDEF";
    std::string s = "0x";
    for (int shift = 12; shift >= 0; shift -= 4) s += digits[(v >> shift) & 0xF];
    return s;
}

class Checker {
public:
    explicit Checker(const Config& cfg) : cfg_(cfg) {}

    unsigned line(const std::string& key, unsigned fallback = 0) const {
        auto it = cfg_.lines.find(key);
        return it != cfg_.lines.end() && it->second != 0 ? it->second : fallback;
    }
    [[noreturn]] void fail(const std::string& key, unsigned fallback_line, const std::string& wrong,
                           const std::string& allowed) const {
        detail::fail(cfg_.file, line(key, fallback_line), key, wrong, allowed);
    }
    void range(const std::string& key, int64_t v, int64_t lo, int64_t hi, unsigned fallback = 0) const {
        if (v < lo || v > hi)
            fail(key, fallback, std::to_string(v) + " is out of range",
                 "an integer " + std::to_string(lo) + ".." + std::to_string(hi));
    }

    void cluster() const {
        const ClusterConfig& c = cfg_.cluster;
        const unsigned cl = line("cluster");
        if (c.name.empty()) fail("cluster.name", cl, "is empty", "a non-empty cluster name");
        const std::string vips_allowed = "a non-empty array of up to " + std::to_string(kMaxVips) +
                                         " distinct IPv4/IPv6 addresses";
        if (c.vips.empty()) fail("cluster.vips", cl, "is empty", vips_allowed);
        if (c.vips.size() > kMaxVips)
            fail("cluster.vips", cl, std::to_string(c.vips.size()) + " addresses", vips_allowed);
        bool any_v4 = false;
        for (size_t i = 0; i < c.vips.size(); ++i) {
            const std::string key = "cluster.vips[" + std::to_string(i + 1) + "]";
            if (c.vips[i].family == Family::none)
                fail(key, line("cluster.vips", cl), "is not an address", vips_allowed);
            any_v4 = any_v4 || c.vips[i].family == Family::v4;
            for (size_t j = 0; j < i; ++j)
                if (c.vips[j] == c.vips[i])
                    fail(key, line("cluster.vips", cl), c.vips[i].to_string() + " is listed twice",
                         vips_allowed);
        }
        if (c.mode == ClusterMode::igmp && !any_v4)
            fail("cluster.mode", cl, "igmp mode needs an IPv4 VIP (the IGMP group is 239.255.y.z)",
                 "unicast or multicast for an IPv6-only cluster, or add an IPv4 VIP");
        range("cluster.buckets", c.buckets, kMinBuckets, kMaxBuckets, cl);
        range("cluster.heartbeat_interval_ms", c.heartbeat_interval_ms, 10, 10000, cl);
        range("cluster.heartbeat_tolerance", c.heartbeat_tolerance, 2, 100, cl);
        range("cluster.heartbeat_redundancy", c.heartbeat_redundancy, 1, 10, cl);
        const uint16_t et = c.heartbeat_ethertype;
        if (et < 0x0600)
            fail("cluster.heartbeat_ethertype", cl, hex16(et) + " is a length, not an EtherType",
                 kEtherTypeAllowed);
        for (const auto& r : kReservedEtherTypes)
            if (r.type == et)
                fail("cluster.heartbeat_ethertype", cl, hex16(et) + " is " + r.name, kEtherTypeAllowed);

        const HostId self = cfg_.host.id;
        range("host.id", self, 1, kMaxHosts, line("host"));
        const std::string members_allowed =
            "an array of 1..64 distinct host ids 1..64 that includes host.id (" + std::to_string(self) + ")";
        if (c.static_members.size() > kMaxHosts)
            fail("cluster.static_members", cl, std::to_string(c.static_members.size()) + " members",
                 members_allowed);
        bool has_self = false;
        for (size_t i = 0; i < c.static_members.size(); ++i) {
            const HostId id = c.static_members[i];
            const std::string key = "cluster.static_members[" + std::to_string(i + 1) + "]";
            if (id < 1 || id > kMaxHosts)
                fail(key, line("cluster.static_members", cl), std::to_string(id) + " is not a host id",
                     members_allowed);
            for (size_t j = 0; j < i; ++j)
                if (c.static_members[j] == id)
                    fail(key, line("cluster.static_members", cl),
                         "host id " + std::to_string(id) + " is listed twice", members_allowed);
            has_self = has_self || id == self;
        }
        if (!c.static_members.empty() && !has_self)
            fail("cluster.static_members", cl,
                 "does not include this host's id " + std::to_string(self) + " (host.id, line " +
                     std::to_string(line("host.id")) + ")",
                 members_allowed);
    }

    void dataplane() const {
        const DataplaneConfig& d = cfg_.dataplane;
        const unsigned dl = line("dataplane");
        range("dataplane.frag_table_size", d.frag_table_size, 16, 1048576, dl);
        range("dataplane.frag_timeout_ms", d.frag_timeout_ms, 10, 60000, dl);
        range("dataplane.frag_max_held", d.frag_max_held, 1, 64, dl);
        range("dataplane.conn_table_size", d.conn_table_size, 1024, 16777216, dl);
        range("dataplane.tcp_established_timeout_s", d.tcp_established_timeout_s, 10, 86400, dl);
        range("dataplane.tcp_syn_timeout_s", d.tcp_syn_timeout_s, 1, 3600, dl);
        range("dataplane.tcp_fin_timeout_s", d.tcp_fin_timeout_s, 1, 3600, dl);
    }

    // Index of this host in static_members, or -1.
    int self_index() const {
        const auto& m = cfg_.cluster.static_members;
        for (size_t i = 0; i < m.size(); ++i)
            if (m[i] == cfg_.host.id) return static_cast<int>(i);
        return -1;
    }

    // One field of kRuleFields, as the parser would have read it: set only
    // where it applies, present where it is required, in its range.
    void field(const std::string& rule_key, const RuleField& f, const PortRule& r, const HealthCheck& h,
               unsigned rl) const {
        static const PortRule kDefaultRule = default_port_rule();
        static const HealthCheck kDefaultCheck;
        const std::string key = rule_key + "." + std::string(f.key);
        const FieldValue v = f.access.get(r, h);
        const bool is_default = v == f.access.get(kDefaultRule, kDefaultCheck);
        if ((f.modes & mode_bit(r.mode)) == 0) {
            if (!is_default)
                fail(key, rl, std::string("is set on a ") + name_of(r.mode) + " mode rule",
                     "only in " + modes_text(f.modes));
            return;
        }
        if ((f.required_in & mode_bit(r.mode)) != 0 && is_default)
            fail(key, rl, std::string("is required in ") + name_of(r.mode) + " mode", allowed_text(f));
        switch (f.type) {
        case FieldType::ports: {
            const PortRange& p = std::get<PortRange>(v);
            if (p.lo > p.hi)
                fail(key, rl,
                     "'" + std::to_string(p.lo) + "-" + std::to_string(p.hi) +
                         "' is not a range lo-hi with lo <= hi (" + std::to_string(f.lo) + ".." +
                         std::to_string(f.hi) + ")",
                     allowed_text(f));
            break;
        }
        case FieldType::choice:
            if (!is_default && (std::get<int64_t>(v) < f.lo || std::get<int64_t>(v) > f.hi))
                fail(key, rl, std::to_string(std::get<int64_t>(v)) + " is not a valid value", allowed_text(f));
            break;
        case FieldType::weight:
            if (std::get<int64_t>(v) == kEqualWeightValue) break;
            [[fallthrough]];
        case FieldType::integer:
            if (std::get<int64_t>(v) < f.lo || std::get<int64_t>(v) > f.hi)
                fail(key, rl, std::to_string(std::get<int64_t>(v)) + " is out of range", allowed_text(f));
            break;
        case FieldType::integers: {
            const auto& items = std::get<std::vector<int64_t>>(v);
            if (items.size() < f.min_items)
                fail(key, rl, "has " + std::to_string(items.size()) + " entries", allowed_text(f));
            for (size_t k = 0; k < items.size(); ++k)
                if (items[k] < f.lo || items[k] > f.hi)
                    fail(key + "[" + std::to_string(k + 1) + "]", line(key, rl),
                         std::to_string(items[k]) + " is out of range",
                         "integers " + std::to_string(f.lo) + ".." + std::to_string(f.hi));
            break;
        }
        default:  // addresses (vip: below), names, paths, files: checked where read
            break;
        }
    }

    void rule(size_t i) const {
        static const HealthCheck kNoCheck;
        const PortRule& r = cfg_.rules[i];
        const std::string p = "port_rule[" + std::to_string(i + 1) + "]";
        const unsigned rl = r.line;
        for (const RuleField& f : kRuleFields)
            if (f.access.part == Part::rule) field(p, f, r, kNoCheck, rl);
        if (r.vip) {
            bool found = false;
            for (const auto& v : cfg_.cluster.vips) found = found || v == *r.vip;
            if (!found) {
                std::string vips;
                for (const auto& v : cfg_.cluster.vips) vips += (vips.empty() ? "" : ", ") + v.to_string();
                fail(p + ".vip", rl, r.vip->to_string() + " is not one of cluster.vips",
                     "\"all\" or one of cluster.vips: " + vips);
            }
        }

        const auto& members = cfg_.cluster.static_members;
        const std::string aligned = "an array with one entry per cluster.static_members (" +
                                    std::to_string(members.size()) + ")";
        if (!r.static_weights.empty()) {
            const std::string key = p + ".static_weights";
            if (members.empty())
                fail(key, rl, "is set but cluster.static_members is not",
                     "static_weights only with cluster.static_members");
            if (r.static_weights.size() != members.size())
                fail(key, rl,
                     "has " + std::to_string(r.static_weights.size()) + " entries, cluster.static_members has " +
                         std::to_string(members.size()) + " (line " +
                         std::to_string(line("cluster.static_members")) + ")",
                     aligned + " of weights 0..100");
            if (r.equal_weight)
                fail(key, rl, "is set but load_weight is \"equal\"",
                     "a numeric load_weight 0..100 equal to this host's static_weights entry");
            const int self = self_index();
            if (self >= 0 && r.static_weights[self] != r.load_weight)
                fail(key + "[" + std::to_string(self + 1) + "]", line(key, rl),
                     "this host's entry is " + std::to_string(r.static_weights[self]) + " but load_weight is " +
                         std::to_string(r.load_weight),
                     "this host's entry equal to its own load_weight");
        }
        if (!r.static_priorities.empty()) {
            const std::string key = p + ".static_priorities";
            if (members.empty())
                fail(key, rl, "is set but cluster.static_members is not",
                     "static_priorities only with cluster.static_members");
            if (r.static_priorities.size() != members.size())
                fail(key, rl,
                     "has " + std::to_string(r.static_priorities.size()) +
                         " entries, cluster.static_members has " + std::to_string(members.size()) +
                         " (line " + std::to_string(line("cluster.static_members")) + ")",
                     aligned + " of distinct priorities 1..64");
            for (size_t k = 0; k < r.static_priorities.size(); ++k) {
                const std::string ek = key + "[" + std::to_string(k + 1) + "]";
                for (size_t j = 0; j < k; ++j)
                    if (r.static_priorities[j] == r.static_priorities[k])
                        fail(ek, line(ek, line(key, rl)),
                             "handling priority " + std::to_string(r.static_priorities[k]) +
                                 " is given to host " + std::to_string(members[j]) + " and host " +
                                 std::to_string(members[k]),
                             "distinct priorities 1..64, one per host");
            }
            const int self = self_index();
            if (self >= 0 && r.static_priorities[self] != r.handling_priority)
                fail(key + "[" + std::to_string(self + 1) + "]", line(key, rl),
                     "this host's entry is " + std::to_string(r.static_priorities[self]) +
                         " but handling_priority is " + std::to_string(r.handling_priority),
                     "this host's entry equal to its own handling_priority");
        }
    }

    static bool protocols_intersect(Protocol a, Protocol b) {
        return a == Protocol::both || b == Protocol::both || a == b;
    }

    static std::string describe(const PortRule& r) {
        std::string s = (r.vip ? r.vip->to_string() : std::string("all")) + " ";
        s += r.port_lo == r.port_hi ? std::to_string(r.port_lo)
                                    : std::to_string(r.port_lo) + "-" + std::to_string(r.port_hi);
        s += r.protocol == Protocol::tcp ? "/tcp" : r.protocol == Protocol::udp ? "/udp" : "/both";
        return s;
    }

    void overlaps() const {
        const auto& rules = cfg_.rules;
        for (size_t j = 1; j < rules.size(); ++j) {
            const PortRule& b = rules[j];
            for (size_t i = 0; i < j; ++i) {
                const PortRule& a = rules[i];
                if (a.vip != b.vip) continue;  // a specific VIP wins over "all": no overlap
                if (!protocols_intersect(a.protocol, b.protocol)) continue;
                if (a.port_hi < b.port_lo || b.port_hi < a.port_lo) continue;
                detail::fail(cfg_.file, b.line, "port_rule[" + std::to_string(j + 1) + "]",
                             "rule at line " + std::to_string(b.line) + " (" + describe(b) +
                                 ") overlaps port_rule[" + std::to_string(i + 1) + "] at line " +
                                 std::to_string(a.line) + " (" + describe(a) + ")",
                             "rules for the same VIP and protocol with disjoint port ranges");
            }
        }
    }

    void rules() const {
        if (cfg_.rules.size() > kMaxRules)
            fail("port_rule", cfg_.rules[kMaxRules].line,
                 std::to_string(cfg_.rules.size()) + " rules",
                 "at most " + std::to_string(kMaxRules) + " [[port_rule]] tables");
        for (size_t i = 0; i < cfg_.rules.size(); ++i) rule(i);
        overlaps();
    }

    // health_* keys (SPEC §9): aligned with the rules, ranges as parsed.
    // [announce] (docs/scale-out.md): the next hop is a VIP of this cluster
    // (ARP answered with the cluster MAC: every host sees every frame), the
    // announced VIPs are VIPs of this cluster, IPv4, never the next hop.
    void announce() const {
        const AnnounceConfig& a = cfg_.announce;
        if (!a.enabled) return;
        const auto is_vip = [&](const IpAddr& x) {
            for (const IpAddr& v : cfg_.cluster.vips)
                if (v == x) return true;
            return false;
        };
        const std::string nh_allowed =
            "an IPv4 address of cluster.vips on the cluster's segment (the default host answers ARP for it "
            "with the cluster MAC, so every host sees every frame)";
        if (a.next_hop.family != Family::v4)
            fail("announce.next_hop", line("announce"), "'" + a.next_hop.to_string() + "' is not IPv4", nh_allowed);
        if (!is_vip(a.next_hop))
            fail("announce.next_hop", line("announce"),
                 "'" + a.next_hop.to_string() + "' is not one of cluster.vips", nh_allowed);
        const std::string vips_allowed = "IPv4 addresses of cluster.vips, other than next_hop";
        if (a.vips.empty())
            fail("announce.vips", line("announce"), "nothing to announce (cluster.vips holds only next_hop)",
                 "a cluster with at least one VIP besides announce.next_hop");
        for (size_t i = 0; i < a.vips.size(); ++i) {
            const std::string key = "announce.vips[" + std::to_string(i + 1) + "]";
            const unsigned l = line(key, line("announce.vips", line("announce")));
            std::string text = "'";  // not "'" + to_string(): GCC 12's -Wrestrict false positive
            text += a.vips[i].to_string();
            text += '\'';
            if (a.vips[i].family != Family::v4)
                fail(key, l, text + " is IPv6: only IPv4 VIPs are announced", vips_allowed);
            if (!is_vip(a.vips[i])) fail(key, l, text + " is not one of cluster.vips", vips_allowed);
            if (a.vips[i] == a.next_hop) fail(key, l, text + " is announce.next_hop", vips_allowed);
        }
        if (a.include_file.empty()) fail("announce.include_file", line("announce"), "is empty", "a path");
        range("announce.withdraw_delay_ms", a.withdraw_delay_ms, 0, 600000, line("announce"));
        range("announce.command_timeout_ms", a.command_timeout_ms, 100, 60000, line("announce"));
        range("announce.retry_interval_ms", a.retry_interval_ms, 100, 600000, line("announce"));
        range("announce.converging_grace_ms", a.converging_grace_ms, 0, 600000, line("announce"));
    }

    void health() const {
        if (cfg_.health.empty()) return;
        if (cfg_.health.size() != cfg_.rules.size())
            fail("port_rule", 0, std::to_string(cfg_.health.size()) + " health checks for " +
                                     std::to_string(cfg_.rules.size()) + " rules",
                 "one health check (kind none = no check) per port rule");
        for (size_t i = 0; i < cfg_.health.size(); ++i) {
            const HealthCheck& h = cfg_.health[i];
            if (h.kind == HealthKind::none) continue;
            const std::string p = "port_rule[" + std::to_string(i + 1) + "]";
            const PortRule& r = cfg_.rules[i];
            // Keys of other checks keep their defaults or the rule's (health_name
            // is the cluster name for any check): not checked.
            for (const RuleField& f : kRuleFields)
                if (f.access.part == Part::health && applies(f, r, h)) field(p, f, r, h, r.line);
            if (h.timeout_ms >= h.interval_ms)
                fail(p + ".health_timeout_ms", r.line, std::to_string(h.timeout_ms) + " ms is not below the interval",
                     "health_timeout_ms < health_interval_ms");
        }
    }

private:
    const Config& cfg_;
};

}  // namespace

void validate(const Config& cfg) {
    Checker c(cfg);
    c.cluster();
    c.dataplane();
    c.rules();
    c.health();
    c.announce();
    validate(cfg.nic);
}

}  // namespace nlbd::config
