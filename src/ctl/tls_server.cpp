// Remote control over mutual TLS (see tls_server.hpp for the contracts).
//
// One thread, one poll() loop over non-blocking sockets. Each connection goes
// through: handshake (with a deadline) -> open (request lines in, response
// lines out) -> closed; a refused handshake goes through "linger" first: the
// alert has been written, our side is shut down for writing, and what the
// peer still sends is read and discarded for a short while, so that the
// peer reads the alert instead of a connection reset.

#include "nlbd/ctl/tls_server.hpp"
#include "nlbd/log/log.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace nlbd::ctl {

namespace {

constexpr int kLingerMs = 1000;   // after a refused handshake
constexpr uint8_t kTlsHandshakeRecord = 0x16;

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Drains OpenSSL's error queue of this thread into one line.
std::string ssl_errors() {
    std::string s;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!s.empty()) s += "; ";
        s += buf;
    }
    return s.empty() ? std::string("no OpenSSL error recorded") : s;
}

std::string peer_text(const sockaddr_storage& ss) {
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (ss.ss_family == AF_INET) {
        const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        return std::string(host) + ":" + std::to_string(port);
    }
    if (ss.ss_family == AF_INET6) {
        const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        // v4-mapped addresses read better as plain IPv4.
        std::string h = host;
        if (h.rfind("::ffff:", 0) == 0 && h.find('.') != std::string::npos) return h.substr(7) + ":" + std::to_string(port);
        return "[" + h + "]:" + std::to_string(port);
    }
    return "?";
}

// Subject CN of a certificate ("" when it has none).
std::string common_name(X509* cert) {
    if (!cert) return "";
    X509_NAME* name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0) return "";
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len < 0) return "";
    std::string cn(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
    OPENSSL_free(utf8);
    return cn;
}

std::string subject_line(X509* cert) {
    if (!cert) return "";
    char buf[512];
    X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
    return buf;
}

// The first verification failure of a handshake, recorded by the callback
// (the server learns the presented certificate's subject only here).
struct VerifyNote {
    int error = X509_V_OK;
    int depth = 0;
    std::string subject;   // of the client's own certificate
    std::string issuer;
};

int g_note_index = -1;   // SSL ex_data index of VerifyNote*, set once per process

int verify_cb(int preverify_ok, X509_STORE_CTX* store) {
    if (preverify_ok) return 1;
    SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* note = ssl ? static_cast<VerifyNote*>(SSL_get_ex_data(ssl, g_note_index)) : nullptr;
    if (note && note->error == X509_V_OK) {
        note->error = X509_STORE_CTX_get_error(store);
        note->depth = X509_STORE_CTX_get_error_depth(store);
        X509* leaf = nullptr;
        if (STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(store); chain && sk_X509_num(chain) > 0)
            leaf = sk_X509_value(chain, 0);
        if (!leaf) leaf = X509_STORE_CTX_get_current_cert(store);
        note->subject = subject_line(leaf);
        if (leaf) {
            char buf[512];
            X509_NAME_oneline(X509_get_issuer_name(leaf), buf, sizeof buf);
            note->issuer = buf;
        }
    }
    return 0;
}

// Reason for a refused client certificate, in the admin's words.
std::string verify_reason(int err) {
    switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED: return "expired client certificate";
    case X509_V_ERR_CERT_NOT_YET_VALID: return "client certificate not yet valid";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        return "unknown CA (client certificate not issued by remote_ca)";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE: return "client certificate signature does not verify";
    case X509_V_ERR_INVALID_PURPOSE: return "client certificate not for client authentication (extendedKeyUsage)";
    case X509_V_ERR_CERT_REVOKED: return "client certificate revoked";
    default: return std::string("client certificate rejected: ") + X509_verify_cert_error_string(err);
    }
}

enum class State : uint8_t { handshake, open, linger };

struct Client {
    int fd = -1;
    SSL* ssl = nullptr;
    std::string peer;
    State state = State::handshake;
    bool checked_plain = false;   // first byte seen to be a TLS record
    bool want_write = false;      // the last SSL call needs POLLOUT
    bool read_closed = false;
    bool close_after_flush = false;
    std::string cn;
    Role role = Role::none;
    std::string in;
    std::string out;
    int64_t deadline_ms = 0;      // handshake / linger deadline
    int64_t last_ms = 0;          // last progress (open)
    VerifyNote note;

    ~Client() {
        if (ssl) SSL_free(ssl);
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

bool split_host_port(std::string_view text, std::string& host, uint16_t& port) {
    size_t colon;
    if (!text.empty() && text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
        host = std::string(text.substr(1, close - 1));
        if (host.empty()) return false;
        colon = close + 1;
    } else {
        colon = text.rfind(':');
        if (colon == std::string_view::npos) return false;
        host = std::string(text.substr(0, colon));
        if (host.find(':') != std::string::npos) return false;   // unbracketed IPv6
    }
    std::string_view p = text.substr(colon + 1);
    unsigned v = 0;
    auto r = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || r.ec != std::errc() || r.ptr != p.data() + p.size() || v > 65535) return false;
    port = static_cast<uint16_t>(v);
    return true;
}

namespace {

// The server's TLS context: certificate, key, client CA, verification.
// Throws std::runtime_error naming the file and OpenSSL's reason.
SSL_CTX* make_server_ctx(const TlsServerOptions& opt, const std::string& where) {
    if (g_note_index < 0) g_note_index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    ERR_clear_error();
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) throw std::runtime_error(where + ": SSL_CTX_new: " + ssl_errors());
    auto fail = [&](const std::string& what) {
        std::string msg = where + ": " + what + ": " + ssl_errors();
        SSL_CTX_free(ctx);
        throw std::runtime_error(msg);
    };
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // No resumption: every connection presents and verifies its certificate.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, opt.cert_file.c_str()) != 1)
        fail("cannot load the server certificate " + opt.cert_file);
    if (SSL_CTX_use_PrivateKey_file(ctx, opt.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
            fail("the key " + opt.key_file + " does not match the certificate " + opt.cert_file);
        fail("cannot load the server key " + opt.key_file);
    }
    if (SSL_CTX_check_private_key(ctx) != 1)
        fail("the key " + opt.key_file + " does not match the certificate " + opt.cert_file);
    if (SSL_CTX_load_verify_locations(ctx, opt.ca_file.c_str(), nullptr) != 1)
        fail("cannot load the client CA " + opt.ca_file);
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(opt.ca_file.c_str()))
        SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    SSL_CTX_set_verify_depth(ctx, 8);

    return ctx;
}

}  // namespace

void check_server_files(const TlsServerOptions& options) {
    SSL_CTX_free(make_server_ctx(options, "remote control"));
}

TlsControlServer::TlsControlServer(TlsServerOptions options, Handler handler)
    : opt_(std::move(options)), handler_(std::move(handler)) {
    const std::string where = "remote control " + opt_.listen;
    if (!handler_) throw std::runtime_error(where + ": no handler");
    std::string host;
    uint16_t port = 0;
    if (!split_host_port(opt_.listen, host, port))
        throw std::runtime_error(where + ": expected addr:port, [v6addr]:port or :port");
    if (opt_.cert_file.empty() || opt_.key_file.empty() || opt_.ca_file.empty())
        throw std::runtime_error(where + ": needs a server certificate, its key and the client CA");

    SSL_CTX* ctx = make_server_ctx(opt_, where);
    ctx_ = ctx;

    // Listening socket.
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port_text = std::to_string(port);
    int gai = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port_text.c_str(), &hints, &res);
    if (gai != 0 || !res) {
        SSL_CTX_free(ctx);
        ctx_ = nullptr;
        throw std::runtime_error(where + ": cannot resolve '" + host + "': " + gai_strerror(gai));
    }
    // Prefer IPv6 (dual stack) for the wildcard, else the first address.
    const addrinfo* pick = res;
    if (host.empty())
        for (const addrinfo* a = res; a; a = a->ai_next)
            if (a->ai_family == AF_INET6) pick = a;
    std::string err;
    int fd = ::socket(pick->ai_family, pick->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, pick->ai_protocol);
    if (fd < 0) err = std::string("socket: ") + std::strerror(errno);
    if (fd >= 0) {
        int one = 1, zero = 0;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (pick->ai_family == AF_INET6 && host.empty()) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (::bind(fd, pick->ai_addr, pick->ai_addrlen) != 0) err = std::string("bind: ") + std::strerror(errno);
        else if (::listen(fd, 32) != 0) err = std::string("listen: ") + std::strerror(errno);
    }
    ::freeaddrinfo(res);
    if (!err.empty()) {
        if (fd >= 0) ::close(fd);
        SSL_CTX_free(ctx);
        ctx_ = nullptr;
        throw std::runtime_error(where + ": " + err);
    }
    listen_fd_ = fd;
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) == 0)
        port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                  : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    if (const int e = loop_.open(); e != 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
        SSL_CTX_free(ctx);
        ctx_ = nullptr;
        throw std::runtime_error(where + ": pipe2: " + std::strerror(e));
    }
    loop_.start([this] { run(); });
}

TlsControlServer::~TlsControlServer() { stop(); }

void TlsControlServer::stop() {
    if (stopped_) return;
    stopped_ = true;
    loop_.stop();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
    if (ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
    ctx_ = nullptr;
}

void TlsControlServer::log(const std::string& line) const {
    if (opt_.log) opt_.log(line);
    else  // a refusal is a warning; the rest is information
        log::write(line.rfind("refused", 0) == 0 ? log::Level::warning : log::Level::info, "remote: %s",
                   line.c_str());
}

std::string TlsControlServer::handle_line(std::string_view line, const std::string& cn, Role role,
                                          const std::string& peer) {
    Request req;
    if (auto err = parse_request(line, opt_.max_request_bytes, req)) return *err;
    const std::string& command = req.command;
    if (!role_allows(role, command)) {
        denied_.fetch_add(1, std::memory_order_relaxed);
        std::string printable;
        for (char ch : command.substr(0, 64)) printable += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
        log("refused " + peer + ": CN=" + cn + " (" + role_name(role) + ") not authorised for command " +
            printable);
        const Command* c = find_command(command);   // not in the registry: only admin may send it
        return make_error_response("not authorised: client certificate CN=" + cn + " has role " + role_name(role) +
                                   "; '" + printable + "' needs " + role_name(c ? c->role : Role::admin));
    }
    served_.fetch_add(1, std::memory_order_relaxed);
    return run_handler(handler_, req, opt_.max_response_bytes, "CN=" + cn + " " + peer);
}

void TlsControlServer::run() {
    SSL_CTX* ctx = static_cast<SSL_CTX*>(ctx_);
    std::vector<std::unique_ptr<Client>> clients;
    std::vector<pollfd> pfds;
    const size_t out_high_water = opt_.max_response_bytes + 4096;

    auto refuse = [&](Client& c, const std::string& reason) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        log("refused " + c.peer + ": " + reason);
    };
    // Ends a refused handshake: our alert is out; read and discard what the
    // peer still sends for kLingerMs so it reads the alert, not a reset.
    auto linger = [&](Client& c, int64_t now) {
        ::shutdown(c.fd, SHUT_WR);
        c.state = State::linger;
        c.deadline_ms = now + kLingerMs;
    };

    // One handshake step. Returns false when the client is to be dropped.
    auto step_handshake = [&](Client& c, int64_t now) -> bool {
        if (!c.checked_plain) {
            unsigned char first = 0;
            ssize_t r = ::recv(c.fd, &first, 1, MSG_PEEK);
            if (r == 0) {
                refuse(c, "closed the connection before the TLS handshake");
                return false;
            }
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR) return true;
                refuse(c, std::string("connection error before the TLS handshake: ") + std::strerror(errno));
                return false;
            }
            if (first != kTlsHandshakeRecord) {
                char peek[24] = {};
                ssize_t n = ::recv(c.fd, peek, sizeof peek - 1, MSG_PEEK);
                std::string shown;
                for (ssize_t i = 0; i < n; ++i) {
                    char ch = peek[i];
                    shown += (ch >= 0x20 && ch < 0x7f) ? ch : '.';
                }
                refuse(c, "plain-text client (not a TLS handshake; first bytes \"" + shown + "\")");
                std::string msg = make_error_response("this nlbd port speaks TLS with client certificates only "
                                                      "(use nlbctl --remote with --cert, --key and --ca)") + "\n";
                ssize_t w = ::send(c.fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                (void)w;
                linger(c, now);
                return true;
            }
            c.checked_plain = true;
        }
        ERR_clear_error();
        int rc = SSL_accept(c.ssl);
        if (rc == 1) {
            X509* cert = SSL_get0_peer_certificate(c.ssl);
            c.cn = common_name(cert);
            auto it = opt_.allow.find(c.cn);
            c.role = it == opt_.allow.end() ? Role::none : it->second;
            c.state = State::open;
            c.last_ms = now;
            c.want_write = false;
            if (c.role == Role::none) {
                // Answer its first request with the refusal, then close
                // (reading the request first avoids resetting the answer).
                refuse(c, "client certificate CN=" + (c.cn.empty() ? std::string("(none)") : c.cn) +
                              " is not in remote_allow");
            } else {
                log("accepted " + c.peer + ": CN=" + c.cn + " (" + role_name(c.role) + "), " +
                    SSL_get_version(c.ssl));
            }
            return true;
        }
        int e = SSL_get_error(c.ssl, rc);
        if (e == SSL_ERROR_WANT_READ) {
            c.want_write = false;
            return true;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            c.want_write = true;
            return true;
        }
        std::string reason;
        if (c.note.error != X509_V_OK) {
            reason = verify_reason(c.note.error);
            if (!c.note.subject.empty()) reason += ": subject " + c.note.subject + ", issuer " + c.note.issuer;
        } else if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
            reason = "no client certificate";
        } else if (const int r = ERR_GET_REASON(ERR_peek_error());
                   r == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE || r == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
                   r == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN || r == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED) {
            reason = "the client rejected nlbd's certificate (its --ca or --server-name does not match remote_cert): " +
                     ssl_errors();
        } else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
            reason = "TLS handshake aborted by the client";
        } else {
            reason = "TLS handshake failed: " + ssl_errors();
        }
        ERR_clear_error();
        refuse(c, reason);
        linger(c, now);
        return true;
    };

    // Reads what TLS has, queues the responses, writes. false: drop.
    auto step_open = [&](Client& c, int64_t now) -> bool {
        bool progress = false;
        while (!c.read_closed && !c.close_after_flush && c.out.size() < out_high_water) {
            char buf[8192];
            ERR_clear_error();
            int r = SSL_read(c.ssl, buf, sizeof buf);
            if (r > 0) {
                c.in.append(buf, static_cast<size_t>(r));
                progress = true;
                if (c.in.size() > opt_.max_request_bytes + 2 && c.in.find('\n') == std::string::npos) break;
                continue;
            }
            int e = SSL_get_error(c.ssl, r);
            if (e == SSL_ERROR_WANT_READ) break;
            if (e == SSL_ERROR_WANT_WRITE) {
                c.want_write = true;
                break;
            }
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
                c.read_closed = true;
                if (!c.in.empty() && c.in.back() != '\n') c.in += '\n';
                break;
            }
            log("connection of " + c.peer + " (CN=" + c.cn + "): TLS read failed: " + ssl_errors());
            return false;
        }
        while (!c.close_after_flush) {
            size_t nl = c.in.find('\n');
            if (nl == std::string::npos) {
                if (c.in.size() > opt_.max_request_bytes) {
                    log("request from " + c.peer + " (CN=" + c.cn + ") exceeds " +
                        std::to_string(opt_.max_request_bytes) + " bytes; closing");
                    c.out += make_error_response("request exceeds " + std::to_string(opt_.max_request_bytes) +
                                                 " bytes");
                    c.out += '\n';
                    c.in.clear();
                    c.close_after_flush = true;
                }
                break;
            }
            std::string_view line(c.in.data(), nl);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.find_first_not_of(" \t") != std::string_view::npos) {
                if (c.role == Role::none) {
                    c.out += make_error_response("not authorised: client certificate CN=" + c.cn +
                                                 " is not allowed on this nlbd (remote_allow)");
                    c.close_after_flush = true;
                } else if (line.size() > opt_.max_request_bytes) {
                    c.out += make_error_response("request exceeds " + std::to_string(opt_.max_request_bytes) +
                                                 " bytes");
                    c.close_after_flush = true;
                } else {
                    c.out += handle_line(line, c.cn, c.role, c.peer);
                }
                c.out += '\n';
                progress = true;
            }
            c.in.erase(0, nl + 1);
            if (c.out.size() >= out_high_water) break;
        }
        if (c.close_after_flush) c.in.clear();
        c.want_write = false;
        while (!c.out.empty()) {
            ERR_clear_error();
            int w = SSL_write(c.ssl, c.out.data(), static_cast<int>(std::min<size_t>(c.out.size(), 1 << 20)));
            if (w > 0) {
                c.out.erase(0, static_cast<size_t>(w));
                progress = true;
                continue;
            }
            int e = SSL_get_error(c.ssl, w);
            if (e == SSL_ERROR_WANT_WRITE) {
                c.want_write = true;
                break;
            }
            if (e == SSL_ERROR_WANT_READ) break;
            ERR_clear_error();
            return false;   // peer gone
        }
        if (progress) c.last_ms = now;
        if (c.out.empty() && (c.close_after_flush || c.read_closed)) {
            ERR_clear_error();
            SSL_shutdown(c.ssl);   // close_notify, best effort
            ERR_clear_error();
            return false;
        }
        return true;
    };

    while (!loop_.stopping()) {
        pfds.clear();
        pfds.push_back({loop_.wake_fd(), POLLIN, 0});
        pfds.push_back({listen_fd_, static_cast<short>(clients.size() < static_cast<size_t>(opt_.max_clients) + 4
                                                           ? POLLIN : 0), 0});
        int64_t now = now_ms();
        int timeout = 1000;
        for (const auto& cp : clients) {
            const Client& c = *cp;
            short ev = 0;
            int64_t due;
            if (c.state == State::open) {
                if (!c.read_closed && !c.close_after_flush && c.out.size() < out_high_water) ev |= POLLIN;
                if (!c.out.empty() || c.want_write) ev |= POLLOUT;
                due = c.last_ms + opt_.client_timeout_ms;
            } else {
                ev = c.want_write && c.state == State::handshake ? POLLOUT : POLLIN;
                due = c.deadline_ms;
            }
            pfds.push_back({c.fd, ev, 0});
            int64_t left = due - now;
            if (left < timeout) timeout = left < 0 ? 0 : static_cast<int>(left);
        }
        int n = ::poll(pfds.data(), pfds.size(), timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            log(std::string("poll failed: ") + std::strerror(errno));
            break;
        }
        if (pfds[0].revents) break;   // stop()
        now = now_ms();

        for (size_t i = clients.size(); i-- > 0;) {
            Client& c = *clients[i];
            const short re = pfds[2 + i].revents;
            bool keep = true;
            if (c.state == State::handshake) {
                if (re) keep = step_handshake(c, now);
                if (keep && c.state == State::open) keep = step_open(c, now);   // data after Finished
                if (keep && c.state == State::handshake && now >= c.deadline_ms) {
                    refuse(c, "TLS handshake not finished within " + std::to_string(opt_.handshake_timeout_ms) +
                                  " ms");
                    keep = false;
                }
            } else if (c.state == State::open) {
                if (re) keep = step_open(c, now);
                if (keep && now - c.last_ms >= opt_.client_timeout_ms) {
                    log("closing the connection of " + c.peer + " (CN=" + c.cn + ") after " +
                        std::to_string(opt_.client_timeout_ms) + " ms without progress");
                    keep = false;
                }
            } else {   // linger
                if (re) {
                    char buf[4096];
                    ssize_t r = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
                    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) keep = false;
                }
                if (now >= c.deadline_ms) keep = false;
            }
            if (!keep) clients.erase(clients.begin() + static_cast<std::ptrdiff_t>(i));
        }

        if (pfds[1].revents & POLLIN) {
            for (;;) {
                sockaddr_storage ss{};
                socklen_t len = sizeof ss;
                int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0) {
                    if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log(std::string("accept failed: ") + std::strerror(errno));
                    break;
                }
                auto c = std::make_unique<Client>();
                c->fd = fd;
                c->peer = peer_text(ss);
                size_t active = 0;
                for (const auto& x : clients) active += x->state != State::linger;
                if (active >= static_cast<size_t>(opt_.max_clients)) {
                    refuse(*c, std::to_string(opt_.max_clients) + " remote clients already connected");
                    continue;   // ~Client closes it
                }
                int one = 1;
                ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                ERR_clear_error();
                c->ssl = SSL_new(ctx);
                if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
                    log("SSL_new failed for " + c->peer + ": " + ssl_errors());
                    continue;
                }
                SSL_set_ex_data(c->ssl, g_note_index, &c->note);
                c->deadline_ms = now + opt_.handshake_timeout_ms;
                c->last_ms = now;
                clients.push_back(std::move(c));
            }
        }
    }
    clients.clear();
}

}  // namespace nlbd::ctl
