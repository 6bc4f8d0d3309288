#pragma once
// Remote control of nlbd over mutual TLS: the same newline-delimited JSON
// protocol as the UNIX control socket (server.hpp), carried in TLS 1.2+
// (1.3 preferred) on a TCP port. Control plane: its own thread, may block,
// allocate, throw.
//
// Contracts:
// - Every client must present a certificate that chains to `ca_file` (the
//   client CA) and is valid now (SSL_VERIFY_PEER |
//   SSL_VERIFY_FAIL_IF_NO_PEER_CERT). The subject CN of the client
//   certificate names the operator; `allow` maps CN -> role. A CN that is not
//   in `allow` is refused after the handshake.
// - Authorisation per request: the command registry (commands.hpp) gives
//   the role each command needs (role_allows): Role::read runs the
//   read-only commands (query, display, params, stats); Role::admin runs
//   every command. A refused command gets {"ok":false,"error":...} and the
//   connection stays usable.
// - Every refusal is logged as ONE line naming the peer address and the
//   reason: "no client certificate", "unknown CA", "expired", "plain-text
//   client", "CN=x is not in remote_allow", "CN=x (read) not authorised for
//   command stop", handshake timeout, too many clients.
// - Limits: max_clients connections at once (further ones are closed at
//   once, logged); a handshake must finish within handshake_timeout_ms; an
//   idle or stalled connection is closed after client_timeout_ms; a request
//   line longer than max_request_bytes gets an error and the connection is
//   closed. Non-blocking sockets and one poll() loop: a slow client never
//   blocks the others; only the handler call itself blocks the thread.
// - The handler is the same one the UNIX socket uses; it is called on this
//   server's thread, one request at a time (it must be thread-safe against
//   the UNIX socket's thread: nlbd's ClusterControl::post is).
// - stop() (and the destructor) wakes the thread, joins it and closes every
//   connection. Idempotent.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <thread>

#include "nlbd/ctl/commands.hpp"   // Role, role_allows
#include "nlbd/ctl/json.hpp"
#include "nlbd/ctl/poll_thread.hpp"
#include "nlbd/ctl/server.hpp"

namespace nlbd::ctl {

// "addr:port", "[v6addr]:port", ":port" (any address) -> host and port.
// Returns false when the text is not one of these forms.
bool split_host_port(std::string_view text, std::string& host, uint16_t& port);

struct TlsServerOptions {
    std::string listen;       // "127.0.0.1:8443", "[::1]:8443", ":8443"; port 0 = ephemeral (tests)
    std::string cert_file;    // server certificate chain (PEM)
    std::string key_file;     // its private key (PEM)
    std::string ca_file;      // CA(s) that sign client certificates (PEM)
    std::map<std::string, Role> allow;   // client certificate CN -> role
    size_t max_request_bytes = 64 * 1024;
    size_t max_response_bytes = 16u << 20;
    int max_clients = 16;
    int client_timeout_ms = 10000;
    int handshake_timeout_ms = 5000;
    LogFn log;                // one line per event; default "nlbd: remote: ..." on stderr
};

// Loads the certificate, key and client CA of `options` as the server would
// (nlbd --check-config); throws std::runtime_error naming the file and what
// is wrong (unreadable, not PEM, the key does not match the certificate).
void check_server_files(const TlsServerOptions& options);

class TlsControlServer {
public:
    // Loads the certificate, key and CA, binds, listens and starts the
    // thread. Throws std::runtime_error naming the file or address and what
    // failed (unreadable key, key does not match the certificate, ...).
    TlsControlServer(TlsServerOptions options, Handler handler);
    ~TlsControlServer();

    TlsControlServer(const TlsControlServer&) = delete;
    TlsControlServer& operator=(const TlsControlServer&) = delete;

    void stop();
    uint16_t port() const noexcept { return port_; }   // the bound port (after port 0)

    uint64_t requests_served() const noexcept { return served_.load(std::memory_order_relaxed); }
    uint64_t clients_refused() const noexcept { return refused_.load(std::memory_order_relaxed); }
    uint64_t commands_refused() const noexcept { return denied_.load(std::memory_order_relaxed); }

private:
    void run();
    void log(const std::string& line) const;
    std::string handle_line(std::string_view line, const std::string& cn, Role role, const std::string& peer);

    TlsServerOptions opt_;
    Handler handler_;
    void* ctx_ = nullptr;        // SSL_CTX*
    int listen_fd_ = -1;
    uint16_t port_ = 0;
    PollThread loop_;
    std::atomic<uint64_t> served_{0};
    std::atomic<uint64_t> refused_{0};
    std::atomic<uint64_t> denied_{0};
    bool stopped_ = false;
};

}  // namespace nlbd::ctl
