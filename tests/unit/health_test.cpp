// Health checks (SPEC §9): the pure logic (hysteresis, status lines, drain
// ownership) without a network, then every probe against real listeners on
// 127.0.0.1 ephemeral ports: a refusing port, an accepting one, a tiny HTTP
// server answering 200 / 503 / garbage, and a TLS server whose certificate
// (made here with the OpenSSL API) covers or does not cover the name.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "nlbd/health/checker.hpp"
#include "nlbd/health/probe.hpp"

using namespace nlbd;
using namespace nlbd::health;

namespace {

// ----------------------------------------------------------------- helpers

// The test's servers write to clients that may have closed (a probe that
// stops after the handshake): EPIPE, not a dead test process.
const bool kIgnoreSigpipe = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

IpAddr loopback() { return *IpAddr::parse("127.0.0.1"); }

// A listening socket on 127.0.0.1:<ephemeral>.
int listen_any(uint16_t* port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    *port = ntohs(a.sin_port);
    return fd;
}

// A port on which nothing listens (bound then closed).
uint16_t refused_port() {
    uint16_t port = 0;
    ::close(listen_any(&port));
    return port;
}

// Accepts connections on its own thread and hands each to `serve`, until
// destroyed.
class Server {
public:
    explicit Server(std::function<void(int)> serve) : serve_(std::move(serve)) {
        fd_ = listen_any(&port_);
        thread_ = std::thread([this] {
            for (;;) {
                const int c = ::accept(fd_, nullptr, nullptr);
                if (c < 0 || stop_) {
                    if (c >= 0) ::close(c);
                    return;
                }
                serve_(c);
                ::close(c);
            }
        });
    }
    ~Server() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    uint16_t port() const { return port_; }

private:
    std::function<void(int)> serve_;
    int fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// Reads an HTTP request head (up to the blank line) from a plain socket.
std::string read_head(int fd) {
    std::string s;
    char b[512];
    while (s.find("\r\n\r\n") == std::string::npos && s.size() < 8192) {
        const ssize_t n = ::recv(fd, b, sizeof b, 0);
        if (n <= 0) break;
        s.append(b, static_cast<size_t>(n));
    }
    return s;
}

void send_all(int fd, const std::string& s) { (void)!::send(fd, s.data(), s.size(), MSG_NOSIGNAL); }

ProbeSpec spec(HealthKind kind, uint16_t port) {
    ProbeSpec s;
    s.kind = kind;
    s.address = loopback();
    s.port = port;
    s.timeout_ms = 2000;
    return s;
}

// A self-signed certificate (its own CA) for the given DNS names.
struct Cert {
    EVP_PKEY* key = nullptr;
    X509* x509 = nullptr;
    ~Cert() {
        X509_free(x509);
        EVP_PKEY_free(key);
    }
    std::string write_pem(const std::filesystem::path& p) const {
        FILE* f = std::fopen(p.c_str(), "w");
        PEM_write_X509(f, x509);
        std::fclose(f);
        return p.string();
    }
};

std::unique_ptr<Cert> make_cert(const std::string& cn, const std::string& san) {
    auto c = std::make_unique<Cert>();
    c->key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    c->x509 = X509_new();
    X509_set_version(c->x509, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c->x509), 1);
    X509_gmtime_adj(X509_getm_notBefore(c->x509), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c->x509), 3600);
    X509_NAME* n = X509_get_subject_name(c->x509);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(c->x509, n);
    X509_set_pubkey(c->x509, c->key);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, c->x509, c->x509, nullptr, nullptr, 0);
    for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, san}, std::pair{NID_basic_constraints, std::string("critical,CA:TRUE")}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
        EXPECT_NE(ext, nullptr);
        X509_add_ext(c->x509, ext, -1);
        X509_EXTENSION_free(ext);
    }
    EXPECT_GT(X509_sign(c->x509, c->key, EVP_sha256()), 0);
    return c;
}

// A TLS server presenting cert; answers an HTTP request with `answer` when
// it is not empty.
class TlsServer {
public:
    TlsServer(const Cert& cert, std::string answer) : answer_(std::move(answer)) {
        ctx_ = SSL_CTX_new(TLS_server_method());
        EXPECT_EQ(SSL_CTX_use_certificate(ctx_, cert.x509), 1);
        EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx_, cert.key), 1);
        server_ = std::make_unique<Server>([this](int fd) {
            SSL* ssl = SSL_new(ctx_);
            SSL_set_fd(ssl, fd);
            if (SSL_accept(ssl) == 1) {
                sni_ = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : "";
                if (!answer_.empty()) {
                    char b[2048];
                    std::string head;
                    while (head.find("\r\n\r\n") == std::string::npos) {
                        const int n = SSL_read(ssl, b, sizeof b);
                        if (n <= 0) break;
                        head.append(b, static_cast<size_t>(n));
                    }
                    request_ = head;
                    SSL_write(ssl, answer_.data(), static_cast<int>(answer_.size()));
                }
                SSL_shutdown(ssl);
            }
            SSL_free(ssl);
        });
    }
    ~TlsServer() { stop(); }
    // Joins the server thread; sni_ and request_ are then safe to read.
    void stop() {
        server_.reset();
        if (ctx_ != nullptr) SSL_CTX_free(ctx_);
        ctx_ = nullptr;
    }
    uint16_t port() const { return server_->port(); }
    std::string sni_;
    std::string request_;

private:
    std::string answer_;
    SSL_CTX* ctx_ = nullptr;
    std::unique_ptr<Server> server_;
};

std::filesystem::path temp_path(const std::string& name) {
    return std::filesystem::temp_directory_path() / ("nlbd_health_test_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace

// ------------------------------------------------------------- pure logic

TEST(Hysteresis, StartsUnknownAndRisesAfterRiseSuccesses) {
    Hysteresis h(2, 3);
    EXPECT_EQ(h.state(), State::unknown);
    EXPECT_FALSE(h.feed(true));
    EXPECT_EQ(h.feed(true), State::up);
    EXPECT_FALSE(h.feed(true));
    EXPECT_EQ(h.state(), State::up);
}

TEST(Hysteresis, FallsOnlyAfterFallConsecutiveFailures) {
    Hysteresis h(1, 3);
    EXPECT_EQ(h.feed(true), State::up);
    EXPECT_FALSE(h.feed(false));
    EXPECT_FALSE(h.feed(false));
    EXPECT_FALSE(h.feed(true));   // the streak is broken
    EXPECT_FALSE(h.feed(false));
    EXPECT_FALSE(h.feed(false));
    EXPECT_EQ(h.feed(false), State::down);
    EXPECT_FALSE(h.feed(false));
    EXPECT_EQ(h.state(), State::down);
}

TEST(Hysteresis, AlternatingResultsNeverFlap) {
    Hysteresis h(2, 2);
    EXPECT_EQ(h.feed(true), std::nullopt);
    EXPECT_EQ(h.feed(true), State::up);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(h.feed(i % 2 == 0), std::nullopt) << i;
    EXPECT_EQ(h.state(), State::up);
}

TEST(Hysteresis, DownRecoversAfterRiseSuccesses) {
    Hysteresis h(3, 1);
    EXPECT_EQ(h.feed(false), State::down);
    EXPECT_FALSE(h.feed(true));
    EXPECT_FALSE(h.feed(true));
    EXPECT_EQ(h.feed(true), State::up);
}

TEST(HttpStatus, ParsesStatusLines) {
    EXPECT_EQ(parse_status_line("HTTP/1.1 200 OK\r\n"), 200u);
    EXPECT_EQ(parse_status_line("HTTP/1.0 503 Service Unavailable"), 503u);
    EXPECT_EQ(parse_status_line("HTTP/1.1 204\r\n"), 204u);
    EXPECT_EQ(parse_status_line("HTTP/1.1 404"), 404u);
}

TEST(HttpStatus, RejectsWhatIsNotAStatusLine) {
    EXPECT_EQ(parse_status_line(""), std::nullopt);
    EXPECT_EQ(parse_status_line("SSH-2.0-OpenSSH_9.2\r\n"), std::nullopt);
    EXPECT_EQ(parse_status_line("HTTP/1.1 20 OK\r\n"), std::nullopt);
    EXPECT_EQ(parse_status_line("HTTP/1.1 2000 OK"), std::nullopt);
    EXPECT_EQ(parse_status_line("HTTP/1.1 099 Low"), std::nullopt);
    EXPECT_EQ(parse_status_line("HTTP/2 200 OK"), std::nullopt);
    EXPECT_EQ(parse_status_line("220 mail.ehlo.dk ESMTP"), std::nullopt);
}

TEST(HttpStatus, ClassifiesAgainstTheExpectedList) {
    const ProbeResult ok = classify_status(204, {200, 204});
    EXPECT_TRUE(ok.ok());
    EXPECT_EQ(ok.text, "HTTP 204");
    const ProbeResult bad = classify_status(503, {200, 204});
    EXPECT_EQ(bad.outcome, Outcome::bad_status);
    EXPECT_EQ(bad.text, "HTTP 503 (expected 200, 204)");
}

TEST(HttpStatus, RequestCarriesPathHostAndClose) {
    const std::string r = http_request("/owa/healthcheck.htm", "mail.ehlo.dk");
    EXPECT_EQ(r.rfind("GET /owa/healthcheck.htm HTTP/1.1\r\n", 0), 0u);
    EXPECT_NE(r.find("\r\nHost: mail.ehlo.dk\r\n"), std::string::npos);
    EXPECT_NE(r.find("\r\nConnection: close\r\n"), std::string::npos);
    EXPECT_EQ(r.substr(r.size() - 4), "\r\n\r\n");
}

TEST(DrainGate, HealthDrainsOnlyAnEnabledRule) {
    DrainGate g(2);
    EXPECT_FALSE(g.on_down(0, /*rule_enabled=*/false));  // operator drained or disabled it
    EXPECT_FALSE(g.drained_by_health(0));
    EXPECT_FALSE(g.on_up(0, /*rule_draining=*/true));    // not health's to re-enable
    EXPECT_TRUE(g.on_down(1, true));
    EXPECT_TRUE(g.drained_by_health(1));
    EXPECT_TRUE(g.on_up(1, true));
    EXPECT_FALSE(g.drained_by_health(1));
}

TEST(DrainGate, OperatorCommandTakesTheRuleBack) {
    DrainGate g(1);
    EXPECT_TRUE(g.on_down(0, true));
    g.on_operator(0);  // e.g. `nlbctl disable` while health had it drained
    EXPECT_FALSE(g.on_up(0, true));
    EXPECT_FALSE(g.drained_by_health(0));
}

TEST(DrainGate, HealthDoesNotEnableARuleTheOperatorChangedMeanwhile) {
    DrainGate g(1);
    EXPECT_TRUE(g.on_down(0, true));
    EXPECT_FALSE(g.on_up(0, /*rule_draining=*/false));  // now disabled by the operator
}

// ------------------------------------------------------------------ probes

TEST(TcpProbe, RefusedPortIsDownWithConnectRefused) {
    const ProbeResult r = run_probe(spec(HealthKind::tcp, refused_port()));
    EXPECT_EQ(r.outcome, Outcome::refused);
    EXPECT_EQ(r.text, "connect refused");
}

TEST(TcpProbe, ListeningPortIsUp) {
    uint16_t port = 0;
    const int fd = listen_any(&port);
    const ProbeResult r = run_probe(spec(HealthKind::tcp, port));
    ::close(fd);
    EXPECT_TRUE(r.ok()) << r.text;
}

TEST(HttpProbe, Status200IsUpAndTheRequestNamesTheHost) {
    std::string head;
    auto s = std::make_unique<Server>([&](int fd) {
        head = read_head(fd);
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    ProbeSpec p = spec(HealthKind::http, s->port());
    p.path = "/owa/healthcheck.htm";
    p.name = "mail.ehlo.dk";
    const ProbeResult r = run_probe(p);
    s.reset();  // joined: head is safe to read
    EXPECT_TRUE(r.ok()) << r.text;
    EXPECT_EQ(r.text, "HTTP 200");
    EXPECT_EQ(head.rfind("GET /owa/healthcheck.htm HTTP/1.1\r\n", 0), 0u) << head;
    EXPECT_NE(head.find("Host: mail.ehlo.dk"), std::string::npos) << head;
}

TEST(HttpProbe, Status503IsDown) {
    Server s([](int fd) {
        read_head(fd);
        send_all(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    });
    const ProbeResult r = run_probe(spec(HealthKind::http, s.port()));
    EXPECT_EQ(r.outcome, Outcome::bad_status);
    EXPECT_EQ(r.text, "HTTP 503 (expected 200)");
}

TEST(HttpProbe, NonHttpAnswerIsDown) {
    Server s([](int fd) { send_all(fd, "220 cas01 ESMTP ready\r\n"); });
    const ProbeResult r = run_probe(spec(HealthKind::http, s.port()));
    EXPECT_EQ(r.outcome, Outcome::bad_response) << r.text;
}

TEST(HttpProbe, SilentServerTimesOut) {
    Server s([](int fd) {
        read_head(fd);
        char b[16];
        (void)!::recv(fd, b, sizeof b, 0);  // waits until the probe gives up and closes
    });
    ProbeSpec p = spec(HealthKind::http, s.port());
    p.timeout_ms = 200;
    const ProbeResult r = run_probe(p);
    EXPECT_EQ(r.outcome, Outcome::timeout) << r.text;
}

TEST(TlsProbe, CertificateCoveringTheNameIsUpWithSni) {
    auto cert = make_cert("mail.ehlo.dk", "DNS:mail.ehlo.dk,DNS:autodiscover.ehlo.dk,DNS:cas01.ehlo.dk");
    TlsServer srv(*cert, "");
    ProbeSpec p = spec(HealthKind::tls, srv.port());
    p.name = p.sni = "mail.ehlo.dk";
    const ProbeResult r = run_probe(p);
    EXPECT_TRUE(r.ok()) << r.text;
    EXPECT_EQ(r.text, "TLS ok, certificate covers mail.ehlo.dk");
    srv.stop();
    EXPECT_EQ(srv.sni_, "mail.ehlo.dk");
}

TEST(TlsProbe, CertificateNotCoveringTheNameIsDown) {
    auto cert = make_cert("cas01.ehlo.dk", "DNS:cas01.ehlo.dk");  // the seed's "security alert"
    TlsServer srv(*cert, "");
    ProbeSpec p = spec(HealthKind::tls, srv.port());
    p.name = p.sni = "mail.ehlo.dk";
    const ProbeResult r = run_probe(p);
    EXPECT_EQ(r.outcome, Outcome::name_mismatch);
    EXPECT_EQ(r.text, "certificate does not cover mail.ehlo.dk");
}

TEST(TlsProbe, ChainIsVerifiedAgainstTheConfiguredCa) {
    auto cert = make_cert("mail.ehlo.dk", "DNS:mail.ehlo.dk");
    auto other = make_cert("Other CA", "DNS:other.example");
    const std::string good_ca = cert->write_pem(temp_path("good_ca.pem"));
    const std::string bad_ca = other->write_pem(temp_path("bad_ca.pem"));
    TlsServer srv(*cert, "");
    ProbeSpec p = spec(HealthKind::tls, srv.port());
    p.name = p.sni = "mail.ehlo.dk";
    p.ca_file = good_ca;
    const ProbeResult good = run_probe(p);
    EXPECT_TRUE(good.ok()) << good.text;
    p.ca_file = bad_ca;
    const ProbeResult bad = run_probe(p);
    EXPECT_EQ(bad.outcome, Outcome::untrusted) << bad.text;
    EXPECT_NE(bad.text.find("certificate does not chain to"), std::string::npos) << bad.text;
    std::filesystem::remove(good_ca);
    std::filesystem::remove(bad_ca);
}

TEST(TlsProbe, PlainTcpServiceFailsTheHandshake) {
    Server s([](int fd) {
        char b[512];
        (void)!::recv(fd, b, sizeof b, 0);  // the ClientHello, taken for a bad request
        send_all(fd, "HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    ProbeSpec p = spec(HealthKind::tls, s.port());
    p.name = p.sni = "mail.ehlo.dk";
    const ProbeResult r = run_probe(p);
    EXPECT_EQ(r.outcome, Outcome::tls_failed) << r.text;
    EXPECT_EQ(r.text.rfind("TLS handshake failed", 0), 0u) << r.text;
}

TEST(HttpsProbe, StatusIsReadThroughTls) {
    auto cert = make_cert("mail.ehlo.dk", "DNS:mail.ehlo.dk");
    TlsServer up(*cert, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    ProbeSpec p = spec(HealthKind::https, up.port());
    p.name = p.sni = "mail.ehlo.dk";
    p.path = "/owa";
    const ProbeResult r = run_probe(p);
    EXPECT_TRUE(r.ok()) << r.text;
    EXPECT_EQ(r.text, "HTTP 200");
    up.stop();
    EXPECT_EQ(up.request_.rfind("GET /owa HTTP/1.1\r\n", 0), 0u) << up.request_;

    TlsServer down(*cert, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    p.port = down.port();
    const ProbeResult d = run_probe(p);
    EXPECT_EQ(d.outcome, Outcome::bad_status) << d.text;
    EXPECT_EQ(d.text, "HTTP 503 (expected 200)");
}

// ----------------------------------------------------------------- checker

TEST(Checker, FallingServiceMakesOneDownTransitionThenRecovers) {
    uint16_t port = 0;
    int fd = listen_any(&port);
    RuleCheck c;
    c.rule = 1;
    c.probe = spec(HealthKind::tcp, port);
    c.interval_ms = 1000;
    c.rise = 2;
    c.fall = 2;
    Checker ck({c}, 2);
    uint64_t t = Checker::now_ns();
    // run_due(t) runs what is due at t; stepping t by the interval runs one
    // round each time, whatever the wall clock does.
    auto round = [&] { t = std::max<uint64_t>(t + 1'000'000'000ull, ck.run_due(t)); };
    round();
    round();
    auto tr = ck.take_transitions();
    ASSERT_EQ(tr.size(), 1u);
    EXPECT_EQ(tr[0].rule, 1u);
    EXPECT_EQ(tr[0].state, State::up);

    ::close(fd);  // the service stops
    round();
    EXPECT_TRUE(ck.take_transitions().empty());  // one failure is not enough
    round();
    tr = ck.take_transitions();
    ASSERT_EQ(tr.size(), 1u);
    EXPECT_EQ(tr[0].state, State::down);
    EXPECT_EQ(tr[0].last, "connect refused");
    const auto st = ck.status(1);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state, State::down);
    EXPECT_EQ(st->checks, 4u);
    EXPECT_EQ(st->ok, 2u);
    EXPECT_EQ(st->failed, 2u);
    EXPECT_EQ(st->transitions, 2u);
    EXPECT_FALSE(ck.status(0).has_value());
    const std::string js = ck.stats_json();
    EXPECT_NE(js.find("\"state\":\"down\""), std::string::npos) << js;
    EXPECT_NE(js.find("\"last\":\"connect refused\""), std::string::npos) << js;
}

TEST(Checker, ThreadProbesOnItsOwnAndStopsPromptly) {
    RuleCheck c;
    c.rule = 0;
    c.probe = spec(HealthKind::tcp, refused_port());
    c.interval_ms = 100;
    c.rise = 1;
    c.fall = 1;
    Checker ck({c}, 1);
    ck.start();
    std::vector<Transition> tr;
    for (int i = 0; i < 200 && tr.empty(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        tr = ck.take_transitions();
    }
    ck.stop();
    ASSERT_EQ(tr.size(), 1u);
    EXPECT_EQ(tr[0].state, State::down);
}

TEST(Checker, ChecksFromConfigResolveDefaults) {
    config::Config cfg;
    cfg.cluster.name = "mail.ehlo.dk";
    cfg.host.dedicated_ip = IpAddr::parse("192.168.1.11");
    PortRule all;
    all.port_lo = all.port_hi = 443;
    PortRule vip;
    vip.vip = IpAddr::parse("10.0.0.10");
    vip.port_lo = 25;
    vip.port_hi = 25;
    cfg.rules = {all, vip, PortRule{}};
    cfg.health.resize(3);
    cfg.health[0].kind = HealthKind::https;
    cfg.health[0].port = 443;
    cfg.health[1].kind = HealthKind::tcp;
    cfg.health[1].port = 25;
    cfg.health[1].address = vip.vip;
    const auto checks = Checker::checks_from_config(cfg);
    ASSERT_EQ(checks.size(), 2u);
    EXPECT_EQ(checks[0].rule, 0u);
    EXPECT_EQ(checks[0].probe.address.to_string(), "192.168.1.11");
    EXPECT_EQ(checks[0].probe.name, "mail.ehlo.dk");
    EXPECT_EQ(checks[0].probe.sni, "mail.ehlo.dk");
    EXPECT_EQ(checks[1].rule, 1u);
    EXPECT_EQ(checks[1].probe.address.to_string(), "10.0.0.10");
    EXPECT_EQ(checks[1].probe.port, 25);
}
