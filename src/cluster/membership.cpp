// Membership and convergence state machine (see membership.hpp for the model
// and docs/design.md, "Membership", for the rationale).

#include "nlbd/cluster/membership.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>

#include "nlbd/core/bucket_map.hpp"

namespace nlbd::cluster {
namespace {

constexpr uint32_t kEchoSeed = 0x6563686f;  // Snapshot::echo_seed
constexpr HostId kUnfilled = 0xfe;           // reassembly: bucket not received yet

inline uint64_t mix64(uint64_t h) noexcept {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

struct Digest {
    uint64_t h = 0x6e6c62642d6d6170ull;  // "nlbd-map"
    void add(uint64_t w) noexcept { h = mix64(h ^ w) + 0x9e3779b97f4a7c15ull; }
};

inline uint64_t bit(HostId h) noexcept { return h == kNoHost ? 0 : (1ull << (h - 1)); }

}  // namespace

std::string_view name_of(ClusterState s) noexcept {
    switch (s) {
    case ClusterState::stopped: return "stopped";
    case ClusterState::suspended: return "suspended";
    case ClusterState::converging: return "converging";
    case ClusterState::converged: return "converged";
    case ClusterState::converged_default: return "converged_default";
    case ClusterState::draining: return "draining";
    }
    return "unknown";
}

std::string_view name_of(HostState s) noexcept {
    switch (s) {
    case HostState::stopped: return "stopped";
    case HostState::started: return "started";
    case HostState::draining: return "draining";
    case HostState::suspended: return "suspended";
    }
    return "unknown";
}

std::string_view name_of(RuleState s) noexcept {
    switch (s) {
    case RuleState::enabled: return "enabled";
    case RuleState::draining: return "draining";
    case RuleState::disabled: return "disabled";
    }
    return "unknown";
}

std::string_view name_of(MismatchKind k) noexcept {
    switch (k) {
    case MismatchKind::rules_fingerprint: return "rules_fingerprint";
    case MismatchKind::duplicate_id: return "duplicate_id";
    case MismatchKind::duplicate_peer: return "duplicate_peer";
    case MismatchKind::bucket_count: return "bucket_count";
    case MismatchKind::duplicate_priority: return "duplicate_priority";
    }
    return "unknown";
}

Membership::Membership(MembershipConfig cfg, uint64_t now_ns) : cfg_(std::move(cfg)) {
    cfg_.buckets = std::clamp(cfg_.buckets, kMinBuckets, kMaxBuckets);
    if (cfg_.interval_ns == 0) cfg_.interval_ns = 1'000'000'000;
    if (cfg_.tolerance == 0) cfg_.tolerance = 1;
    cfg_.redundancy = std::clamp<uint32_t>(cfg_.redundancy, 1, 10);
    if (cfg_.listen_ns == 0) cfg_.listen_ns = 2 * cfg_.interval_ns;
    if (cfg_.chunk_buckets == 0) cfg_.chunk_buckets = 512;
    set_rules(cfg_.rules);
    rule_states_.assign(rules_.size(), RuleState::enabled);
    state_ = cfg_.initial_state;
    start_ns_ = now_ns;
    next_send_ns_ = now_ns;
    dirty_from_.clear();
    single_dirty_from_.clear();
    recompute(now_ns);
}

// Canonical order (rule_record ascending), the maps between it and the
// configured order, the fingerprint, the chunk size that fits next to them.
void Membership::set_rules(std::vector<PortRule> configured) {
    configured = rules_or_default(configured);
    std::vector<uint32_t> order = canonical_rule_order(configured);
    rules_.clear();
    config_index_ = order;
    canon_of_.assign(order.size(), 0);
    auto recs = std::make_shared<Records>();
    for (uint32_t k = 0; k < order.size(); ++k) {
        rules_.push_back(configured[order[k]]);
        canon_of_[order[k]] = k;
        recs->push_back(rule_record(configured[order[k]]));
    }
    records_ = std::move(recs);
    fingerprint_ = cluster::rules_fingerprint(std::span<const RuleRecord>(*records_));
    remember_list(fingerprint_, records_);
    // A chunk shares its frame with the per-rule arrays: never more owners
    // than fit in one 1514-byte heartbeat next to this many rules.
    cfg_.chunk_buckets = std::min<uint32_t>(
        cfg_.chunk_buckets == 0 ? 512 : cfg_.chunk_buckets,
        static_cast<uint32_t>(max_chunk_owners(rules_.size())));
}

size_t Membership::find_record(const Records& sorted, const RuleRecord& r) {
    auto it = std::lower_bound(sorted.begin(), sorted.end(), r);
    return it != sorted.end() && *it == r ? static_cast<size_t>(it - sorted.begin()) : SIZE_MAX;
}

std::shared_ptr<const Membership::Records> Membership::known_list(uint64_t fingerprint) const {
    for (const KnownList& k : known_)
        if (k.fingerprint == fingerprint) return k.records;
    return nullptr;
}

void Membership::remember_list(uint64_t fingerprint, std::shared_ptr<const Records> list) {
    constexpr size_t kMaxKnownLists = 16;
    for (KnownList& k : known_)
        if (k.fingerprint == fingerprint) {
            k.use = ++known_use_;
            return;
        }
    if (known_.size() >= kMaxKnownLists) {
        // Evict the least recently used list nobody (ourselves included) uses.
        auto victim = known_.end();
        for (auto it = known_.begin(); it != known_.end(); ++it) {
            bool used = it->fingerprint == fingerprint_;
            for (const Peer& p : peers_) used |= p.heard && p.rules == it->records;
            if (!used && (victim == known_.end() || it->use < victim->use)) victim = it;
        }
        if (victim == known_.end()) return;
        known_.erase(victim);
    }
    known_.push_back(KnownList{fingerprint, std::move(list), ++known_use_});
}

// The peer's per-rule view follows its heartbeat once the list behind the
// advertised fingerprint is known; until then it stays on the last known one.
void Membership::refresh_peer_rules(HostId h) {
    Peer& p = peers_[h];
    if (!p.heard) return;
    if (p.rules && p.rules_hb.rules_fingerprint == p.hb.rules_fingerprint &&
        p.rules_hb.boot_id == p.hb.boot_id) {
        p.rules_hb = p.hb;
        return;
    }
    if (auto list = known_list(p.hb.rules_fingerprint); list && list->size() == p.hb.weights.size()) {
        p.rules = std::move(list);
        p.rules_hb = p.hb;
        inputs_dirty_ = true;
    } else if (p.rules && p.rules_hb.boot_id != p.hb.boot_id) {
        p.rules.reset();  // a restarted process: its earlier list says nothing
        inputs_dirty_ = true;
    }
}

// ---- inputs ---------------------------------------------------------------

uint8_t Membership::own_weight(size_t k) const {
    const PortRule& r = rules_[k];
    if (r.mode != FilterMode::multiple) return 0;
    const size_t i = config_index_[k];
    if (i < cfg_.weights.size()) return std::min<uint8_t>(cfg_.weights[i], 100);
    return effective_weight(r);
}

uint8_t Membership::own_priority(size_t k) const {
    const PortRule& r = rules_[k];
    if (r.mode != FilterMode::single) return 0;
    const size_t i = config_index_[k];
    if (i < cfg_.priorities.size()) return cfg_.priorities[i];
    return r.handling_priority;
}

RuleState Membership::rule_state(size_t rule) const {
    return rule < canon_of_.size() ? rule_states_[canon_of_[rule]] : RuleState::enabled;
}

std::vector<std::pair<std::string, RuleState>> Membership::rule_states_by_name() const {
    std::vector<std::pair<std::string, RuleState>> out;
    for (size_t k = 0; k < rules_.size(); ++k) out.emplace_back(rule_name(rules_[k]), rule_states_[k]);
    return out;
}

Membership::RuleView Membership::rule_view(HostId h) const {
    RuleView v;
    if (h == cfg_.self) {
        v.records = records_.get();
        v.states = &rule_states_;
        return v;  // weights and priorities: own_weight / own_priority
    }
    const Peer& p = peers_[h];
    if (!p.rules) return v;
    v.records = p.rules.get();
    v.weights = &p.rules_hb.weights;
    v.prios = &p.rules_hb.priorities;
    v.states = &p.rules_hb.rule_states;
    return v;
}

uint64_t Membership::liveness_clock(uint64_t now_ns) const {
    // Our own link down: we hear nothing because of ourselves, so the
    // liveness clock stands still at the link-down time.
    uint64_t t = link_up_ ? now_ns : std::min(now_ns, link_down_ns_);
    // A receive path that has not caught up (starved worker lcore): what it
    // has not handed over yet says nothing about the peers. Bounded: at most
    // one more dead interval.
    const uint64_t dead = cfg_.tolerance * cfg_.interval_ns;
    if (rx_horizon_ns_ != 0 && rx_horizon_ns_ < t)
        t = std::max(rx_horizon_ns_, t > dead ? t - dead : 0);
    return t;
}

bool Membership::alive(HostId h, uint64_t now_ns) const {
    if (h == cfg_.self) return true;
    if (h == kNoHost || h > kMaxHosts) return false;
    const Peer& p = peers_[h];
    if (!p.heard) return false;
    const uint64_t t = liveness_clock(now_ns);
    const uint64_t silence = p.last_seen_ns >= t ? 0 : t - p.last_seen_ns;
    const uint64_t dead = cfg_.tolerance * cfg_.interval_ns;
    if (silence < dead) return true;
    // Indirect confirmation. A real death ends it by itself: the others stop
    // hearing the dead host, and a vouch is at most two intervals old, so
    // it is still seen within (tolerance + 2) x interval. The cap only
    // bounds a path that stays lossy beyond any vouch.
    return silence < 2 * dead && vouched(h, t);
}

// Another peer, itself heard within the last interval, said in that
// heartbeat that it heard `h` within the interval before it.
bool Membership::vouched(HostId h, uint64_t t) const {
    const uint64_t mask = bit(h);
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId c = static_cast<HostId>(id);
        if (c == h || c == cfg_.self) continue;
        const Peer& q = peers_[c];
        if (!q.heard || (q.hb.heard & mask) == 0) continue;
        if (q.last_seen_ns >= t || t - q.last_seen_ns < cfg_.interval_ns) return true;
    }
    return false;
}

// Alive, or declared dead so recently that it may be alive behind a lossy
// path and still hold its connections (see the model: hold).
bool Membership::may_hold(HostId h, uint64_t now_ns) const {
    if (alive(h, now_ns)) return true;
    if (h == kNoHost || h > kMaxHosts || !peers_[h].heard) return false;
    const uint64_t t = liveness_clock(now_ns);
    const Peer& p = peers_[h];
    const uint64_t dead = cfg_.tolerance * cfg_.interval_ns;
    return p.last_seen_ns >= t || t - p.last_seen_ns < dead + 3 * dead;
}

uint64_t Membership::heard_bits(uint64_t now_ns) const {
    uint64_t bits = 0;
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        const Peer& p = peers_[h];
        if (h == cfg_.self || !p.heard || !link_up_) continue;
        if (p.last_seen_ns >= now_ns || now_ns - p.last_seen_ns < cfg_.interval_ns) bits |= bit(h);
    }
    return bits;
}

bool Membership::stale(HostId h) const {
    return rejoining_ && h != cfg_.self && h != kNoHost && h <= kMaxHosts && !peers_[h].fresh;
}

bool Membership::excluded(HostId h, uint64_t now_ns) const {
    const uint64_t dead = cfg_.tolerance * cfg_.interval_ns;
    if (h == cfg_.self) return dup_self_heard_ && now_ns - dup_self_seen_ns_ < dead;
    const Peer& p = peers_[h];
    if (!p.heard) return false;
    if (!p.rules || p.hb.buckets != cfg_.buckets) return true;
    if (now_ns < p.dup_until_ns) return true;
    return false;
}

bool Membership::is_member(HostId h, uint64_t now_ns) const {
    if (h == cfg_.self) return state_ == HostState::started && !excluded(h, now_ns);
    return alive(h, now_ns) && !excluded(h, now_ns) && peers_[h].hb.state == HostState::started;
}

Membership::Inputs Membership::inputs_for_view(uint64_t view) const {
    Inputs in;
    in.view = view;
    std::vector<RuleView> views;
    bool same = true;  // every member applies our own list: the universe is ours
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        if ((view & bit(h)) == 0) continue;
        const RuleView v = rule_view(h);
        if (v.records == nullptr) continue;  // never a member; defensive
        in.members.push_back(h);
        views.push_back(v);
        same &= v.records == records_.get() || *v.records == *records_;
    }
    if (same) {
        in.universe = *records_;
    } else {
        // Per key, the version held by the most members (absence counts);
        // ties: the version held by the lowest id.
        struct Version {
            const RuleRecord* rec;
            unsigned count;
            HostId lowest;
        };
        std::vector<std::pair<const RuleRecord*, HostId>> all;
        for (size_t m = 0; m < views.size(); ++m)
            for (const RuleRecord& r : *views[m].records) all.emplace_back(&r, in.members[m]);
        std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
            return *a.first != *b.first ? *a.first < *b.first : a.second < b.second;
        });
        for (size_t i = 0; i < all.size();) {
            size_t j = i;
            while (j < all.size() && same_rule_key(*all[j].first, *all[i].first)) ++j;
            // all[i, j): one key, sorted by version then host.
            std::vector<Version> versions;
            uint64_t holders = 0;
            for (size_t k = i; k < j; ++k) {
                holders |= bit(all[k].second);
                if (versions.empty() || *versions.back().rec != *all[k].first)
                    versions.push_back(Version{all[k].first, 0, all[k].second});
                ++versions.back().count;
                versions.back().lowest = std::min(versions.back().lowest, all[k].second);
            }
            const Version* best = nullptr;
            for (const Version& v : versions)
                if (!best || v.count > best->count || (v.count == best->count && v.lowest < best->lowest))
                    best = &v;
            const uint64_t absent = view & ~holders;
            const unsigned absent_count = static_cast<unsigned>(__builtin_popcountll(absent));
            const HostId absent_lowest =
                absent == 0 ? kNoHost : static_cast<HostId>(__builtin_ctzll(absent) + 1);
            const bool absent_wins = absent_count > best->count ||
                                     (absent_count == best->count && absent_lowest < best->lowest);
            if (!absent_wins) in.universe.push_back(*best->rec);
            i = j;
        }
    }
    const size_t n = in.universe.size();
    for (size_t m = 0; m < views.size(); ++m) {
        const HostId h = in.members[m];
        const RuleView& v = views[m];
        std::vector<uint8_t> w(n, 0), p(n, 0), part(n, 0);
        for (size_t u = 0; u < n; ++u) {
            const size_t k = find_record(*v.records, in.universe[u]);
            if (k == SIZE_MAX) continue;
            part[u] = 1;
            RuleState rs;
            uint8_t wi, pi;
            if (h == cfg_.self) {
                rs = rule_states_[k];
                wi = own_weight(k);
                pi = own_priority(k);
            } else {
                rs = k < v.states->size() ? (*v.states)[k] : RuleState::enabled;
                wi = k < v.weights->size() ? std::min<uint8_t>((*v.weights)[k], 100) : 0;
                pi = k < v.prios->size() ? (*v.prios)[k] : 0;
            }
            const bool on = rs == RuleState::enabled;
            const auto mode = static_cast<FilterMode>(in.universe[u][22]);
            w[u] = on && mode == FilterMode::multiple ? wi : 0;
            p[u] = on && mode == FilterMode::single ? pi : 0;
        }
        in.weights.push_back(std::move(w));
        in.prios.push_back(std::move(p));
        in.part.push_back(std::move(part));
    }
    return in;
}

uint64_t Membership::member_view(uint64_t now_ns) const {
    uint64_t view = 0;
    for (unsigned id = 1; id <= kMaxHosts; ++id)
        if (is_member(static_cast<HostId>(id), now_ns)) view |= bit(static_cast<HostId>(id));
    return view;
}

Membership::Inputs Membership::current_inputs(uint64_t now_ns) const {
    return inputs_for_view(member_view(now_ns));
}

// Classes: multiple-mode universe rules with equal per-member weight vectors
// share one map, numbered by their first rule. Also fills single-mode owners.
void Membership::classify(MapSet& m) const {
    const Records& U = m.inputs.universe;
    const size_t n = U.size();
    m.rule_class.assign(n, core::kNoClass);
    m.single.assign(n, kNoHost);
    std::unordered_map<std::string, uint16_t> seen;  // weight vector -> class
    uint16_t classes = 0;
    for (size_t i = 0; i < n; ++i) {
        const auto mode = static_cast<FilterMode>(U[i][22]);
        if (mode == FilterMode::multiple) {
            std::string key;
            key.reserve(m.inputs.members.size());
            for (const auto& w : m.inputs.weights) key.push_back(static_cast<char>(w[i]));
            auto [it, fresh] = seen.emplace(std::move(key), classes);
            if (fresh) ++classes;
            m.rule_class[i] = it->second;
        } else if (mode == FilterMode::single) {
            // Best (lowest non-zero) handling priority, else the lowest id,
            // among the members that hold this version of the rule.
            HostId best = kNoHost;
            unsigned best_prio = 256;
            for (size_t k = 0; k < m.inputs.members.size(); ++k) {
                if (!m.inputs.part[k][i]) continue;
                if (best == kNoHost) best = m.inputs.members[k];
                const uint8_t p = m.inputs.prios[k][i];
                if (p != 0 && p < best_prio) {
                    best_prio = p;
                    best = m.inputs.members[k];
                }
            }
            m.single[i] = best;
        }
    }
    m.maps.resize(static_cast<size_t>(classes) + 1);  // + echo
}

uint64_t Membership::digest_of(const MapSet& m) const {
    Digest d;
    d.add(cfg_.buckets);
    d.add(m.maps.size());
    d.add(m.inputs.universe.size());
    for (const RuleRecord& r : m.inputs.universe)
        for (size_t o = 0; o < kRuleRecordLen; o += 4)
            d.add(uint64_t{r[o]} << 24 | uint64_t{r[o + 1]} << 16 | uint64_t{r[o + 2]} << 8 | r[o + 3]);
    for (uint16_t c : m.rule_class) d.add(c);
    for (HostId h : m.single) d.add(h);
    for (const auto& map : m.maps) {
        uint64_t w = 0;
        unsigned k = 0;
        for (HostId h : map) {
            w = (w << 8) | h;
            if (++k == 8) {
                d.add(w);
                w = 0;
                k = 0;
            }
        }
        d.add(w ^ (static_cast<uint64_t>(k) << 60));
    }
    return d.h;
}

bool Membership::peers_have_maps(uint64_t now_ns) const {
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        if (h != cfg_.self && is_member(h, now_ns) && peers_[h].hb.epoch > 0) return true;
    }
    return false;
}

// ---- maps -----------------------------------------------------------------

Membership::MapSet Membership::compute(Inputs in) const {
    MapSet next;
    if (has_base_ && in == base_.inputs) return base_;
    next.inputs = std::move(in);
    next.view = next.inputs.view;
    next.epoch = has_base_ ? base_.epoch + 1 : 1;
    classify(next);
    const uint32_t B = cfg_.buckets;
    const Records& U = next.inputs.universe;
    std::vector<core::MemberWeight> mw(next.inputs.members.size());
    for (size_t i = 0; i < U.size(); ++i) {
        const uint16_t c = next.rule_class[i];
        if (c == core::kNoClass || !next.maps[c].empty()) continue;
        for (size_t k = 0; k < mw.size(); ++k)
            mw[k] = core::MemberWeight{next.inputs.members[k], next.inputs.weights[k][i]};
        const std::optional<PortRule> first = rule_from_record(U[i]);
        const uint32_t seed = core::rule_seed(core::rule_identity(first ? *first : PortRule{}));
        // A class continues the base map of its first rule that has one
        // (classes may split or merge when weights change; a rule new to the
        // universe has none).
        uint16_t bc = core::kNoClass;
        if (has_base_)
            for (size_t j = i; j < U.size() && bc == core::kNoClass; ++j) {
                if (next.rule_class[j] != c) continue;
                const size_t b = find_record(base_.inputs.universe, U[j]);
                if (b != SIZE_MAX && base_.rule_class[b] != core::kNoClass &&
                    base_.maps[base_.rule_class[b]].size() == B)
                    bc = base_.rule_class[b];
            }
        if (bc != core::kNoClass)
            next.maps[c] = core::rebalance_bucket_map(base_.maps[bc], mw, B, seed);
        else
            next.maps[c] = core::build_bucket_map(mw, B, seed);
    }
    for (size_t k = 0; k < mw.size(); ++k)
        mw[k] = core::MemberWeight{next.inputs.members[k], kEqualWeight};
    if (has_base_ && !base_.maps.empty() && base_.maps.back().size() == B)
        next.maps.back() = core::rebalance_bucket_map(base_.maps.back(), mw, B, kEchoSeed);
    else
        next.maps.back() = core::build_bucket_map(mw, B, kEchoSeed);
    next.digest = digest_of(next);
    return next;
}

void Membership::recompute(uint64_t now_ns) {
    // Link down: nothing we (do not) hear says anything about the cluster.
    if (!link_up_) return;
    // Fast path: same members, nobody's weights or states changed.
    if (has_current_ && !inputs_dirty_ && member_view(now_ns) == cur_.inputs.view) return;
    Inputs in = current_inputs(now_ns);
    if (has_current_ && in == cur_.inputs) {
        inputs_dirty_ = false;
        return;
    }
    if (!has_base_ && !has_current_) {
        // Cold: wait for the cluster's maps, or listen before building alone.
        if (peers_have_maps(now_ns)) return;
        if (now_ns - start_ns_ < cfg_.listen_ns) return;
    }
    inputs_dirty_ = false;
    install(compute(std::move(in)), false, now_ns);
}

void Membership::install(MapSet next, bool adopted, uint64_t now_ns) {
    if (has_current_ && next.epoch == cur_.epoch && next.digest == cur_.digest &&
        next.view == cur_.view) {
        cur_.inputs = next.inputs;
        return;
    }
    const uint32_t B = cfg_.buckets;
    const Records& U = next.inputs.universe;
    // Dirty hand-over: a bucket that leaves a host still holding connections.
    // A host holds connections of a rule unless it is gone, stopped, or has
    // the rule (any version, same key) disabled.
    auto holder = [&](HostId h, const RuleRecord& rec) {
        if (h == kNoHost) return false;
        if (h != cfg_.self) {
            if (!may_hold(h, now_ns) || excluded(h, now_ns)) return false;
            const Heartbeat& hb = peers_[h].hb;
            if (hb.state != HostState::started && hb.state != HostState::draining) return false;
        } else if (state_ != HostState::started && state_ != HostState::draining) {
            return false;
        }
        const RuleView v = rule_view(h);
        if (v.records == nullptr) return true;
        RuleRecord key{};
        std::copy(rec.begin(), rec.begin() + kRuleKeyLen, key.begin());
        auto it = std::lower_bound(v.records->begin(), v.records->end(), key);
        if (it == v.records->end() || !same_rule_key(*it, rec)) return true;
        const size_t k = static_cast<size_t>(it - v.records->begin());
        return k >= v.states->size() || (*v.states)[k] != RuleState::disabled;
    };
    bool any_other_holder = false;
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        if (h == cfg_.self || !peers_[h].heard || !may_hold(h, now_ns) || excluded(h, now_ns)) continue;
        const HostState st = peers_[h].hb.state;
        any_other_holder |= st == HostState::started || st == HostState::draining;
    }
    // A bucket moving again keeps the hosts it was still dirty from (e.g. a
    // draining host's bucket whose new owner died) next to its previous owner
    // `from` (kNoHost when that one holds nothing): two holders -> kAnyHost.
    auto carried_dirty = [&](HostId from, HostId old_from, HostId n, const RuleRecord& rec) {
        if (old_from == kNoHost || old_from == n || old_from == from) return from;
        const bool holds = old_from == kAnyHost ? any_other_holder : holder(old_from, rec);
        if (!holds) return from;
        return from == kNoHost ? old_from : kAnyHost;
    };
    // The same rule (record) in the current maps, if it is there.
    auto in_current = [&](size_t u) {
        return has_current_ ? find_record(cur_.inputs.universe, U[u]) : SIZE_MAX;
    };

    // Per class and bucket: the dirty source, combined over the class's rules
    // (a class may merge rules whose current maps differ: each rule's own
    // history counts). Per rule and bucket: withheld until converged.
    const bool fresh_ok = has_current_ || adopted;
    std::vector<std::vector<HostId>> dirty(next.maps.size() - 1);
    std::vector<std::vector<uint8_t>> withhold(U.size());
    for (auto& row : dirty) row.assign(B, kNoHost);
    std::vector<std::vector<uint16_t>> seen_old(dirty.size());  // per class: old classes combined
    std::vector<uint8_t> has_fresh(dirty.size(), 0);
    Records new_fresh;
    auto combine = [](HostId a, HostId b) {
        if (a == kNoHost) return b;
        if (b == kNoHost || a == b) return a;
        return kAnyHost;
    };
    for (size_t i = 0; i < U.size(); ++i) {
        const uint16_t c = next.rule_class[i];
        if (c == core::kNoClass) continue;
        const size_t cu = in_current(i);
        const uint16_t oc = cu != SIZE_MAX && cur_.rule_class[cu] != core::kNoClass &&
                                    cur_.maps[cur_.rule_class[cu]].size() == B
                                ? cur_.rule_class[cu]
                                : core::kNoClass;
        // A rule version new to the universe (rolling change): others may
        // hold connections made under another version or rule, wherever its
        // buckets go next, until no peer holds foreign connections any more
        // (update_dirty clears fresh_records_ with the kAnyHost marks).
        const bool fresh = oc == core::kNoClass || find_record(fresh_records_, U[i]) != SIZE_MAX;
        if (oc == core::kNoClass && has_current_ && any_other_holder) new_fresh.push_back(U[i]);
        if (fresh && !has_fresh[c] && fresh_ok && any_other_holder) {
            for (uint32_t b = 0; b < B; ++b)
                if (next.maps[c][b] == cfg_.self) dirty[c][b] = combine(dirty[c][b], kAnyHost);
            has_fresh[c] = 1;
        }
        if (oc == core::kNoClass) {
            // No history: adopted maps, or the new version above: unknown
            // previous owner. A new version is also withheld until the
            // cluster has converged on it.
            if (has_current_ && any_other_holder) {
                withhold[i].assign(B, 0);
                for (uint32_t b = 0; b < B; ++b) withhold[i][b] = next.maps[c][b] == cfg_.self;
            }
            continue;
        }
        const std::vector<HostId>& old = cur_.maps[oc];
        const std::vector<uint8_t>* old_withhold =
            cu < withhold_.size() && withhold_[cu].size() == B ? &withhold_[cu] : nullptr;
        // Gained after our own reload, or still withheld: until converged.
        for (uint32_t b = 0; b < B; ++b) {
            const HostId n = next.maps[c][b];
            if (n == cfg_.self && ((settling_ && old[b] != n) || (old_withhold && (*old_withhold)[b]))) {
                if (withhold[i].empty()) withhold[i].assign(B, 0);
                withhold[i][b] = 1;
            }
        }
        auto& merged = seen_old[c];
        if (std::find(merged.begin(), merged.end(), oc) != merged.end()) continue;  // combined already
        merged.push_back(oc);
        const std::vector<HostId>* old_dirty =
            oc < dirty_from_.size() && dirty_from_[oc].size() == B ? &dirty_from_[oc] : nullptr;
        for (uint32_t b = 0; b < B; ++b) {
            const HostId o = old[b], n = next.maps[c][b];
            const HostId od = old_dirty ? (*old_dirty)[b] : kNoHost;
            const HostId d = o == n ? od : carried_dirty(holder(o, U[i]) ? o : kNoHost, od, n, U[i]);
            dirty[c][b] = combine(dirty[c][b], d);
        }
    }
    std::vector<HostId> single_dirty(U.size(), kNoHost);
    std::vector<uint8_t> single_withhold(U.size(), 0);
    for (size_t i = 0; i < U.size(); ++i) {
        if (static_cast<FilterMode>(U[i][22]) != FilterMode::single) continue;
        const HostId n = next.single[i];
        const size_t cu = in_current(i);
        if (cu == SIZE_MAX) {
            if (has_current_ && any_other_holder) new_fresh.push_back(U[i]);
            single_dirty[i] = (has_current_ || adopted) && n == cfg_.self && any_other_holder ? kAnyHost
                                                                                             : kNoHost;
            single_withhold[i] = has_current_ && n == cfg_.self && any_other_holder;
            continue;
        }
        const HostId o = cur_.single[cu];
        if (n == cfg_.self && any_other_holder && find_record(fresh_records_, U[i]) != SIZE_MAX) {
            single_dirty[i] = kAnyHost;
            // Gained after our own reload (settling_) is withheld here too,
            // as below and as multiple-mode buckets are: the previous owner
            // answers SYNs until it hears of our change (a rule turned single
            // host by host whose best priority reloads last).
            single_withhold[i] = (settling_ && o != n) || (cu < single_withhold_.size() && single_withhold_[cu]);
            continue;
        }
        single_withhold[i] = n == cfg_.self && ((settling_ && o != n) ||
                                                (cu < single_withhold_.size() && single_withhold_[cu]));
        const HostId old_from = cu < single_dirty_from_.size() ? single_dirty_from_[cu] : kNoHost;
        single_dirty[i] = o == n ? old_from : carried_dirty(holder(o, U[i]) ? o : kNoHost, old_from, n, U[i]);
    }
    single_dirty_from_ = std::move(single_dirty);
    for (const RuleRecord& r : new_fresh)
        if (find_record(fresh_records_, r) == SIZE_MAX)
            fresh_records_.insert(std::lower_bound(fresh_records_.begin(), fresh_records_.end(), r), r);
    withhold_ = std::move(withhold);
    single_withhold_ = std::move(single_withhold);
    dirty_from_ = std::move(dirty);
    has_dirty_ = true;  // update_dirty() below recounts
    const bool maps_changed = !has_current_ || next.digest != cur_.digest;
    cur_ = std::move(next);
    has_current_ = true;
    cur_since_ns_ = now_ns;
    converged_ = false;
    ++epoch_changes_;
    if (adopted) ++map_adoptions_;
    if (maps_changed) {
        held_foreign_ = kHeldUnknown;
        ownership_changed_ = true;
    }
    changed_ = true;
    next_send_ns_ = std::min(next_send_ns_, now_ns);  // advertise the change at once
    for (Peer& p : peers_) p.differ_since_ns = 0;
    mark_merging(now_ns);
    mark_rejoining();
    for (unsigned id = 1; id <= kMaxHosts; ++id)
        if (static_cast<HostId>(id) != cfg_.self && alive(static_cast<HostId>(id), now_ns))
            note_synced(static_cast<HostId>(id));
    check_converged(now_ns);
    update_dirty(now_ns);
}

void Membership::check_converged(uint64_t now_ns) {
    if (!has_current_ || !link_up_) {
        converged_ = false;
        return;
    }
    if (inputs_dirty_ || member_view(now_ns) != cur_.view) {
        converged_ = false;  // a change is pending (cold host waiting for maps)
        return;
    }
    bool all = true;
    for (unsigned id = 1; id <= kMaxHosts && all; ++id) {
        const HostId h = static_cast<HostId>(id);
        if (h == cfg_.self || !is_member(h, now_ns)) continue;
        const Heartbeat& hb = peers_[h].hb;
        // Rejoining: what a peer said before our link came up is no agreement.
        all = !stale(h) && hb.view == cur_.view && hb.epoch == cur_.epoch &&
              hb.map_digest == cur_.digest;
    }
    converged_ = all;
    if (all) {
        settling_ = false;
        const bool any = std::any_of(withhold_.begin(), withhold_.end(), [](const auto& row) {
                             return std::find(row.begin(), row.end(), 1) != row.end();
                         }) ||
                         std::find(single_withhold_.begin(), single_withhold_.end(), 1) != single_withhold_.end();
        withhold_.clear();
        single_withhold_.clear();
        if (any) changed_ = true;  // take what was withheld: republish
    }
    // Reconverged with every member heard since link-up (or alone): the
    // rejoining marks now clear by the normal hand-over rule (update_dirty).
    if (all && rejoining_) {
        rejoining_ = false;
        changed_ = true;  // take new connections again: republish
    }
    if (all && (!has_base_ || base_.digest != cur_.digest || base_.epoch != cur_.epoch ||
                base_.view != cur_.view)) {
        base_ = cur_;
        has_base_ = true;
    }
}

void Membership::update_dirty(uint64_t now_ns) {
    if (!has_dirty_ && fresh_records_.empty()) return;
    auto same_map = [&](HostId h) {
        const Heartbeat& hb = peers_[h].hb;
        return hb.view == cur_.view && hb.epoch == cur_.epoch && hb.map_digest == cur_.digest;
    };
    // clear[h]: host h no longer holds connections we must leave to it.
    bool clear[kMaxHosts + 1] = {};
    bool any_holding = false;
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        bool c;
        if (h == cfg_.self) {
            c = held_foreign_ == 0 || state_ == HostState::stopped ||
                state_ == HostState::suspended;
        } else {
            const Peer& p = peers_[h];
            const bool holds = may_hold(h, now_ns) && !excluded(h, now_ns) &&
                               (p.hb.state == HostState::started ||
                                p.hb.state == HostState::draining);
            c = !holds || (!stale(h) && same_map(h) && p.hb.held_foreign == 0);
            if (holds && !c) any_holding = true;
        }
        clear[id] = c;
    }
    bool changed = false;
    bool left = false;
    auto clears = [&](HostId from) {
        if (from == kAnyHost) return !any_holding;
        return from <= kMaxHosts && clear[from];
    };
    for (auto& row : dirty_from_)
        for (HostId& f : row) {
            if (f == kNoHost) continue;
            if (clears(f)) {
                f = kNoHost;
                changed = true;
            } else {
                left = true;
            }
        }
    for (HostId& f : single_dirty_from_) {
        if (f == kNoHost) continue;
        if (clears(f)) {
            f = kNoHost;
            changed = true;
        } else {
            left = true;
        }
    }
    has_dirty_ = left;
    if (!any_holding) fresh_records_.clear();  // nobody holds what a new version's buckets may hide
    if (changed) changed_ = true;
}

HostId Membership::authority(uint64_t now_ns) const {
    // Groups of members with maps agreeing on (epoch, digest), in ascending id
    // order of their lowest member. Largest wins; ties go to the group holding
    // the lowest id (the earlier one). Same heartbeats -> same answer anywhere.
    struct Group {
        uint64_t epoch, digest;
        unsigned size;
        HostId lowest;
    };
    Group groups[kMaxHosts];
    size_t n = 0;
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        if (!is_member(h, now_ns)) continue;
        uint64_t e, d;
        if (h == cfg_.self) {
            if (!has_current_) continue;
            e = cur_.epoch;
            d = cur_.digest;
        } else {
            e = peers_[h].hb.epoch;
            d = peers_[h].hb.map_digest;
            if (e == 0 || stale(h)) continue;  // stale: maps from before our link-up
        }
        size_t g = 0;
        while (g < n && (groups[g].epoch != e || groups[g].digest != d)) ++g;
        if (g == n) groups[n++] = Group{e, d, 0, h};
        ++groups[g].size;
    }
    const Group* best = nullptr;
    for (size_t g = 0; g < n; ++g)
        if (!best || groups[g].size > best->size) best = &groups[g];
    return best ? best->lowest : kNoHost;
}

bool Membership::merging(HostId h, uint64_t now_ns) const {
    if (!has_base_ || h == cfg_.self || h == kNoHost || h > kMaxHosts) return false;
    if ((base_.view & bit(h)) != 0) return false;  // agreed with us last time
    const Peer& p = peers_[h];
    if (p.synced || p.hb.epoch == 0) return false;
    if (!alive(h, now_ns) || excluded(h, now_ns)) return false;
    return p.hb.state == HostState::started || p.hb.state == HostState::draining;
}

void Membership::note_synced(HostId h) {
    Peer& p = peers_[h];
    if (has_current_ && p.heard && p.hb.view == cur_.view && p.hb.epoch == cur_.epoch &&
        p.hb.map_digest == cur_.digest)
        p.synced = true;
}

// Every bucket this host owns is dirty from the merging peer(s): they may hold
// connections anywhere, and ownership is not agreed with them yet.
void Membership::mark_merging(uint64_t now_ns) {
    if (!has_current_) return;
    HostId from = kNoHost;
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        if (!merging(h, now_ns)) continue;
        from = from == kNoHost ? h : kAnyHost;
    }
    if (from == kNoHost) return;
    auto mark = [&](HostId& f) {
        const HostId nf = f == kNoHost || f == from ? from : kAnyHost;
        if (nf == f) return false;
        f = nf;
        return true;
    };
    const uint32_t B = cfg_.buckets;
    bool changed = false;
    for (size_t c = 0; c + 1 < cur_.maps.size() && c < dirty_from_.size(); ++c) {
        if (dirty_from_[c].size() != B || cur_.maps[c].size() != B) continue;
        for (uint32_t b = 0; b < B; ++b)
            if (cur_.maps[c][b] == cfg_.self) changed |= mark(dirty_from_[c][b]);
    }
    for (size_t i = 0; i < cur_.single.size() && i < single_dirty_from_.size(); ++i)
        if (cur_.single[i] == cfg_.self) changed |= mark(single_dirty_from_[i]);
    if (changed) {
        has_dirty_ = true;
        changed_ = true;  // publish the dirty flags at once
    }
}

// Rejoining (link down, or up and not reconverged): every bucket this host
// owns is dirty from an unknown host.
void Membership::mark_rejoining() {
    if (!rejoining_ || !has_current_) return;
    const uint32_t B = cfg_.buckets;
    bool changed = false;
    for (size_t c = 0; c + 1 < cur_.maps.size() && c < dirty_from_.size(); ++c) {
        if (dirty_from_[c].size() != B || cur_.maps[c].size() != B) continue;
        for (uint32_t b = 0; b < B; ++b)
            if (cur_.maps[c][b] == cfg_.self && dirty_from_[c][b] != kAnyHost) {
                dirty_from_[c][b] = kAnyHost;
                changed = true;
            }
    }
    for (size_t i = 0; i < cur_.single.size() && i < single_dirty_from_.size(); ++i)
        if (cur_.single[i] == cfg_.self && single_dirty_from_[i] != kAnyHost) {
            single_dirty_from_[i] = kAnyHost;
            changed = true;
        }
    if (changed) {
        has_dirty_ = true;
        changed_ = true;  // publish the dirty flags at once
    }
}

// ---- events ---------------------------------------------------------------

void Membership::set_link(bool up, uint64_t now_ns) {
    if (up == link_up_) return;
    ++link_changes_;
    for (Peer& p : peers_) p.fresh = false;
    if (!up) {
        link_down_ns_ = now_ns;
        link_up_ = false;
        converged_ = false;
        rejoining_ = true;
        mark_rejoining();
        changed_ = true;
        return;
    }
    // Every peer alive when the link went down gets tolerance x interval to
    // be heard again (its clock restarts now); the dead stay dead.
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        if (h == cfg_.self) continue;
        Peer& p = peers_[h];
        p.differ_since_ns = 0;
        if (alive(h, now_ns)) p.last_seen_ns = std::max(p.last_seen_ns, now_ns);
    }
    link_up_ = true;
    rejoining_ = true;
    mark_rejoining();
    changed_ = true;
    next_send_ns_ = std::min(next_send_ns_, now_ns);  // tell the peers we are back
    recompute(now_ns);
    check_converged(now_ns);
    update_dirty(now_ns);
}

void Membership::set_state(HostState s, uint64_t now_ns) {
    if (s == state_) return;
    state_ = s;
    inputs_dirty_ = true;
    held_foreign_ = kHeldUnknown;
    ownership_changed_ = true;
    changed_ = true;
    next_send_ns_ = std::min(next_send_ns_, now_ns);
    recompute(now_ns);
    check_converged(now_ns);
    update_dirty(now_ns);
}

void Membership::set_rule_state(size_t rule, RuleState s, uint64_t now_ns) {
    if (rule >= canon_of_.size() || rule_states_[canon_of_[rule]] == s) return;
    rule_states_[canon_of_[rule]] = s;
    inputs_dirty_ = true;
    held_foreign_ = kHeldUnknown;
    ownership_changed_ = true;
    changed_ = true;
    next_send_ns_ = std::min(next_send_ns_, now_ns);
    recompute(now_ns);
    update_dirty(now_ns);
}

void Membership::set_held_foreign(uint32_t n, uint64_t generation, uint64_t now_ns) {
    // A count against maps older than the current ownership is meaningless.
    if (ownership_changed_ || generation < maps_generation_) return;
    if (held_foreign_ == n) return;
    // The first valid count after a change is news for the new owners.
    if (held_foreign_ == kHeldUnknown) next_send_ns_ = std::min(next_send_ns_, now_ns);
    held_foreign_ = n;
    update_dirty(now_ns);
    tick(now_ns);
}

void Membership::on_heartbeat(const Heartbeat& hb, uint64_t now_ns) {
    const HostId h = hb.host;
    if (h == kNoHost || h > kMaxHosts) return;
    if (hb.rule_list) {
        if (h != cfg_.self) take_rule_list(hb, now_ns);
        return;
    }
    if (h == cfg_.self) {
        if (hb.boot_id == cfg_.boot_id) return;  // our own frame looped back
        dup_self_heard_ = true;
        dup_self_boot_ = hb.boot_id;
        dup_self_seen_ns_ = now_ns;
        inputs_dirty_ = true;
        recompute(now_ns);
        check_converged(now_ns);
        return;
    }
    Peer& p = peers_[h];
    const uint64_t dead = cfg_.tolerance * cfg_.interval_ns;
    // Back from the dead (partition) or restarted: not synced with us any more.
    if (p.heard && ((now_ns - p.last_seen_ns >= dead && !alive(h, now_ns)) ||
                    hb.boot_id != p.hb.boot_id))
        p.synced = false;
    if (p.heard && hb.boot_id != p.hb.boot_id) {
        // A restart switches boot ids once; hearing the previous boot id
        // again within the dead interval means two processes claim the id.
        if (hb.boot_id == p.other_boot_id && now_ns - p.other_last_ns < dead)
            p.dup_until_ns = now_ns + dead;
        p.other_boot_id = p.hb.boot_id;
        p.other_last_ns = p.last_seen_ns;
        p.first_seen_ns = now_ns;
    }
    if (!p.heard || hb.boot_id != p.hb.boot_id || hb.state != p.hb.state ||
        hb.weights != p.hb.weights || hb.priorities != p.hb.priorities ||
        hb.rule_states != p.hb.rule_states || hb.rules_fingerprint != p.hb.rules_fingerprint ||
        hb.buckets != p.hb.buckets)
        inputs_dirty_ = true;
    if (!p.heard) p.first_seen_ns = now_ns;
    p.heard = true;
    if (link_up_) p.fresh = true;  // frames queued before a link-down are no news
    p.last_seen_ns = now_ns;
    p.hb = hb;
    p.hb.chunk.reset();
    refresh_peer_rules(h);
    recompute(now_ns);
    if (hb.chunk) take_chunk(hb, now_ns);
    mark_merging(now_ns);  // before this heartbeat can count as synced
    note_synced(h);
    check_converged(now_ns);
    update_dirty(now_ns);
}

void Membership::take_chunk(const Heartbeat& hb, uint64_t now_ns) {
    const MapChunk& ch = *hb.chunk;
    const uint32_t B = cfg_.buckets;
    if (authority(now_ns) != hb.host) return;
    if (has_current_ && hb.epoch == cur_.epoch && hb.map_digest == cur_.digest &&
        hb.view == cur_.view)
        return;  // already ours
    if (ch.map_classes == 0 || ch.map_classes > kMaxRules + 1 || ch.map_class >= ch.map_classes ||
        ch.offset >= B || ch.owners.size() > B - ch.offset || ch.epoch != hb.epoch)
        return;
    if (rx_.from != hb.host || rx_.boot_id != hb.boot_id || rx_.epoch != hb.epoch ||
        rx_.digest != hb.map_digest || rx_.view != hb.view || rx_.classes != ch.map_classes) {
        rx_ = Reassembly{};
        rx_.from = hb.host;
        rx_.boot_id = hb.boot_id;
        rx_.epoch = hb.epoch;
        rx_.digest = hb.map_digest;
        rx_.view = hb.view;
        rx_.classes = ch.map_classes;
        rx_.maps.assign(ch.map_classes, std::vector<HostId>(B, kUnfilled));
        rx_.filled.assign(ch.map_classes, 0);
    }
    auto& map = rx_.maps[ch.map_class];
    for (size_t k = 0; k < ch.owners.size(); ++k) {
        HostId o = ch.owners[k];
        if (o > kMaxHosts) o = kNoHost;
        HostId& slot = map[ch.offset + k];
        if (slot == kUnfilled) ++rx_.filled[ch.map_class];
        slot = o;
    }
    for (uint32_t f : rx_.filled)
        if (f != B) return;
    // Complete: rebuild the class structure from the sender's view and check.
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId x = static_cast<HostId>(id);
        if ((rx_.view & bit(x)) && x != cfg_.self && !peers_[x].heard) return;  // wait
    }
    MapSet m;
    m.inputs = inputs_for_view(rx_.view);
    m.view = rx_.view;
    m.epoch = rx_.epoch;
    classify(m);
    if (m.maps.size() != rx_.classes) {
        rx_ = Reassembly{};
        return;
    }
    m.maps = std::move(rx_.maps);
    m.digest = digest_of(m);
    const uint64_t want = rx_.digest;
    rx_ = Reassembly{};
    if (m.digest != want) return;  // inputs moved meanwhile; the next round retries
    base_ = std::move(m);
    has_base_ = true;
    // Our current maps: the adopted base continued with our own inputs.
    inputs_dirty_ = false;
    install(compute(current_inputs(now_ns)), true, now_ns);
}

// RuleList frames: reassembled per sender; a complete list whose records
// are canonical (ascending, one per key) and match its fingerprint becomes
// known, and every peer advertising that fingerprint is judged on it.
void Membership::take_rule_list(const Heartbeat& hb, uint64_t now_ns) {
    const RuleList& l = *hb.rule_list;
    if (l.total == 0 || l.total > kMaxRules || size_t{l.offset} + l.records.size() > l.total) return;
    if (known_list(l.fingerprint)) {
        remember_list(l.fingerprint, known_list(l.fingerprint));
    } else {
        ListRx& rx = list_rx_[hb.host];
        if (rx.boot_id != hb.boot_id || rx.fingerprint != l.fingerprint || rx.total != l.total) {
            rx = ListRx{};
            rx.boot_id = hb.boot_id;
            rx.fingerprint = l.fingerprint;
            rx.total = l.total;
            rx.records.assign(l.total, RuleRecord{});
            rx.have.assign(l.total, 0);
        }
        for (size_t k = 0; k < l.records.size(); ++k) {
            const size_t at = l.offset + k;
            if (!rx.have[at]) ++rx.filled;
            rx.have[at] = 1;
            rx.records[at] = l.records[k];
        }
        if (rx.filled != rx.total) return;
        auto list = std::make_shared<Records>(std::move(rx.records));
        rx = ListRx{};
        bool canonical = true;
        for (size_t k = 1; k < list->size() && canonical; ++k)
            canonical = (*list)[k - 1] < (*list)[k] && !same_rule_key((*list)[k - 1], (*list)[k]);
        if (!canonical || cluster::rules_fingerprint(std::span<const RuleRecord>(*list)) != l.fingerprint)
            return;
        remember_list(l.fingerprint, std::move(list));
    }
    bool any = false;
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        if (h == cfg_.self || !peers_[h].heard || peers_[h].hb.rules_fingerprint != l.fingerprint) continue;
        if (peers_[h].rules && peers_[h].rules_hb.rules_fingerprint == l.fingerprint) continue;
        refresh_peer_rules(h);
        any = true;
    }
    if (!any) return;
    recompute(now_ns);
    check_converged(now_ns);
    update_dirty(now_ns);
}

bool Membership::dynamic_peers_heard() const {
    for (unsigned id = 1; id <= kMaxHosts; ++id)
        if (static_cast<HostId>(id) != cfg_.self && peers_[id].heard) return true;
    return false;
}

bool Membership::rule_frames_due(uint64_t now_ns) const {
    if (rule_frames_sent_once_ && now_ns - last_rule_frames_ns_ < cfg_.interval_ns) return false;
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        if (h == cfg_.self) continue;
        const Peer& p = peers_[h];
        if (p.heard && alive(h, now_ns) && p.hb.rules_fingerprint != fingerprint_) return true;
    }
    return false;
}

void Membership::reconfigure(MembershipConfig next, uint64_t now_ns) {
    // Operator states follow the rule key (VIP, ports, protocol).
    std::vector<std::pair<RuleRecord, RuleState>> old_states;
    for (size_t k = 0; k < rules_.size(); ++k) old_states.emplace_back((*records_)[k], rule_states_[k]);
    const uint64_t old_fp = fingerprint_;
    cfg_.interval_ns = next.interval_ns == 0 ? cfg_.interval_ns : next.interval_ns;
    cfg_.tolerance = next.tolerance == 0 ? cfg_.tolerance : next.tolerance;
    cfg_.redundancy = std::clamp<uint32_t>(next.redundancy, 1, 10);
    cfg_.listen_ns = 2 * cfg_.interval_ns;
    cfg_.vips = std::move(next.vips);
    cfg_.rules = std::move(next.rules);
    cfg_.weights = std::move(next.weights);
    cfg_.priorities = std::move(next.priorities);
    cfg_.chunk_buckets = next.chunk_buckets;
    set_rules(cfg_.rules);
    rule_states_.assign(rules_.size(), RuleState::enabled);
    for (size_t k = 0; k < rules_.size(); ++k)
        for (const auto& [rec, st] : old_states)
            if (same_rule_key(rec, (*records_)[k])) rule_states_[k] = st;
    if (fingerprint_ != old_fp)
        for (unsigned id = 1; id <= kMaxHosts; ++id)
            if (static_cast<HostId>(id) != cfg_.self) refresh_peer_rules(static_cast<HostId>(id));
    inputs_dirty_ = true;
    held_foreign_ = kHeldUnknown;
    ownership_changed_ = true;
    changed_ = true;
    settling_ = dynamic_peers_heard();
    converged_ = false;
    rule_frames_sent_once_ = false;                    // tell the peers our list at once
    next_send_ns_ = std::min(next_send_ns_, now_ns);  // and our new per-rule arrays
    recompute(now_ns);
    check_converged(now_ns);
    update_dirty(now_ns);
}

void Membership::tick(uint64_t now_ns) {
    const uint64_t dead = cfg_.tolerance * cfg_.interval_ns;
    if (dup_self_heard_ && now_ns - dup_self_seen_ns_ >= dead) {
        dup_self_heard_ = false;
        inputs_dirty_ = true;
    }
    recompute(now_ns);
    check_converged(now_ns);
    update_dirty(now_ns);
    // Drainstop ends by itself once no connection is held outside our buckets.
    if (state_ == HostState::draining && held_foreign_ == 0) set_state(HostState::stopped, now_ns);
    // Track members whose maps differ from ours (for the authority's chunks).
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        Peer& p = peers_[h];
        if (h == cfg_.self || !alive(h, now_ns)) {
            p.differ_since_ns = 0;
            if (h != cfg_.self) p.synced = false;
            continue;
        }
        const bool same = has_current_ && p.hb.view == cur_.view && p.hb.epoch == cur_.epoch &&
                          p.hb.map_digest == cur_.digest;
        if (same)
            p.differ_since_ns = 0;
        else if (p.differ_since_ns == 0)
            p.differ_since_ns = now_ns;
    }
}

Heartbeat Membership::base_heartbeat(uint64_t wall_ns, uint64_t now_ns) {
    Heartbeat hb;
    hb.cluster_id = cfg_.cluster_id;
    hb.host = cfg_.self;
    hb.state = state_;
    hb.boot_id = cfg_.boot_id;
    last_sequence_ = std::max(last_sequence_ + 1, wall_ns);
    hb.sequence = last_sequence_;
    hb.epoch = has_current_ ? cur_.epoch : 0;
    hb.view = has_current_ ? cur_.view : 0;
    hb.rules_fingerprint = fingerprint_;
    hb.map_digest = has_current_ ? cur_.digest : 0;
    hb.buckets = cfg_.buckets;
    hb.health_down = health_down_;
    hb.heard = now_ns != 0 ? heard_bits(now_ns) : 0;
    hb.held_foreign = state_ == HostState::stopped || state_ == HostState::suspended ? 0
                                                                                      : held_foreign_;
    hb.weights.resize(rules_.size());
    hb.priorities.resize(rules_.size());
    for (size_t i = 0; i < rules_.size(); ++i) {
        hb.weights[i] = own_weight(i);
        hb.priorities[i] = own_priority(i);
    }
    hb.rule_states = rule_states_;
    return hb;
}

Heartbeat Membership::command_frame(uint64_t wall_ns) {
    Heartbeat hb = base_heartbeat(wall_ns);
    hb.weights.clear();
    hb.priorities.clear();
    hb.rule_states.clear();
    return hb;
}

std::vector<Heartbeat> Membership::frames_to_send(uint64_t now_ns, uint64_t wall_ns) {
    std::vector<Heartbeat> out;
    if (now_ns < next_send_ns_) return out;
    tick(now_ns);
    next_send_ns_ = now_ns + cfg_.interval_ns / cfg_.redundancy;
    // Our rule list first, so that a peer knows it when our heartbeat with
    // the new fingerprint arrives.
    if (rule_frames_due(now_ns)) {
        rule_frames_sent_once_ = true;
        last_rule_frames_ns_ = now_ns;
        const Records& recs = *records_;
        for (size_t off = 0; off < recs.size(); off += kMaxRuleRecordsPerFrame) {
            const size_t len = std::min(kMaxRuleRecordsPerFrame, recs.size() - off);
            Heartbeat f = base_heartbeat(wall_ns, now_ns);
            f.weights.clear();
            f.priorities.clear();
            f.rule_states.clear();
            RuleList l;
            l.fingerprint = fingerprint_;
            l.offset = static_cast<uint16_t>(off);
            l.total = static_cast<uint16_t>(recs.size());
            l.records.assign(recs.begin() + static_cast<ptrdiff_t>(off),
                             recs.begin() + static_cast<ptrdiff_t>(off + len));
            f.rule_list = std::move(l);
            out.push_back(std::move(f));
            ++rule_frames_sent_;
        }
    }
    out.push_back(base_heartbeat(wall_ns, now_ns));

    // Chunks: we are the authority and some host lacks our maps, at most once
    // per interval; hosts that merely differ get two intervals to settle.
    if (!has_current_ || authority(now_ns) != cfg_.self) return out;
    if (chunks_sent_once_ && now_ns - last_chunks_ns_ < cfg_.interval_ns) return out;
    const uint64_t settle = 2 * cfg_.interval_ns;
    bool lagging = false;
    for (unsigned id = 1; id <= kMaxHosts && !lagging; ++id) {
        const HostId h = static_cast<HostId>(id);
        if (h == cfg_.self || !is_member(h, now_ns)) continue;
        const Peer& p = peers_[h];
        if (p.hb.epoch == 0)
            lagging = true;
        else if (p.differ_since_ns != 0 && now_ns - p.differ_since_ns >= settle &&
                 now_ns - cur_since_ns_ >= settle)
            lagging = true;
    }
    if (!lagging) return out;
    chunks_sent_once_ = true;
    last_chunks_ns_ = now_ns;
    const uint32_t B = cfg_.buckets;
    for (size_t c = 0; c < cur_.maps.size(); ++c) {
        for (uint32_t off = 0; off < B; off += cfg_.chunk_buckets) {
            const uint32_t len = std::min(cfg_.chunk_buckets, B - off);
            Heartbeat f = base_heartbeat(wall_ns, now_ns);
            MapChunk ch;
            ch.epoch = cur_.epoch;
            ch.map_class = static_cast<uint16_t>(c);
            ch.map_classes = static_cast<uint16_t>(cur_.maps.size());
            ch.offset = off;
            ch.owners.assign(cur_.maps[c].begin() + off, cur_.maps[c].begin() + off + len);
            f.chunk = std::move(ch);
            out.push_back(std::move(f));
            ++chunks_sent_;
        }
    }
    return out;
}

// ---- outputs --------------------------------------------------------------

core::SnapshotInput Membership::snapshot_input() {
    core::SnapshotInput in;
    in.self = cfg_.self;
    in.started = state_ == HostState::started || state_ == HostState::draining;
    in.epoch = has_current_ ? cur_.epoch : 0;
    in.buckets = cfg_.buckets;
    in.mode = cfg_.mode;
    in.vips = cfg_.vips;
    in.rules = rules_or_default(cfg_.rules);
    in.generation = ++generation_;
    if (ownership_changed_) {
        maps_generation_ = generation_;
        ownership_changed_ = false;
    }

    MapSet placeholder;
    const MapSet* m = &cur_;
    if (!has_current_) {
        placeholder.inputs = Inputs{};
        classify(placeholder);
        m = &placeholder;
    }
    const size_t n = in.rules.size();  // configured order
    // Each configured rule's place in the universe (SIZE_MAX: not in force).
    std::vector<size_t> at(n, SIZE_MAX);
    for (size_t i = 0; i < n; ++i) at[i] = find_record(m->inputs.universe, (*records_)[canon_of_[i]]);
    for (size_t k = 0; k < m->inputs.members.size(); ++k) {
        core::Member cm{m->inputs.members[k], std::vector<uint8_t>(n, 0), std::vector<uint8_t>(n, 0)};
        for (size_t i = 0; i < n; ++i)
            if (at[i] != SIZE_MAX) {
                cm.weights[i] = m->inputs.weights[k][at[i]];
                cm.priorities[i] = m->inputs.prios[k][at[i]];
            }
        in.members.push_back(std::move(cm));
    }
    const size_t classes = m->maps.empty() ? 0 : m->maps.size() - 1;
    in.class_maps.assign(m->maps.begin(), m->maps.begin() + static_cast<ptrdiff_t>(classes));
    // A configured rule not in force (or no maps yet) is owned by nobody: one
    // extra class of kNoHost (only the connections already held continue).
    const uint16_t nobody = static_cast<uint16_t>(classes);
    in.class_maps.emplace_back(cfg_.buckets, kNoHost);
    in.rule_class.assign(n, core::kNoClass);
    in.single_owners.assign(n, kNoHost);
    std::vector<size_t> withheld_dirty_from;  // class of each copy after `nobody`
    for (size_t i = 0; i < n; ++i) {
        if (in.rules[i].mode == FilterMode::multiple)
            in.rule_class[i] = at[i] != SIZE_MAX && has_current_ ? m->rule_class[at[i]] : nobody;
        else if (in.rules[i].mode == FilterMode::single && at[i] != SIZE_MAX && has_current_)
            in.single_owners[i] = m->single[at[i]];
    }
    if (has_current_) append_universe_only_rules(in, *m);
    // Withheld buckets (see withhold_): a rule with some gets its own copy of
    // its class's map without them.
    const size_t shared_classes = in.class_maps.size();
    for (size_t i = 0; i < n && has_current_; ++i) {
        const size_t u = at[i];
        if (u == SIZE_MAX || u >= withhold_.size() || withhold_[u].empty()) continue;
        if (in.rule_class[i] == core::kNoClass || in.rule_class[i] >= shared_classes) continue;
        const uint16_t c = in.rule_class[i];
        std::vector<HostId> map = in.class_maps[c];
        for (size_t b = 0; b < map.size() && b < withhold_[u].size(); ++b)
            if (withhold_[u][b] && map[b] == cfg_.self) map[b] = kNoHost;
        in.rule_class[i] = static_cast<uint16_t>(in.class_maps.size());
        in.class_maps.push_back(std::move(map));
        withheld_dirty_from.push_back(c);
    }
    for (size_t i = 0; i < n; ++i)
        if (at[i] != SIZE_MAX && at[i] < single_withhold_.size() && single_withhold_[at[i]] &&
            in.single_owners[i] == cfg_.self)
            in.single_owners[i] = kNoHost;
    in.echo_map = has_current_ && !m->maps.empty() ? m->maps.back()
                                                   : std::vector<HostId>(cfg_.buckets, kNoHost);
    in.class_dirty.resize(in.class_maps.size());
    if (has_current_) {
        for (size_t c = 0; c < in.class_maps.size(); ++c) {
            // Copies made for withheld buckets share their class's flags.
            const size_t from = c < classes ? c : c > classes ? withheld_dirty_from[c - classes - 1] : SIZE_MAX;
            if (from >= dirty_from_.size()) continue;
            const auto& row = dirty_from_[from];
            if (std::none_of(row.begin(), row.end(), [](HostId h) { return h != kNoHost; }))
                continue;
            in.class_dirty[c].resize(row.size());
            for (size_t b = 0; b < row.size(); ++b) in.class_dirty[c][b] = row[b] != kNoHost;
        }
        in.single_dirty.resize(n);
        for (size_t i = 0; i < n; ++i)
            in.single_dirty[i] = at[i] != SIZE_MAX && at[i] < single_dirty_from_.size() &&
                                 single_dirty_from_[at[i]] != kNoHost;
    }
    in.local_disabled.resize(n);
    for (size_t i = 0; i < n; ++i) in.local_disabled[i] = rule_states_[canon_of_[i]] == RuleState::disabled;
    if (rejoining_ && has_current_) withhold_new_traffic(in);
    return in;
}

// Rules in force that this host does not hold under their key at all (it
// removed the rule before its peers did, or they added it first). Without a
// rule of its own there, this host would take their traffic as VIP traffic
// matching no rule and, as the default host, accept every new connection to
// them beside the rule's bucket owner: two SYN-ACKs for one SYN, and the
// client's connection reset by the host whose answer lost (found by
// tests/cluster/test_reload_live.sh, a rule removed host by host from host 1
// on). They are compiled in the universe's version, where this host owns
// nothing (it is not among the rule's holders: weight 0, no priority), after
// the configured rules (config_index >= rules.size(): no counters, names or
// states of their own). So the rule's owners alone take new connections, and
// connections this host made there before its reload stay with it (they are
// in its table: persistence, as for a version not in force). A rule that
// overlaps a configured one of this host (same VIP, a common protocol, ports
// in common) is left out: the rule table needs disjoint intervals.
void Membership::append_universe_only_rules(core::SnapshotInput& in, const MapSet& m) const {
    const size_t n = in.rules.size();
    const Records& own = *records_;
    const auto key_less = [](const RuleRecord& a, const RuleRecord& b) {
        return std::lexicographical_compare(a.begin(), a.begin() + kRuleKeyLen, b.begin(),
                                            b.begin() + kRuleKeyLen);
    };
    const auto overlaps = [&](const PortRule& a) {
        for (size_t i = 0; i < n; ++i) {
            const PortRule& b = in.rules[i];
            const bool proto = a.protocol == Protocol::both || b.protocol == Protocol::both ||
                               a.protocol == b.protocol;
            if (a.vip == b.vip && proto && a.port_lo <= b.port_hi && b.port_lo <= a.port_hi) return true;
        }
        return false;
    };
    for (size_t u = 0; u < m.inputs.universe.size(); ++u) {
        const RuleRecord& rec = m.inputs.universe[u];
        // `own` is sorted bytewise, so by key (a prefix) too.
        const auto it = std::lower_bound(own.begin(), own.end(), rec, key_less);
        if (it != own.end() && same_rule_key(*it, rec)) continue;  // held here (in force or not)
        const std::optional<PortRule> r = rule_from_record(rec);
        if (!r || overlaps(*r)) continue;
        in.rules.push_back(*r);
        in.rule_class.push_back(r->mode == FilterMode::multiple && u < m.rule_class.size() ? m.rule_class[u]
                                                                                           : core::kNoClass);
        in.single_owners.push_back(r->mode == FilterMode::single && u < m.single.size() ? m.single[u] : kNoHost);
        for (core::Member& cm : in.members) {
            cm.weights.push_back(0);
            cm.priorities.push_back(0);
        }
    }
}

// Rejoining after our own link came back: the survivors took our buckets
// while we were cut off and accept their new connections, so until we have
// reconverged we take nothing new ourselves - not even SYNs, which both sides
// would otherwise answer. Our own buckets are published as unowned (packets of
// connections already in our tables are still delivered: accepted_conn), and
// we are not the default host (no ARP answers, no no-rule traffic).
void Membership::withhold_new_traffic(core::SnapshotInput& in) const {
    const auto strip = [this](std::vector<HostId>& row) {
        std::replace(row.begin(), row.end(), cfg_.self, kNoHost);
    };
    for (auto& map : in.class_maps) strip(map);
    strip(in.echo_map);
    strip(in.single_owners);
    std::erase_if(in.members, [this](const core::Member& m) { return m.id == cfg_.self; });
}

size_t Membership::current_index(size_t rule) const {
    if (!has_current_ || rule >= canon_of_.size()) return SIZE_MAX;
    return find_record(cur_.inputs.universe, (*records_)[canon_of_[rule]]);
}

HostId Membership::owner(size_t rule, uint32_t bucket) const {
    const size_t u = current_index(rule);
    if (u == SIZE_MAX || bucket >= cfg_.buckets) return kNoHost;
    const uint16_t c = cur_.rule_class[u];
    return c == core::kNoClass ? kNoHost : cur_.maps[c][bucket];
}

bool Membership::dirty(size_t rule, uint32_t bucket) const {
    const size_t u = current_index(rule);
    if (u == SIZE_MAX || bucket >= cfg_.buckets) return false;
    if (static_cast<FilterMode>(cur_.inputs.universe[u][22]) == FilterMode::single)
        return u < single_dirty_from_.size() && single_dirty_from_[u] != kNoHost;
    const uint16_t c = cur_.rule_class[u];
    return c != core::kNoClass && c < dirty_from_.size() && dirty_from_[c][bucket] != kNoHost;
}

HostId Membership::single_owner(size_t rule) const {
    const size_t u = current_index(rule);
    return u == SIZE_MAX ? kNoHost : cur_.single[u];
}

std::vector<Membership::HostRule> Membership::host_rules(HostId h) const {
    std::vector<HostRule> out;
    if (h == kNoHost || h > kMaxHosts) return out;
    const RuleView v = rule_view(h);
    if (v.records == nullptr) return out;
    const Records& recs = *v.records;
    for (size_t k = 0; k < recs.size(); ++k) {
        HostRule r;
        const PortRule pr = rule_from_record(recs[k]).value_or(PortRule{});
        r.name = rule_name(pr);
        r.mode = pr.mode;
        if (h == cfg_.self) {
            r.state = k < rule_states_.size() ? rule_states_[k] : RuleState::enabled;
            r.weight = own_weight(k);
            r.priority = own_priority(k);
        } else {
            r.state = k < v.states->size() ? (*v.states)[k] : RuleState::enabled;
            r.weight = k < v.weights->size() ? (*v.weights)[k] : 0;
            r.priority = k < v.prios->size() ? (*v.prios)[k] : 0;
        }
        if (has_current_) {
            const size_t u = find_record(cur_.inputs.universe, recs[k]);
            r.in_force = u != SIZE_MAX;
            if (u != SIZE_MAX && pr.mode == FilterMode::single) {
                r.owned = cur_.single[u] == h ? 1 : 0;
            } else if (u != SIZE_MAX && pr.mode == FilterMode::multiple && cur_.rule_class[u] != core::kNoClass) {
                const auto& map = cur_.maps[cur_.rule_class[u]];
                for (uint32_t b = 0; b < map.size(); ++b) r.owned += map[b] == h;
            }
        }
        out.push_back(std::move(r));
    }
    return out;
}

MembershipStatus Membership::status(uint64_t now_ns) const {
    MembershipStatus st;
    st.host_state = state_;
    st.self = cfg_.self;
    st.has_maps = has_current_;
    st.epoch = has_current_ ? cur_.epoch : 0;
    st.base_epoch = has_base_ ? base_.epoch : 0;
    st.view = has_current_ ? cur_.view : 0;
    st.map_digest = has_current_ ? cur_.digest : 0;
    st.map_classes = has_current_ && !cur_.maps.empty() ? static_cast<uint32_t>(cur_.maps.size() - 1) : 0;
    st.held_foreign = held_foreign_;
    st.epoch_changes = epoch_changes_;
    st.map_adoptions = map_adoptions_;
    st.chunks_sent = chunks_sent_;
    st.rule_frames_sent = rule_frames_sent_;
    const Inputs in = current_inputs(now_ns);
    st.members = in.members;
    st.heard = heard_bits(now_ns);
    st.default_host = st.members.empty() ? kNoHost : st.members.front();

    const uint64_t dead = cfg_.tolerance * cfg_.interval_ns;
    if (dup_self_heard_ && now_ns - dup_self_seen_ns_ < dead) {
        st.mismatches.push_back({MismatchKind::duplicate_id, cfg_.self,
                                 "another process (boot id " + std::to_string(dup_self_boot_) +
                                     ") claims this host's id " + std::to_string(cfg_.self)});
    }
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        const HostId h = static_cast<HostId>(id);
        const Peer& p = peers_[h];
        if (h == cfg_.self || !p.heard) continue;
        PeerStatus ps;
        ps.id = h;
        ps.state = p.hb.state;
        ps.alive = alive(h, now_ns);
        ps.member = is_member(h, now_ns);
        ps.excluded = excluded(h, now_ns);
        ps.boot_id = p.hb.boot_id;
        ps.last_seen_age_ns = now_ns - p.last_seen_ns;
        ps.epoch = p.hb.epoch;
        ps.view = p.hb.view;
        ps.map_digest = p.hb.map_digest;
        ps.same_map = has_current_ && p.hb.view == cur_.view && p.hb.epoch == cur_.epoch &&
                      p.hb.map_digest == cur_.digest;
        ps.held_foreign = p.hb.held_foreign;
        ps.health_down = p.hb.health_down;
        ps.heard = p.hb.heard;
        {
            const uint64_t t = liveness_clock(now_ns);
            ps.vouched = ps.alive && p.last_seen_ns < t &&
                         t - p.last_seen_ns >= cfg_.tolerance * cfg_.interval_ns;
        }
        st.peers.push_back(ps);
        if (!ps.alive) continue;
        if (p.hb.rules_fingerprint != fingerprint_) {
            char fp[40];
            std::snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(p.hb.rules_fingerprint));
            std::string text = "host " + std::to_string(h) + " applies other port rules (fingerprint " + fp;
            if (!p.rules)
                text += "; its rule list is not known yet: not a member until it is)";
            else if (p.rules_hb.rules_fingerprint != p.hb.rules_fingerprint)
                text += "; learning its new rule list, judged on its previous one)";
            else
                text += "); rules every host agrees on keep converging, see rule_differences";
            st.mismatches.push_back({MismatchKind::rules_fingerprint, h, std::move(text)});
        }
        if (p.hb.buckets != cfg_.buckets)
            st.mismatches.push_back({MismatchKind::bucket_count, h,
                                     "host " + std::to_string(h) + " uses " +
                                         std::to_string(p.hb.buckets) + " buckets, we use " +
                                         std::to_string(cfg_.buckets)});
        if (now_ns < p.dup_until_ns)
            st.mismatches.push_back({MismatchKind::duplicate_peer, h,
                                     "two processes claim host id " + std::to_string(h) +
                                         " (boot ids " + std::to_string(p.hb.boot_id) + " and " +
                                         std::to_string(p.other_boot_id) + ")"});
    }
    // Single-mode rules: a handling priority given by two members. The lower
    // id among them handles the rule (classify()); NLB refuses to converge
    // instead, nlbd serves on and says so.
    for (size_t u = 0; u < in.universe.size(); ++u) {
        if (static_cast<FilterMode>(in.universe[u][22]) != FilterMode::single) continue;
        for (size_t a = 0; a < in.members.size(); ++a) {
            const uint8_t pa = in.prios[a][u];
            if (pa == 0) continue;
            for (size_t b = a + 1; b < in.members.size(); ++b) {
                if (in.prios[b][u] != pa) continue;
                const std::string name = rule_name(rule_from_record(in.universe[u]).value_or(PortRule{}));
                st.mismatches.push_back(
                    {MismatchKind::duplicate_priority, in.members[b],
                     "rule " + name + ": hosts " + std::to_string(in.members[a]) + " and " +
                         std::to_string(in.members[b]) + " both have handling priority " + std::to_string(pa) +
                         "; host " + std::to_string(in.members[a]) + " (the lower id) handles it"});
                break;  // one line per pair (a, first duplicate)
            }
        }
    }
    st.link_up = link_up_;
    st.rejoining = rejoining_;
    st.link_changes = link_changes_;
    if (!link_up_)
        st.notices.push_back("wire link down: no peer is declared dead and no map changes until it is up");
    else if (rejoining_)
        st.notices.push_back(
            "rejoining after wire link down: owned buckets are dirty until reconverged with the peers");
    st.converged = converged_ && st.mismatches.empty() && in.view == cur_.view && link_up_ &&
                   !rejoining_;
    switch (state_) {
    case HostState::stopped: st.state = ClusterState::stopped; break;
    case HostState::suspended: st.state = ClusterState::suspended; break;
    case HostState::draining: st.state = ClusterState::draining; break;
    case HostState::started:
        st.state = !st.converged                  ? ClusterState::converging
                   : st.default_host == cfg_.self ? ClusterState::converged_default
                                                  : ClusterState::converged;
        break;
    }
    for (size_t i = 0; i < canon_of_.size(); ++i) {
        const size_t k = canon_of_[i];
        RuleOwnership ro;
        ro.rule = static_cast<uint16_t>(i);
        ro.name = rule_name(rules_[k]);
        ro.mode = rules_[k].mode;
        ro.state = rule_states_[k];
        const size_t u = current_index(i);
        ro.active = !has_current_ || u != SIZE_MAX;
        if (u == SIZE_MAX) {
            // not in force (or no maps yet): owns nothing
        } else if (ro.mode == FilterMode::single) {
            ro.single_owner = cur_.single[u];
            ro.owned = ro.single_owner == cfg_.self ? 1 : 0;
            ro.dirty = ro.owned && u < single_dirty_from_.size() && single_dirty_from_[u] != kNoHost ? 1 : 0;
        } else if (ro.mode == FilterMode::multiple && cur_.rule_class[u] != core::kNoClass) {
            const uint16_t c = cur_.rule_class[u];
            for (uint32_t b = 0; b < cfg_.buckets; ++b) {
                if (cur_.maps[c][b] != cfg_.self) continue;
                ++ro.owned;
                if (c < dirty_from_.size() && dirty_from_[c][b] != kNoHost) ++ro.dirty;
            }
        }
        st.rules.push_back(ro);
    }
    // Rules that live members hold in different versions: per key, each
    // version and its hosts; the universe's version is the active one.
    {
        struct Held {
            RuleRecord rec;
            HostId host;
        };
        std::vector<Held> held;
        uint64_t known = 0;
        for (HostId h : in.members) {
            const RuleView v = rule_view(h);
            if (v.records == nullptr) continue;
            known |= bit(h);
            for (const RuleRecord& r : *v.records) held.push_back(Held{r, h});
        }
        std::sort(held.begin(), held.end(), [](const Held& a, const Held& b) {
            return a.rec != b.rec ? a.rec < b.rec : a.host < b.host;
        });
        const Records* universe = has_current_ ? &cur_.inputs.universe : nullptr;
        auto describe = [](const RuleRecord& rec) {
            const std::optional<PortRule> r = rule_from_record(rec);
            if (!r) return std::string("invalid");
            std::string d = std::string("mode ") + nlbd::name_of(r->mode);
            if (r->mode == FilterMode::multiple)
                d += std::string(", affinity ") + nlbd::name_of(r->affinity) +
                     ", timeout " + std::to_string(r->affinity_timeout_s) + " s";
            return d;
        };
        for (size_t i = 0; i < held.size();) {
            size_t j = i;
            uint64_t holders = 0;
            bool one_version = true;
            while (j < held.size() && same_rule_key(held[j].rec, held[i].rec)) {
                holders |= bit(held[j].host);
                one_version &= held[j].rec == held[i].rec;
                ++j;
            }
            if (one_version && holders == known) {
                i = j;
                continue;
            }
            RuleDifference d;
            d.rule = rule_name(rule_from_record(held[i].rec).value_or(PortRule{}));
            for (size_t k = i; k < j;) {
                RuleVersion v;
                v.content = describe(held[k].rec);
                v.active = universe != nullptr && find_record(*universe, held[k].rec) != SIZE_MAX;
                size_t e = k;
                while (e < j && held[e].rec == held[k].rec) v.hosts.push_back(held[e++].host);
                d.versions.push_back(std::move(v));
                k = e;
            }
            if (const uint64_t absent = known & ~holders; absent != 0) {
                RuleVersion v;
                v.content = "absent";
                v.active = std::none_of(d.versions.begin(), d.versions.end(),
                                        [](const RuleVersion& x) { return x.active; });
                for (unsigned id = 1; id <= kMaxHosts; ++id)
                    if (absent & bit(static_cast<HostId>(id))) v.hosts.push_back(static_cast<HostId>(id));
                d.versions.push_back(std::move(v));
            }
            st.rule_differences.push_back(std::move(d));
            i = j;
        }
    }
    if (has_current_) {
        for (size_t c = 0; c + 1 < cur_.maps.size() && c < dirty_from_.size(); ++c)
            for (uint32_t b = 0; b < cfg_.buckets; ++b)
                if (cur_.maps[c][b] == cfg_.self && dirty_from_[c][b] != kNoHost) ++st.dirty_buckets;
    }
    return st;
}

}  // namespace nlbd::cluster
