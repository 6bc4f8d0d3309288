#pragma once
// The health checker of nlbd (SPEC §9): one control-plane thread that probes
// every port rule with a health_check, each at its interval, and keeps per
// rule an up/down state with rise/fall hysteresis, the last result in words
// and counters.
//
// Threading contract:
//  - The checker's own thread runs the probes (blocking, bounded by each
//    check's timeout) and writes the per-rule status under mu_.
//  - Every other method may be called from any thread; the control thread
//    calls take_transitions() on each poll (try_lock: never waits for a
//    probe) and applies them to membership (drain / re-enable the rule),
//    through the DrainGate it gets from gate() (control thread only).
//  - Workers never see the checker.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "nlbd/config/config.hpp"
#include "nlbd/health/probe.hpp"

namespace nlbd::health {

struct RuleCheck {
    size_t rule = 0;             // config index
    ProbeSpec probe;
    uint32_t interval_ms = 1000;
    uint32_t rise = 2;
    uint32_t fall = 3;
};

struct RuleHealth {
    size_t rule = 0;
    HealthKind kind = HealthKind::tcp;
    std::string target;          // "10.0.0.10:443"
    State state = State::unknown;
    Outcome last_outcome = Outcome::ok;
    std::string last;            // last result text; empty before the first probe
    uint64_t since_ns = 0;       // steady clock: when state last changed (or the start)
    uint64_t checks = 0;
    uint64_t ok = 0;
    uint64_t failed = 0;
    uint64_t transitions = 0;    // changes of state (unknown -> up counts)
};

struct Transition {
    size_t rule = 0;
    State state = State::unknown;  // up or down
    std::string last;
};

class Checker {
public:
    explicit Checker(std::vector<RuleCheck> checks, size_t rule_count);
    ~Checker();
    Checker(const Checker&) = delete;
    Checker& operator=(const Checker&) = delete;

    // The checks of cfg.health with their addresses resolved (vip = "all":
    // host.dedicated_ip, else 127.0.0.1); empty when no rule has one.
    static std::vector<RuleCheck> checks_from_config(const config::Config& cfg);

    void start();
    void stop();   // joins the thread; idempotent

    // Transitions since the last call (control thread). Non-blocking: returns
    // nothing if the probe thread holds the lock at this instant.
    std::vector<Transition> take_transitions();
    // Status of rule (config index), nullopt when it has no check.
    std::optional<RuleHealth> status(size_t rule) const;
    std::vector<RuleHealth> statuses() const;
    // {"rules":[{...}], "checks":N, ...} for the stats JSON (one line).
    std::string stats_json() const;

    // Runs one round of every check that is due at now_ns and returns the
    // earliest next due time (the thread's loop; public for tests).
    uint64_t run_due(uint64_t now_ns);

    DrainGate& gate() { return gate_; }

    static uint64_t now_ns();

private:
    void loop();

    struct Entry {
        RuleCheck check;
        Hysteresis hyst;
        uint64_t next_due_ns = 0;
    };
    std::vector<Entry> entries_;   // probe thread only
    DrainGate gate_;               // control thread only

    mutable std::mutex mu_;
    std::vector<RuleHealth> status_;        // aligned with entries_, under mu_
    std::vector<Transition> transitions_;   // under mu_
    std::condition_variable cv_;
    bool stop_ = false;                     // under mu_
    std::thread thread_;
};

std::string health_json(const RuleHealth& h, uint64_t now_ns);

}  // namespace nlbd::health
