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
// TCP extended affinity (rules with affinity_timeout_s > 0, multiple-host,
// affinity single or network; docs/cluster.md "Extended affinity"). Entries
// in the connection table keyed by tcp_affinity_key_of (client address or
// /24 - /48 + rule), state `affinity` (the client's affinity to this host)
// or `elsewhere` (the client is held by the previous owner of a dirty bucket
// we own). Both hosts see the same packets, so they learn the same facts:
//   - owner, SYN not in the table: client marked elsewhere and bucket dirty
//     -> conn_elsewhere (affinity_yielded; the mark is not refreshed); else
//     the client's `affinity` entry is created or refreshed (timeout
//     affinity_timeout_s) + accepted.
//   - owner, non-SYN unknown in a dirty bucket -> conn_elsewhere (as above)
//     and the client is marked `elsewhere` (timeout + kElsewhereGuardS).
//   - a non-SYN packet of a connection held in a bucket no longer ours
//     (accepted_conn) refreshes the client's `affinity` entry, marks it moved
//     at the first one and confirms it at one kAffinityGraceMs after that
//     (longer than the map-publication skew between hosts, so the new owner
//     has seen it as conn_elsewhere and marked the client).
//   - not owner, SYN not in the table, this host a member, client's
//     `affinity` entry live and confirmed -> insert (syn) + accepted_conn
//     (affinity_hits; the entry is not refreshed by the SYN).
// So after confirmation both hosts refresh on the same packets and the mark
// outlives the entry by kElsewhereGuardS: a SYN the holder accepts is one
// the new owner drops.
// The holder's entries in moved buckets are foreign connections: the move
// stays dirty until they expire, so the mark outlives the holder's entry
// and no SYN is answered twice. A client whose session sends nothing after
// the move is not held (nothing tells the new owner about it).
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

// TCP extended affinity (see above).
inline constexpr uint32_t kAffinityGraceMs = 2000;
inline constexpr uint32_t kElsewhereGuardS = 2;

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
