#include "nlbd/daemon/prometheus.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace nlbd::daemon {

std::string prometheus_escape(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
    return out;
}

void MetricsWriter::family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    if (std::find(seen_.begin(), seen_.end(), name_) != seen_.end())
        throw std::logic_error("metric family " + name_ + " written twice");
    seen_.push_back(name_);
    // HELP text escaping: '\' and newline.
    std::string h;
    for (char c : help) {
        if (c == '\\') h += "\\\\";
        else if (c == '\n') h += "\\n";
        else h += c;
    }
    out_ += "# HELP " + name_ + " " + h + "\n# TYPE " + name_ + " " + std::string(type) + "\n";
}

void MetricsWriter::sample_prefix(const Labels& labels) {
    out_ += name_;
    if (!labels.empty()) {
        out_ += '{';
        for (size_t i = 0; i < labels.size(); ++i) {
            if (i != 0) out_ += ',';
            out_ += labels[i].first + "=\"" + prometheus_escape(labels[i].second) + "\"";
        }
        out_ += '}';
    }
    out_ += ' ';
}

void MetricsWriter::sample(const Labels& labels, int64_t value) {
    sample_prefix(labels);
    out_ += std::to_string(value) + "\n";
}

void MetricsWriter::sample(const Labels& labels, double value) {
    sample_prefix(labels);
    if (std::isnan(value)) out_ += "NaN";
    else if (std::isinf(value)) out_ += value > 0 ? "+Inf" : "-Inf";
    else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", value);
        out_ += buf;
    }
    out_ += '\n';
}

namespace {

using ctl::Json;

int64_t num(const Json* j) {
    if (j == nullptr) return 0;
    if (j->is_int()) return j->as_int();
    if (j->is_bool()) return j->as_bool() ? 1 : 0;
    if (j->is_number()) return static_cast<int64_t>(j->as_double());
    return 0;
}

// Sanitises a JSON key into a metric-name fragment ([a-z0-9_]).
std::string name_part(std::string_view key) {
    std::string s;
    for (char c : key) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        s += ok ? c : '_';
    }
    return s;
}

// One counter family with one label whose values are the integer members of obj.
void labelled_counters(MetricsWriter& w, const Json* obj, const std::string& name,
                       const std::string& label, const std::string& help,
                       const Labels& base = {}) {
    if (obj == nullptr || !obj->is_object()) return;
    w.family(name, "counter", help);
    for (const auto& [k, v] : obj->as_object()) {
        if (!v.is_number()) continue;
        Labels l = base;
        l.emplace_back(label, k);
        w.sample(l, num(&v));
    }
}

// One family per integer member: nlbd_<prefix>_<key>[_total].
void member_families(MetricsWriter& w, const Json* obj, const std::string& prefix,
                     const std::string& help_what,
                     std::initializer_list<std::string_view> gauges = {}) {
    if (obj == nullptr || !obj->is_object()) return;
    for (const auto& [k, v] : obj->as_object()) {
        if (!v.is_number()) continue;
        const bool gauge = std::find(gauges.begin(), gauges.end(), k) != gauges.end();
        const std::string name = "nlbd_" + prefix + "_" + name_part(k) + (gauge ? "" : "_total");
        w.family(name, gauge ? "gauge" : "counter", help_what + ": " + k);
        w.sample({}, num(&v));
    }
}

void cluster_metrics(MetricsWriter& w, const Json& doc) {
    const Json* cs = doc.find("cluster_state");
    const Json* mem = doc.find("membership");
    if (cs == nullptr || !cs->is_object()) cs = nullptr;

    w.family("nlbd_cluster_converged", "gauge",
             "1 when this host's view of the cluster has converged");
    w.sample({}, cs ? static_cast<int64_t>(cs->get_bool("converged")) : int64_t{0});
    w.family("nlbd_cluster_epoch", "gauge", "Convergence epoch of the published bucket map");
    w.sample({}, cs && cs->contains("epoch") ? cs->get_int("epoch") : mem ? mem->get_int("epoch") : 0);
    const Json* members = cs ? cs->find("members") : nullptr;
    if (members == nullptr && mem != nullptr) members = mem->find("members");
    w.family("nlbd_cluster_members", "gauge", "Hosts in the converged membership");
    w.sample({}, static_cast<int64_t>(members && members->is_array() ? members->size() : 0));
    w.family("nlbd_cluster_default_host", "gauge", "Host id of the default host (0: none)");
    w.sample({}, cs ? cs->get_int("default_host") : mem ? mem->get_int("default_host") : 0);
    // VIP announcement ([announce], docs/scale-out.md): per configured VIP,
    // 1 while the routing daemon has it from this host.
    if (const Json* an = cs ? cs->find("announce") : nullptr; an && an->is_object()) {
        w.family("nlbd_announced", "gauge",
                 "1 while this host announces the VIP over BGP (the routing daemon took it)");
        const Json* vips = an->find("vips");
        const Json* done = an->find("announced");
        if (vips && vips->is_array())
            for (const Json& v : vips->as_array()) {
                bool on = false;
                if (done && done->is_array())
                    for (const Json& d : done->as_array()) on = on || (d.is_string() && d.as_string() == v.as_string());
                w.sample({{"vip", v.is_string() ? v.as_string() : std::string()}}, static_cast<int64_t>(on));
            }
        w.family("nlbd_announce_failures_total", "counter",
                 "Include-file writes or birdc runs that failed (each retried)");
        w.sample({}, an->get_int("failures"));
    }
    if (cs != nullptr) {
        w.family("nlbd_cluster_state", "gauge",
                 "Cluster state of this host (the labelled state is 1)");
        w.sample({{"state", cs->get_string("state", "unknown")},
                  {"host_state", cs->get_string("host_state", "unknown")}},
                 int64_t{1});
        if (const Json* link = cs->find("link"); link && link->is_string()) {
            w.family("nlbd_cluster_link_up", "gauge", "1 when the wire port's link is up");
            w.sample({}, static_cast<int64_t>(link->as_string() == "up"));
        }
        const Json* peers = cs->find("peers");
        if (peers && peers->is_array() && peers->size() > 0) {
            w.family("nlbd_cluster_peer_alive", "gauge",
                     "1 while heartbeats from the peer arrive within the tolerance");
            for (const Json& p : peers->as_array())
                w.sample({{"peer", std::to_string(p.get_int("id"))},
                          {"state", p.get_string("state", "unknown")}},
                         static_cast<int64_t>(p.get_bool("alive")));
        }
        if (const Json* mm = cs->find("mismatches"); mm && mm->is_array()) {
            w.family("nlbd_cluster_mismatches", "gauge",
                     "Configuration mismatches detected with peers");
            w.sample({}, static_cast<int64_t>(mm->size()));
        }
        for (const char* k : {"epoch_changes", "map_adoptions", "chunks_sent", "link_changes"})
            if (const Json* v = cs->find(k); v && v->is_number()) {
                w.family(std::string("nlbd_cluster_") + k + "_total", "counter",
                         std::string("Cluster events: ") + k);
                w.sample({}, num(v));
            }
        if (const Json* v = cs->find("dirty_buckets"); v && v->is_number()) {
            w.family("nlbd_cluster_dirty_buckets", "gauge",
                     "Buckets waiting for their connections to drain before moving");
            w.sample({}, num(v));
        }
    }
}

}  // namespace

std::string format_metrics(const ctl::Json& doc) {
    MetricsWriter w;
    w.family("nlbd_info", "gauge", "Host and cluster of this nlbd (always 1)");
    w.sample({{"host", std::to_string(doc.get_int("host"))},
              {"cluster", doc.get_string("cluster")},
              {"mode", doc.get_string("mode")}},
             int64_t{1});
    w.family("nlbd_started", "gauge", "1 when this host handles traffic (started)");
    w.sample({}, static_cast<int64_t>(doc.get_bool("started")));
    if (const Json* v = doc.find("rx_total")) {
        w.family("nlbd_rx_frames_total", "counter", "Frames received on the wire port");
        w.sample({}, num(v));
    }
    labelled_counters(w, doc.find("verdicts"), "nlbd_packets_total", "verdict",
                      "Wire frames by final verdict (every frame lands in exactly one)");
    labelled_counters(w, doc.find("parse_errors"), "nlbd_parse_errors_total", "reason",
                      "Malformed frames by parse error");
    if (const Json* ev = doc.find("events"))
        labelled_counters(w, ev->find("by_kind"), "nlbd_events_total", "kind",
                          "Events of the event log by kind (nlbctl display lists the latest)");

    // Per-rule counters.
    const Json* rules = doc.find("rules");
    const Json* no_rule = doc.find("no_rule");
    auto rule_labels = [](const Json& r) -> Labels {
        return {{"rule", std::to_string(r.get_int("index"))},
                {"vip", r.get_string("vip")},
                {"ports", r.get_string("ports")},
                {"protocol", r.get_string("protocol")}};
    };
    const Labels no_rule_labels = {{"rule", "none"}, {"vip", "any"}, {"ports", "any"},
                                   {"protocol", "any"}};
    if ((rules && rules->is_array()) || (no_rule && no_rule->is_object())) {
        w.family("nlbd_rule_matched_total", "counter",
                 "Frames decided under the port rule (rule=\"none\": VIP traffic no rule matched)");
        if (rules && rules->is_array())
            for (const Json& r : rules->as_array()) w.sample(rule_labels(r), r.get_int("matched"));
        if (no_rule && no_rule->is_object()) w.sample(no_rule_labels, no_rule->get_int("matched"));
        w.family("nlbd_rule_packets_total", "counter",
                 "Frames of the port rule by result (accepted + not_owner + dropped = matched)");
        for (const char* result : {"accepted", "not_owner", "dropped"}) {
            if (rules && rules->is_array())
                for (const Json& r : rules->as_array()) {
                    Labels l = rule_labels(r);
                    l.emplace_back("result", result);
                    w.sample(l, r.get_int(result));
                }
            if (no_rule && no_rule->is_object()) {
                Labels l = no_rule_labels;
                l.emplace_back("result", result);
                w.sample(l, no_rule->get_int(result));
            }
        }
        if (rules && rules->is_array()) {
            // Per-rule state from cluster_state.rules (dynamic membership) by
            // rule index; otherwise the configured mode.
            const Json* cs = doc.find("cluster_state");
            const Json* owned = cs ? cs->find("rules") : nullptr;
            w.family("nlbd_buckets_owned", "gauge",
                     "Buckets of the port rule this host owns (single mode: all or none)");
            for (const Json& r : rules->as_array()) {
                Labels l = rule_labels(r);
                l.emplace_back("mode", r.get_string("mode"));
                w.sample(l, r.get_int("buckets_owned"));
            }
            w.family("nlbd_rule_state", "gauge", "State of the port rule on this host (1)");
            for (const Json& r : rules->as_array()) {
                std::string state = r.get_string("state");
                if (state.empty() && owned && owned->is_array())
                    for (const Json& o : owned->as_array())
                        if (o.get_int("rule", -1) == r.get_int("index")) state = o.get_string("state");
                if (state.empty()) state = r.get_string("mode") == "disabled" ? "disabled" : "active";
                w.sample({{"rule", std::to_string(r.get_int("index"))}, {"state", state}}, int64_t{1});
            }
            // Health checks (cluster_state.rules[].health), when configured.
            std::vector<std::pair<std::string, const Json*>> checks;
            if (owned && owned->is_array())
                for (const Json& o : owned->as_array())
                    if (const Json* h = o.find("health"); h && h->is_object())
                        checks.emplace_back(std::to_string(o.get_int("rule")), h);
            if (!checks.empty()) {
                w.family("nlbd_rule_health_up", "gauge",
                         "1 while the rule's health check is up on this host (0: down or unknown)");
                for (const auto& [rule, h] : checks)
                    w.sample({{"rule", rule}, {"check", h->get_string("check")},
                              {"state", h->get_string("state")}},
                             static_cast<int64_t>(h->get_string("state") == "up"));
                w.family("nlbd_rule_health_checks_total", "counter",
                         "Health probes of the rule by result");
                for (const char* result : {"ok", "failed"})
                    for (const auto& [rule, h] : checks)
                        w.sample({{"rule", rule}, {"result", result}}, h->get_int(result));
                w.family("nlbd_rule_health_transitions_total", "counter",
                         "Up/down transitions of the rule's health check");
                for (const auto& [rule, h] : checks)
                    w.sample({{"rule", rule}}, h->get_int("transitions"));
                w.family("nlbd_rule_drained_by_health", "gauge",
                         "1 while the health check keeps the rule drained on this host");
                for (const auto& [rule, h] : checks)
                    w.sample({{"rule", rule}}, static_cast<int64_t>(h->get_bool("drained_by_health")));
            }
        }
    }
    if (const Json* m = doc.find("membership"); m && m->is_object() && m->contains("buckets")) {
        w.family("nlbd_buckets", "gauge", "Buckets per port rule");
        w.sample({}, m->get_int("buckets"));
    }

    // Ports.
    if (const Json* ports = doc.find("ports"); ports && ports->is_object()) {
        auto each_port = [&](const char* key, const Labels& extra) {
            for (const auto& [role, p] : ports->as_object()) {
                Labels l{{"port", role}};
                l.insert(l.end(), extra.begin(), extra.end());
                w.sample(l, p.get_int(key));
            }
        };
        w.family("nlbd_port_packets_total", "counter", "Packets through the port by direction");
        each_port("rx_packets", {{"dir", "rx"}});
        each_port("tx_packets", {{"dir", "tx"}});
        w.family("nlbd_port_bytes_total", "counter", "Bytes through the port by direction");
        each_port("rx_bytes", {{"dir", "rx"}});
        each_port("tx_bytes", {{"dir", "tx"}});
        w.family("nlbd_port_errors_total", "counter",
                 "Port losses: tx_dropped (not taken by tx_burst), imissed, rx_nombuf, ierrors, "
                 "oerrors");
        for (const char* kind : {"tx_dropped", "imissed", "rx_nombuf", "ierrors", "oerrors"})
            each_port(kind, {{"kind", kind}});
    }
    if (const Json* v = doc.find("local_to_wire")) {
        w.family("nlbd_local_to_wire_total", "counter", "Frames from the local port sent on the wire");
        w.sample({}, num(v));
    }
    member_families(w, doc.find("dataplane"), "dataplane", "Data plane events");
    member_families(w, doc.find("fragments"), "fragments", "IP fragment table", {"held"});

    // Connections: entries / capacity / held_foreign are levels.
    if (const Json* c = doc.find("connections"); c && c->is_object()) {
        w.family("nlbd_connections", "gauge", "TCP connections tracked (connection table entries)");
        w.sample({}, c->get_int("entries"));
        w.family("nlbd_connections_capacity", "gauge", "Connection table capacity");
        w.sample({}, c->get_int("capacity"));
        if (const Json* hf = c->find("held_foreign"); hf && hf->is_number()) {
            w.family("nlbd_connections_held_foreign", "gauge",
                     "Connections held in buckets this host no longer owns");
            w.sample({}, num(hf));
        }
        if (const Json* ae = c->find("affinity_entries"); ae && ae->is_number()) {
            w.family("nlbd_connections_affinity_entries", "gauge",
                     "TCP extended-affinity client entries (held here or marked elsewhere)");
            w.sample({}, num(ae));
        }
        for (const auto& [k, v] : c->as_object()) {
            if (k == "entries" || k == "capacity" || k == "held_foreign" ||
                k == "affinity_entries" || !v.is_number())
                continue;
            w.family("nlbd_connections_" + name_part(k) + "_total", "counter",
                     "Connection table events: " + k);
            w.sample({}, num(&v));
        }
    }

    // Workers (docs/multicore.md): per-worker load and, with a distributor,
    // what it handed to each worker.
    if (const Json* ws = doc.find("workers"); ws && ws->is_object()) {
        if (const Json* pw = ws->find("per_worker"); pw && pw->is_array()) {
            struct Col {
                const char* key;
                const char* name;
                const char* type;
                const char* help;
            };
            static constexpr Col kCols[] = {
                {"rx_total", "nlbd_worker_frames_total", "counter", "Wire frames decided by the worker"},
                {"to_local", "nlbd_worker_to_local_total", "counter", "Frames the worker delivered to the local port"},
                {"loops", "nlbd_worker_loops_total", "counter", "Poll loops of the worker"},
                {"idle_sleeps", "nlbd_worker_idle_sleeps_total", "counter", "Adaptive-idle sleeps of the worker"},
                {"connections", "nlbd_worker_connections", "gauge", "Connections in the worker's table"},
            };
            for (const Col& col : kCols) {
                w.family(col.name, col.type, col.help);
                for (const Json& e : pw->as_array())
                    if (e.is_object())
                        w.sample({{"worker", std::to_string(e.get_int("index"))}}, e.get_int(col.key));
            }
        }
        if (const Json* d = ws->find("distributor"); d && d->is_object()) {
            if (const Json* per = d->find("dispatched"); per && per->is_array()) {
                w.family("nlbd_distributor_dispatched_total", "counter",
                         "Frames the RX distributor handed to each worker");
                int64_t i = 0;
                for (const Json& v : per->as_array())
                    if (v.is_number()) w.sample({{"worker", std::to_string(i++)}}, num(&v));
            }
        }
    }

    // Heartbeats: known counters by name, every other member is a rejection reason.
    if (const Json* hb = doc.find("heartbeats"); hb && hb->is_object()) {
        static constexpr std::string_view kKnown[] = {"sent", "tx_failed", "received", "accepted",
                                                      "igmp_sent", "snapshots_published"};
        for (std::string_view k : kKnown)
            if (const Json* v = hb->find(k)) {
                const std::string name = k == "igmp_sent"             ? "nlbd_igmp_reports_sent_total"
                                         : k == "snapshots_published" ? "nlbd_snapshots_published_total"
                                                                      : "nlbd_heartbeats_" +
                                                                            std::string(k) + "_total";
                w.family(name, "counter", "Heartbeats and control frames: " + std::string(k));
                w.sample({}, num(v));
            }
        w.family("nlbd_heartbeats_rejected_total", "counter",
                 "Heartbeats received but not accepted, by reason");
        for (const auto& [k, v] : hb->as_object()) {
            if (std::find(std::begin(kKnown), std::end(kKnown), k) != std::end(kKnown)) continue;
            if (v.is_number()) w.sample({{"reason", k}}, num(&v));
        }
    }
    cluster_metrics(w, doc);
    return w.text();
}

// ---------------------------------------------------------------------------
// HTTP

HttpReply handle_http_request(std::string_view head, const HttpHandlers& h) {
    HttpReply r;
    r.content_type = "text/plain; charset=utf-8";
    const size_t eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol == std::string_view::npos ? head.size() : eol);
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
        line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) {
        r.status = 400;
        r.body = "bad request\n";
        return r;
    }
    const std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (const size_t q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    const bool healthz = target == "/healthz" && h.healthz;
    if (target != "/metrics" && !healthz) {
        r.status = 404;
        r.body = h.healthz ? "not found: nlbd serves /metrics and /healthz\n" : "not found: nlbd serves /metrics\n";
        return r;
    }
    if (method != "GET" && method != "HEAD") {
        r.status = 405;
        r.body = "method not allowed: use GET\n";
        return r;
    }
    r.head_only = method == "HEAD";
    if (healthz) {
        const HttpHandlers::Health health = h.healthz();
        r.status = health.ok ? 200 : 503;
        r.body = (health.ok ? "ok: " : "unavailable: ") + health.text + "\n";
        return r;
    }
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = h.metrics();
    return r;
}

std::string serialize(const HttpReply& r) {
    const char* reason = r.status == 200   ? "OK"
                         : r.status == 400 ? "Bad Request"
                         : r.status == 404 ? "Not Found"
                         : r.status == 405 ? "Method Not Allowed"
                         : r.status == 503 ? "Service Unavailable"
                                           : "Internal Server Error";
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason + "\r\n";
    out += "Content-Type: " + r.content_type + "\r\n";
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    if (r.status == 405) out += "Allow: GET, HEAD\r\n";
    out += "Connection: close\r\n\r\n";
    if (!r.head_only) out += r.body;
    return out;
}

namespace {

constexpr size_t kMaxHead = 8192;
constexpr int kIoTimeoutMs = 2000;

using SteadyClock = std::chrono::steady_clock;

int remaining_ms(SteadyClock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

PrometheusServer::PrometheusServer(const IpAddr& address, uint16_t port, HttpHandlers handlers)
    : handlers_(std::move(handlers)) {
    const std::string where =
        (address.family == Family::v6 ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
        std::to_string(port);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (address.family == Family::v6) {
        auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(port);
        std::memcpy(&sa->sin6_addr, address.b.data(), 16);
        len = sizeof *sa;
    } else {
        auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
        sa->sin_family = AF_INET;
        sa->sin_port = htons(port);
        std::memcpy(&sa->sin_addr, address.b.data(), 4);
        len = sizeof *sa;
    }
    listen_fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) throw std::runtime_error("prometheus " + where + ": socket: " + std::strerror(errno));
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(listen_fd_, 16) != 0) {
        const int e = errno;
        ::close(listen_fd_);
        throw std::runtime_error("prometheus: cannot listen on " + where + ": " + std::strerror(e));
    }
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &blen);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    if (::pipe2(stop_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
        ::close(listen_fd_);
        throw std::runtime_error(std::string("prometheus: pipe: ") + std::strerror(errno));
    }
    thread_ = std::thread([this] { loop(); });
}

PrometheusServer::~PrometheusServer() {
    stop();
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
}

void PrometheusServer::stop() noexcept {
    if (stopping_.exchange(true)) return;
    const char b = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_pipe_[1], &b, 1);
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);  // refuse new connections from now on
    listen_fd_ = -1;
}

void PrometheusServer::loop() noexcept {
    while (!stopping_.load(std::memory_order_relaxed)) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        const int n = ::poll(fds, 2, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[1].revents != 0) return;
        if ((fds[0].revents & POLLIN) == 0) continue;
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) continue;
        serve(fd);
        ::close(fd);
    }
}

void PrometheusServer::serve(int fd) noexcept {
    // Read the request head (bounded in size and time); a body is ignored.
    std::string head;
    char buf[2048];
    auto deadline = SteadyClock::now() + std::chrono::milliseconds(kIoTimeoutMs);
    while (head.find("\r\n\r\n") == std::string::npos) {
        if (head.size() > kMaxHead) return;
        pollfd p[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        const int ms = remaining_ms(deadline);
        if (ms == 0 || ::poll(p, 2, ms) <= 0 || p[1].revents != 0) return;
        const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (got <= 0) {
            if (head.empty()) return;
            break;  // peer closed after a head without the blank line: try it
        }
        head.append(buf, static_cast<size_t>(got));
    }
    std::string out;
    try {
        out = serialize(handle_http_request(head, handlers_));
    } catch (const std::exception& e) {
        HttpReply r;
        r.status = 500;
        r.content_type = "text/plain; charset=utf-8";
        r.body = std::string("error: ") + e.what() + "\n";
        try {
            out = serialize(r);
        } catch (...) {
            return;
        }
    } catch (...) {
        return;
    }
    size_t sent = 0;
    deadline = SteadyClock::now() + std::chrono::milliseconds(kIoTimeoutMs);
    while (sent < out.size()) {
        pollfd p[2] = {{fd, POLLOUT, 0}, {stop_pipe_[0], POLLIN, 0}};
        const int ms = remaining_ms(deadline);
        if (ms == 0 || ::poll(p, 2, ms) <= 0 || p[1].revents != 0) return;
        const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) return;
        sent += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
}

}  // namespace nlbd::daemon
