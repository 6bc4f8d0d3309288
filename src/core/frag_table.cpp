// Bounded fragment-decision table (see frag_table.hpp for the contract).
//
// Layout, all allocated by the constructor:
//   - entries_: `capacity` slots used as a ring in creation order. An entry
//     lives until it times out or is evicted, and both happen oldest first,
//     so the ring tail is always the oldest live entry: expiry and eviction
//     are O(1) pops from the tail.
//   - heads_: chained hash index (power-of-two buckets >= capacity) of entry
//     indices; each entry links to the next in its chain.
//   - held_: `capacity * max_held` handle slots, max_held per entry.
// Not thread-safe: one table per worker.

#include "nlbd/core/frag_table.hpp"

#include <cstring>
#include <vector>

namespace nlbd::core {

namespace {
constexpr uint32_t kNil = 0xffffffffu;

inline uint32_t hash_key(const FragKey& k) noexcept {
    uint64_t w[4];
    std::memcpy(&w[0], k.src.b.data(), 8);
    std::memcpy(&w[1], k.src.b.data() + 8, 8);
    std::memcpy(&w[2], k.dst.b.data(), 8);
    std::memcpy(&w[3], k.dst.b.data() + 8, 8);
    uint64_t h = (static_cast<uint64_t>(k.id) << 8) | k.proto;
    for (uint64_t x : w) {
        h ^= x;
        h *= 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    return static_cast<uint32_t>(h >> 32);
}
}  // namespace

struct FragTable::Impl {
    struct Entry {
        FragKey key;
        Decision decision;
        uint64_t first_seen = 0;
        uint32_t next = kNil;   // hash chain
        uint16_t nheld = 0;
        bool decided = false;
    };

    Config cfg;
    std::vector<Entry> entries;
    std::vector<uint32_t> heads;
    std::vector<void*> held;
    uint32_t mask = 0;
    uint32_t tail = 0;  // oldest live entry
    uint32_t live = 0;

    explicit Impl(const Config& c) : cfg(c) {
        if (cfg.max_held > 0xffff) cfg.max_held = 0xffff;  // Entry::nheld is 16 bits
        entries.resize(cfg.capacity);
        held.resize(static_cast<size_t>(cfg.capacity) * cfg.max_held);
        uint32_t n = 1;
        while (n < c.capacity) n <<= 1;
        heads.assign(n, kNil);
        mask = n - 1;
    }

    uint32_t find(const FragKey& k) const noexcept {
        for (uint32_t i = heads[hash_key(k) & mask]; i != kNil; i = entries[i].next)
            if (entries[i].key == k) return i;
        return kNil;
    }

    // Releases every handle held by entry e with d.
    void release(Entry& e, uint32_t idx, const Decision& d, const FragReleaser& r, FragStats& st) noexcept {
        void** h = held.data() + static_cast<size_t>(idx) * cfg.max_held;
        for (uint16_t i = 0; i < e.nheld; ++i) r(h[i], d);
        st.held -= e.nheld;
        e.nheld = 0;
    }

    // Removes the oldest entry, dropping its held fragments with `why`.
    void pop_tail(Verdict why, const FragReleaser& r, FragStats& st) noexcept {
        Entry& e = entries[tail];
        Decision d;
        d.verdict = why;
        release(e, tail, d, r, st);
        // Unlink from its chain.
        uint32_t* link = &heads[hash_key(e.key) & mask];
        while (*link != tail) link = &entries[*link].next;
        *link = e.next;
        e.next = kNil;
        tail = tail + 1 == cfg.capacity ? 0 : tail + 1;
        --live;
        --st.datagrams;
    }

    void expire(uint64_t now, const FragReleaser& r, FragStats& st) noexcept {
        // Expired once timeout_ns have passed since first seen (a clock that
        // steps back expires nothing).
        while (live > 0 && now >= entries[tail].first_seen &&
               now - entries[tail].first_seen >= cfg.timeout_ns) {
            pop_tail(Verdict::frag_timeout, r, st);
            ++st.timed_out;
        }
    }

    // New entry at the ring head, evicting the oldest when full. kNil when
    // the table has no room at all (capacity 0).
    uint32_t insert(const FragKey& k, uint64_t now, const FragReleaser& r, FragStats& st) noexcept {
        if (cfg.capacity == 0) return kNil;
        if (live == cfg.capacity) {
            pop_tail(Verdict::frag_evicted, r, st);
            ++st.evicted;
        }
        uint32_t idx = tail + live;
        if (idx >= cfg.capacity) idx -= cfg.capacity;
        Entry& e = entries[idx];
        e.key = k;
        e.decision = Decision{};
        e.first_seen = now;
        e.nheld = 0;
        e.decided = false;
        uint32_t& head = heads[hash_key(k) & mask];
        e.next = head;
        head = idx;
        ++live;
        ++st.datagrams;
        ++st.inserted;
        return idx;
    }
};

FragTable::FragTable(const Config& cfg) : impl_(std::make_unique<Impl>(cfg)) {}
FragTable::~FragTable() = default;

void FragTable::on_first(const FragKey& k, const Decision& d, uint64_t now_ns,
                         const FragReleaser& r) noexcept {
    Impl& t = *impl_;
    t.expire(now_ns, r, stats_);
    uint32_t idx = t.find(k);
    if (idx == kNil) idx = t.insert(k, now_ns, r, stats_);
    if (idx == kNil) return;
    Impl::Entry& e = t.entries[idx];
    e.decision = d;
    e.decided = true;
    t.release(e, idx, d, r, stats_);
}

FragTable::Result FragTable::on_later(const FragKey& k, void* handle, uint64_t now_ns, Decision& d,
                                      const FragReleaser& r) noexcept {
    Impl& t = *impl_;
    t.expire(now_ns, r, stats_);
    uint32_t idx = t.find(k);
    if (idx != kNil && t.entries[idx].decided) {
        d = t.entries[idx].decision;
        return Result::decided;
    }
    if (t.cfg.max_held == 0) return Result::full;
    if (idx == kNil) idx = t.insert(k, now_ns, r, stats_);
    if (idx == kNil) return Result::full;
    Impl::Entry& e = t.entries[idx];
    if (e.nheld >= t.cfg.max_held) return Result::full;
    t.held[static_cast<size_t>(idx) * t.cfg.max_held + e.nheld] = handle;
    ++e.nheld;
    ++stats_.held;
    return Result::held;
}

void FragTable::expire(uint64_t now_ns, const FragReleaser& r) noexcept {
    impl_->expire(now_ns, r, stats_);
}

}  // namespace nlbd::core
