// VIP announcement over BGP (SPEC §11, docs/scale-out.md), the pure part:
// the gate (which VIPs this host announces), the last-started-host test of
// drainstop, the BIRD include file, and the [announce] config section
// (errors name file, line and key). No EAL, no BIRD.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "nlbd/cluster/announce.hpp"
#include "nlbd/config/config.hpp"
#include "nlbd/config/diff.hpp"

#include "temp_dir.hpp"

namespace fs = std::filesystem;
using nlbd::IpAddr;
using nlbd::cluster::AnnounceInput;
using nlbd::cluster::AnnounceRule;
using nlbd::cluster::announced_vips;
using nlbd::cluster::HostState;
using nlbd::cluster::last_started_host;
using nlbd::cluster::PeerStatus;
using nlbd::cluster::render_bird_include;

namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

AnnounceInput healthy() {
    AnnounceInput in;
    in.started = true;
    in.converged = true;
    return in;
}

AnnounceRule rule_for(const char* vip, bool serving) {
    AnnounceRule r;
    r.vip = ip(vip);
    r.serving = serving;
    return r;
}

AnnounceRule rule_all(bool serving) {
    AnnounceRule r;
    r.all_vips = true;
    r.serving = serving;
    return r;
}

const std::vector<IpAddr> kVips = {ip("10.99.0.10"), ip("10.99.0.11")};

}  // namespace

// ------------------------------------------------------------------ the gate

TEST(AnnounceGate, StartedConvergedServingHostAnnouncesEveryVip) {
    const std::vector<AnnounceRule> rules = {rule_all(true)};
    EXPECT_EQ(announced_vips(kVips, rules, healthy()), kVips);
}

TEST(AnnounceGate, HostNotStartedAnnouncesNothing) {
    const std::vector<AnnounceRule> rules = {rule_all(true)};
    AnnounceInput in = healthy();
    in.started = false;  // stopped, draining or suspended
    EXPECT_TRUE(announced_vips(kVips, rules, in).empty());
}

TEST(AnnounceGate, WithdrawFirstAnnouncesNothingWhileStillStarted) {
    const std::vector<AnnounceRule> rules = {rule_all(true)};
    AnnounceInput in = healthy();
    in.withdrawing = true;
    EXPECT_TRUE(announced_vips(kVips, rules, in).empty());
}

TEST(AnnounceGate, WireLinkDownWithdrawsAtOnceEvenWithinTheGrace) {
    const std::vector<AnnounceRule> rules = {rule_all(true)};
    AnnounceInput in = healthy();
    in.announcing = true;
    in.converging_grace_ms = 5000;
    in.link_up = false;
    EXPECT_TRUE(announced_vips(kVips, rules, in).empty());
}

TEST(AnnounceGate, NeverConvergedHostAnnouncesNothing) {
    const std::vector<AnnounceRule> rules = {rule_all(true)};
    AnnounceInput in = healthy();
    in.converged = false;
    in.announcing = false;
    in.converging_ms = 0;
    in.converging_grace_ms = 5000;
    EXPECT_TRUE(announced_vips(kVips, rules, in).empty());
}

TEST(AnnounceGate, ReconvergenceWithinGraceKeepsTheRouteLongerWithdraws) {
    const std::vector<AnnounceRule> rules = {rule_all(true)};
    AnnounceInput in = healthy();
    in.converged = false;
    in.announcing = true;
    in.converging_grace_ms = 5000;
    in.converging_ms = 5000;
    EXPECT_EQ(announced_vips(kVips, rules, in), kVips);
    in.converging_ms = 5001;
    EXPECT_TRUE(announced_vips(kVips, rules, in).empty());
}

TEST(AnnounceGate, VipWithAnUnhealthyRuleIsWithdrawnOthersStay) {
    const std::vector<AnnounceRule> rules = {rule_for("10.99.0.10", true), rule_for("10.99.0.10", false),
                                             rule_for("10.99.0.11", true)};
    EXPECT_EQ(announced_vips(kVips, rules, healthy()), std::vector<IpAddr>{ip("10.99.0.11")});
}

TEST(AnnounceGate, AllVipsRuleDownWithdrawsEveryVip) {
    const std::vector<AnnounceRule> rules = {rule_for("10.99.0.10", true), rule_all(false)};
    EXPECT_TRUE(announced_vips(kVips, rules, healthy()).empty());
}

TEST(AnnounceGate, VipWithoutAnyRuleIsNotAnnounced) {
    const std::vector<AnnounceRule> rules = {rule_for("10.99.0.10", true)};
    EXPECT_EQ(announced_vips(kVips, rules, healthy()), std::vector<IpAddr>{ip("10.99.0.10")});
}

// ------------------------------------------------------- last started host

TEST(AnnounceDrainstop, LastStartedHostWhenEveryOtherPeerIsStoppedDeadOrDraining) {
    std::vector<PeerStatus> peers(4);
    peers[0].id = 1, peers[0].alive = true, peers[0].state = HostState::started;  // self
    peers[1].id = 2, peers[1].alive = true, peers[1].state = HostState::stopped;
    peers[2].id = 3, peers[2].alive = false, peers[2].state = HostState::started;  // dead
    peers[3].id = 4, peers[3].alive = true, peers[3].state = HostState::draining;
    EXPECT_TRUE(last_started_host(peers, 1));
}

TEST(AnnounceDrainstop, NotLastWhileAnotherLivePeerIsStarted) {
    std::vector<PeerStatus> peers(2);
    peers[0].id = 1, peers[0].alive = true, peers[0].state = HostState::started;
    peers[1].id = 2, peers[1].alive = true, peers[1].state = HostState::started;
    EXPECT_FALSE(last_started_host(peers, 1));
    peers[1].excluded = true;  // mismatch: never a member, serves nothing of ours
    EXPECT_TRUE(last_started_host(peers, 1));
}

// ------------------------------------------------------------- include file

TEST(BirdInclude, AnnouncedVipsAreBlackholeRoutesWithTheNextHopInTheFilter) {
    const std::vector<IpAddr> vips = {ip("10.99.0.10"), ip("10.99.0.11")};
    const std::string f = render_bird_include(vips, ip("10.77.1.10"), "cluster a, host 1");
    EXPECT_NE(f.find("# Written by nlbd (cluster a, host 1)"), std::string::npos) << f;
    EXPECT_NE(f.find("protocol static nlbd_announce {\n    ipv4;\n"
                     "    route 10.99.0.10/32 blackhole;\n    route 10.99.0.11/32 blackhole;\n}\n"),
              std::string::npos)
        << f;
    EXPECT_NE(f.find("filter nlbd_export {\n    if proto = \"nlbd_announce\" then {\n"
                     "        bgp_next_hop = 10.77.1.10;\n        accept;\n    }\n    reject;\n}\n"),
              std::string::npos)
        << f;
}

TEST(BirdInclude, NothingAnnouncedIsAnEmptyProtocolAndTheSameFilter) {
    const std::string f = render_bird_include({}, ip("10.77.1.10"), "x");
    EXPECT_NE(f.find("protocol static nlbd_announce {\n    ipv4;\n}\n"), std::string::npos) << f;
    EXPECT_EQ(f.find("route "), std::string::npos) << f;
    EXPECT_NE(f.find("bgp_next_hop = 10.77.1.10;"), std::string::npos) << f;
}

// ------------------------------------------------------------------ config

namespace {

using nlbd::test::TempDir;

const std::string kBase = R"([cluster]
name = "a.example"
vips = ["10.99.0.10", "10.77.1.10", "10.99.0.11", "2001:db8::10"]

[host]
id = 1
)";

unsigned line_of(const std::string& text, const std::string& marker) {
    const auto pos = text.find(marker);
    EXPECT_NE(pos, std::string::npos) << marker;
    unsigned line = 1;
    for (size_t i = 0; i < pos && pos != std::string::npos; ++i) line += text[i] == '\n';
    return line;
}

// Loads kBase + extra; expects a ConfigError on marker's line for key.
void expect_announce_error(const std::string& extra, const std::string& marker, const std::string& key,
                           const std::string& fragment) {
    TempDir dir;
    const std::string text = kBase + extra;
    const std::string file = dir.write("cluster.toml", text);
    try {
        nlbd::config::load_config(file, std::nullopt);
        ADD_FAILURE() << "no error for " << extra;
    } catch (const nlbd::config::ConfigError& e) {
        EXPECT_EQ(e.file(), file);
        EXPECT_EQ(e.line(), line_of(text, marker)) << e.what();
        EXPECT_EQ(e.key(), key) << e.what();
        EXPECT_NE(std::string(e.what()).find("; allowed: "), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(AnnounceConfig, DefaultsAnnounceEveryVipButTheNextHop) {
    TempDir dir;
    const std::string text = kBase + "\n[announce]\ninclude_file = \"bird-nlbd.conf\"\nnext_hop = \"10.77.1.10\"\n"
                                     "vips = [\"10.99.0.10\", \"10.99.0.11\"]\n";
    const auto cfg = nlbd::config::load_config(dir.write("cluster.toml", text), std::nullopt);
    EXPECT_TRUE(cfg.announce.enabled);
    EXPECT_EQ(cfg.announce.include_file, (dir.path() / "bird-nlbd.conf").string());
    EXPECT_EQ(cfg.announce.control_socket, "/run/bird/bird.ctl");
    EXPECT_EQ(cfg.announce.birdc, "/usr/sbin/birdc");
    EXPECT_EQ(cfg.announce.next_hop, ip("10.77.1.10"));
    EXPECT_EQ(cfg.announce.vips, (std::vector<IpAddr>{ip("10.99.0.10"), ip("10.99.0.11")}));
    EXPECT_EQ(cfg.announce.withdraw_delay_ms, 3000u);
    EXPECT_EQ(cfg.announce.command_timeout_ms, 5000u);
    EXPECT_EQ(cfg.announce.retry_interval_ms, 2000u);
    EXPECT_EQ(cfg.announce.converging_grace_ms, 5000u);
}

TEST(AnnounceConfig, AbsentSectionAnnouncesNothing) {
    TempDir dir;
    const auto cfg = nlbd::config::load_config(dir.write("cluster.toml", kBase), std::nullopt);
    EXPECT_FALSE(cfg.announce.enabled);
}

TEST(AnnounceConfig, NextHopMustBeAClusterVip) {
    expect_announce_error("\n[announce]\ninclude_file = \"b.conf\"\nnext_hop = \"10.77.1.99\" # here\n", "# here",
                          "announce.next_hop", "is not one of cluster.vips");
}

TEST(AnnounceConfig, NextHopMustBeIpv4) {
    expect_announce_error("\n[announce]\ninclude_file = \"b.conf\"\nnext_hop = \"2001:db8::10\" # here\n",
                          "# here", "announce.next_hop", "is not IPv4");
}

TEST(AnnounceConfig, AnnouncedVipMustBeAClusterVipOtherThanTheNextHop) {
    expect_announce_error("\n[announce]\ninclude_file = \"b.conf\"\nnext_hop = \"10.77.1.10\"\n"
                          "vips = [\n  \"10.99.0.10\",\n  \"10.99.0.12\", # here\n]\n",
                          "# here", "announce.vips[2]", "is not one of cluster.vips");
    expect_announce_error("\n[announce]\ninclude_file = \"b.conf\"\nnext_hop = \"10.77.1.10\"\n"
                          "vips = [\n  \"10.77.1.10\", # here\n]\n",
                          "# here", "announce.vips[1]", "is announce.next_hop");
    expect_announce_error("\n[announce]\ninclude_file = \"b.conf\"\nnext_hop = \"10.77.1.10\"\n"
                          "vips = [\n  \"2001:db8::10\", # here\n]\n",
                          "# here", "announce.vips[1]", "only IPv4");
}

TEST(AnnounceConfig, DefaultVipsMustBeIpv4) {
    // Leaving vips out takes every cluster VIP but the next hop: here an IPv6 one too.
    expect_announce_error("\n[announce] # here\ninclude_file = \"b.conf\"\nnext_hop = \"10.77.1.10\"\n", "# here",
                          "announce.vips[3]", "only IPv4");
}

TEST(AnnounceConfig, MissingKeysUnknownKeysAndRangesAreNamed) {
    expect_announce_error("\n[announce] # here\nnext_hop = \"10.77.1.10\"\n", "# here", "announce.include_file",
                          "missing");
    expect_announce_error("\n[announce]\ninclude_file = \"b.conf\"\nnext_hop = \"10.77.1.10\"\nvips = [\"10.99.0.10\"]\n"
                          "withdraw_delay_ms = 600001 # here\n",
                          "# here", "announce.withdraw_delay_ms", "600001");
    expect_announce_error("\n[announce]\ninclude_file = \"b.conf\"\nnext_hop = \"10.77.1.10\"\nvips = [\"10.99.0.10\"]\n"
                          "command_timeout_ms = 50 # here\n",
                          "# here", "announce.command_timeout_ms", "50");
    expect_announce_error("\n[announce]\ninclude_file = \"b.conf\"\nnext_hop = \"10.77.1.10\"\nvips = [\"10.99.0.10\"]\n"
                          "daemon = \"frr\" # here\n",
                          "# here", "announce.daemon", "bird");
    expect_announce_error("\n[announce]\ninclude_file = \"b.conf\"\nnext_hop = \"10.77.1.10\"\nvips = [\"10.99.0.10\"]\n"
                          "peer = \"10.0.0.1\" # here\n",
                          "# here", "announce.peer", "");
    expect_announce_error("\n[announce]\ninclude_file = \"no/such/dir/b.conf\" # here\nnext_hop = \"10.77.1.10\"\n"
                          "vips = [\"10.99.0.10\"]\n",
                          "# here", "announce.include_file", "does not exist");
}

TEST(AnnounceConfig, ReloadChangesWhatIsAnnouncedLiveButNotWhereTheFileIs) {
    TempDir dir;
    const std::string a = kBase + "\n[announce]\ninclude_file = \"b.conf\"\nnext_hop = \"10.77.1.10\"\n"
                                  "vips = [\"10.99.0.10\"]\n";
    const std::string b = kBase + "\n[announce]\ninclude_file = \"b.conf\"\nnext_hop = \"10.77.1.10\"\n"
                                  "vips = [\"10.99.0.10\", \"10.99.0.11\"]\nwithdraw_delay_ms = 100\n";
    const std::string c = kBase + "\n[announce]\ninclude_file = \"c.conf\"\nnext_hop = \"10.77.1.10\"\n"
                                  "vips = [\"10.99.0.10\"]\n";
    const auto ca = nlbd::config::load_config(dir.write("a.toml", a), std::nullopt);
    const auto cb = nlbd::config::load_config(dir.write("b.toml", b), std::nullopt);
    const auto cc = nlbd::config::load_config(dir.write("c.toml", c), std::nullopt);
    const auto live = nlbd::config::diff(ca, cb);
    EXPECT_TRUE(live.restart.empty());
    EXPECT_EQ(live.params.size(), 2u);
    const auto restart = nlbd::config::diff(ca, cc);
    ASSERT_EQ(restart.restart.size(), 1u);
    EXPECT_EQ(restart.restart[0].key, "announce.include_file");
}
