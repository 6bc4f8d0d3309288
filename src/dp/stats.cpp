#include "nlbd/dp/stats.hpp"

#include <cinttypes>
#include <sstream>

namespace nlbd::dp {

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

}  // namespace nlbd::dp
