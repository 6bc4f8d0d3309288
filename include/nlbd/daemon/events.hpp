#pragma once
// The event log (docs/logging.md), in the spirit of NLB's: what happened to
// the cluster and this host, newest last, kept in memory (the last
// kCapacity events), each also written as a log line with its severity.
// `nlbctl display` shows the most recent; `--json` has them as `events`;
// Prometheus counts them by kind (nlbd_events_total{kind}).
//
// Control thread only.

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "nlbd/ctl/json.hpp"
#include "nlbd/log/log.hpp"

namespace nlbd::daemon {

#define NLBD_EVENT_KINDS(X)                                                                          \
    X(host_joined, "a host became a member of this host's view")                                     \
    X(host_left, "a member left the view: it announced stopped, or it is dead (heartbeats missed)")  \
    X(converged, "the view converged (as the default host or not), with its epoch")                  \
    X(converging, "the view changed and is converging again")                                        \
    X(mismatch, "a peer's rules, bucket count, host id or handling priority conflict; or it cleared") \
    X(host_state, "this host's state changed (started, stopped, draining, suspended)")               \
    X(command, "an operator command changed state, with who sent it")                                \
    X(rule_state, "a rule's state on this host changed (enabled, draining, disabled)")               \
    X(health, "a health check went down or up")                                                      \
    X(reload, "a reload was applied or refused, with who asked")                                     \
    X(link, "the wire link went down or up")                                                        \
    X(announce, "VIPs announced or withdrawn over BGP (routing daemon), or the daemon refused it")

enum class EventKind : uint8_t {
#define NLBD_X(name, help) name,
    NLBD_EVENT_KINDS(NLBD_X)
#undef NLBD_X
};
inline constexpr size_t kEventKinds = 0
#define NLBD_X(name, help) +1
    NLBD_EVENT_KINDS(NLBD_X)
#undef NLBD_X
    ;
std::string_view name_of(EventKind k) noexcept;
std::string_view help_of(EventKind k) noexcept;

struct Event {
    uint64_t seq = 0;          // 1, 2, ... since start
    uint64_t wall_ms = 0;      // CLOCK_REALTIME, milliseconds
    EventKind kind = EventKind::command;
    log::Level level = log::Level::info;
    std::string text;
    std::string who;           // the operator: "uid 0 pid 12", "CN=ops1 10.0.0.5:5000", "SIGHUP"; or empty
};

class EventLog {
public:
    static constexpr size_t kCapacity = 512;

    // Records the event and writes "event <kind>: <text> (by <who>)".
    void add(EventKind kind, log::Level level, std::string text, std::string who = {});
    // The last n events, oldest first.
    std::vector<Event> recent(size_t n) const;
    uint64_t count(EventKind k) const noexcept { return counts_[static_cast<size_t>(k)]; }
    uint64_t total() const noexcept { return seq_; }
    // [{"seq","time" (RFC 3339 UTC),"kind","severity","text","who"}...]
    ctl::Json to_json(size_t n) const;
    // {"<kind>": count, ...} for every kind (zeros included).
    ctl::Json counts_json() const;

private:
    std::deque<Event> events_;
    std::array<uint64_t, kEventKinds> counts_{};
    uint64_t seq_ = 0;
};

}  // namespace nlbd::daemon
