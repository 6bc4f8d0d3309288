// The control command registry (see commands.hpp).

#include "nlbd/ctl/commands.hpp"

#include <charconv>

#include "nlbd/ctl/target.hpp"

namespace nlbd::ctl {

Role parse_role(std::string_view text) {
    if (text == "read") return Role::read;
    if (text == "admin") return Role::admin;
    return Role::none;
}

const char* role_name(Role r) {
    switch (r) {
    case Role::read: return "read";
    case Role::admin: return "admin";
    default: return "none";
    }
}

std::string check_rule_target(const std::vector<std::string>& args) {
    if (!parse_rule_target(args.at(0)))
        return "bad target '" + args[0] + "': expected vip:port, [ipv6]:port, vip:all, port or all";
    return "";
}

bool remote_command_allowed(std::string_view name) {
    for (std::string_view n : {"start", "stop", "drainstop", "suspend", "resume", "enable", "disable", "drain"})
        if (name == n) return true;
    return false;
}

std::string check_host_args(const std::vector<std::string>& args) {
    const std::string& t = args.at(0);
    unsigned id = 0;
    const auto r = std::from_chars(t.data(), t.data() + t.size(), id);
    if (t != "all" && (r.ec != std::errc() || r.ptr != t.data() + t.size() || id < 1 || id > 64))
        return "bad host '" + t + "': expected a host id 1..64 or all";
    const Command* c = find_command(args.at(1));
    if (c == nullptr || !remote_command_allowed(c->name))
        return "'" + args[1] + "' cannot be sent to another host: start, stop, drainstop, suspend, resume, "
               "enable, disable or drain";
    return argument_error(*c, std::vector<std::string>(args.begin() + 2, args.end()));
}

std::string check_drainstop_args(const std::vector<std::string>& args) {
    if (args.empty()) return "";
    unsigned s = 0;
    const std::string& t = args[0];
    const auto r = std::from_chars(t.data(), t.data() + t.size(), s);
    if (r.ec != std::errc() || r.ptr != t.data() + t.size() || s < 1 || s > 86400)
        return "bad drainstop timeout '" + t + "': expected 1..86400 seconds";
    return "";
}

std::string check_ip2mac_args(const std::vector<std::string>& args) {
    const auto e = parse_endpoint(args.at(0));
    if (!e || e->port) return "bad VIP '" + args[0] + "': expected an address";
    return "";
}

std::string check_queryport_args(const std::vector<std::string>& args) {
    if (!parse_rule_target(args.at(0)) || parse_rule_target(args[0])->all_ports)
        return "bad port '" + args[0] + "': expected vip:port, [ipv6]:port or port";
    return "";
}

std::string check_filter_args(const std::vector<std::string>& args) {
    if (!parse_endpoint(args.at(0)))
        return "bad client '" + args[0] + "': expected an address, address:port or [ipv6]:port";
    const auto vip = parse_endpoint(args.at(1));
    if (!vip || !vip->port)
        return "bad destination '" + args[1] + "': expected vip:port or [ipv6]:port";
    if (args.size() > 2 && args[2] != "tcp" && args[2] != "udp")
        return "bad protocol '" + args[2] + "': expected tcp or udp";
    return "";
}

std::vector<std::string> example_args(const Command& c) {
    std::vector<std::string> v;
    std::string_view s = c.example;
    while (!s.empty()) {
        const size_t sp = s.find(' ');
        v.emplace_back(s.substr(0, sp));
        if (sp == std::string_view::npos) break;
        s.remove_prefix(sp + 1);
    }
    return v;
}

const Command* find_command(std::string_view name) {
    for (const Command& c : kCommands)
        if (name == c.name) return &c;
    return nullptr;
}

std::string synopsis(const Command& c) {
    std::string s(c.name);
    if (!c.usage.empty()) s.append(" ").append(c.usage);
    return s;
}

std::string argument_error(const Command& c, const std::vector<std::string>& args) {
    const auto n = static_cast<long>(args.size());
    const std::string name(c.name);
    if (n < c.min_args) return "'" + name + "' needs an argument: " + synopsis(c);
    if (n > c.max_args) return "too many arguments for '" + name + "': " + synopsis(c);
    return c.check ? c.check(args) : "";
}

bool role_allows(Role role, std::string_view command) {
    if (role == Role::none) return false;
    const Command* c = find_command(command);
    if (c == nullptr) return role == Role::admin;
    return role >= c->role;
}

}  // namespace nlbd::ctl
