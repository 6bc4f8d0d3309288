#pragma once
// Fragment decisions: every fragment of a datagram gets the decision of its
// first fragment, whatever order they arrive in. Non-first fragments that
// arrive before the first are held (by opaque handle: an rte_mbuf* in the
// data plane) until the first decides, or until they time out.
//
// Bounded: `capacity` datagrams, `max_held` held fragments per datagram. All
// memory is allocated by the constructor; the operations never allocate.
// One table per worker; not thread-safe by design.

#include <cstdint>
#include <memory>

#include "nlbd/core/decide.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::core {

struct FragKey {
    IpAddr src;
    IpAddr dst;
    uint32_t id = 0;
    uint8_t proto = 0;
    friend bool operator==(const FragKey&, const FragKey&) = default;
};

inline FragKey frag_key_of(const FlowKey& k) noexcept {
    return FragKey{k.src, k.dst, k.frag_id, k.proto};
}

// Receives handles the table lets go of. For released fragments d is the
// datagram's decision; for dropped ones d.verdict is frag_timeout or
// frag_evicted.
struct FragReleaser {
    void (*fn)(void* ctx, void* handle, const Decision& d) = nullptr;
    void* ctx = nullptr;
    void operator()(void* h, const Decision& d) const { fn(ctx, h, d); }
};

struct FragStats {
    uint64_t datagrams = 0;   // entries currently tracked
    uint64_t inserted = 0;
    uint64_t evicted = 0;     // entries evicted to make room (oldest first)
    uint64_t timed_out = 0;   // entries expired
    uint64_t held = 0;        // fragments currently held
};

class FragTable {
public:
    struct Config {
        uint32_t capacity = 4096;            // datagrams tracked
        uint32_t max_held = 16;              // held fragments per datagram
        uint64_t timeout_ns = 2'000'000'000; // since the datagram was first seen
    };
    explicit FragTable(const Config& cfg);
    ~FragTable();
    FragTable(const FragTable&) = delete;
    FragTable& operator=(const FragTable&) = delete;

    // The first fragment of a datagram was decided as d: remember d and
    // release every fragment held for it with d.
    void on_first(const FragKey& k, const Decision& d, uint64_t now_ns, const FragReleaser& r) noexcept;

    enum class Result : uint8_t { decided, held, full };
    // A non-first fragment. decided: *d is the datagram's decision. held: the
    // table keeps `handle` until release. full: not tracked, caller drops it
    // (Verdict::frag_table_full).
    Result on_later(const FragKey& k, void* handle, uint64_t now_ns, Decision& d,
                    const FragReleaser& r) noexcept;

    // Drops (via r, frag_timeout) fragments held past the timeout and forgets
    // expired datagrams. Call off the per-packet path, e.g. once per poll loop.
    void expire(uint64_t now_ns, const FragReleaser& r) noexcept;

    const FragStats& stats() const noexcept { return stats_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    FragStats stats_;
};

}  // namespace nlbd::core
