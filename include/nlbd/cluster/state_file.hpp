#pragma once
// The host state file (SPEC §7, docs/state-file.md): what an operator set on
// this host (stopped, suspended, drained or disabled port rules) survives a
// restart, as in NLB. A small versioned text file with a SHA-256 checksum
// line; a missing file is a first start, a bad one a warning. Control plane:
// may allocate; save_state throws, load_state never throws on bad content.

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "nlbd/cluster/heartbeat.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::cluster {

inline constexpr unsigned kStateFileVersion = 1;
// load_state refuses a bigger file unread: 1024 rules with the longest names
// take under 100 KiB.
inline constexpr size_t kMaxStateFileBytes = 1 << 20;

struct PersistedState {
    // draining is saved as stopped: a drainstop that a restart interrupts
    // ends where it would have ended.
    HostState host = HostState::started;
    // By rule name (nlbd::rule_name: "10.0.0.10:443/tcp", "all:0-65535/both"),
    // the rules that are not enabled; save_state drops enabled entries, so a
    // loaded state holds only draining and disabled rules. Names are opaque
    // here: matching them to the configured rules (and what to do with a name
    // no rule has any more) is the caller's.
    std::map<std::string, RuleState> rules;
    // Whom the file was written for; load_state ignores a file written for
    // another cluster name or host id.
    std::string cluster;
    HostId host_id = kNoHost;

    bool operator==(const PersistedState&) const = default;
};

// Writes s to path atomically: a temp file in the same directory (mode 0600),
// fsync, rename over path, fsync of the directory, so a crash leaves the old
// file or the new one, never a mix. Creates missing directories (mode 0700).
// Throws std::runtime_error naming the path and the failing step (and errno's
// text); a temp file is removed on failure. Also throws for a state this
// format cannot hold (host id kNoHost, an empty rule name, a HostState or
// RuleState outside the enums).
void save_state(const std::string& path, const PersistedState& s);

struct LoadedState {
    std::optional<PersistedState> state;
    // Empty when state is set or the file does not exist (a first start).
    // Otherwise "state file PATH ignored: PROBLEM" and state is nullopt: the
    // caller logs it and uses the configured initial state.
    std::string warning;
};

// Reads path as written by save_state for (cluster, host_id). Never throws on
// what the file holds: unreadable, too big, truncated, bad checksum, bad
// syntax, an unsupported version, unknown state names, or written for another
// cluster name or host id all give state nullopt and a warning.
LoadedState load_state(const std::string& path, const std::string& cluster, HostId host_id);

}  // namespace nlbd::cluster
