// Control channel: JSON codec, control socket server + client, nlbctl parsing and printers.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "nlbd/ctl/cli.hpp"
#include "nlbd/ctl/client.hpp"
#include "nlbd/ctl/json.hpp"
#include "nlbd/ctl/server.hpp"
#include "nlbd/ctl/target.hpp"

using nlbd::ctl::Json;
using nlbd::ctl::JsonError;
namespace ctl = nlbd::ctl;
namespace fs = std::filesystem;

namespace {

// ---- JSON ------------------------------------------------------------------

TEST(Json, DumpThenParseReturnsTheSameValue) {
    Json v = Json::object();
    v["null"] = nullptr;
    v["t"] = true;
    v["f"] = false;
    v["int"] = -42;
    v["big"] = INT64_MAX;
    v["small"] = INT64_MIN;
    v["u"] = uint64_t{12345678901234ull};
    v["pi"] = 3.141592653589793;
    v["two"] = 2.0;
    v["str"] = "h\"e\\l\nl\to\x01\x7f é 😀";
    v["arr"] = Json::array({1, "x", Json::array(), Json::object()});
    v["obj"]["nested"]["deep"] = "yes";
    std::string text = v.dump();
    Json back = Json::parse(text);
    EXPECT_EQ(back, v);
    EXPECT_EQ(back.dump(), text);
    EXPECT_TRUE(back.find("two")->type() == Json::Type::number) << "2.0 must stay a double";
    EXPECT_TRUE(back.find("big")->is_int());
    EXPECT_EQ(back.find("big")->as_int(), INT64_MAX);
    EXPECT_EQ(back.find("small")->as_int(), INT64_MIN);
    EXPECT_EQ(Json::parse(v.dump_pretty()), v);
}

TEST(Json, DumpIsAlwaysOneLine) {
    Json v = Json::object();
    v["s"] = std::string("a\nb\r\n\x0b\x1f", 7);
    v["a"] = Json::array({"x\ny"});
    std::string t = v.dump();
    EXPECT_EQ(t.find('\n'), std::string::npos);
    EXPECT_EQ(t.find('\r'), std::string::npos);
    EXPECT_EQ(Json::parse(t), v);
}

TEST(Json, EscapesAndSurrogatePairsDecodeToUtf8) {
    Json v = Json::parse(R"(["\u0041\u00e9\u20ac\ud83d\ude00", "\/\b\f\n\r\t\"\\"])");
    EXPECT_EQ(v.at(0).as_string(), "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    EXPECT_EQ(v.at(1).as_string(), "/\b\f\n\r\t\"\\");
}

TEST(Json, NumbersKeepIntegersExactAndOverflowToDouble) {
    EXPECT_TRUE(Json::parse("9223372036854775807").is_int());
    Json over = Json::parse("9223372036854775808");
    EXPECT_EQ(over.type(), Json::Type::number);
    EXPECT_DOUBLE_EQ(over.as_double(), 9223372036854775808.0);
    EXPECT_EQ(Json::parse("-0").as_int(), 0);
    EXPECT_DOUBLE_EQ(Json::parse("1.5e3").as_double(), 1500.0);
    EXPECT_EQ(Json::parse("1e3").as_int(), 1000);   // exact-valued double
    EXPECT_THROW(Json::parse("1.5").as_int(), JsonError);
    EXPECT_DOUBLE_EQ(Json::parse("1e-400").as_double(), 0.0);  // underflow is 0
}

TEST(Json, HostileInputsAreRejectedWithJsonError) {
    const std::vector<std::string> bad = {
        "", " ", "{", "}", "[", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":}", "01", "1.", ".5",
        "-", "+1", "1e", "1e+", "0x10", "NaN", "Infinity", "nul", "tru", "truex", "[1] x", "\"abc", "\"\\x\"",
        "\"\\u12\"", "\"\\u12G4\"", "\"\\ud800\"", "\"\\ud800\\u0041\"", "\"\\udc00\"", "\"\xff\"", "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"", std::string("\"a\0b\"", 5), "\"tab\there\"",
        "{\"a\":1,\"a\":2}", "1e999", "-1e999", "[1 2]", "{\"a\":1 \"b\":2}", "\"\\", std::string(1, '\0'),
    };
    for (const auto& t : bad) EXPECT_THROW(Json::parse(t), JsonError) << "input: " << Json(t).dump();
}

TEST(Json, NestingDepthIsLimited) {
    nlbd::ctl::ParseLimits lim;
    lim.max_depth = 64;
    std::string ok = std::string(64, '[') + std::string(64, ']');
    EXPECT_NO_THROW(Json::parse(ok, lim));
    std::string deep = std::string(65, '[') + std::string(65, ']');
    EXPECT_THROW(Json::parse(deep, lim), JsonError);
    // Far beyond any stack: rejected, not crashed.
    std::string huge(1'000'000, '[');
    EXPECT_THROW(Json::parse(huge), JsonError);
    std::string objs;
    for (int i = 0; i < 100000; ++i) objs += "{\"a\":";
    EXPECT_THROW(Json::parse(objs), JsonError);
}

TEST(Json, InputSizeIsLimited) {
    nlbd::ctl::ParseLimits lim;
    lim.max_bytes = 16;
    EXPECT_NO_THROW(Json::parse("\"0123456789ab\"", lim));
    EXPECT_THROW(Json::parse("\"0123456789abcdef\"", lim), JsonError);
}

TEST(Json, ErrorNamesTheByteOffset) {
    try {
        Json::parse("[1, 2, x]");
        FAIL() << "no exception";
    } catch (const JsonError& e) {
        EXPECT_NE(std::string(e.what()).find("byte 7"), std::string::npos) << e.what();
    }
}

TEST(Json, LenientGettersFallBackOnMissingOrWrongType) {
    Json v = Json::parse(R"({"n":5,"s":"x","b":true,"d":2.5})");
    EXPECT_EQ(v.get_int("n"), 5);
    EXPECT_EQ(v.get_int("s", -1), -1);
    EXPECT_EQ(v.get_int("missing", 9), 9);
    EXPECT_EQ(v.get_int("d"), 2);
    EXPECT_EQ(v.get_string("n", "fb"), "fb");
    EXPECT_TRUE(v.get_bool("b"));
    EXPECT_FALSE(v.get_bool("s"));
    EXPECT_EQ(Json(5).find("x"), nullptr);
    EXPECT_THROW(Json(5).as_string(), JsonError);
    EXPECT_THROW(Json::array().at(0), JsonError);
    Json s("str");
    EXPECT_THROW(s["k"], JsonError);
    EXPECT_THROW(s.push_back(1), JsonError);
}

TEST(Json, RandomGarbageNeverCrashesAndParsedValuesRoundTrip) {
    std::mt19937 rng(12345);
    const std::string alphabet = "{}[]\",:0123456789-+.eEtrufalsn \\u\x01\xc3\xa9\xff";
    const std::vector<std::string> seeds = {R"({"command":"query","args":["a",1,true,null,-2.5e3]})",
                                            R"([[[{"a":{"b":[]}}]]])", R"("\ud83d\ude00")"};
    int parsed = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string s;
        if (i % 2 == 0) {
            s = seeds[rng() % seeds.size()];
            int edits = 1 + static_cast<int>(rng() % 4);
            for (int k = 0; k < edits && !s.empty(); ++k) {
                size_t at = rng() % s.size();
                switch (rng() % 3) {
                case 0: s[at] = alphabet[rng() % alphabet.size()]; break;
                case 1: s.erase(at, 1); break;
                default: s.insert(at, 1, alphabet[rng() % alphabet.size()]);
                }
            }
        } else {
            size_t len = rng() % 24;
            for (size_t k = 0; k < len; ++k) s += alphabet[rng() % alphabet.size()];
        }
        try {
            Json v = Json::parse(s);
            ++parsed;
            ASSERT_EQ(Json::parse(v.dump()), v) << s;
        } catch (const JsonError&) {
        }
    }
    EXPECT_GT(parsed, 0);
}

// ---- rule targets ----------------------------------------------------------

TEST(Target, FilterEndpointsTakeAnOptionalPort) {
    auto a = ctl::parse_endpoint("10.0.0.5");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->address, "10.0.0.5");
    EXPECT_FALSE(a->port);
    auto b = ctl::parse_endpoint("10.0.0.5:40000");
    ASSERT_TRUE(b && b->port);
    EXPECT_EQ(*b->port, 40000);
    auto c = ctl::parse_endpoint("[2001:db8::5]:443");
    ASSERT_TRUE(c && c->port);
    EXPECT_EQ(c->address, "2001:db8::5");
    auto d = ctl::parse_endpoint("2001:db8::5");  // unbracketed IPv6: no port
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->port);
    for (const char* bad : {"", "10.0.0.5:", "10.0.0.5:70000", "[2001:db8::5]:", "[10.0.0.5]:80", "host:80", "[::1]x"})
        EXPECT_FALSE(ctl::parse_endpoint(bad)) << bad;
    // The registry's check: a destination needs a port, the protocol is tcp or udp.
    EXPECT_EQ(ctl::check_filter_args({"10.0.0.5", "10.0.0.10:80"}), "");
    EXPECT_EQ(ctl::check_filter_args({"10.0.0.5:1", "[2001:db8::10]:80", "udp"}), "");
    EXPECT_NE(ctl::check_filter_args({"10.0.0.5", "10.0.0.10"}), "");
    EXPECT_NE(ctl::check_filter_args({"10.0.0.5", "10.0.0.10:80", "sctp"}), "");
}

TEST(RuleTarget, AcceptsNlbForms) {
    auto all = ctl::parse_rule_target("all");
    ASSERT_TRUE(all);
    EXPECT_TRUE(all->all_ports);
    EXPECT_TRUE(all->vip.empty());
    auto port = ctl::parse_rule_target("443");
    ASSERT_TRUE(port);
    EXPECT_FALSE(port->all_ports);
    EXPECT_EQ(port->port, 443);
    auto v4 = ctl::parse_rule_target("10.0.0.1:80");
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->vip, "10.0.0.1");
    EXPECT_EQ(v4->port, 80);
    auto v6 = ctl::parse_rule_target("[2001:db8::1]:0");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->vip, "2001:db8::1");
    EXPECT_EQ(v6->port, 0);
    auto vall = ctl::parse_rule_target("10.0.0.1:all");
    ASSERT_TRUE(vall);
    EXPECT_TRUE(vall->all_ports);
    EXPECT_EQ(vall->vip, "10.0.0.1");
    EXPECT_EQ(ctl::parse_rule_target("65535")->port, 65535);
}

TEST(RuleTarget, RejectsMalformedTargets) {
    for (const char* t : {"", "65536", "-1", "80x", "x", ":80", "10.0.0.1:", "2001:db8::1:443", "[2001:db8::1]",
                          "[2001:db8::1]80", "[10.0.0.1]:80", "10.0.0.1:99999", "host.example:80", "000000443"})
        EXPECT_FALSE(ctl::parse_rule_target(t)) << t;
}

// ---- server and client -------------------------------------------------------

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/nlbd_ctl_test.XXXXXX";
        const char* p = ::mkdtemp(tmpl);
        if (!p) std::abort();
        path_ = p;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }
private:
    std::string path_;
};

Json echo_handler(const std::string& command, const std::vector<std::string>& args, const std::string&) {
    if (command == "fail") throw std::runtime_error("it failed: " + (args.empty() ? std::string() : args[0]));
    if (command == "nothing") return Json();
    Json r = Json::object();
    r["command"] = command;
    Json a = Json::array();
    for (const auto& s : args) a.push_back(s);
    r["args"] = std::move(a);
    return r;
}

ctl::ServerOptions quiet(ctl::ServerOptions o = {}) {
    o.log = [](const std::string&) {};
    return o;
}

// Raw client: connect, send bytes, read everything until EOF or `want_lines` lines.
class RawClient {
public:
    explicit RawClient(const std::string& path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~RawClient() { ::close(fd_); }
    bool ok() const { return ok_; }
    void send(const std::string& s) {
        size_t off = 0;
        while (off < s.size()) {
            ssize_t w = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            if (w <= 0) return;
            off += static_cast<size_t>(w);
        }
    }
    // Reads lines until `n` lines arrived, EOF, or 10 s pass. Returns the lines.
    std::vector<std::string> read_lines(size_t n, bool* eof = nullptr) {
        std::vector<std::string> lines;
        if (eof) *eof = false;
        for (int rounds = 0; rounds < 1000 && lines.size() < n; ++rounds) {
            size_t nl;
            while ((nl = buf_.find('\n')) != std::string::npos && lines.size() < n) {
                lines.push_back(buf_.substr(0, nl));
                buf_.erase(0, nl + 1);
            }
            if (lines.size() >= n) break;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 10000) <= 0) break;
            char b[4096];
            ssize_t r = ::recv(fd_, b, sizeof b, 0);
            if (r <= 0) {
                if (eof) *eof = true;
                break;
            }
            buf_.append(b, static_cast<size_t>(r));
        }
        return lines;
    }
    // True when the server closes the connection (within 10 s).
    bool wait_eof() {
        bool eof = false;
        read_lines(SIZE_MAX, &eof);
        return eof;
    }
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
private:
    int fd_ = -1;
    bool ok_ = false;
    std::string buf_;
};

TEST(ControlServer, CallRoundTripsCommandArgsAndResult) {
    TempDir dir;
    ctl::ControlServer server(dir / "nlbd.sock", echo_handler, quiet());
    Json r = ctl::call(server.path(), "query", {"a", "b c", "\"q\"\n"});
    ASSERT_TRUE(r.get_bool("ok"));
    const Json* res = r.find("result");
    ASSERT_NE(res, nullptr);
    EXPECT_EQ(res->get_string("command"), "query");
    EXPECT_EQ(*res->find("args"), Json::array({"a", "b c", "\"q\"\n"}));
    Json n = ctl::call(server.path(), "nothing", {});
    EXPECT_TRUE(n.get_bool("ok"));
    EXPECT_TRUE(n.find("result")->is_null());
    EXPECT_EQ(server.requests_served(), 2u);
}

TEST(ControlServer, HandlerExceptionBecomesErrorAndConnectionStaysUsable) {
    TempDir dir;
    ctl::ControlServer server(dir / "s.sock", echo_handler, quiet());
    RawClient c(server.path());
    ASSERT_TRUE(c.ok());
    c.send("{\"command\":\"fail\",\"args\":[\"x\"]}\n{\"command\":\"query\"}\n");
    auto lines = c.read_lines(2);
    ASSERT_EQ(lines.size(), 2u);
    Json e = Json::parse(lines[0]);
    EXPECT_FALSE(e.get_bool("ok", true));
    EXPECT_EQ(e.get_string("error"), "it failed: x");
    Json ok = Json::parse(lines[1]);
    EXPECT_TRUE(ok.get_bool("ok"));
    EXPECT_EQ(ok.find("result")->get_string("command"), "query");
}

TEST(ControlServer, MalformedRequestsGetErrorResponses) {
    TempDir dir;
    std::atomic<int> calls{0};
    ctl::ControlServer server(dir / "s.sock",
                              [&](const std::string&, const std::vector<std::string>&, const std::string&) {
                                  ++calls;
                                  return Json(1);
                              },
                              quiet());
    RawClient c(server.path());
    const std::vector<std::string> bad = {"not json", "[1]", "{\"command\":5}", "{\"command\":\"\"}",
                                          "{\"command\":\"x\",\"args\":[1]}", "{\"command\":\"x\",\"args\":\"a\"}",
                                          "{\"args\":[]}", "{\"command\":\"a\",\"command\":\"b\"}"};
    std::string all;
    for (const auto& b : bad) all += b + "\n";
    all += "\n   \n";  // blank lines are ignored
    all += "{\"command\":\"fine\"}\r\n";
    c.send(all);
    auto lines = c.read_lines(bad.size() + 1);
    ASSERT_EQ(lines.size(), bad.size() + 1);
    for (size_t i = 0; i < bad.size(); ++i) {
        Json r = Json::parse(lines[i]);
        EXPECT_FALSE(r.get_bool("ok", true)) << bad[i];
        EXPECT_FALSE(r.get_string("error").empty()) << bad[i];
    }
    EXPECT_TRUE(Json::parse(lines.back()).get_bool("ok"));
    EXPECT_EQ(calls.load(), 1);
}

TEST(ControlServer, OversizedRequestIsRefusedAndConnectionClosed) {
    TempDir dir;
    ctl::ServerOptions o;
    o.max_request_bytes = 1024;
    std::atomic<int> calls{0};
    ctl::ControlServer server(dir / "s.sock",
                              [&](const std::string&, const std::vector<std::string>&, const std::string&) {
                                  ++calls;
                                  return Json(1);
                              },
                              quiet(o));
    RawClient c(server.path());
    c.send("{\"command\":\"query\",\"args\":[\"" + std::string(8192, 'a'));
    bool eof = false;
    auto lines = c.read_lines(2, &eof);
    ASSERT_EQ(lines.size(), 1u);
    Json r = Json::parse(lines[0]);
    EXPECT_FALSE(r.get_bool("ok", true));
    EXPECT_NE(r.get_string("error").find("exceeds 1024"), std::string::npos);
    EXPECT_TRUE(eof);
    EXPECT_EQ(calls.load(), 0);
    // The server still serves others.
    EXPECT_TRUE(ctl::call(server.path(), "query", {}).get_bool("ok"));
}

TEST(ControlServer, LastRequestWithoutNewlineIsAnsweredAtEof) {
    TempDir dir;
    ctl::ControlServer server(dir / "s.sock", echo_handler, quiet());
    RawClient c(server.path());
    c.send("{\"command\":\"query\"}");
    c.shutdown_write();
    auto lines = c.read_lines(1);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_TRUE(Json::parse(lines[0]).get_bool("ok"));
}

TEST(ControlServer, ConcurrentClientsAllGetTheirOwnAnswers) {
    TempDir dir;
    ctl::ControlServer server(dir / "s.sock", echo_handler, quiet());
    // A stalled client holding a partial request must not block the others.
    RawClient stalled(server.path());
    stalled.send("{\"command\":\"qu");
    constexpr int kThreads = 8, kCalls = 40;
    std::atomic<int> good{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < kCalls; ++i) {
                std::string tag = std::to_string(t) + ":" + std::to_string(i);
                try {
                    Json r = ctl::call(server.path(), "echo", {tag});
                    const Json* res = r.find("result");
                    if (res && res->find("args") && res->find("args")->size() == 1 &&
                        res->find("args")->at(0).as_string() == tag)
                        ++good;
                } catch (const std::exception&) {
                }
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(good.load(), kThreads * kCalls);
    stalled.send("ery\"}\n");
    auto lines = stalled.read_lines(1);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_TRUE(Json::parse(lines[0]).get_bool("ok"));
}

TEST(ControlServer, ClientsBeyondTheLimitAreRefused) {
    TempDir dir;
    ctl::ServerOptions o;
    o.max_clients = 2;
    ctl::ControlServer server(dir / "s.sock", echo_handler, quiet(o));
    RawClient a(server.path()), b(server.path());
    // Make sure both are accepted before the third arrives.
    a.send("{\"command\":\"x\"}\n");
    b.send("{\"command\":\"x\"}\n");
    ASSERT_EQ(a.read_lines(1).size(), 1u);
    ASSERT_EQ(b.read_lines(1).size(), 1u);
    RawClient c(server.path());
    bool eof = false;
    auto lines = c.read_lines(2, &eof);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_FALSE(Json::parse(lines[0]).get_bool("ok", true));
    EXPECT_TRUE(eof);
    EXPECT_GE(server.clients_refused(), 1u);
}

TEST(ControlServer, IdleClientIsDisconnected) {
    TempDir dir;
    ctl::ServerOptions o;
    o.client_timeout_ms = 100;
    ctl::ControlServer server(dir / "s.sock", echo_handler, quiet(o));
    RawClient c(server.path());
    c.send("{\"comm");
    EXPECT_TRUE(c.wait_eof());
}

TEST(ControlServer, SocketIsMode0600InsideCreatedDirectoryMode0700) {
    TempDir dir;
    std::string path = dir / "run/nlbd/nlbd.sock";
    mode_t old = ::umask(0);  // the modes must not depend on the umask
    ctl::ControlServer server(path, echo_handler, quiet());
    ::umask(old);
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    ASSERT_EQ(::stat((dir / "run/nlbd").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    ASSERT_EQ(::stat((dir / "run").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST(ControlServer, StopUnlinksSocketAndClientReportsMissingPath) {
    TempDir dir;
    std::string path = dir / "s.sock";
    {
        ctl::ControlServer server(path, echo_handler, quiet());
        EXPECT_TRUE(fs::exists(path));
        server.stop();
        EXPECT_FALSE(fs::exists(path));
        server.stop();  // idempotent
    }
    try {
        ctl::call(path, "query", {});
        FAIL() << "connected to a stopped server";
    } catch (const ctl::ConnectError& e) {
        std::string m = e.what();
        EXPECT_NE(m.find(path), std::string::npos) << m;
        EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
    }
}

TEST(ControlServer, StaleSocketIsReplaced) {
    TempDir dir;
    std::string path = dir / "s.sock";
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(fd);  // the file stays, nobody listens
    try {
        ctl::call(path, "query", {});
        FAIL();
    } catch (const ctl::ConnectError& e) {
        EXPECT_NE(std::string(e.what()).find("nobody is listening"), std::string::npos) << e.what();
    }
    ctl::ControlServer server(path, echo_handler, quiet());
    EXPECT_TRUE(ctl::call(path, "query", {}).get_bool("ok"));
}

TEST(ControlServer, LiveSocketIsNotStolen) {
    TempDir dir;
    std::string path = dir / "s.sock";
    ctl::ControlServer first(path, echo_handler, quiet());
    EXPECT_THROW(ctl::ControlServer(path, echo_handler, quiet()), std::runtime_error);
    EXPECT_TRUE(ctl::call(path, "query", {}).get_bool("ok"));
}

TEST(ControlServer, NonSocketFileIsNeverRemoved) {
    TempDir dir;
    std::string path = dir / "s.sock";
    { std::FILE* f = std::fopen(path.c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
    EXPECT_THROW(ctl::ControlServer(path, echo_handler, quiet()), std::runtime_error);
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(ControlServer, OtherUidsAreRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
    TempDir dir;
    std::string path = dir / "s.sock";
    ::chmod(dir.path().c_str(), 0755);
    std::atomic<int> calls{0};
    ctl::ControlServer server(path,
                              [&](const std::string&, const std::vector<std::string>&, const std::string&) {
                                  ++calls;
                                  return Json(1);
                              },
                              quiet());
    ::chmod(path.c_str(), 0666);  // only SO_PEERCRED stands in the way now
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // Child: only async-signal-safe calls. Exit 0 = refused (EOF, no answer).
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ::_exit(11);
        const char req[] = "{\"command\":\"query\"}\n";
        ::send(fd, req, sizeof req - 1, MSG_NOSIGNAL);
        char b[64];
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10000) <= 0) ::_exit(12);
        ssize_t r = ::recv(fd, b, sizeof b, 0);
        ::_exit(r <= 0 ? 0 : 13);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(calls.load(), 0);
    EXPECT_GE(server.clients_refused(), 1u);
    EXPECT_TRUE(ctl::call(path, "query", {}).get_bool("ok"));  // root still served
}

// ---- nlbctl ------------------------------------------------------------------

ctl::ParseOutcome parse(std::vector<std::string> argv) { return ctl::parse_command_line(argv); }

TEST(Nlbctl, UsageErrorsAreReported) {
    EXPECT_FALSE(parse({}).ok);
    EXPECT_FALSE(parse({"frobnicate"}).ok);
    EXPECT_FALSE(parse({"query", "extra"}).ok);
    EXPECT_FALSE(parse({"enable"}).ok);
    EXPECT_FALSE(parse({"enable", "80", "81"}).ok);
    EXPECT_FALSE(parse({"drain", "99999"}).ok);
    EXPECT_FALSE(parse({"disable", "2001:db8::1:80"}).ok);
    EXPECT_FALSE(parse({"--socket"}).ok);
    EXPECT_FALSE(parse({"--timeout", "abc", "query"}).ok);
    EXPECT_FALSE(parse({"--timeout=0", "query"}).ok);
    EXPECT_FALSE(parse({"--bogus", "query"}).ok);
    auto o = parse({"enable"});
    EXPECT_NE(o.error.find("enable <vip:port|port|all>"), std::string::npos) << o.error;
}

TEST(Nlbctl, OptionsAndArgumentsAreParsed) {
    auto o = parse({"--socket", "/tmp/x.sock", "enable", "10.0.0.1:443", "--json"});
    ASSERT_TRUE(o.ok) << o.error;
    EXPECT_EQ(o.inv.socket, "/tmp/x.sock");
    EXPECT_TRUE(o.inv.json);
    EXPECT_EQ(o.inv.command, "enable");
    EXPECT_EQ(o.inv.args, std::vector<std::string>{"10.0.0.1:443"});
    auto eq = parse({"--socket=/a.sock", "-j", "--timeout=250", "drain", "all"});
    ASSERT_TRUE(eq.ok) << eq.error;
    EXPECT_EQ(eq.inv.socket, "/a.sock");
    EXPECT_EQ(eq.inv.timeout_ms, 250);
    EXPECT_TRUE(parse({"--help"}).inv.help);
    EXPECT_TRUE(parse({"help"}).ok);
    ::unsetenv("NLBCTL_SOCKET");
    EXPECT_EQ(parse({"query"}).inv.socket, ctl::kDefaultSocketPath);
    ::setenv("NLBCTL_SOCKET", "/env.sock", 1);
    EXPECT_EQ(parse({"query"}).inv.socket, "/env.sock");
    EXPECT_EQ(parse({"-s", "/opt.sock", "query"}).inv.socket, "/opt.sock");
    ::unsetenv("NLBCTL_SOCKET");
}

TEST(Nlbctl, DrainstopTimeoutIsTheCommandsOwnOption) {
    auto o = parse({"drainstop", "--timeout", "30"});
    ASSERT_TRUE(o.ok) << o.error;
    EXPECT_EQ(o.inv.args, (std::vector<std::string>{"30"}));
    EXPECT_EQ(o.inv.timeout_ms, 10000);  // nlbctl's own --timeout untouched
    auto p = parse({"--timeout", "2000", "drainstop", "--timeout=5"});
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.inv.args, (std::vector<std::string>{"5"}));
    EXPECT_EQ(p.inv.timeout_ms, 2000);
    EXPECT_FALSE(parse({"drainstop", "--timeout", "0"}).ok);
    EXPECT_FALSE(parse({"drainstop", "--timeout", "soon"}).ok);
    EXPECT_FALSE(parse({"drainstop", "--timeout"}).ok);
}

TEST(Nlbctl, QueryClusterIsTheClusterCommand) {
    auto o = parse({"query", "--cluster"});
    ASSERT_TRUE(o.ok) << o.error;
    EXPECT_EQ(o.inv.command, "cluster");
    EXPECT_TRUE(o.inv.args.empty());
    EXPECT_FALSE(parse({"stats", "--cluster"}).ok);
}

TEST(Nlbctl, EveryRegistryCommandParsesWithItsMinimumArguments) {
    for (const ctl::Command& c : ctl::kCommands) {
        std::vector<std::string> argv{std::string(c.name)};
        for (const std::string& a : ctl::example_args(c)) argv.push_back(a);
        auto o = parse(argv);
        EXPECT_TRUE(o.ok) << c.name << ": " << o.error;
        EXPECT_EQ(ctl::find_command(c.name), &c);
        EXPECT_NE(ctl::printer_for(c.name), nullptr) << c.name;
    }
    for (const char* name : {"query", "display", "params", "start", "stop", "drainstop", "suspend", "resume",
                             "enable", "disable", "drain", "reload", "stats"})
        EXPECT_NE(ctl::find_command(name), nullptr) << name;
}

// Captures what a function writes to a FILE*.
struct Capture {
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* f = ::open_memstream(&buf, &len);
    std::string text() {
        std::fflush(f);
        return std::string(buf, len);
    }
    ~Capture() {
        std::fclose(f);
        std::free(buf);
    }
};

TEST(Nlbctl, PrintersCopeWithMissingAndMistypedFields) {
    const std::vector<Json> shapes = {
        Json(), Json::object(), Json::array(), Json(5), Json("text"),
        Json::parse(R"({"state":5,"members":"x","peers":[1,{"id":"a"}],"rules":{"a":1},"mismatches":[{}, 3],
                       "verdicts":[1],"ports":{"wire":7},"membership":3,"rx_total":"x","dataplane":[]})"),
    };
    for (const ctl::CommandPrinter& p : ctl::printer_table())
        for (const auto& s : shapes) {
            Capture out;
            EXPECT_NO_THROW(p.print(out.f, s)) << p.name << " " << s.dump();
            EXPECT_FALSE(out.text().empty()) << p.name << " " << s.dump();
        }
}

Json sample_query() {
    return Json::parse(R"({
      "host": 1, "cluster": "mail", "state": "converged", "host_state": "started", "epoch": 7,
      "members": [1, 2, 3], "default_host": 1, "converged": true, "held_connections": 12,
      "peers": [{"id": 2, "state": "started", "last_seen_ms": 120, "epoch": 7, "mismatch": false},
                {"id": 4, "state": "started", "last_seen_ms": 80, "epoch": 3, "mismatch": "port rules differ"}],
      "mismatches": [{"host": 4, "reason": "port rule fingerprint differs"}],
      "rules": [{"index": 0, "vip": "all", "ports": "443-443", "protocol": "tcp", "mode": "multiple",
                 "state": "enabled", "buckets_owned": 1366, "buckets": 4096, "dirty": 3}],
      "future_field": {"x": 1}
    })");
}

TEST(Nlbctl, QueryPrintsNlbStyleSummaryAndTables) {
    Capture out;
    ctl::printer_for("query")(out.f, sample_query());
    std::string t = out.text();
    EXPECT_NE(t.find("Host 1 converged as default with hosts 1, 2, 3 at epoch 7"), std::string::npos) << t;
    EXPECT_NE(t.find("1366/4096"), std::string::npos) << t;
    EXPECT_NE(t.find("host 4: port rule fingerprint differs"), std::string::npos) << t;
    EXPECT_NE(t.find("port rules differ"), std::string::npos) << t;
    EXPECT_NE(t.find("future_field"), std::string::npos) << t;
    Capture conv;
    ctl::printer_for("query")(conv.f, Json::parse(R"({"host":2,"state":"converging","epoch":9})"));
    EXPECT_NE(conv.text().find("Host 2 is converging (epoch 9)"), std::string::npos) << conv.text();
}

TEST(Nlbctl, StatsPrintsCounterTables) {
    Json s = Json::parse(R"({"host":1,"cluster":"c","mode":"unicast","started":true,"rx_total":10,
      "verdicts":{"accepted":7,"not_owner":3,"malformed":0},"parse_errors":{"truncated_ethernet":0},
      "rules":[{"index":0,"vip":"10.0.0.1","ports":"80-80","protocol":"tcp","mode":"multiple","matched":10,
                "accepted":7,"not_owner":3,"dropped":0,"buckets_owned":2048}],
      "no_rule":{"matched":0,"accepted":0,"not_owner":0,"dropped":0},
      "ports":{"wire":{"rx_packets":10,"rx_bytes":640},"local":{"tx_packets":7}},
      "dataplane":{"loops":5},"fragments":{"held":0},
      "membership":{"self":1,"members":[1,2],"default_host":1,"epoch":2,"buckets":4096},
      "connections":{"tracked":4,"evicted":1}})");
    Capture out;
    ctl::printer_for("stats")(out.f, s);
    std::string t = out.text();
    EXPECT_NE(t.find("accepted"), std::string::npos) << t;
    EXPECT_EQ(t.find("malformed"), std::string::npos) << "zero verdicts are hidden\n" << t;
    EXPECT_NE(t.find("2048"), std::string::npos) << t;
    EXPECT_NE(t.find("evicted=1"), std::string::npos) << t;
    EXPECT_NE(t.find("members 1, 2"), std::string::npos) << t;
}

TEST(Nlbctl, MainReturnsUsageConnectFailedAndOkCodes) {
    TempDir dir;
    {
        Capture out, err;
        EXPECT_EQ(ctl::nlbctl_main({"bogus"}, out.f, err.f), ctl::kExitUsage);
        EXPECT_NE(err.text().find("unknown command"), std::string::npos);
    }
    std::string path = dir / "none.sock";
    {
        Capture out, err;
        EXPECT_EQ(ctl::nlbctl_main({"--socket", path, "query"}, out.f, err.f), ctl::kExitConnect);
        EXPECT_NE(err.text().find(path), std::string::npos) << err.text();
    }
    ctl::ControlServer server(path,
                              [](const std::string& cmd, const std::vector<std::string>& args, const std::string&) -> Json {
                                  if (cmd == "query") return sample_query();
                                  if (cmd == "drain") return Json::parse(R"({"message":"rules drained","rules":[0]})");
                                  throw std::runtime_error("host is suspended; only resume and query are allowed" +
                                                           std::string(args.empty() ? "" : "!"));
                              },
                              quiet());
    {
        Capture out, err;
        EXPECT_EQ(ctl::nlbctl_main({"--socket", path, "query"}, out.f, err.f), ctl::kExitOk);
        EXPECT_NE(out.text().find("converged as default"), std::string::npos) << out.text();
    }
    {
        Capture out, err;
        EXPECT_EQ(ctl::nlbctl_main({"--socket", path, "--json", "query"}, out.f, err.f), ctl::kExitOk);
        EXPECT_EQ(Json::parse(out.text()), sample_query());
    }
    {
        Capture out, err;
        EXPECT_EQ(ctl::nlbctl_main({"--socket", path, "drain", "443"}, out.f, err.f), ctl::kExitOk);
        EXPECT_NE(out.text().find("rules drained"), std::string::npos) << out.text();
    }
    {
        Capture out, err;
        EXPECT_EQ(ctl::nlbctl_main({"--socket", path, "start"}, out.f, err.f), ctl::kExitFailed);
        EXPECT_NE(err.text().find("start failed: host is suspended"), std::string::npos) << err.text();
    }
}

}  // namespace

namespace {

// The schema nlbd's cluster control actually sends (src/daemon/cluster_control.cpp).
TEST(Nlbctl, QueryPrintsTheDaemonsDynamicSchema) {
    Json q = Json::parse(R"({"host":2,"cluster":"lab","membership":"dynamic","state":"converged_default",
      "host_state":"started","converged":true,"epoch":4,"view":[1,2],"default_host":2,"members":[1,2],
      "peers":[{"id":1,"state":"started","alive":true,"member":true,"excluded":false,"last_seen_ms":12.75,
                "epoch":4,"same_map":true,"held_foreign":0},
               {"id":3,"state":"started","alive":true,"member":false,"excluded":true,"last_seen_ms":3.2,
                "epoch":1,"same_map":false,"held_foreign":null}],
      "mismatches":[{"kind":"rules_fingerprint","host":3,"text":"port rules differ"}],
      "rules":[{"rule":0,"mode":"multiple","state":"draining","buckets_owned":2048,"buckets_dirty":5},
               {"rule":1,"mode":"single","state":"enabled","buckets_owned":0,"buckets_dirty":0,"single_owner":1}],
      "buckets":4096,"held_foreign":null,"epoch_changes":3})");
    Capture out;
    ctl::printer_for("query")(out.f, q);
    std::string t = out.text();
    EXPECT_NE(t.find("Host 2 converged as default with hosts 1, 2 at epoch 4"), std::string::npos) << t;
    EXPECT_NE(t.find("2048/4096"), std::string::npos) << t;
    EXPECT_NE(t.find("13 ms ago"), std::string::npos) << t;
    EXPECT_NE(t.find("excluded"), std::string::npos) << t;
    EXPECT_NE(t.find("host 3: rules_fingerprint (port rules differ)"), std::string::npos) << t;
    EXPECT_NE(t.find("Held connections (in buckets now owned by others): unknown"), std::string::npos) << t;
    EXPECT_NE(t.find("epoch_changes: 3"), std::string::npos) << t;
    EXPECT_EQ(t.find("VIP"), std::string::npos) << "columns absent from every row are left out\n" << t;
}

TEST(Nlbctl, QueryNamesRulesThatDifferWithTheirHostsAndTheVersionInForce) {
    Json q = Json::parse(R"({"host":1,"cluster":"lab","membership":"dynamic","state":"converging",
      "host_state":"started","converged":false,"epoch":5,"members":[1,2,3],
      "rule_differences":[{"rule":"10.0.0.10:9000/tcp","versions":[
          {"content":"mode multiple, affinity none, timeout 0 s","hosts":[1],"active":false},
          {"content":"mode multiple, affinity single, timeout 0 s","hosts":[2,3],"active":true}]}]})");
    Capture out;
    ctl::printer_for("query")(out.f, q);
    const std::string t = out.text();
    EXPECT_NE(t.find("Rules that differ between hosts"), std::string::npos) << t;
    EXPECT_NE(t.find("10.0.0.10:9000/tcp"), std::string::npos) << t;
    EXPECT_NE(t.find("  mode multiple, affinity none, timeout 0 s: hosts [1]"), std::string::npos) << t;
    EXPECT_NE(t.find("* mode multiple, affinity single, timeout 0 s: hosts [2,3]"), std::string::npos) << t;
}

TEST(Nlbctl, ActionPrinterShowsTheTransition) {
    Capture out;
    ctl::printer_for("drainstop")(out.f, Json::parse(R"({"previous":"started","state":"draining"})"));
    EXPECT_NE(out.text().find("ok: host was started, is now draining"), std::string::npos) << out.text();
}

}  // namespace
