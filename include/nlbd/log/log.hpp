#pragma once
// nlbd's log lines (docs/logging.md): one line per message on stderr, each
// with a severity journald understands. Under systemd (stderr is the journal
// stream named by $JOURNAL_STREAM) every line starts with the sd-daemon
// prefix "<N>" (syslog priority: 3 error, 4 warning, 5 notice, 6 info,
// 7 debug), which journald turns into the entry's PRIORITY; elsewhere the
// line reads "nlbd: warning: ..." / "nlbd: error: ..." for those levels and
// "nlbd: ..." for the others. Messages below the configured level ([log]
// level, live on reload) are not written.
//
// Thread-safe (one write(2) per line); never on the packet path.

#include <cstdint>
#include <optional>
#include <string_view>

namespace nlbd::log {

enum class Level : uint8_t { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

const char* name_of(Level l) noexcept;
// "error", "warning", "notice", "info", "debug".
std::optional<Level> parse_level(std::string_view s) noexcept;

void set_level(Level l) noexcept;
Level level() noexcept;
inline bool enabled(Level l) noexcept { return static_cast<uint8_t>(l) <= static_cast<uint8_t>(level()); }

// Whether lines carry the "<N>" prefix: decided once from $JOURNAL_STREAM
// and stderr; tests may force it.
void set_journal_prefix(bool on) noexcept;

// Formats and writes one line (a trailing newline is added; longer than
// 4 KiB is cut). The program name ("nlbd") is set once by set_program.
void write(Level l, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));
void set_program(const char* name) noexcept;

// The text of one line as write() would emit it (without the newline);
// exposed for tests.
std::string_view format_prefix(Level l, bool journal) noexcept;

}  // namespace nlbd::log

// Call sites read as a sentence: NLBD_LOG(warning, "no control socket: %s", e.what()).
#define NLBD_LOG(level, ...) ::nlbd::log::write(::nlbd::log::Level::level, __VA_ARGS__)
