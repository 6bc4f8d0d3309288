#pragma once
// Shared by the libFuzzer targets on the packet path (fuzz_parse,
// fuzz_pipeline): the invariant check, and the cluster they decide in.

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "nlbd/core/rules.hpp"
#include "nlbd/core/snapshot.hpp"

namespace nlbd::fuzz {

[[noreturn]] inline void fail(const char* file, int line, const char* what) {
    std::fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
    std::abort();
}
#define CHECK(cond)                                          \
    do {                                                     \
        if (!(cond)) ::nlbd::fuzz::fail(__FILE__, __LINE__, #cond); \
    } while (0)

// Host `self` of 3, the seed corpus's VIPs (tests/fuzz/make_corpus.cpp), a
// rule of every mode and affinity.
inline std::shared_ptr<const core::Snapshot> cluster_snapshot_of(HostId self) {
    core::SnapshotInput in;
    in.self = self;
    in.vips = {*IpAddr::parse("192.168.1.100"), *IpAddr::parse("2001:db8::100")};
    auto rule = [](uint16_t lo, uint16_t hi, FilterMode m, Affinity a, Protocol p) {
        PortRule r;
        r.port_lo = lo;
        r.port_hi = hi;
        r.mode = m;
        r.affinity = a;
        r.protocol = p;
        return r;
    };
    in.rules = {rule(443, 443, FilterMode::multiple, Affinity::none, Protocol::tcp),
                rule(53, 53, FilterMode::multiple, Affinity::single, Protocol::udp),
                rule(80, 80, FilterMode::multiple, Affinity::network, Protocol::both),
                rule(25, 25, FilterMode::disabled, Affinity::none, Protocol::both),
                rule(3389, 3389, FilterMode::single, Affinity::none, Protocol::tcp),
                rule(1024, 65535, FilterMode::multiple, Affinity::single, Protocol::both)};
    for (HostId h = 1; h <= 3; ++h) in.members.push_back(core::Member{h, {}, {}});
    return core::compile_snapshot(in);
}

}  // namespace nlbd::fuzz
