#pragma once
// Connection persistence (SPEC §5, team design "dirty buckets"), applied to a
// decide() result on the packet path. No allocation, locks, exceptions or
// system calls; touches only the worker's own ConnTable.
//
// TCP to a multiple- or single-host rule (decide() said accepted or
// not_owner; stopped hosts and disabled rules are never overridden):
//   - in the table: accepted, or accepted_conn when the bucket is no longer
//     ours; FIN moves the entry to fin, RST removes it (the RST itself is
//     still delivered), a non-SYN after the SYN makes it established. A SYN
//     on an entry in fin state is a new connection reusing the tuple: the
//     entry is removed and the SYN decided as new.
//   - not in the table, owner == self: SYN -> insert (syn) + accepted;
//     non-SYN in a dirty bucket -> conn_elsewhere (left to the previous
//     owner); non-SYN in a clean bucket -> adopted (insert established, or
//     fin on a FIN; RST is delivered without an entry) + accepted.
//   - not in the table, owner != self: not_owner (unchanged). Such packets
//     are not even looked up while t.may_hold_foreign(s) is false (a whole
//     aging sweep under s found no connection in a bucket s gives away):
//     they cannot be in the table then. Any new snapshot turns lookups
//     back on until such a sweep completes under it.
// ICMP errors about a TCP/UDP flow are looked up only (never insert or change
// state): in the table -> accepted / accepted_conn; unknown in a dirty bucket
// we own -> conn_elsewhere.
// UDP to a rule with affinity_timeout_s > 0 (extended affinity): the key is
// the rule's affinity key (affinity_key_of) + rule; a fresh entry ->
// accepted / accepted_conn (and refreshed); unknown and ours: dirty ->
// conn_elsewhere, clean -> insert (udp, timeout = affinity_timeout_s) +
// accepted. Everything else is returned unchanged.
//
// Insert failures (table full, nothing evictable) do not change the verdict:
// the packet is accepted untracked and the failure is counted in the table.

#include <cstdint>
#include <span>

#include "nlbd/core/conn_table.hpp"
#include "nlbd/core/decide.hpp"
#include "nlbd/core/parse.hpp"
#include "nlbd/core/snapshot.hpp"

namespace nlbd::core {

// True when `bucket` of `rule` moved to this host from a host that is still
// alive and still holds connections in it: Snapshot::is_dirty for multiple-
// host rules, CompiledRule::single_dirty for single-host rules.
bool bucket_dirty(const Snapshot& s, uint16_t rule, uint32_t bucket) noexcept;

Decision apply_persistence(const ParsedFrame& f, const Decision& d, const Snapshot& s,
                           ConnTable& t, uint64_t now_ns) noexcept;

// Burst form: decisions[i] = apply_persistence(frames[i], decisions[i], ...)
// for i < min(frames.size(), decisions.size()), hashing and prefetching the
// table lines of a chunk before resolving it.
void apply_persistence_burst(std::span<const ParsedFrame> frames, std::span<Decision> decisions,
                             const Snapshot& s, ConnTable& t, uint64_t now_ns) noexcept;

}  // namespace nlbd::core
