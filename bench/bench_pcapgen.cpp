// nlbd-bench-pcapgen: writes the benchmark flow mix (bench/flow_mix.hpp) as a
// pcap, the input scripts/bench_e2e.sh replays through dpdk-testpmd and nlbd.
//
//   nlbd-bench-pcapgen --out FILE [--flows N] [--seed S]
//                      [--rules R] [--rules-toml FILE] [--conns C]
//
// Same frames as bench_pipeline's corpus for the same N and seed (and
// --conns 0).
//
// --rules R: the rule set of bench/flow_mix.hpp rules(R) (0 = the five seed
//   rules, the default; 1 = NLB's default rule; 64, 1024, ...: per-VIP port
//   ranges). --rules-toml FILE writes it as [[port_rule]] tables for the
//   cluster file of scripts/bench_e2e.sh, so nlbd runs exactly that set.
// --conns C: adds C established client connections that this node (host 1 of
//   the static cluster [1, 2, 3], equal weights) accepts under rule set R:
//   one 60-byte TCP ACK each (64 bytes on the wire), from distinct clients in
//   100.64.0.0/10, to a VIP and a port drawn like the mix's, kept only when
//   nlbd's own parse_frame + decide() accept it (the same snapshot nlbd builds
//   from that cluster file). Shuffled among the mix's frames. On the first
//   pass over the capture the node adopts each of them (a non-SYN in a clean
//   bucket it owns: inserted as established, SPEC §5), so from then on its
//   connection table holds C live connections (plus the mix's own ~2.5k) and
//   every later pass looks each of them up once.

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "flow_mix.hpp"
#include "nlbd/core/decide.hpp"
#include "nlbd/core/parse.hpp"
#include "nlbd/core/snapshot.hpp"
#include "pcap_writer.hpp"

namespace {

using namespace nlbd;

// The snapshot nlbd compiles from scripts/bench_e2e.sh's cluster file
// (daemon::static_snapshot_input: static members 1, 2, 3, weight 50 for
// equal-weight rules, no static priorities), self = host 1.
std::shared_ptr<const core::Snapshot> node_snapshot(const std::vector<PortRule>& rules) {
    core::SnapshotInput in;
    in.self = 1;
    in.epoch = 1;
    in.buckets = kDefaultBuckets;
    in.vips = bench::vips();
    in.rules = rules;
    for (HostId h = 1; h <= 3; ++h) {
        core::Member m;
        m.id = h;
        for (const PortRule& r : rules) {
            m.weights.push_back(r.equal_weight ? uint8_t{50} : r.load_weight);
            m.priorities.push_back(0);
        }
        in.members.push_back(std::move(m));
    }
    return core::compile_snapshot(in);
}

bool write_rules_toml(const std::string& path, const std::vector<PortRule>& rules) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return false;
    static const char* const kProto[] = {"tcp", "udp", "both"};
    static const char* const kMode[] = {"multiple", "single", "disabled"};
    static const char* const kAff[] = {"none", "single", "network"};
    for (const PortRule& r : rules) {
        std::fprintf(f, "\n[[port_rule]]\nvip = \"%s\"\n", r.vip ? r.vip->to_string().c_str() : "all");
        if (r.port_lo == r.port_hi) std::fprintf(f, "ports = \"%u\"\n", r.port_lo);
        else std::fprintf(f, "ports = \"%u-%u\"\n", r.port_lo, r.port_hi);
        std::fprintf(f, "protocol = \"%s\"\nmode = \"%s\"\n", kProto[static_cast<int>(r.protocol)],
                     kMode[static_cast<int>(r.mode)]);
        if (r.mode == FilterMode::multiple)
            std::fprintf(f, "affinity = \"%s\"\n", kAff[static_cast<int>(r.affinity)]);
        if (r.mode == FilterMode::single && r.handling_priority != 0)
            std::fprintf(f, "handling_priority = %u\n", r.handling_priority);
    }
    return std::fclose(f) == 0;
}

// `count` TCP ACKs of distinct client connections the node accepts.
std::vector<bench::MixFrame> owned_connections(size_t count, const core::Snapshot& s,
                                               uint32_t seed) {
    std::mt19937 rng(seed ^ 0xc0ffee);
    std::vector<bench::MixFrame> out;
    out.reserve(count);
    core::ParsedFrame pf;
    const auto vips = bench::vips();
    for (uint32_t i = 0; out.size() < count; ++i) {
        if (i >= (1u << 22)) {  // 100.64.0.0/10 exhausted
            std::fprintf(stderr, "nlbd-bench-pcapgen: only %zu owned connections found\n", out.size());
            break;
        }
        const uint8_t a[4] = {100, static_cast<uint8_t>(64 + (i >> 16)), static_cast<uint8_t>(i >> 8),
                              static_cast<uint8_t>(i)};
        const IpAddr client = IpAddr::from_v4(a);
        const IpAddr& vip = vips[rng() % 4];  // the IPv4 VIPs
        const auto sport = static_cast<uint16_t>(1024 + rng() % 64000);
        const uint16_t dport = bench::detail::pick_dport(rng);
        testing::PacketBuilder b;
        b.eth("02:00:00:00:00:01", bench::kClusterMac).ipv4(client, vip).tcp(sport, dport, testing::kAck);
        testing::Bytes frame = b.build();
        if (frame.size() < 60) frame.resize(60, 0);
        if (core::parse_frame(frame, pf) != ParseError::none) continue;
        const core::Decision d = core::decide(pf, s);
        if (d.verdict != Verdict::accepted || d.rule == core::kNoRule) continue;
        out.push_back({std::move(frame), "conn"});
    }
    return out;
}

int usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s --out FILE [--flows N] [--seed S] [--rules R] [--rules-toml FILE] "
                 "[--conns C]\n",
                 argv0);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string out, rules_toml;
    size_t flows = 10240, conns = 0;
    unsigned nrules = 0;
    uint32_t seed = 12345;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--out" && i + 1 < argc) out = argv[++i];
        else if (a == "--flows" && i + 1 < argc) flows = std::strtoul(argv[++i], nullptr, 10);
        else if (a == "--seed" && i + 1 < argc) seed = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
        else if (a == "--rules" && i + 1 < argc) nrules = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
        else if (a == "--rules-toml" && i + 1 < argc) rules_toml = argv[++i];
        else if (a == "--conns" && i + 1 < argc) conns = std::strtoul(argv[++i], nullptr, 10);
        else return usage(argv[0]);
    }
    if (out.empty() || flows == 0 || nrules > kMaxRules) return usage(argv[0]);
    const std::vector<PortRule> rules = bench::rules(nrules);
    if (!rules_toml.empty() && !write_rules_toml(rules_toml, rules)) {
        std::fprintf(stderr, "nlbd-bench-pcapgen: cannot write %s: %s\n", rules_toml.c_str(), std::strerror(errno));
        return 1;
    }
    auto frames = bench::flow_mix(flows, seed);
    if (conns != 0) {
        const auto snap = node_snapshot(rules);
        auto extra = owned_connections(conns, *snap, seed);
        frames.reserve(frames.size() + extra.size());
        for (auto& f : extra) frames.push_back(std::move(f));
        std::mt19937 rng(seed + 1);
        std::shuffle(frames.begin(), frames.end(), rng);
    }
    testing::PcapWriter w(out);
    std::map<std::string, size_t> kinds;
    size_t bytes = 0;
    for (const auto& f : frames) {
        w.write(f.bytes);
        ++kinds[f.kind];
        bytes += f.bytes.size();
    }
    if (!w.close()) {
        std::fprintf(stderr, "nlbd-bench-pcapgen: cannot write %s: %s\n", out.c_str(), std::strerror(errno));
        return 1;
    }
    std::printf("%s: %zu frames, mean %zu bytes:", out.c_str(), frames.size(), bytes / frames.size());
    for (const auto& [k, n] : kinds) std::printf(" %s=%zu", k.c_str(), n);
    std::printf("\n");
    return 0;
}
