#pragma once
// The argument of enable / disable / drain: which port rules a command
// addresses, as NLB's "nlb enable vip:port | port | all". Shared by nlbctl
// (validation before sending) and nlbd (selection of rules).
//
//   "all"                   every rule
//   "443"                   rules whose port range contains 443, any VIP
//   "10.0.0.1:443"          rules of VIP 10.0.0.1 (or "all"-VIP rules) containing 443
//   "[2001:db8::1]:443"     the same for an IPv6 VIP
//   "10.0.0.1:all"          every rule of that VIP
// The VIP text is returned as written; nlbd parses it (core::IpAddr::parse).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nlbd::ctl {

struct RuleTarget {
    bool all_ports = false;   // "all" or "vip:all"
    std::string vip;          // empty: any VIP
    uint16_t port = 0;        // meaningful when !all_ports
};

// nullopt when the text is not one of the forms above (bad port, empty VIP,
// unbalanced brackets, an unbracketed IPv6 address with a port).
std::optional<RuleTarget> parse_rule_target(std::string_view text);

// An address with an optional port, for `filter`: "10.0.0.5", "10.0.0.5:40000",
// "2001:db8::5" (an unbracketed IPv6 address has no port),
// "[2001:db8::5]:40000". The address text is returned as written.
struct Endpoint {
    std::string address;
    std::optional<uint16_t> port;
};
std::optional<Endpoint> parse_endpoint(std::string_view text);

}  // namespace nlbd::ctl
