#include "replay_scenario.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string_view>

namespace nlbd::tools {

namespace {

enum class VipScope : uint8_t { all, one_v4, all_or_one_v4 };

// The kind of rule a traffic class needs for its manifest lines to be true:
// the transports it sends must reach the rule; the affinity must be the one
// its affinity groups assume (groups "web:SRC:SPORT" hold only for affinity
// none); a "disabled" class sends TCP and UDP, so the rule must drop both.
struct Need {
    Traffic traffic;
    const char* name;     // manifest rule name
    const char* sends;    // the traffic, for messages
    FilterMode mode;
    VipScope vip;
    bool tcp, udp;
    std::optional<Affinity> affinity;
    bool unequal_weights;  // the class proves that unequal weights give unequal shares
    bool beats_web;        // sent to a port of the web rule: the rule for its VIP must win
    const char* wants;     // the rule, as the file spells it
};

constexpr Need kNeeds[] = {
    {Traffic::web, "web", "multiple-host TCP flows to the IPv4 and IPv6 VIP, and ICMP errors about them",
     FilterMode::multiple, VipScope::all, true, false, Affinity::none, false, false,
     "mode = \"multiple\", vip = \"all\", protocol \"tcp\" or \"both\", affinity = \"none\""},
    {Traffic::override_vip, "override", "TCP flows to a second IPv4 VIP, on a port of the 'web' rule",
     FilterMode::single, VipScope::one_v4, true, false, std::nullopt, false, true,
     "mode = \"single\", vip = one IPv4 VIP, protocol \"tcp\" or \"both\", ports overlapping the 'web' rule's"},
    {Traffic::dns, "dns", "multiple-host UDP datagrams to the IPv4 and IPv6 VIP", FilterMode::multiple,
     VipScope::all, false, true, Affinity::none, false, false,
     "mode = \"multiple\", vip = \"all\", protocol \"udp\" or \"both\", affinity = \"none\""},
    {Traffic::https, "https", "TCP flows, several source ports per client, to the IPv4 and IPv6 VIP",
     FilterMode::multiple, VipScope::all, true, false, Affinity::single, false, false,
     "mode = \"multiple\", vip = \"all\", protocol \"tcp\" or \"both\", affinity = \"single\""},
    {Traffic::netaff, "netaff", "TCP flows from clients of one /24 or /48 to the IPv4 and IPv6 VIP",
     FilterMode::multiple, VipScope::all, true, false, Affinity::network, false, false,
     "mode = \"multiple\", vip = \"all\", protocol \"tcp\" or \"both\", affinity = \"network\""},
    {Traffic::frag, "frag", "fragmented UDP datagrams to any port of the rule, IPv4 and IPv6 VIP",
     FilterMode::multiple, VipScope::all, false, true, Affinity::none, false, false,
     "mode = \"multiple\", vip = \"all\", protocol \"udp\" or \"both\", affinity = \"none\""},
    {Traffic::smtp, "smtp", "TCP and UDP to the IPv4 and IPv6 VIP that every host drops",
     FilterMode::disabled, VipScope::all, true, true, std::nullopt, false, false,
     "mode = \"disabled\", vip = \"all\", protocol = \"both\""},
    {Traffic::rdp, "rdp", "single-host TCP flows to the IPv4 and IPv6 VIP", FilterMode::single, VipScope::all,
     true, false, std::nullopt, false, false,
     "mode = \"single\", vip = \"all\", protocol \"tcp\" or \"both\""},
    {Traffic::weighted, "weighted", "TCP and UDP to one IPv4 VIP, balanced by unequal weights",
     FilterMode::multiple, VipScope::all_or_one_v4, true, true, Affinity::none, true, false,
     "mode = \"multiple\", vip = \"all\" or one IPv4 VIP, protocol = \"both\", affinity = \"none\", "
     "load weights not all equal"},
};
static_assert(std::size(kNeeds) == kTrafficCount);
constexpr bool needs_in_traffic_order() {
    for (size_t i = 0; i < kTrafficCount; ++i)
        if (static_cast<size_t>(kNeeds[i].traffic) != i) return false;
    return true;
}
static_assert(needs_in_traffic_order(), "kNeeds[i] is the need of Traffic i");

using Configs = std::vector<config::Config>;  // in kScenarioHosts order

[[noreturn]] void fail(const std::string& text) { throw ScenarioError(text); }

std::string at_line(const std::string& file, unsigned line) {
    return line == 0 ? file : file + ":" + std::to_string(line);
}

std::string rule_label(const PortRule& r, size_t index) {
    return "port_rule[" + std::to_string(index + 1) + "] (" + rule_name(r) + ")";
}

// What a rule does to the traffic, whatever the host: "all:80/tcp multiple affinity none".
std::string identity(const PortRule& r) {
    std::string s = rule_name(r) + " " + name_of(r.mode);
    if (r.mode == FilterMode::multiple) s.append(" affinity ").append(name_of(r.affinity));
    return s;
}

bool carries(Protocol p, bool udp) { return p == Protocol::both || p == (udp ? Protocol::udp : Protocol::tcp); }

// The rule nlbd applies to a frame: one for the frame's VIP beats an "all"
// rule (core::RuleTable::match). Rules of one VIP never overlap (validate).
std::optional<size_t> match(const std::vector<PortRule>& rules, const IpAddr& vip, bool udp, uint16_t port) {
    std::optional<size_t> all;
    for (size_t i = 0; i < rules.size(); ++i) {
        const PortRule& r = rules[i];
        if (!carries(r.protocol, udp) || port < r.port_lo || port > r.port_hi) continue;
        if (r.vip && *r.vip == vip) return i;
        if (!r.vip && !all) all = i;
    }
    return all;
}

std::string host_values(const std::map<HostId, uint8_t>& v) {
    std::string s;
    for (const auto& [h, x] : v)
        s.append(s.empty() ? "" : ",").append(std::to_string(h)).append(":").append(std::to_string(x));
    return s;
}

// Per member, the value a host's static view gives it (static_snapshot_input
// in src/daemon/control.cpp): the static_* list entry of the member, else
// `otherwise`.
std::map<HostId, uint8_t> static_view(const config::Config& cfg, const std::vector<uint8_t>& list,
                                      uint8_t otherwise) {
    std::map<HostId, uint8_t> v;
    const auto& members = cfg.cluster.static_members;
    for (size_t k = 0; k < members.size(); ++k) v[members[k]] = k < list.size() ? list[k] : otherwise;
    return v;
}

// Every host must see what each member advertises (its own load_weight or
// handling_priority); otherwise the hosts build different maps or pick
// different single hosts, and no manifest describes the cluster.
void check_views(const std::string& file, const Configs& cfgs, size_t i, const std::map<HostId, uint8_t>& own,
                 bool priorities) {
    for (size_t k = 0; k < cfgs.size(); ++k) {
        const PortRule& r = cfgs[k].rules[i];
        const auto view = priorities ? static_view(cfgs[k], r.static_priorities, 0)
                                     : static_view(cfgs[k], r.static_weights, effective_weight(r));
        if (view == own) continue;
        const bool listed = priorities ? !r.static_priorities.empty() : !r.static_weights.empty();
        const char* key = priorities ? "static_priorities" : "static_weights";
        fail(at_line(file, r.line) + ": " + rule_label(r, i) + ": host " + std::to_string(kScenarioHosts[k]) +
             (priorities ? " ranks" : " weighs") + " the members " + host_values(view) + " (" +
             (listed ? std::string(key)
                     : priorities ? "no static_priorities: a static cluster then ranks by host id"
                                  : "no static_weights: every member then weighs its own load_weight") +
             ") but their own " + (priorities ? "handling_priority" : "load_weight") + " values are " +
             host_values(own) + "; allowed: " + key + " listing every member's own value, on every host");
    }
}

std::map<HostId, uint8_t> own_weights(const Configs& cfgs, size_t i) {
    std::map<HostId, uint8_t> w;
    for (size_t k = 0; k < cfgs.size(); ++k) w[kScenarioHosts[k]] = effective_weight(cfgs[k].rules[i]);
    return w;
}

std::map<HostId, uint8_t> own_priorities(const Configs& cfgs, size_t i) {
    std::map<HostId, uint8_t> p;
    for (size_t k = 0; k < cfgs.size(); ++k) p[kScenarioHosts[k]] = cfgs[k].rules[i].handling_priority;
    return p;
}

bool fits(const Need& n, const PortRule& r, const Configs& cfgs, size_t i, const ClassRule* web) {
    if (r.mode != n.mode || (n.tcp && !carries(r.protocol, false)) || (n.udp && !carries(r.protocol, true)))
        return false;
    const bool v4 = r.vip && r.vip->family == Family::v4;
    if ((n.vip == VipScope::all && r.vip) || (n.vip == VipScope::one_v4 && !v4) ||
        (n.vip == VipScope::all_or_one_v4 && r.vip && !v4))
        return false;
    if (n.affinity && r.affinity != *n.affinity) return false;
    if (n.unequal_weights) {
        const auto w = own_weights(cfgs, i);
        if (std::all_of(w.begin(), w.end(), [&](const auto& e) { return e.second == w.begin()->second; }))
            return false;
    }
    if (n.beats_web && (web == nullptr || r.port_hi < web->rule.port_lo || r.port_lo > web->rule.port_hi))
        return false;
    return true;
}

// The hosts' copies differ only by @HOST@ and @P:a,b,c@: what the manifest
// depends on must still be the same on every host.
void check_hosts_agree(const std::string& file, const Configs& cfgs) {
    const config::Config& first = cfgs.front();
    for (size_t k = 0; k < cfgs.size(); ++k) {
        const config::Config& c = cfgs[k];
        const std::string host = "host " + std::to_string(kScenarioHosts[k]);
        if (c.host.id != kScenarioHosts[k])
            fail(at_line(file, c.lines.count("host.id") ? c.lines.at("host.id") : 0) + ": host.id: is " +
                 std::to_string(c.host.id) + " in the copy for " + host + "; allowed: @HOST@");
        if (c.host.initial_state != config::InitialState::started)
            fail(file + ": host.initial_state: " + host + " is " + config::initial_state_name(c.host.initial_state) +
                 "; allowed: started (the manifest expects every member live)");
        std::vector<HostId> members = c.cluster.static_members;
        std::sort(members.begin(), members.end());
        if (!std::equal(members.begin(), members.end(), kScenarioHosts.begin(), kScenarioHosts.end())) {
            std::string m;
            for (HostId h : c.cluster.static_members) m.append(m.empty() ? "" : ", ").append(std::to_string(h));
            fail(file + ": cluster.static_members: [" + m + "] for " + host +
                 "; allowed: the hosts a scenario runs, [1, 2, 3]");
        }
        if (c.cluster.mode != first.cluster.mode || c.cluster.vips != first.cluster.vips)
            fail(file + ": cluster.mode / cluster.vips: " + host + " differs from host " +
                 std::to_string(kScenarioHosts[0]) + "; allowed: the same on every host");
        if (c.rules.size() != first.rules.size())
            fail(file + ": " + host + " has " + std::to_string(c.rules.size()) + " port rules, host " +
                 std::to_string(kScenarioHosts[0]) + " " + std::to_string(first.rules.size()) +
                 "; allowed: the same rules on every host");
        for (size_t i = 0; i < c.rules.size(); ++i) {
            const std::string a = identity(first.rules[i]), b = identity(c.rules[i]);
            if (a != b)
                fail(at_line(file, c.rules[i].line) + ": port_rule[" + std::to_string(i + 1) + "]: " + host +
                     " has it as " + b + ", host " + std::to_string(kScenarioHosts[0]) + " as " + a +
                     "; allowed: per-host values (@P:a,b,c@) only in weights and priorities");
        }
    }
}

// Every frame of a class must reach its rule, and the no-rule ports none.
void check_matching(const Scenario& sc, const std::vector<PortRule>& rules) {
    const auto rule_at = [&](size_t i) { return at_line(sc.file, rules[i].line) + ": " + rule_label(rules[i], i); };
    for (const Need& n : kNeeds) {
        const ClassRule& c = sc.rule(n.traffic);
        std::vector<IpAddr> vips{c.vip};
        if (n.vip == VipScope::all) vips.push_back(sc.vip6);
        const uint16_t lo = n.traffic == Traffic::frag ? c.rule.port_lo : c.port;
        const uint16_t hi = n.traffic == Traffic::frag ? c.rule.port_hi : c.port;
        for (const IpAddr& vip : vips)
            for (const bool udp : {false, true}) {
                if ((udp && !n.udp) || (!udp && !n.tcp)) continue;
                for (uint32_t port = lo; port <= hi; ++port) {
                    const auto m = match(rules, vip, udp, static_cast<uint16_t>(port));
                    if (m == c.index) continue;
                    const std::string to = vip.to_string() + ":" + std::to_string(port) + (udp ? "/udp" : "/tcp");
                    fail((m ? rule_at(*m) : sc.file + ": no rule") + " takes the '" + n.name + "' traffic to " + to +
                         ", meant for " + rule_label(c.rule, c.index) + " (line " + std::to_string(c.rule.line) +
                         "); allowed: no rule for that VIP beating it");
                }
            }
    }
    for (const IpAddr& vip : {sc.vip4, sc.vip6})
        for (const bool udp : {false, true}) {
            const uint16_t port = udp ? kNoRuleUdpPort : kNoRuleTcpPort;
            if (const auto m = match(rules, vip, udp, port))
                fail(rule_at(*m) + " covers " + vip.to_string() + ":" + std::to_string(port) +
                     (udp ? "/udp" : "/tcp") +
                     ", where nlbd-pcapgen sends VIP traffic that must match no rule; allowed: no rule for " +
                     std::to_string(kNoRuleTcpPort) + "/tcp and " + std::to_string(kNoRuleUdpPort) + "/udp");
        }
    std::vector<std::string> non_vips(kNonVip4.begin(), kNonVip4.end());
    non_vips.emplace_back(kNonVip6);
    for (const std::string& a : non_vips)
        for (const IpAddr& v : sc.vips)
            if (v == *IpAddr::parse(a))
                fail(sc.file + ": cluster.vips: lists " + a +
                     ", an address nlbd-pcapgen sends non-VIP traffic to; allowed: VIPs other than " +
                     "198.51.100.1-3 and 2001:db8:100::2");
}

}  // namespace

const char* traffic_name(Traffic t) { return kNeeds[static_cast<size_t>(t)].name; }

std::string fill_placeholders(const std::string& text, HostId host, const PortFiles& files,
                              const std::string& template_file) {
    const auto slot = std::find(kScenarioHosts.begin(), kScenarioHosts.end(), host) - kScenarioHosts.begin();
    if (static_cast<size_t>(slot) == kScenarioHosts.size())
        fail(template_file + ": host " + std::to_string(host) + " is not one of the scenario's hosts 1, 2, 3");
    const std::string h = std::to_string(host);
    constexpr const char* kAllowed = "; allowed: @HOST@ @IN@ @EMPTY@ @WIRE_OUT@ @LOCAL_OUT@ @P:a,b,c@";
    std::string out;
    unsigned line = 1;
    for (size_t i = 0; i < text.size();) {
        if (text[i] != '@') {
            line += text[i] == '\n';
            out += text[i++];
            continue;
        }
        const size_t end = text.find_first_of("@\n", i + 1);
        if (end == std::string::npos || text[end] != '@')
            fail(at_line(template_file, line) + ": an '@' that opens no placeholder" + kAllowed);
        const std::string_view name(text.data() + i + 1, end - i - 1);
        if (name == "HOST") {
            out += h;
        } else if (name == "IN") {
            out += files.in;
        } else if (name == "EMPTY") {
            out += files.empty;
        } else if (name == "WIRE_OUT") {
            out += files.dir + "/wire_out." + h + ".pcap";
        } else if (name == "LOCAL_OUT") {
            out += files.dir + "/local_out." + h + ".pcap";
        } else if (name.starts_with("P:")) {
            std::vector<std::string_view> values;
            for (size_t from = 2;;) {
                const size_t comma = name.find(',', from);
                values.push_back(name.substr(from, comma == std::string_view::npos ? comma : comma - from));
                if (comma == std::string_view::npos) break;
                from = comma + 1;
            }
            if (values.size() != kScenarioHosts.size())
                fail(at_line(template_file, line) + ": '@" + std::string(name) + "@' has " +
                     std::to_string(values.size()) + " values" + kAllowed + " (one value per host 1, 2, 3)");
            out += values[static_cast<size_t>(slot)];
        } else {
            fail(at_line(template_file, line) + ": unknown placeholder '@" + std::string(name) + "@'" + kAllowed);
        }
        i = end + 1;
    }
    return out;
}

Scenario load_scenario(const std::string& template_file, const PortFiles& files) {
    std::ifstream in(template_file);
    if (!in) fail(template_file + ": cannot read the scenario's cluster file");
    std::ostringstream text;
    text << in.rdbuf();

    Scenario sc;
    sc.file = template_file;
    Configs cfgs;
    for (HostId h : kScenarioHosts) {
        const std::string path = files.dir + "/host" + std::to_string(h) + ".toml";
        {
            std::ofstream out(path);
            out << fill_placeholders(text.str(), h, files, template_file);
            if (!out.flush()) fail(path + ": cannot write host " + std::to_string(h) + "'s config");
        }
        try {
            cfgs.push_back(config::load_config(path, std::nullopt));
        } catch (const std::exception& e) {
            // Filling in placeholders keeps the lines, so the error's line is the template's.
            fail(template_file + " for host " + std::to_string(h) + " (written as " + path + "): " + e.what());
        }
        sc.host_files.push_back(path);
    }
    check_hosts_agree(template_file, cfgs);

    const config::Config& first = cfgs.front();
    sc.mode = first.cluster.mode;
    if (sc.mode == ClusterMode::igmp)
        fail(template_file + ": cluster.mode: is igmp; allowed: unicast, multicast (the modes nlbd-pcapgen "
                             "addresses traffic for)");
    sc.vips = first.cluster.vips;
    const auto first_of = [&](Family f) {
        for (const IpAddr& v : sc.vips)
            if (v.family == f) return v;
        fail(template_file + ": cluster.vips: has no " + (f == Family::v4 ? "IPv4" : "IPv6") +
             " VIP; allowed: at least one IPv4 and one IPv6 VIP (the traffic goes to both)");
    };
    sc.vip4 = first_of(Family::v4);
    sc.vip6 = first_of(Family::v6);
    sc.members.assign(kScenarioHosts.begin(), kScenarioHosts.end());
    sc.default_host = sc.members.front();

    std::vector<bool> taken(first.rules.size(), false);
    for (const Need& n : kNeeds) {
        const ClassRule* web = n.beats_web ? &sc.rule(Traffic::web) : nullptr;
        size_t i = 0;
        while (i < first.rules.size() && (taken[i] || !fits(n, first.rules[i], cfgs, i, web))) ++i;
        if (i == first.rules.size())
            fail(template_file + ": no [[port_rule]] for nlbd-pcapgen's '" + n.name + "' traffic (" + n.sends +
                 "); allowed: a rule with " + n.wants + ", not taken by an earlier class");
        taken[i] = true;
        ClassRule& c = sc.rules[static_cast<size_t>(n.traffic)];
        c.index = i;
        c.rule = first.rules[i];
        c.port = web != nullptr ? std::max(c.rule.port_lo, web->rule.port_lo) : c.rule.port_lo;
        c.vip = c.rule.vip ? *c.rule.vip : sc.vip4;
        if (c.rule.mode == FilterMode::single) {
            const auto own = own_priorities(cfgs, i);
            check_views(template_file, cfgs, i, own, true);
            // The lowest handling priority wins (handling_priority is 1..64).
            c.best = std::min_element(own.begin(), own.end(),
                                      [](const auto& a, const auto& b) { return a.second < b.second; })
                         ->first;
        } else if (c.rule.mode == FilterMode::multiple) {
            c.weights = own_weights(cfgs, i);
            check_views(template_file, cfgs, i, c.weights, false);
        }
    }
    check_matching(sc, first.rules);
    return sc;
}

}  // namespace nlbd::tools
