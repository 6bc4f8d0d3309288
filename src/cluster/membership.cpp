// Membership and convergence state machine (see membership.hpp for the model
// and docs/design.md, "Membership", for the rationale).

#include "nlbd/cluster/membership.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

#include "nlbd/core/bucket_map.hpp"

namespace nlbd::cluster {
namespace {

constexpr uint8_t kEqualWeight = 50;
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
    }
    return "unknown";
}

Membership::Membership(MembershipConfig cfg, uint64_t now_ns) : cfg_(std::move(cfg)) {
    rules_ = cfg_.rules.empty() ? std::vector<PortRule>{default_port_rule()} : cfg_.rules;
    cfg_.buckets = std::clamp(cfg_.buckets, kMinBuckets, kMaxBuckets);
    if (cfg_.interval_ns == 0) cfg_.interval_ns = 1'000'000'000;
    if (cfg_.tolerance == 0) cfg_.tolerance = 1;
    if (cfg_.listen_ns == 0) cfg_.listen_ns = 2 * cfg_.interval_ns;
    if (cfg_.chunk_buckets == 0) cfg_.chunk_buckets = 512;
    // A chunk shares its frame with the per-rule arrays: never more owners
    // than fit in one 1514-byte heartbeat next to this many rules.
    cfg_.chunk_buckets = std::min<uint32_t>(
        cfg_.chunk_buckets, static_cast<uint32_t>(max_chunk_owners(rules_.size())));
    for (const PortRule& r : rules_) rule_ids_.push_back(core::rule_identity(r));
    rule_states_.assign(rules_.size(), RuleState::enabled);
    state_ = cfg_.initial_state;
    start_ns_ = now_ns;
    next_send_ns_ = now_ns;
    dirty_from_.clear();
    single_dirty_from_.assign(rules_.size(), kNoHost);
    recompute(now_ns);
}

// ---- inputs ---------------------------------------------------------------

uint8_t Membership::own_weight(size_t i) const {
    const PortRule& r = rules_[i];
    if (r.mode != FilterMode::multiple) return 0;
    if (i < cfg_.weights.size()) return std::min<uint8_t>(cfg_.weights[i], 100);
    return r.equal_weight ? kEqualWeight : std::min<uint8_t>(r.load_weight, 100);
}

uint8_t Membership::own_priority(size_t i) const {
    const PortRule& r = rules_[i];
    if (r.mode != FilterMode::single) return 0;
    if (i < cfg_.priorities.size()) return cfg_.priorities[i];
    return r.handling_priority;
}

RuleState Membership::rule_state(size_t rule) const {
    return rule < rule_states_.size() ? rule_states_[rule] : RuleState::enabled;
}

bool Membership::alive(HostId h, uint64_t now_ns) const {
    if (h == cfg_.self) return true;
    if (h == kNoHost || h > kMaxHosts) return false;
    const Peer& p = peers_[h];
    if (!p.heard) return false;
    // Our own link down: we hear nothing because of ourselves, so the
    // liveness clock stands still at the link-down time.
    uint64_t t = link_up_ ? now_ns : std::min(now_ns, link_down_ns_);
    // A receive path that has not caught up (starved worker lcore): what it
    // has not handed over yet says nothing about the peers. Bounded: at most
    // one more dead interval.
    const uint64_t dead = cfg_.tolerance * cfg_.interval_ns;
    if (rx_horizon_ns_ != 0 && rx_horizon_ns_ < t)
        t = std::max(rx_horizon_ns_, t > dead ? t - dead : 0);
    return p.last_seen_ns >= t || t - p.last_seen_ns < dead;
}

bool Membership::stale(HostId h) const {
    return rejoining_ && h != cfg_.self && h != kNoHost && h <= kMaxHosts && !peers_[h].fresh;
}

bool Membership::excluded(HostId h, uint64_t now_ns) const {
    const uint64_t dead = cfg_.tolerance * cfg_.interval_ns;
    if (h == cfg_.self) return dup_self_heard_ && now_ns - dup_self_seen_ns_ < dead;
    const Peer& p = peers_[h];
    if (!p.heard) return false;
    if (p.hb.rules_fingerprint != cfg_.rules_fingerprint || p.hb.buckets != cfg_.buckets) return true;
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
    const size_t n = rules_.size();
    for (unsigned id = 1; id <= kMaxHosts; ++id) {
        if ((view & bit(static_cast<HostId>(id))) == 0) continue;
        const HostId h = static_cast<HostId>(id);
        std::vector<uint8_t> w(n, 0), p(n, 0);
        for (size_t i = 0; i < n; ++i) {
            RuleState rs;
            uint8_t wi, pi;
            if (h == cfg_.self) {
                rs = rule_states_[i];
                wi = own_weight(i);
                pi = own_priority(i);
            } else {
                const Heartbeat& hb = peers_[h].hb;
                rs = i < hb.rule_states.size() ? hb.rule_states[i] : RuleState::enabled;
                wi = i < hb.weights.size() ? std::min<uint8_t>(hb.weights[i], 100) : 0;
                pi = i < hb.priorities.size() ? hb.priorities[i] : 0;
            }
            const bool on = rs == RuleState::enabled;
            w[i] = on && rules_[i].mode == FilterMode::multiple ? wi : 0;
            p[i] = on && rules_[i].mode == FilterMode::single ? pi : 0;
        }
        in.members.push_back(h);
        in.weights.push_back(std::move(w));
        in.prios.push_back(std::move(p));
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

// Classes: multiple-mode rules with equal per-member weight vectors share one
// map, numbered by their first rule. Also fills single-mode owners.
void Membership::classify(MapSet& m) const {
    const size_t n = rules_.size();
    m.rule_class.assign(n, core::kNoClass);
    m.single.assign(n, kNoHost);
    std::unordered_map<std::string, uint16_t> seen;  // weight vector -> class
    uint16_t classes = 0;
    for (size_t i = 0; i < n; ++i) {
        if (rules_[i].mode == FilterMode::multiple) {
            std::string key;
            key.reserve(m.inputs.members.size());
            for (const auto& w : m.inputs.weights) key.push_back(static_cast<char>(w[i]));
            auto [it, fresh] = seen.emplace(std::move(key), classes);
            if (fresh) ++classes;
            m.rule_class[i] = it->second;
        } else if (rules_[i].mode == FilterMode::single && !m.inputs.members.empty()) {
            // Best (lowest non-zero) handling priority, else the lowest id.
            HostId best = m.inputs.members.front();
            unsigned best_prio = 256;
            for (size_t k = 0; k < m.inputs.members.size(); ++k) {
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
    std::vector<core::MemberWeight> mw(next.inputs.members.size());
    for (size_t i = 0; i < rules_.size(); ++i) {
        const uint16_t c = next.rule_class[i];
        if (c == core::kNoClass || !next.maps[c].empty()) continue;
        for (size_t k = 0; k < mw.size(); ++k)
            mw[k] = core::MemberWeight{next.inputs.members[k], next.inputs.weights[k][i]};
        const uint32_t seed = core::rule_seed(rule_ids_[i]);
        // A class continues the base map of its first rule (classes may split
        // or merge when weights change).
        const uint16_t bc =
            has_base_ && i < base_.rule_class.size() ? base_.rule_class[i] : core::kNoClass;
        if (bc != core::kNoClass && base_.maps[bc].size() == B)
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
    // Dirty hand-over: a bucket that leaves a host still holding connections.
    auto holder = [&](HostId h, size_t rule) {
        if (h == kNoHost) return false;
        if (h == cfg_.self)
            return (state_ == HostState::started || state_ == HostState::draining) &&
                   rule_states_[rule] != RuleState::disabled;
        if (!alive(h, now_ns) || excluded(h, now_ns)) return false;
        const Heartbeat& hb = peers_[h].hb;
        if (hb.state != HostState::started && hb.state != HostState::draining) return false;
        return rule >= hb.rule_states.size() || hb.rule_states[rule] != RuleState::disabled;
    };
    bool any_other_holder = false;
    for (unsigned id = 1; id <= kMaxHosts; ++id)
        if (static_cast<HostId>(id) != cfg_.self && holder(static_cast<HostId>(id), 0))
            any_other_holder = true;
    // A bucket moving again keeps the hosts it was still dirty from (e.g. a
    // draining host's bucket whose new owner died) next to its previous owner
    // `from` (kNoHost when that one holds nothing): two holders -> kAnyHost.
    auto carried_dirty = [&](HostId from, HostId old_from, HostId n, size_t rule) {
        if (old_from == kNoHost || old_from == n || old_from == from) return from;
        const bool holds = old_from == kAnyHost ? any_other_holder : holder(old_from, rule);
        if (!holds) return from;
        return from == kNoHost ? old_from : kAnyHost;
    };

    std::vector<std::vector<HostId>> dirty(next.maps.size() - 1);
    std::vector<bool> done(dirty.size(), false);
    for (size_t i = 0; i < rules_.size(); ++i) {
        const uint16_t c = next.rule_class[i];
        if (c == core::kNoClass || done[c]) continue;
        done[c] = true;
        dirty[c].assign(B, kNoHost);
        const uint16_t oc = has_current_ && i < cur_.rule_class.size() ? cur_.rule_class[i]
                                                                        : core::kNoClass;
        if (oc == core::kNoClass || cur_.maps[oc].size() != B) {
            // No history (adopted maps, new class): unknown previous owner.
            if (!has_current_ && adopted)
                for (uint32_t b = 0; b < B; ++b)
                    if (next.maps[c][b] == cfg_.self && any_other_holder) dirty[c][b] = kAnyHost;
            continue;
        }
        const std::vector<HostId>& old = cur_.maps[oc];
        const std::vector<HostId>* old_dirty =
            oc < dirty_from_.size() && dirty_from_[oc].size() == B ? &dirty_from_[oc] : nullptr;
        for (uint32_t b = 0; b < B; ++b) {
            const HostId o = old[b], n = next.maps[c][b];
            if (o == n) {
                dirty[c][b] = old_dirty ? (*old_dirty)[b] : kNoHost;
                continue;
            }
            dirty[c][b] = carried_dirty(holder(o, i) ? o : kNoHost,
                                        old_dirty ? (*old_dirty)[b] : kNoHost, n, i);
        }
    }
    for (size_t i = 0; i < rules_.size(); ++i) {
        if (rules_[i].mode != FilterMode::single) continue;
        const HostId o = has_current_ && i < cur_.single.size() ? cur_.single[i] : kNoHost;
        const HostId n = next.single[i];
        if (!has_current_)
            single_dirty_from_[i] = adopted && n == cfg_.self && any_other_holder ? kAnyHost : kNoHost;
        else if (o != n)
            single_dirty_from_[i] =
                carried_dirty(holder(o, i) ? o : kNoHost, single_dirty_from_[i], n, i);
    }
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
    if (!has_dirty_) return;
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
            const bool holds = alive(h, now_ns) && !excluded(h, now_ns) &&
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
    for (size_t i = 0; i < rules_.size() && i < cur_.single.size(); ++i)
        if (rules_[i].mode == FilterMode::single && cur_.single[i] == cfg_.self)
            changed |= mark(single_dirty_from_[i]);
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
    for (size_t i = 0; i < rules_.size() && i < cur_.single.size(); ++i)
        if (rules_[i].mode == FilterMode::single && cur_.single[i] == cfg_.self &&
            single_dirty_from_[i] != kAnyHost) {
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
    if (rule >= rule_states_.size() || rule_states_[rule] == s) return;
    rule_states_[rule] = s;
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
    if (p.heard && (now_ns - p.last_seen_ns >= dead || hb.boot_id != p.hb.boot_id))
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
    if (ch.map_classes == 0 || ch.map_classes > rules_.size() + 1 || ch.map_class >= ch.map_classes ||
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

Heartbeat Membership::base_heartbeat(uint64_t wall_ns) {
    Heartbeat hb;
    hb.cluster_id = cfg_.cluster_id;
    hb.host = cfg_.self;
    hb.state = state_;
    hb.boot_id = cfg_.boot_id;
    last_sequence_ = std::max(last_sequence_ + 1, wall_ns);
    hb.sequence = last_sequence_;
    hb.epoch = has_current_ ? cur_.epoch : 0;
    hb.view = has_current_ ? cur_.view : 0;
    hb.rules_fingerprint = cfg_.rules_fingerprint;
    hb.map_digest = has_current_ ? cur_.digest : 0;
    hb.buckets = cfg_.buckets;
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

std::vector<Heartbeat> Membership::frames_to_send(uint64_t now_ns, uint64_t wall_ns) {
    std::vector<Heartbeat> out;
    if (now_ns < next_send_ns_) return out;
    tick(now_ns);
    next_send_ns_ = now_ns + cfg_.interval_ns;
    out.push_back(base_heartbeat(wall_ns));

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
            Heartbeat f = base_heartbeat(wall_ns);
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
    in.rules = cfg_.rules;
    in.generation = ++generation_;
    if (ownership_changed_) {
        maps_generation_ = generation_;
        ownership_changed_ = false;
    }

    MapSet placeholder;
    const MapSet* m = &cur_;
    if (!has_current_) {
        placeholder.inputs = cur_.inputs.members.empty() ? Inputs{} : cur_.inputs;
        classify(placeholder);
        for (auto& map : placeholder.maps) map.assign(cfg_.buckets, kNoHost);
        std::fill(placeholder.single.begin(), placeholder.single.end(), kNoHost);
        m = &placeholder;
    }
    for (size_t k = 0; k < m->inputs.members.size(); ++k)
        in.members.push_back(core::Member{m->inputs.members[k], m->inputs.weights[k], m->inputs.prios[k]});
    const size_t classes = m->maps.empty() ? 0 : m->maps.size() - 1;
    in.class_maps.assign(m->maps.begin(), m->maps.begin() + static_cast<ptrdiff_t>(classes));
    in.rule_class = m->rule_class;
    in.echo_map = m->maps.empty() ? std::vector<HostId>(cfg_.buckets, kNoHost) : m->maps.back();
    in.single_owners = m->single;
    in.class_dirty.resize(classes);
    if (has_current_) {
        for (size_t c = 0; c < classes && c < dirty_from_.size(); ++c) {
            const auto& row = dirty_from_[c];
            if (std::none_of(row.begin(), row.end(), [](HostId h) { return h != kNoHost; }))
                continue;
            in.class_dirty[c].resize(row.size());
            for (size_t b = 0; b < row.size(); ++b) in.class_dirty[c][b] = row[b] != kNoHost;
        }
        in.single_dirty.resize(rules_.size());
        for (size_t i = 0; i < rules_.size(); ++i)
            in.single_dirty[i] = single_dirty_from_[i] != kNoHost;
    }
    in.local_disabled.resize(rules_.size());
    for (size_t i = 0; i < rules_.size(); ++i)
        in.local_disabled[i] = rule_states_[i] == RuleState::disabled;
    if (rejoining_ && has_current_) withhold_new_traffic(in);
    return in;
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

HostId Membership::owner(size_t rule, uint32_t bucket) const {
    if (!has_current_ || rule >= cur_.rule_class.size() || bucket >= cfg_.buckets) return kNoHost;
    const uint16_t c = cur_.rule_class[rule];
    return c == core::kNoClass ? kNoHost : cur_.maps[c][bucket];
}

bool Membership::dirty(size_t rule, uint32_t bucket) const {
    if (!has_current_ || rule >= cur_.rule_class.size() || bucket >= cfg_.buckets) return false;
    if (rules_[rule].mode == FilterMode::single) return single_dirty_from_[rule] != kNoHost;
    const uint16_t c = cur_.rule_class[rule];
    return c != core::kNoClass && c < dirty_from_.size() && dirty_from_[c][bucket] != kNoHost;
}

HostId Membership::single_owner(size_t rule) const {
    return has_current_ && rule < cur_.single.size() ? cur_.single[rule] : kNoHost;
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
    const Inputs in = current_inputs(now_ns);
    st.members = in.members;
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
        st.peers.push_back(ps);
        if (!ps.alive) continue;
        if (p.hb.rules_fingerprint != cfg_.rules_fingerprint)
            st.mismatches.push_back({MismatchKind::rules_fingerprint, h,
                                     "host " + std::to_string(h) + " has port rules fingerprint " +
                                         std::to_string(p.hb.rules_fingerprint) + ", ours is " +
                                         std::to_string(cfg_.rules_fingerprint)});
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
    for (size_t i = 0; i < rules_.size(); ++i) {
        RuleOwnership ro;
        ro.rule = static_cast<uint16_t>(i);
        ro.mode = rules_[i].mode;
        ro.state = rule_states_[i];
        if (rules_[i].mode == FilterMode::single) {
            ro.single_owner = single_owner(i);
            ro.owned = ro.single_owner == cfg_.self ? 1 : 0;
            ro.dirty = ro.owned && single_dirty_from_[i] != kNoHost ? 1 : 0;
        } else if (rules_[i].mode == FilterMode::multiple && has_current_) {
            const uint16_t c = cur_.rule_class[i];
            for (uint32_t b = 0; b < cfg_.buckets; ++b) {
                if (cur_.maps[c][b] != cfg_.self) continue;
                ++ro.owned;
                if (c < dirty_from_.size() && dirty_from_[c][b] != kNoHost) ++ro.dirty;
            }
        }
        st.rules.push_back(ro);
    }
    if (has_current_) {
        for (size_t c = 0; c + 1 < cur_.maps.size() && c < dirty_from_.size(); ++c)
            for (uint32_t b = 0; b < cfg_.buckets; ++b)
                if (cur_.maps[c][b] == cfg_.self && dirty_from_[c][b] != kNoHost) ++st.dirty_buckets;
    }
    return st;
}

}  // namespace nlbd::cluster
