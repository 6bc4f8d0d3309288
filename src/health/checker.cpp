// The health checker thread (see checker.hpp for the threading contract).

#include "nlbd/health/checker.hpp"
#include "nlbd/log/log.hpp"

#include <algorithm>
#include <cstdio>

namespace nlbd::health {

uint64_t Checker::now_ns() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

namespace {

std::string target_text(const ProbeSpec& p) {
    const std::string a = p.address.to_string();
    return (p.address.family == Family::v6 ? "[" + a + "]" : a) + ":" + std::to_string(p.port);
}

std::string json_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            o += b;
        } else {
            o += c;
        }
    }
    return o;
}

}  // namespace

std::vector<RuleCheck> Checker::checks_from_config(const config::Config& cfg) {
    std::vector<RuleCheck> out;
    for (size_t i = 0; i < cfg.health.size() && i < cfg.rules.size(); ++i) {
        const config::HealthCheck& h = cfg.health[i];
        if (h.kind == HealthKind::none) continue;
        RuleCheck c;
        c.rule = i;
        c.probe.kind = h.kind;
        if (h.address) c.probe.address = *h.address;
        else if (cfg.host.dedicated_ip) c.probe.address = *cfg.host.dedicated_ip;
        else c.probe.address = *IpAddr::parse("127.0.0.1");
        c.probe.port = h.port != 0 ? h.port : cfg.rules[i].port_lo;
        c.probe.path = h.path;
        c.probe.expect_status = h.expect_status;
        c.probe.name = h.name.empty() ? cfg.cluster.name : h.name;
        c.probe.sni = h.sni.empty() ? c.probe.name : h.sni;
        c.probe.ca_file = h.ca_file;
        c.probe.timeout_ms = h.timeout_ms;
        c.interval_ms = h.interval_ms;
        c.rise = h.rise;
        c.fall = h.fall;
        out.push_back(std::move(c));
    }
    return out;
}

Checker::Checker(std::vector<RuleCheck> checks, size_t rule_count) : gate_(rule_count) {
    const uint64_t now = now_ns();
    for (RuleCheck& c : checks) {
        RuleHealth h;
        h.rule = c.rule;
        h.kind = c.probe.kind;
        h.target = target_text(c.probe);
        h.since_ns = now;
        status_.push_back(std::move(h));
        const uint32_t rise = c.rise, fall = c.fall;
        entries_.push_back(Entry{std::move(c), Hysteresis(rise, fall), now});
    }
}

Checker::~Checker() { stop(); }

void Checker::start() {
    if (thread_.joinable() || entries_.empty()) return;
    thread_ = std::thread([this] { loop(); });
}

void Checker::stop() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

uint64_t Checker::run_due(uint64_t now) {
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < entries_.size(); ++i) {
        Entry& e = entries_[i];
        if (e.next_due_ns <= now) {
            const ProbeResult r = run_probe(e.check.probe);
            const std::optional<State> changed = e.hyst.feed(r.ok());
            const uint64_t done = now_ns();
            // Next round one interval after this one was due (no drift), but
            // never in the past when a probe took long.
            e.next_due_ns = std::max(e.next_due_ns + uint64_t{e.check.interval_ms} * 1'000'000, done);
            std::lock_guard<std::mutex> lk(mu_);
            RuleHealth& h = status_[i];
            ++h.checks;
            if (r.ok()) ++h.ok;
            else ++h.failed;
            h.last_outcome = r.outcome;
            h.last = r.text;
            if (changed) {
                h.state = *changed;
                h.since_ns = done;
                ++h.transitions;
                transitions_.push_back(Transition{e.check.rule, *changed, r.text});
                log::write(*changed == State::down ? log::Level::warning : log::Level::notice,
                           "health: rule %zu (%.*s %s) is %s: %s", e.check.rule,
                             static_cast<int>(name_of(h.kind).size()), name_of(h.kind).data(),
                             h.target.c_str(), name_of(*changed).data(), r.text.c_str());
            }
        }
        next = std::min(next, e.next_due_ns);
    }
    return next;
}

void Checker::loop() {
    for (;;) {
        const uint64_t next = run_due(now_ns());
        std::unique_lock<std::mutex> lk(mu_);
        if (stop_) return;
        const uint64_t now = now_ns();
        if (next > now)
            cv_.wait_for(lk, std::chrono::nanoseconds(next - now), [&] { return stop_; });
        if (stop_) return;
    }
}

std::vector<Transition> Checker::take_transitions() {
    std::vector<Transition> out;
    std::unique_lock<std::mutex> lk(mu_, std::try_to_lock);
    if (!lk.owns_lock()) return out;
    out.swap(transitions_);
    return out;
}

std::optional<RuleHealth> Checker::status(size_t rule) const {
    std::lock_guard<std::mutex> lk(mu_);
    for (const RuleHealth& h : status_)
        if (h.rule == rule) return h;
    return std::nullopt;
}

std::vector<RuleHealth> Checker::statuses() const {
    std::lock_guard<std::mutex> lk(mu_);
    return status_;
}

std::string health_json(const RuleHealth& h, uint64_t now_ns) {
    const double since_ms = now_ns >= h.since_ns ? static_cast<double>(now_ns - h.since_ns) / 1e6 : 0.0;
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.0f", since_ms);
    return "{\"rule\":" + std::to_string(h.rule) + ",\"check\":\"" + std::string(name_of(h.kind)) +
           "\",\"target\":\"" + json_escape(h.target) + "\",\"state\":\"" + std::string(name_of(h.state)) +
           "\",\"last\":\"" + json_escape(h.last) + "\",\"outcome\":\"" +
           std::string(h.checks ? name_of(h.last_outcome) : "none") + "\",\"since_ms\":" + ms +
           ",\"checks\":" + std::to_string(h.checks) + ",\"ok\":" + std::to_string(h.ok) +
           ",\"failed\":" + std::to_string(h.failed) + ",\"transitions\":" + std::to_string(h.transitions) + "}";
}

std::string Checker::stats_json() const {
    const uint64_t now = now_ns();
    std::string o = "{\"rules\":[";
    uint64_t checks = 0, ok = 0, failed = 0, transitions = 0;
    bool first = true;
    for (const RuleHealth& h : statuses()) {
        if (!first) o += ",";
        first = false;
        o += health_json(h, now);
        checks += h.checks;
        ok += h.ok;
        failed += h.failed;
        transitions += h.transitions;
    }
    o += "],\"checks\":" + std::to_string(checks) + ",\"ok\":" + std::to_string(ok) +
         ",\"failed\":" + std::to_string(failed) + ",\"transitions\":" + std::to_string(transitions) + "}";
    return o;
}

}  // namespace nlbd::health
