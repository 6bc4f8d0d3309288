#pragma once
// The cluster of a replay scenario (tests/replay/README.md), as nlbd-pcapgen
// needs it: read from the scenario's cluster.toml.in with nlbd's own config
// loader, so that the traffic's expectations (manifest.tsv) and the configs
// the hosts run come from one file and cannot drift apart.
//
// Each traffic class of the generator that exercises a port rule names the
// kind of rule it needs (a Need: mode, VIP, transports, affinity); the
// scenario gives each class the first rule of that kind in the file that no
// earlier class took, then proves with nlbd's matching order (a rule for the
// VIP beats an "all" rule) that every frame of the class reaches that rule.
// Best hosts and weights are those every host's static view agrees on.
// Tool code: throws ScenarioError, whose message names the template.

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "nlbd/config/config.hpp"
#include "nlbd/core/rules.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::tools {

// The hosts of every scenario, in @P:a,b,c@ order (host 1 gets a).
inline constexpr std::array<HostId, 3> kScenarioHosts{1, 2, 3};

// Fixed parts of the generated traffic that the cluster must leave alone:
// VIP traffic to these ports must match no rule (it goes to the default
// host), and these addresses must not be VIPs (every host passes the
// traffic to its local port).
inline constexpr uint16_t kNoRuleTcpPort = 9999;
inline constexpr uint16_t kNoRuleUdpPort = 7777;
inline constexpr std::array<const char*, 3> kNonVip4{"198.51.100.1", "198.51.100.2", "198.51.100.3"};
inline constexpr const char* kNonVip6 = "2001:db8:100::2";

class ScenarioError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Traffic classes that exercise one port rule each, in the order they take
// their rules from the file (dns before frag: both want a multiple-host UDP
// rule with affinity none, and each takes the first one still free), which
// is also the order of the manifest's #balance lines.
enum class Traffic : uint8_t { web, override_vip, dns, https, netaff, frag, smtp, rdp, weighted };
inline constexpr size_t kTrafficCount = 9;

// What the placeholders other than @HOST@ and @P:a,b,c@ stand for.
struct PortFiles {
    std::string in;     // @IN@: the wire port's rx_pcap (may be "a.pcap,rx_pcap=b.pcap")
    std::string empty;  // @EMPTY@: the local port's rx_pcap
    std::string dir;    // @WIRE_OUT@ = dir/wire_out.H.pcap, @LOCAL_OUT@ = dir/local_out.H.pcap
};

// The rule a traffic class exercises, and what the cluster does with it.
struct ClassRule {
    size_t index = 0;                     // position in the file's [[port_rule]] list, 0-based
    PortRule rule;                        // as the first host loaded it
    uint16_t port = 0;                    // destination port of the class (frag: any in port_lo..port_hi)
    IpAddr vip;                           // the VIP of a rule for one VIP, else the scenario's IPv4 VIP
    HostId best = kNoHost;                // mode single: the host that takes all of it
    std::map<HostId, uint8_t> weights;    // mode multiple: each member's weight 0..100 ("equal" = 50)
};

struct Scenario {
    std::string file;                     // the template, as given
    ClusterMode mode = ClusterMode::unicast;
    std::vector<IpAddr> vips;             // as cluster.vips lists them
    IpAddr vip4;                          // first IPv4 VIP: the cluster MAC derives from it (SPEC §3)
    IpAddr vip6;                          // first IPv6 VIP
    std::vector<HostId> members;          // ascending; every one started
    HostId default_host = kNoHost;        // lowest member id: VIP traffic no rule matches, ARP/ND
    std::array<ClassRule, kTrafficCount> rules;
    std::vector<std::string> host_files;  // dir/hostH.toml, in kScenarioHosts order

    const ClassRule& rule(Traffic t) const { return rules[static_cast<size_t>(t)]; }
};

// The name of a class's rule in manifest.tsv ("web", "override", ...).
const char* traffic_name(Traffic t);

// The template's text for one host: @HOST@, @IN@, @EMPTY@, @WIRE_OUT@,
// @LOCAL_OUT@ and @P:a,b,c@ filled in (tests/replay/README.md). Throws on
// any other '@' or a @P:..@ without one value per host, naming file:line.
std::string fill_placeholders(const std::string& text, HostId host, const PortFiles& files,
                              const std::string& template_file);

// Reads template_file, writes its copy for each host to files.dir/hostH.toml
// (the files nlbd then runs), loads each with config::load_config and
// derives the scenario. Throws ScenarioError when a copy does not load, the
// hosts disagree on what the manifest depends on, or a traffic class finds
// no rule of its kind, naming the template and the rule or class.
Scenario load_scenario(const std::string& template_file, const PortFiles& files);

}  // namespace nlbd::tools
