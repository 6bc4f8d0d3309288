#pragma once
// Control socket server of nlbd: a root-only UNIX stream socket that
// nlbctl talks to. Control plane: its own thread, may block, allocate, throw.
//
// Wire protocol (see docs/nlbctl.md): newline-delimited JSON, one request per
// line, one response line per request, in order, on the same connection:
//   request   {"command":"query","args":["..."]}            ("args" optional)
//   response  {"ok":true,"result":<any JSON>}
//         or  {"ok":false,"error":"message"}
// A client may send several requests on one connection.
//
// Contracts:
// - The handler runs on the server thread, one request at a time (requests
//   are serialised), so it must synchronise with the daemon's own state by
//   itself. It returns the "result" value; any exception it throws becomes
//   {"ok":false,"error":what()} and the connection stays usable.
// - Access: the socket file is created mode 0600 (umask-independent) inside a
//   directory created 0700 when missing; in addition every connection's peer
//   credentials (SO_PEERCRED) must be uid 0 or the daemon's effective uid,
//   others are refused (logged, connection closed without a response).
// - Limits: a request line longer than max_request_bytes gets an error
//   response and the connection is closed; a connection idle or stalled for
//   client_timeout_ms is closed; more than max_clients connections at once
//   are refused. One slow or hostile client never blocks the others
//   (non-blocking sockets, a poll() loop, bounded output buffers).
// - Start-up: if `path` exists and something answers on it, the constructor
//   throws (another daemon owns it); a stale socket nobody listens on is
//   removed; any other kind of file at `path` is never removed (throws).
// - stop() (and the destructor) wakes the thread, joins it, closes every
//   connection and unlinks the socket file. Idempotent.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <sys/types.h>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "nlbd/ctl/json.hpp"
#include "nlbd/ctl/poll_thread.hpp"

namespace nlbd::ctl {

// Convention: one daemon per host uses the default; several daemons on one
// machine (multi-node tests) each get their own path (nlbd --ctl-socket).
// nlbctl uses --socket, else $NLBCTL_SOCKET, else this.
inline constexpr const char* kDefaultSocketPath = "/run/nlbd/nlbd.sock";

// caller: who sent the command, for the event log: "uid 0 pid 1234" on the
// UNIX socket, "CN=ops1 127.0.0.1:41234" over mutual TLS.
using Handler = std::function<Json(const std::string& command, const std::vector<std::string>& args,
                                   const std::string& caller)>;
using LogFn = std::function<void(const std::string& line)>;

struct ServerOptions {
    size_t max_request_bytes = 64 * 1024;   // one request line, newline excluded
    size_t max_response_bytes = 16u << 20;  // larger results become an error response
    int max_clients = 16;
    int client_timeout_ms = 10000;          // idle or partial request
    // Where refusals and errors are reported; default: "nlbd: ctl: ..." on stderr.
    LogFn log;
};

class ControlServer {
public:
    // Creates the directory and socket, listens, and starts the thread.
    // Throws std::runtime_error naming the path and the failing step.
    ControlServer(std::string path, Handler handler, ServerOptions options = {});
    ~ControlServer();

    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    void stop();
    const std::string& path() const noexcept { return path_; }

    // Counters for tests and stats (monotonic).
    uint64_t requests_served() const noexcept { return served_.load(std::memory_order_relaxed); }
    uint64_t clients_refused() const noexcept { return refused_.load(std::memory_order_relaxed); }

private:
    void run();
    void log(const std::string& line) const;
    std::string handle_line(std::string_view line, const std::string& caller);   // one response, no newline

    std::string path_;
    Handler handler_;
    ServerOptions opt_;
    int listen_fd_ = -1;
    PollThread loop_;
    std::atomic<uint64_t> served_{0};
    std::atomic<uint64_t> refused_{0};
    bool stopped_ = false;
    dev_t dev_ = 0;               // identity of the socket file we created
    ino_t ino_ = 0;
};

// Builds a response line (without the newline) for a handler result / error.
std::string make_ok_response(const Json& result);
std::string make_error_response(std::string_view message);

// One request line of the control protocol, as both servers (UNIX socket and
// mutual TLS) accept it: {"command": "...", "args": ["...", ...]}.
struct Request {
    std::string command;
    std::vector<std::string> args;
};
// Parses a request line; on failure returns the error response to send.
std::optional<std::string> parse_request(std::string_view line, size_t max_bytes, Request& out);
// Runs the handler and builds the response line; handler exceptions and
// oversized results become error responses.
std::string run_handler(const Handler& handler, const Request& req, size_t max_response_bytes,
                        const std::string& caller);

}  // namespace nlbd::ctl
