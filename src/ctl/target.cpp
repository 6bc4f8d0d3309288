// Parsing of enable / disable / drain targets (see target.hpp).

#include "nlbd/ctl/target.hpp"

#include <charconv>

namespace nlbd::ctl {

namespace {

std::optional<RuleTarget> port_part(std::string_view text, std::string vip) {
    RuleTarget t;
    t.vip = std::move(vip);
    if (text == "all") {
        t.all_ports = true;
        return t;
    }
    if (text.empty() || text.size() > 5) return std::nullopt;
    unsigned v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc() || r.ptr != text.data() + text.size() || v > 65535) return std::nullopt;
    t.port = static_cast<uint16_t>(v);
    return t;
}

bool vip_chars_ok(std::string_view vip) {
    if (vip.empty()) return false;
    for (char c : vip) {
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == '.' || c == ':';
        if (!ok) return false;
    }
    return true;
}

}  // namespace

std::optional<RuleTarget> parse_rule_target(std::string_view text) {
    if (text.empty()) return std::nullopt;
    if (text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        std::string_view vip = text.substr(1, close - 1);
        if (!vip_chars_ok(vip) || vip.find(':') == std::string_view::npos) return std::nullopt;
        return port_part(text.substr(close + 2), std::string(vip));
    }
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return port_part(text, {});
    std::string_view vip = text.substr(0, colon);
    // An unbracketed IPv6 address is ambiguous ("2001:db8::1:443").
    if (vip.find(':') != std::string_view::npos || !vip_chars_ok(vip)) return std::nullopt;
    return port_part(text.substr(colon + 1), std::string(vip));
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
    Endpoint e;
    std::string_view addr = text, port;
    if (!text.empty() && text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        addr = text.substr(1, close - 1);
        if (close + 1 < text.size()) {
            if (text[close + 1] != ':') return std::nullopt;
            port = text.substr(close + 2);
            if (port.empty()) return std::nullopt;
        }
        if (addr.find(':') == std::string_view::npos) return std::nullopt;
    } else if (const size_t colon = text.find(':'); colon != std::string_view::npos &&
                                                    text.find(':', colon + 1) == std::string_view::npos) {
        addr = text.substr(0, colon);  // IPv4:port
        port = text.substr(colon + 1);
        if (port.empty()) return std::nullopt;
    }
    if (!vip_chars_ok(addr)) return std::nullopt;
    e.address = std::string(addr);
    if (!port.empty()) {
        const auto p = port_part(port, {});
        if (!p || p->all_ports) return std::nullopt;
        e.port = p->port;
    }
    return e;
}

}  // namespace nlbd::ctl
