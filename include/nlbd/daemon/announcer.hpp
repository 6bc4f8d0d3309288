#pragma once
// Drives the routing daemon that announces the cluster's VIPs (SPEC §11,
// docs/scale-out.md): writes the BIRD include file (temporary file, then
// rename: BIRD never reads half a file) and runs `birdc -s SOCKET configure`
// as a child process killed after command_timeout_ms. A failure (birdc
// missing, BIRD down, a refused configuration, a timeout) is reported and
// retried every retry_interval_ms; nothing here throws into the caller.
//
// Threading contract: the work runs on the announcer's own thread, never on
// an lcore: the packet path is untouched and the control tick (which may
// share the worker's lcore) only swaps a vector under a mutex. want(),
// settings(), state() and take_results() may be called from any thread.
// The destructor applies the last wanted set once more if it is not
// applied yet (nlbd's shutdown withdraws), bounded by command_timeout_ms.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nlbd/core/types.hpp"

namespace nlbd::daemon {

struct AnnouncerSettings {
    std::string include_file;
    std::string control_socket;
    std::string birdc;
    IpAddr next_hop;
    uint32_t command_timeout_ms = 5000;
    uint32_t retry_interval_ms = 2000;
    std::string origin;  // "cluster NAME host ID", for the file's header
};

// One apply, as reported to the control thread (an event each).
struct AnnounceResult {
    bool ok = false;
    std::vector<IpAddr> vips;  // what the file now holds
    uint32_t took_ms = 0;      // write + birdc
    std::string detail;        // birdc's answer or the failure
};

struct AnnouncerState {
    std::vector<IpAddr> wanted;
    std::vector<IpAddr> applied;  // what BIRD last accepted
    bool in_sync = false;         // applied == wanted and the last apply succeeded
    uint64_t wanted_generation = 0;
    uint64_t applied_generation = 0;  // generation of the last successful apply
    uint64_t applies = 0;
    uint64_t failures = 0;
    std::string last_error;
    uint32_t last_took_ms = 0;
};

class Announcer {
public:
    explicit Announcer(AnnouncerSettings s);
    ~Announcer();
    Announcer(const Announcer&) = delete;
    Announcer& operator=(const Announcer&) = delete;

    // The VIPs to announce now; applied at once when they differ from the
    // last wanted set (or a new settings() changed the file's content).
    // Returns the generation that will carry them.
    uint64_t want(std::vector<IpAddr> vips);
    void settings(AnnouncerSettings s);
    AnnouncerState state() const;
    std::vector<AnnounceResult> take_results();

private:
    void run();
    AnnounceResult apply(const std::vector<IpAddr>& vips, const AnnouncerSettings& s);

    mutable std::mutex mu_;
    std::condition_variable cv_;
    AnnouncerSettings settings_;
    AnnouncerState state_;
    std::vector<AnnounceResult> results_;
    bool stop_ = false;
    std::thread thread_;
};

// Runs argv with stdout and stderr captured (at most 4 KiB), killed after
// timeout_ms. Returns the exit status (-1: could not start or killed) and
// the output in `out` (a reason when it could not start or timed out).
int run_bounded(const std::vector<std::string>& argv, uint32_t timeout_ms, std::string& out);

}  // namespace nlbd::daemon
