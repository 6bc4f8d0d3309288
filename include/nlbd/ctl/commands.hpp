#pragma once
// The control commands (SPEC §8): one registry, shared by
//  - nlbctl (cli.cpp): parsing, --help, and a printer per row;
//  - nlbd (dp/cluster_control.cpp): the lookup, arity and argument errors,
//    the rules that hold for every command (suspended host, static
//    membership), and a handler per row;
//  - the remote control server (tls_server.cpp): the role a client
//    certificate needs for each command.
// Adding a verb is one row here, one handler in nlbd, one printer in nlbctl
// and one test; both per-row tables are checked against this one at compile
// time (covers_every_command).
//
// Control plane only: descriptors are constant data, functions may allocate.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace nlbd::ctl {

// What a remote (mutual-TLS) client may do, from its certificate's CN.
// Ordered: a role may run every command whose role is at most its own. The
// local UNIX socket is root-only and runs every command.
enum class Role : uint8_t { none, read, admin };

// "read" / "admin"; Role::none for anything else.
Role parse_role(std::string_view text);
const char* role_name(Role r);

// Extra validation of a command's arguments, run after the arity check;
// returns an error message or "".
using ArgCheck = std::string (*)(const std::vector<std::string>& args);

// enable / disable / drain: args[0] is a rule target (target.hpp).
std::string check_rule_target(const std::vector<std::string>& args);
// host <id|all> <state command> [its argument].
std::string check_host_args(const std::vector<std::string>& args);
// The commands `host` may send to another host: the state changes.
bool remote_command_allowed(std::string_view name);
// drainstop [SECONDS] (nlbctl: drainstop --timeout SECONDS).
std::string check_drainstop_args(const std::vector<std::string>& args);
// ip2mac <vip>, queryport <[vip:]port>.
std::string check_ip2mac_args(const std::vector<std::string>& args);
std::string check_queryport_args(const std::vector<std::string>& args);
// filter <client[:port]> <vip:port> [tcp|udp].
std::string check_filter_args(const std::vector<std::string>& args);

// A row of the registry. The defaults fail closed: a row that says nothing
// takes no arguments, needs admin and is refused by a suspended host and by
// static membership.
struct Command {
    std::string_view name;
    std::string_view usage = "";   // argument synopsis, e.g. "<vip:port|port|all>"; "" = none
    std::string_view help = "";    // one line
    int min_args = 0;
    int max_args = 0;
    // The fewest arguments that are valid, space-separated (tests, --help
    // examples); "" when the command takes none.
    std::string_view example = "";
    ArgCheck check = nullptr;      // nullptr: none
    // Role::read exactly for the commands that change nothing (query,
    // display, params, stats, filter); every other command needs Role::admin.
    Role role = Role::admin;
    // Accepted by a suspended host (NLB: a suspended host ignores every
    // command but resume and query; reading the state never hurts).
    bool while_suspended = false;
    // Supported by a host with static membership ([cluster] static_members):
    // its only state is started/stopped, so the other state changes and the
    // rule commands have nothing to act on.
    bool with_static = false;
};

// The registry, in the order `nlbctl --help` lists it.
inline constexpr Command kCommands[] = {
    {.name = "query",
     .help = "state, membership, convergence, epoch, buckets owned per rule, mismatches",
     .role = Role::read, .while_suspended = true, .with_static = true},
    {.name = "display", .help = "configuration, parameters and state of this host",
     .role = Role::read, .while_suspended = true, .with_static = true},
    {.name = "params", .help = "effective cluster and host parameters",
     .role = Role::read, .while_suspended = true, .with_static = true},
    {.name = "stats", .help = "packet counters (same data as nlbd --stats-json)",
     .role = Role::read, .while_suspended = true, .with_static = true},
    {.name = "cluster",
     .help = "every host this host hears: state, rules, buckets owned, health (query --cluster)",
     .role = Role::read, .while_suspended = true, .with_static = true},
    {.name = "ip2mac", .usage = "<vip>",
     .help = "the cluster MAC of a VIP in each mode (unicast, multicast, igmp) and the one in force",
     .min_args = 1, .max_args = 1, .example = "10.0.0.10", .check = check_ip2mac_args,
     .role = Role::read, .while_suspended = true, .with_static = true},
    {.name = "queryport", .usage = "<vip:port|port>",
     .help = "the port rule that matches, its state, buckets owned and counters on this host",
     .min_args = 1, .max_args = 1, .example = "443", .check = check_queryport_args,
     .role = Role::read, .while_suspended = true, .with_static = true},
    {.name = "buckets", .usage = "<vip:port|port>",
     .help = "the owner of every bucket of the matching multiple-host rules (bucket -> host id)",
     .min_args = 1, .max_args = 1, .example = "443", .check = check_queryport_args,
     .role = Role::read, .while_suspended = true, .with_static = true},
    {.name = "filter", .usage = "<client-ip[:port]> <vip:port> [tcp|udp]",
     .help = "which host accepts a new connection of this flow, and why",
     .min_args = 2, .max_args = 3, .example = "10.0.0.5:40000 10.0.0.10:80", .check = check_filter_args,
     .role = Role::read, .while_suspended = true, .with_static = true},
    {.name = "start", .help = "start cluster operations on this host", .with_static = true},
    {.name = "stop", .help = "stop cluster operations at once (connections are dropped)",
     .with_static = true},
    {.name = "drainstop", .usage = "[--timeout SECONDS]",
     .help = "accept no new connections; stop when the existing ones are gone (or after the timeout)",
     .max_args = 1, .check = check_drainstop_args},
    {.name = "suspend", .help = "stop and ignore every command but resume and query"},
    {.name = "resume", .help = "leave the suspended state (then use start)", .while_suspended = true},
    {.name = "enable", .usage = "<vip:port|port|all>",
     .help = "enable traffic handling for the matching port rules",
     .min_args = 1, .max_args = 1, .example = "all", .check = check_rule_target, .with_static = true},
    {.name = "disable", .usage = "<vip:port|port|all>",
     .help = "drop all traffic (connections too) of the matching port rules",
     .min_args = 1, .max_args = 1, .example = "all", .check = check_rule_target, .with_static = true},
    {.name = "drain", .usage = "<vip:port|port|all>",
     .help = "accept no new connections for the matching port rules",
     .min_args = 1, .max_args = 1, .example = "all", .check = check_rule_target, .with_static = true},
    {.name = "host", .usage = "<id|all> <command> [<vip:port|port|all>]",
     .help = "run start/stop/drainstop/suspend/resume/enable/disable/drain on another host or on all, "
             "authenticated with the heartbeat secret",
     .min_args = 2, .max_args = 3, .example = "2 drainstop", .check = check_host_args},
    // A configuration change is no state change: accepted while suspended.
    {.name = "reload", .help = "re-read the configuration files",
     .while_suspended = true, .with_static = true},
};

// c.example split at spaces.
std::vector<std::string> example_args(const Command& c);

// nullptr when `name` is not in the registry.
const Command* find_command(std::string_view name);

// "enable <vip:port|port|all>", "query".
std::string synopsis(const Command& c);

// "" when `args` fit `c`; else why not: the arity ("'enable' needs an
// argument: enable <vip:port|port|all>", "too many arguments for 'query':
// query"), then c.check's message.
std::string argument_error(const Command& c, const std::vector<std::string>& args);

// Whether a remote client of `role` may run `command`: its role is at least
// the command's. Role::admin may also send a name that is not in the
// registry (nlbd answers "unknown command"); Role::none runs nothing.
bool role_allows(Role role, std::string_view command);

// True when `rows` (anything with a `name` convertible to string_view) name
// every registry command exactly once and nothing else. For the
// static_asserts of the per-command tables of nlbctl and nlbd.
template <typename Row, std::size_t N>
constexpr bool covers_every_command(const Row (&rows)[N]) {
    if (N != std::size(kCommands)) return false;
    for (const Command& c : kCommands) {
        std::size_t n = 0;
        for (const Row& r : rows)
            if (std::string_view(r.name) == c.name) ++n;
        if (n != 1) return false;
    }
    return true;
}

}  // namespace nlbd::ctl
