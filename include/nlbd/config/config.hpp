#pragma once
// Configuration: a cluster file (cluster, host, port rules, ports, data-plane
// policy) and a NIC profile (tuning for one NIC kind), both TOML (SPEC §7).
// Control plane: throws ConfigError, whose message always names the file, the
// line, the key and what is allowed:
//   "cluster.toml:14: port_rule[2].ports: '80-70' is not a range lo-hi with lo <= hi; allowed: ..."
// Key paths are dotted TOML paths; array indices are 1-based, as an operator
// counts ("port_rule[1]" is the first [[port_rule]], "cluster.vips[1]" the
// first VIP). Line 0 means the problem has no line (missing file, missing
// section). The formal format is "<file>:<line>: <key>: <what>; allowed: <...>".

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nlbd/core/rules.hpp"
#include "nlbd/log/log.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::config {

class ConfigError : public std::runtime_error {
public:
    ConfigError(std::string file, unsigned line, std::string key, const std::string& what);
    const std::string& file() const noexcept { return file_; }
    unsigned line() const noexcept { return line_; }
    const std::string& key() const noexcept { return key_; }

private:
    std::string file_;
    unsigned line_;
    std::string key_;
};

enum class InitialState : uint8_t { started, stopped, suspended };
enum class IdlePolicy : uint8_t { poll, adaptive };

struct ClusterConfig {
    std::string name;
    std::vector<IpAddr> vips;
    ClusterMode mode = ClusterMode::unicast;
    uint32_t buckets = kDefaultBuckets;
    std::vector<HostId> static_members;       // empty = dynamic (heartbeats)
    uint32_t heartbeat_interval_ms = 1000;     // 10..10000
    uint32_t heartbeat_tolerance = 5;          // 2..100
    uint32_t heartbeat_redundancy = 3;         // 1..10 heartbeats per interval
    uint16_t heartbeat_ethertype = 0x88B5;
    std::string secret_file;                   // empty = unauthenticated (warned); load_config
                                               // resolves it against the cluster file's dir
                                               // and checks that it exists
    // Secret rotation by reload (docs/reload.md): for this long after a new
    // secret is loaded the host still signs with the old one, and for twice
    // as long it accepts both. Every host must be reloaded within it.
    uint32_t secret_grace_s = 300;             // 1..86400
    std::string nic_profile;                   // optional include, relative to the cluster file
                                               // (as written; the resolved path is nic.file)
};

struct HostConfig {
    HostId id = kNoHost;
    std::optional<IpAddr> dedicated_ip;
    InitialState initial_state = InitialState::started;
    // Host state file (docs/state-file.md): operator state (stopped,
    // suspended, drained/disabled rules) kept across restarts. Empty = not
    // persisted. Resolved against the cluster file's directory.
    std::string state_file;
};

struct PortConfig {
    std::string device;   // PCI address or vdev string ("net_pcap0,rx_pcap=...")
    unsigned line = 0;
};

struct DataplaneConfig {
    IdlePolicy idle_policy = IdlePolicy::poll;
    uint32_t frag_table_size = 4096;    // datagrams per worker
    uint32_t frag_timeout_ms = 2000;
    uint32_t frag_max_held = 16;
    // Connection persistence (SPEC §5): per-worker TCP connection table.
    uint32_t conn_table_size = 262144;          // connections per worker, 1024..16777216
    uint32_t tcp_syn_timeout_s = 30;            // half-open connection, 1..3600
    uint32_t tcp_established_timeout_s = 7440;  // idle established connection, 10..86400
    uint32_t tcp_fin_timeout_s = 10;            // client FIN seen (closing), 1..3600
};

// How received wire frames reach the workers (docs/multicore.md).
//   rss:         each worker runs to completion on its own wire RX queues
//                (the NIC spreads flows by RSS; af_packet: kernel fanout hash);
//                needs rx_queues >= workers, extra queues are shared
//                round-robin among the workers;
//   distributor: one extra RX lcore reads the single wire queue (rx_queues = 1)
//                and spreads frames to the workers over rte_rings of
//                kDistributorRingSize by a flow hash that follows rss_fields
//                (L3 only unless "tcp"/"udp" are listed; fragments always L3)
//                (core/dispatch.hpp);
//   auto:        rss when the port reports RSS offloads and at least `workers`
//                RX queues, else distributor (one worker: always rss).
// TX: one TX queue per worker when the device has them, else the workers hand
// frames to worker 0 through rings.
enum class DispatchMode : uint8_t { auto_, rss, distributor };
inline constexpr unsigned kMaxWorkers = 64;
// Slots of each distributor -> worker rte_ring (distributor mode): the
// mempool check of validate(NicProfile) counts them as held mbufs.
inline constexpr unsigned kDistributorRingSize = 1024;

struct NicProfile {
    std::string file;
    std::string name;                  // e.g. "intel-ice"
    uint16_t workers = 1;              // [nic] workers: worker lcores, 1..kMaxWorkers
    DispatchMode dispatch = DispatchMode::auto_;  // [nic] dispatch: "auto" | "rss" | "distributor"
    uint16_t rx_queues = 1;
    uint16_t tx_queues = 1;
    uint16_t rx_descriptors = 1024;
    uint16_t tx_descriptors = 1024;
    uint16_t burst = 32;
    uint32_t mempool_size = 8191;       // mbufs per port (2^n - 1 is optimal)
    uint32_t mempool_cache = 256;
    uint16_t mbuf_data_room = 2048 + 128;  // RTE_MBUF_DEFAULT_BUF_SIZE
    bool rx_checksum_offload = false;
    bool tx_checksum_offload = false;
    bool promiscuous = true;           // the wire port must see the cluster MAC
    std::string rss_key;               // hex, empty = driver default
    std::vector<std::string> rss_fields;  // "ipv4", "ipv6", "tcp", "udp"
    std::vector<std::string> eal_args;  // appended to EAL arguments

    std::map<std::string, unsigned> lines;  // key path -> line, as in Config::lines
};

// Health check of one [[port_rule]]: declared with the port rule
// (core/rules.hpp), its keys in kRuleFields (core/rule_schema.hpp).
using nlbd::HealthCheck;
using nlbd::HealthKind;

// [telemetry] (SPEC §9, docs/telemetry.md). prometheus_listen absent = no
// /metrics endpoint; dpdk_telemetry = false adds --no-telemetry to the EAL.
struct TelemetryConfig {
    bool prometheus = false;            // prometheus_listen was set
    std::string prometheus_listen;      // as written: "127.0.0.1:9101", "[::1]:9101"
    IpAddr prometheus_address;          // parsed host part
    uint16_t prometheus_port = 0;       // parsed port, 1..65535
    bool dpdk_telemetry = true;
};

// [control] remote_* keys (SPEC §9, docs/remote.md): nlbd's remote control
// over mutual TLS. remote_listen empty = no remote control (the UNIX socket
// is always there). When set, remote_cert, remote_key, remote_ca and
// remote_allow are required; paths are resolved against the cluster file's
// directory and must exist. Read at start only (reload does not move it).
struct ControlConfig {
    std::string remote_listen;   // "127.0.0.1:8443", "[::1]:8443", ":8443" (any address)
    std::string remote_cert;     // server certificate chain (PEM)
    std::string remote_key;      // its private key (PEM)
    std::string remote_ca;       // CA of the client certificates (PEM)
    // Client certificate subject CN -> "read" | "admin". The array form
    // remote_allow = ["CN=ops1", "ops2"] gives "admin" to each.
    std::map<std::string, std::string> remote_allow;
};

// [announce] (SPEC §11, docs/scale-out.md): this host announces the cluster's
// VIPs over BGP through a routing daemon (BIRD 2) while it is started,
// converged and healthy for them. nlbd writes `include_file` (a BIRD
// fragment: protocol static nlbd_announce + filter nlbd_export) and runs
// `birdc -s control_socket configure`. Absent section = no announcement.
// IPv4 VIPs only (the fragment has an ipv4 channel).
enum class AnnounceDaemon : uint8_t { bird };
struct AnnounceConfig {
    bool enabled = false;                 // the section is present
    AnnounceDaemon daemon = AnnounceDaemon::bird;
    std::string include_file;             // resolved against the cluster file's directory
    std::string control_socket = "/run/bird/bird.ctl";
    std::string birdc = "/usr/sbin/birdc";
    IpAddr next_hop;                      // one of cluster.vips (the default host answers its ARP)
    std::vector<IpAddr> vips;             // announced VIPs: each in cluster.vips, never next_hop
    uint32_t withdraw_delay_ms = 3000;    // 0..600000: drainstop of the last host waits this long
    uint32_t command_timeout_ms = 5000;   // 100..60000: birdc is killed after it
    uint32_t retry_interval_ms = 2000;    // 100..600000: a failed apply is retried after it
    // A host that announces keeps announcing through a re-convergence (a
    // host joins or leaves) for this long, so that membership changes do not
    // flap the route; converging longer (a mismatch) withdraws. 0..600000.
    uint32_t converging_grace_ms = 5000;
};

struct Config {
    std::string file;
    ClusterConfig cluster;
    HostConfig host;
    std::vector<PortRule> rules;        // empty in file => {default_port_rule()}
    std::vector<HealthCheck> health;    // empty, or aligned with rules (kind none = no check)
    PortConfig wire;
    PortConfig local;
    DataplaneConfig dataplane;
    TelemetryConfig telemetry;
    // [log] level (docs/logging.md): messages below it are not written; live.
    log::Level log_level = log::Level::info;
    ControlConfig control;
    AnnounceConfig announce;
    NicProfile nic;

    // Line of every key and section that the file set, by key path
    // ("cluster.static_members", "port_rule[2].vip", "port_rule[2]"), so that
    // validate() can name lines. Empty for a Config built in code.
    std::map<std::string, unsigned> lines;
};

// Loads and validates a cluster file and its NIC profile (nic_file overrides
// [cluster] nic_profile). Throws ConfigError on the first problem.
Config load_config(const std::string& cluster_file, const std::optional<std::string>& nic_file);
NicProfile load_nic_profile(const std::string& file);

// Cross-field checks (overlaps, duplicate priorities, membership, ...).
// load_config calls it; exposed for tests. Also re-checks the ranges of every
// typed field, so a Config built in code gets the same guarantees.
void validate(const Config& cfg);

// Range and consistency checks of a NIC profile (load_nic_profile calls it):
// workers 1..kMaxWorkers; dispatch = rss needs rx_queues >= workers;
// dispatch = distributor needs rx_queues = 1; mempool_size covers the rings,
// the per-lcore caches and the distributor rings (see nic_profile.cpp).
void validate(const NicProfile& nic);

// "auto", "rss", "distributor": the spelling of the [nic] dispatch key.
const char* dispatch_name(DispatchMode mode);
// "none", "tcp", "tls", "http", "https": the spelling of health_check.
std::string_view name_of(HealthKind k) noexcept;
// "started", "stopped", "suspended": the spelling of [host] initial_state.
const char* initial_state_name(InitialState s);

}  // namespace nlbd::config
