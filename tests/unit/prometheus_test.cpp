// Prometheus text exposition (format 0.0.4) and the /metrics HTTP answers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "nlbd/config/config.hpp"
#include "nlbd/daemon/prometheus.hpp"

namespace {

using nlbd::ctl::Json;
using namespace nlbd::daemon;

struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;  // unescaped values
    std::string value;
};

// A strict validator of the text format: returns the problems found (empty
// when valid) and the samples it parsed.
struct Validation {
    std::vector<std::string> problems;
    std::vector<Sample> samples;
    std::map<std::string, std::string> types;
};

Validation validate_exposition(const std::string& text) {
    Validation v;
    static const std::regex kName("[a-zA-Z_:][a-zA-Z0-9_:]*");
    static const std::regex kValue("[-+]?([0-9]+(\\.[0-9]*)?([eE][-+]?[0-9]+)?|Inf|NaN)");
    std::set<std::string> help_seen, type_seen, families_closed;
    std::string current;  // family of the last sample / TYPE
    if (text.empty() || text.back() != '\n') v.problems.push_back("text does not end with a newline");
    std::istringstream in(text);
    std::string line;
    unsigned n = 0;
    while (std::getline(in, line)) {
        ++n;
        const std::string where = "line " + std::to_string(n) + " '" + line + "': ";
        if (line.empty()) {
            v.problems.push_back(where + "empty line");
            continue;
        }
        if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
            const bool help = line[2] == 'H';
            const std::string rest = line.substr(7);
            const std::string name = rest.substr(0, rest.find(' '));
            if (!std::regex_match(name, kName)) v.problems.push_back(where + "bad family name");
            auto& seen = help ? help_seen : type_seen;
            if (!seen.insert(name).second) v.problems.push_back(where + "repeated");
            if (families_closed.count(name) != 0)
                v.problems.push_back(where + "metadata after the family's samples ended");
            if (!help) {
                const std::string type = rest.substr(rest.find(' ') + 1);
                if (type != "counter" && type != "gauge" && type != "untyped")
                    v.problems.push_back(where + "bad type");
                v.types[name] = type;
                if (help_seen.count(name) == 0) v.problems.push_back(where + "TYPE before HELP");
            }
            if (current != name && !current.empty()) families_closed.insert(current);
            current = name;
            continue;
        }
        if (line[0] == '#') continue;
        // name{labels} value
        Sample s;
        size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        s.name = line.substr(0, i);
        if (!std::regex_match(s.name, kName)) v.problems.push_back(where + "bad metric name");
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (i < line.size() && line[i] != '}') {
                size_t eq = line.find('=', i);
                if (eq == std::string::npos) {
                    v.problems.push_back(where + "label without '='");
                    break;
                }
                const std::string lname = line.substr(i, eq - i);
                if (!std::regex_match(lname, std::regex("[a-zA-Z_][a-zA-Z0-9_]*")))
                    v.problems.push_back(where + "bad label name '" + lname + "'");
                if (s.labels.count(lname) != 0) v.problems.push_back(where + "repeated label");
                i = eq + 1;
                if (i >= line.size() || line[i] != '"') {
                    v.problems.push_back(where + "label value not quoted");
                    break;
                }
                ++i;
                std::string value;
                bool closed = false;
                while (i < line.size()) {
                    const char c = line[i++];
                    if (c == '"') {
                        closed = true;
                        break;
                    }
                    if (c == '\\') {
                        if (i >= line.size()) break;
                        const char e = line[i++];
                        if (e == '\\') value += '\\';
                        else if (e == '"') value += '"';
                        else if (e == 'n') value += '\n';
                        else v.problems.push_back(where + "bad escape \\" + std::string(1, e));
                    } else {
                        value += c;
                    }
                }
                if (!closed) v.problems.push_back(where + "unterminated label value");
                s.labels[lname] = value;
                if (i < line.size() && line[i] == ',') ++i;
            }
            if (i >= line.size() || line[i] != '}') v.problems.push_back(where + "no '}'");
            ++i;
        }
        if (i >= line.size() || line[i] != ' ') {
            v.problems.push_back(where + "no space before the value");
            continue;
        }
        s.value = line.substr(i + 1);
        if (!std::regex_match(s.value, kValue)) v.problems.push_back(where + "bad value");
        if (s.name != current) v.problems.push_back(where + "sample outside its family block");
        if (type_seen.count(s.name) == 0) v.problems.push_back(where + "no TYPE for the sample");
        if (v.types[s.name] == "counter" && s.name.size() > 6 &&
            s.name.substr(s.name.size() - 6) != "_total")
            v.problems.push_back(where + "counter without _total");
        v.samples.push_back(std::move(s));
    }
    return v;
}

std::string value_of(const Validation& v, const std::string& name,
                     const std::map<std::string, std::string>& want) {
    for (const Sample& s : v.samples) {
        if (s.name != name) continue;
        bool match = true;
        for (const auto& [k, val] : want) {
            auto it = s.labels.find(k);
            match = match && it != s.labels.end() && it->second == val;
        }
        if (match) return s.value;
    }
    return "<missing>";
}

// A stats document shaped like nlbd's --stats-json (stats.hpp).
Json sample_stats() {
    return Json::parse(R"({
      "host": 2, "cluster": "mail.ehlo.dk", "mode": "unicast", "started": true, "rx_total": 100,
      "verdicts": {"accepted": 60, "not_owner": 30, "malformed": 10},
      "parse_errors": {"truncated_ethernet": 4, "bad_ipv4_header": 6},
      "rules": [
        {"index": 0, "vip": "all", "ports": "443-443", "protocol": "tcp", "mode": "multiple",
         "matched": 80, "accepted": 50, "not_owner": 30, "dropped": 0, "buckets_owned": 2048},
        {"index": 1, "vip": "2001:db8::\"x\\y\nz", "ports": "25-25", "protocol": "both",
         "mode": "disabled", "matched": 5, "accepted": 0, "not_owner": 0, "dropped": 5,
         "buckets_owned": 0}],
      "no_rule": {"matched": 5, "accepted": 5, "not_owner": 0, "dropped": 0},
      "ports": {"wire": {"rx_packets": 100, "rx_bytes": 6400, "tx_packets": 3, "tx_bytes": 180,
                         "tx_dropped": 0, "imissed": 0, "rx_nombuf": 0, "ierrors": 0, "oerrors": 0},
                "local": {"rx_packets": 1, "rx_bytes": 60, "tx_packets": 55, "tx_bytes": 3300,
                          "tx_dropped": 1, "imissed": 0, "rx_nombuf": 0, "ierrors": 0, "oerrors": 0}},
      "local_to_wire": 1,
      "dataplane": {"linearized": 0, "reply_failed": 0, "loops": 12345},
      "fragments": {"datagrams": 1, "inserted": 2, "evicted": 0, "timed_out": 1, "held": 0},
      "membership": {"self": 2, "members": [1, 2], "default_host": 1, "epoch": 7, "buckets": 4096},
      "connections": {"entries": 12, "capacity": 262144, "inserted": 20, "removed": 8,
                      "expired": 0, "evicted": 0, "held_foreign": null,
                      "affinity_entries": 3, "affinity_hits": 5},
      "workers": {"dispatch": "distributor", "count": 2,
                  "per_worker": [{"index": 0, "lcore": 2, "rx_total": 55, "to_local": 30, "loops": 900,
                                  "idle_sleeps": 7, "tx_handed": 0, "tx_drained": 25, "connections": 5},
                                 {"index": 1, "lcore": 3, "rx_total": 45, "to_local": 25, "loops": 800,
                                  "idle_sleeps": 9, "tx_handed": 25, "tx_drained": 0, "connections": 7}],
                  "distributor": {"lcore": 1, "rx_packets": 100, "dispatch_full": 0, "heartbeats": 0,
                                  "loops": 1000, "idle_sleeps": 3, "dispatched": [55, 45]}},
      "heartbeats": {"sent": 40, "tx_failed": 0, "received": 38, "accepted": 36,
                     "bad_hmac": 1, "replayed": 1, "igmp_sent": 0, "snapshots_published": 3},
      "cluster_state": {"host": 2, "membership": "dynamic", "state": "converged",
                        "host_state": "started", "converged": true, "link": "up", "epoch": 7,
                        "default_host": 1, "members": [1, 2],
                        "peers": [{"id": 1, "state": "started", "alive": true}],
                        "mismatches": [],
                        "rules": [{"rule": 0, "mode": "multiple", "state": "active",
                                   "health": {"check": "https", "state": "down", "checks": 9,
                                              "ok": 5, "failed": 4, "transitions": 2,
                                              "drained_by_health": true}},
                                  {"rule": 1, "mode": "disabled", "state": "draining"}],
                        "epoch_changes": 2}
    })");
}

TEST(PrometheusEscape, EscapesBackslashQuoteAndNewlineOnly) {
    EXPECT_EQ(prometheus_escape("a\\b\"c\nd\te"), "a\\\\b\\\"c\\nd\te");
    EXPECT_EQ(prometheus_escape("plain 10.0.0.1"), "plain 10.0.0.1");
}

TEST(PrometheusFormat, OutputPassesTheTextFormatValidator) {
    const std::string text = format_metrics(sample_stats());
    const Validation v = validate_exposition(text);
    for (const std::string& p : v.problems) ADD_FAILURE() << p;
    EXPECT_GT(v.samples.size(), 40u);
}

TEST(PrometheusFormat, HelpAndTypeOncePerFamily) {
    const std::string text = format_metrics(sample_stats());
    std::map<std::string, int> help, type;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("# HELP ", 0) == 0) ++help[line.substr(7, line.find(' ', 7) - 7)];
        if (line.rfind("# TYPE ", 0) == 0) ++type[line.substr(7, line.find(' ', 7) - 7)];
    }
    ASSERT_FALSE(help.empty());
    EXPECT_EQ(help.size(), type.size());
    for (const auto& [name, count] : help) {
        EXPECT_EQ(count, 1) << name;
        EXPECT_EQ(type[name], 1) << name;
    }
    EXPECT_EQ(help["nlbd_packets_total"], 1);
    EXPECT_EQ(help["nlbd_rule_packets_total"], 1);
}

TEST(PrometheusFormat, CountersCarryTheStatsValues) {
    const Validation v = validate_exposition(format_metrics(sample_stats()));
    EXPECT_EQ(v.types.at("nlbd_packets_total"), "counter");
    EXPECT_EQ(value_of(v, "nlbd_packets_total", {{"verdict", "accepted"}}), "60");
    EXPECT_EQ(value_of(v, "nlbd_packets_total", {{"verdict", "not_owner"}}), "30");
    EXPECT_EQ(value_of(v, "nlbd_parse_errors_total", {{"reason", "bad_ipv4_header"}}), "6");
    EXPECT_EQ(value_of(v, "nlbd_rule_packets_total",
                       {{"rule", "0"}, {"vip", "all"}, {"ports", "443-443"}, {"result", "accepted"}}),
              "50");
    EXPECT_EQ(value_of(v, "nlbd_rule_packets_total", {{"rule", "none"}, {"result", "accepted"}}), "5");
    EXPECT_EQ(value_of(v, "nlbd_rule_matched_total", {{"rule", "0"}}), "80");
    EXPECT_EQ(value_of(v, "nlbd_port_packets_total", {{"port", "wire"}, {"dir", "rx"}}), "100");
    EXPECT_EQ(value_of(v, "nlbd_port_packets_total", {{"port", "local"}, {"dir", "tx"}}), "55");
    EXPECT_EQ(value_of(v, "nlbd_port_errors_total", {{"port", "local"}, {"kind", "tx_dropped"}}), "1");
    EXPECT_EQ(value_of(v, "nlbd_buckets_owned", {{"rule", "0"}}), "2048");
    EXPECT_EQ(value_of(v, "nlbd_connections", {}), "12");
    EXPECT_EQ(value_of(v, "nlbd_connections_inserted_total", {}), "20");
    EXPECT_EQ(value_of(v, "nlbd_connections_affinity_entries", {}), "3");
    EXPECT_EQ(v.types.at("nlbd_connections_affinity_entries"), "gauge");
    EXPECT_EQ(value_of(v, "nlbd_connections_affinity_hits_total", {}), "5");
    EXPECT_EQ(value_of(v, "nlbd_heartbeats_sent_total", {}), "40");
    EXPECT_EQ(value_of(v, "nlbd_heartbeats_rejected_total", {{"reason", "bad_hmac"}}), "1");
    EXPECT_EQ(value_of(v, "nlbd_fragments_timed_out_total", {}), "1");
    EXPECT_EQ(value_of(v, "nlbd_fragments_held", {}), "0");
    EXPECT_EQ(v.types.at("nlbd_fragments_held"), "gauge");
}

TEST(PrometheusFormat, WorkersAndDistributorPerWorker) {
    const Validation v = validate_exposition(format_metrics(sample_stats()));
    EXPECT_EQ(v.types.at("nlbd_worker_frames_total"), "counter");
    EXPECT_EQ(value_of(v, "nlbd_worker_frames_total", {{"worker", "0"}}), "55");
    EXPECT_EQ(value_of(v, "nlbd_worker_frames_total", {{"worker", "1"}}), "45");
    EXPECT_EQ(value_of(v, "nlbd_worker_connections", {{"worker", "1"}}), "7");
    EXPECT_EQ(v.types.at("nlbd_worker_connections"), "gauge");
    EXPECT_EQ(value_of(v, "nlbd_distributor_dispatched_total", {{"worker", "1"}}), "45");
}

TEST(PrometheusFormat, ClusterGaugesFollowTheQueryResult) {
    const Validation v = validate_exposition(format_metrics(sample_stats()));
    EXPECT_EQ(value_of(v, "nlbd_cluster_converged", {}), "1");
    EXPECT_EQ(value_of(v, "nlbd_cluster_epoch", {}), "7");
    EXPECT_EQ(value_of(v, "nlbd_cluster_members", {}), "2");
    EXPECT_EQ(value_of(v, "nlbd_cluster_default_host", {}), "1");
    EXPECT_EQ(value_of(v, "nlbd_cluster_state", {{"state", "converged"}}), "1");
    EXPECT_EQ(value_of(v, "nlbd_cluster_peer_alive", {{"peer", "1"}}), "1");
    EXPECT_EQ(value_of(v, "nlbd_cluster_mismatches", {}), "0");
    EXPECT_EQ(value_of(v, "nlbd_rule_state", {{"rule", "1"}, {"state", "draining"}}), "1");
    EXPECT_EQ(v.types.at("nlbd_cluster_epoch"), "gauge");
}

TEST(PrometheusFormat, HealthChecksAppearPerRule) {
    const Validation v = validate_exposition(format_metrics(sample_stats()));
    EXPECT_TRUE(v.problems.empty());
    EXPECT_EQ(value_of(v, "nlbd_rule_health_up", {{"rule", "0"}, {"check", "https"}}), "0");
    EXPECT_EQ(value_of(v, "nlbd_rule_health_checks_total", {{"rule", "0"}, {"result", "failed"}}), "4");
    EXPECT_EQ(value_of(v, "nlbd_rule_health_transitions_total", {{"rule", "0"}}), "2");
    EXPECT_EQ(value_of(v, "nlbd_rule_drained_by_health", {{"rule", "0"}}), "1");
    EXPECT_EQ(value_of(v, "nlbd_rule_health_up", {{"rule", "1"}}), "<missing>");
}

TEST(PrometheusFormat, LabelValuesAreEscapedAndRoundTrip) {
    const std::string text = format_metrics(sample_stats());
    EXPECT_NE(text.find("vip=\"2001:db8::\\\"x\\\\y\\nz\""), std::string::npos);
    const Validation v = validate_exposition(text);
    EXPECT_TRUE(v.problems.empty());
    EXPECT_EQ(value_of(v, "nlbd_rule_packets_total",
                       {{"vip", "2001:db8::\"x\\y\nz"}, {"result", "dropped"}}),
              "5");
}

TEST(PrometheusFormat, StaticClusterWithoutQueryDetailsStillValid) {
    Json doc = sample_stats();
    doc["cluster_state"] = Json::parse(
        R"({"host":1,"membership":"static","state":"converged_default","host_state":"started",
            "converged":true,"epoch":1,"members":[1,2,3],"default_host":1})");
    const Validation v = validate_exposition(format_metrics(doc));
    EXPECT_TRUE(v.problems.empty());
    EXPECT_EQ(value_of(v, "nlbd_cluster_members", {}), "3");
    EXPECT_EQ(value_of(v, "nlbd_rule_state", {{"rule", "1"}}), "1");
}

TEST(PrometheusFormat, AnnouncedVipsAreOneGaugePerConfiguredVip) {
    Json doc = sample_stats();
    doc["cluster_state"] = Json::parse(
        R"({"host":1,"membership":"static","state":"converged_default","host_state":"started",
            "converged":true,"epoch":1,"members":[1],"default_host":1,
            "announce":{"daemon":"bird","vips":["10.99.0.10","10.99.0.11"],"wanted":["10.99.0.10"],
                        "announced":["10.99.0.10"],"state":"announced","failures":3}})");
    const Validation v = validate_exposition(format_metrics(doc));
    EXPECT_TRUE(v.problems.empty());
    EXPECT_EQ(value_of(v, "nlbd_announced", {{"vip", "10.99.0.10"}}), "1");
    EXPECT_EQ(value_of(v, "nlbd_announced", {{"vip", "10.99.0.11"}}), "0");
    EXPECT_EQ(v.types.at("nlbd_announced"), "gauge");
    EXPECT_EQ(value_of(v, "nlbd_announce_failures_total", {}), "3");
    // Without [announce]: no family at all.
    const Validation w = validate_exposition(format_metrics(sample_stats()));
    EXPECT_EQ(w.types.count("nlbd_announced"), 0u);
}

TEST(MetricsWriter, RefusesAFamilyWrittenTwice) {
    MetricsWriter w;
    w.family("nlbd_x_total", "counter", "x");
    w.sample({}, int64_t{1});
    EXPECT_THROW(w.family("nlbd_x_total", "counter", "x"), std::logic_error);
}

TEST(PrometheusValidator, CatchesBrokenExposition) {
    // The validator itself must reject what it is meant to catch.
    EXPECT_FALSE(validate_exposition("# HELP a x\n# TYPE a gauge\na{l=\"x} 1\n").problems.empty());
    EXPECT_FALSE(validate_exposition("# HELP a x\n# TYPE a gauge\na 1\n# HELP a x\n").problems.empty());
    EXPECT_FALSE(validate_exposition("a 1\n").problems.empty());
    EXPECT_FALSE(validate_exposition("# HELP a x\n# TYPE a gauge\na{l=\"\\t\"} 1\n").problems.empty());
    EXPECT_FALSE(validate_exposition("# HELP a x\n# TYPE a counter\na one\n").problems.empty());
    EXPECT_TRUE(validate_exposition("# HELP a_total x\n# TYPE a_total counter\na_total{l=\"\\\"\"} 1\n")
                    .problems.empty());
}

TEST(PrometheusHttp, MetricsPathAnswersWithTheTextFormat) {
    const HttpReply r = handle_http_request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                                            [] { return std::string("m 1\n"); });
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "m 1\n");
    EXPECT_NE(r.content_type.find("version=0.0.4"), std::string::npos);
    const std::string wire = serialize(r);
    EXPECT_EQ(wire.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    EXPECT_NE(wire.find("Content-Length: 4\r\n"), std::string::npos);
    EXPECT_EQ(wire.substr(wire.size() - 4), "m 1\n");
    EXPECT_EQ(handle_http_request("GET /metrics?x=1 HTTP/1.0\r\n\r\n", [] { return std::string(); }).status,
              200);
}

TEST(PrometheusHttp, HealthzIs200WhenHealthyAnd503Otherwise) {
    bool healthy = false;
    HttpHandlers h([] { return std::string("m 1\n"); },
                   [&] { return HttpHandlers::Health{healthy, healthy ? "converged" : "converging"}; });
    HttpReply r = handle_http_request("GET /healthz HTTP/1.1\r\n\r\n", h);
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "unavailable: converging\n");
    EXPECT_NE(serialize(r).find("HTTP/1.1 503 Service Unavailable\r\n"), std::string::npos);
    healthy = true;
    r = handle_http_request("GET /healthz?verbose HTTP/1.1\r\n\r\n", h);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok: converged\n");
    EXPECT_EQ(handle_http_request("HEAD /healthz HTTP/1.1\r\n\r\n", h).status, 200);
    EXPECT_EQ(handle_http_request("POST /healthz HTTP/1.1\r\n\r\n", h).status, 405);
    // Without a health handler there is no /healthz.
    EXPECT_EQ(handle_http_request("GET /healthz HTTP/1.1\r\n\r\n", HttpHandlers([] { return std::string(); })).status,
              404);
}

TEST(PrometheusHttp, OtherPathsAre404AndOtherMethods405) {
    bool called = false;
    auto m = [&] {
        called = true;
        return std::string("m 1\n");
    };
    EXPECT_EQ(handle_http_request("GET / HTTP/1.1\r\n\r\n", m).status, 404);
    EXPECT_EQ(handle_http_request("GET /metricsx HTTP/1.1\r\n\r\n", m).status, 404);
    const HttpReply post = handle_http_request("POST /metrics HTTP/1.1\r\n\r\n", m);
    EXPECT_EQ(post.status, 405);
    EXPECT_NE(serialize(post).find("Allow: GET, HEAD\r\n"), std::string::npos);
    EXPECT_EQ(handle_http_request("garbage\r\n\r\n", m).status, 400);
    EXPECT_FALSE(called);
    const HttpReply head = handle_http_request("HEAD /metrics HTTP/1.1\r\n\r\n", m);
    EXPECT_EQ(head.status, 200);
    const std::string wire = serialize(head);
    EXPECT_NE(wire.find("Content-Length: 4\r\n"), std::string::npos);
    EXPECT_EQ(wire.substr(wire.size() - 4), "\r\n\r\n");
}

std::string fetch(uint16_t port, const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return "<connect failed>";
    }
    (void)::send(fd, request.data(), request.size(), 0);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
}

TEST(PrometheusServer, ServesMetricsOverTcpAndStops) {
    auto addr = nlbd::IpAddr::parse("127.0.0.1");
    ASSERT_TRUE(addr);
    PrometheusServer server(*addr, 0, [] { return std::string("nlbd_up 1\n"); });
    ASSERT_NE(server.port(), 0);
    const std::string ok = fetch(server.port(), "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
    EXPECT_EQ(ok.substr(ok.size() - 10), "nlbd_up 1\n");
    const std::string missing = fetch(server.port(), "GET /x HTTP/1.1\r\n\r\n");
    EXPECT_EQ(missing.rfind("HTTP/1.1 404", 0), 0u) << missing;
    server.stop();
    EXPECT_EQ(fetch(server.port(), "GET /metrics HTTP/1.1\r\n\r\n").find("200 OK"), std::string::npos);
}

TEST(PrometheusServer, RefusesAnAddressInUse) {
    auto addr = nlbd::IpAddr::parse("127.0.0.1");
    PrometheusServer a(*addr, 0, [] { return std::string(); });
    EXPECT_THROW(PrometheusServer(*addr, a.port(), [] { return std::string(); }), std::runtime_error);
}

// [telemetry] in the cluster file (config.hpp TelemetryConfig).
nlbd::config::Config load_with(const std::string& telemetry) {
    char tmpl[] = "/tmp/nlbd_telemetry_cfg_XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd >= 0) ::close(fd);
    std::ofstream(tmpl) << "[cluster]\nname = \"mail.ehlo.dk\"\nvips = [\"10.0.0.10\"]\n\n[host]\nid = 1\n"
                        << telemetry;
    struct Remove {
        const char* p;
        ~Remove() { std::remove(p); }
    } remove{tmpl};
    return nlbd::config::load_config(tmpl, std::nullopt);
}

TEST(TelemetryConfig, AbsentSectionMeansNoEndpointAndDpdkTelemetryOn) {
    const auto cfg = load_with("");
    EXPECT_FALSE(cfg.telemetry.prometheus);
    EXPECT_TRUE(cfg.telemetry.dpdk_telemetry);
}

TEST(TelemetryConfig, ListenAddressesParse) {
    auto cfg = load_with("[telemetry]\nprometheus_listen = \"127.0.0.1:9101\"\ndpdk_telemetry = false\n");
    EXPECT_TRUE(cfg.telemetry.prometheus);
    EXPECT_EQ(cfg.telemetry.prometheus_port, 9101);
    EXPECT_EQ(cfg.telemetry.prometheus_address.to_string(), "127.0.0.1");
    EXPECT_FALSE(cfg.telemetry.dpdk_telemetry);
    cfg = load_with("[telemetry]\nprometheus_listen = \"[::1]:9200\"\n");
    EXPECT_EQ(cfg.telemetry.prometheus_port, 9200);
    EXPECT_EQ(cfg.telemetry.prometheus_address.family, nlbd::Family::v6);
}

TEST(TelemetryConfig, BadListenValuesNameTheKey) {
    for (const char* bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "::1:9101", "host:9101",
                            "[10.0.0.1]:9101", "127.0.0.1:9x"}) {
        try {
            load_with(std::string("[telemetry]\nprometheus_listen = \"") + bad + "\"\n");
            ADD_FAILURE() << bad << " accepted";
        } catch (const nlbd::config::ConfigError& e) {
            EXPECT_EQ(e.key(), "telemetry.prometheus_listen") << bad;
            EXPECT_EQ(e.line(), 8u) << bad;
        }
    }
    EXPECT_THROW(load_with("[telemetry]\nprometheus = true\n"), nlbd::config::ConfigError);
}

}  // namespace
