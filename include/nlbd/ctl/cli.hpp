#pragma once
// nlbctl: the printers and the driver, as a library so tests can run
// argument parsing and the printers without a daemon.
//
//   nlbctl [--socket PATH] [--json] [--timeout MS] COMMAND [ARGS]
//   nlbctl --remote HOST:PORT --cert F --key F --ca F [--server-name N] ... COMMAND [ARGS]
//
// Exit codes: 0 ok, 1 the daemon refused or failed the command,
// 2 usage error, 3 cannot connect to the socket.

#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nlbd/ctl/commands.hpp"
#include "nlbd/ctl/json.hpp"

namespace nlbd::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitConnect = 3;

// Human output of a command's result. The command descriptors (name, usage,
// arity, role, ...) are the registry's (commands.hpp); nlbctl adds only a
// printer per registry row (checked at compile time).
using Printer = void (*)(std::FILE* out, const Json& result);

struct CommandPrinter {
    std::string_view name;
    Printer print;
};

// One row per registry command.
std::span<const CommandPrinter> printer_table();
// The printer of `command`; nullptr for a name that is not in the registry.
Printer printer_for(std::string_view command);

struct Invocation {
    std::string socket;    // resolved: --socket, $NLBCTL_SOCKET, kDefaultSocketPath
    bool json = false;
    bool help = false;     // --help / -h / "help": print usage, exit 0
    int timeout_ms = 10000;
    // Remote control over mutual TLS (tls_client.hpp): --remote host:port
    // with --cert/--key (ours) and --ca (the server's); empty: local socket.
    std::string remote;
    std::string cert, key, ca;
    std::string server_name;   // --server-name: SNI and name check
    std::string command;
    std::vector<std::string> args;
};

struct ParseOutcome {
    bool ok = false;
    Invocation inv;
    std::string error;     // usage error, when !ok
};

// argv without the program name.
ParseOutcome parse_command_line(const std::vector<std::string>& argv);

void print_usage(std::FILE* out);

// Prints a response (human or --json) and returns the exit code for it.
int print_response(std::FILE* out, std::FILE* err, const Invocation& inv, const Json& response);

// Whole program: parse, call, print. Returns the exit code.
int nlbctl_main(const std::vector<std::string>& argv, std::FILE* out, std::FILE* err);

}  // namespace nlbd::ctl
