// Health probes (SPEC §9). Non-blocking sockets and poll() against one
// deadline per probe; OpenSSL for TLS. Control plane: may allocate, never
// throws out of run_probe().

#include "nlbd/health/probe.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>

namespace nlbd::health {

std::string_view name_of(Outcome o) noexcept {
    switch (o) {
    case Outcome::ok: return "ok";
    case Outcome::refused: return "refused";
    case Outcome::timeout: return "timeout";
    case Outcome::unreachable: return "unreachable";
    case Outcome::tls_failed: return "tls_failed";
    case Outcome::name_mismatch: return "name_mismatch";
    case Outcome::untrusted: return "untrusted";
    case Outcome::bad_status: return "bad_status";
    case Outcome::bad_response: return "bad_response";
    case Outcome::error: return "error";
    }
    return "?";
}

std::string_view name_of(State s) noexcept {
    switch (s) {
    case State::unknown: return "unknown";
    case State::up: return "up";
    case State::down: return "down";
    }
    return "?";
}

// --- pure logic --------------------------------------------------------------

std::optional<unsigned> parse_status_line(std::string_view line) noexcept {
    // HTTP-version SP status-code SP [reason-phrase]
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1.") return std::nullopt;
    if (line[7] < '0' || line[7] > '9' || line[8] != ' ') return std::nullopt;
    const std::string_view code = line.substr(9, 3);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(code.data(), code.data() + 3, v);
    if (ec != std::errc() || p != code.data() + 3 || v < 100 || v > 599) return std::nullopt;
    if (line.size() > 12 && line[12] != ' ' && line[12] != '\r' && line[12] != '\n')
        return std::nullopt;
    return v;
}

bool status_expected(unsigned status, const std::vector<uint16_t>& expected) noexcept {
    for (uint16_t e : expected)
        if (e == status) return true;
    return false;
}

ProbeResult classify_status(unsigned status, const std::vector<uint16_t>& expected) {
    ProbeResult r;
    r.text = "HTTP " + std::to_string(status);
    if (status_expected(status, expected)) {
        r.outcome = Outcome::ok;
        return r;
    }
    r.outcome = Outcome::bad_status;
    r.text += " (expected ";
    for (size_t i = 0; i < expected.size(); ++i) r.text += (i ? ", " : "") + std::to_string(expected[i]);
    r.text += ")";
    return r;
}

std::string http_request(std::string_view path, std::string_view host) {
    std::string r = "GET ";
    r += path.empty() ? std::string_view("/") : path;
    r += " HTTP/1.1\r\nHost: ";
    r += host;
    r += "\r\nUser-Agent: nlbd-health/1\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    return r;
}

std::optional<State> Hysteresis::feed(bool ok) noexcept {
    if (ok) {
        fails_ = 0;
        if (oks_ < rise_) ++oks_;
        if (state_ != State::up && oks_ >= rise_) return state_ = State::up;
    } else {
        oks_ = 0;
        if (fails_ < fall_) ++fails_;
        if (state_ != State::down && fails_ >= fall_) return state_ = State::down;
    }
    return std::nullopt;
}

bool DrainGate::on_down(size_t rule, bool rule_enabled) {
    if (rule >= by_health_.size() || !rule_enabled) return false;
    by_health_[rule] = true;
    return true;
}

bool DrainGate::on_up(size_t rule, bool rule_draining) {
    if (rule >= by_health_.size() || !by_health_[rule]) return false;
    by_health_[rule] = false;
    return rule_draining;
}

void DrainGate::on_operator(size_t rule) {
    if (rule < by_health_.size()) by_health_[rule] = false;
}

// --- probes ----------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

int ms_left(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(left);
}

// Waits for events on fd until the deadline: 1 ready, 0 timeout, -1 error.
int wait_fd(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, ms_left(deadline));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        return n == 0 ? 0 : 1;
    }
}

ProbeResult fail(Outcome o, std::string text) { return ProbeResult{o, std::move(text)}; }

std::string errno_text(int e) {
    switch (e) {
    case ECONNREFUSED: return "connect refused";
    case ENETUNREACH: return "network unreachable";
    case EHOSTUNREACH: return "host unreachable";
    case EADDRNOTAVAIL: return "address not available";
    case ECONNRESET: return "connection reset";
    default: return std::strerror(e);
    }
}

Outcome errno_outcome(int e) {
    switch (e) {
    case ECONNREFUSED: return Outcome::refused;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EADDRNOTAVAIL: return Outcome::unreachable;
    case ETIMEDOUT: return Outcome::timeout;
    default: return Outcome::error;
    }
}

// Non-blocking connect bounded by the deadline. Returns the socket (>= 0) or
// fills r.
int connect_to(const ProbeSpec& s, Clock::time_point deadline, ProbeResult& r) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (s.address.family == Family::v4) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(s.port);
        std::memcpy(&a->sin_addr, s.address.b.data(), 4);
        len = sizeof(sockaddr_in);
    } else if (s.address.family == Family::v6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(s.port);
        std::memcpy(&a->sin6_addr, s.address.b.data(), 16);
        len = sizeof(sockaddr_in6);
    } else {
        r = fail(Outcome::error, "no address to check");
        return -1;
    }
    const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = fail(Outcome::error, std::string("socket: ") + std::strerror(errno));
        return -1;
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        if (errno != EINPROGRESS) {
            const int e = errno;
            ::close(fd);
            r = fail(errno_outcome(e), errno_text(e));
            return -1;
        }
        const int w = wait_fd(fd, POLLOUT, deadline);
        if (w <= 0) {
            ::close(fd);
            r = fail(w == 0 ? Outcome::timeout : Outcome::error,
                     w == 0 ? "connect timeout after " + std::to_string(s.timeout_ms) + " ms"
                            : std::string("poll: ") + std::strerror(errno));
            return -1;
        }
        int err = 0;
        socklen_t el = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0) err = errno;
        if (err != 0) {
            ::close(fd);
            r = fail(errno_outcome(err), errno_text(err));
            return -1;
        }
    }
    return fd;
}

// Reads the first line of an HTTP response from read_some (returns bytes,
// 0 = closed, -1 = error or timeout with `timed_out`), bounded to 8 KiB.
template <class ReadSome>
ProbeResult read_status(ReadSome read_some, const ProbeSpec& s) {
    std::string buf;
    char chunk[2048];
    while (buf.size() < 8192) {
        bool timed_out = false;
        const long n = read_some(chunk, sizeof chunk, timed_out);
        if (n > 0) {
            buf.append(chunk, static_cast<size_t>(n));
            const size_t eol = buf.find('\n');
            if (eol == std::string::npos) continue;
            const auto st = parse_status_line(std::string_view(buf).substr(0, eol + 1));
            if (!st) return fail(Outcome::bad_response, "no HTTP status line in the response");
            return classify_status(*st, s.expect_status);
        }
        if (timed_out)
            return fail(Outcome::timeout, "no HTTP response within " + std::to_string(s.timeout_ms) + " ms");
        return fail(Outcome::bad_response,
                    buf.empty() ? "connection closed without an HTTP response"
                                : "no HTTP status line in the response");
    }
    return fail(Outcome::bad_response, "no HTTP status line in the first 8 KiB");
}

ProbeResult probe_http_plain(int fd, const ProbeSpec& s, Clock::time_point deadline) {
    const std::string req = http_request(s.path, s.name.empty() ? s.address.to_string() : s.name);
    size_t off = 0;
    while (off < req.size()) {
        const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline) <= 0)
                return fail(Outcome::timeout, "request not sent within " + std::to_string(s.timeout_ms) + " ms");
            continue;
        }
        return fail(errno_outcome(errno), "send: " + errno_text(errno));
    }
    return read_status(
        [&](char* b, size_t len, bool& timed_out) -> long {
            for (;;) {
                const ssize_t n = ::recv(fd, b, len, 0);
                if (n >= 0) return n;
                if (errno == EINTR) continue;
                if (errno != EAGAIN) return -1;
                const int w = wait_fd(fd, POLLIN, deadline);
                if (w == 0) timed_out = true;
                if (w <= 0) return -1;
            }
        },
        s);
}

struct SslCtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* c) const { SSL_free(c); }
};

std::string ssl_error_text() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "connection closed";
    char b[256];
    ERR_error_string_n(e, b, sizeof b);
    // "error:0A000102:SSL routines::unsupported protocol": keep the reason.
    std::string t = b;
    const size_t c = t.rfind(':');
    return c == std::string::npos ? t : t.substr(c + 1);
}

// Drives a non-blocking SSL operation until done, the deadline or an error.
// op returns the OpenSSL return value. 1 done, 0 timeout, -1 failed, -2 closed.
template <class Op>
int ssl_drive(SSL* ssl, int fd, Clock::time_point deadline, Op op, int* ret) {
    for (;;) {
        ERR_clear_error();
        const int n = op();
        if (n > 0) {
            *ret = n;
            return 1;
        }
        const int e = SSL_get_error(ssl, n);
        short ev = 0;
        if (e == SSL_ERROR_WANT_READ) ev = POLLIN;
        else if (e == SSL_ERROR_WANT_WRITE) ev = POLLOUT;
        else if (e == SSL_ERROR_ZERO_RETURN) return -2;
        else return -1;
        const int w = wait_fd(fd, ev, deadline);
        if (w <= 0) return w == 0 ? 0 : -1;
    }
}

ProbeResult probe_tls(int fd, const ProbeSpec& s, Clock::time_point deadline) {
    std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) return fail(Outcome::error, "TLS: " + ssl_error_text());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    if (!s.ca_file.empty() && SSL_CTX_load_verify_locations(ctx.get(), s.ca_file.c_str(), nullptr) != 1)
        return fail(Outcome::error, "cannot read the CA file " + s.ca_file + ": " + ssl_error_text());
    // VERIFY_NONE: the handshake completes and the chain result is read
    // afterwards, so the failure can be told in words (and not as an alert).
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) return fail(Outcome::error, "TLS: " + ssl_error_text());
    if (!s.sni.empty()) SSL_set_tlsext_host_name(ssl.get(), s.sni.c_str());

    int ret = 0;
    const int h = ssl_drive(ssl.get(), fd, deadline, [&] { return SSL_connect(ssl.get()); }, &ret);
    if (h == 0)
        return fail(Outcome::timeout, "TLS handshake timeout after " + std::to_string(s.timeout_ms) + " ms");
    if (h < 0) return fail(Outcome::tls_failed, "TLS handshake failed: " + ssl_error_text());

    X509* cert = SSL_get0_peer_certificate(ssl.get());
    if (cert == nullptr) return fail(Outcome::tls_failed, "TLS: the server presented no certificate");
    if (!s.ca_file.empty()) {
        const long v = SSL_get_verify_result(ssl.get());
        if (v != X509_V_OK)
            return fail(Outcome::untrusted, std::string("certificate does not chain to ") + s.ca_file + ": " +
                                                X509_verify_cert_error_string(v));
    }
    if (!s.name.empty() && X509_check_host(cert, s.name.data(), s.name.size(), 0, nullptr) != 1)
        return fail(Outcome::name_mismatch, "certificate does not cover " + s.name);

    if (s.kind == HealthKind::tls) {
        ProbeResult r{Outcome::ok, "TLS ok"};
        if (!s.name.empty()) r.text += ", certificate covers " + s.name;
        return r;
    }
    // https
    const std::string req = http_request(s.path, s.name.empty() ? s.address.to_string() : s.name);
    const int w = ssl_drive(ssl.get(), fd, deadline,
                            [&] { return SSL_write(ssl.get(), req.data(), static_cast<int>(req.size())); }, &ret);
    if (w == 0) return fail(Outcome::timeout, "request not sent within " + std::to_string(s.timeout_ms) + " ms");
    if (w < 0) return fail(Outcome::bad_response, "TLS write failed: " + ssl_error_text());
    return read_status(
        [&](char* b, size_t len, bool& timed_out) -> long {
            int got = 0;
            const int r = ssl_drive(ssl.get(), fd, deadline,
                                    [&] { return SSL_read(ssl.get(), b, static_cast<int>(len)); }, &got);
            if (r == 1) return got;
            if (r == -2) return 0;
            if (r == 0) timed_out = true;
            return -1;
        },
        s);
}

}  // namespace

namespace {

// SIGPIPE blocked on this thread for the duration of a probe: a peer that
// closes while OpenSSL writes (close_notify, the request) must give EPIPE,
// not kill nlbd. A SIGPIPE the probe raised is discarded before unblocking.
class NoSigpipe {
public:
    NoSigpipe() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    }
    ~NoSigpipe() {
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe_, nullptr, &zero) > 0) {
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }

private:
    sigset_t pipe_;
    sigset_t old_;
};

}  // namespace

ProbeResult run_probe(const ProbeSpec& s) noexcept {
    const NoSigpipe no_sigpipe;
    try {
        const auto deadline = Clock::now() + std::chrono::milliseconds(s.timeout_ms);
        ProbeResult r;
        const int raw = connect_to(s, deadline, r);
        if (raw < 0) return r;
        Fd fd(raw);
        switch (s.kind) {
        case HealthKind::none:
        case HealthKind::tcp: return ProbeResult{Outcome::ok, "TCP connect ok"};
        case HealthKind::http: return probe_http_plain(fd.get(), s, deadline);
        case HealthKind::tls:
        case HealthKind::https: return probe_tls(fd.get(), s, deadline);
        }
        return fail(Outcome::error, "unknown check");
    } catch (const std::exception& e) {
        return fail(Outcome::error, e.what());
    } catch (...) {
        return fail(Outcome::error, "probe failed");
    }
}

}  // namespace nlbd::health
