// Configuration loading and validation (SPEC §7). Every rejected case checks
// that the error names the file, the exact line and the key, and says what is
// allowed. Fixtures are written to a fresh temp directory by each test.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>

#include <unistd.h>

#include "nlbd/config/config.hpp"

#include "temp_dir.hpp"

namespace fs = std::filesystem;
using nlbd::config::ConfigError;
using nlbd::config::load_config;
using nlbd::config::load_nic_profile;

namespace {

using nlbd::test::TempDir;

// 1-based line of the first line of text that contains marker.
unsigned line_of(const std::string& text, const std::string& marker) {
    const auto pos = text.find(marker);
    EXPECT_NE(pos, std::string::npos) << "fixture lacks marker " << marker;
    if (pos == std::string::npos) return 0;
    unsigned line = 1;
    for (size_t i = 0; i < pos; ++i) line += text[i] == '\n';
    return line;
}

// Loads text as a cluster file and returns the error it must raise.
ConfigError error_of(const std::function<void()>& load) {
    try {
        load();
    } catch (const ConfigError& e) {
        return e;
    }
    ADD_FAILURE() << "no ConfigError was thrown";
    return ConfigError("", 0, "", "");
}

// Asserts file, line, key, message format and an "allowed" part.
void expect_error(const ConfigError& e, const std::string& file, unsigned line, const std::string& key,
                  const std::string& fragment = "") {
    EXPECT_EQ(e.file(), file);
    EXPECT_EQ(e.line(), line) << e.what();
    EXPECT_EQ(e.key(), key) << e.what();
    const std::string prefix = file + ":" + std::to_string(line) + ": " + key + ": ";
    EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("; allowed: "), std::string::npos) << e.what();
    if (!fragment.empty()) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

const std::string kBase = R"([cluster]
name = "mail.ehlo.dk"
vips = ["10.0.0.10", "2001:db8::10"]

[host]
id = 1
)";

// Writes kBase + extra as cluster.toml, expects load_config to fail on the
// line holding marker with the given key.
void expect_cluster_error(const std::string& extra, const std::string& marker, const std::string& key,
                          const std::string& fragment = "", const std::string& base = kBase) {
    TempDir dir;
    const std::string text = base + extra;
    const std::string file = dir.write("cluster.toml", text);
    const ConfigError e = error_of([&] { load_config(file, std::nullopt); });
    expect_error(e, file, line_of(text, marker), key, fragment);
}

void expect_nic_error(const std::string& text, const std::string& marker, const std::string& key,
                      const std::string& fragment = "") {
    TempDir dir;
    const std::string file = dir.write("nic.toml", text);
    const ConfigError e = error_of([&] { load_nic_profile(file); });
    expect_error(e, file, line_of(text, marker), key, fragment);
}

nlbd::config::Config load_text(const std::string& text, const std::string& name = "cluster.toml") {
    TempDir dir;
    return load_config(dir.write(name, text), std::nullopt);
}

}  // namespace

// ---------------------------------------------------------------- good files

TEST(ConfigLoad, MinimalFileGetsDocumentedDefaults) {
    const auto cfg = load_text(kBase);
    EXPECT_EQ(cfg.cluster.name, "mail.ehlo.dk");
    ASSERT_EQ(cfg.cluster.vips.size(), 2u);
    EXPECT_EQ(cfg.cluster.vips[0], *nlbd::IpAddr::parse("10.0.0.10"));
    EXPECT_EQ(cfg.cluster.vips[1], *nlbd::IpAddr::parse("2001:db8::10"));
    EXPECT_EQ(cfg.cluster.mode, nlbd::ClusterMode::unicast);
    EXPECT_EQ(cfg.cluster.buckets, nlbd::kDefaultBuckets);
    EXPECT_TRUE(cfg.cluster.static_members.empty());
    EXPECT_EQ(cfg.cluster.heartbeat_interval_ms, 1000u);
    EXPECT_EQ(cfg.cluster.heartbeat_tolerance, 5u);
    EXPECT_EQ(cfg.cluster.heartbeat_redundancy, 3u);
    EXPECT_EQ(cfg.cluster.heartbeat_ethertype, 0x88B5);
    EXPECT_TRUE(cfg.cluster.secret_file.empty());
    EXPECT_EQ(cfg.host.id, 1);
    EXPECT_FALSE(cfg.host.dedicated_ip.has_value());
    EXPECT_EQ(cfg.host.initial_state, nlbd::config::InitialState::started);
    EXPECT_EQ(cfg.dataplane.idle_policy, nlbd::config::IdlePolicy::poll);
    EXPECT_EQ(cfg.dataplane.frag_table_size, 4096u);
    EXPECT_TRUE(cfg.wire.device.empty());
    EXPECT_EQ(cfg.nic.rx_descriptors, 1024);
    EXPECT_EQ(cfg.nic.burst, 32);
}

TEST(ConfigLoad, NoPortRuleGetsNlbDefaultRule) {
    const auto cfg = load_text(kBase);
    ASSERT_EQ(cfg.rules.size(), 1u);
    const nlbd::PortRule& r = cfg.rules[0];
    EXPECT_FALSE(r.vip.has_value());
    EXPECT_EQ(r.port_lo, 0);
    EXPECT_EQ(r.port_hi, 65535);
    EXPECT_EQ(r.protocol, nlbd::Protocol::both);
    EXPECT_EQ(r.mode, nlbd::FilterMode::multiple);
    EXPECT_EQ(r.affinity, nlbd::Affinity::single);
    EXPECT_TRUE(r.equal_weight);
}

TEST(ConfigLoad, EveryKeyIsParsedIntoTypedFields) {
    TempDir dir;
    fs::permissions(dir.write("secret.key", "s3cret\n"), fs::perms::owner_read | fs::perms::owner_write);
    dir.write("nic/x.toml", "[nic]\nname = \"x\"\nburst = 64\n");
    const std::string text = R"([cluster]
name = "c"
vips = ["10.0.0.10", "10.0.0.11"]
mode = "igmp"
buckets = 60
static_members = [1, 2, 3]
heartbeat_interval_ms = 100
heartbeat_tolerance = 3
heartbeat_redundancy = 4
heartbeat_ethertype = 0x88B6
secret_file = "secret.key"
nic_profile = "nic/x.toml"

[host]
id = 2
dedicated_ip = "10.0.0.2"
initial_state = "suspended"

[dataplane]
idle_policy = "adaptive"
frag_table_size = 1024
frag_timeout_ms = 500
frag_max_held = 8

[ports.wire]
device = "net_pcap0,rx_pcap=in.pcap"
[ports.local]
device = "net_null0"

[[port_rule]]
vip = "10.0.0.10"
ports = "1024-65535"
protocol = "udp"
mode = "multiple"
affinity = "network"
load_weight = 30
affinity_timeout_s = 600
static_weights = [10, 30, 60]

[[port_rule]]
vip = "all"
ports = 25
protocol = "tcp"
mode = "disabled"

[[port_rule]]
ports = "443"
protocol = "tcp"
mode = "single"
handling_priority = 2
static_priorities = [1, 2, 3]
)";
    const std::string file = dir.write("cluster.toml", text);
    const auto cfg = load_config(file, std::nullopt);
    EXPECT_EQ(cfg.cluster.mode, nlbd::ClusterMode::igmp);
    EXPECT_EQ(cfg.cluster.buckets, 60u);
    EXPECT_EQ(cfg.cluster.static_members, (std::vector<nlbd::HostId>{1, 2, 3}));
    EXPECT_EQ(cfg.cluster.heartbeat_interval_ms, 100u);
    EXPECT_EQ(cfg.cluster.heartbeat_tolerance, 3u);
    EXPECT_EQ(cfg.cluster.heartbeat_redundancy, 4u);
    EXPECT_EQ(cfg.cluster.heartbeat_ethertype, 0x88B6);
    EXPECT_EQ(fs::path(cfg.cluster.secret_file), dir.path() / "secret.key");
    EXPECT_EQ(cfg.nic.name, "x");
    EXPECT_EQ(cfg.nic.burst, 64);
    EXPECT_EQ(fs::path(cfg.nic.file), dir.path() / "nic/x.toml");
    EXPECT_EQ(cfg.host.id, 2);
    EXPECT_EQ(cfg.host.dedicated_ip, nlbd::IpAddr::parse("10.0.0.2"));
    EXPECT_EQ(cfg.host.initial_state, nlbd::config::InitialState::suspended);
    EXPECT_EQ(cfg.dataplane.idle_policy, nlbd::config::IdlePolicy::adaptive);
    EXPECT_EQ(cfg.dataplane.frag_table_size, 1024u);
    EXPECT_EQ(cfg.dataplane.frag_timeout_ms, 500u);
    EXPECT_EQ(cfg.dataplane.frag_max_held, 8u);
    EXPECT_EQ(cfg.wire.device, "net_pcap0,rx_pcap=in.pcap");
    EXPECT_EQ(cfg.wire.line, line_of(text, "device = \"net_pcap0"));
    EXPECT_EQ(cfg.local.device, "net_null0");
    ASSERT_EQ(cfg.rules.size(), 3u);
    const auto& a = cfg.rules[0];
    EXPECT_EQ(a.line, line_of(text, "[[port_rule]]"));
    EXPECT_EQ(a.vip, nlbd::IpAddr::parse("10.0.0.10"));
    EXPECT_EQ(a.port_lo, 1024);
    EXPECT_EQ(a.port_hi, 65535);
    EXPECT_EQ(a.protocol, nlbd::Protocol::udp);
    EXPECT_EQ(a.affinity, nlbd::Affinity::network);
    EXPECT_FALSE(a.equal_weight);
    EXPECT_EQ(a.load_weight, 30);
    EXPECT_EQ(a.affinity_timeout_s, 600u);
    EXPECT_EQ(a.static_weights, (std::vector<uint8_t>{10, 30, 60}));
    const auto& b = cfg.rules[1];
    EXPECT_FALSE(b.vip.has_value());
    EXPECT_EQ(b.port_lo, 25);
    EXPECT_EQ(b.port_hi, 25);
    EXPECT_EQ(b.mode, nlbd::FilterMode::disabled);
    const auto& c = cfg.rules[2];
    EXPECT_EQ(c.mode, nlbd::FilterMode::single);
    EXPECT_EQ(c.handling_priority, 2);
    EXPECT_EQ(c.static_priorities, (std::vector<uint8_t>{1, 2, 3}));
    EXPECT_EQ(c.line, line_of(text, "ports = \"443\"") - 1);
}

TEST(ConfigLoad, NicArgumentOverridesClusterNicProfile) {
    TempDir dir;
    const std::string nic = dir.write("other.toml", "[nic]\nname = \"other\"\n");
    // The cluster file names a profile that does not exist: --nic wins, so it
    // is never opened.
    const std::string text = R"([cluster]
name = "c"
vips = ["10.0.0.10"]
nic_profile = "missing.toml"
[host]
id = 1
)";
    const std::string file = dir.write("cluster.toml", text);
    const auto cfg = load_config(file, nic);
    EXPECT_EQ(cfg.nic.name, "other");
    EXPECT_EQ(cfg.nic.file, nic);
}

TEST(ConfigLoad, SpecificVipRuleMayShareAllRulePorts) {
    const auto cfg = load_text(kBase + R"(
[[port_rule]]
vip = "all"
ports = "0-65535"
[[port_rule]]
vip = "10.0.0.10"
ports = "443"
[[port_rule]]
vip = "2001:db8::10"
ports = "443"
protocol = "udp"
mode = "disabled"
)");
    EXPECT_EQ(cfg.rules.size(), 3u);
}

TEST(ConfigLoad, TcpAndUdpRulesMayShareAPortRange) {
    const auto cfg = load_text(kBase + R"(
[[port_rule]]
ports = "53"
protocol = "tcp"
[[port_rule]]
ports = "53"
protocol = "udp"
)");
    EXPECT_EQ(cfg.rules.size(), 2u);
}

TEST(ConfigLoad, KeyLinesAreRecordedForValidate) {
    const std::string text = kBase + "[[port_rule]]\nports = \"80\"\n";
    const auto cfg = load_text(text);
    EXPECT_EQ(cfg.lines.at("host.id"), line_of(text, "id = 1"));
    EXPECT_EQ(cfg.lines.at("port_rule[1].ports"), line_of(text, "ports = \"80\""));
    EXPECT_EQ(cfg.lines.at("cluster.vips[2]"), line_of(text, "vips ="));
}

// ------------------------------------------------------ error message format

TEST(ConfigError, MessageHasFileLineKeyWhatAndAllowed) {
    TempDir dir;
    const std::string text = kBase + "[[port_rule]]\nports = \"80-70\"\n";
    const std::string file = dir.write("cluster.toml", text);
    const ConfigError e = error_of([&] { load_config(file, std::nullopt); });
    ASSERT_EQ(line_of(text, "80-70"), 8u);
    EXPECT_EQ(std::string(e.what()),
              file + ":8: port_rule[1].ports: '80-70' is not a range lo-hi with lo <= hi (0..65535); "
                     "allowed: a port \"443\", a range \"1024-65535\" (lo <= hi) or an integer, ports 0..65535");
}

TEST(ConfigError, MissingFileHasLineZero) {
    TempDir dir;
    const std::string file = (dir.path() / "nope.toml").string();
    const ConfigError e = error_of([&] { load_config(file, std::nullopt); });
    expect_error(e, file, 0, "file", "cannot open");
}

TEST(ConfigError, TomlSyntaxErrorNamesItsLine) {
    expect_cluster_error("[dataplane]\nidle_policy = \"poll\n", "idle_policy", "toml", "syntax error");
}

// ------------------------------------------------------------- unknown keys

TEST(ConfigReject, UnknownTopLevelSection) {
    expect_cluster_error("[clustr]\nname = \"x\"\n", "[clustr]", "clustr", "cluster, host, dataplane, port_rule, ports");
}

TEST(ConfigReject, UnknownKeyInCluster) {
    const std::string base = R"([cluster]
name = "x"
vips = ["10.0.0.10"]
heartbeat_intervall_ms = 100
[host]
id = 1
)";
    expect_cluster_error("", "heartbeat_intervall_ms", "cluster.heartbeat_intervall_ms",
                         "heartbeat_interval_ms", base);
}

TEST(ConfigReject, UnknownKeyInHost) {
    expect_cluster_error("priority = 1\n", "priority = 1", "host.priority", "id, dedicated_ip, initial_state");
}

TEST(ConfigReject, UnknownKeyInDataplane) {
    expect_cluster_error("[dataplane]\nidle = \"poll\"\n", "idle =", "dataplane.idle", "idle_policy");
}

TEST(ConfigReject, UnknownKeyInPortRule) {
    expect_cluster_error("[[port_rule]]\nports = \"80\"\nweight = 5\n", "weight = 5", "port_rule[1].weight",
                         "load_weight");
}

TEST(ConfigReject, UnknownKeyInPorts) {
    expect_cluster_error("[ports.uplink]\ndevice = \"x\"\n", "[ports.uplink]", "ports.uplink", "wire, local");
}

TEST(ConfigReject, UnknownKeyInPortsWire) {
    expect_cluster_error("[ports.wire]\ndevice = \"x\"\nqueues = 4\n", "queues = 4", "ports.wire.queues", "device");
}

TEST(ConfigReject, WireDeviceIsRequired) {
    expect_cluster_error("[ports.wire]\n", "[ports.wire]", "ports.wire.device", "PCI address");
}

// ------------------------------------------------------------------ cluster

TEST(ConfigReject, MissingClusterName) {
    const std::string base = "\n[cluster]\nvips = [\"10.0.0.10\"]\n[host]\nid = 1\n";
    expect_cluster_error("", "[cluster]", "cluster.name", "required", base);
}

TEST(ConfigReject, MissingClusterSectionHasLineZero) {
    TempDir dir;
    const std::string file = dir.write("cluster.toml", "[host]\nid = 1\n");
    expect_error(error_of([&] { load_config(file, std::nullopt); }), file, 0, "cluster");
}

TEST(ConfigReject, MissingHostId) {
    const std::string base = "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\n[host]\ninitial_state = \"started\"\n";
    expect_cluster_error("", "[host]", "host.id", "1..64", base);
}

TEST(ConfigReject, HostIdOutOfRange) {
    const std::string base = "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\n[host]\nid = 65\n";
    expect_cluster_error("", "id = 65", "host.id", "1..64", base);
}

TEST(ConfigReject, BadVipAddressNamesItsIndex) {
    const std::string base = "[cluster]\nname = \"x\"\nvips = [\n  \"10.0.0.10\",\n  \"10.0.0.300\",\n]\n[host]\nid = 1\n";
    expect_cluster_error("", "10.0.0.300", "cluster.vips[2]", "'10.0.0.300' is not an IP address", base);
}

TEST(ConfigReject, DuplicateVip) {
    const std::string base = "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\",\n \"10.0.0.10\"]\n[host]\nid = 1\n";
    expect_cluster_error("", " \"10.0.0.10\"]", "cluster.vips[2]", "duplicates cluster.vips[1]", base);
}

TEST(ConfigReject, EmptyVips) {
    const std::string base = "[cluster]\nname = \"x\"\nvips = []\n[host]\nid = 1\n";
    expect_cluster_error("", "vips = []", "cluster.vips", "non-empty", base);
}

TEST(ConfigReject, BadClusterMode) {
    const std::string base = "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nmode = \"broadcast\"\n[host]\nid = 1\n";
    expect_cluster_error("", "mode =", "cluster.mode", "unicast, multicast, igmp", base);
}

TEST(ConfigReject, IgmpModeWithoutIpv4Vip) {
    const std::string base = "[cluster]\nname = \"x\"\nvips = [\"2001:db8::1\"]\nmode = \"igmp\"\n[host]\nid = 1\n";
    expect_cluster_error("", "mode =", "cluster.mode", "IPv4", base);
}

TEST(ConfigReject, BucketsOutOfRange) {
    const std::string base = "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nbuckets = 0\n[host]\nid = 1\n";
    expect_cluster_error("", "buckets", "cluster.buckets", "1..65536", base);
}

TEST(ConfigReject, WrongTypeNamesExpectedType) {
    const std::string base = "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nbuckets = \"4096\"\n[host]\nid = 1\n";
    expect_cluster_error("", "buckets", "cluster.buckets", "expected an integer, got a string", base);
}

TEST(ConfigReject, HeartbeatIntervalBelowTenMs) {
    const std::string base =
        "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nheartbeat_interval_ms = 5\n[host]\nid = 1\n";
    expect_cluster_error("", "heartbeat_interval_ms", "cluster.heartbeat_interval_ms", "10..10000", base);
}

TEST(ConfigReject, HeartbeatRedundancyOutOfRange) {
    const std::string base =
        "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nheartbeat_redundancy = 0\n[host]\nid = 1\n";
    expect_cluster_error("", "heartbeat_redundancy", "cluster.heartbeat_redundancy", "1..10", base);
}

TEST(ConfigReject, NlbHeartbeatEthertype) {
    const std::string base =
        "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nheartbeat_ethertype = 0x886F\n[host]\nid = 1\n";
    expect_cluster_error("", "heartbeat_ethertype", "cluster.heartbeat_ethertype", "0x886F is Microsoft NLB", base);
}

TEST(ConfigReject, WellKnownEthertypes) {
    for (const char* et : {"0x0800", "0x86DD", "0x0806", "0x8100", "0x88A8"}) {
        const std::string base = std::string("[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nheartbeat_ethertype = ") +
                                 et + "\n[host]\nid = 1\n";
        expect_cluster_error("", "heartbeat_ethertype", "cluster.heartbeat_ethertype", et, base);
    }
}

TEST(ConfigReject, EthertypeBelow0x0600IsALength) {
    const std::string base =
        "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nheartbeat_ethertype = 0x05DC\n[host]\nid = 1\n";
    expect_cluster_error("", "heartbeat_ethertype", "cluster.heartbeat_ethertype", "is a length", base);
}

TEST(ConfigReject, StaticMembersWithoutSelf) {
    const std::string base =
        "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nstatic_members = [2, 3]\n[host]\nid = 1\n";
    expect_cluster_error("", "static_members", "cluster.static_members", "does not include this host's id 1", base);
}

TEST(ConfigReject, StaticMembersDuplicate) {
    const std::string base =
        "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nstatic_members = [1, 2, 2]\n[host]\nid = 1\n";
    expect_cluster_error("", "static_members", "cluster.static_members[3]", "listed twice", base);
}

TEST(ConfigReject, MissingSecretFile) {
    const std::string base =
        "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nsecret_file = \"nope.key\"\n[host]\nid = 1\n";
    expect_cluster_error("", "secret_file", "cluster.secret_file", "does not exist", base);
}

TEST(ConfigLoad, PrometheusBarePortListensOnLoopback) {
    const auto cfg = load_text(kBase + "\n[telemetry]\nprometheus_listen = \"9101\"\n");
    EXPECT_TRUE(cfg.telemetry.prometheus);
    EXPECT_EQ(cfg.telemetry.prometheus_listen, "127.0.0.1:9101");
    EXPECT_EQ(cfg.telemetry.prometheus_address, *nlbd::IpAddr::parse("127.0.0.1"));
    EXPECT_EQ(cfg.telemetry.prometheus_port, 9101);
    expect_cluster_error("\n[telemetry]\nprometheus_listen = \"99999\"\n", "prometheus_listen",
                         "telemetry.prometheus_listen", "not 1..65535");
}

TEST(ConfigReject, SecretFileReadableByGroupOrOthers) {
    for (const fs::perms extra : {fs::perms::group_read, fs::perms::others_read, fs::perms::others_write}) {
        TempDir dir;
        const std::string key = dir.write("secret.key", "0123456789abcdef0123\n");
        fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write | extra);
        const std::string text =
            "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nsecret_file = \"secret.key\"\n[host]\nid = 1\n";
        const std::string file = dir.write("cluster.toml", text);
        const ConfigError e = error_of([&] { load_config(file, std::nullopt); });
        expect_error(e, file, 4, "cluster.secret_file", "group or others may read it");
        EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos) << e.what();
    }
}

TEST(ConfigReject, MissingNicProfileNamesClusterFileLine) {
    const std::string base =
        "[cluster]\nname = \"x\"\nvips = [\"10.0.0.10\"]\nnic_profile = \"nic/none.toml\"\n[host]\nid = 1\n";
    expect_cluster_error("", "nic_profile", "cluster.nic_profile", "does not exist", base);
}

TEST(ConfigReject, BadDedicatedIp) {
    expect_cluster_error("dedicated_ip = \"host-1\"\n", "dedicated_ip", "host.dedicated_ip", "not an IP address");
}

TEST(ConfigReject, BadInitialState) {
    expect_cluster_error("initial_state = \"draining\"\n", "initial_state", "host.initial_state",
                         "started, stopped, suspended");
}

TEST(ConfigReject, DataplaneRanges) {
    expect_cluster_error("[dataplane]\nfrag_table_size = 8\n", "frag_table_size", "dataplane.frag_table_size", "16..1048576");
    expect_cluster_error("[dataplane]\nfrag_timeout_ms = 60001\n", "frag_timeout_ms", "dataplane.frag_timeout_ms", "10..60000");
    expect_cluster_error("[dataplane]\nfrag_max_held = 0\n", "frag_max_held", "dataplane.frag_max_held", "1..64");
    expect_cluster_error("[dataplane]\nidle_policy = \"sleep\"\n", "idle_policy", "dataplane.idle_policy", "poll, adaptive");
}

// --------------------------------------------------------------- port rules

TEST(ConfigReject, PortRuleVipNotInClusterVips) {
    expect_cluster_error("[[port_rule]]\nvip = \"10.0.0.99\"\nports = \"80\"\n", "10.0.0.99", "port_rule[1].vip",
                         "10.0.0.10, 2001:db8::10");
}

TEST(ConfigReject, PortRuleVipNotAnAddress) {
    expect_cluster_error("[[port_rule]]\nvip = \"any\"\n", "vip = \"any\"", "port_rule[1].vip", "\"all\"");
}

TEST(ConfigReject, ReversedPortRange) {
    expect_cluster_error("[[port_rule]]\nports = \"80\"\nprotocol = \"tcp\"\n[[port_rule]]\nports = \"80-70\"\n",
                         "80-70", "port_rule[2].ports", "'80-70' is not a range");
}

TEST(ConfigReject, PortAbove65535AsString) {
    expect_cluster_error("[[port_rule]]\nports = \"1024-65536\"\n", "65536", "port_rule[1].ports", "0..65535");
}

TEST(ConfigReject, PortAbove65535AsInteger) {
    expect_cluster_error("[[port_rule]]\nports = 70000\n", "70000", "port_rule[1].ports", "0..65535");
}

TEST(ConfigReject, PortGarbage) {
    expect_cluster_error("[[port_rule]]\nports = \"http\"\n", "http", "port_rule[1].ports", "'http'");
}

TEST(ConfigReject, OverlappingRulesNameBothLines) {
    const std::string extra = R"(
[[port_rule]]
vip = "10.0.0.10"
ports = "1000-2000"
protocol = "tcp"

[[port_rule]] # second
vip = "10.0.0.10"
ports = "2000-3000"
protocol = "both"
)";
    const std::string text = kBase + extra;
    const unsigned first = line_of(text, "[[port_rule]]");
    expect_cluster_error(extra, "# second", "port_rule[2]",
                         "overlaps port_rule[1] at line " + std::to_string(first));
}

TEST(ConfigReject, OverlappingAllRules) {
    const std::string extra = "[[port_rule]]\nports = \"0-100\"\n[[port_rule]] # b\nports = 100\nprotocol = \"udp\"\n";
    expect_cluster_error(extra, "# b", "port_rule[2]", "overlaps port_rule[1]");
}

TEST(ConfigReject, BadRuleMode) {
    expect_cluster_error("[[port_rule]]\nmode = \"round-robin\"\n", "round-robin", "port_rule[1].mode",
                         "multiple, single, disabled");
}

TEST(ConfigReject, BadProtocol) {
    expect_cluster_error("[[port_rule]]\nprotocol = \"sctp\"\n", "sctp", "port_rule[1].protocol", "tcp, udp, both");
}

TEST(ConfigReject, MissingHandlingPriorityInSingleMode) {
    expect_cluster_error("[[port_rule]]\nports = 443\nmode = \"single\"\n", "[[port_rule]]",
                         "port_rule[1].handling_priority", "required in single mode");
}

TEST(ConfigReject, HandlingPriorityOutOfRange) {
    expect_cluster_error("[[port_rule]]\nmode = \"single\"\nhandling_priority = 65\n", "handling_priority",
                         "port_rule[1].handling_priority", "1..64");
}

TEST(ConfigReject, AffinityOnSingleRule) {
    expect_cluster_error("[[port_rule]]\nmode = \"single\"\nhandling_priority = 1\naffinity = \"none\"\n",
                         "affinity", "port_rule[1].affinity", "only in mode = \"multiple\"");
}

TEST(ConfigReject, AffinityOnDisabledRule) {
    expect_cluster_error("[[port_rule]]\nmode = \"disabled\"\naffinity = \"single\"\n", "affinity",
                         "port_rule[1].affinity", "disabled mode rule");
}

TEST(ConfigReject, LoadWeightOnSingleRule) {
    expect_cluster_error("[[port_rule]]\nmode = \"single\"\nhandling_priority = 1\nload_weight = 50\n",
                         "load_weight", "port_rule[1].load_weight", "only in mode = \"multiple\"");
}

TEST(ConfigReject, HandlingPriorityOnMultipleRule) {
    expect_cluster_error("[[port_rule]]\nhandling_priority = 1\n", "handling_priority",
                         "port_rule[1].handling_priority", "only in mode = \"single\"");
}

TEST(ConfigReject, BadLoadWeight) {
    expect_cluster_error("[[port_rule]]\nload_weight = 101\n", "load_weight", "port_rule[1].load_weight",
                         "\"equal\" or an integer 0..100");
    expect_cluster_error("[[port_rule]]\nload_weight = \"half\"\n", "load_weight", "port_rule[1].load_weight",
                         "\"equal\"");
}

TEST(ConfigReject, AffinityTimeoutOutOfRange) {
    expect_cluster_error("[[port_rule]]\naffinity_timeout_s = 86401\n", "affinity_timeout_s",
                         "port_rule[1].affinity_timeout_s", "0..86400");
}

TEST(ConfigReject, PortRuleAsPlainTable) {
    expect_cluster_error("[port_rule]\nports = 80\n", "[port_rule]", "port_rule", "[[port_rule]]");
}

TEST(ConfigReject, MoreThanMaxRules) {
    std::string extra;
    for (unsigned i = 0; i <= nlbd::kMaxRules; ++i)
        extra += "[[port_rule]]" + std::string(i == nlbd::kMaxRules ? " # over" : "") + "\nports = " +
                 std::to_string(i) + "\n";
    expect_cluster_error(extra, "# over", "port_rule", "at most 1024");
}

const std::string kStatic = R"([cluster]
name = "x"
vips = ["10.0.0.10"]
static_members = [1, 2, 3]
[host]
id = 2
)";

TEST(ConfigReject, StaticWeightsLengthMismatch) {
    expect_cluster_error("[[port_rule]]\nload_weight = 20\nstatic_weights = [10, 20]\n", "static_weights",
                         "port_rule[1].static_weights", "has 2 entries, cluster.static_members has 3 (line 4)",
                         kStatic);
}

TEST(ConfigReject, StaticWeightsWithoutStaticMembers) {
    expect_cluster_error("[[port_rule]]\nload_weight = 20\nstatic_weights = [20]\n", "static_weights",
                         "port_rule[1].static_weights", "cluster.static_members");
}

TEST(ConfigReject, StaticWeightOutOfRange) {
    expect_cluster_error("[[port_rule]]\nload_weight = 20\nstatic_weights = [10, 20, 200]\n", "static_weights",
                         "port_rule[1].static_weights[3]", "0..100", kStatic);
}

TEST(ConfigReject, StaticWeightsSelfEntryDiffersFromLoadWeight) {
    expect_cluster_error("[[port_rule]]\nload_weight = 20\nstatic_weights = [10, 30, 60]\n", "static_weights",
                         "port_rule[1].static_weights[2]", "equal to its own load_weight", kStatic);
}

TEST(ConfigReject, StaticWeightsWithEqualLoadWeight) {
    expect_cluster_error("[[port_rule]]\nstatic_weights = [10, 30, 60]\n", "static_weights",
                         "port_rule[1].static_weights", "numeric load_weight", kStatic);
}

TEST(ConfigReject, DuplicateStaticPriorities) {
    expect_cluster_error("[[port_rule]]\nmode = \"single\"\nhandling_priority = 2\nstatic_priorities = [1, 2, 1]\n",
                         "static_priorities", "port_rule[1].static_priorities[3]",
                         "handling priority 1 is given to host 1 and host 3", kStatic);
}

TEST(ConfigReject, StaticPrioritiesSelfEntryDiffers) {
    expect_cluster_error("[[port_rule]]\nmode = \"single\"\nhandling_priority = 1\nstatic_priorities = [2, 3, 1]\n",
                         "static_priorities", "port_rule[1].static_priorities[2]",
                         "equal to its own handling_priority", kStatic);
}

TEST(ConfigReject, StaticPrioritiesOnMultipleRule) {
    expect_cluster_error("[[port_rule]]\nstatic_priorities = [1, 2, 3]\n", "static_priorities",
                         "port_rule[1].static_priorities", "only in mode = \"single\"", kStatic);
}

// ----------------------------------------------------------- validate() API

TEST(ConfigValidate, RejectsOverlapInConfigBuiltInCode) {
    nlbd::config::Config cfg;
    cfg.file = "code";
    cfg.cluster.name = "c";
    cfg.cluster.vips = {*nlbd::IpAddr::parse("10.0.0.1")};
    cfg.host.id = 1;
    nlbd::PortRule a;
    a.line = 3;
    nlbd::PortRule b;
    b.line = 7;
    b.port_lo = b.port_hi = 80;
    cfg.rules = {a};
    EXPECT_NO_THROW(nlbd::config::validate(cfg));
    cfg.rules.push_back(b);
    expect_error(error_of([&] { nlbd::config::validate(cfg); }), "code", 7, "port_rule[2]",
                 "overlaps port_rule[1] at line 3");
}

TEST(ConfigValidate, RejectsHostIdZero) {
    nlbd::config::Config cfg;
    cfg.cluster.name = "c";
    cfg.cluster.vips = {*nlbd::IpAddr::parse("10.0.0.1")};
    expect_error(error_of([&] { nlbd::config::validate(cfg); }), "", 0, "host.id", "1..64");
}

// -------------------------------------------------------------- NIC profile

TEST(NicProfileLoad, DefaultsAndNameFromFile) {
    TempDir dir;
    const std::string file = dir.write("my-nic.toml", "# empty profile\n");
    const auto nic = load_nic_profile(file);
    EXPECT_EQ(nic.name, "my-nic");
    EXPECT_EQ(nic.file, file);
    EXPECT_EQ(nic.rx_queues, 1);
    EXPECT_EQ(nic.mempool_size, 8191u);
}

TEST(NicProfileLoad, EveryKeyIsParsed) {
    TempDir dir;
    const std::string file = dir.write("n.toml", R"([nic]
name = "n"
rx_queues = 4
tx_queues = 4
rx_descriptors = 2048
tx_descriptors = 512
burst = 64
mempool_size = 32767
mempool_cache = 512
mbuf_data_room = 9344
rx_checksum_offload = true
tx_checksum_offload = true
promiscuous = false
rss_key = "6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a6d5a"
rss_fields = ["ipv4", "tcp"]
[eal]
args = ["--in-memory", "-l", "0-3"]
)");
    const auto nic = load_nic_profile(file);
    EXPECT_EQ(nic.rx_queues, 4);
    EXPECT_EQ(nic.tx_descriptors, 512);
    EXPECT_EQ(nic.burst, 64);
    EXPECT_EQ(nic.mempool_size, 32767u);
    EXPECT_EQ(nic.mempool_cache, 512u);
    EXPECT_EQ(nic.mbuf_data_room, 9344);
    EXPECT_TRUE(nic.rx_checksum_offload);
    EXPECT_TRUE(nic.tx_checksum_offload);
    EXPECT_FALSE(nic.promiscuous);
    EXPECT_EQ(nic.rss_key.size(), 80u);
    EXPECT_EQ(nic.rss_fields, (std::vector<std::string>{"ipv4", "tcp"}));
    EXPECT_EQ(nic.eal_args, (std::vector<std::string>{"--in-memory", "-l", "0-3"}));
}

TEST(NicProfileLoad, WorkersAndDispatchDefaultToOneAndAuto) {
    TempDir dir;
    const auto nic = load_nic_profile(dir.write("d.toml", "[nic]\nname = \"d\"\n"));
    EXPECT_EQ(nic.workers, 1);
    EXPECT_EQ(nic.dispatch, nlbd::config::DispatchMode::auto_);
}

TEST(NicProfileLoad, EveryDispatchModeIsAccepted) {
    using nlbd::config::DispatchMode;
    TempDir dir;
    const struct {
        const char* text;
        uint16_t workers;
        DispatchMode mode;
    } cases[] = {
        {"[nic]\nworkers = 4\ndispatch = \"auto\"\nmempool_size = 16383\n", 4, DispatchMode::auto_},
        // rss: more RX queues than workers is fine (shared round-robin).
        {"[nic]\nworkers = 2\nrx_queues = 4\ndispatch = \"rss\"\nmempool_size = 16383\n", 2, DispatchMode::rss},
        {"[nic]\nworkers = 4\nrx_queues = 4\ndispatch = \"rss\"\nmempool_size = 16383\n", 4, DispatchMode::rss},
        {"[nic]\nworkers = 3\ndispatch = \"distributor\"\nmempool_size = 16383\n", 3, DispatchMode::distributor},
        {"[nic]\nworkers = 1\ndispatch = \"distributor\"\n", 1, DispatchMode::distributor},
        {"[nic]\nworkers = 64\ndispatch = \"distributor\"\nmempool_size = 131071\n", 64,
         DispatchMode::distributor},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.text);
        nlbd::config::NicProfile nic;
        ASSERT_NO_THROW(nic = load_nic_profile(dir.write("m.toml", c.text)));
        EXPECT_EQ(nic.workers, c.workers);
        EXPECT_EQ(nic.dispatch, c.mode);
        EXPECT_STREQ(nlbd::config::dispatch_name(c.mode),
                     c.mode == DispatchMode::auto_ ? "auto" : c.mode == DispatchMode::rss ? "rss" : "distributor");
    }
}

TEST(NicProfileLoad, OneWorkerNeedsNoDistributorRingsInAuto) {
    // 2*1024 descriptors + 1*(256+32) cached = 2336 <= 2400: no rings counted.
    TempDir dir;
    EXPECT_NO_THROW(load_nic_profile(dir.write("o.toml", "[nic]\nworkers = 1\nmempool_size = 2400\n")));
}

TEST(NicProfileReject, WorkersOutOfRange) {
    expect_nic_error("[nic]\nworkers = 0\n", "workers", "nic.workers", "1..64");
    expect_nic_error("[nic]\nname = \"x\"\nworkers = 65\n", "workers", "nic.workers", "1..64");
}

TEST(NicProfileReject, WorkersWrongType) {
    expect_nic_error("[nic]\nworkers = \"4\"\n", "workers", "nic.workers", "1..64");
}

TEST(NicProfileReject, DispatchUnknownValue) {
    expect_nic_error("[nic]\ndispatch = \"rr\"\n", "dispatch", "nic.dispatch", "auto, rss, distributor");
}

TEST(NicProfileReject, DispatchWrongType) {
    expect_nic_error("[nic]\ndispatch = 1\n", "dispatch", "nic.dispatch", "auto, rss, distributor");
}

TEST(NicProfileReject, RssWithFewerRxQueuesThanWorkers) {
    expect_nic_error("[nic]\nworkers = 4\nrx_queues = 2\nmempool_size = 16383\ndispatch = \"rss\"\n",
                     "dispatch", "nic.dispatch", "rx_queues >= workers");
}

TEST(NicProfileReject, RssWithDefaultOneRxQueueAndSeveralWorkers) {
    expect_nic_error("[nic]\ndispatch = \"rss\"\nworkers = 2\n", "dispatch", "nic.dispatch", "rx_queues >= workers");
}

TEST(NicProfileReject, DistributorWithSeveralRxQueues) {
    expect_nic_error("[nic]\nworkers = 2\nrx_queues = 2\ndispatch = \"distributor\"\nmempool_size = 16383\n",
                     "rx_queues", "nic.rx_queues", "rx_queues = 1 with dispatch = \"distributor\"");
}

TEST(NicProfileReject, MempoolTooSmallForWorkerCaches) {
    // rss, 4 workers: 4*1024 + 1*1024 descriptors + 4*(256+32) cached = 6272 > 6000.
    expect_nic_error("[nic]\nworkers = 4\nrx_queues = 4\ndispatch = \"rss\"\nmempool_size = 6000\n",
                     "mempool_size", "nic.mempool_size", "workers*(mempool_cache+burst) = 6272");
}

TEST(NicProfileReject, MempoolTooSmallForDistributorRings) {
    // distributor, 4 workers: 2*1024 descriptors + 5*(256+32) cached + 4*1024 ring slots = 7584 > 7000;
    // the same pool is enough for rss on 4 queues (4*1024 + 1024 + 4*288 = 6272).
    expect_nic_error("[nic]\nworkers = 4\ndispatch = \"distributor\"\nmempool_size = 7000\n", "mempool_size",
                     "nic.mempool_size", "distributor ring slots = 7584");
    TempDir dir;
    EXPECT_NO_THROW(load_nic_profile(
        dir.write("r.toml", "[nic]\nworkers = 4\nrx_queues = 4\ndispatch = \"rss\"\nmempool_size = 7000\n")));
}

TEST(NicProfileReject, AutoWithSeveralWorkersCountsDistributorRings) {
    // auto may fall back to the distributor: the worst case is checked.
    expect_nic_error("[nic]\nworkers = 4\nrx_queues = 4\nmempool_size = 7000\n", "mempool_size",
                     "nic.mempool_size", "distributor ring slots");
}

TEST(NicProfileReject, WorkersValidatedForProfileBuiltInCode) {
    nlbd::config::NicProfile nic;
    nic.workers = 0;
    expect_error(error_of([&] { nlbd::config::validate(nic); }), "", 0, "nic.workers", "1..64");
    nic.workers = 3;
    nic.dispatch = nlbd::config::DispatchMode::rss;
    expect_error(error_of([&] { nlbd::config::validate(nic); }), "", 0, "nic.dispatch", "rx_queues >= workers");
}

TEST(NicProfileReject, UnknownKeyInNic) {
    expect_nic_error("[nic]\nname = \"x\"\nrx_ring = 512\n", "rx_ring", "nic.rx_ring", "rx_descriptors");
}

TEST(NicProfileReject, UnknownSection) {
    expect_nic_error("[nic]\n[dpdk]\nargs = []\n", "[dpdk]", "dpdk", "nic, eal");
}

TEST(NicProfileReject, UnknownKeyInEal) {
    expect_nic_error("[eal]\nlcores = \"0-3\"\n", "lcores", "eal.lcores", "args");
}

TEST(NicProfileReject, DescriptorsNotPowerOfTwo) {
    expect_nic_error("[nic]\nrx_descriptors = 1000\n", "rx_descriptors", "nic.rx_descriptors", "power of two 64..16384");
}

TEST(NicProfileReject, DescriptorsOutOfRange) {
    expect_nic_error("[nic]\ntx_descriptors = 32768\n", "tx_descriptors", "nic.tx_descriptors", "64..16384");
}

TEST(NicProfileReject, QueuesOutOfRange) {
    expect_nic_error("[nic]\nrx_queues = 0\n", "rx_queues", "nic.rx_queues", "1..128");
    expect_nic_error("[nic]\ntx_queues = 129\n", "tx_queues", "nic.tx_queues", "1..128");
}

TEST(NicProfileReject, BurstOutOfRange) {
    expect_nic_error("[nic]\nburst = 513\n", "burst", "nic.burst", "1..512");
}

TEST(NicProfileReject, MempoolCacheAboveSizeOverOnePointFive) {
    expect_nic_error("[nic]\nmempool_size = 600\nmempool_cache = 500\nrx_descriptors = 64\ntx_descriptors = 64\n",
                     "mempool_cache", "nic.mempool_cache", "mempool_size / 1.5");
}

TEST(NicProfileReject, MempoolTooSmallForRings) {
    expect_nic_error("[nic]\nrx_queues = 8\nrx_descriptors = 4096\nmempool_size = 8191\n", "mempool_size",
                     "nic.mempool_size", "at least");
}

TEST(NicProfileReject, RssKeyWrongLength) {
    expect_nic_error("[nic]\nrss_key = \"6d5a6d5a\"\n", "rss_key", "nic.rss_key", "40 bytes");
}

TEST(NicProfileReject, RssKeyNotHex) {
    expect_nic_error("[nic]\nrss_key = \"zz\"\n", "rss_key", "nic.rss_key", "not hexadecimal");
}

TEST(NicProfileReject, RssFieldUnknown) {
    expect_nic_error("[nic]\nrss_fields = [\"ipv4\",\n \"sctp\"]\n", "\"sctp\"", "nic.rss_fields[2]",
                     "ipv4, ipv6, tcp, udp");
}

TEST(NicProfileReject, WrongTypeForBoolean) {
    expect_nic_error("[nic]\npromiscuous = \"yes\"\n", "promiscuous", "nic.promiscuous", "true, false");
}

TEST(NicProfileReject, EalArgsMustBeStrings) {
    expect_nic_error("[eal]\nargs = [\"-l\", 3]\n", "args", "eal.args[2]", "expected a string");
}

TEST(NicProfileReject, SyntaxError) {
    expect_nic_error("[nic]\nburst = = 3\n", "burst", "toml", "syntax error");
}

TEST(NicProfileReject, ErrorFromIncludedProfileNamesTheProfile) {
    TempDir dir;
    const std::string nic = dir.write("bad.toml", "[nic]\n\nburst = 0\n");
    const std::string file = dir.write("cluster.toml", R"([cluster]
name = "c"
vips = ["10.0.0.10"]
nic_profile = "bad.toml"
[host]
id = 1
)");
    expect_error(error_of([&] { load_config(file, std::nullopt); }), nic, 3, "nic.burst", "1..512");
}

// ------------------------------------------------------- shipped files load

TEST(ShippedConfigs, EveryNicProfileLoads) {
    const fs::path dir = fs::path(NLBD_SOURCE_ROOT) / "configs" / "nic";
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() != ".toml") continue;
        SCOPED_TRACE(entry.path().string());
        nlbd::config::NicProfile nic;
        EXPECT_NO_THROW(nic = load_nic_profile(entry.path().string()));
        names.insert(entry.path().stem().string());
    }
    for (const char* expected : {"af_packet", "pcap", "memif", "tap", "ring", "null", "intel-ixgbe",
                                 "intel-i40e", "intel-ice", "mlx5"})
        EXPECT_EQ(names.count(expected), 1u) << "missing configs/nic/" << expected << ".toml";
}

TEST(ShippedConfigs, NicProfilesFollowTheDispatchPolicy) {
    // Hardware: one worker per RSS queue, run to completion. Virtual devices:
    // one worker, auto; their comments promise that 4 distributor workers fit
    // the shipped mempool (and, for af_packet, 3 rss workers on qpairs=3).
    using nlbd::config::DispatchMode;
    const fs::path dir = fs::path(NLBD_SOURCE_ROOT) / "configs" / "nic";
    for (const char* name : {"intel-ixgbe", "intel-i40e", "intel-ice", "mlx5"}) {
        SCOPED_TRACE(name);
        const auto nic = load_nic_profile((dir / (std::string(name) + ".toml")).string());
        EXPECT_EQ(nic.dispatch, DispatchMode::rss);
        EXPECT_EQ(nic.workers, nic.rx_queues);
        EXPECT_EQ(nic.workers, nic.tx_queues);
        EXPECT_FALSE(nic.rss_key.empty());
    }
    for (const char* name : {"af_packet", "pcap", "memif", "tap", "ring", "null"}) {
        SCOPED_TRACE(name);
        auto nic = load_nic_profile((dir / (std::string(name) + ".toml")).string());
        EXPECT_EQ(nic.dispatch, DispatchMode::auto_);
        EXPECT_EQ(nic.workers, 1);
        nic.workers = 4;
        nic.dispatch = DispatchMode::distributor;
        EXPECT_NO_THROW(nlbd::config::validate(nic));
        nic.workers = 5;
        EXPECT_THROW(nlbd::config::validate(nic), ConfigError);  // the comment's "up to 4"
    }
    auto af = load_nic_profile((dir / "af_packet.toml").string());
    af.workers = af.rx_queues = af.tx_queues = 3;
    af.dispatch = DispatchMode::rss;
    EXPECT_NO_THROW(nlbd::config::validate(af));
}

TEST(ShippedConfigs, ClusterExampleLoadsWithItsNicProfile) {
    const std::string file = std::string(NLBD_SOURCE_ROOT) + "/configs/cluster.example.toml";
    nlbd::config::Config cfg;
    ASSERT_NO_THROW(cfg = load_config(file, std::nullopt));
    EXPECT_FALSE(cfg.rules.empty());
    EXPECT_FALSE(cfg.nic.file.empty());
    EXPECT_FALSE(cfg.wire.device.empty());
}

// ------------------------------------------------ health checks (SPEC §9)

TEST(ConfigHealth, HealthKeysAreParsedWithDefaults) {
    const auto cfg = load_text(kBase + R"(
[[port_rule]]
vip = "10.0.0.10"
ports = "443"
protocol = "tcp"
health_check = "https"
health_path = "/owa/healthcheck.htm"
health_expect_status = [200, 204]
health_rise = 1

[[port_rule]]
ports = "25"
protocol = "tcp"
health_check = "tcp"

[[port_rule]]
ports = "80"
protocol = "tcp"
)");
    ASSERT_EQ(cfg.health.size(), 3u);
    const auto& h = cfg.health[0];
    EXPECT_EQ(h.kind, nlbd::config::HealthKind::https);
    EXPECT_EQ(h.port, 443);
    ASSERT_TRUE(h.address.has_value());
    EXPECT_EQ(h.address->to_string(), "10.0.0.10");
    EXPECT_EQ(h.path, "/owa/healthcheck.htm");
    EXPECT_EQ(h.expect_status, (std::vector<uint16_t>{200, 204}));
    EXPECT_EQ(h.name, "mail.ehlo.dk");
    EXPECT_EQ(h.sni, "mail.ehlo.dk");
    EXPECT_EQ(h.interval_ms, 1000u);
    EXPECT_EQ(h.timeout_ms, 500u);
    EXPECT_EQ(h.rise, 1u);
    EXPECT_EQ(h.fall, 3u);
    EXPECT_EQ(cfg.health[1].kind, nlbd::config::HealthKind::tcp);
    EXPECT_EQ(cfg.health[1].port, 25);
    EXPECT_FALSE(cfg.health[1].address.has_value());  // vip = "all": chosen by the checker
    EXPECT_EQ(cfg.health[2].kind, nlbd::config::HealthKind::none);
}

TEST(ConfigHealth, NoHealthKeysLeaveHealthEmpty) {
    const auto cfg = load_text(kBase + "\n[[port_rule]]\nports = \"80\"\n");
    EXPECT_TRUE(cfg.health.empty());
}

TEST(ConfigReject, UnknownHealthCheckKind) {
    expect_cluster_error("\n[[port_rule]]\nports = \"80\"\nhealth_check = \"icmp\"  # here\n", "# here",
                         "port_rule[1].health_check", "tcp, tls, http, https");
}

TEST(ConfigReject, HealthKeyWithoutHealthCheck) {
    expect_cluster_error("\n[[port_rule]]\nports = \"80\"\nhealth_interval_ms = 500  # here\n", "# here",
                         "port_rule[1].health_interval_ms", "without health_check");
}

TEST(ConfigReject, HealthPathOnTcpCheck) {
    expect_cluster_error("\n[[port_rule]]\nports = \"80\"\nhealth_check = \"tcp\"\nhealth_path = \"/\"  # here\n",
                         "# here", "port_rule[1].health_path", "only with health_check");
}

TEST(ConfigReject, HealthExpectStatusOutOfRange) {
    expect_cluster_error(
        "\n[[port_rule]]\nports = \"80\"\nhealth_check = \"http\"\nhealth_expect_status = [200, 700]  # here\n",
        "# here", "port_rule[1].health_expect_status[2]", "100..599");
}

TEST(ConfigReject, HealthTimeoutNotBelowInterval) {
    expect_cluster_error(
        "\n[[port_rule]]\nports = \"80\"\nhealth_check = \"tcp\"\nhealth_interval_ms = 500\n"
        "health_timeout_ms = 500  # here\n",
        "# here", "port_rule[1].health_timeout_ms", "health_timeout_ms < health_interval_ms");
}

TEST(ConfigReject, HealthCheckOnRuleStartingAtPortZeroNeedsHealthPort) {
    expect_cluster_error("\n[[port_rule]]\nhealth_check = \"tcp\"  # here\n", "# here",
                         "port_rule[1].health_check", "health_port");
}

TEST(ConfigReject, HealthCaFileMissing) {
    expect_cluster_error(
        "\n[[port_rule]]\nports = \"443\"\nhealth_check = \"tls\"\nhealth_ca = \"nope/ca.pem\"  # here\n",
        "# here", "port_rule[1].health_ca", "does not exist");
}

TEST(ConfigReject, HealthAddressNotAnAddress) {
    expect_cluster_error(
        "\n[[port_rule]]\nports = \"443\"\nhealth_check = \"tcp\"\nhealth_address = \"cas01\"  # here\n",
        "# here", "port_rule[1].health_address", "not an IP address");
}
