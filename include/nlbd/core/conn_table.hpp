#pragma once
// Per-worker connection table for connection persistence (SPEC §5).
//
// Each worker tracks the connections it accepted (it sees every client->VIP
// packet of them, since the same flow always hashes to the same worker queue)
// so that when a bucket moves away the old owner keeps serving them and the
// new owner takes only new ones (see persist.hpp).
//
// Layout: `slots() = 8 * nbuckets` entries, nbuckets a power of two, sized so
// that `capacity` entries fill at most ~80% of the slots. Every key has two
// candidate buckets (two-choice hashing, no displacement); each bucket has a
// 16-byte line of eight 16-bit tags (0 = free slot) that a lookup compares
// first, so a lookup reads at most two tag lines and, on a tag match, one
// 64-byte entry. Memory per connection slot: 64 bytes of entry + 2 bytes of
// tag (ConnTable::kBytesPerSlot).
//
// Bounded: at most `capacity` live entries. All memory is allocated by the
// constructor; no operation allocates, locks, throws or makes a system call.
// One table per worker; not thread-safe by design. Only expire() (and
// held_foreign()) read a Snapshot; they run between bursts, off the per-packet
// path.
//
// Making room (insert into a full pair of buckets, or a full table): first
// any entry past its timeout in the two buckets is reclaimed; below capacity,
// one resident of the two buckets is moved to its other candidate bucket if
// that has room (one cuckoo step); otherwise a victim is evicted: the oldest
// syn/fin entry of the two buckets; for a UDP/TCP affinity, `elsewhere` or
// adopted (established) insert, else the oldest UDP or TCP affinity entry
// (affinity_evicted counts the latter); an established TCP entry or an
// `elsewhere` mark only when Config::evict_established is set (oldest
// first).
// Otherwise the insert is refused (insert_failed). So a SYN flood of any size
// can push out only other half-open / closing entries, never an established
// connection.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "nlbd/core/parse.hpp"
#include "nlbd/core/rules.hpp"
#include "nlbd/core/snapshot.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::core {

// What the table knows about a flow. Only client->VIP packets are seen, so the
// TCP states are those of the client's half.
enum class ConnState : uint8_t {
    free = 0,
    syn,          // SYN seen, nothing else yet (half-open)
    established,  // a non-SYN packet seen after the SYN, or adopted mid-flow
    fin,          // client FIN seen (closing); a later SYN reopens the tuple
    udp,          // UDP extended-affinity entry (key = affinity key + rule)
    affinity,     // TCP extended affinity held here (key = tcp_affinity_key_of)
    elsewhere,    // TCP extended affinity held by the previous owner of a
                  // dirty bucket we own (learned from its traffic; same key)
    count_
};
inline constexpr unsigned kConnStateCount = static_cast<unsigned>(ConnState::count_);

// Idle timeouts per state, in seconds since the last packet of the flow.
// Defaults: syn 30 s (covers a client's SYN retransmissions at 1, 3, 7 and
// 15 s, and ages a half-open flood out quickly); established 7440 s =
// 2 h 4 min, RFC 5382 REQ-5's minimum for established NAT bindings (longer
// than the 2 h TCP keepalive default, so keepalive-probed idle
// connections survive); fin 10 s (the client's ACKs of the server's data and
// FIN keep refreshing a half-closed flow; afterwards only retransmissions
// remain). RST removes the entry at once. UDP affinity entries use their
// rule's affinity_timeout_s; TCP affinity entries too, and `elsewhere`
// marks that timeout + kElsewhereGuardS (see persist.hpp).
struct ConnTimeouts {
    uint32_t syn_s = 30;
    uint32_t established_s = 7440;
    uint32_t fin_s = 10;
};

// Flow identity. IPv4 addresses use the first 4 bytes of src/dst, the rest
// zero, so whole-struct comparison is exact. For UDP affinity entries
// (affinity_key_of) proto is 0 and dport carries the rule index, so they can
// never collide with a 5-tuple key. Layout: five 64-bit words with no
// padding the compiler could leave undefined (pad is always zero), 8-byte
// aligned, so equality and hashing read it as words (conn_key_equal).
struct alignas(8) ConnKey {
    std::array<uint8_t, 16> src{};
    std::array<uint8_t, 16> dst{};
    uint16_t sport = 0;
    uint16_t dport = 0;
    uint8_t proto = 0;
    uint8_t family = 0;
    uint16_t pad = 0;  // always zero

    friend bool operator==(const ConnKey& a, const ConnKey& b) noexcept;
};
static_assert(sizeof(ConnKey) == 40 && alignof(ConnKey) == 8,
              "ConnKey is compared and hashed as five aligned 64-bit words");
static_assert(offsetof(ConnKey, sport) == 32 && offsetof(ConnKey, pad) == 38,
              "no hidden padding: every byte of the five words is a field");

namespace detail {
inline uint64_t conn_word(const ConnKey& k, unsigned i) noexcept {
    uint64_t v;
    std::memcpy(&v, reinterpret_cast<const uint8_t*>(&k) + 8 * i, 8);
    return v;
}
}  // namespace detail

// Word-wise equality, inline and branch-free over the key (no memcmp call).
inline bool operator==(const ConnKey& a, const ConnKey& b) noexcept {
    using detail::conn_word;
    return ((conn_word(a, 0) ^ conn_word(b, 0)) | (conn_word(a, 1) ^ conn_word(b, 1)) |
            (conn_word(a, 2) ^ conn_word(b, 2)) | (conn_word(a, 3) ^ conn_word(b, 3)) |
            (conn_word(a, 4) ^ conn_word(b, 4))) == 0;
}

// The TCP/UDP 5-tuple of k (client side: src = client).
// Built as five 64-bit words (the layout of ConnKey on a little-endian CPU),
// so that the hash and the comparisons that read it back as words get them
// from whole 8-byte stores (narrow field stores read back as one word stall
// store forwarding: measurable per packet).
inline ConnKey conn_key_of(const FlowKey& k) noexcept {
    ConnKey c;
    if constexpr (std::endian::native == std::endian::little) {
        uint64_t w[5];
        std::memcpy(&w[0], k.src.b.data(), 16);
        std::memcpy(&w[2], k.dst.b.data(), 16);
        w[4] = uint64_t{k.sport} | uint64_t{k.dport} << 16 | uint64_t{k.proto} << 32 |
               uint64_t{static_cast<uint8_t>(k.src.family)} << 40;  // pad = 0
        std::memcpy(static_cast<void*>(&c), w, sizeof w);
    } else {
        c.src = k.src.b;
        c.dst = k.dst.b;
        c.sport = k.sport;
        c.dport = k.dport;
        c.proto = k.proto;
        c.family = static_cast<uint8_t>(k.src.family);
    }
    return c;
}
// The extended-affinity key of k for `rule`: source IP (affinity single),
// source /24 (IPv4) or /48 (IPv6) (affinity network), source IP + port
// (affinity none); destination and protocol are replaced by the rule index.
ConnKey affinity_key_of(const FlowKey& k, Affinity a, uint16_t rule) noexcept;
// The TCP extended-affinity key: affinity_key_of with proto kTcpAffinityProto,
// so that a rule for both protocols keeps its UDP and TCP client entries
// apart (their semantics differ) and neither can equal a 5-tuple key.
inline constexpr uint8_t kTcpAffinityProto = 0xfe;
inline ConnKey tcp_affinity_key_of(const FlowKey& k, Affinity a, uint16_t rule) noexcept {
    ConnKey c = affinity_key_of(k, a, rule);
    c.proto = kTcpAffinityProto;
    return c;
}

// One connection: exactly one cache line.
struct alignas(64) ConnEntry {
    ConnKey key;
    uint64_t last_seen_ns = 0;
    uint32_t timeout_s = 0;       // idle timeout of the current state
    uint16_t rule = kNoRule;      // CompiledRule index of the latest packet's snapshot
    uint16_t bucket = 0;          // bucket within that rule (0 for single-host rules)
    ConnState state = ConnState::free;
    // Snapshot::rules_generation that `rule` was given under: after a reload
    // changed the rules, the index may name another rule until the next
    // packet of the connection rewrites both (the sweep counts it foreign).
    uint8_t rules_generation = 0;
    uint8_t flags = 0;            // state affinity: kAffinityMoved | kAffinityConfirmed
    uint8_t pad = 0;
    // State affinity with kAffinityMoved: the time (ms, wrapping) this host
    // first saw the client's traffic in a bucket it no longer owns.
    uint32_t moved_ms = 0;
};
inline constexpr uint8_t kAffinityMoved = 1;
inline constexpr uint8_t kAffinityConfirmed = 2;
static_assert(sizeof(ConnEntry) == 64, "one connection = one cache line");

struct ConnStats {
    uint64_t entries = 0;         // live entries now (<= capacity)
    uint64_t inserted = 0;
    uint64_t removed = 0;         // removed by RST or by a SYN reopening a closed tuple
    std::array<uint64_t, kConnStateCount> expired{};  // idle timeouts, by state
    uint64_t evicted = 0;         // pushed out to make room
    uint64_t evicted_established = 0;  // of which established (evict_established only)
    uint64_t insert_failed = 0;   // no room and nothing evictable
    uint64_t relocated = 0;       // residents moved to their other bucket to make room
    // TCP extended affinity (persist.hpp):
    uint64_t affinity_entries = 0;   // live `affinity` + `elsewhere` entries now
    uint64_t affinity_hits = 0;      // SYNs accepted by a client's affinity to this host
                                     // in a bucket it no longer owns
    uint64_t affinity_yielded = 0;   // SYNs left to the previous owner (client held there)
    uint64_t affinity_evicted = 0;   // affinity/elsewhere entries pushed out to make room
    uint64_t affinity_insert_failed = 0;  // of insert_failed, affinity/elsewhere inserts
};

// Result of one expire() call.
struct ExpireResult {
    uint32_t scanned = 0;         // slots examined
    uint32_t expired = 0;         // entries removed for idleness
    bool sweep_completed = false; // the cursor wrapped: a whole pass ended
};

// Entries held for buckets this host no longer owns, counted over one whole
// sweep that ran entirely under the same snapshot (pointer, epoch and
// generation; report it with `generation` to Membership::set_held_foreign). A
// drained host reports it in its heartbeat; the new owners keep the buckets
// dirty until it reaches 0. `valid` is false until such a sweep completes
// after the latest snapshot change: a stale zero is never reported.
struct ForeignCount {
    uint64_t count = 0;
    uint64_t epoch = 0;           // Snapshot::epoch the count was taken under
    uint64_t generation = 0;      // Snapshot::generation the count was taken under
    bool valid = false;
};

// Where a table's large arrays come from, when the caller has better memory
// than the process heap: the daemon passes the EAL's hugepage heap on the
// worker's NUMA socket (rte_malloc_socket) when EAL runs on hugepages. alloc
// returns memory aligned to 64 bytes at least, or nullptr (then the table
// falls back to its own mapping); free releases what alloc returned. Both
// are called off the packet path only (construction, destruction).
struct TableAllocator {
    void* (*alloc)(size_t bytes, void* ctx) = nullptr;
    void (*free)(void* p, void* ctx) = nullptr;
    void* ctx = nullptr;
};

// Which memory a table ended up in (for the start-up log and stats).
enum class TableBacking : uint8_t {
    allocator,  // TableAllocator (hugetlbfs pages through EAL)
    mapping,    // anonymous mapping, transparent huge pages requested
    heap,       // the process heap (4 KiB pages)
};

namespace detail {
// Owner of a large table array: from the caller's TableAllocator when given
// (and it succeeds), else an anonymous mapping aligned to 2 MiB with
// transparent huge pages requested (Linux, madvise), so that a table of tens
// of megabytes costs a handful of TLB entries instead of thousands of 4 KiB
// ones (lookups touch random lines of it). Falls back to the heap when the
// mapping fails. Allocation and release only; never on the packet path.
class TableMemory {
public:
    TableMemory() = default;
    ~TableMemory();
    // Allocates `bytes` (once, uninitialised); returns the start, aligned to
    // 64 bytes at least.
    void* allocate(size_t bytes, const TableAllocator& from = {});
    TableMemory(const TableMemory&) = delete;
    TableMemory& operator=(const TableMemory&) = delete;
    void* get() const noexcept { return data_; }
    TableBacking backing() const noexcept { return backing_; }

private:
    void* data_ = nullptr;   // aligned start
    void* map_ = nullptr;    // whole mapping (nullptr: heap block in data_)
    size_t map_len_ = 0;
    TableAllocator from_;    // set when data_ came from it
    TableBacking backing_ = TableBacking::heap;
};
}  // namespace detail

class ConnTable {
public:
    struct Config {
        uint32_t capacity = 1u << 18;     // live connections (per worker)
        ConnTimeouts timeouts;
        bool evict_established = false;  // last resort: evict oldest established
        uint64_t seed = 0x6e6c6264636f6e6eull;  // hash seed (randomize per start)
        TableAllocator memory;                  // default: own mapping (THP)
    };
    static constexpr unsigned kWays = 8;
    static constexpr unsigned kBytesPerSlot = sizeof(ConnEntry) + sizeof(uint16_t);

    explicit ConnTable(const Config& cfg);
    ~ConnTable();
    ConnTable(const ConnTable&) = delete;
    ConnTable& operator=(const ConnTable&) = delete;

    // Process-local keyed hash (not stable across hosts; never on the wire).
    uint64_t hash(const ConnKey& k) const noexcept;
    // Prefetches the tag lines a lookup of hash h will read (burst form).
    void prefetch(uint64_t h) const noexcept;
    // Second stage of the burst form, once the tag lines are (likely) in
    // cache: prefetches the entry whose tag matches h's (a hit's key compare
    // is otherwise a miss to memory in a table of megabytes), or on a miss
    // the free slot an insert would fill first.
    void prefetch_entry(uint64_t h) const noexcept;

    // The live entry for k (h = hash(k)), or nullptr. An entry found past its
    // idle timeout is removed (counted as expired) and nullptr returned.
    ConnEntry* find(const ConnKey& k, uint64_t h, uint64_t now_ns) noexcept;

    // Inserts k, which must not be present (call find first). timeout_s is
    // used for ConnState::udp; other states take theirs from the config.
    // Returns nullptr when there is no room (insert_failed counted). May move
    // other entries: pointers from find() are valid only until the next
    // insert(), remove(), expire() or clear().
    ConnEntry* insert(const ConnKey& k, uint64_t h, ConnState st, uint16_t rule,
                      uint32_t bucket, uint64_t now_ns, uint32_t timeout_s = 0) noexcept;

    // Moves e to state st (timeout follows the state; udp keeps its own).
    void set_state(ConnEntry* e, ConnState st) noexcept;
    // Removes a live entry (RST, reopen); counted as removed.
    void remove(ConnEntry* e) noexcept;

    // Bulk aging off the hot path: examines the next `budget` slots from an
    // internal cursor, removes entries idle past their timeout, and (when s is
    // not null) counts entries whose (rule, bucket) is not owned by s->self
    // towards held_foreign(). Call once per poll loop with the snapshot the
    // worker currently reads; the budget decides how long a whole sweep
    // (slots() slots) takes, and so how soon held_foreign() and
    // may_hold_foreign() catch up with a new snapshot.
    ExpireResult expire(uint64_t now_ns, uint32_t budget, const Snapshot* s) noexcept;

    // Latest complete held-foreign count (see ForeignCount).
    ForeignCount held_foreign() const noexcept { return foreign_; }

    // Whether this table may hold an entry in a (rule, bucket) that s gives
    // to another host. False only when a whole expire() sweep that ran
    // entirely under s (same pointer, epoch and generation) found no such
    // entry (none foreign by owner_of, none with a rule index outside s).
    // Any other snapshot answers true until such a sweep completes under it.
    // While it is false, a lookup for a packet s gives to another host can
    // only miss, so persistence skips it (apply_persistence: not_owner
    // without a lookup). This relies on the caller's contract that, under a
    // given snapshot, insert() and the (rule, bucket) written into entries
    // only name buckets s gives to this host (persist.cpp inserts and touches
    // with the decision of a packet this host owns, or of one found in the
    // table); a resident moved by insert() from the unswept to the swept part
    // of the table during a sweep is counted as foreign (conservative).
    bool may_hold_foreign(const Snapshot& s) const noexcept {
        return &s != clean_snap_ || s.epoch != clean_epoch_ || s.generation != clean_generation_;
    }

    // Removes everything (not counted as removed/expired).
    void clear() noexcept;

    // Counters kept by persistence (affinity_hits, affinity_yielded).
    ConnStats& stats_mut() noexcept { return stats_; }
    const ConnStats& stats() const noexcept { return stats_; }
    uint32_t capacity() const noexcept { return capacity_; }
    uint32_t slots() const noexcept { return nbuckets_ * kWays; }
    // Where the entry array lives (the larger of the two arrays).
    TableBacking backing() const noexcept { return entry_mem_.backing(); }
    size_t memory_bytes() const noexcept { return size_t{slots()} * kBytesPerSlot; }
    const ConnTimeouts& timeouts() const noexcept { return timeouts_; }

private:
    uint32_t timeout_for(ConnState st, uint32_t udp_timeout_s) const noexcept;
    void release_slot(uint32_t slot) noexcept;
    ConnEntry* insert_slow(uint32_t b1, uint32_t b2, ConnState st, uint64_t now_ns) noexcept;
    void bucket_pair(uint64_t h, uint32_t& b1, uint32_t& b2, uint16_t& tag) const noexcept;
    static constexpr uint32_t kNoSlot = ~0u;
    // The free slot insert() fills first for the bucket pair, or kNoSlot.
    uint32_t free_slot(uint32_t b1, uint32_t b2) const noexcept;
    [[gnu::cold]] void expire_on_find(uint32_t slot) noexcept;

    uint32_t capacity_ = 0;
    uint32_t nbuckets_ = 0;          // power of two
    uint32_t mask_ = 0;
    ConnTimeouts timeouts_;
    bool evict_established_ = false;
    uint64_t seed_ = 0;
    detail::TableMemory tag_mem_;
    detail::TableMemory entry_mem_;
    uint16_t* tags_ = nullptr;       // slots(), 0 = free
    ConnEntry* entries_ = nullptr;   // slots()
    ConnStats stats_;

    // Sweep state for expire().
    uint32_t cursor_ = 0;
    uint64_t sweep_foreign_ = 0;
    uint64_t sweep_unknown_ = 0;     // entries whose rule index is outside the snapshot
    bool sweep_clean_ = false;       // whole current sweep ran under sweep_snap_
    const Snapshot* sweep_snap_ = nullptr;
    uint64_t sweep_epoch_ = 0;
    uint64_t sweep_generation_ = 0;
    ForeignCount foreign_;
    // The snapshot a whole sweep found nothing foreign under (may_hold_foreign).
    const Snapshot* clean_snap_ = nullptr;
    uint64_t clean_epoch_ = 0;
    uint64_t clean_generation_ = 0;
};

// ---------------------------------------------------------------- inline hot path

namespace detail {

// 64x64 -> 128 multiply, high half xor low half.
inline uint64_t conn_mum(uint64_t a, uint64_t b) noexcept {
    const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
    return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// Lane mask of the ways of an 8-way tag line equal to `tag`: way i is bit 2i.
// Iterate with ctz(m) / 2 and m &= m - 1.
inline unsigned conn_match_tags(const uint16_t* line, uint16_t tag) noexcept {
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

// A prefetch the compiler keeps: GCC deletes a loop whose only effect is
// __builtin_prefetch (seen with GCC 12 -O3 on prefetch_entry's loop).
inline void conn_prefetch(const void* p) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
    __builtin_prefetch(p);
#endif
}

inline bool conn_idle_past(const ConnEntry& e, uint64_t now_ns) noexcept {
    return now_ns > e.last_seen_ns &&
           now_ns - e.last_seen_ns > static_cast<uint64_t>(e.timeout_s) * 1'000'000'000ull;
}

}  // namespace detail

// Multiply-fold hashing (wyhash-style "mum"): the five words of the key are
// folded in two independent 128-bit products, then combined, keyed by seed_.
inline uint64_t ConnTable::hash(const ConnKey& k) const noexcept {
    using detail::conn_mum;
    using detail::conn_word;
    const uint64_t a = conn_mum(conn_word(k, 0) ^ seed_, conn_word(k, 1) ^ 0xa0761d6478bd642full);
    const uint64_t b = conn_mum(conn_word(k, 2) ^ 0xe7037ed1a0b428dbull,
                                conn_word(k, 3) ^ (seed_ + 0x8ebc6af09c88c6e3ull));
    return conn_mum(a ^ conn_word(k, 4) ^ 0x589965cc75374cc3ull,
                    b ^ seed_ ^ 0x1d8e4e27c47d124full);
}

inline void ConnTable::bucket_pair(uint64_t h, uint32_t& b1, uint32_t& b2,
                                   uint16_t& tag) const noexcept {
    b1 = static_cast<uint32_t>(h) & mask_;
    b2 = static_cast<uint32_t>(h >> 32) & mask_;
    if (b2 == b1) b2 = b1 ^ 1u;  // nbuckets_ >= 2
    tag = static_cast<uint16_t>((h >> 16) ^ (h >> 48));
    if (tag == 0) tag = 1;
}

inline void ConnTable::prefetch(uint64_t h) const noexcept {
    uint32_t b1, b2;
    uint16_t tag;
    bucket_pair(h, b1, b2, tag);
    __builtin_prefetch(&tags_[static_cast<size_t>(b1) * kWays]);
    __builtin_prefetch(&tags_[static_cast<size_t>(b2) * kWays]);
}

inline void ConnTable::prefetch_entry(uint64_t h) const noexcept {
    uint32_t b[2];
    uint16_t tag;
    bucket_pair(h, b[0], b[1], tag);
    for (uint32_t bucket : b) {
        const uint32_t base = bucket * kWays;
        if (const unsigned m = detail::conn_match_tags(&tags_[base], tag); m != 0) {
            detail::conn_prefetch(&entries_[base + (static_cast<unsigned>(__builtin_ctz(m)) >> 1)]);
            return;
        }
    }
    // A miss: the slot an insert (a SYN's) would fill.
    if (const uint32_t slot = free_slot(b[0], b[1]); slot != kNoSlot) detail::conn_prefetch(&entries_[slot]);
}

inline uint32_t ConnTable::free_slot(uint32_t b1, uint32_t b2) const noexcept {
    // Two-choice: the less loaded bucket with a free way.
    const unsigned f1 = detail::conn_match_tags(&tags_[static_cast<size_t>(b1) * kWays], 0);
    const unsigned f2 = detail::conn_match_tags(&tags_[static_cast<size_t>(b2) * kWays], 0);
    const uint32_t bb = __builtin_popcount(f2) > __builtin_popcount(f1) ? b2 : b1;
    const unsigned f = bb == b1 ? f1 : f2;
    return f ? bb * kWays + (static_cast<unsigned>(__builtin_ctz(f)) >> 1) : kNoSlot;
}

inline ConnEntry* ConnTable::find(const ConnKey& k, uint64_t h, uint64_t now_ns) noexcept {
    uint32_t b[2];
    uint16_t tag;
    bucket_pair(h, b[0], b[1], tag);
    for (uint32_t bucket : b) {
        const uint32_t base = bucket * kWays;
        for (unsigned m = detail::conn_match_tags(&tags_[base], tag); m; m &= m - 1) {
            const uint32_t slot = base + (static_cast<unsigned>(__builtin_ctz(m)) >> 1);
            ConnEntry& e = entries_[slot];
            if (!(e.key == k)) continue;
            if (detail::conn_idle_past(e, now_ns)) [[unlikely]] {
                expire_on_find(slot);
                return nullptr;
            }
            return &e;
        }
    }
    return nullptr;
}

// Owner of (rule, bucket) in s, whatever the rule's mode: multiple -> the
// bucket map, single -> the rule's single owner, disabled/out of range ->
// kNoHost. expire() counts an entry as foreign only when its rule is in range
// and not disabled (a disabled rule's connections are dropped anyway).
HostId owner_of(const Snapshot& s, uint16_t rule, uint32_t bucket) noexcept;

}  // namespace nlbd::core
