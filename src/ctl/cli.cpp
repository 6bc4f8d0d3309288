// nlbctl: argument parsing and human printers (see cli.hpp); the commands
// themselves are the registry's (commands.hpp).
// Printers take whatever the daemon sends: every field may be missing or of
// another type, and unknown fields are shown generically, never rejected.

#include "nlbd/ctl/cli.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "nlbd/ctl/cert.hpp"
#include "nlbd/ctl/client.hpp"
#include "nlbd/ctl/server.hpp"
#include "nlbd/ctl/tls_client.hpp"

namespace nlbd::ctl {

namespace {

// ---- formatting helpers ----------------------------------------------------

std::string text_of(const Json& v) {
    switch (v.type()) {
    case Json::Type::null: return "-";
    case Json::Type::boolean: return v.as_bool() ? "yes" : "no";
    case Json::Type::string: return v.as_string().empty() ? "-" : v.as_string();
    case Json::Type::integer:
    case Json::Type::number: return v.dump();
    case Json::Type::array: {
        std::string s;
        for (const Json& x : v.as_array()) {
            if (!s.empty()) s += ", ";
            s += x.is_array() || x.is_object() ? x.dump() : text_of(x);
        }
        return s.empty() ? "-" : s;
    }
    case Json::Type::object: return v.dump();
    }
    return "?";
}

std::string field(const Json& obj, std::string_view key) {
    const Json* v = obj.find(key);
    return v ? text_of(*v) : "-";
}

// A table with a header row; columns are padded to their widest cell.
class Table {
public:
    explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    bool empty() const { return rows_.size() <= 1; }
    void print(std::FILE* out, const char* indent = "  ") const {
        std::vector<size_t> w;
        for (const auto& r : rows_)
            for (size_t i = 0; i < r.size(); ++i) {
                if (w.size() <= i) w.push_back(0);
                w[i] = std::max(w[i], r[i].size());
            }
        for (const auto& r : rows_) {
            std::string line = indent;
            for (size_t i = 0; i < r.size(); ++i) {
                line += r[i];
                if (i + 1 < r.size()) line.append(w[i] - r[i].size() + 2, ' ');
            }
            std::fprintf(out, "%s\n", line.c_str());
        }
    }
private:
    std::vector<std::vector<std::string>> rows_;
};

std::string upper(std::string s) {
    for (char& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return s;
}

// Generic tree printer: scalars as "key: value", arrays of scalars joined,
// arrays of objects as tables of their scalar fields, objects indented.
void print_tree(std::FILE* out, const Json& v, int level);

void print_array_of_objects(std::FILE* out, const Json::Array& arr, int level) {
    std::vector<std::string> cols;
    for (const Json& x : arr)
        for (const auto& [k, val] : x.as_object())
            if (!val.is_object() && std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
    std::vector<std::string> header;
    for (const auto& c : cols) header.push_back(upper(c));
    Table t(header);
    for (const Json& x : arr) {
        std::vector<std::string> row;
        for (const auto& c : cols) row.push_back(field(x, c));
        t.add(std::move(row));
    }
    std::string ind(static_cast<size_t>(level) * 2 + 2, ' ');
    t.print(out, ind.c_str());
}

void print_tree(std::FILE* out, const Json& v, int level) {
    std::string ind(static_cast<size_t>(level) * 2, ' ');
    if (!v.is_object()) {
        std::fprintf(out, "%s%s\n", ind.c_str(), text_of(v).c_str());
        return;
    }
    for (const auto& [k, val] : v.as_object()) {
        if (val.is_object()) {
            std::fprintf(out, "%s%s:\n", ind.c_str(), k.c_str());
            print_tree(out, val, level + 1);
        } else if (val.is_array() && !val.as_array().empty() &&
                   std::all_of(val.as_array().begin(), val.as_array().end(),
                               [](const Json& x) { return x.is_object(); })) {
            std::fprintf(out, "%s%s:\n", ind.c_str(), k.c_str());
            print_array_of_objects(out, val.as_array(), level);
        } else {
            std::fprintf(out, "%s%s: %s\n", ind.c_str(), k.c_str(), text_of(val).c_str());
        }
    }
}

// ---- printers ----------------------------------------------------------------

void print_generic(std::FILE* out, const Json& r) {
    if (r.is_null()) {
        std::fprintf(out, "ok\n");
        return;
    }
    if ((r.is_object() || r.is_array()) && r.size() == 0) {
        std::fprintf(out, "(empty)\n");
        return;
    }
    print_tree(out, r, 0);
}

// Result of a state-changing command: {"message": "...", "state": "..."}.
void print_action(std::FILE* out, const Json& r) {
    if (!r.is_object()) {
        print_generic(out, r);
        return;
    }
    std::string msg = r.get_string("message");
    std::string state = r.get_string("state");
    std::string previous = r.get_string("previous");
    if (!msg.empty()) std::fprintf(out, "%s\n", msg.c_str());
    else if (!state.empty() && !previous.empty() && previous != state)
        std::fprintf(out, "ok: host was %s, is now %s\n", previous.c_str(), state.c_str());
    else if (!state.empty()) std::fprintf(out, "ok: host is %s\n", state.c_str());
    else std::fprintf(out, "ok\n");
    Json rest = Json::object();
    for (const auto& [k, v] : r.as_object())
        if (k != "message" && k != "state" && k != "previous") rest[k] = v;
    if (rest.size()) print_tree(out, rest, 1);
}

std::string host_list(const Json* members) {
    if (!members || !members->is_array() || members->as_array().empty()) return "";
    std::string s;
    const auto& a = members->as_array();
    for (size_t i = 0; i < a.size(); ++i) {
        if (i) s += ", ";
        s += text_of(a[i].is_object() && a[i].find("id") ? *a[i].find("id") : a[i]);
    }
    return s;
}

std::string mismatch_text(const Json& m) {
    if (!m.is_object()) return text_of(m);
    std::string s;
    if (const Json* h = m.find("host"); h) s = "host " + text_of(*h) + ": ";
    else if (const Json* id = m.find("id"); id) s = "host " + text_of(*id) + ": ";
    std::string reason = m.get_string("reason", m.get_string("kind"));
    std::string detail = m.get_string("text", m.get_string("detail"));
    if (reason.empty() && detail.empty()) reason = m.dump();
    s += reason;
    if (!detail.empty()) s += reason.empty() ? detail : " (" + detail + ")";
    return s;
}

// First of `keys` present in `obj`, or nullptr.
const Json* first_of(const Json& obj, std::initializer_list<std::string_view> keys) {
    for (auto k : keys)
        if (const Json* v = obj.find(k)) return v;
    return nullptr;
}

// A table column: a header and the keys it may come from (first present
// wins); `fmt` turns the value into a cell. Columns absent from every row
// are left out, so old and new daemon schemas both print tidily.
struct Column {
    const char* header;
    std::initializer_list<std::string_view> keys;
    // value of the row, the row, the enclosing result (for totals)
    std::string (*fmt)(const Json& value, const Json& row, const Json& whole);
};

void print_rows(std::FILE* out, const Json& whole, const Json::Array& rows, std::initializer_list<Column> cols) {
    std::vector<const Column*> used;
    for (const Column& c : cols)
        for (const Json& r : rows)
            if (first_of(r, c.keys)) {
                used.push_back(&c);
                break;
            }
    std::vector<std::string> header;
    for (const Column* c : used) header.push_back(c->header);
    Table t(header);
    for (const Json& r : rows) {
        std::vector<std::string> row;
        for (const Column* c : used) {
            const Json* v = first_of(r, c->keys);
            row.push_back(v ? (c->fmt ? c->fmt(*v, r, whole) : text_of(*v)) : "-");
        }
        t.add(std::move(row));
    }
    t.print(out);
}

std::string cell_ms_ago(const Json& v, const Json&, const Json&) {
    if (!v.is_number()) return text_of(v);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f ms ago", v.as_double());
    return buf;
}

std::string cell_mismatch(const Json& v, const Json&, const Json&) {
    if (v.is_null() || (v.is_bool() && !v.as_bool())) return "-";
    return v.is_bool() ? "yes" : text_of(v);
}

// "excluded": true means this host does not converge with that peer.
std::string cell_excluded(const Json& v, const Json&, const Json&) {
    if (v.is_bool()) return v.as_bool() ? "excluded" : "-";
    return text_of(v);
}

bool state_is_converged(const std::string& state) {
    return state == "converged" || state == "converged_default" || state == "converged_as_default";
}

void print_query(std::FILE* out, const Json& r) {
    if (!r.is_object()) {
        print_generic(out, r);
        return;
    }
    std::string host = field(r, "host");
    if (host == "-") host = field(r, "self");
    std::string state = r.get_string("state");
    const Json* members = r.find("members");
    std::string hosts = host_list(members);
    std::string epoch = field(r, "epoch");
    bool is_default = r.get_bool("is_default", false) || state == "converged_default" ||
                      state == "converged_as_default" ||
                      (r.find("default_host") && field(r, "default_host") == host && host != "-");
    const Json* held = first_of(r, {"held_connections", "held_foreign"});
    std::string cluster = r.get_string("cluster");
    if (!cluster.empty()) std::fprintf(out, "Cluster %s\n", cluster.c_str());

    std::string line = "Host " + host + " ";
    if (state_is_converged(state) || (state.empty() && r.get_bool("converged"))) {
        line += "converged";
        if (is_default) line += " as default";
        if (!hosts.empty()) line += " with hosts " + hosts;
        if (epoch != "-") line += " at epoch " + epoch;
    } else if (state == "converging" || state.empty()) {
        line += "is converging";
        if (epoch != "-") line += " (epoch " + epoch + ")";
        if (!hosts.empty()) line += "; hosts seen: " + hosts;
    } else if (state == "draining") {
        line += "is draining";
        if (held && held->is_number()) line += ", " + text_of(*held) + " connection(s) still held";
    } else {
        line += "is " + state;
    }
    std::fprintf(out, "%s\n", line.c_str());
    if (const Json* hs = r.find("host_state"); hs && hs->is_string() && hs->as_string() != state &&
                                               !(hs->as_string() == "started" && state_is_converged(state)))
        std::fprintf(out, "Host state: %s\n", hs->as_string().c_str());
    if (const Json* d = r.find("default_host"); d && !is_default)
        std::fprintf(out, "Default host: %s\n", text_of(*d).c_str());
    if (const Json* c = r.find("converged"); c && c->is_bool() && !state_is_converged(state))
        std::fprintf(out, "Converged: %s\n", c->as_bool() ? "yes" : "no");
    if (held && state != "draining")
        std::fprintf(out, "Held connections (in buckets now owned by others): %s\n",
                     held->is_null() ? "unknown" : text_of(*held).c_str());

    if (const Json* peers = r.find("peers"); peers && peers->is_array() && !peers->as_array().empty()) {
        std::fprintf(out, "\nPeers:\n");
        print_rows(out, r, peers->as_array(),
                   {{"HOST", {"id", "host"}, nullptr},
                    {"STATE", {"state"}, nullptr},
                    {"ALIVE", {"alive"}, nullptr},
                    {"MEMBER", {"member"}, nullptr},
                    {"EPOCH", {"epoch"}, nullptr},
                    {"SAME MAP", {"same_map"}, nullptr},
                    {"LAST SEEN", {"last_seen_ms"}, cell_ms_ago},
                    {"HELD", {"held_foreign", "held_connections"}, nullptr},
                    {"MISMATCH", {"mismatch"}, cell_mismatch},
                    {"EXCLUDED", {"excluded"}, cell_excluded}});
    }

    // [announce] (docs/scale-out.md): what this host announces over BGP.
    if (const Json* an = r.find("announce"); an && an->is_object()) {
        auto list = [](const Json* a) {
            std::string t;
            if (a && a->is_array())
                for (const Json& v : a->as_array()) t += (t.empty() ? "" : ", ") + text_of(v);
            return t.empty() ? std::string("none") : t;
        };
        std::fprintf(out, "Announce (BGP via %s, next hop %s): %s; announced: %s", an->get_string("daemon").c_str(),
                     an->get_string("next_hop").c_str(), an->get_string("state").c_str(),
                     list(an->find("announced")).c_str());
        if (an->get_bool("withdraw_first")) std::fprintf(out, " (withdrawing before the drain)");
        std::fprintf(out, "\n");
        if (const std::string e = an->get_string("last_error"); !e.empty())
            std::fprintf(out, "Announce error: %s\n", e.c_str());
    }

    if (const Json* rules = r.find("rules"); rules && rules->is_array() && !rules->as_array().empty()) {
        std::fprintf(out, "\nPort rules:\n");
        print_rows(out, r, rules->as_array(),
                   {{"#", {"index", "rule"}, nullptr},
                    {"VIP", {"vip"}, nullptr},
                    {"PORTS", {"ports"}, nullptr},
                    {"PROTO", {"protocol"}, nullptr},
                    {"MODE", {"mode"}, nullptr},
                    {"STATE", {"state"}, nullptr},
                    {"BUCKETS OWNED", {"buckets_owned"},
                     [](const Json& v, const Json& row, const Json& whole) {
                         std::string s = text_of(v);
                         const Json* b = row.find("buckets");
                         if (!b) b = whole.find("buckets");
                         if (v.is_number() && b && b->is_number()) s += "/" + b->dump();
                         return s;
                     }},
                    {"DIRTY", {"dirty", "buckets_dirty"}, nullptr},
                    {"OWNER", {"single_owner"}, nullptr}});
    }

    if (const Json* mm = r.find("mismatches"); mm && mm->is_array() && !mm->as_array().empty()) {
        std::fprintf(out, "\nMismatches (these hosts do not converge with this one):\n");
        for (const Json& m : mm->as_array()) std::fprintf(out, "  %s\n", mismatch_text(m).c_str());
    }
    // Rolling rule changes (docs/reload.md): per rule, each version and its hosts.
    if (const Json* rd = r.find("rule_differences"); rd && rd->is_array() && !rd->as_array().empty()) {
        std::fprintf(out, "\nRules that differ between hosts (* = in force):\n");
        for (const Json& d : rd->as_array()) {
            const Json* versions = d.find("versions");
            std::string line = "  " + text_of(d.find("rule") ? *d.find("rule") : Json());
            for (const Json& v : versions && versions->is_array() ? versions->as_array() : std::vector<Json>{}) {
                const Json* active = v.find("active");
                line += std::string("\n    ") + (active && active->is_bool() && active->as_bool() ? "* " : "  ") +
                        text_of(v.find("content") ? *v.find("content") : Json()) + ": hosts " +
                        (v.find("hosts") ? v.find("hosts")->dump() : std::string("[]"));
            }
            std::fprintf(out, "%s\n", line.c_str());
        }
    }

    // Whatever else the daemon reports.
    static constexpr std::string_view kShown[] = {
        "host", "self", "cluster", "state", "host_state", "members", "epoch", "is_default", "default_host",
        "converged", "held_connections", "held_foreign", "peers", "rules", "mismatches", "buckets",
        "rule_differences"};
    Json rest = Json::object();
    for (const auto& [k, v] : r.as_object())
        if (std::find(std::begin(kShown), std::end(kShown), k) == std::end(kShown)) rest[k] = v;
    if (const Json* b = r.find("buckets"); b && !r.find("rules")) rest["buckets"] = *b;
    if (rest.size()) {
        std::fprintf(out, "\n");
        print_tree(out, rest, 0);
    }
}

void print_counters_line(std::FILE* out, const char* title, const Json* obj, bool nonzero_only) {
    if (!obj || !obj->is_object()) return;
    std::string s;
    for (const auto& [k, v] : obj->as_object()) {
        if (nonzero_only && v.is_number() && v.as_double() == 0) continue;
        if (!s.empty()) s += "  ";
        s += k + "=" + text_of(v);
    }
    std::fprintf(out, "%-12s %s\n", title, s.empty() ? "(all zero)" : s.c_str());
}

void print_stats(std::FILE* out, const Json& r) {
    if (!r.is_object()) {
        print_generic(out, r);
        return;
    }
    std::fprintf(out, "Host %s  cluster %s  mode %s  started %s\n", field(r, "host").c_str(),
                 field(r, "cluster").c_str(), field(r, "mode").c_str(), field(r, "started").c_str());
    if (const Json* m = r.find("membership"); m && m->is_object())
        std::fprintf(out, "Membership: self %s, members %s, default host %s, epoch %s, %s buckets\n",
                     field(*m, "self").c_str(), field(*m, "members").c_str(), field(*m, "default_host").c_str(),
                     field(*m, "epoch").c_str(), field(*m, "buckets").c_str());
    std::fprintf(out, "Received on the wire port: %s\n\n", field(r, "rx_total").c_str());

    if (const Json* v = r.find("verdicts"); v && v->is_object()) {
        Table t({"VERDICT", "PACKETS"});
        size_t zero = 0;
        for (const auto& [k, x] : v->as_object()) {
            if (x.is_number() && x.as_double() == 0) { ++zero; continue; }
            t.add({k, text_of(x)});
        }
        std::fprintf(out, "Verdicts%s:\n", zero ? " (non-zero)" : "");
        if (!t.empty()) t.print(out);
        else std::fprintf(out, "  (none)\n");
    }
    if (const Json* p = r.find("parse_errors"); p && p->is_object()) {
        Table t({"PARSE ERROR", "PACKETS"});
        for (const auto& [k, x] : p->as_object())
            if (!(x.is_number() && x.as_double() == 0)) t.add({k, text_of(x)});
        if (!t.empty()) {
            std::fprintf(out, "\nParse errors (non-zero):\n");
            t.print(out);
        }
    }
    if (const Json* rules = r.find("rules"); rules && rules->is_array() && !rules->as_array().empty()) {
        std::fprintf(out, "\nPort rules:\n");
        Table t({"#", "VIP", "PORTS", "PROTO", "MODE", "MATCHED", "ACCEPTED", "NOT OWNER", "DROPPED", "BUCKETS"});
        for (const Json& x : rules->as_array())
            t.add({field(x, "index"), field(x, "vip"), field(x, "ports"), field(x, "protocol"), field(x, "mode"),
                   field(x, "matched"), field(x, "accepted"), field(x, "not_owner"), field(x, "dropped"),
                   field(x, "buckets_owned")});
        if (const Json* n = r.find("no_rule"); n && n->is_object())
            t.add({"-", "(no rule)", "-", "-", "default", field(*n, "matched"), field(*n, "accepted"),
                   field(*n, "not_owner"), field(*n, "dropped"), "-"});
        t.print(out);
    }
    if (const Json* ports = r.find("ports"); ports && ports->is_object()) {
        std::fprintf(out, "\nPorts:\n");
        Table t({"PORT", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES", "TX DROP", "IMISSED", "NOMBUF", "IERR",
                 "OERR"});
        for (const auto& [name, p] : ports->as_object())
            t.add({name, field(p, "rx_packets"), field(p, "rx_bytes"), field(p, "tx_packets"), field(p, "tx_bytes"),
                   field(p, "tx_dropped"), field(p, "imissed"), field(p, "rx_nombuf"), field(p, "ierrors"),
                   field(p, "oerrors")});
        t.print(out);
    }
    std::fprintf(out, "\n");
    if (const Json* l = r.find("local_to_wire"); l) std::fprintf(out, "%-12s %s\n", "local->wire", text_of(*l).c_str());
    print_counters_line(out, "dataplane", r.find("dataplane"), false);
    print_counters_line(out, "fragments", r.find("fragments"), false);

    static constexpr std::string_view kShown[] = {"host", "cluster", "mode", "started", "membership", "rx_total",
                                                  "verdicts", "parse_errors", "rules", "no_rule", "ports",
                                                  "local_to_wire", "dataplane", "fragments"};
    for (const auto& [k, v] : r.as_object()) {
        if (std::find(std::begin(kShown), std::end(kShown), k) != std::end(kShown)) continue;
        if (v.is_object() && std::all_of(v.as_object().begin(), v.as_object().end(),
                                         [](const Json::Member& m) { return !m.second.is_object() && !m.second.is_array(); })) {
            print_counters_line(out, k.c_str(), &v, false);
        } else {
            std::fprintf(out, "%s:\n", k.c_str());
            print_tree(out, v, 1);
        }
    }
}

// display: the query, parameters and counters as a tree, then the event log
// (the most recent events, oldest first) as one line each, NLB-style.
void print_display(std::FILE* out, const Json& r) {
    if (!r.is_object()) {
        print_generic(out, r);
        return;
    }
    Json rest = Json::object();
    for (const auto& [k, v] : r.as_object())
        if (k != "events") rest[k] = v;
    print_generic(out, rest);
    const Json* ev = r.find("events");
    if (ev == nullptr || !ev->is_array()) return;
    std::fprintf(out, "\nevents (latest %zu, oldest first):\n", ev->size());
    for (size_t i = 0; i < ev->size(); ++i) {
        const Json& e = ev->at(i);
        const std::string who = e.get_string("who");
        std::fprintf(out, "  %s %-8s %-12s %s%s%s\n", e.get_string("time").c_str(), e.get_string("severity").c_str(),
                     e.get_string("kind").c_str(), e.get_string("text").c_str(), who.empty() ? "" : "  [by ",
                     who.empty() ? "" : (who + "]").c_str());
    }
}

// filter: "host 2 accepts 10.0.0.5:40000 -> 10.0.0.10:80/tcp: rule ..., bucket ... is owned by host 2".
void print_filter(std::FILE* out, const Json& r) {
    if (!r.is_object()) {
        print_generic(out, r);
        return;
    }
    const Json* by = r.find("accepted_by");
    const std::string who = by != nullptr && by->is_int() ? "host " + std::to_string(by->as_int()) : "no host";
    std::fprintf(out, "%s accepts %s\n  %s\n", who.c_str(), r.get_string("flow").c_str(),
                 r.get_string("reason").c_str());
    if (const std::string n = r.get_string("note"); !n.empty()) std::fprintf(out, "  note: %s\n", n.c_str());
    std::fprintf(out, "  (asked host %lld, epoch %lld, verdict here: %s)\n", static_cast<long long>(r.get_int("host")),
                 static_cast<long long>(r.get_int("epoch")), r.get_string("verdict").c_str());
}

// host: one line per host that answered, then the hosts that did not.
void print_host(std::FILE* out, const Json& r) {
    const Json* res = r.is_object() ? r.find("results") : nullptr;
    if (res == nullptr || !res->is_array()) {
        print_generic(out, r);
        return;
    }
    for (size_t i = 0; i < res->size(); ++i) {
        const Json& h = res->at(i);
        std::fprintf(out, "host %lld: %s%s\n", static_cast<long long>(h.get_int("host")),
                     h.get_bool("ok") ? "" : "refused: ", h.get_string("message").c_str());
    }
    if (const Json* m = r.find("missing"); m != nullptr && m->is_array())
        for (size_t i = 0; i < m->size(); ++i)
            std::fprintf(out, "host %lld: no answer\n", static_cast<long long>(m->at(i).as_int()));
}

// cluster: one block per host, NLB Manager style.
void print_cluster(std::FILE* out, const Json& r) {
    if (!r.is_object() || r.find("hosts") == nullptr || !r.find("hosts")->is_array()) {
        print_generic(out, r);
        return;
    }
    std::fprintf(out, "Cluster %s as host %lld sees it: %s, epoch %lld\n", r.get_string("cluster").c_str(),
                 static_cast<long long>(r.get_int("asked")), r.get_string("state").c_str(),
                 static_cast<long long>(r.get_int("epoch")));
    const Json& hosts = *r.find("hosts");
    for (size_t i = 0; i < hosts.size(); ++i) {
        const Json& h = hosts.at(i);
        std::string flags = h.get_bool("alive") ? (h.get_bool("member") ? "member" : "alive, not a member") : "dead";
        if (h.get_bool("excluded")) flags += ", excluded (mismatch)";
        if (!h.get_bool("same_map")) flags += ", other map";
        std::fprintf(out, "\nhost %lld%s: %s (%s), epoch %lld, health checks down: %lld\n",
                     static_cast<long long>(h.get_int("host")), h.get_bool("self") ? " (this host)" : "",
                     h.get_string("state").c_str(), flags.c_str(), static_cast<long long>(h.get_int("epoch")),
                     static_cast<long long>(h.get_int("health_down")));
        if (const Json* hears = h.find("hears"); hears != nullptr && hears->is_array()) {
            std::string list;
            for (size_t k = 0; k < hears->size(); ++k) {
                if (k) list += ',';
                list += std::to_string(hears->at(k).as_int());
            }
            std::fprintf(out, "  hears hosts [%s]%s\n", list.c_str(),
                         h.get_bool("vouched") ? "; silent here, alive because another host hears it" : "");
        }
        const Json* rules = h.find("rules");
        if (rules == nullptr || !rules->is_array() || rules->size() == 0) {
            std::fprintf(out, "  (its rules are not known yet)\n");
            continue;
        }
        std::fprintf(out, "  %-34s %-9s %-9s %-12s %s\n", "rule", "mode", "state", "weight/prio", "owned");
        for (size_t k = 0; k < rules->size(); ++k) {
            const Json& ru = rules->at(k);
            const std::string wp = ru.contains("priority") ? "prio " + std::to_string(ru.get_int("priority"))
                                                           : std::to_string(ru.get_int("weight"));
            std::fprintf(out, "  %-34s %-9s %-9s %-12s %lld%s\n", ru.get_string("rule").c_str(),
                         ru.get_string("mode").c_str(), ru.get_string("state").c_str(), wp.c_str(),
                         static_cast<long long>(ru.get_int("owned")), ru.get_bool("in_force") ? "" : " (not in force)");
        }
    }
}

// ---- printers per command ----------------------------------------------------

// One row per registry command (commands.hpp), any order.
constexpr CommandPrinter kPrinters[] = {
    {"query", print_query},       {"display", print_display}, {"params", print_generic},
    {"stats", print_stats},       {"start", print_action},    {"stop", print_action},
    {"drainstop", print_action},  {"suspend", print_action},  {"resume", print_action},
    {"enable", print_action},     {"disable", print_action},  {"drain", print_action},
    {"reload", print_action},     {"filter", print_filter},   {"cluster", print_cluster},
    {"ip2mac", print_generic},    {"queryport", print_generic},
    {"buckets", print_generic},
    {"host", print_host},
};
static_assert(covers_every_command(kPrinters), "every registry command needs exactly one nlbctl printer");

bool parse_int(std::string_view s, int& out) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

std::span<const CommandPrinter> printer_table() { return kPrinters; }

Printer printer_for(std::string_view command) {
    for (const CommandPrinter& p : kPrinters)
        if (p.name == command) return p.print;
    return nullptr;
}

void print_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: nlbctl [--socket PATH] [--json] [--timeout MS] COMMAND [ARGS]\n"
                 "  --socket PATH  control socket of nlbd (default: $NLBCTL_SOCKET, else %s)\n"
                 "  --json         print the daemon's result as JSON\n"
                 "  --timeout MS   how long to wait for the answer (default 10000)\n"
                 "  --remote HOST:PORT  talk to nlbd's remote control over mutual TLS instead\n"
                 "    --cert F --key F  our client certificate and key (PEM; its CN is our identity)\n"
                 "    --ca F            CA that signed the server's certificate\n"
                 "    --server-name N   also require the server's certificate to cover N (and send it as SNI)\n"
                 "commands (ROLE: what a --remote client needs; the local socket runs all):\n",
                 kDefaultSocketPath);
    for (const Command& c : kCommands)
        std::fprintf(out, "  %-32s %-6s %.*s\n", synopsis(c).c_str(), role_name(c.role),
                     static_cast<int>(c.help.size()), c.help.data());
    std::fprintf(out, "  %-32s %-6s %s\n", "cert SUBCOMMAND ...", "local",
                 "certificates: request|issue|export|import|check|show (no daemon; nlbctl cert --help)");
    std::fprintf(out, "exit status: 0 ok, 1 command failed, 2 usage error, 3 cannot connect\n");
}

ParseOutcome parse_command_line(const std::vector<std::string>& argv) {
    ParseOutcome o;
    Invocation& inv = o.inv;
    if (const char* env = std::getenv("NLBCTL_SOCKET"); env && *env) inv.socket = env;
    else inv.socket = kDefaultSocketPath;
    auto err = [&](std::string msg) {
        o.ok = false;
        o.error = std::move(msg);
        return o;
    };
    bool options_done = false;
    bool have_command = false;
    bool cluster = false;
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        // drainstop --timeout S: the command's own option (not nlbctl's --timeout).
        if (have_command && inv.command == "drainstop" && (a == "--timeout" || a.rfind("--timeout=", 0) == 0)) {
            if (a == "--timeout") {
                if (i + 1 >= argv.size()) return err("drainstop --timeout needs a number of seconds");
                inv.args.push_back(argv[++i]);
            } else {
                inv.args.push_back(a.substr(10));
            }
            continue;
        }
        if (!options_done && a.size() > 1 && a[0] == '-') {
            auto value = [&](std::string_view opt, std::string& out) -> bool {
                if (a.size() > opt.size() && a.compare(0, opt.size(), opt) == 0 && a[opt.size()] == '=') {
                    out = a.substr(opt.size() + 1);
                    return true;
                }
                if (i + 1 >= argv.size()) return false;
                out = argv[++i];
                return true;
            };
            std::string v;
            if (a == "--") {
                options_done = true;
            } else if (a == "--json" || a == "-j") {
                inv.json = true;
            } else if (a == "--cluster") {
                cluster = true;  // query --cluster: NLB's cluster-wide query
            } else if (a == "--help" || a == "-h") {
                inv.help = true;
            } else if (a == "--socket" || a == "-s" || a.rfind("--socket=", 0) == 0) {
                if (!value(a[1] == 's' ? "-s" : "--socket", v) || v.empty()) return err("--socket needs a path");
                inv.socket = v;
            } else if (a == "--timeout" || a.rfind("--timeout=", 0) == 0) {
                if (!value("--timeout", v) || !parse_int(v, inv.timeout_ms) || inv.timeout_ms <= 0)
                    return err("--timeout needs a positive number of milliseconds");
            } else if (a == "--remote" || a.rfind("--remote=", 0) == 0) {
                if (!value("--remote", v) || v.empty()) return err("--remote needs host:port");
                inv.remote = v;
            } else if (a == "--cert" || a.rfind("--cert=", 0) == 0) {
                if (!value("--cert", v) || v.empty()) return err("--cert needs a PEM file");
                inv.cert = v;
            } else if (a == "--key" || a.rfind("--key=", 0) == 0) {
                if (!value("--key", v) || v.empty()) return err("--key needs a PEM file");
                inv.key = v;
            } else if (a == "--ca" || a.rfind("--ca=", 0) == 0) {
                if (!value("--ca", v) || v.empty()) return err("--ca needs a PEM file");
                inv.ca = v;
            } else if (a == "--server-name" || a.rfind("--server-name=", 0) == 0) {
                if (!value("--server-name", v) || v.empty()) return err("--server-name needs a host name");
                inv.server_name = v;
            } else {
                return err("unknown option '" + a + "'");
            }
            continue;
        }
        if (!have_command) {
            inv.command = a;
            have_command = true;
        } else {
            inv.args.push_back(a);
        }
    }
    if (inv.command == "help") inv.help = true;
    if (inv.help) {
        o.ok = true;
        return o;
    }
    if (!have_command) return err("no command given");
    if (cluster) {
        if (inv.command != "query") return err("--cluster goes with query (nlbctl query --cluster)");
        inv.command = "cluster";
    }
    if (!inv.remote.empty() && (inv.cert.empty() || inv.key.empty() || inv.ca.empty()))
        return err("--remote needs --cert, --key and --ca");
    if (inv.remote.empty() && (!inv.cert.empty() || !inv.key.empty() || !inv.ca.empty() || !inv.server_name.empty()))
        return err("--cert, --key, --ca and --server-name go with --remote");
    const Command* cmd = find_command(inv.command);
    if (!cmd) return err("unknown command '" + inv.command + "'");
    if (std::string e = argument_error(*cmd, inv.args); !e.empty()) return err(std::move(e));
    o.ok = true;
    return o;
}

int print_response(std::FILE* out, std::FILE* err, const Invocation& inv, const Json& response) {
    const Json* ok = response.find("ok");
    if (!ok || !ok->is_bool()) {
        std::fprintf(err, "nlbctl: malformed response from the daemon: %s\n", response.dump().c_str());
        return kExitFailed;
    }
    if (!ok->as_bool()) {
        std::string msg = response.get_string("error", "(no error message)");
        std::fprintf(err, "nlbctl: %s failed: %s\n", inv.command.c_str(), msg.c_str());
        if (inv.json) std::fprintf(out, "%s\n", response.dump_pretty().c_str());
        return kExitFailed;
    }
    static const Json kNull;
    const Json* result = response.find("result");
    if (!result) result = &kNull;
    if (inv.json) {
        std::fprintf(out, "%s\n", result->dump_pretty().c_str());
        return kExitOk;
    }
    const Printer print = printer_for(inv.command);
    try {
        (print ? print : print_generic)(out, *result);
    } catch (const std::exception& e) {
        // A printer met a shape it cannot show: fall back to the raw result.
        std::fprintf(out, "%s\n", result->dump_pretty().c_str());
    }
    return kExitOk;
}

int nlbctl_main(const std::vector<std::string>& argv, std::FILE* out, std::FILE* err) {
    // Local commands (`cert`) need no daemon and have their own options.
    if (std::optional<int> rc = cert::run_local_command(argv, out, err)) return *rc;
    ParseOutcome p = parse_command_line(argv);
    if (!p.ok) {
        std::fprintf(err,
                     "nlbctl: %s\n"
                     "usage: nlbctl [--socket PATH] [--json] [--timeout MS] COMMAND [ARGS]  (nlbctl --help lists the commands)\n",
                     p.error.c_str());
        return kExitUsage;
    }
    if (p.inv.help) {
        print_usage(out);
        return kExitOk;
    }
    Json response;
    try {
        if (!p.inv.remote.empty())
            response = call_remote({p.inv.remote, p.inv.cert, p.inv.key, p.inv.ca, p.inv.server_name},
                                   p.inv.command, p.inv.args, p.inv.timeout_ms);
        else
            response = call(p.inv.socket, p.inv.command, p.inv.args, p.inv.timeout_ms);
    } catch (const ConnectError& e) {
        std::fprintf(err, "nlbctl: %s\n", e.what());
        return kExitConnect;
    } catch (const std::exception& e) {
        std::fprintf(err, "nlbctl: %s\n", e.what());
        return kExitFailed;
    }
    return print_response(out, err, p.inv, response);
}

}  // namespace nlbd::ctl
