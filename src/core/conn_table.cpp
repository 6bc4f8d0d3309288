// Per-worker connection table (see conn_table.hpp for the contract).
// Packet path: no allocation after construction, no locks, no exceptions, no
// system calls.

#include "nlbd/core/conn_table.hpp"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace nlbd::core {
namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ull;

inline uint64_t load64(const void* p) noexcept {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

// 64x64 -> 128 multiply, high half xor low half.
inline uint64_t mum(uint64_t a, uint64_t b) noexcept {
    const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
    return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// Lane mask of the ways of an 8-way tag line equal to `tag`: way i is bit 2i.
// Iterate with ctz(m) / 2 and m &= m - 1.
inline unsigned match_tags(const uint16_t* line, uint16_t tag) noexcept {
#if defined(__SSE2__)
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(line));
    const __m128i eq = _mm_cmpeq_epi16(v, _mm_set1_epi16(static_cast<short>(tag)));
    return static_cast<unsigned>(_mm_movemask_epi8(eq)) & 0x5555u;
#else
    unsigned m = 0;
    for (unsigned i = 0; i < ConnTable::kWays; ++i)
        if (line[i] == tag) m |= 1u << (2 * i);
    return m;
#endif
}

inline uint32_t next_pow2(uint64_t x) noexcept {
    uint64_t p = 1;
    while (p < x) p <<= 1;
    return static_cast<uint32_t>(p);
}

inline bool idle_past(const ConnEntry& e, uint64_t now_ns) noexcept {
    return now_ns > e.last_seen_ns &&
           now_ns - e.last_seen_ns > static_cast<uint64_t>(e.timeout_s) * kNsPerSec;
}

}  // namespace

ConnKey conn_key_of(const FlowKey& k) noexcept {
    ConnKey c;
    c.src = k.src.b;
    c.dst = k.dst.b;
    c.sport = k.sport;
    c.dport = k.dport;
    c.proto = k.proto;
    c.family = static_cast<uint8_t>(k.src.family);
    return c;
}

ConnKey affinity_key_of(const FlowKey& k, Affinity a, uint16_t rule) noexcept {
    ConnKey c;
    c.family = static_cast<uint8_t>(k.src.family);
    c.src = k.src.b;
    switch (a) {
    case Affinity::none: c.sport = k.sport; break;
    case Affinity::single: break;
    case Affinity::network: {
        // /24 for IPv4, /48 for IPv6 (the same prefixes as affinity_hash).
        const unsigned keep = k.src.family == Family::v6 ? 6 : 3;
        for (unsigned i = keep; i < 16; ++i) c.src[i] = 0;
        break;
    }
    }
    c.dport = rule;
    c.proto = 0;  // never a real 5-tuple: TCP/UDP keys have proto 6/17
    return c;
}

HostId owner_of(const Snapshot& s, uint16_t rule, uint32_t bucket) noexcept {
    if (rule >= s.rules.rules.size()) return kNoHost;
    const CompiledRule& c = s.rules.rules[rule];
    switch (c.mode) {
    case FilterMode::multiple:
        if (bucket >= s.buckets ||
            static_cast<size_t>(rule) * s.buckets + bucket >= s.owners.size())
            return kNoHost;
        return s.owner(rule, bucket);
    case FilterMode::single: return c.single_owner;
    default: return kNoHost;
    }
}

ConnTable::ConnTable(const Config& cfg)
    : capacity_(cfg.capacity ? cfg.capacity : 1),
      timeouts_(cfg.timeouts),
      evict_established_(cfg.evict_established),
      seed_(cfg.seed) {
    // Slots >= 1.25 x capacity, so a full table is at most 80% loaded.
    const uint64_t want = (static_cast<uint64_t>(capacity_) * 5 / 4 + kWays - 1) / kWays;
    nbuckets_ = next_pow2(want < 2 ? 2 : want);
    mask_ = nbuckets_ - 1;
    tags_.reset(new uint16_t[slots()]());
    entries_.reset(new ConnEntry[slots()]);
}

ConnTable::~ConnTable() = default;

// Multiply-fold hashing (wyhash-style "mum"): the five words of the key are
// folded in two independent 128-bit products, then combined, keyed by seed_.
uint64_t ConnTable::hash(const ConnKey& k) const noexcept {
    const auto* p = reinterpret_cast<const uint8_t*>(&k);
    const uint64_t a = mum(load64(p) ^ seed_, load64(p + 8) ^ 0xa0761d6478bd642full);
    const uint64_t b = mum(load64(p + 16) ^ 0xe7037ed1a0b428dbull,
                           load64(p + 24) ^ (seed_ + 0x8ebc6af09c88c6e3ull));
    return mum(a ^ load64(p + 32) ^ 0x589965cc75374cc3ull, b ^ seed_ ^ 0x1d8e4e27c47d124full);
}

void ConnTable::bucket_pair(uint64_t h, uint32_t& b1, uint32_t& b2, uint16_t& tag) const noexcept {
    b1 = static_cast<uint32_t>(h) & mask_;
    b2 = static_cast<uint32_t>(h >> 32) & mask_;
    if (b2 == b1) b2 = b1 ^ 1u;  // nbuckets_ >= 2
    tag = static_cast<uint16_t>((h >> 16) ^ (h >> 48));
    if (tag == 0) tag = 1;
}

void ConnTable::prefetch(uint64_t h) const noexcept {
    uint32_t b1, b2;
    uint16_t tag;
    bucket_pair(h, b1, b2, tag);
    __builtin_prefetch(&tags_[static_cast<size_t>(b1) * kWays]);
    __builtin_prefetch(&tags_[static_cast<size_t>(b2) * kWays]);
}

uint32_t ConnTable::timeout_for(ConnState st, uint32_t udp_timeout_s) const noexcept {
    switch (st) {
    case ConnState::syn: return timeouts_.syn_s;
    case ConnState::established: return timeouts_.established_s;
    case ConnState::fin: return timeouts_.fin_s;
    case ConnState::udp: return udp_timeout_s;
    default: return 0;
    }
}

void ConnTable::release_slot(uint32_t slot) noexcept {
    tags_[slot] = 0;
    entries_[slot].state = ConnState::free;
    --stats_.entries;
}

ConnEntry* ConnTable::find(const ConnKey& k, uint64_t h, uint64_t now_ns) noexcept {
    uint32_t b[2];
    uint16_t tag;
    bucket_pair(h, b[0], b[1], tag);
    for (uint32_t bucket : b) {
        const uint32_t base = bucket * kWays;
        for (unsigned m = match_tags(&tags_[base], tag); m; m &= m - 1) {
            const uint32_t slot = base + (static_cast<unsigned>(__builtin_ctz(m)) >> 1);
            ConnEntry& e = entries_[slot];
            if (e.key != k) continue;
            if (idle_past(e, now_ns)) {
                ++stats_.expired[static_cast<unsigned>(e.state)];
                release_slot(slot);
                return nullptr;
            }
            return &e;
        }
    }
    return nullptr;
}

// Both candidate buckets full, or the table at capacity: reclaim idle entries
// of the two buckets, then (below capacity) relocate one resident to its
// alternative bucket, then pick a victim by class (syn/fin first, then udp,
// then established), oldest first within a class. Returns a free slot's entry
// (tag still 0) or nullptr.
[[gnu::cold]] ConnEntry* ConnTable::insert_slow(uint32_t b1, uint32_t b2, ConnState st,
                                                uint64_t now_ns) noexcept {
    const uint32_t bases[2] = {b1 * kWays, b2 * kWays};
    ConnEntry* free_slot = nullptr;
    for (uint32_t base : bases)
        for (uint32_t slot = base; slot < base + kWays; ++slot) {
            if (tags_[slot] != 0 && idle_past(entries_[slot], now_ns)) {
                ++stats_.expired[static_cast<unsigned>(entries_[slot].state)];
                release_slot(slot);
            }
            if (tags_[slot] == 0 && !free_slot) free_slot = &entries_[slot];
        }
    if (free_slot && stats_.entries < capacity_) return free_slot;
    if (stats_.entries < capacity_) {
        // Room in the table but not in these buckets: move one resident to
        // its other candidate bucket (one cuckoo step), freeing its slot.
        for (uint32_t base : bases)
            for (uint32_t slot = base; slot < base + kWays; ++slot) {
                uint32_t c1, c2;
                uint16_t tag;
                bucket_pair(hash(entries_[slot].key), c1, c2, tag);
                const uint32_t alt = (c1 * kWays == base ? c2 : c1) * kWays;
                const unsigned f = match_tags(&tags_[alt], 0);
                if (!f) continue;
                const uint32_t to = alt + (static_cast<unsigned>(__builtin_ctz(f)) >> 1);
                entries_[to] = entries_[slot];
                tags_[to] = tags_[slot];
                tags_[slot] = 0;
                entries_[slot].state = ConnState::free;
                ++stats_.relocated;
                return &entries_[slot];
            }
    }

    // Eviction classes this insert may push out, best victim first.
    const bool may_udp = st == ConnState::udp || st == ConnState::established;
    uint32_t victim[3] = {~0u, ~0u, ~0u};  // syn/fin, udp, established
    for (uint32_t base : bases)
        for (uint32_t slot = base; slot < base + kWays; ++slot) {
            if (tags_[slot] == 0) continue;
            const ConnEntry& e = entries_[slot];
            unsigned cls;
            if (e.state == ConnState::syn || e.state == ConnState::fin) cls = 0;
            else if (e.state == ConnState::udp) cls = 1;
            else cls = 2;
            if (victim[cls] == ~0u || e.last_seen_ns < entries_[victim[cls]].last_seen_ns)
                victim[cls] = slot;
        }
    uint32_t v = victim[0];
    if (v == ~0u && may_udp) v = victim[1];
    if (v == ~0u && evict_established_) {
        v = victim[2];
        if (v != ~0u) ++stats_.evicted_established;
    }
    if (v == ~0u) return nullptr;
    ++stats_.evicted;
    release_slot(v);
    return &entries_[v];
}

ConnEntry* ConnTable::insert(const ConnKey& k, uint64_t h, ConnState st, uint16_t rule,
                             uint32_t bucket, uint64_t now_ns, uint32_t timeout_s) noexcept {
    uint32_t b1, b2;
    uint16_t tag;
    bucket_pair(h, b1, b2, tag);
    ConnEntry* e = nullptr;
    if (stats_.entries < capacity_) {
        // Two-choice: the less loaded bucket with a free way.
        const unsigned f1 = match_tags(&tags_[static_cast<size_t>(b1) * kWays], 0);
        const unsigned f2 = match_tags(&tags_[static_cast<size_t>(b2) * kWays], 0);
        const uint32_t bb = __builtin_popcount(f2) > __builtin_popcount(f1) ? b2 : b1;
        const unsigned f = bb == b1 ? f1 : f2;
        if (f) e = &entries_[bb * kWays + (static_cast<unsigned>(__builtin_ctz(f)) >> 1)];
    }
    if (!e) e = insert_slow(b1, b2, st, now_ns);
    if (!e) {
        ++stats_.insert_failed;
        return nullptr;
    }
    e->key = k;
    e->last_seen_ns = now_ns;
    e->state = st;
    e->timeout_s = timeout_for(st, timeout_s);
    e->rule = rule;
    e->bucket = static_cast<uint16_t>(bucket);
    tags_[static_cast<size_t>(e - entries_.get())] = tag;
    ++stats_.entries;
    ++stats_.inserted;
    return e;
}

void ConnTable::set_state(ConnEntry* e, ConnState st) noexcept {
    if (st != ConnState::udp) e->timeout_s = timeout_for(st, 0);
    e->state = st;
}

void ConnTable::remove(ConnEntry* e) noexcept {
    ++stats_.removed;
    release_slot(static_cast<uint32_t>(e - entries_.get()));
}

ExpireResult ConnTable::expire(uint64_t now_ns, uint32_t budget, const Snapshot* s) noexcept {
    ExpireResult r;
    const uint64_t epoch = s ? s->epoch : 0;
    const uint64_t generation = s ? s->generation : 0;
    if (s != sweep_snap_ || epoch != sweep_epoch_ || generation != sweep_generation_) {
        // A new view: counts taken under the old one say nothing about it.
        sweep_snap_ = s;
        sweep_epoch_ = epoch;
        sweep_generation_ = generation;
        foreign_.valid = false;
        sweep_clean_ = cursor_ == 0;
        sweep_foreign_ = 0;
    }
    const uint32_t n = slots();
    const uint32_t end = n - cursor_ < budget ? n : cursor_ + budget;
    const HostId self = s ? s->self : kNoHost;
    for (uint32_t slot = cursor_; slot < end; ++slot) {
        if (tags_[slot] == 0) continue;
        const ConnEntry& e = entries_[slot];
        if (idle_past(e, now_ns)) {
            ++stats_.expired[static_cast<unsigned>(e.state)];
            release_slot(slot);
            ++r.expired;
            continue;
        }
        if (s && e.rule < s->rules.rules.size() &&
            s->rules.rules[e.rule].mode != FilterMode::disabled &&
            owner_of(*s, e.rule, e.bucket) != self)
            ++sweep_foreign_;
    }
    r.scanned = end - cursor_;
    cursor_ = end;
    if (cursor_ == n) {
        r.sweep_completed = true;
        if (sweep_clean_ && s) foreign_ = ForeignCount{sweep_foreign_, epoch, generation, true};
        cursor_ = 0;
        sweep_foreign_ = 0;
        sweep_clean_ = true;
    }
    return r;
}

void ConnTable::clear() noexcept {
    std::memset(tags_.get(), 0, sizeof(uint16_t) * slots());
    for (uint32_t i = 0; i < slots(); ++i) entries_[i].state = ConnState::free;
    stats_.entries = 0;
}

}  // namespace nlbd::core
