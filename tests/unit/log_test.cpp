// Log lines (docs/logging.md): severities journald understands, the level
// filter, one line per message.

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "nlbd/log/log.hpp"

namespace lg = nlbd::log;

namespace {

// Runs fn with stderr redirected to a temporary file; returns what it wrote.
template <class Fn>
std::string captured(Fn fn) {
    char name[] = "/tmp/nlbd-log-test-XXXXXX";
    const int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    const int saved = ::dup(STDERR_FILENO);
    ::dup2(fd, STDERR_FILENO);
    fn();
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    ::close(fd);
    std::ifstream in(name);
    std::stringstream ss;
    ss << in.rdbuf();
    std::remove(name);
    return ss.str();
}

struct Restore {
    lg::Level level = lg::level();
    ~Restore() {
        lg::set_level(level);
        lg::set_journal_prefix(false);
    }
};

}  // namespace

TEST(Log, LevelsParseByName) {
    EXPECT_EQ(lg::parse_level("warning"), lg::Level::warning);
    EXPECT_EQ(lg::parse_level("debug"), lg::Level::debug);
    EXPECT_FALSE(lg::parse_level("loud"));
    EXPECT_FALSE(lg::parse_level("Warning"));
    for (lg::Level l : {lg::Level::error, lg::Level::warning, lg::Level::notice, lg::Level::info, lg::Level::debug})
        EXPECT_EQ(lg::parse_level(lg::name_of(l)), l);
}

TEST(Log, JournalLinesCarryTheSyslogPriority) {
    Restore r;
    lg::set_level(lg::Level::debug);
    lg::set_journal_prefix(true);
    const std::string out = captured([] {
        NLBD_LOG(error, "port %s failed", "wire");
        NLBD_LOG(warning, "secret unset");
        NLBD_LOG(notice, "reload: applied");
        NLBD_LOG(info, "lcores: %u", 2u);
        NLBD_LOG(debug, "tick\n");  // a trailing newline is not doubled
    });
    EXPECT_EQ(out,
              "<3>nlbd: port wire failed\n"
              "<4>nlbd: secret unset\n"
              "<5>nlbd: reload: applied\n"
              "<6>nlbd: lcores: 2\n"
              "<7>nlbd: tick\n");
}

TEST(Log, TerminalLinesNameWarningsAndErrors) {
    Restore r;
    lg::set_level(lg::Level::info);
    lg::set_journal_prefix(false);
    const std::string out = captured([] {
        NLBD_LOG(error, "a");
        NLBD_LOG(warning, "b");
        NLBD_LOG(info, "c");
    });
    EXPECT_EQ(out, "nlbd: error: a\nnlbd: warning: b\nnlbd: c\n");
}

TEST(Log, MessagesBelowTheLevelAreNotWritten) {
    Restore r;
    lg::set_journal_prefix(true);
    lg::set_level(lg::Level::warning);
    EXPECT_TRUE(lg::enabled(lg::Level::error));
    EXPECT_FALSE(lg::enabled(lg::Level::notice));
    const std::string out = captured([] {
        NLBD_LOG(info, "hidden");
        NLBD_LOG(notice, "hidden too");
        NLBD_LOG(warning, "shown");
    });
    EXPECT_EQ(out, "<4>nlbd: shown\n");
}

TEST(Log, LongMessagesAreCutToOneLine) {
    Restore r;
    lg::set_level(lg::Level::info);
    lg::set_journal_prefix(false);
    const std::string big(10000, 'x');
    const std::string out = captured([&] { NLBD_LOG(info, "%s", big.c_str()); });
    EXPECT_EQ(out.size(), 4096u);
    EXPECT_EQ(out.back(), '\n');
    EXPECT_EQ(out.find('\n'), out.size() - 1);
}
