// nlbd-pcapgen's scenario reader (src/tools/replay_scenario.cpp): the real
// replay scenarios give each traffic class the rule, best host and weights
// their files say, and a config the traffic cannot be generated for is
// refused with an error that names the file and the rule or class.

#include "replay_scenario.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "temp_dir.hpp"

using namespace nlbd;
using namespace nlbd::tools;
using nlbd::test::TempDir;

namespace {

const std::string kScenarios = std::string(NLBD_SOURCE_ROOT) + "/tests/replay/";

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The scenario's template with `from` replaced by `to` (which must be there).
std::string edited(const std::string& text, const std::string& from, const std::string& to) {
    const auto pos = text.find(from);
    EXPECT_NE(pos, std::string::npos) << "template lacks " << from;
    if (pos == std::string::npos) return text;
    return text.substr(0, pos) + to + text.substr(pos + from.size());
}

// The template without the blank-line separated block holding marker (a
// [[port_rule]] and the comment above it).
std::string without_block(const std::string& text, const std::string& marker) {
    const auto at = text.find(marker);
    EXPECT_NE(at, std::string::npos) << "template lacks " << marker;
    if (at == std::string::npos) return text;
    const auto begin = text.rfind("\n\n", at);
    const auto end = text.find("\n\n", at);
    return text.substr(0, begin) + (end == std::string::npos ? "\n" : text.substr(end));
}

PortFiles files_in(const TempDir& dir) {
    return {dir.file("in.pcap"), dir.file("empty.pcap"), dir.path().string()};
}

Scenario load(const TempDir& dir, const std::string& text) {
    return load_scenario(dir.write("cluster.toml.in", text), files_in(dir));
}

// The message load() must fail with.
std::string error_of(const TempDir& dir, const std::string& text) {
    try {
        (void)load(dir, text);
    } catch (const ScenarioError& e) {
        return e.what();
    }
    ADD_FAILURE() << "the config was accepted";
    return {};
}

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

TEST(ReplayScenario, BasicGivesEachClassTheRuleItsFileSays) {
    TempDir dir("replay_scenario");
    const std::string file = kScenarios + "basic/cluster.toml.in";
    const Scenario sc = load_scenario(file, files_in(dir));
    EXPECT_EQ(sc.file, file);
    EXPECT_EQ(sc.mode, ClusterMode::unicast);
    EXPECT_EQ(sc.vips, (std::vector<IpAddr>{ip("198.51.100.10"), ip("198.51.100.11"), ip("2001:db8:100::10")}));
    EXPECT_EQ(sc.vip4, ip("198.51.100.10"));
    EXPECT_EQ(sc.vip6, ip("2001:db8:100::10"));
    EXPECT_EQ(sc.members, (std::vector<HostId>{1, 2, 3}));
    EXPECT_EQ(sc.default_host, 1);

    const std::map<HostId, uint8_t> equal{{1, 50}, {2, 50}, {3, 50}};
    struct Want {
        Traffic t;
        uint16_t port;
        const char* vip;
        HostId best;
    } wants[] = {{Traffic::web, 80, "198.51.100.10", kNoHost},
                 {Traffic::override_vip, 80, "198.51.100.11", 3},
                 {Traffic::dns, 53, "198.51.100.10", kNoHost},
                 {Traffic::https, 443, "198.51.100.10", kNoHost},
                 {Traffic::netaff, 8080, "198.51.100.10", kNoHost},
                 {Traffic::frag, 4000, "198.51.100.10", kNoHost},
                 {Traffic::smtp, 25, "198.51.100.10", kNoHost},
                 {Traffic::rdp, 3389, "198.51.100.10", 2},
                 {Traffic::weighted, 8443, "198.51.100.10", kNoHost}};
    for (const Want& w : wants) {
        SCOPED_TRACE(traffic_name(w.t));
        const ClassRule& r = sc.rule(w.t);
        EXPECT_EQ(r.port, w.port);
        EXPECT_EQ(r.vip, ip(w.vip));
        EXPECT_EQ(r.best, w.best);
        if (r.rule.mode == FilterMode::multiple && w.t != Traffic::weighted) {
            EXPECT_EQ(r.weights, equal);
        }
    }
    EXPECT_EQ(sc.rule(Traffic::frag).rule.port_hi, 4999);
    EXPECT_EQ(sc.rule(Traffic::smtp).rule.mode, FilterMode::disabled);
    EXPECT_EQ(sc.rule(Traffic::weighted).weights, (std::map<HostId, uint8_t>{{1, 50}, {2, 25}, {3, 25}}));

    // What nlbd runs: each host's copy, placeholders filled in.
    ASSERT_EQ(sc.host_files.size(), 3u);
    const std::string host2 = read(sc.host_files[1]);
    EXPECT_EQ(sc.host_files[1], dir.file("host2.toml"));
    EXPECT_NE(host2.find("id = 2\n"), std::string::npos);
    EXPECT_NE(host2.find("rx_pcap=" + dir.file("in.pcap") + ",tx_pcap=" + dir.file("wire_out.2.pcap")),
              std::string::npos);
    EXPECT_EQ(host2.find('@'), std::string::npos);
}

TEST(ReplayScenario, VlanMulticastIsAMulticastClusterWithTheSameRules) {
    TempDir dir("replay_scenario");
    const Scenario sc = load_scenario(kScenarios + "vlan_multicast/cluster.toml.in", files_in(dir));
    EXPECT_EQ(sc.mode, ClusterMode::multicast);
    EXPECT_EQ(sc.rule(Traffic::rdp).best, 2);
    EXPECT_EQ(sc.rule(Traffic::override_vip).best, 3);
    EXPECT_EQ(sc.rule(Traffic::weighted).weights, (std::map<HostId, uint8_t>{{1, 50}, {2, 25}, {3, 25}}));
}

TEST(ReplayScenario, BestHostAndWeightsFollowTheFile) {
    TempDir dir("replay_scenario");
    std::string text = read(kScenarios + "basic/cluster.toml.in");
    text = edited(text, "handling_priority = @P:3,1,2@\nstatic_priorities = [3, 1, 2]",
                  "handling_priority = @P:2,3,1@\nstatic_priorities = [2, 3, 1]");
    text = edited(text, "load_weight = @P:50,25,25@\nstatic_weights = [50, 25, 25]",
                  "load_weight = @P:10,20,70@\nstatic_weights = [10, 20, 70]");
    const Scenario sc = load(dir, text);
    EXPECT_EQ(sc.rule(Traffic::rdp).best, 3);
    EXPECT_EQ(sc.rule(Traffic::weighted).weights, (std::map<HostId, uint8_t>{{1, 10}, {2, 20}, {3, 70}}));
}

TEST(ReplayScenario, MissingRuleNamesTheFileAndTheClass) {
    TempDir dir("replay_scenario");
    const std::string text = without_block(read(kScenarios + "basic/cluster.toml.in"), "ports = \"3389\"");
    const std::string e = error_of(dir, text);
    EXPECT_NE(e.find(dir.file("cluster.toml.in") + ": no [[port_rule]] for nlbd-pcapgen's 'rdp' traffic"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find("mode = \"single\", vip = \"all\""), std::string::npos) << e;
}

TEST(ReplayScenario, EachClassTakesARuleOfItsOwn) {
    // Without port 53, dns takes the next multiple UDP rule (4000-4999) and
    // frag, which wants the same kind, finds none left.
    TempDir dir("replay_scenario");
    const std::string text = without_block(read(kScenarios + "basic/cluster.toml.in"), "ports = \"53\"");
    const std::string e = error_of(dir, text);
    EXPECT_NE(e.find("no [[port_rule]] for nlbd-pcapgen's 'frag' traffic"), std::string::npos) << e;
}

TEST(ReplayScenario, RuleForAVipThatTakesAnotherClassesTrafficIsNamed) {
    // The override rule moved to the VIP the web traffic goes to.
    TempDir dir("replay_scenario");
    const std::string text =
        edited(read(kScenarios + "basic/cluster.toml.in"), "vip = \"198.51.100.11\"", "vip = \"198.51.100.10\"");
    const std::string e = error_of(dir, text);
    EXPECT_NE(e.find("port_rule[2] (198.51.100.10:80/tcp) takes the 'web' traffic to 198.51.100.10:80/tcp, meant "
                     "for port_rule[1] (all:80/tcp)"),
              std::string::npos)
        << e;
}

TEST(ReplayScenario, NoRulePortsMustMatchNoRule) {
    TempDir dir("replay_scenario");
    const std::string text = read(kScenarios + "basic/cluster.toml.in") +
                             "\n[[port_rule]]\nvip = \"all\"\nports = \"7000-7999\"\nprotocol = \"udp\"\n";
    const std::string e = error_of(dir, text);
    EXPECT_NE(e.find("port_rule[10] (all:7000-7999/udp) covers 198.51.100.10:7777/udp"), std::string::npos) << e;
}

TEST(ReplayScenario, HostsMustAgreeOnThePriorities) {
    // Without static_priorities a static cluster ranks by host id: the
    // handling priorities would not decide, so the file is refused.
    TempDir dir("replay_scenario");
    const std::string text = edited(read(kScenarios + "basic/cluster.toml.in"), "static_priorities = [3, 1, 2]", "");
    const std::string e = error_of(dir, text);
    EXPECT_NE(e.find("port_rule[8] (all:3389/tcp): host 1 ranks the members 1:0,2:0,3:0"), std::string::npos) << e;
    EXPECT_NE(e.find("handling_priority values are 1:3,2:1,3:2"), std::string::npos) << e;
}

TEST(ReplayScenario, HostsMustShareTheirRules) {
    TempDir dir("replay_scenario");
    const std::string text =
        edited(read(kScenarios + "basic/cluster.toml.in"), "ports = \"3389\"", "ports = \"@P:3389,3389,3390@\"");
    const std::string e = error_of(dir, text);
    EXPECT_NE(e.find("port_rule[8]: host 3 has it as all:3390/tcp single, host 1 as all:3389/tcp single"),
              std::string::npos)
        << e;
}

TEST(ReplayScenario, ConfigErrorsNameTheTemplateAndTheHost) {
    TempDir dir("replay_scenario");
    const std::string text = edited(read(kScenarios + "basic/cluster.toml.in"), "buckets = 4096", "buckets = 0");
    const std::string e = error_of(dir, text);
    EXPECT_NE(e.find(dir.file("cluster.toml.in") + " for host 1 (written as " + dir.file("host1.toml") + "): "),
              std::string::npos)
        << e;
    EXPECT_NE(e.find("cluster.buckets"), std::string::npos) << e;
}

TEST(ReplayScenario, PlaceholdersAreFilledPerHost) {
    const PortFiles f{"/w/in.pcap", "/w/empty.pcap", "/w"};
    EXPECT_EQ(fill_placeholders("id = @HOST@\nw = @P:50,25,25@\n# @P:a,b,c@\n", 2, f, "t.in"),
              "id = 2\nw = 25\n# b\n");
    EXPECT_EQ(fill_placeholders("d = \"x,rx_pcap=@IN@,tx_pcap=@WIRE_OUT@\"\nl = \"@EMPTY@ @LOCAL_OUT@\"", 3, f, "t.in"),
              "d = \"x,rx_pcap=/w/in.pcap,tx_pcap=/w/wire_out.3.pcap\"\nl = \"/w/empty.pcap /w/local_out.3.pcap\"");
}

TEST(ReplayScenario, PlaceholderErrorsNameFileAndLine) {
    const PortFiles f{"in", "empty", "dir"};
    const auto error = [&](const std::string& text) {
        try {
            (void)fill_placeholders(text, 1, f, "t.in");
        } catch (const ScenarioError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_EQ(error("a = 1\nb = @NAME@\n").rfind("t.in:2: unknown placeholder '@NAME@'; allowed: @HOST@", 0), 0u);
    EXPECT_EQ(error("\n\nw = @P:1,2@\n").rfind("t.in:3: '@P:1,2@' has 2 values", 0), 0u);
    EXPECT_EQ(error("mail = \"a@b\"\n").rfind("t.in:1: an '@' that opens no placeholder", 0), 0u);
    EXPECT_EQ(error("id = @HOST@").rfind("accepted", 0), 0u);
}

}  // namespace
