// Connection persistence (see persist.hpp for the rules). Packet path: no
// allocation, no locks, no exceptions, no system calls.

#include "nlbd/core/persist.hpp"

#include <algorithm>

namespace nlbd::core {
namespace {

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

enum class Kind : uint8_t { none, tcp, udp };

// Stage one: does persistence apply to (f, d), and with which key?
// `foreign` = t.may_hold_foreign(s): when false, a packet s gives to another
// host cannot be in the table (see ConnTable::may_hold_foreign), so it stays
// not_owner without a lookup.
inline Kind prepare(const ParsedFrame& f, const Decision& d, const Snapshot& s, bool foreign,
                    ConnKey& key) noexcept {
    if (d.rule == kNoRule) return Kind::none;  // default host, non-VIP, ARP...
    if (d.verdict != Verdict::accepted && (d.verdict != Verdict::not_owner || !foreign))
        return Kind::none;  // stopped, disabled rule, or not ours and not held
    const FlowKey& k = f.key;
    if (!(k.flags & kHasPorts)) return Kind::none;
    if (k.proto == kProtoTcp) {
        key = conn_key_of(k);
        return Kind::tcp;
    }
    if (k.proto == kProtoUdp && d.rule < s.rules.rules.size()) {
        const CompiledRule& c = s.rules.rules[d.rule];
        if (c.affinity_timeout_s == 0) return Kind::none;
        key = affinity_key_of(k, c.affinity, d.rule);
        return Kind::udp;
    }
    return Kind::none;
}

inline Decision with(const Decision& d, Verdict v) noexcept {
    Decision o = d;
    o.verdict = v;
    return o;
}

// A new entry's rule index is given under s's rules.
inline void stamp(ConnEntry* e, const Snapshot& s) noexcept {
    if (e != nullptr) e->rules_generation = s.rules_generation;
}

inline void touch(ConnEntry* e, const Decision& d, const Snapshot& s, uint64_t now_ns) noexcept {
    e->last_seen_ns = now_ns;
    e->rules_generation = s.rules_generation;
    e->rule = d.rule;
    e->bucket = static_cast<uint16_t>(d.bucket);
}

// ---------------------------------------------------------------- TCP extended affinity

// The affinity_timeout_s of d.rule when TCP extended affinity applies to it
// (a multiple-host rule with single or network affinity), else 0.
inline uint32_t tcp_affinity_timeout(const Snapshot& s, uint16_t rule, Affinity& a) noexcept {
    if (rule >= s.rules.rules.size()) return 0;
    const CompiledRule& c = s.rules.rules[rule];
    if (c.affinity_timeout_s == 0 || c.mode != FilterMode::multiple || c.affinity == Affinity::none)
        return 0;
    a = c.affinity;
    return c.affinity_timeout_s;
}

inline uint32_t ms_of(uint64_t now_ns) noexcept { return static_cast<uint32_t>(now_ns / 1'000'000); }

inline void refresh(ConnEntry* a, ConnState st, const Decision& d, const Snapshot& s,
                    uint64_t now_ns, uint32_t timeout_s) noexcept {
    if (a->state != st) {
        a->state = st;  // affinity <-> elsewhere: both counted in affinity_entries
        a->flags = 0;
    }
    touch(a, d, s, now_ns);
    a->timeout_s = timeout_s;
}

// The live affinity entry of the client of f under d.rule, or a new one in
// state st (nullptr when the table has no room; counted there).
inline ConnEntry* affinity_entry(const ParsedFrame& f, const Decision& d, const Snapshot& s,
                                 ConnTable& t, uint64_t now_ns, Affinity a, ConnState st,
                                 uint32_t timeout_s) noexcept {
    const ConnKey ak = tcp_affinity_key_of(f.key, a, d.rule);
    const uint64_t h = t.hash(ak);
    ConnEntry* e = t.find(ak, h, now_ns);
    if (e) return e;
    e = t.insert(ak, h, st, d.rule, d.bucket, now_ns, timeout_s);
    stamp(e, s);
    return e;
}

// A non-SYN packet of a connection this host holds in a bucket it no longer
// owns (accepted_conn): the client's affinity here is refreshed, marked
// moved at the first such packet, and confirmed by one at least
// kAffinityGraceMs later (by then every new owner has published the move
// and marks the client `elsewhere` from the same packet). Only non-SYN
// packets refresh it, as only those refresh the new owner's mark.
void affinity_on_held(const ParsedFrame& f, const Decision& d, const Snapshot& s, ConnTable& t,
                      uint64_t now_ns) noexcept {
    if (f.key.flags & kTcpSyn) return;
    Affinity a = Affinity::none;
    const uint32_t to = tcp_affinity_timeout(s, d.rule, a);
    if (to == 0) return;
    ConnEntry* e = affinity_entry(f, d, s, t, now_ns, a, ConnState::affinity, to);
    if (e == nullptr) return;
    refresh(e, ConnState::affinity, d, s, now_ns, to);
    const uint32_t ms = ms_of(now_ns);
    if (!(e->flags & kAffinityMoved)) {
        e->flags |= kAffinityMoved;
        e->moved_ms = ms;
    } else if (ms - e->moved_ms >= kAffinityGraceMs) {
        e->flags |= kAffinityConfirmed;
    }
}

// A packet the new owner of a dirty bucket leaves to the previous owner
// (conn_elsewhere): the client is marked held elsewhere, refreshed by the
// same packets that refresh the holder's entry, with kElsewhereGuardS more
// timeout than it so the mark never ends before the holder's affinity.
void affinity_on_elsewhere(const ParsedFrame& f, const Decision& d, const Snapshot& s,
                           ConnTable& t, uint64_t now_ns) noexcept {
    Affinity a = Affinity::none;
    const uint32_t to = tcp_affinity_timeout(s, d.rule, a);
    if (to == 0) return;
    ConnEntry* e = affinity_entry(f, d, s, t, now_ns, a, ConnState::elsewhere, to + kElsewhereGuardS);
    if (e != nullptr) refresh(e, ConnState::elsewhere, d, s, now_ns, to + kElsewhereGuardS);
}

// A SYN this host owns (not in the table). Returns true when the client is
// held elsewhere (the bucket is dirty and the client marked): the SYN is left
// to the previous owner, and the mark is not refreshed (the holder does not
// refresh on SYNs either: a client whose affinity ended there must not be
// kept out by its own retries). Otherwise records the client's affinity to
// this host.
bool affinity_on_owned_syn(const ParsedFrame& f, const Decision& d, const Snapshot& s,
                           ConnTable& t, uint64_t now_ns) noexcept {
    Affinity a = Affinity::none;
    const uint32_t to = tcp_affinity_timeout(s, d.rule, a);
    if (to == 0) return false;
    ConnEntry* e = affinity_entry(f, d, s, t, now_ns, a, ConnState::affinity, to);
    if (e == nullptr) return false;
    if (e->state == ConnState::elsewhere && bucket_dirty(s, d.rule, d.bucket)) {
        ++t.stats_mut().affinity_yielded;
        return true;
    }
    refresh(e, ConnState::affinity, d, s, now_ns, to);
    e->flags = 0;  // owned here: not moved
    return false;
}

// A SYN in a bucket this host no longer owns (not in the table): accepted
// when the client's affinity here is live and confirmed (not refreshed: see
// affinity_on_held).
bool affinity_on_foreign_syn(const ParsedFrame& f, const Decision& d, const Snapshot& s,
                             ConnTable& t, uint64_t now_ns) noexcept {
    Affinity a = Affinity::none;
    const uint32_t to = tcp_affinity_timeout(s, d.rule, a);
    if (to == 0) return false;
    // A host that left the map (draining, stopped) takes nothing new.
    if (!std::binary_search(s.members.begin(), s.members.end(), s.self)) return false;
    const ConnKey ak = tcp_affinity_key_of(f.key, a, d.rule);
    ConnEntry* e = t.find(ak, t.hash(ak), now_ns);
    if (e == nullptr || e->state != ConnState::affinity || !(e->flags & kAffinityConfirmed))
        return false;
    ++t.stats_mut().affinity_hits;
    return true;
}

Decision resolve_tcp(const ParsedFrame& f, const Decision& d, const Snapshot& s, ConnTable& t,
                     uint64_t now_ns, const ConnKey& key, uint64_t h) noexcept {
    const uint16_t fl = f.key.flags;
    const bool icmp = (fl & kIcmpError) != 0;
    const bool ours = d.verdict == Verdict::accepted;
    ConnEntry* e = t.find(key, h, now_ns);
    if (e && !icmp && (fl & kTcpSyn) && e->state == ConnState::fin) {
        t.remove(e);  // a new connection reusing a closed tuple: decided afresh
        e = nullptr;
    }
    if (e) {
        const Decision out = ours ? d : with(d, Verdict::accepted_conn);
        if (icmp) return out;
        if (fl & kTcpRst) {
            t.remove(e);
        } else {
            touch(e, d, s, now_ns);
            if (fl & kTcpFin) {
                t.set_state(e, ConnState::fin);
            } else if (e->state == ConnState::syn && !(fl & kTcpSyn)) {
                t.set_state(e, ConnState::established);
            }
        }
        // e is not used past here (affinity inserts may move entries).
        if (!ours) affinity_on_held(f, d, s, t, now_ns);
        return out;
    }
    if (!ours) {
        if (icmp || !(fl & kTcpSyn)) return d;
        if (!affinity_on_foreign_syn(f, d, s, t, now_ns)) return d;
        stamp(t.insert(key, h, ConnState::syn, d.rule, d.bucket, now_ns), s);
        return with(d, Verdict::accepted_conn);
    }
    if (icmp) return bucket_dirty(s, d.rule, d.bucket) ? with(d, Verdict::conn_elsewhere) : d;
    if (fl & kTcpSyn) {
        if (affinity_on_owned_syn(f, d, s, t, now_ns)) return with(d, Verdict::conn_elsewhere);
        stamp(t.insert(key, h, ConnState::syn, d.rule, d.bucket, now_ns), s);
        return d;
    }
    if (bucket_dirty(s, d.rule, d.bucket)) {
        affinity_on_elsewhere(f, d, s, t, now_ns);
        return with(d, Verdict::conn_elsewhere);
    }
    if (fl & kTcpRst) return d;  // nothing to track
    // Adopt a connection nobody else can hold (previous owner gone or never).
    stamp(t.insert(key, h, (fl & kTcpFin) ? ConnState::fin : ConnState::established, d.rule, d.bucket,
                   now_ns),
          s);
    return d;
}

Decision resolve_udp(const ParsedFrame& f, const Decision& d, const Snapshot& s, ConnTable& t,
                     uint64_t now_ns, const ConnKey& key, uint64_t h) noexcept {
    const bool icmp = (f.key.flags & kIcmpError) != 0;
    const bool ours = d.verdict == Verdict::accepted;
    const uint32_t timeout_s = s.rules.rules[d.rule].affinity_timeout_s;
    if (ConnEntry* e = t.find(key, h, now_ns)) {
        if (!icmp) {
            touch(e, d, s, now_ns);
            e->timeout_s = timeout_s;  // follows a reconfigured rule
        }
        return ours ? d : with(d, Verdict::accepted_conn);
    }
    if (!ours) return d;
    if (bucket_dirty(s, d.rule, d.bucket)) return with(d, Verdict::conn_elsewhere);
    if (!icmp) stamp(t.insert(key, h, ConnState::udp, d.rule, d.bucket, now_ns, timeout_s), s);
    return d;
}

inline Decision resolve(Kind kind, const ParsedFrame& f, const Decision& d, const Snapshot& s,
                        ConnTable& t, uint64_t now_ns, const ConnKey& key, uint64_t h) noexcept {
    return kind == Kind::tcp ? resolve_tcp(f, d, s, t, now_ns, key, h)
                             : resolve_udp(f, d, s, t, now_ns, key, h);
}

}  // namespace

bool bucket_dirty(const Snapshot& s, uint16_t rule, uint32_t bucket) noexcept {
    if (rule >= s.rules.rules.size()) return false;
    const CompiledRule& c = s.rules.rules[rule];
    if (c.mode == FilterMode::single) return c.single_dirty;
    return bucket < s.buckets && s.is_dirty(rule, bucket);
}

Decision apply_persistence(const ParsedFrame& f, const Decision& d, const Snapshot& s,
                           ConnTable& t, uint64_t now_ns) noexcept {
    ConnKey key;
    const Kind kind = prepare(f, d, s, t.may_hold_foreign(s), key);
    if (kind == Kind::none) return d;
    return resolve(kind, f, d, s, t, now_ns, key, t.hash(key));
}

void apply_persistence_burst(std::span<const ParsedFrame> frames, std::span<Decision> decisions,
                             const Snapshot& s, ConnTable& t, uint64_t now_ns) noexcept {
    constexpr size_t kChunk = 32;
    const size_t n = frames.size() < decisions.size() ? frames.size() : decisions.size();
    ConnKey keys[kChunk];
    uint64_t hashes[kChunk];
    uint8_t idx[kChunk];  // the chunk's frames that need the table
    // Only expire() changes the answer, and it does not run in here.
    const bool foreign = t.may_hold_foreign(s);
    for (size_t base = 0; base < n; base += kChunk) {
        const size_t m = n - base < kChunk ? n - base : kChunk;
        Kind kinds[kChunk];
        unsigned k = 0;
        // Stage one: keys, hashes, tag-line prefetches.
        for (size_t i = 0; i < m; ++i) {
            kinds[k] = prepare(frames[base + i], decisions[base + i], s, foreign, keys[k]);
            if (kinds[k] == Kind::none) continue;
            hashes[k] = t.hash(keys[k]);
            t.prefetch(hashes[k]);
            idx[k++] = static_cast<uint8_t>(i);
        }
        // Stage two: the matching entries' lines (hits), from the tag lines
        // stage one brought in.
        for (unsigned j = 0; j < k; ++j) t.prefetch_entry(hashes[j]);
        // Stage three: resolve in frame order (frames of one flow in one
        // chunk see each other's inserts and state changes).
        for (unsigned j = 0; j < k; ++j) {
            const size_t i = base + idx[j];
            decisions[i] = resolve(kinds[j], frames[i], decisions[i], s, t, now_ns, keys[j],
                                   hashes[j]);
        }
    }
}

}  // namespace nlbd::core
