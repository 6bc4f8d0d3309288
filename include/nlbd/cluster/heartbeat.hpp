#pragma once
// Heartbeat frames (SPEC §4): the project's own versioned L2 format, default
// EtherType 0x88B5 (IEEE local experimental). Documented field by field in
// docs/heartbeat.md. Control plane: may allocate; never throws on hostile
// input (decode returns a reason). encode_heartbeat throws
// std::invalid_argument on a Heartbeat this format cannot carry.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nlbd/core/rule_schema.hpp"
#include "nlbd/core/rules.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::cluster {

// Version 2: rule-list frames (kFlagRules); the cluster identity covers the
// name, the mode and the cluster MAC's VIP only (the other VIPs change live).
inline constexpr uint8_t kHeartbeatVersion = 2;
inline constexpr uint16_t kDefaultHeartbeatEthertype = 0x88B5;

enum class HostState : uint8_t { stopped = 0, started = 1, draining = 2, suspended = 3 };
enum class RuleState : uint8_t { enabled = 0, draining = 1, disabled = 2 };

// ---- Wire layout (docs/heartbeat.md has the field table) -------------------
inline constexpr size_t kEthHeaderLen = 14;           // dst, src, EtherType
inline constexpr size_t kHeartbeatHeaderLen = 88;     // fixed header, "NLBh" .. heard
inline constexpr size_t kHeartbeatMinHeaderLen = 80;  // what senders before `heard` wrote
inline constexpr size_t kChunkHeaderLen = 20;         // map chunk before its owners
inline constexpr size_t kHeartbeatMacLen = 32;        // HMAC-SHA256
inline constexpr size_t kMaxHeartbeatFrame = 1514;    // untagged, without FCS
inline constexpr size_t kMaxHeartbeatPayload = kMaxHeartbeatFrame - kEthHeaderLen;
inline constexpr uint8_t kFlagMac = 0x01;             // HMAC trailer present
inline constexpr uint8_t kFlagChunk = 0x02;           // map chunk present
inline constexpr uint8_t kFlagRules = 0x04;           // rule-list section present
inline constexpr size_t kRulesHeaderLen = 16;         // rule-list section before its records
inline constexpr uint8_t kFlagCommand = 0x08;         // operator-command section present
inline constexpr size_t kCommandHeaderLen = 12;       // command section before its strings
inline constexpr uint8_t kPriorityTag = 0x80;         // per-rule byte holds a priority

// Per-rule bytes: one load byte per rule + 2-bit states, 4 per byte.
constexpr size_t heartbeat_rule_bytes(size_t rules) noexcept { return rules + (rules + 3) / 4; }

// Whole frame size (untagged) for `rules` rules and an optional chunk.
constexpr size_t heartbeat_frame_size(size_t rules, bool chunk, size_t chunk_owners,
                                      bool mac) noexcept {
    return kEthHeaderLen + kHeartbeatHeaderLen + heartbeat_rule_bytes(rules) +
           (chunk ? kChunkHeaderLen + chunk_owners : 0) + (mac ? kHeartbeatMacLen : 0);
}

// Rule records one rule-list frame carries (it has no per-rule arrays).
inline constexpr size_t kMaxRuleRecordsPerFrame =
    (kMaxHeartbeatPayload - kHeartbeatHeaderLen - kRulesHeaderLen - kHeartbeatMacLen) / kRuleRecordLen;
static_assert(kMaxRuleRecordsPerFrame >= 32);

// Most bucket owners one chunk may carry next to `rules` rules so that the
// frame fits kMaxHeartbeatFrame even with the HMAC (0 when no chunk fits).
constexpr size_t max_chunk_owners(size_t rules) noexcept {
    const size_t used = heartbeat_frame_size(rules, true, 0, true);
    return used >= kMaxHeartbeatFrame ? 0 : kMaxHeartbeatFrame - used;
}

static_assert(heartbeat_frame_size(kMaxRules, false, 0, true) <= kMaxHeartbeatFrame,
              "1024 rules must fit one untagged 1514-byte frame with the HMAC");
static_assert(max_chunk_owners(kMaxRules) >= 64, "a chunk must fit next to 1024 rules");
static_assert(max_chunk_owners(0) <= 0xffff, "chunk owner count is a u16");

// One slice of the sender's current bucket maps (sent by the default host so
// that a joining host learns the map the cluster agreed on).
struct MapChunk {
    uint64_t epoch = 0;
    uint16_t map_class = 0;   // index of the map (one per distinct weight vector)
    uint16_t map_classes = 0; // how many maps the sender has
    uint32_t offset = 0;      // first bucket in this chunk
    std::vector<HostId> owners;

    friend bool operator==(const MapChunk&, const MapChunk&) = default;
};

// One slice of the sender's port rules (its canonical records, in canonical
// order), sent while a live peer advertises another rules fingerprint: the
// peers learn which rules the sender applies, rule by rule, so that rules
// every host agrees on keep converging during a rolling change
// (docs/cluster.md, "Rolling rule changes"). Carried by frames with no
// per-rule arrays; `fingerprint` must equal rules_fingerprint(all records).
struct RuleList {
    uint64_t fingerprint = 0;
    uint16_t offset = 0;      // index of records[0] in the sender's list
    uint16_t total = 0;       // rules in the sender's whole list
    std::vector<RuleRecord> records;

    friend bool operator==(const RuleList&, const RuleList&) = default;
};

// An operator command sent to another host, or its answer (docs/cluster.md,
// "Cluster-wide control"): `nlbctl host 2 drainstop` on host 1 becomes a
// request frame from host 1, authenticated with the heartbeat secret and
// under the same replay guard as its heartbeats; host 2 runs the command as
// if it came from its own control socket and answers with a result frame.
// Carried by frames with no per-rule arrays, no chunk and no rule list.
inline constexpr HostId kAllHosts = 0xff;         // target: every host that hears it
inline constexpr size_t kMaxCommandVerb = 16;
inline constexpr size_t kMaxCommandArgs = 2;
inline constexpr size_t kMaxCommandArg = 64;
inline constexpr size_t kMaxCommandText = 600;
struct OperatorCommand {
    uint32_t request = 0;           // the issuer's request number
    HostId target = kNoHost;        // request: a host id or kAllHosts; result: the issuer
    bool result = false;            // false: a request; true: the answer to `request`
    bool ok = false;                // result: the command was applied
    std::string verb;               // request: registry command name
    std::vector<std::string> args;  // request: its arguments
    std::string text;               // request: who asked on the issuer; result: message or error

    friend bool operator==(const OperatorCommand&, const OperatorCommand&) = default;
};

// Per-rule arrays are indexed in canonical rule order (canonical_rule_order),
// so that hosts listing the same rules in a different order agree.
//
// Wire economy: a rule carries ONE load byte: its handling priority when
// priorities[i] != 0 (single-host rule), else its load weight. decode returns
// the other value as 0. (Two bytes per rule would not fit 1024 rules in one
// frame; a rule never uses both.)
struct Heartbeat {
    uint64_t cluster_id = 0;        // identity: hash of cluster name + VIPs + mode
    HostId host = kNoHost;
    HostState state = HostState::stopped;
    uint64_t boot_id = 0;           // random per process start
    uint64_t sequence = 0;          // strictly increasing across restarts (time based)
    uint64_t epoch = 0;             // sender's bucket-map epoch
    uint64_t view = 0;              // bit h-1 set: sender counts host h as a live member
    uint64_t rules_fingerprint = 0; // of the port rules (not of the weights)
    uint64_t map_digest = 0;        // of the sender's current bucket maps
    uint32_t buckets = 0;
    uint32_t held_foreign = 0;      // connections held in buckets the sender does not own
    uint16_t health_down = 0;       // the sender's rules whose health check is down (was reserved: 0)
    // Bit h-1 set: the sender heard host h within the last heartbeat interval
    // (indirect confirmation, docs/cluster.md "Failure detection"); 0 from
    // senders that wrote the 80-byte header.
    uint64_t heard = 0;
    std::vector<uint8_t> weights;      // per rule (0..100; multiple mode)
    std::vector<uint8_t> priorities;   // per rule (1..64; single mode; 0 = none)
    std::vector<RuleState> rule_states;
    std::optional<MapChunk> chunk;
    std::optional<RuleList> rule_list;  // a rule-list frame (no per-rule arrays)
    std::optional<OperatorCommand> command;  // a command frame (no per-rule arrays)

    friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};

#define NLBD_HEARTBEAT_ERRORS(X)                                          \
    X(none, "accepted")                                                   \
    X(truncated, "shorter than its header or its stated length")          \
    X(bad_magic, "not an nlbd heartbeat")                                 \
    X(bad_version, "unsupported heartbeat version")                       \
    X(foreign_cluster, "heartbeat of another cluster")                    \
    X(bad_length, "inconsistent lengths or counts")                       \
    X(bad_field, "field value out of range (host id, state, weight...)")  \
    X(missing_mac, "no HMAC but this cluster requires one")               \
    X(unexpected_mac, "HMAC present but this host has no secret")         \
    X(bad_mac, "HMAC does not verify (forged or wrong secret)")           \
    X(replayed, "sequence number not newer than one already seen")        \
    X(own_frame, "our own heartbeat looped back")

enum class HeartbeatError : uint8_t {
#define NLBD_X(n, d) n,
    NLBD_HEARTBEAT_ERRORS(NLBD_X)
#undef NLBD_X
    count_
};
std::string_view name_of(HeartbeatError e) noexcept;
std::string_view description_of(HeartbeatError e) noexcept;

// HMAC-SHA256 key (OpenSSL 3 EVP_MAC). Empty = unauthenticated.
struct HmacKey {
    std::vector<uint8_t> bytes;
    bool empty() const noexcept { return bytes.empty(); }
};
inline constexpr size_t kMinSecretLen = 16;
inline constexpr size_t kMaxSecretLen = 4096;
// Reads a secret file (raw bytes, one trailing "\n" or "\r\n" stripped;
// 16..4096 bytes). Throws std::runtime_error naming the file on failure.
HmacKey load_secret(const std::string& path);

// Stable cluster identity; equal on every host. SHA-256 over the name, the
// mode and the VIP that gives the cluster MAC (the first IPv4 VIP; none for
// an IPv6-only cluster), first 8 bytes big-endian. `mode` is the
// ClusterMode value. The other VIPs are not part of it: they change by
// reload, host by host, without splitting the cluster.
uint64_t cluster_identity(const std::string& name, std::span<const IpAddr> vips, uint8_t mode);

// Fingerprint of the port rules' content (VIP, ports, protocol, filter mode,
// affinity, affinity timeout), NOT of load weights, equal_weight or handling
// priorities; independent of rule order.
uint64_t rules_fingerprint(std::span<const PortRule> rules);
uint64_t rules_fingerprint(std::span<const RuleRecord> records);

// The order in which per-rule arrays travel: out[k] = index into `rules` of
// the k-th rule in canonical (content-sorted, ties by index) order.
std::vector<uint32_t> canonical_rule_order(std::span<const PortRule> rules);

// Digest of bucket maps (one per map class, in class order): covers the
// number of maps, each map's size and every owner. Equal maps, equal digest.
uint64_t map_digest(std::span<const std::vector<HostId>> maps);

// Builds a complete Ethernet frame (no VLAN tag). With a key, appends the
// HMAC over every byte from the Ethernet header to the end of the payload.
// Throws std::invalid_argument when hb cannot be encoded (host not 1..64,
// more than kMaxRules rules, per-rule arrays of different sizes, weight >
// 100, priority > 64, chunk larger than max_chunk_owners or outside buckets).
std::vector<uint8_t> encode_heartbeat(const Heartbeat& hb, const MacAddr& dst, const MacAddr& src,
                                      uint16_t ethertype, const HmacKey& key);

// Checks everything but replay (see ReplayGuard). `frame` is the whole frame
// as received (one 802.1Q or 802.1ad tag is allowed; it is not covered by the
// HMAC). Never reads outside `frame`. `out` is meaningful only on `none`.
HeartbeatError decode_heartbeat(std::span<const uint8_t> frame, uint16_t ethertype,
                                uint64_t cluster_id, const HmacKey& key, Heartbeat& out);

// Rejects heartbeats whose sequence is not newer than the last one accepted
// from the same (host, boot_id); a new boot_id must carry a sequence newer
// than what was last seen from that host minus `window` (so captured frames
// of an old boot cannot be replayed).
//
// Two boot ids per host are tracked at once, so two processes claiming the
// same host id (duplicate id) are BOTH accepted, each stream strictly
// increasing: the membership layer sees two boot ids and reports the
// duplicate. A third boot id evicts the slot with the older sequence.
// Call accept() only for frames decode_heartbeat accepted (with a secret, a
// forged frame must not advance the state).
class ReplayGuard {
public:
    explicit ReplayGuard(uint64_t window) : window_(window) {}
    bool accept(HostId host, uint64_t boot_id, uint64_t sequence);
    // Newest sequence accepted from `host` (any boot id); 0 = none yet.
    uint64_t newest(HostId host) const noexcept;

private:
    struct Seen {
        uint64_t boot_id[2] = {0, 0};
        uint64_t last[2] = {0, 0};
        uint64_t newest = 0;
        bool used[2] = {false, false};
    };
    uint64_t window_;
    Seen seen_[kMaxHosts + 1];
};

// The whole receive path in one call: decode, drop our own looped-back frames
// (host == self_host and boot_id == self_boot_id: own_frame), then the replay
// guard (replayed). A frame with our host id but another boot id is accepted
// (a duplicate host id the membership layer must report).
struct ReceiveContext {
    uint16_t ethertype = kDefaultHeartbeatEthertype;
    uint64_t cluster_id = 0;
    const HmacKey* key = nullptr;  // nullptr or empty: unauthenticated
    HostId self_host = kNoHost;
    uint64_t self_boot_id = 0;
};
HeartbeatError receive_heartbeat(std::span<const uint8_t> frame, const ReceiveContext& ctx,
                                 ReplayGuard& guard, Heartbeat& out);

}  // namespace nlbd::cluster
