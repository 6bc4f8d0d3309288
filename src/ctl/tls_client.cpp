// Client side of remote control over mutual TLS (see tls_client.hpp).

#include "nlbd/ctl/tls_client.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "nlbd/ctl/tls_server.hpp"

namespace nlbd::ctl {

namespace {

constexpr size_t kMaxResponseBytes = 64u << 20;

struct CtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { if (fd_ >= 0) ::close(fd_); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    void reset(int fd) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }
    int get() const { return fd_; }
    int release() {
        int f = fd_;
        fd_ = -1;
        return f;
    }
private:
    int fd_;
};

std::string ssl_errors() {
    std::string s;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!s.empty()) s += "; ";
        s += buf;
    }
    return s;
}

// What the server's alert (or our own verification) means, in words.
std::string explain_tls_failure(SSL* ssl, const std::string& where) {
    const unsigned long e = ERR_peek_error();
    const int reason = ERR_GET_REASON(e);
    std::string hint;
    if (long v = SSL_get_verify_result(ssl); v != X509_V_OK) {
        std::string what = X509_verify_cert_error_string(v);
        switch (v) {
        case X509_V_ERR_HOSTNAME_MISMATCH:
            hint = "the server's certificate does not cover --server-name";
            break;
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            hint = "the server's certificate is not issued by --ca";
            break;
        case X509_V_ERR_CERT_HAS_EXPIRED:
            hint = "the server's certificate has expired";
            break;
        default:
            hint = "the server's certificate is not trusted";
        }
        ERR_clear_error();
        return where + ": " + hint + " (" + what + ")";
    }
    switch (reason) {
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED: hint = "the server refused our certificate: expired"; break;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA: hint = "the server refused our certificate: unknown CA"; break;
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        hint = "the server requires a client certificate (--cert/--key)";
        break;
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
        hint = "the server refused our certificate";
        break;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
        hint = "the server does not speak TLS on this port";
        break;
    default: break;
    }
    std::string detail = ssl_errors();
    if (hint.empty()) hint = detail.empty() ? std::string("TLS failed (connection closed)") : "TLS failed";
    return where + ": " + hint + (detail.empty() ? "" : " (" + detail + ")");
}

}  // namespace

Json call_remote(const RemoteTarget& t, const std::string& command, const std::vector<std::string>& args,
                 int timeout_ms) {
    const std::string where = "remote " + t.address;
    std::string host;
    uint16_t port = 0;
    if (!split_host_port(t.address, host, port) || host.empty() || port == 0)
        throw ConnectError(where + ": expected host:port or [v6addr]:port");
    if (t.cert_file.empty() || t.key_file.empty() || t.ca_file.empty())
        throw ConnectError(where + ": needs --cert, --key and --ca");

    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    auto left_ms = [&]() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    };

    ERR_clear_error();
    std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) throw ConnectError(where + ": SSL_CTX_new: " + ssl_errors());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), t.cert_file.c_str()) != 1)
        throw ConnectError(where + ": cannot load the client certificate " + t.cert_file + ": " + ssl_errors());
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), t.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        throw ConnectError(where + ": cannot load the client key " + t.key_file + ": " + ssl_errors());
    if (SSL_CTX_check_private_key(ctx.get()) != 1)
        throw ConnectError(where + ": the key " + t.key_file + " does not match " + t.cert_file);
    if (SSL_CTX_load_verify_locations(ctx.get(), t.ca_file.c_str(), nullptr) != 1)
        throw ConnectError(where + ": cannot load the CA " + t.ca_file + ": " + ssl_errors());
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);

    // TCP connect, non-blocking with the deadline, trying every address.
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port_text = std::to_string(port);
    if (int gai = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res); gai != 0)
        throw ConnectError(where + ": cannot resolve '" + host + "': " + gai_strerror(gai));
    Fd fd;
    std::string last_err = "no address";
    for (addrinfo* a = res; a && fd.get() < 0; a = a->ai_next) {
        int s = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (s < 0) {
            last_err = std::strerror(errno);
            continue;
        }
        Fd guard(s);
        int rc = ::connect(s, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{s, POLLOUT, 0};
            long left = left_ms();
            int n = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
            if (n <= 0) {
                last_err = "no answer within " + std::to_string(timeout_ms) + " ms";
                continue;
            }
            int soerr = 0;
            socklen_t len = sizeof soerr;
            ::getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len);
            if (soerr != 0) {
                last_err = std::strerror(soerr);
                continue;
            }
        } else if (rc != 0) {
            last_err = std::strerror(errno);
            continue;
        }
        fd.reset(guard.release());
        int one = 1;
        ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ::freeaddrinfo(res);
    if (fd.get() < 0) throw ConnectError("cannot connect to " + where + ": " + last_err);

    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
    if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1) throw ConnectError(where + ": SSL_new: " + ssl_errors());
    if (!t.server_name.empty()) {
        SSL_set_tlsext_host_name(ssl.get(), t.server_name.c_str());
        SSL_set_hostflags(ssl.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(ssl.get(), t.server_name.c_str()) != 1)
            throw ConnectError(where + ": bad --server-name '" + t.server_name + "'");
    }

    // Runs one SSL operation to completion under the deadline.
    auto drive = [&](auto op, const char* what) -> int {
        for (;;) {
            ERR_clear_error();
            int rc = op();
            if (rc > 0) return rc;
            int e = SSL_get_error(ssl.get(), rc);
            short ev;
            if (e == SSL_ERROR_WANT_READ) ev = POLLIN;
            else if (e == SSL_ERROR_WANT_WRITE) ev = POLLOUT;
            else if (e == SSL_ERROR_ZERO_RETURN) return 0;
            else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
                throw ConnectError(where + ": the server closed the connection during " + what +
                                   " (refused? the server's log names the reason)");
            else
                throw ConnectError(explain_tls_failure(ssl.get(), where));
            long left = left_ms();
            if (left <= 0)
                throw std::runtime_error(where + ": no answer within " + std::to_string(timeout_ms) + " ms");
            pollfd p{fd.get(), ev, 0};
            int n = ::poll(&p, 1, static_cast<int>(left));
            if (n < 0 && errno != EINTR) throw std::runtime_error(where + ": poll: " + std::strerror(errno));
        }
    };

    drive([&] { return SSL_connect(ssl.get()); }, "the TLS handshake");

    Json req = Json::object();
    req["command"] = command;
    Json a = Json::array();
    for (const auto& s : args) a.push_back(s);
    req["args"] = std::move(a);
    std::string line = req.dump();
    line += '\n';
    size_t sent = 0;
    while (sent < line.size()) {
        int w = drive([&] { return SSL_write(ssl.get(), line.data() + sent, static_cast<int>(line.size() - sent)); },
                      "the request");
        if (w <= 0) throw ConnectError(where + ": the server closed the connection before the request was sent");
        sent += static_cast<size_t>(w);
    }

    std::string in;
    for (;;) {
        char buf[16384];
        int r = drive([&] { return SSL_read(ssl.get(), buf, sizeof buf); }, "the response");
        if (r <= 0) {
            if (in.empty())
                throw ConnectError(where + ": the server closed the connection without answering (refused?)");
            throw std::runtime_error(where + ": connection closed mid-response");
        }
        in.append(buf, static_cast<size_t>(r));
        if (size_t nl = in.find('\n'); nl != std::string::npos) {
            in.resize(nl);
            break;
        }
        if (in.size() > kMaxResponseBytes)
            throw std::runtime_error(where + ": response larger than " + std::to_string(kMaxResponseBytes) + " bytes");
    }
    ERR_clear_error();
    SSL_shutdown(ssl.get());   // close_notify, best effort
    ERR_clear_error();

    ParseLimits lim;
    lim.max_bytes = kMaxResponseBytes;
    lim.max_depth = 128;
    Json resp = Json::parse(in, lim);
    if (!resp.is_object() || !resp.find("ok") || !resp.find("ok")->is_bool())
        throw std::runtime_error(where + ": malformed response (no \"ok\")");
    return resp;
}

}  // namespace nlbd::ctl
