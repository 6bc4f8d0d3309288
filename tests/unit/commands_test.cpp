// The control command registry (ctl/commands.hpp) and what nlbctl and the
// remote server read from it. nlbd's handler table is checked against the
// registry by a static_assert in src/daemon/cluster_control.cpp.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "nlbd/ctl/cli.hpp"
#include "nlbd/ctl/commands.hpp"
#include "nlbd/ctl/tls_server.hpp"

namespace ctl = nlbd::ctl;
using ctl::Role;

namespace {

std::set<std::string_view> names_where(bool (*pred)(const ctl::Command&)) {
    std::set<std::string_view> s;
    for (const ctl::Command& c : ctl::kCommands)
        if (pred(c)) s.insert(c.name);
    return s;
}

// The commands that report and change nothing, SPEC §8 (nlb.exe's query,
// display, params, plus stats).
const std::set<std::string_view> kNonMutating = {"query", "display", "params", "stats", "filter", "cluster", "ip2mac", "queryport", "buckets"};

TEST(CommandRegistry, NamesAreUniqueAndFoundByName) {
    std::set<std::string_view> seen;
    for (const ctl::Command& c : ctl::kCommands) {
        EXPECT_TRUE(seen.insert(c.name).second) << c.name;
        EXPECT_EQ(ctl::find_command(c.name), &c);
        EXPECT_FALSE(c.help.empty()) << c.name;
        EXPECT_LE(c.min_args, c.max_args) << c.name;
    }
    for (std::string_view name : {"query", "display", "params", "start", "stop", "drainstop", "suspend", "resume",
                                  "enable", "disable", "drain", "reload", "stats"})
        EXPECT_NE(ctl::find_command(name), nullptr) << name;
}

TEST(CommandRegistry, EveryCommandHasExactlyOneNlbctlPrinter) {
    for (const ctl::Command& c : ctl::kCommands) EXPECT_NE(ctl::printer_for(c.name), nullptr) << c.name;
    EXPECT_EQ(ctl::printer_table().size(), std::size(ctl::kCommands));
    for (const ctl::CommandPrinter& p : ctl::printer_table()) {
        EXPECT_NE(ctl::find_command(p.name), nullptr) << p.name << " prints a command that does not exist";
        EXPECT_NE(p.print, nullptr) << p.name;
    }
    EXPECT_EQ(ctl::printer_for("frobnicate"), nullptr);
}

// The check behind the static_asserts on nlbctl's printers and nlbd's handlers.
TEST(CommandRegistry, CoverageCheckRefusesAMissingDuplicateOrExtraRow) {
    struct Row {
        std::string_view name;
    };
    constexpr size_t n = std::size(ctl::kCommands);
    Row same[n], fewer[n - 1], twice[n], more[n + 1];
    for (size_t i = 0; i < n; ++i) {
        same[i].name = more[i].name = twice[i].name = ctl::kCommands[i].name;
        if (i + 1 < n) fewer[i].name = ctl::kCommands[i].name;
    }
    twice[n - 1].name = ctl::kCommands[0].name;
    more[n].name = "frobnicate";
    EXPECT_TRUE(ctl::covers_every_command(same));
    EXPECT_FALSE(ctl::covers_every_command(fewer));
    EXPECT_FALSE(ctl::covers_every_command(twice));
    EXPECT_FALSE(ctl::covers_every_command(more));
}

TEST(CommandRegistry, ReadRoleIsExactlyTheNonMutatingCommands) {
    EXPECT_EQ(names_where([](const ctl::Command& c) { return c.role == Role::read; }), kNonMutating);
    for (const ctl::Command& c : ctl::kCommands)
        EXPECT_EQ(c.role, kNonMutating.count(c.name) ? Role::read : Role::admin) << c.name;
}

TEST(CommandRegistry, ReadCommandsAreAcceptedInEveryHostState) {
    for (const ctl::Command& c : ctl::kCommands)
        if (c.role == Role::read) {
            EXPECT_TRUE(c.while_suspended) << c.name;
            EXPECT_TRUE(c.with_static) << c.name;
        }
}

TEST(CommandRegistry, SuspendedHostRefusesEveryStateChangeButResume) {
    // reload re-reads the files: a configuration change is no state change.
    const std::set<std::string_view> expected = {"query", "display", "params", "stats", "filter", "cluster", "ip2mac", "queryport", "buckets", "resume", "reload"};
    EXPECT_EQ(names_where([](const ctl::Command& c) { return c.while_suspended; }), expected);
}

TEST(CommandRegistry, StaticMembershipSupportsStartStopRuleStatesReloadAndTheReadCommands) {
    const std::set<std::string_view> expected = {"query", "display", "params", "stats", "filter", "cluster", "ip2mac", "queryport", "buckets", "start", "stop", "enable", "disable", "drain", "reload"};
    EXPECT_EQ(names_where([](const ctl::Command& c) { return c.with_static; }), expected);
}

TEST(CommandRegistry, ArityErrorsNameTheUsage) {
    for (const ctl::Command& c : ctl::kCommands) {
        const std::string syn = ctl::synopsis(c);
        EXPECT_EQ(syn.substr(0, c.name.size()), c.name);
        EXPECT_NE(syn.find(c.usage), std::string::npos) << syn;
        const std::vector<std::string> args = ctl::example_args(c);
        EXPECT_EQ(args.size(), static_cast<size_t>(c.min_args)) << c.name << ": example '" << c.example << "'";
        EXPECT_EQ(ctl::argument_error(c, args), "") << c.name;
        if (c.min_args > 0) {
            std::vector<std::string> few(args.begin(), args.end() - 1);
            const std::string e = ctl::argument_error(c, few);
            EXPECT_NE(e.find("needs an argument: " + syn), std::string::npos) << e;
        }
        std::vector<std::string> many = args;
        while (many.size() < static_cast<size_t>(c.max_args) + 1) many.push_back("all");
        const std::string e = ctl::argument_error(c, many);
        EXPECT_NE(e.find("too many arguments for '" + std::string(c.name) + "': " + syn), std::string::npos) << e;
        // nlbctl refuses the same, with the same text (exit 2).
        std::vector<std::string> argv{std::string(c.name)};
        argv.insert(argv.end(), many.begin(), many.end());
        const ctl::ParseOutcome o = ctl::parse_command_line(argv);
        EXPECT_FALSE(o.ok) << c.name;
        EXPECT_EQ(o.error, e);
    }
    EXPECT_EQ(ctl::argument_error(*ctl::find_command("enable"), {}),
              "'enable' needs an argument: enable <vip:port|port|all>");
}

TEST(CommandRegistry, ArgumentChecksRunAfterTheArity) {
    const ctl::Command& drain = *ctl::find_command("drain");
    EXPECT_EQ(ctl::argument_error(drain, {"10.0.0.1:443"}), "");
    EXPECT_NE(ctl::argument_error(drain, {"99999"}).find("bad target '99999'"), std::string::npos);
}

TEST(CommandRegistry, UnknownCommandIsRefused) {
    EXPECT_EQ(ctl::find_command("frobnicate"), nullptr);
    EXPECT_EQ(ctl::find_command(""), nullptr);
    const ctl::ParseOutcome o = ctl::parse_command_line({"frobnicate"});
    EXPECT_FALSE(o.ok);
    EXPECT_EQ(o.error, "unknown command 'frobnicate'");
    // Over TLS only an admin may send it (nlbd then answers "unknown command").
    EXPECT_FALSE(ctl::role_allows(Role::read, "frobnicate"));
    EXPECT_TRUE(ctl::role_allows(Role::admin, "frobnicate"));
}

TEST(CommandRegistry, RoleCheckReadsTheRegistry) {
    EXPECT_FALSE(ctl::role_allows(Role::read, "drainstop"));
    EXPECT_TRUE(ctl::role_allows(Role::read, "query"));
    for (const ctl::Command& c : ctl::kCommands) {
        EXPECT_EQ(ctl::role_allows(Role::read, c.name), c.role == Role::read) << c.name;
        EXPECT_TRUE(ctl::role_allows(Role::admin, c.name)) << c.name;
        EXPECT_FALSE(ctl::role_allows(Role::none, c.name)) << c.name;
    }
    EXPECT_EQ(ctl::parse_role(ctl::role_name(Role::read)), Role::read);
    EXPECT_EQ(ctl::parse_role(ctl::role_name(Role::admin)), Role::admin);
}

TEST(CommandRegistry, HelpListsEveryCommandWithItsRole) {
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* f = ::open_memstream(&buf, &len);
    ctl::print_usage(f);
    std::fclose(f);
    const std::string text(buf, len);
    std::free(buf);
    for (const ctl::Command& c : ctl::kCommands) {
        const std::string line_start = "  " + ctl::synopsis(c) + " ";
        const size_t at = text.find(line_start);
        ASSERT_NE(at, std::string::npos) << c.name << "\n" << text;
        const std::string line = text.substr(at, text.find('\n', at) - at);
        EXPECT_NE(line.find(std::string(" ") + ctl::role_name(c.role) + " "), std::string::npos) << line;
        EXPECT_NE(line.find(std::string(c.help)), std::string::npos) << line;
    }
}

}  // namespace
