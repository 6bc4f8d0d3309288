// Per-worker connection table (see conn_table.hpp for the contract).
// Packet path: no allocation after construction, no locks, no exceptions, no
// system calls.

#include "nlbd/core/conn_table.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif


namespace nlbd::core {
namespace {

using detail::conn_idle_past;
using detail::conn_match_tags;

inline uint32_t next_pow2(uint64_t x) noexcept {
    uint64_t p = 1;
    while (p < x) p <<= 1;
    return static_cast<uint32_t>(p);
}

}  // namespace

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
    tags_ = static_cast<uint16_t*>(tag_mem_.allocate(sizeof(uint16_t) * slots(), cfg.memory));
    entries_ = static_cast<ConnEntry*>(entry_mem_.allocate(sizeof(ConnEntry) * slots(), cfg.memory));
    std::memset(tags_, 0, sizeof(uint16_t) * slots());
    for (uint32_t i = 0; i < slots(); ++i) new (&entries_[i]) ConnEntry();
}

ConnTable::~ConnTable() = default;  // ConnEntry is trivially destructible

namespace detail {

void* TableMemory::allocate(size_t bytes, const TableAllocator& from) {
    constexpr size_t kHuge = size_t{2} << 20;
    if (from.alloc != nullptr && from.free != nullptr) {
        if (void* p = from.alloc(bytes < 64 ? 64 : bytes, from.ctx); p != nullptr) {
            from_ = from;
            data_ = p;
            backing_ = TableBacking::allocator;
            return data_;
        }
    }
#if defined(__linux__)
    if (bytes >= kHuge / 2) {  // smaller arrays: the heap (4 KiB pages are few)
        const size_t len = (bytes + kHuge - 1) / kHuge * kHuge + kHuge;
        void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            map_ = m;
            map_len_ = len;
            const uintptr_t a = (reinterpret_cast<uintptr_t>(m) + kHuge - 1) & ~(kHuge - 1);
            data_ = reinterpret_cast<void*>(a);
            const size_t usable = (len - (a - reinterpret_cast<uintptr_t>(m))) & ~(kHuge - 1);
            madvise(data_, usable, MADV_HUGEPAGE);  // advisory: 4 KiB pages if refused
            backing_ = TableBacking::mapping;
            return data_;
        }
    }
#endif
    data_ = ::operator new(bytes < 64 ? 64 : bytes, std::align_val_t{64});
    return data_;
}

TableMemory::~TableMemory() {
    if (from_.free != nullptr) {
        from_.free(data_, from_.ctx);
        return;
    }
#if defined(__linux__)
    if (map_ != nullptr) {
        munmap(map_, map_len_);
        return;
    }
#endif
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t{64});
}

}  // namespace detail

uint32_t ConnTable::timeout_for(ConnState st, uint32_t udp_timeout_s) const noexcept {
    switch (st) {
    case ConnState::syn: return timeouts_.syn_s;
    case ConnState::established: return timeouts_.established_s;
    case ConnState::fin: return timeouts_.fin_s;
    case ConnState::udp:
    case ConnState::affinity:
    case ConnState::elsewhere: return udp_timeout_s;
    default: return 0;
    }
}

namespace {
inline bool is_affinity_state(ConnState st) noexcept {
    return st == ConnState::affinity || st == ConnState::elsewhere;
}
}  // namespace

void ConnTable::release_slot(uint32_t slot) noexcept {
    if (is_affinity_state(entries_[slot].state)) --stats_.affinity_entries;
    tags_[slot] = 0;
    entries_[slot].state = ConnState::free;
    --stats_.entries;
}

void ConnTable::expire_on_find(uint32_t slot) noexcept {
    ++stats_.expired[static_cast<unsigned>(entries_[slot].state)];
    release_slot(slot);
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
            if (tags_[slot] != 0 && conn_idle_past(entries_[slot], now_ns)) {
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
                const unsigned f = conn_match_tags(&tags_[alt], 0);
                if (!f) continue;
                const uint32_t to = alt + (static_cast<unsigned>(__builtin_ctz(f)) >> 1);
                entries_[to] = entries_[slot];
                tags_[to] = tags_[slot];
                tags_[slot] = 0;
                entries_[slot].state = ConnState::free;
                ++stats_.relocated;
                // Moved from the part of the table the current sweep has yet
                // to examine into the part it has passed: the sweep would miss
                // it. Count it as foreign (the ownership is not known here);
                // an over-count only delays a zero by one sweep.
                if (slot >= cursor_ && to < cursor_) ++sweep_foreign_;
                return &entries_[slot];
            }
    }

    // Eviction classes this insert may push out, best victim first. An
    // `elsewhere` mark is kept like an established connection: losing it
    // would let this host answer a SYN that the previous owner answers too.
    const bool may_udp = st == ConnState::udp || st == ConnState::established ||
                         is_affinity_state(st);
    uint32_t victim[3] = {~0u, ~0u, ~0u};  // syn/fin, udp + affinity, established + elsewhere
    for (uint32_t base : bases)
        for (uint32_t slot = base; slot < base + kWays; ++slot) {
            if (tags_[slot] == 0) continue;
            const ConnEntry& e = entries_[slot];
            unsigned cls;
            if (e.state == ConnState::syn || e.state == ConnState::fin) cls = 0;
            else if (e.state == ConnState::udp || e.state == ConnState::affinity) cls = 1;
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
    if (is_affinity_state(entries_[v].state)) ++stats_.affinity_evicted;
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
        if (const uint32_t slot = free_slot(b1, b2); slot != kNoSlot) e = &entries_[slot];
    }
    if (!e) e = insert_slow(b1, b2, st, now_ns);
    if (!e) {
        ++stats_.insert_failed;
        if (is_affinity_state(st)) ++stats_.affinity_insert_failed;
        return nullptr;
    }
    e->key = k;
    e->last_seen_ns = now_ns;
    e->state = st;
    e->timeout_s = timeout_for(st, timeout_s);
    e->rule = rule;
    e->bucket = static_cast<uint16_t>(bucket);
    e->flags = 0;
    e->moved_ms = 0;
    tags_[static_cast<size_t>(e - entries_)] = tag;
    if (is_affinity_state(st)) ++stats_.affinity_entries;
    ++stats_.entries;
    ++stats_.inserted;
    return e;
}

void ConnTable::set_state(ConnEntry* e, ConnState st) noexcept {
    if (st != ConnState::udp && !is_affinity_state(st)) e->timeout_s = timeout_for(st, 0);
    e->state = st;
}

void ConnTable::remove(ConnEntry* e) noexcept {
    ++stats_.removed;
    release_slot(static_cast<uint32_t>(e - entries_));
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
        sweep_unknown_ = 0;
    }
    const uint32_t n = slots();
    const uint32_t end = n - cursor_ < budget ? n : cursor_ + budget;
    const HostId self = s ? s->self : kNoHost;
    // A host out of the map (draining) takes no client by affinity
    // (persist.cpp), so its affinity entries hold nothing for anyone.
    const bool self_member =
        s != nullptr && std::binary_search(s->members.begin(), s->members.end(), self);
    for (uint32_t slot = cursor_; slot < end; ++slot) {
        if (tags_[slot] == 0) continue;
        const ConnEntry& e = entries_[slot];
        if (conn_idle_past(e, now_ns)) {
            ++stats_.expired[static_cast<unsigned>(e.state)];
            release_slot(slot);
            ++r.expired;
            continue;
        }
        if (s == nullptr) continue;
        // A mark of a client held elsewhere is no connection of ours.
        if (e.state == ConnState::elsewhere) continue;
        if (e.state == ConnState::affinity && !self_member) continue;
        if (e.rule >= s->rules.rules.size()) {
            ++sweep_unknown_;
        } else if (e.rules_generation != s->rules_generation) {
            ++sweep_foreign_;  // a rule index given under other rules: may be anyone's
        } else if (s->rules.rules[e.rule].mode != FilterMode::disabled &&
                   owner_of(*s, e.rule, e.bucket) != self) {
            ++sweep_foreign_;
        }
    }
    r.scanned = end - cursor_;
    cursor_ = end;
    if (cursor_ == n) {
        r.sweep_completed = true;
        if (sweep_clean_ && s) {
            foreign_ = ForeignCount{sweep_foreign_, epoch, generation, true};
            const bool clean = sweep_foreign_ == 0 && sweep_unknown_ == 0;
            clean_snap_ = clean ? s : nullptr;
            clean_epoch_ = clean ? epoch : 0;
            clean_generation_ = clean ? generation : 0;
        }
        cursor_ = 0;
        sweep_foreign_ = 0;
        sweep_unknown_ = 0;
        sweep_clean_ = true;
    }
    return r;
}

void ConnTable::clear() noexcept {
    std::memset(tags_, 0, sizeof(uint16_t) * slots());
    for (uint32_t i = 0; i < slots(); ++i) entries_[i].state = ConnState::free;
    stats_.entries = 0;
    stats_.affinity_entries = 0;
}

}  // namespace nlbd::core
