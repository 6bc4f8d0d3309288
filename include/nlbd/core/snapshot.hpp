#pragma once
// The immutable view of the cluster that workers read without locks.
// Built by the control plane (compile_snapshot), published by pointer, never
// written after publish; freed only after every worker has passed a quiescent
// point. Everything the packet path needs is in flat arrays.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "nlbd/core/rules.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::core {

inline constexpr uint16_t kNoRule = 0xffff;
inline constexpr uint16_t kNoVip = 0xffff;

struct CompiledRule {
    uint16_t port_lo = 0;
    uint16_t port_hi = 0;
    FilterMode mode = FilterMode::multiple;
    Affinity affinity = Affinity::single;
    HostId single_owner = kNoHost;   // single mode: best live handling priority
    uint16_t config_index = 0;       // index into Config::rules (for counters/names)
    uint32_t hash_seed = 0;
    uint32_t affinity_timeout_s = 0;
    // Single mode: the owner took the rule over from a host that still holds
    // connections of it (only its own connections and SYNs are accepted).
    bool single_dirty = false;
};

// Interval lists per (VIP, transport): rules sorted by port_lo, non-overlapping
// (validated). Index 0 of `by_vip` is the "all" list; index v+1 is VIP v.
struct RuleTable {
    std::vector<CompiledRule> rules;
    struct Interval {
        uint16_t lo, hi;
        uint16_t rule;  // index into rules
    };
    // lists[(vip_slot * 2) + (proto == UDP)]: sorted intervals.
    std::vector<std::vector<Interval>> lists;
    // Optional index of long lists (built by compile_snapshot; empty in
    // hand-built tables): for list L with block_base[L] != kNoBlocks,
    // blocks[block_base[L] + k] (k = 0..256) is the first interval of L whose
    // hi >= k * 256, so a port's candidates are blocks[k]..blocks[k + 1].
    static constexpr uint32_t kNoBlocks = 0xffffffffu;
    std::vector<uint32_t> block_base;
    std::vector<uint16_t> blocks;

    // Returns the rule for (vip index, proto, dport); a rule for the specific
    // VIP beats an "all" rule. kNoRule when nothing matches. Packet path.
    uint16_t match(uint16_t vip, uint8_t proto, uint16_t dport) const noexcept;
};

struct Member {
    HostId id = kNoHost;
    std::vector<uint8_t> weights;     // per config rule (0..100)
    std::vector<uint8_t> priorities;  // per config rule (handling priority, 0 = none)
};

struct Snapshot {
    uint64_t epoch = 0;
    HostId self = kNoHost;
    HostId default_host = kNoHost;   // live host with the lowest id
    bool started = true;             // false: VIP traffic dropped (Verdict::stopped)
    uint32_t buckets = kDefaultBuckets;
    ClusterMode mode = ClusterMode::unicast;
    MacAddr cluster_mac;             // what ARP/ND replies advertise
    MacAddr source_mac;              // what frames this node sends carry (unicast: masked)

    std::vector<IpAddr> vips;        // VIP index = position
    RuleTable rules;
    std::vector<HostId> owners;      // owners[rule * buckets + bucket]
    std::vector<HostId> echo_owners; // ICMP echo to a VIP: by source IP, `buckets` entries
    std::vector<HostId> members;     // live members, ascending

    // Added by compile_snapshot (may stay empty in hand-built snapshots):
    // vip_table: open-addressed VIP lookup, size a power of two >= 2 * vips,
    // each slot a VIP index or kNoVip; empty = vip_index scans `vips`.
    std::vector<uint16_t> vip_table;
    // rule_ids[r]: 64-bit identity of rule r's content (VIP, ports, protocol,
    // mode, affinity); hash_seed derives from it. A later compile rebalances a
    // rule's row from the previous snapshot's row with the same id.
    std::vector<uint64_t> rule_ids;
    uint32_t echo_seed = 0x6563686f;  // affinity_hash seed for ICMP echo

    // Dynamic membership (may stay empty): dirty[rule * buckets + bucket] != 0
    // when the bucket moved to its owner from a host that still holds
    // connections in it. The owner then accepts only TCP SYNs and connections
    // in its own table there. Empty = nothing dirty (static membership).
    std::vector<uint8_t> dirty;
    // Identifies the snapshot for Membership::set_held_foreign (counts of
    // foreign connections are only meaningful against the maps they used).
    uint64_t generation = 0;
    // Changes (mod 256) when a reload changed the rules, and so possibly
    // what a rule index means: connection entries stamped with another value
    // carry a rule index of other rules (ConnEntry::rules_generation).
    uint8_t rules_generation = 0;

    // Packet path: index of the VIP equal to a, or kNoVip.
    uint16_t vip_index(const IpAddr& a) const noexcept;
    HostId owner(uint16_t rule, uint32_t bucket) const noexcept {
        return owners[static_cast<size_t>(rule) * buckets + bucket];
    }
    // Packet path: see `dirty`.
    bool is_dirty(uint16_t rule, uint32_t bucket) const noexcept {
        return !dirty.empty() && dirty[static_cast<size_t>(rule) * buckets + bucket] != 0;
    }
};

namespace detail {
// Slot hash of Snapshot::vip_table (process-local, not stable across builds).
uint32_t vip_slot_hash(const IpAddr& a) noexcept;
}  // namespace detail

// Cluster MAC and this node's source MAC for a mode (SPEC §3).
MacAddr cluster_mac(ClusterMode mode, const IpAddr& first_v4_vip);
MacAddr unicast_source_mac(HostId self, const IpAddr& first_v4_vip);

struct SnapshotInput {
    HostId self = kNoHost;
    bool started = true;
    uint64_t epoch = 0;
    uint32_t buckets = kDefaultBuckets;
    ClusterMode mode = ClusterMode::unicast;
    std::vector<IpAddr> vips;
    std::vector<PortRule> rules;      // validated, as configured (empty = NLB default)
    std::vector<Member> members;      // live members (self included when started)
    const Snapshot* previous = nullptr;  // for minimal-movement rebalance

    // Dynamic membership (cluster::Membership::snapshot_input). When
    // class_maps is non-empty the maps are taken as given instead of being
    // computed from `members` and `previous`:
    //  - class_maps[c]: `buckets` owners (the agreed map of class c);
    //  - rule_class[r]: class of multiple-mode rule r (kNoClass otherwise);
    //  - class_dirty[c]: `buckets` flags, or empty (nothing dirty in c);
    //  - echo_map: `buckets` owners for ICMP echo (empty = computed);
    //  - single_owners[r]: owner of single-mode rule r (empty = computed);
    //  - single_dirty[r]: see CompiledRule::single_dirty (empty = none).
    // local_disabled[r] != 0: this host drops every packet of rule r (per-rule
    // disable); the rule keeps its identity and hash seed.
    uint64_t generation = 0;
    uint8_t rules_generation = 0;     // see Snapshot::rules_generation
    std::vector<std::vector<HostId>> class_maps;
    std::vector<uint16_t> rule_class;
    std::vector<std::vector<uint8_t>> class_dirty;
    std::vector<HostId> echo_map;
    std::vector<HostId> single_owners;
    std::vector<uint8_t> single_dirty;
    std::vector<uint8_t> local_disabled;
};

inline constexpr uint16_t kNoClass = 0xffff;

// 64-bit identity of a rule's cluster-wide content, from the seeded fields of
// its canonical record (rule_record, core/rule_schema.hpp: not the affinity
// timeout nor the per-host weight/priority), and the hash seed derived from
// it. Equal on every host.
uint64_t rule_identity(const PortRule& r);
uint32_t rule_seed(uint64_t identity) noexcept;

// Control plane. Builds a complete snapshot; never fails on validated input.
std::shared_ptr<const Snapshot> compile_snapshot(const SnapshotInput& in);

}  // namespace nlbd::core
