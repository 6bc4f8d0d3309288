#include "nlbd/log/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace nlbd::log {
namespace {

std::atomic<uint8_t> g_level{static_cast<uint8_t>(Level::info)};
// -1: not decided yet; 0/1: the journal prefix off/on.
std::atomic<int> g_journal{-1};
std::atomic<const char*> g_program{"nlbd"};

// $JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected to
// stdout/stderr; it is ours only when stderr still is that stream.
bool stderr_is_journal() noexcept {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (js == nullptr) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st;
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

bool journal() noexcept {
    int j = g_journal.load(std::memory_order_relaxed);
    if (j < 0) {
        j = stderr_is_journal() ? 1 : 0;
        g_journal.store(j, std::memory_order_relaxed);
    }
    return j == 1;
}

}  // namespace

const char* name_of(Level l) noexcept {
    switch (l) {
    case Level::error: return "error";
    case Level::warning: return "warning";
    case Level::notice: return "notice";
    case Level::info: return "info";
    case Level::debug: return "debug";
    }
    return "info";
}

std::optional<Level> parse_level(std::string_view s) noexcept {
    for (Level l : {Level::error, Level::warning, Level::notice, Level::info, Level::debug})
        if (s == name_of(l)) return l;
    return std::nullopt;
}

void set_level(Level l) noexcept { g_level.store(static_cast<uint8_t>(l), std::memory_order_relaxed); }
Level level() noexcept { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }
void set_journal_prefix(bool on) noexcept { g_journal.store(on ? 1 : 0, std::memory_order_relaxed); }
void set_program(const char* name) noexcept { g_program.store(name, std::memory_order_relaxed); }

std::string_view format_prefix(Level l, bool journal_stream) noexcept {
    static constexpr const char* kJournal[8] = {"<0>", "<1>", "<2>", "<3>", "<4>", "<5>", "<6>", "<7>"};
    if (journal_stream) return kJournal[static_cast<uint8_t>(l) & 7];
    return "";
}

void write(Level l, const char* fmt, ...) noexcept {
    if (!enabled(l)) return;
    char line[4096];
    const bool j = journal();
    int n = std::snprintf(line, sizeof line, "%s%s: %s", format_prefix(l, j).data(),
                          g_program.load(std::memory_order_relaxed),
                          !j && l == Level::error     ? "error: "
                          : !j && l == Level::warning ? "warning: "
                                                      : "");
    if (n < 0) return;
    va_list ap;
    va_start(ap, fmt);
    const int m = std::vsnprintf(line + n, sizeof line - static_cast<size_t>(n), fmt, ap);
    va_end(ap);
    if (m < 0) return;
    size_t len = std::min(sizeof line - 1, static_cast<size_t>(n) + static_cast<size_t>(m));
    while (len > 0 && line[len - 1] == '\n') --len;
    line[len++] = '\n';
    // One write(2): lines from several threads never interleave.
    const char* p = line;
    while (len > 0) {
        const ssize_t w = ::write(STDERR_FILENO, p, len);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return;
        }
        p += w;
        len -= static_cast<size_t>(w);
    }
}

}  // namespace nlbd::log
