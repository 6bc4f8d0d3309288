#include "nlbd/core/types.hpp"
#include "nlbd/core/rules.hpp"

#include <arpa/inet.h>

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

std::string rule_name(const PortRule& r) {
    std::string s;
    if (!r.vip) s = "all";
    else if (r.vip->family == Family::v6) s = "[" + r.vip->to_string() + "]";
    else s = r.vip->to_string();
    s += ':' + std::to_string(r.port_lo);
    if (r.port_hi != r.port_lo) s += '-' + std::to_string(r.port_hi);
    s += r.protocol == Protocol::tcp ? "/tcp" : r.protocol == Protocol::udp ? "/udp" : "/both";
    return s;
}

}  // namespace nlbd
