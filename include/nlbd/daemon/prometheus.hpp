#pragma once
// Prometheus text exposition (format 0.0.4) of nlbd's counters and state,
// and the small HTTP/1.1 server that answers GET /metrics (SPEC §9,
// docs/telemetry.md). Control plane: allocates and may throw; nothing here
// touches DPDK or the worker.
//
// The metrics are rendered from the --stats-json document (the one
// `nlbctl stats` returns, including "cluster_state"), so /metrics, nlbctl and
// --stats-json can never disagree about what a counter means.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "nlbd/core/types.hpp"
#include "nlbd/ctl/json.hpp"

namespace nlbd::daemon {

// Label value escaping of the text format: '\' -> "\\", '"' -> "\"",
// newline -> "\n"; every other byte is kept as is.
std::string prometheus_escape(std::string_view value);

using Labels = std::vector<std::pair<std::string, std::string>>;

// Writes families in the text format. Contract: the "# HELP" and "# TYPE"
// lines of a family are written once, before its first sample; samples of a
// family are contiguous (the caller emits a family's samples together).
class MetricsWriter {
public:
    // type: "counter" or "gauge". Starts a new family.
    void family(std::string_view name, std::string_view type, std::string_view help);
    // A sample of the current family (name may add a suffix, e.g. _total).
    void sample(const Labels& labels, int64_t value);
    void sample(const Labels& labels, double value);
    const std::string& text() const noexcept { return out_; }

private:
    void sample_prefix(const Labels& labels);
    std::string out_;
    std::string name_;
    std::vector<std::string> seen_;
};

// The whole /metrics body from a stats document (see stats.hpp for its
// schema). Missing members are skipped, so an older document still renders.
std::string format_metrics(const ctl::Json& stats);

struct HttpReply {
    int status = 200;
    std::string content_type;
    std::string body;
    bool head_only = false;  // HEAD: headers of the GET answer, no body
};

// What the HTTP listener serves: /metrics, and /healthz when healthz is set.
struct HttpHandlers {
    // One line and whether this host is healthy: started and converged.
    struct Health {
        bool ok = false;
        std::string text;
    };
    std::function<std::string()> metrics;
    std::function<Health()> healthz;

    HttpHandlers() = default;
    template <class Metrics>
    HttpHandlers(Metrics m, std::function<Health()> h = {}) : metrics(std::move(m)), healthz(std::move(h)) {}
};

// Answers one request head ("GET /metrics HTTP/1.1\r\n..."): 200 with the
// metrics for GET (or HEAD) /metrics (a query string is ignored); for
// /healthz (when handled) 200 "ok: <state>" when the host is started and
// converged, else 503 "unavailable: <state>" (for a load balancer or routing
// daemon in front of the cluster); 404 for another path, 405 (Allow: GET,
// HEAD) for another method, 400 for a line that is not a request. The
// handlers are only called for a GET or HEAD of their path.
HttpReply handle_http_request(std::string_view head, const HttpHandlers& h);
// The bytes on the wire: status line, Content-Type, Content-Length,
// Connection: close, blank line, body.
std::string serialize(const HttpReply& r);

// A bounded HTTP/1.1 server on one thread: poll() on the listening socket
// and a stop pipe; one connection at a time, request head at most 8 KiB,
// 2 s to receive it and 2 s to send the answer, then the connection is
// closed. Throws std::runtime_error (naming the address) when it cannot
// listen. metrics() runs on the server thread.
class PrometheusServer {
public:
    PrometheusServer(const IpAddr& address, uint16_t port, HttpHandlers handlers);
    ~PrometheusServer();  // stops and joins
    PrometheusServer(const PrometheusServer&) = delete;
    PrometheusServer& operator=(const PrometheusServer&) = delete;

    uint16_t port() const noexcept { return port_; }  // the bound port (useful with 0)
    void stop() noexcept;

private:
    void loop() noexcept;
    void serve(int fd) noexcept;

    HttpHandlers handlers_;
    int listen_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

}  // namespace nlbd::daemon
