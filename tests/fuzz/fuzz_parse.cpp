// libFuzzer target for nlbd::core::parse_frame (built by run_fuzz.sh with
// -fsanitize=fuzzer,address,undefined). libFuzzer hands us an exactly-sized
// heap buffer, so ASan reports any read past the frame. On top of memory
// safety it checks the output contract of parse.hpp, and that the packet
// path's fast path (decide_v4_fast, which reads the raw frame) answers only
// frames parse_frame accepts, and as parse_frame + decide do; the early exit
// (decide_foreign_v4) only where they say not_owner. A violation aborts.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "fuzz_cluster.hpp"
#include "nlbd/core/decide.hpp"
#include "nlbd/core/parse.hpp"
#include "nlbd/core/snapshot.hpp"

namespace {

using nlbd::ParseError;
using namespace nlbd::core;
using nlbd::Verdict;

void check(std::span<const uint8_t> f, ParseError err, const ParsedFrame& out) {
    CHECK(static_cast<unsigned>(err) < nlbd::kParseErrorCount);
    if (err != ParseError::none) return;
    CHECK(f.size() >= 14);
    CHECK(out.vlan_count <= kMaxVlanTags);
    CHECK(out.l3_offset == 14u + 4u * out.vlan_count);
    CHECK(size_t{out.l3_offset} + out.l3_length <= f.size());
    if (out.l4_offset != 0) {
        CHECK(out.l4_offset > out.l3_offset);
        CHECK(size_t{out.l4_offset} <= size_t{out.l3_offset} + out.l3_length);
    }
    const uint16_t fl = out.key.flags;
    switch (out.kind) {
    case FrameKind::other_l2:
        CHECK(out.l3_length == 0 && out.l4_offset == 0 && fl == 0);
        CHECK(out.key.src.family == nlbd::Family::none);
        break;
    case FrameKind::arp:
        CHECK(out.l3_length == 28 && out.l4_offset == 0);
        CHECK(out.key.src.family == nlbd::Family::v4 && out.key.dst.family == nlbd::Family::v4);
        CHECK((fl & ~(kArpRequest | kArpReply)) == 0);
        CHECK((fl & kArpRequest) == 0 || (fl & kArpReply) == 0);
        break;
    case FrameKind::ipv4:
    case FrameKind::ipv6:
    case FrameKind::nd_solicit: {
        const auto fam = out.kind == FrameKind::ipv4 ? nlbd::Family::v4 : nlbd::Family::v6;
        CHECK(out.key.src.family == fam && out.key.dst.family == fam);
        CHECK(out.l3_length >= (fam == nlbd::Family::v4 ? 20 : 40));
        CHECK((fl & (kArpRequest | kArpReply)) == 0);
        if (fl & kFirstFragment) CHECK(fl & kFragment);
        if ((fl & kFragment) && !(fl & kFirstFragment)) {
            CHECK(!(fl & kHasPorts) && out.l4_offset == 0);
            CHECK((fl & (kIcmpEcho | kIcmpError)) == 0);
        }
        if (!(fl & kFragment)) CHECK(out.frag_offset == 0);
        if (!(fl & kHasPorts)) CHECK(out.key.sport == 0 && out.key.dport == 0);
        if (fl & (kTcpSyn | kTcpFin | kTcpRst | kTcpAck)) CHECK(out.key.proto == 6);
        CHECK((fl & kIcmpEcho) == 0 || (fl & kIcmpError) == 0);
        if (out.kind == FrameKind::nd_solicit) CHECK(out.key.icmp_type == 135 && out.key.proto == 58);
        break;
    }
    default: CHECK(!"unknown FrameKind");
    }
}

// Host 1 of 3 of the fuzz cluster (fuzz_cluster.hpp).
const Snapshot& cluster_snapshot() {
    static const std::shared_ptr<const Snapshot> s = nlbd::fuzz::cluster_snapshot_of(1);
    return *s;
}

void check_early_exit(std::span<const uint8_t> frame, ParseError err, const ParsedFrame& f) {
    Decision d;
    if (!decide_foreign_v4(frame, cluster_snapshot(), d)) return;
    CHECK(err == ParseError::none);
    const Decision want = decide(f, cluster_snapshot());
    CHECK(d.verdict == Verdict::not_owner && want.verdict == Verdict::not_owner);
    CHECK(d.rule == want.rule && d.owner == want.owner && d.bucket == want.bucket);
}

// The fast path (owned or not) answers only frames that parse, and as
// parse_frame + decide do.
void check_fast_path(std::span<const uint8_t> frame, ParseError err, const ParsedFrame& f) {
    Decision d;
    if (!decide_v4_fast(frame, cluster_snapshot(), d)) return;
    CHECK(err == ParseError::none);
    const Decision want = decide(f, cluster_snapshot());
    CHECK(d.verdict == want.verdict && d.rule == want.rule && d.owner == want.owner && d.bucket == want.bucket);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> frame(data, size);
    ParsedFrame a;
    const ParseError ea = parse_frame(frame, a);
    check(frame, ea, a);
    check_early_exit(frame, ea, a);
    check_fast_path(frame, ea, a);
    // Deterministic and independent of the previous contents of `out`.
    ParsedFrame b;
    std::memset(static_cast<void*>(&b), 0xa5, sizeof b);
    const ParseError eb = parse_frame(frame, b);
    CHECK(ea == eb);
    if (ea == ParseError::none) {
        CHECK(a.kind == b.kind && a.l3_offset == b.l3_offset && a.l4_offset == b.l4_offset);
        CHECK(a.l3_length == b.l3_length && a.frag_offset == b.frag_offset);
        CHECK(a.key.src == b.key.src && a.key.dst == b.key.dst && a.key.flags == b.key.flags);
        CHECK(a.key.sport == b.key.sport && a.key.dport == b.key.dport && a.key.proto == b.key.proto);
    }
    return 0;
}
