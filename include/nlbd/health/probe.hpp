#pragma once
// Health probes of one port rule (SPEC §9): TCP connect, TLS handshake with
// SNI and a certificate name check, HTTP(S) GET status. Control plane only:
// probes block the calling thread (the health checker's), never a worker.
// Every probe is bounded by ProbeSpec::timeout_ms from its start (connect,
// handshake, request and response share the one deadline).
//
// The pure parts (status line parsing, expected-status matching, request
// text, the up/down hysteresis) are separate functions so that they are
// tested without a network.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nlbd/config/config.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::health {

using config::HealthKind;

// What went wrong (or not), for counters and tests; the text says it in
// words an operator understands ("connect refused", "HTTP 503 (expected 200)").
enum class Outcome : uint8_t {
    ok,
    refused,         // TCP RST to the SYN
    timeout,         // no answer before the deadline
    unreachable,     // no route, network down, address not available
    tls_failed,      // handshake failed (no TLS, protocol or alert)
    name_mismatch,   // the certificate does not cover the expected name
    untrusted,       // the certificate does not chain to the configured CA
    bad_status,      // HTTP status not among the expected ones
    bad_response,    // no HTTP status line, connection closed early
    error,           // anything else (socket errors, out of resources)
};
std::string_view name_of(Outcome o) noexcept;
using config::name_of;  // HealthKind

struct ProbeResult {
    Outcome outcome = Outcome::error;
    std::string text;
    bool ok() const noexcept { return outcome == Outcome::ok; }
};

struct ProbeSpec {
    HealthKind kind = HealthKind::tcp;
    IpAddr address;
    uint16_t port = 0;
    std::string path = "/";
    std::vector<uint16_t> expect_status{200};
    std::string sni;        // tls/https: the SNI sent (empty = none)
    std::string name;       // tls/https: the certificate must cover it (empty = not checked); HTTP Host
    std::string ca_file;    // tls/https: chain verification against it (empty = not checked)
    uint32_t timeout_ms = 500;
};

// Runs one probe; never throws.
ProbeResult run_probe(const ProbeSpec& spec) noexcept;

// --- pure logic ------------------------------------------------------------

// Status code of an HTTP/1.x status line ("HTTP/1.1 503 Service Unavailable"),
// nullopt when the line is not one. The line may end with "\r\n" or not.
std::optional<unsigned> parse_status_line(std::string_view line) noexcept;
bool status_expected(unsigned status, const std::vector<uint16_t>& expected) noexcept;
// "HTTP 200" / "HTTP 503 (expected 200)" / "HTTP 503 (expected 200, 204)".
ProbeResult classify_status(unsigned status, const std::vector<uint16_t>& expected);
// The GET request the http/https probes send (Host header, Connection: close).
std::string http_request(std::string_view path, std::string_view host);

enum class State : uint8_t { unknown, up, down };
std::string_view name_of(State s) noexcept;

// Up/down with hysteresis: `rise` consecutive successes make a rule up,
// `fall` consecutive failures make it down. It starts unknown (neither: a
// rule is not drained before its check has failed `fall` times).
class Hysteresis {
public:
    Hysteresis(uint32_t rise, uint32_t fall) noexcept
        : rise_(rise == 0 ? 1 : rise), fall_(fall == 0 ? 1 : fall) {}
    // Feeds one result; returns the new state when it changed.
    std::optional<State> feed(bool ok) noexcept;
    State state() const noexcept { return state_; }

private:
    uint32_t rise_;
    uint32_t fall_;
    uint32_t oks_ = 0;    // consecutive successes
    uint32_t fails_ = 0;  // consecutive failures
    State state_ = State::unknown;
};

// Who owns a rule's state: the operator's drain/disable wins over health.
// The health checker only drains a rule that is enabled, remembers that it
// did, and re-enables only a rule it drained itself and that is still
// draining. An operator command on the rule takes the rule back.
// Control thread only.
class DrainGate {
public:
    explicit DrainGate(size_t rules) : by_health_(rules, false) {}
    // Health went down. True: drain the rule now (it was enabled).
    bool on_down(size_t rule, bool rule_enabled);
    // Health went up. True: enable the rule now (health drained it and it is
    // still draining).
    bool on_up(size_t rule, bool rule_draining);
    // The operator set the rule's state: health no longer owns it.
    void on_operator(size_t rule);
    bool drained_by_health(size_t rule) const { return rule < by_health_.size() && by_health_[rule]; }

private:
    std::vector<bool> by_health_;
};

}  // namespace nlbd::health
