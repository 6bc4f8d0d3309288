#include "nlbd/core/types.hpp"
#include "nlbd/core/rules.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

namespace nlbd {

std::string MacAddr::to_string() const {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x-%02x-%02x-%02x-%02x-%02x", b[0], b[1], b[2], b[3], b[4],
                  b[5]);
    return buf;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    std::string s(text);
    IpAddr a;
    if (inet_pton(AF_INET, s.c_str(), a.b.data()) == 1) {
        a.family = Family::v4;
        return a;
    }
    if (inet_pton(AF_INET6, s.c_str(), a.b.data()) == 1) {
        a.family = Family::v6;
        return a;
    }
    return std::nullopt;
}

std::string IpAddr::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (family == Family::v4) inet_ntop(AF_INET, b.data(), buf, sizeof buf);
    else if (family == Family::v6) inet_ntop(AF_INET6, b.data(), buf, sizeof buf);
    else return "none";
    return buf;
}

const char* name_of(Protocol p) noexcept {
    switch (p) {
    case Protocol::tcp: return "tcp";
    case Protocol::udp: return "udp";
    case Protocol::both: return "both";
    }
    return "?";
}
const char* name_of(FilterMode m) noexcept {
    switch (m) {
    case FilterMode::multiple: return "multiple";
    case FilterMode::single: return "single";
    case FilterMode::disabled: return "disabled";
    }
    return "?";
}
const char* name_of(Affinity a) noexcept {
    switch (a) {
    case Affinity::none: return "none";
    case Affinity::single: return "single";
    case Affinity::network: return "network";
    }
    return "?";
}
const char* name_of(ClusterMode m) noexcept {
    switch (m) {
    case ClusterMode::unicast: return "unicast";
    case ClusterMode::multicast: return "multicast";
    case ClusterMode::igmp: return "igmp";
    }
    return "?";
}

std::string rule_name(const PortRule& r) {
    std::string s;
    if (!r.vip) s = "all";
    else if (r.vip->family == Family::v6) s.append("[").append(r.vip->to_string()).append("]");
    else s = r.vip->to_string();
    s += ':' + std::to_string(r.port_lo);
    if (r.port_hi != r.port_lo) s += '-' + std::to_string(r.port_hi);
    s += '/';
    s += name_of(r.protocol);
    return s;
}

RuleRecord rule_record(const PortRule& r) {
    RuleRecord v{};
    if (r.vip) {
        v[0] = static_cast<uint8_t>(r.vip->family);
        std::copy(r.vip->b.begin(), r.vip->b.end(), v.begin() + 1);
    }
    v[17] = static_cast<uint8_t>(r.port_lo >> 8);
    v[18] = static_cast<uint8_t>(r.port_lo);
    v[19] = static_cast<uint8_t>(r.port_hi >> 8);
    v[20] = static_cast<uint8_t>(r.port_hi);
    v[21] = static_cast<uint8_t>(r.protocol);
    v[22] = static_cast<uint8_t>(r.mode);
    v[23] = static_cast<uint8_t>(r.affinity);
    for (int i = 0; i < 4; ++i) v[static_cast<size_t>(24 + i)] = static_cast<uint8_t>(r.affinity_timeout_s >> (24 - 8 * i));
    return v;
}

std::optional<PortRule> rule_from_record(const RuleRecord& v) {
    PortRule r;
    if (v[0] != 0) {
        if (v[0] != static_cast<uint8_t>(Family::v4) && v[0] != static_cast<uint8_t>(Family::v6))
            return std::nullopt;
        IpAddr a;
        a.family = static_cast<Family>(v[0]);
        std::copy(v.begin() + 1, v.begin() + 17, a.b.begin());
        r.vip = a;
    }
    r.port_lo = static_cast<uint16_t>(v[17] << 8 | v[18]);
    r.port_hi = static_cast<uint16_t>(v[19] << 8 | v[20]);
    if (r.port_lo > r.port_hi || v[21] > 2 || v[22] > 2 || v[23] > 2) return std::nullopt;
    r.protocol = static_cast<Protocol>(v[21]);
    r.mode = static_cast<FilterMode>(v[22]);
    r.affinity = static_cast<Affinity>(v[23]);
    r.affinity_timeout_s = uint32_t{v[24]} << 24 | uint32_t{v[25]} << 16 | uint32_t{v[26]} << 8 | v[27];
    return r;
}

}  // namespace nlbd
