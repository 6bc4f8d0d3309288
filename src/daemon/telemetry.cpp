#include "nlbd/daemon/telemetry.hpp"

#include <rte_telemetry.h>

#include <cstdio>
#include <string>
#include <utility>

namespace nlbd::daemon {

using ctl::Json;

void TelemetryCache::update(Json doc) {
    auto p = std::make_shared<const Json>(std::move(doc));
    std::lock_guard lock(mu_);
    doc_ = std::move(p);
}

TelemetryCache::Doc TelemetryCache::get() const {
    std::lock_guard lock(mu_);
    return doc_;
}

// ---------------------------------------------------------------------------
// Views (pure)

Json telemetry_stats_view(const Json& doc) {
    Json out = Json::object();
    if (!doc.is_object()) return out;
    for (const auto& [k, v] : doc.as_object())
        if (k != "rules" && k != "cluster_state" && k != "no_rule") out[k] = v;
    return out;
}

Json telemetry_rules_view(const Json& doc) {
    Json out = Json::object();
    const Json* rules = doc.find("rules");
    const Json* cs = doc.find("cluster_state");
    const Json* owned = cs != nullptr ? cs->find("rules") : nullptr;
    if (rules != nullptr && rules->is_array()) {
        for (const Json& r : rules->as_array()) {
            Json o = r;
            // State and health check from the query's per-rule entry.
            const Json* entry = nullptr;
            if (owned != nullptr && owned->is_array())
                for (const Json& w : owned->as_array())
                    if (w.get_int("rule", -1) == r.get_int("index")) entry = &w;
            if (!o.contains("state")) {
                std::string state = entry != nullptr ? entry->get_string("state") : "";
                if (state.empty()) state = r.get_string("mode") == "disabled" ? "disabled" : "active";
                o["state"] = state;
            }
            if (const Json* h = entry != nullptr ? entry->find("health") : nullptr; h && !o.contains("health"))
                o["health"] = *h;
            out[std::to_string(r.get_int("index"))] = std::move(o);
        }
    }
    if (const Json* nr = doc.find("no_rule"); nr != nullptr) out["none"] = *nr;
    return out;
}

Json telemetry_cluster_view(const Json& doc) {
    const Json* cs = doc.find("cluster_state");
    return cs != nullptr && cs->is_object() ? *cs : Json::object();
}

// ---------------------------------------------------------------------------
// JSON -> rte_tel_data. DPDK 22.11 nests containers one level deep only, keeps
// at most RTE_TEL_MAX_DICT_ENTRIES per dict and RTE_TEL_MAX_STRING_LEN-1
// bytes per string: deeper values are flattened with dotted names or written
// as compact JSON strings. Names keep [A-Za-z0-9_/-] only ("a_b" for a
// nested "a"."b"). Booleans become 0/1, non-integers strings.

namespace {

std::string clip(std::string s) {
    if (s.size() >= RTE_TEL_MAX_STRING_LEN) s.resize(RTE_TEL_MAX_STRING_LEN - 1);
    return s;
}

// Dict names: DPDK accepts [A-Za-z0-9_/-] only (a name with another
// character is refused and the entry silently missing).
std::string name_of(const std::string& s) {
    std::string n = clip(s);
    for (char& c : n) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '_' || c == '/' || c == '-';
        if (!ok) c = '_';
    }
    return n;
}

std::string scalar_text(const Json& v) {
    if (v.is_string()) return v.as_string();
    return v.dump();
}

bool is_scalar(const Json& v) { return !v.is_array() && !v.is_object(); }

void add_scalar(rte_tel_data* d, const std::string& name, const Json& v) {
    const std::string n = name_of(name);
    if (v.is_int() && v.as_int() >= 0) {
        rte_tel_data_add_dict_u64(d, n.c_str(), static_cast<uint64_t>(v.as_int()));
    } else if (v.is_bool()) {
        rte_tel_data_add_dict_u64(d, n.c_str(), v.as_bool() ? 1 : 0);
    } else {
        rte_tel_data_add_dict_string(d, n.c_str(), clip(scalar_text(v)).c_str());
    }
}

// Array of scalars as one string "a,b,c" (inside a container).
std::string joined(const Json& a) {
    std::string s;
    for (const Json& e : a.as_array()) {
        if (!s.empty()) s += ',';
        s += is_scalar(e) ? scalar_text(e) : e.dump();
    }
    return s;
}

// Fills container dict d with obj's members, nested objects flattened as "a.b".
void fill_flat(rte_tel_data* d, const Json& obj, const std::string& prefix) {
    for (const auto& [k, v] : obj.as_object()) {
        const std::string name = prefix.empty() ? k : prefix + "_" + k;
        if (v.is_object()) fill_flat(d, v, name);
        else if (v.is_array()) rte_tel_data_add_dict_string(d, name_of(name).c_str(), clip(joined(v)).c_str());
        else add_scalar(d, name, v);
    }
}

rte_tel_data* container_of(const Json& v) {
    rte_tel_data* c = rte_tel_data_alloc();
    if (c == nullptr) return nullptr;
    if (v.is_object()) {
        rte_tel_data_start_dict(c);
        fill_flat(c, v, "");
        return c;
    }
    bool all_u64 = true, all_string = true;
    for (const Json& e : v.as_array()) {
        all_u64 = all_u64 && e.is_int() && e.as_int() >= 0;
        all_string = all_string && e.is_string();
    }
    if (all_u64) {
        rte_tel_data_start_array(c, RTE_TEL_U64_VAL);
        for (const Json& e : v.as_array()) rte_tel_data_add_array_u64(c, static_cast<uint64_t>(e.as_int()));
    } else {
        rte_tel_data_start_array(c, RTE_TEL_STRING_VAL);
        for (const Json& e : v.as_array())
            rte_tel_data_add_array_string(c, clip(all_string ? e.as_string() : e.dump()).c_str());
    }
    return c;
}

void add_container(rte_tel_data* d, const std::string& name, const Json& v) {
    rte_tel_data* c = container_of(v);
    if (c == nullptr) return;
    if (rte_tel_data_add_dict_container(d, name_of(name).c_str(), c, 0) != 0) rte_tel_data_free(c);
}

// The top-level dict of an answer.
void to_tel(rte_tel_data* d, const Json& doc) {
    rte_tel_data_start_dict(d);
    if (!doc.is_object()) return;
    for (const auto& [k, v] : doc.as_object()) {
        if (is_scalar(v)) {
            add_scalar(d, k, v);
        } else if (v.is_object()) {
            add_container(d, k, v);
        } else {
            bool objects = v.size() > 0;
            for (const Json& e : v.as_array()) objects = objects && e.is_object();
            if (!objects) {
                add_container(d, k, v);
                continue;
            }
            // Array of objects (peers, mismatches, ...): one container each,
            // named after its id when it has one.
            size_t i = 0;
            for (const Json& e : v.as_array()) {
                std::string id = std::to_string(i++);
                for (const char* key : {"id", "index", "rule"})
                    if (const Json* x = e.find(key); x != nullptr && is_scalar(*x)) {
                        id = scalar_text(*x);
                        break;
                    }
                add_container(d, k + "_" + id, e);
            }
        }
    }
}

std::mutex g_source_mu;
std::shared_ptr<const TelemetryCache> g_source;

using View = Json (*)(const Json&);

int answer(rte_tel_data* d, View view) {
    std::shared_ptr<const TelemetryCache> src;
    {
        std::lock_guard lock(g_source_mu);
        src = g_source;
    }
    if (src == nullptr) return -1;
    const TelemetryCache::Doc doc = src->get();
    if (doc == nullptr) return -1;
    try {
        to_tel(d, view(*doc));
    } catch (...) {
        return -1;
    }
    return 0;
}

int on_stats(const char*, const char*, rte_tel_data* d) { return answer(d, &telemetry_stats_view); }
int on_rules(const char*, const char*, rte_tel_data* d) { return answer(d, &telemetry_rules_view); }
int on_cluster(const char*, const char*, rte_tel_data* d) { return answer(d, &telemetry_cluster_view); }

}  // namespace

void set_dpdk_telemetry_source(std::shared_ptr<const TelemetryCache> cache) {
    std::lock_guard lock(g_source_mu);
    g_source = std::move(cache);
}

bool register_dpdk_telemetry(std::shared_ptr<const TelemetryCache> cache) {
    set_dpdk_telemetry_source(std::move(cache));
    static bool registered = false;
    static bool ok = false;
    if (registered) return ok;
    registered = true;
    ok = rte_telemetry_register_cmd("/nlbd/stats", on_stats,
                                    "Every nlbd counter: verdicts, parse errors, ports, "
                                    "fragments, connections, heartbeats. No parameters") == 0;
    ok = rte_telemetry_register_cmd("/nlbd/rules", on_rules,
                                    "Per port rule: counters, buckets owned, state. No "
                                    "parameters") == 0 &&
         ok;
    ok = rte_telemetry_register_cmd("/nlbd/cluster", on_cluster,
                                    "Cluster state (nlbctl query): state, epoch, members, "
                                    "default host, peers, mismatches. No parameters") == 0 &&
         ok;
    return ok;
}

}  // namespace nlbd::daemon
