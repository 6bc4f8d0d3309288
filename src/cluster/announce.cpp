// VIP announcement, pure part (include/nlbd/cluster/announce.hpp).

#include "nlbd/cluster/announce.hpp"

namespace nlbd::cluster {

bool announce_allowed(const AnnounceInput& in) noexcept {
    if (!in.started || in.withdrawing || !in.link_up) return false;
    if (in.converged) return true;
    return in.announcing && in.converging_ms <= in.converging_grace_ms;
}

std::vector<IpAddr> announced_vips(std::span<const IpAddr> vips, std::span<const AnnounceRule> rules,
                                   const AnnounceInput& in) {
    std::vector<IpAddr> out;
    if (!announce_allowed(in)) return out;
    for (const IpAddr& v : vips) {
        bool any = false, all_serving = true;
        for (const AnnounceRule& r : rules) {
            if (!r.all_vips && !(r.vip == v)) continue;
            any = true;
            all_serving = all_serving && r.serving;
        }
        if (any && all_serving) out.push_back(v);
    }
    return out;
}

bool last_started_host(std::span<const PeerStatus> peers, HostId self) noexcept {
    for (const PeerStatus& p : peers)
        if (p.id != self && p.alive && !p.excluded && p.state == HostState::started) return false;
    return true;
}

std::string render_bird_include(std::span<const IpAddr> announced, const IpAddr& next_hop,
                                std::string_view origin) {
    std::string s;
    s += "# Written by nlbd (";
    s += origin;
    s += "); do not edit: nlbd rewrites it whenever what it announces changes.\n";
    s += "# Include it in bird.conf before the BGP protocols and export with\n";
    s += "#   ipv4 { export filter ";
    s += kBirdFilter;
    s += "; };\n";
    s += "# Announced: ";
    s += std::to_string(announced.size());
    s += " VIP(s).\n";
    s += "protocol static ";
    s += kBirdProtocol;
    s += " {\n    ipv4;\n";
    for (const IpAddr& v : announced) {
        s += "    route ";
        s += v.to_string();
        s += "/32 blackhole;\n";
    }
    s += "}\n";
    s += "filter ";
    s += kBirdFilter;
    s += " {\n    if proto = \"";
    s += kBirdProtocol;
    s += "\" then {\n        bgp_next_hop = ";
    s += next_hop.to_string();
    s += ";\n        accept;\n    }\n    reject;\n}\n";
    return s;
}

}  // namespace nlbd::cluster
