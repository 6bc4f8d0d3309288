#pragma once
// Cluster membership and convergence (SPEC §4, docs/design.md "Membership").
// Pure control-plane state machine: no sockets, no DPDK, no clock of its own.
// The caller feeds it decoded, replay-checked heartbeats and the time (any
// monotonic nanosecond clock; tests use a virtual one), sends the frames it
// asks for, and rebuilds the snapshot when take_changed() says so.
//
// Model (binding team design, docs/design.md):
//  - Bucket maps are stateful and agreed. One map per "map class": multiple-
//    host rules whose per-member effective weight vectors are equal share one
//    map (so single affinity keeps a client on one host across ports). One
//    extra map (the last class) serves ICMP echo with equal weights.
//  - Every host keeps the last map set it saw the whole cluster agree on
//    (the base, epoch e). Its current maps are a pure function of the base and
//    its current inputs (members + effective weights): the base itself when
//    the inputs are the base's, else rebalance_bucket_map(base, inputs) with
//    epoch e + 1. Without a base (cold start) they are build_bucket_map(inputs)
//    at epoch 1. So hosts that share a base and see the same members compute
//    the same maps, whatever order they saw the changes in; failover needs no
//    transfer.
//  - Converged = every member (alive, started, same rules fingerprint, not a
//    duplicate id) advertises the same view bitmap, epoch and map digest as
//    this host. The current maps then become the base.
//  - A host without maps whose peers have maps (a joiner), or a host whose
//    maps still differ from the authority's two intervals after a change,
//    adopts the authority's maps from MapChunks. The authority is the lowest-
//    id member of the largest group of members (self included) advertising
//    the same (epoch, map digest); between groups of equal size, the group
//    holding the lowest id. It is a pure function of the members' last
//    heartbeats, so every host names the same one. When partitions heal, the
//    larger side's maps win and are rebalanced for the union: only the
//    buckets the returning hosts take move. The authority sends its maps in
//    chunk frames (at most once per interval) while some member lacks them or
//    differs from it.
//  - Dirty buckets: a bucket that moves away from a host that is still alive
//    (started or draining) is dirty until that host advertises the same
//    epoch/digest as ours with held_foreign == 0, or stops, or dies.
//  - Merges: a "merging" peer is a live, started/draining member with maps of
//    its own (epoch > 0) that was not in the view this host last converged on
//    and has not advertised our maps since it was last dead (partition heal,
//    a host that ran alone). It may hold connections in any bucket, so while
//    one is heard every bucket this host owns is dirty from it (kAnyHost when
//    several); after convergence the marks clear by the rule above. Fresh
//    joiners (epoch 0), restarted processes and survivors of a failover are
//    never merging peers: cold start marks nothing, failover only the
//    buckets taken from the dead host, for the hold (below).
//  - Failure detection (docs/cluster.md, "Failure detection"): a host sends
//    `redundancy` heartbeats per interval, each saying which hosts it heard
//    within the last interval (Heartbeat::heard). A peer silent for
//    tolerance x interval is still alive while another peer heard within
//    the last interval says it heard it within the interval before (a real
//    death ends the vouching within two intervals, so it is still seen
//    within (tolerance + 2) x interval; at most 2 x tolerance x interval of
//    silence in any case). A peer
//    declared dead may still be alive behind a lossy path: until it has
//    been silent for dead + hold (hold = 3 x tolerance x interval) it
//    counts as holding connections, so the buckets taken from it are dirty
//    (new connections only) and its established connections are left to
//    it. If it is heard again it is a merging peer (above) and the marks
//    stay until it has converged with us.
//  - Wire link (set_link): while this host's own link is down it hears
//    nothing because of itself, so it declares no peer dead and recomputes
//    no map (peers' liveness clocks are frozen at the link-down time). From
//    link-down until it has converged again with every member it hears after
//    link-up ("rejoining"), every bucket it owns is dirty from kAnyHost and
//    stale heartbeats (heard before link-up) count neither for convergence
//    nor for releasing dirty marks: the peers may have taken its buckets and
//    opened connections there meanwhile. On link-up every peer that was
//    alive at link-down gets tolerance x interval to be heard again; if none
//    is, they die as usual and the host continues alone (nothing dirty: the
//    dead hold nothing).
//
//  - Rules by content (docs/cluster.md, "Rolling rule changes"): rules are
//    kept in canonical order (core::rule_record), so hosts listing the same
//    rules in another order are the same. Hosts whose rule sets differ still
//    form one view: each learns the others' rule lists (RuleList frames,
//    sent while a live peer advertises another fingerprint) and computes the
//    same "universe": per rule key (VIP, ports, protocol), the version held
//    by the most members (absence is a version; ties go to the version held
//    by the lowest id). Maps cover the universe; a member takes part in a
//    rule only if it holds the winning version (others get weight 0 and no
//    priority: they keep their connections, as a draining host, but take
//    nothing new). A rule version new to the universe has no history: its
//    owned buckets are dirty from kAnyHost until the peers report no
//    foreign connections. Rules every member agrees on keep their classes
//    and owners. A peer whose rule list is not known yet is judged on the
//    last list that was (a peer never heard with a known list is not a
//    member until its list arrives).
//
// Not thread-safe: owned by the control thread.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nlbd/cluster/heartbeat.hpp"
#include "nlbd/core/rule_schema.hpp"
#include "nlbd/core/rules.hpp"
#include "nlbd/core/snapshot.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::cluster {

// held_foreign value meaning "not counted against the current maps yet".
inline constexpr uint32_t kHeldUnknown = 0xffffffffu;
// Dirty-from marker: previous owner unknown (maps adopted without history).
inline constexpr HostId kAnyHost = 0xff;

struct MembershipConfig {
    HostId self = kNoHost;
    uint64_t cluster_id = 0;
    uint64_t boot_id = 0;                 // random per process start
    uint32_t buckets = kDefaultBuckets;
    uint64_t interval_ns = 1'000'000'000; // heartbeat_interval
    uint32_t tolerance = 5;               // dead after tolerance x interval of silence
    // Heartbeats sent per interval (docs/cluster.md, "Failure detection"):
    // a peer dies only after redundancy x tolerance frames in a row are lost.
    uint32_t redundancy = 3;
    ClusterMode mode = ClusterMode::unicast;
    std::vector<IpAddr> vips;             // for snapshot_input()
    std::vector<PortRule> rules;          // validated (empty = NLB default rule), any order
    // This host's per-rule load weight (0..100) and handling priority (0 =
    // none), indexed like `rules`; empty = taken from `rules` (equal -> 50).
    std::vector<uint8_t> weights;
    std::vector<uint8_t> priorities;
    HostState initial_state = HostState::started;
    // A cold host listens this long for peers with maps before building its
    // own from nothing (0 = 2 x interval).
    uint64_t listen_ns = 0;
    uint32_t chunk_buckets = 512;         // owners per MapChunk frame
};

// What nlbctl query shows (NLB's states).
enum class ClusterState : uint8_t {
    stopped,
    suspended,
    converging,
    converged,
    converged_default,  // converged and this host is the default host
    draining,
};
std::string_view name_of(ClusterState s) noexcept;
std::string_view name_of(HostState s) noexcept;
std::string_view name_of(RuleState s) noexcept;

enum class MismatchKind : uint8_t {
    rules_fingerprint,  // peer's port rules differ from ours (see rule_differences)
    duplicate_id,       // another process (other boot id) claims this host's id
    duplicate_peer,     // two boot ids heard for one peer id within the dead interval
    bucket_count,       // peer uses another bucket count
    duplicate_priority, // two members give a single-mode rule the same handling priority
};
std::string_view name_of(MismatchKind k) noexcept;

struct Mismatch {
    MismatchKind kind;
    HostId host = kNoHost;
    std::string text;  // operator-readable, names the host and both values
};

struct PeerStatus {
    HostId id = kNoHost;
    HostState state = HostState::stopped;
    bool alive = false;      // heard within tolerance x interval
    bool member = false;     // counted in this host's view
    bool excluded = false;   // mismatch or duplicate: never a member
    uint64_t boot_id = 0;
    uint64_t last_seen_age_ns = 0;
    uint64_t epoch = 0;
    uint64_t view = 0;
    uint64_t map_digest = 0;
    bool same_map = false;   // same view, epoch and digest as this host
    uint32_t held_foreign = 0;
    uint16_t health_down = 0;  // its rules whose health check is down
    uint64_t heard = 0;        // bit h-1: it heard host h within its last interval
    bool vouched = false;      // silent for the dead interval, kept alive by another's `heard`
};

// One rule key (VIP, ports, protocol) that live members hold in different
// versions (or not at all). `active` marks the version in force (the
// universe's); hosts holding another take nothing new for it.
struct RuleVersion {
    std::string content;      // "mode multiple, affinity single, timeout 0 s" or "absent"
    std::vector<HostId> hosts;
    bool active = false;
};
struct RuleDifference {
    std::string rule;         // rule_name(): "10.0.0.10:443/tcp"
    std::vector<RuleVersion> versions;
};

struct RuleOwnership {
    uint16_t rule = 0;        // config index
    std::string name;         // rule_name()
    bool active = true;       // this host's version is in force cluster-wide
    FilterMode mode = FilterMode::multiple;
    RuleState state = RuleState::enabled;  // this host's
    uint32_t owned = 0;       // buckets this host owns (multiple mode)
    uint32_t dirty = 0;       // of those, dirty
    HostId single_owner = kNoHost;  // single mode
};

struct MembershipStatus {
    ClusterState state = ClusterState::stopped;
    HostState host_state = HostState::stopped;
    bool converged = false;
    bool has_maps = false;
    bool link_up = true;      // wire link as last reported by set_link()
    bool rejoining = false;   // link went down: owned buckets dirty until reconverged
    uint64_t link_changes = 0;
    std::vector<std::string> notices;  // operator-readable conditions (e.g. "wire link down")
    uint64_t epoch = 0;
    uint64_t base_epoch = 0;
    uint64_t view = 0;
    uint64_t map_digest = 0;
    HostId self = kNoHost;
    HostId default_host = kNoHost;
    std::vector<HostId> members;  // ascending
    uint64_t heard = 0;           // bit h-1: this host heard host h within the last interval
    std::vector<PeerStatus> peers;  // every host heard, ascending id
    std::vector<Mismatch> mismatches;
    std::vector<RuleDifference> rule_differences;  // empty when every member agrees
    std::vector<RuleOwnership> rules;             // this host's rules, config order
    uint32_t map_classes = 0;
    uint32_t dirty_buckets = 0;     // (class, bucket) pairs owned by self and dirty
    uint32_t held_foreign = 0;      // as advertised (kHeldUnknown = not counted yet)
    uint64_t epoch_changes = 0;
    uint64_t map_adoptions = 0;     // map sets adopted from the authority's chunks
    uint64_t chunks_sent = 0;
    uint64_t rule_frames_sent = 0;  // RuleList frames (rolling rule changes)
};

class Membership {
public:
    Membership(MembershipConfig cfg, uint64_t now_ns);

    // Reload (docs/reload.md): new rules (any order), weights, priorities,
    // VIPs, heartbeat interval and tolerance. Keeps peers, maps, dirty marks
    // and the per-rule operator states of rules whose key (VIP, ports,
    // protocol) is still there. self, cluster_id, boot_id, buckets and mode
    // must be unchanged (the caller refuses a reload that changes them).
    void reconfigure(MembershipConfig next, uint64_t now_ns);
    uint64_t rules_fingerprint() const noexcept { return fingerprint_; }
    // Per-rule states by rule_name(), for the state file.
    std::vector<std::pair<std::string, RuleState>> rule_states_by_name() const;

    // Operator commands. started -> joins; stopped/suspended -> leaves at once
    // (accepts nothing); draining -> leaves the map, keeps serving its
    // connections, becomes stopped by itself once held_foreign == 0.
    void set_state(HostState s, uint64_t now_ns);
    HostState state() const noexcept { return state_; }
    // Per-rule (config index): draining = weight 0 / no priority with dirty
    // hand-over; disabled = this host drops all of the rule's traffic at once.
    void set_rule_state(size_t rule, RuleState s, uint64_t now_ns);
    RuleState rule_state(size_t rule) const;
    // Connections this host holds in buckets it does not own, counted against
    // the snapshot of `generation` (Snapshot::generation). Counts against an
    // older generation are ignored (advertised as kHeldUnknown).
    void set_held_foreign(uint32_t n, uint64_t generation, uint64_t now_ns);
    // Rules of this host whose health check is down, announced in every
    // heartbeat (the cluster-wide view shows it per host).
    void set_health_down(uint16_t n) noexcept { health_down_ = n; }
    // This host's wire link state (polled by the caller). Down: no deaths, no
    // map changes, owned buckets dirty; up: peers get tolerance x interval to
    // be heard again, buckets stay dirty until reconverged (see the model).
    void set_link(bool up, uint64_t now_ns);
    bool link_up() const noexcept { return link_up_; }
    // Progress of this host's receive path: every heartbeat that reached the
    // wire port before `horizon_ns` (same clock as now_ns) has been passed to
    // on_heartbeat. With several data-plane lcores the frames reach the
    // control thread through workers that can be starved while it runs; the
    // silence of a peer is then measured up to min(now, horizon) only, so a
    // stalled receive path is never taken for dead peers (at most
    // tolerance x interval of extra delay). 0 (the default) = up to now.
    void set_rx_horizon(uint64_t horizon_ns) noexcept { rx_horizon_ns_ = horizon_ns; }
    bool rejoining() const noexcept { return rejoining_; }

    // A decoded, authenticated, replay-checked heartbeat. Our own boot id is
    // ignored; another boot id with our host id is a duplicate id.
    void on_heartbeat(const Heartbeat& hb, uint64_t now_ns);
    // Deaths (silence for tolerance x interval), listen timeout, drain end.
    void tick(uint64_t now_ns);
    // Frames due now: a heartbeat every interval, followed by MapChunk frames
    // when this host is the authority and someone lags. Empty when not due.
    // Sequence numbers are max(last + 1, wall_ns) (wall_ns: CLOCK_REALTIME).
    std::vector<Heartbeat> frames_to_send(uint64_t now_ns, uint64_t wall_ns = 0);
    uint64_t next_send_ns() const noexcept { return next_send_ns_; }

    // True (once) when the snapshot must be rebuilt.
    bool take_changed() noexcept {
        const bool c = changed_;
        changed_ = false;
        return c;
    }
    // Input for core::compile_snapshot: precomputed class maps, rule->class,
    // dirty flags; a fresh generation each call.
    core::SnapshotInput snapshot_input();
    MembershipStatus status(uint64_t now_ns) const;

    // Another host's rules as this host knows them (its rule list and last
    // heartbeat), with the buckets it owns in this host's current maps: the
    // cluster-wide view (`nlbctl query --cluster`). Empty when its rule list
    // is not known. For self, the same from this host's own state.
    struct HostRule {
        std::string name;          // rule_name()
        FilterMode mode = FilterMode::multiple;
        RuleState state = RuleState::enabled;
        uint8_t weight = 0;        // multiple mode (as announced)
        uint8_t priority = 0;      // single mode (as announced)
        bool in_force = false;     // this version is the universe's
        uint32_t owned = 0;        // buckets (multiple) or 1 (single owner)
    };
    std::vector<HostRule> host_rules(HostId h) const;

    // A frame for an operator command (Heartbeat::command set by the
    // caller): this host's header with the next sequence number, no per-rule
    // arrays. Its sequence orders it with the heartbeats (one replay guard).
    Heartbeat command_frame(uint64_t wall_ns);

    // Small accessors (tests, integration).
    bool converged() const noexcept { return converged_; }
    bool has_maps() const noexcept { return has_current_; }
    uint64_t epoch() const noexcept { return cur_.epoch; }
    uint64_t map_digest() const noexcept { return cur_.digest; }
    uint64_t view() const noexcept { return cur_.view; }
    HostId self() const noexcept { return cfg_.self; }
    // Owner of (config rule, bucket) in the current maps (kNoHost when none).
    HostId owner(size_t rule, uint32_t bucket) const;
    bool dirty(size_t rule, uint32_t bucket) const;
    HostId single_owner(size_t rule) const;
    const std::vector<std::vector<HostId>>& class_maps() const noexcept { return cur_.maps; }
    const std::vector<uint16_t>& rule_class() const noexcept { return cur_.rule_class; }

private:
    void withhold_new_traffic(core::SnapshotInput& in) const;
    using Records = std::vector<RuleRecord>;
    struct MapSet;
    void append_universe_only_rules(core::SnapshotInput& in, const MapSet& m) const;
    struct Peer {
        bool heard = false;
        Heartbeat hb;             // last accepted (chunk stripped)
        // Per-rule view: the last heartbeat whose rule list was known, and
        // that list (null: never known; the peer is not a member).
        Heartbeat rules_hb;
        std::shared_ptr<const Records> rules;
        uint64_t last_seen_ns = 0;
        uint64_t first_seen_ns = 0;  // of this boot id
        uint64_t other_boot_id = 0;  // the boot id heard before the current one
        uint64_t other_last_ns = 0;  // when other_boot_id was last heard
        uint64_t dup_until_ns = 0;   // two processes claim this id: excluded until
        uint64_t differ_since_ns = 0;  // member whose maps differ from ours, since
        // Advertised our current maps since it was last dead or restarted
        // (so it is not a merging peer; see the model above).
        bool synced = false;
        // Heard since our wire link last came up (or went down): only such
        // heartbeats count while rejoining.
        bool fresh = false;
    };
    // Inputs of a map set: members, the universe of rules in force, and
    // effective weights per member and universe rule.
    struct Inputs {
        uint64_t view = 0;
        std::vector<HostId> members;                // ascending
        Records universe;                           // canonical order
        std::vector<std::vector<uint8_t>> weights;  // [member][rule], effective
        std::vector<std::vector<uint8_t>> prios;    // [member][rule], effective
        std::vector<std::vector<uint8_t>> part;     // [member][rule]: holds the version in force
        bool operator==(const Inputs&) const = default;
    };
    struct MapSet {
        uint64_t epoch = 0;
        uint64_t view = 0;
        uint64_t digest = 0;
        Inputs inputs;
        std::vector<uint16_t> rule_class;          // per universe rule; kNoClass if not multiple
        std::vector<std::vector<HostId>> maps;     // per class (+ echo last)
        std::vector<HostId> single;                // per universe rule: single-mode owner
    };
    struct Reassembly {
        HostId from = kNoHost;
        uint64_t boot_id = 0;
        uint64_t epoch = 0;
        uint64_t digest = 0;
        uint64_t view = 0;
        uint16_t classes = 0;
        std::vector<std::vector<HostId>> maps;
        std::vector<uint32_t> filled;
    };

    struct RuleView {  // one member's per-rule arrays and the list they index
        const Records* records = nullptr;
        const std::vector<uint8_t>* weights = nullptr;
        const std::vector<uint8_t>* prios = nullptr;
        const std::vector<RuleState>* states = nullptr;
    };
    RuleView rule_view(HostId h) const;
    std::shared_ptr<const Records> known_list(uint64_t fingerprint) const;
    void remember_list(uint64_t fingerprint, std::shared_ptr<const Records> list);
    void refresh_peer_rules(HostId h);
    void take_rule_list(const Heartbeat& hb, uint64_t now_ns);
    void set_rules(std::vector<PortRule> configured);
    static size_t find_record(const Records& sorted, const RuleRecord& r);
    // Configured rule -> its index in cur_'s universe (SIZE_MAX: not in force, no maps).
    size_t current_index(size_t rule) const;
    bool rule_frames_due(uint64_t now_ns) const;
    bool dynamic_peers_heard() const;
    bool alive(HostId h, uint64_t now_ns) const;
    uint64_t liveness_clock(uint64_t now_ns) const;
    bool vouched(HostId h, uint64_t t) const;
    bool may_hold(HostId h, uint64_t now_ns) const;
    uint64_t heard_bits(uint64_t now_ns) const;
    bool stale(HostId h) const;  // rejoining and not heard since link-up
    void mark_rejoining();
    bool excluded(HostId h, uint64_t now_ns) const;
    bool is_member(HostId h, uint64_t now_ns) const;
    uint64_t member_view(uint64_t now_ns) const;
    Inputs current_inputs(uint64_t now_ns) const;
    Inputs inputs_for_view(uint64_t view) const;
    void classify(MapSet& m) const;
    uint64_t digest_of(const MapSet& m) const;
    MapSet compute(Inputs in) const;
    void recompute(uint64_t now_ns);
    void install(MapSet next, bool adopted, uint64_t now_ns);
    void check_converged(uint64_t now_ns);
    void update_dirty(uint64_t now_ns);
    HostId authority(uint64_t now_ns) const;
    bool merging(HostId h, uint64_t now_ns) const;
    void mark_merging(uint64_t now_ns);
    void note_synced(HostId h);
    void take_chunk(const Heartbeat& hb, uint64_t now_ns);
    bool peers_have_maps(uint64_t now_ns) const;
    uint8_t own_weight(size_t rule) const;
    uint8_t own_priority(size_t rule) const;
    Heartbeat base_heartbeat(uint64_t wall_ns, uint64_t now_ns = 0);

    MembershipConfig cfg_;
    // This host's rules in canonical order (cfg_.rules or the NLB default).
    std::vector<PortRule> rules_;
    std::shared_ptr<const Records> records_;  // rule_record(rules_[k]), ascending
    std::vector<uint32_t> config_index_;      // canonical k -> index in cfg_.rules
    std::vector<uint32_t> canon_of_;          // index in cfg_.rules -> canonical k
    uint64_t fingerprint_ = 0;
    HostState state_ = HostState::started;
    std::vector<RuleState> rule_states_;      // canonical order
    // Rule lists known by fingerprint (ours, earlier ours, learned), bounded.
    struct KnownList {
        uint64_t fingerprint = 0;
        std::shared_ptr<const Records> records;
        uint64_t use = 0;
    };
    std::vector<KnownList> known_;
    uint64_t known_use_ = 0;
    struct ListRx {
        uint64_t boot_id = 0;
        uint64_t fingerprint = 0;
        uint16_t total = 0;
        Records records;
        std::vector<uint8_t> have;
        size_t filled = 0;
    };
    ListRx list_rx_[kMaxHosts + 1];
    uint64_t last_rule_frames_ns_ = 0;
    bool rule_frames_sent_once_ = false;
    uint64_t rule_frames_sent_ = 0;
    uint64_t start_ns_ = 0;

    Peer peers_[kMaxHosts + 1];
    // Another process with our id (duplicate): boot id and when last heard.
    uint64_t dup_self_boot_ = 0;
    uint64_t dup_self_seen_ns_ = 0;
    bool dup_self_heard_ = false;

    bool has_base_ = false;
    MapSet base_;
    bool has_current_ = false;
    MapSet cur_;
    // dirty_from_[class][bucket]: previous owner still holding connections, or
    // kNoHost; kAnyHost: previous owner unknown (maps adopted without history).
    std::vector<std::vector<HostId>> dirty_from_;
    std::vector<HostId> single_dirty_from_;  // per universe rule of cur_
    // Withheld until converged (published as unowned): buckets of a rule
    // version new to the universe, and buckets this host gained after its own
    // reload (settling_), so that a SYN is never answered by two hosts while
    // the peers learn the change. [universe rule of cur_][bucket] (empty row:
    // none) / per universe rule (single mode).
    std::vector<std::vector<uint8_t>> withhold_;
    std::vector<uint8_t> single_withhold_;
    bool settling_ = false;
    // Rule versions that entered the universe while peers could hold
    // connections of their traffic (under another version or rule): every
    // bucket of theirs this host owns, wherever it moves, is dirty from
    // kAnyHost until no peer holds foreign connections (update_dirty).
    Records fresh_records_;
    bool converged_ = false;
    uint16_t health_down_ = 0;
    bool inputs_dirty_ = true;  // some member's weights/state may have changed
    bool has_dirty_ = false;    // some dirty_from_ entry is set
    Reassembly rx_;
    bool link_up_ = true;
    uint64_t link_down_ns_ = 0;   // liveness clock frozen here while the link is down
    uint64_t rx_horizon_ns_ = 0;  // set_rx_horizon(); 0 = none
    bool rejoining_ = false;
    uint64_t link_changes_ = 0;

    uint32_t held_foreign_ = kHeldUnknown;
    uint64_t generation_ = 0;         // of the last snapshot_input()
    uint64_t maps_generation_ = 0;    // first snapshot generation with the current ownership
    bool ownership_changed_ = true;   // since the last snapshot_input()
    uint64_t last_sequence_ = 0;
    uint64_t next_send_ns_ = 0;
    uint64_t last_chunks_ns_ = 0;
    bool chunks_sent_once_ = false;
    uint64_t cur_since_ns_ = 0;       // when cur_ last changed
    bool changed_ = true;

    uint64_t epoch_changes_ = 0;
    uint64_t map_adoptions_ = 0;
    uint64_t chunks_sent_ = 0;
};

}  // namespace nlbd::cluster
