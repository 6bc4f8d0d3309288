#include "nlbd/daemon/stats.hpp"

#include <unistd.h>

#include <cinttypes>
#include <sstream>

namespace nlbd::daemon {

uint32_t buckets_owned(const core::Snapshot& s, uint16_t rule) {
    if (rule >= s.rules.rules.size()) return 0;
    const core::CompiledRule& cr = s.rules.rules[rule];
    if (cr.mode == FilterMode::single) return cr.single_owner == s.self ? s.buckets : 0;
    if (cr.mode != FilterMode::multiple) return 0;
    if (s.owners.size() < (static_cast<size_t>(rule) + 1) * s.buckets) return 0;
    uint32_t n = 0;
    for (uint32_t b = 0; b < s.buckets; ++b) n += s.owner(rule, b) == s.self;
    return n;
}

std::string json_escape(const std::string& s) {
    std::string out;
    out.reserve(s.size() + 2);
    for (unsigned char ch : s) {
        switch (ch) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (ch < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", ch);
                out += buf;
            } else {
                out += static_cast<char>(ch);
            }
        }
    }
    return out;
}

namespace {

std::string quoted(const std::string& s) {
    std::string q(1, '"');
    q += json_escape(s);
    q += '"';
    return q;
}

struct RuleTotals {
    uint64_t matched = 0, accepted = 0, not_owner = 0, dropped = 0;
    uint32_t buckets_owned = 0;
};

// Sums the counters of every compiled rule that came from config rule i.
std::vector<RuleTotals> rule_totals(const RunReport& r) {
    std::vector<RuleTotals> t(r.cfg->rules.size());
    const auto& compiled = r.snap->rules.rules;
    std::vector<bool> seen(t.size(), false);
    for (size_t ci = 0; ci < compiled.size() && ci < kNoRuleSlot; ++ci) {
        const size_t i = compiled[ci].config_index;
        if (i >= t.size()) continue;
        const RuleCounters& rc = r.counters->rules[ci];
        t[i].matched += read_counter(rc.matched);
        t[i].accepted += read_counter(rc.accepted);
        t[i].not_owner += read_counter(rc.not_owner);
        t[i].dropped += read_counter(rc.dropped);
        if (!seen[i]) t[i].buckets_owned = buckets_owned(*r.snap, static_cast<uint16_t>(ci));
        seen[i] = true;
    }
    return t;
}

std::string ports_of(const PortRule& pr) {
    return std::to_string(pr.port_lo) + "-" + std::to_string(pr.port_hi);
}

void port_json(std::ostringstream& o, const PortCounters& pc, const PortStats& hw) {
    o << "{\"rx_packets\":" << read_counter(pc.rx_packets)
      << ",\"rx_bytes\":" << read_counter(pc.rx_bytes)
      << ",\"tx_packets\":" << read_counter(pc.tx_packets)
      << ",\"tx_bytes\":" << read_counter(pc.tx_bytes)
      << ",\"tx_dropped\":" << read_counter(pc.tx_dropped) << ",\"imissed\":" << hw.imissed
      << ",\"rx_nombuf\":" << hw.rx_nombuf << ",\"ierrors\":" << hw.ierrors
      << ",\"oerrors\":" << hw.oerrors << "}";
}

}  // namespace

void add_counters(WorkerCounters& into, const WorkerCounters& c) noexcept {
    auto add = [](uint64_t& a, const uint64_t& b) { a += read_counter(b); };
    auto add_port = [&](PortCounters& a, const PortCounters& b) {
        add(a.rx_packets, b.rx_packets);
        add(a.rx_bytes, b.rx_bytes);
        add(a.tx_packets, b.tx_packets);
        add(a.tx_bytes, b.tx_bytes);
        add(a.tx_dropped, b.tx_dropped);
    };
    add(into.rx_total, c.rx_total);
    for (unsigned i = 0; i < kVerdictCount; ++i) add(into.verdicts[i], c.verdicts[i]);
    for (unsigned i = 0; i < kParseErrorCount; ++i) add(into.parse_errors[i], c.parse_errors[i]);
    add_port(into.wire, c.wire);
    add_port(into.local, c.local);
    add(into.local_to_wire, c.local_to_wire);
    add(into.linearized, c.linearized);
    add(into.reply_failed, c.reply_failed);
    add(into.frag_released, c.frag_released);
    add(into.loops, c.loops);
    add(into.idle_sleeps, c.idle_sleeps);
    add(into.heartbeat_dropped, c.heartbeat_dropped);
    add(into.control_tx, c.control_tx);
    add(into.tx_handed, c.tx_handed);
    add(into.tx_drained, c.tx_drained);
    for (unsigned i = 0; i < kRuleSlots; ++i) {
        add(into.rules[i].matched, c.rules[i].matched);
        add(into.rules[i].accepted, c.rules[i].accepted);
        add(into.rules[i].not_owner, c.rules[i].not_owner);
        add(into.rules[i].dropped, c.rules[i].dropped);
    }
}

void add_frag_stats(core::FragStats& into, const core::FragStats& s) noexcept {
    into.datagrams += s.datagrams;
    into.inserted += s.inserted;
    into.evicted += s.evicted;
    into.timed_out += s.timed_out;
    into.held += s.held;
}

std::string stats_json(const RunReport& r) {
    const config::Config& cfg = *r.cfg;
    const core::Snapshot& s = *r.snap;
    const WorkerCounters& c = *r.counters;
    std::ostringstream o;
    o << "{\n\"host\":" << unsigned(cfg.host.id) << ",\n\"cluster\":" << quoted(cfg.cluster.name)
      << ",\n\"mode\":" << quoted(name_of(cfg.cluster.mode))
      << ",\n\"started\":" << (s.started ? "true" : "false")
      << ",\n\"rx_total\":" << read_counter(c.rx_total) << ",\n\"verdicts\":{";
    for (unsigned v = 0; v < kVerdictCount; ++v)
        o << (v ? "," : "") << quoted(std::string(name_of(static_cast<Verdict>(v)))) << ":"
          << r.verdicts[v];
    o << "},\n\"parse_errors\":{";
    bool first = true;
    for (unsigned e = 1; e < kParseErrorCount; ++e) {
        o << (first ? "" : ",") << quoted(std::string(name_of(static_cast<ParseError>(e)))) << ":"
          << read_counter(c.parse_errors[e]);
        first = false;
    }
    o << "},\n\"rules\":[";
    const auto totals = rule_totals(r);
    for (size_t i = 0; i < cfg.rules.size(); ++i) {
        const PortRule& pr = cfg.rules[i];
        const RuleTotals& t = totals[i];
        o << (i ? ",\n " : "\n ") << "{\"index\":" << i
          << ",\"vip\":" << quoted(pr.vip ? pr.vip->to_string() : "all")
          << ",\"ports\":" << quoted(ports_of(pr)) << ",\"protocol\":" << quoted(name_of(pr.protocol))
          << ",\"mode\":" << quoted(name_of(pr.mode)) << ",\"matched\":" << t.matched
          << ",\"accepted\":" << t.accepted << ",\"not_owner\":" << t.not_owner
          << ",\"dropped\":" << t.dropped << ",\"buckets_owned\":" << t.buckets_owned << "}";
    }
    const RuleCounters& nr = c.rules[kNoRuleSlot];
    o << "],\n\"no_rule\":{\"matched\":" << read_counter(nr.matched)
      << ",\"accepted\":" << read_counter(nr.accepted)
      << ",\"not_owner\":" << read_counter(nr.not_owner)
      << ",\"dropped\":" << read_counter(nr.dropped) << "},\n\"ports\":{\"wire\":";
    port_json(o, c.wire, r.wire_hw);
    o << ",\"local\":";
    port_json(o, c.local, r.local_hw);
    o << "},\n\"local_to_wire\":" << read_counter(c.local_to_wire)
      << ",\n\"dataplane\":{\"linearized\":" << read_counter(c.linearized)
      << ",\"reply_failed\":" << read_counter(c.reply_failed)
      << ",\"frag_released\":" << read_counter(c.frag_released)
      << ",\"loops\":" << read_counter(c.loops) << ",\"idle_sleeps\":" << read_counter(c.idle_sleeps)
      << ",\"heartbeat_dropped\":" << read_counter(c.heartbeat_dropped)
      << ",\"control_tx\":" << read_counter(c.control_tx)
      << "},\n\"fragments\":{\"datagrams\":" << r.frags.datagrams
      << ",\"inserted\":" << r.frags.inserted << ",\"evicted\":" << r.frags.evicted
      << ",\"timed_out\":" << r.frags.timed_out << ",\"held\":" << r.frags.held
      << "},\n\"membership\":{\"self\":" << unsigned(s.self) << ",\"members\":[";
    for (size_t i = 0; i < s.members.size(); ++i) o << (i ? "," : "") << unsigned(s.members[i]);
    o << "],\"default_host\":" << unsigned(s.default_host) << ",\"epoch\":" << s.epoch
      << ",\"buckets\":" << s.buckets << "}";
    if (!r.extra.empty()) o << ",\n" << r.extra;
    o << "\n}\n";
    return o.str();
}

void print_summary(std::FILE* out, const RunReport& r) {
    const WorkerCounters& c = *r.counters;
    const config::Config& cfg = *r.cfg;
    std::fprintf(out, "nlbd: host %u of cluster '%s': %" PRIu64 " frames from the wire\n",
                 unsigned(cfg.host.id), cfg.cluster.name.c_str(), read_counter(c.rx_total));
    for (unsigned v = 0; v < kVerdictCount; ++v)
        if (r.verdicts[v] != 0)
            std::fprintf(out, "  %-22s %12" PRIu64 "  %s\n",
                         std::string(name_of(static_cast<Verdict>(v))).c_str(), r.verdicts[v],
                         std::string(description_of(static_cast<Verdict>(v))).c_str());
    for (unsigned e = 1; e < kParseErrorCount; ++e)
        if (const uint64_t n = read_counter(c.parse_errors[e]); n != 0)
            std::fprintf(out, "    malformed: %-22s %10" PRIu64 "\n",
                         std::string(name_of(static_cast<ParseError>(e))).c_str(), n);
    const auto totals = rule_totals(r);
    for (size_t i = 0; i < cfg.rules.size(); ++i) {
        const PortRule& pr = cfg.rules[i];
        const RuleTotals& t = totals[i];
        std::fprintf(out,
                     "  rule %zu %s:%s/%s %s: matched %" PRIu64 " accepted %" PRIu64
                     " not_owner %" PRIu64 " dropped %" PRIu64 " buckets %u\n",
                     i, pr.vip ? pr.vip->to_string().c_str() : "all", ports_of(pr).c_str(),
                     name_of(pr.protocol), name_of(pr.mode), t.matched, t.accepted, t.not_owner,
                     t.dropped, t.buckets_owned);
    }
    auto port_line = [&](const char* role, const PortCounters& pc, const PortStats& hw) {
        std::fprintf(out,
                     "  port %-5s rx %" PRIu64 " pkts %" PRIu64 " B, tx %" PRIu64 " pkts %" PRIu64
                     " B, tx_dropped %" PRIu64 ", imissed %" PRIu64 ", rx_nombuf %" PRIu64 "\n",
                     role, read_counter(pc.rx_packets), read_counter(pc.rx_bytes),
                     read_counter(pc.tx_packets), read_counter(pc.tx_bytes),
                     read_counter(pc.tx_dropped), hw.imissed, hw.rx_nombuf);
    };
    port_line("wire", c.wire, r.wire_hw);
    port_line("local", c.local, r.local_hw);
    std::fprintf(out,
                 "  fragments: tracked %" PRIu64 " inserted %" PRIu64 " evicted %" PRIu64
                 " timed out %" PRIu64 " held %" PRIu64 "\n",
                 r.frags.datagrams, r.frags.inserted, r.frags.evicted, r.frags.timed_out,
                 r.frags.held);
}

namespace {

std::string join_words(const std::vector<std::string>& v, const char* sep = " ") {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) {
        if (i != 0) s += sep;
        s += v[i];
    }
    return s;
}

std::string hosts_list(const std::vector<HostId>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) {
        if (i != 0) s += ',';
        s += std::to_string(unsigned(v[i]));
    }
    return s + "]";
}

}  // namespace

void print_rules(std::FILE* out, const config::Config& cfg, const core::Snapshot* snap) {
    std::fprintf(out, "  %-4s %-40s %-11s %-5s %-9s %-8s %-6s %-4s %s\n", "rule", "vip", "ports",
                 "proto", "mode", "affinity", "weight", "prio", snap ? "buckets-owned" : "");
    for (size_t i = 0; i < cfg.rules.size(); ++i) {
        const PortRule& r = cfg.rules[i];
        std::string owned;
        if (snap != nullptr) {
            for (size_t ci = 0; ci < snap->rules.rules.size(); ++ci)
                if (snap->rules.rules[ci].config_index == i) {
                    owned = std::to_string(buckets_owned(*snap, static_cast<uint16_t>(ci))) +
                            "/" + std::to_string(snap->buckets);
                    break;
                }
        }
        std::fprintf(out, "  %-4zu %-40s %-11s %-5s %-9s %-8s %-6s %-4u %s\n", i,
                     r.vip ? r.vip->to_string().c_str() : "all",
                     (std::to_string(r.port_lo) + "-" + std::to_string(r.port_hi)).c_str(),
                     name_of(r.protocol), name_of(r.mode), name_of(r.affinity),
                     r.equal_weight ? "equal" : std::to_string(r.load_weight).c_str(),
                     unsigned(r.handling_priority), owned.c_str());
    }
}

void print_config_summary(std::FILE* out, const config::Config& cfg, const core::Snapshot* snap) {
    std::fprintf(out, "config %s\n", cfg.file.c_str());
    std::fprintf(out,
                 "  cluster '%s', mode %s, %u buckets, heartbeat %u ms x %u (%u per interval), "
                 "ethertype 0x%04x\n",
                 cfg.cluster.name.c_str(), name_of(cfg.cluster.mode), cfg.cluster.buckets,
                 cfg.cluster.heartbeat_interval_ms, cfg.cluster.heartbeat_tolerance,
                 cfg.cluster.heartbeat_redundancy, cfg.cluster.heartbeat_ethertype);
    std::string vips;
    for (size_t i = 0; i < cfg.cluster.vips.size(); ++i)
        vips += (i ? ", " : "") + cfg.cluster.vips[i].to_string();
    std::fprintf(out, "  vips: %s\n", vips.c_str());
    std::fprintf(out, "  host %u, initial state %s, members %s\n", unsigned(cfg.host.id),
                 cfg.host.initial_state == config::InitialState::started   ? "started"
                 : cfg.host.initial_state == config::InitialState::stopped ? "stopped"
                                                                           : "suspended",
                 cfg.cluster.static_members.empty() ? "dynamic"
                                                    : hosts_list(cfg.cluster.static_members).c_str());
    if (snap != nullptr)
        std::fprintf(out, "  cluster MAC %s, source MAC %s, default host %u\n",
                     snap->cluster_mac.to_string().c_str(), snap->source_mac.to_string().c_str(),
                     unsigned(snap->default_host));
    print_rules(out, cfg, snap);
    std::fprintf(out, "  ports: wire '%s', local '%s'\n", cfg.wire.device.c_str(),
                 cfg.local.device.c_str());
    const auto& n = cfg.nic;
    std::fprintf(out,
                 "  nic profile '%s' (%s): %u worker(s), dispatch %s, %u rxq/%u txq, %u/%u descriptors, "
                 "burst %u, mempool %u (cache %u, room %u), rx csum %s, tx csum %s, eal [%s]\n",
                 n.name.c_str(), n.file.empty() ? "defaults" : n.file.c_str(), unsigned(n.workers),
                 config::dispatch_name(n.dispatch), n.rx_queues,
                 n.tx_queues, n.rx_descriptors, n.tx_descriptors, n.burst, n.mempool_size,
                 n.mempool_cache, n.mbuf_data_room, n.rx_checksum_offload ? "on" : "off",
                 n.tx_checksum_offload ? "on" : "off", join_words(n.eal_args).c_str());
    std::fprintf(out, "  dataplane: idle %s, fragments %u datagrams x %u held, timeout %u ms\n",
                 cfg.dataplane.idle_policy == config::IdlePolicy::poll ? "poll" : "adaptive",
                 cfg.dataplane.frag_table_size, cfg.dataplane.frag_max_held,
                 cfg.dataplane.frag_timeout_ms);
    std::fprintf(out,
                 "  connections: %u per worker, TCP timeouts syn %u s, established %u s, fin %u s\n",
                 cfg.dataplane.conn_table_size, cfg.dataplane.tcp_syn_timeout_s,
                 cfg.dataplane.tcp_established_timeout_s, cfg.dataplane.tcp_fin_timeout_s);
    if (cfg.cluster.static_members.empty())
        std::fprintf(out, "  membership: dynamic (heartbeats%s)\n",
                     cfg.cluster.secret_file.empty() ? ", NOT authenticated: no secret_file"
                                                     : ", HMAC-SHA256");
    std::fprintf(out, "  telemetry: prometheus %s, DPDK telemetry %s\n",
                 cfg.telemetry.prometheus
                     ? ("http://" + cfg.telemetry.prometheus_listen + "/metrics").c_str()
                     : "off",
                 cfg.telemetry.dpdk_telemetry
                     ? ("on (dpdk-telemetry.py -f nlbd-" + std::to_string(cfg.host.id) + ")").c_str()
                     : "off");
    if (cfg.control.remote_listen.empty()) {
        std::fprintf(out, "  remote control: off\n");
    } else {
        std::string who;
        for (const auto& [cn, role] : cfg.control.remote_allow) who += (who.empty() ? "" : ", ") + cn + " " + role;
        std::fprintf(out, "  remote control: mutual TLS on %s, client CA %s; allowed: %s\n",
                     cfg.control.remote_listen.c_str(), cfg.control.remote_ca.c_str(), who.c_str());
    }
    if (!cfg.announce.enabled) {
        std::fprintf(out, "  announce: off\n");
    } else {
        std::string vips;
        for (const IpAddr& v : cfg.announce.vips) vips += (vips.empty() ? "" : ", ") + v.to_string();
        std::fprintf(out,
                     "  announce: bird, %s/32 next hop %s; include %s, birdc -s %s; withdraw delay %u ms, "
                     "birdc timeout %u ms, retry %u ms, converging grace %u ms\n",
                     vips.c_str(), cfg.announce.next_hop.to_string().c_str(), cfg.announce.include_file.c_str(),
                     cfg.announce.control_socket.c_str(), cfg.announce.withdraw_delay_ms,
                     cfg.announce.command_timeout_ms, cfg.announce.retry_interval_ms,
                     cfg.announce.converging_grace_ms);
        if (::access(cfg.announce.birdc.c_str(), X_OK) != 0)
            std::fprintf(out, "  announce: WARNING: birdc '%s' is not an executable (Debian: apt install bird2)\n",
                         cfg.announce.birdc.c_str());
    }
}

}  // namespace nlbd::daemon
