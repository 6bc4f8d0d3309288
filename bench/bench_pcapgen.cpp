// nlbd-bench-pcapgen: writes the benchmark flow mix (bench/flow_mix.hpp) as a
// pcap, the input scripts/bench_e2e.sh replays through dpdk-testpmd and nlbd.
//
//   nlbd-bench-pcapgen --out FILE [--flows N] [--seed S]
//
// Same frames as bench_pipeline's corpus for the same N and seed.

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "flow_mix.hpp"
#include "pcap_writer.hpp"

int main(int argc, char** argv) {
    std::string out;
    size_t flows = 10240;
    uint32_t seed = 12345;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--out" && i + 1 < argc) out = argv[++i];
        else if (a == "--flows" && i + 1 < argc) flows = std::strtoul(argv[++i], nullptr, 10);
        else if (a == "--seed" && i + 1 < argc) seed = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
        else {
            std::fprintf(stderr, "usage: %s --out FILE [--flows N] [--seed S]\n", argv[0]);
            return 2;
        }
    }
    if (out.empty() || flows == 0) {
        std::fprintf(stderr, "usage: %s --out FILE [--flows N] [--seed S]\n", argv[0]);
        return 2;
    }
    const auto frames = nlbd::bench::flow_mix(flows, seed);
    nlbd::testing::PcapWriter w(out);
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
