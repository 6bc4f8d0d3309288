// Remote control over mutual TLS: a real TlsControlServer on 127.0.0.1 with a
// fake handler, and real clients (call_remote, nlbctl_main, raw OpenSSL and
// plain TCP). Every certificate is made here with the OpenSSL 3 APIs: a CA,
// the server's certificate, an admin client, a read-only client, a client of
// another CA, an expired client and a client whose CN is not allowed.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nlbd/config/config.hpp"
#include "nlbd/ctl/cli.hpp"
#include "nlbd/ctl/tls_client.hpp"
#include "nlbd/ctl/tls_server.hpp"

namespace nlbd::ctl {
namespace {

namespace fs = std::filesystem;

// ---- certificates -------------------------------------------------------------

struct Issued {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
};

EVP_PKEY* new_key() {
    EVP_PKEY* k = EVP_EC_gen("P-256");
    if (!k) std::abort();
    return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    ASSERT_NE(ext, nullptr) << value;
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// A certificate for cn, signed by issuer (self-signed when issuer is null),
// valid from now+from_s to now+to_s.
Issued issue(const char* cn, const Issued* issuer, bool ca, const char* eku, const char* san, long from_s,
             long to_s) {
    static long serial = 1;
    Issued out;
    out.key = new_key();
    X509* c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
    X509_gmtime_adj(X509_getm_notBefore(c), from_s);
    X509_gmtime_adj(X509_getm_notAfter(c), to_s);
    X509_set_pubkey(c, out.key);
    X509_NAME* name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("nlbd test"), -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer->cert) : name);
    X509* icert = issuer ? issuer->cert : nullptr;
    add_ext(c, icert, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(c, icert, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(c, icert, NID_subject_key_identifier, "hash");
    if (issuer) add_ext(c, icert, NID_authority_key_identifier, "keyid");
    if (eku) add_ext(c, icert, NID_ext_key_usage, eku);
    if (san) add_ext(c, icert, NID_subject_alt_name, san);
    if (X509_sign(c, issuer ? issuer->key : out.key, EVP_sha256()) == 0) std::abort();
    out.cert = c;
    return out;
}

void write_pem(const fs::path& path, const Issued& x, bool with_key) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    PEM_write_X509(f, x.cert);
    std::fclose(f);
    if (with_key) {
        fs::path kp = path;
        kp.replace_extension(".key");
        FILE* k = std::fopen(kp.c_str(), "w");
        ASSERT_NE(k, nullptr);
        PEM_write_PrivateKey(k, x.key, nullptr, nullptr, 0, nullptr, nullptr);
        std::fclose(k);
    }
}

// Built once for the whole suite (key generation is the slow part).
struct Pki {
    fs::path dir;
    Pki() {
        dir = fs::temp_directory_path() / ("nlbd-remote-test-" + std::to_string(::getpid()));
        fs::create_directories(dir);
        Issued ca = issue("nlbd test CA", nullptr, true, nullptr, nullptr, -3600, 86400);
        Issued other_ca = issue("some other CA", nullptr, true, nullptr, nullptr, -3600, 86400);
        Issued server = issue("nlbd.test", &ca, false, "serverAuth", "DNS:nlbd.test,IP:127.0.0.1", -3600, 86400);
        Issued admin = issue("ops1", &ca, false, "clientAuth", nullptr, -3600, 86400);
        Issued reader = issue("mon1", &ca, false, "clientAuth", nullptr, -3600, 86400);
        Issued stranger = issue("ops1", &other_ca, false, "clientAuth", nullptr, -3600, 86400);
        Issued expired = issue("ops1", &ca, false, "clientAuth", nullptr, -86400 * 10, -86400);
        Issued intruder = issue("intruder", &ca, false, "clientAuth", nullptr, -3600, 86400);
        write_pem(dir / "ca.pem", ca, false);
        write_pem(dir / "other_ca.pem", other_ca, false);
        write_pem(dir / "server.pem", server, true);
        write_pem(dir / "admin.pem", admin, true);
        write_pem(dir / "reader.pem", reader, true);
        write_pem(dir / "stranger.pem", stranger, true);
        write_pem(dir / "expired.pem", expired, true);
        write_pem(dir / "intruder.pem", intruder, true);
        for (Issued* x : {&ca, &other_ca, &server, &admin, &reader, &stranger, &expired, &intruder}) {
            X509_free(x->cert);
            EVP_PKEY_free(x->key);
        }
    }
    ~Pki() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string pem(const char* name) const { return (dir / (std::string(name) + ".pem")).string(); }
    std::string key(const char* name) const { return (dir / (std::string(name) + ".key")).string(); }
};

const Pki& pki() {
    static Pki p;
    return p;
}

// ---- a server with a fake handler ----------------------------------------------

class Fixture {
public:
    explicit Fixture(int max_clients = 16, int handshake_timeout_ms = 5000) {
        TlsServerOptions o;
        o.listen = "127.0.0.1:0";
        o.cert_file = pki().pem("server");
        o.key_file = pki().key("server");
        o.ca_file = pki().pem("ca");
        o.allow = {{"ops1", Role::admin}, {"mon1", Role::read}};
        o.max_clients = max_clients;
        o.handshake_timeout_ms = handshake_timeout_ms;
        o.log = [this](const std::string& line) {
            std::lock_guard<std::mutex> lk(mu_);
            log_.push_back(line);
        };
        server_ = std::make_unique<TlsControlServer>(std::move(o), [this](const std::string& cmd,
                                                                         const std::vector<std::string>& args,
                                                                         const std::string& caller) {
            std::lock_guard<std::mutex> lk(mu_);
            calls_.push_back(cmd);
            callers_.push_back(caller);
            Json r = Json::object();
            r["command"] = cmd;
            r["args"] = static_cast<int64_t>(args.size());
            return r;
        });
    }

    std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }
    RemoteTarget target(const char* who, const char* ca = "ca") const {
        return {address(), pki().pem(who), pki().key(who), pki().pem(ca), ""};
    }
    std::vector<std::string> callers() {
        std::lock_guard<std::mutex> lk(mu_);
        return callers_;
    }
    std::vector<std::string> calls() {
        std::lock_guard<std::mutex> lk(mu_);
        return calls_;
    }
    // Waits (bounded) for a log line containing every part; returns it or "".
    std::string wait_log(std::initializer_list<std::string> parts, int max_ms = 5000) {
        const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
        for (;;) {
            {
                std::lock_guard<std::mutex> lk(mu_);
                for (const auto& l : log_) {
                    bool all = true;
                    for (const auto& p : parts) all = all && l.find(p) != std::string::npos;
                    if (all) return l;
                }
            }
            if (std::chrono::steady_clock::now() > end) return "";
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    std::string all_log() {
        std::lock_guard<std::mutex> lk(mu_);
        std::string s;
        for (const auto& l : log_) s += l + "\n";
        return s;
    }
    TlsControlServer& server() { return *server_; }

private:
    std::mutex mu_;
    std::vector<std::string> log_;
    std::vector<std::string> calls_;
    std::vector<std::string> callers_;
    std::unique_ptr<TlsControlServer> server_;
};

int tcp_connect(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

std::string read_line(int fd, int max_ms = 5000) {
    std::string in;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
    while (in.find('\n') == std::string::npos && std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[1024];
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r <= 0) break;
        in.append(buf, static_cast<size_t>(r));
    }
    return in;
}

// A TLS client without a certificate: handshake + one request. Returns
// whether a response line came back.
bool tls_without_certificate(uint16_t port) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, pki().pem("ca").c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    int fd = tcp_connect(port);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    bool answered = false;
    if (SSL_connect(ssl) == 1) {
        const char req[] = "{\"command\":\"query\"}\n";
        if (SSL_write(ssl, req, sizeof req - 1) > 0) {
            char buf[256];
            answered = SSL_read(ssl, buf, sizeof buf) > 0;
        }
    }
    SSL_free(ssl);
    ::close(fd);
    SSL_CTX_free(ctx);
    return answered;
}

// ---- pure helpers ----------------------------------------------------------------

TEST(RemoteRoles, ReadRoleRunsOnlyReadCommandsAdminRunsAll) {
    for (const char* c : {"query", "display", "params", "stats"}) {
        EXPECT_TRUE(role_allows(Role::read, c)) << c;
        EXPECT_TRUE(role_allows(Role::admin, c)) << c;
    }
    for (const char* c : {"start", "stop", "drainstop", "suspend", "resume", "enable", "disable", "drain", "reload"}) {
        EXPECT_FALSE(role_allows(Role::read, c)) << c;
        EXPECT_TRUE(role_allows(Role::admin, c)) << c;
    }
    EXPECT_FALSE(role_allows(Role::none, "query"));
    EXPECT_EQ(parse_role("read"), Role::read);
    EXPECT_EQ(parse_role("admin"), Role::admin);
    EXPECT_EQ(parse_role("root"), Role::none);
}

TEST(RemoteAddress, SplitsHostPortForms) {
    std::string h;
    uint16_t p = 0;
    ASSERT_TRUE(split_host_port("127.0.0.1:8443", h, p));
    EXPECT_EQ(h, "127.0.0.1");
    EXPECT_EQ(p, 8443);
    ASSERT_TRUE(split_host_port("[::1]:9", h, p));
    EXPECT_EQ(h, "::1");
    EXPECT_EQ(p, 9);
    ASSERT_TRUE(split_host_port(":8443", h, p));
    EXPECT_EQ(h, "");
    EXPECT_FALSE(split_host_port("::1:8443", h, p));
    EXPECT_FALSE(split_host_port("host", h, p));
    EXPECT_FALSE(split_host_port("host:70000", h, p));
    EXPECT_FALSE(split_host_port("host:", h, p));
}

// ---- accepted clients --------------------------------------------------------------

TEST(RemoteControl, AdminCertificateRunsEveryCommandOverTls13) {
    Fixture f;
    Json r = call_remote(f.target("admin"), "query", {});
    EXPECT_TRUE(r.find("ok")->as_bool()) << r.dump();
    EXPECT_EQ(r.find("result")->get_string("command"), "query");
    Json s = call_remote(f.target("admin"), "drain", {"443"});
    EXPECT_TRUE(s.find("ok")->as_bool()) << s.dump();
    EXPECT_EQ(f.calls(), (std::vector<std::string>{"query", "drain"}));
    // The handler learns who sent each command (the event log names it).
    ASSERT_EQ(f.callers().size(), 2u);
    for (const std::string& c : f.callers()) EXPECT_EQ(c.rfind("CN=ops1 127.0.0.1:", 0), 0u) << c;
    EXPECT_NE(f.wait_log({"accepted 127.0.0.1:", "CN=ops1 (admin)", "TLSv1.3"}), "") << f.all_log();
    EXPECT_EQ(f.server().clients_refused(), 0u);
}

TEST(RemoteControl, ReadOnlyCertificateIsRefusedStateChangingCommands) {
    Fixture f;
    for (const char* c : {"query", "display", "params", "stats"}) {
        Json r = call_remote(f.target("reader"), c, {});
        EXPECT_TRUE(r.find("ok")->as_bool()) << c << ": " << r.dump();
    }
    Json r = call_remote(f.target("reader"), "stop", {});
    EXPECT_FALSE(r.find("ok")->as_bool());
    EXPECT_NE(r.get_string("error").find("not authorised"), std::string::npos) << r.dump();
    EXPECT_EQ(f.calls(), (std::vector<std::string>{"query", "display", "params", "stats"}));
    EXPECT_NE(f.wait_log({"refused 127.0.0.1:", "CN=mon1 (read) not authorised for command stop"}), "")
        << f.all_log();
    EXPECT_EQ(f.server().commands_refused(), 1u);
}

TEST(RemoteControl, ClientChecksServerNameWhenGiven) {
    Fixture f;
    RemoteTarget t = f.target("admin");
    t.server_name = "nlbd.test";
    EXPECT_TRUE(call_remote(t, "query", {}).find("ok")->as_bool());
    t.server_name = "wrong.example";
    try {
        call_remote(t, "query", {});
        ADD_FAILURE() << "a certificate for nlbd.test was accepted for wrong.example";
    } catch (const ConnectError& e) {
        EXPECT_NE(std::string(e.what()).find("--server-name"), std::string::npos) << e.what();
    }
}

TEST(RemoteControl, ClientRefusesServerNotIssuedByItsCa) {
    Fixture f;
    try {
        call_remote(f.target("admin", "other_ca"), "query", {});
        ADD_FAILURE() << "server certificate of another CA accepted";
    } catch (const ConnectError& e) {
        EXPECT_NE(std::string(e.what()).find("not issued by --ca"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(f.calls().empty());
}

// ---- refused clients ------------------------------------------------------------------

TEST(RemoteControl, ClientOfAnotherCaIsRefusedAndLogged) {
    Fixture f;
    EXPECT_THROW(call_remote(f.target("stranger"), "query", {}), ConnectError);
    EXPECT_NE(f.wait_log({"refused 127.0.0.1:", "unknown CA", "some other CA"}), "") << f.all_log();
    EXPECT_TRUE(f.calls().empty());
    EXPECT_GE(f.server().clients_refused(), 1u);
}

TEST(RemoteControl, ExpiredClientCertificateIsRefusedAndLogged) {
    Fixture f;
    try {
        call_remote(f.target("expired"), "query", {});
        ADD_FAILURE() << "expired certificate accepted";
    } catch (const ConnectError& e) {
        EXPECT_NE(std::string(e.what()).find("expired"), std::string::npos) << e.what();
    }
    EXPECT_NE(f.wait_log({"refused 127.0.0.1:", "expired client certificate"}), "") << f.all_log();
    EXPECT_TRUE(f.calls().empty());
}

TEST(RemoteControl, ClientWithoutCertificateIsRefusedAndLogged) {
    Fixture f;
    EXPECT_FALSE(tls_without_certificate(f.server().port()));
    EXPECT_NE(f.wait_log({"refused 127.0.0.1:", "no client certificate"}), "") << f.all_log();
    EXPECT_TRUE(f.calls().empty());
}

TEST(RemoteControl, PlainTextClientIsRefusedAndLogged) {
    Fixture f;
    int fd = tcp_connect(f.server().port());
    ASSERT_GE(fd, 0);
    const std::string req = "{\"command\":\"stop\"}\n";
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    std::string answer = read_line(fd);
    ::close(fd);
    EXPECT_NE(answer.find("\"ok\":false"), std::string::npos) << answer;
    EXPECT_NE(answer.find("TLS"), std::string::npos) << answer;
    EXPECT_NE(f.wait_log({"refused 127.0.0.1:", "plain-text client", "{\"command\""}), "") << f.all_log();
    EXPECT_TRUE(f.calls().empty());
}

TEST(RemoteControl, CertificateWithUnlistedCnIsRefusedAndLogged) {
    Fixture f;
    Json r = call_remote(f.target("intruder"), "query", {});
    EXPECT_FALSE(r.find("ok")->as_bool());
    EXPECT_NE(r.get_string("error").find("not authorised"), std::string::npos) << r.dump();
    EXPECT_NE(f.wait_log({"refused 127.0.0.1:", "CN=intruder is not in remote_allow"}), "") << f.all_log();
    EXPECT_TRUE(f.calls().empty());
}

TEST(RemoteControl, StalledHandshakeIsClosedAndLogged) {
    Fixture f(16, 200);
    int fd = tcp_connect(f.server().port());
    ASSERT_GE(fd, 0);
    const unsigned char partial[] = {0x16, 0x03, 0x01};   // a TLS record header that never completes
    ASSERT_EQ(::send(fd, partial, sizeof partial, MSG_NOSIGNAL), 3);
    EXPECT_NE(f.wait_log({"refused 127.0.0.1:", "TLS handshake not finished within 200 ms"}), "") << f.all_log();
    EXPECT_EQ(read_line(fd, 2000), "");   // closed by the server, nothing sent
    ::close(fd);
    // The server still serves others.
    EXPECT_TRUE(call_remote(f.target("admin"), "query", {}).find("ok")->as_bool());
}

TEST(RemoteControl, ClientsBeyondTheLimitAreRefusedOthersServed) {
    Fixture f(2);
    int a = tcp_connect(f.server().port());
    int b = tcp_connect(f.server().port());
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    // Both idle connections are held by the server before the third comes.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    int c = tcp_connect(f.server().port());
    ASSERT_GE(c, 0);
    EXPECT_NE(f.wait_log({"refused 127.0.0.1:", "2 remote clients already connected"}), "") << f.all_log();
    ::close(a);
    ::close(b);
    ::close(c);
    // Once they are gone, a real client is served.
    Json r;
    for (int i = 0; i < 50; ++i) {
        try {
            r = call_remote(f.target("admin"), "query", {});
            break;
        } catch (const std::exception&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    ASSERT_TRUE(r.is_object());
    EXPECT_TRUE(r.find("ok")->as_bool());
}

TEST(RemoteControl, ServerRefusesToStartWithAKeyThatDoesNotMatch) {
    TlsServerOptions o;
    o.listen = "127.0.0.1:0";
    o.cert_file = pki().pem("server");
    o.key_file = pki().key("admin");
    o.ca_file = pki().pem("ca");
    try {
        TlsControlServer s(o, [](const std::string&, const std::vector<std::string>&, const std::string&) { return Json(); });
        ADD_FAILURE() << "started with a mismatched key";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("does not match"), std::string::npos) << e.what();
    }
}

// ---- nlbctl --remote ----------------------------------------------------------------

std::pair<int, std::string> run_nlbctl(const std::vector<std::string>& argv) {
    FILE* out = std::tmpfile();
    FILE* err = std::tmpfile();
    int rc = nlbctl_main(argv, out, err);
    std::string text;
    for (FILE* f : {out, err}) {
        std::rewind(f);
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
        std::fclose(f);
    }
    return {rc, text};
}

TEST(NlbctlRemote, RunsCommandsOverTlsAndReportsRefusals) {
    Fixture f;
    auto args = [&](const char* who, std::vector<std::string> cmd) {
        std::vector<std::string> v = {"--remote", f.address(), "--cert", pki().pem(who), "--key", pki().key(who),
                                      "--ca",     pki().pem("ca"), "--json"};
        v.insert(v.end(), cmd.begin(), cmd.end());
        return v;
    };
    auto [rc, text] = run_nlbctl(args("admin", {"params"}));
    EXPECT_EQ(rc, kExitOk) << text;
    EXPECT_NE(text.find("\"params\""), std::string::npos) << text;

    auto [rc2, text2] = run_nlbctl(args("reader", {"stop"}));
    EXPECT_EQ(rc2, kExitFailed) << text2;
    EXPECT_NE(text2.find("not authorised"), std::string::npos) << text2;

    auto [rc3, text3] = run_nlbctl(args("expired", {"query"}));
    EXPECT_EQ(rc3, kExitConnect) << text3;
    EXPECT_EQ(f.calls(), std::vector<std::string>{"params"});
}

TEST(NlbctlRemote, RemoteNeedsCertKeyAndCa) {
    ParseOutcome p = parse_command_line({"--remote", "127.0.0.1:1", "--cert", "c.pem", "query"});
    EXPECT_FALSE(p.ok);
    EXPECT_NE(p.error.find("--remote needs --cert, --key and --ca"), std::string::npos) << p.error;
    ParseOutcome q = parse_command_line({"--cert", "c.pem", "query"});
    EXPECT_FALSE(q.ok);
    ParseOutcome ok = parse_command_line(
        {"--remote", "h:1", "--cert", "c", "--key", "k", "--ca", "a", "--server-name", "n", "query"});
    ASSERT_TRUE(ok.ok) << ok.error;
    EXPECT_EQ(ok.inv.remote, "h:1");
    EXPECT_EQ(ok.inv.server_name, "n");
}

// ---- [control] in the cluster file ---------------------------------------------------

std::string write_cluster(const std::string& control) {
    const fs::path f = pki().dir / "cluster.toml";
    FILE* out = std::fopen(f.c_str(), "w");
    std::fprintf(out,
                 "[cluster]\nname = \"nlbd.test\"\nvips = [\"192.0.2.10\"]\nstatic_members = [1]\n"
                 "[host]\nid = 1\n%s",
                 control.c_str());
    std::fclose(out);
    return f.string();
}

TEST(ConfigControl, RemoteKeysResolveFilesAndRoles) {
    const std::string file = write_cluster(
        "[control]\nremote_listen = \"127.0.0.1:8443\"\nremote_cert = \"server.pem\"\n"
        "remote_key = \"server.key\"\nremote_ca = \"ca.pem\"\n"
        "remote_allow = { \"CN=ops1\" = \"admin\", mon1 = \"read\" }\n");
    const config::Config cfg = config::load_config(file, std::nullopt);
    EXPECT_EQ(cfg.control.remote_listen, "127.0.0.1:8443");
    EXPECT_EQ(cfg.control.remote_cert, pki().pem("server"));
    EXPECT_EQ(cfg.control.remote_ca, pki().pem("ca"));
    EXPECT_EQ(cfg.control.remote_allow,
              (std::map<std::string, std::string>{{"ops1", "admin"}, {"mon1", "read"}}));
}

TEST(ConfigControl, AllowListFormGivesAdmin) {
    const std::string file = write_cluster(
        "[control]\nremote_listen = \":8443\"\nremote_cert = \"server.pem\"\n"
        "remote_key = \"server.key\"\nremote_ca = \"ca.pem\"\nremote_allow = [\"CN=ops1\", \"ops2\"]\n");
    const config::Config cfg = config::load_config(file, std::nullopt);
    EXPECT_EQ(cfg.control.remote_allow,
              (std::map<std::string, std::string>{{"ops1", "admin"}, {"ops2", "admin"}}));
}

TEST(ConfigControl, NoControlSectionMeansNoRemote) {
    const config::Config cfg = config::load_config(write_cluster(""), std::nullopt);
    EXPECT_TRUE(cfg.control.remote_listen.empty());
}

TEST(ConfigControl, BadRemoteKeysNameLineKeyAndAllowed) {
    struct Case {
        const char* control;
        const char* key;
        const char* words;
    } cases[] = {
        {"[control]\nremote_listen = \"127.0.0.1\"\n", "control.remote_listen", "ADDRESS:PORT"},
        {"[control]\nremote_listen = \"127.0.0.1:0\"\n", "control.remote_listen", "1..65535"},
        {"[control]\nremote_listen = \"127.0.0.1:8443\"\n", "control.remote_cert", "required"},
        {"[control]\nremote_listen = \"127.0.0.1:8443\"\nremote_cert = \"missing.pem\"\n",
         "control.remote_cert", "does not exist"},
        {"[control]\nremote_listen = \"127.0.0.1:8443\"\nremote_cert = \"server.pem\"\n"
         "remote_key = \"server.key\"\nremote_ca = \"ca.pem\"\nremote_allow = { ops1 = \"root\" }\n",
         "control.remote_allow.ops1", "\"read\" or \"admin\""},
        {"[control]\nremote_listen = \"127.0.0.1:8443\"\nremote_cert = \"server.pem\"\n"
         "remote_key = \"server.key\"\nremote_ca = \"ca.pem\"\nremote_allow = []\n",
         "control.remote_allow", "nobody"},
        {"[control]\nremote_cert = \"server.pem\"\n", "control.remote_listen", "remote_listen"},
        {"[control]\nremote_port = 1\n", "control.remote_port", "unknown key"},
    };
    for (const Case& c : cases) {
        try {
            config::load_config(write_cluster(c.control), std::nullopt);
            ADD_FAILURE() << "accepted: " << c.control;
        } catch (const config::ConfigError& e) {
            EXPECT_EQ(e.key(), c.key) << e.what();
            EXPECT_GT(e.line(), 0u) << e.what();
            EXPECT_NE(std::string(e.what()).find(c.words), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace nlbd::ctl
