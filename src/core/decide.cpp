// filter -> hash -> decide (SPEC §2-3). Packet path: no allocation, no
// locks, no exceptions, no system calls; reads only the immutable snapshot.
//
// The decision is split in two stages so that the burst form can prefetch:
// stage one classifies the frame and, for owner lookups, computes where in
// Snapshot::owners / echo_owners the owner lives; stage two reads that byte
// and turns it into accepted / not_owner.

#include "nlbd/core/decide.hpp"

#include "lookup_inline.hpp"
#include "nlbd/core/hash.hpp"

namespace nlbd::core {
namespace {

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

inline void to_default_host(Decision& d, const Snapshot& s) noexcept {
    d.owner = s.default_host;
    d.verdict = s.default_host == s.self && s.self != kNoHost ? Verdict::default_host_accepted
                                                               : Verdict::default_host_other;
}

// Stage one. Returns the owner slot still to be read, or nullptr when d is
// already final.
inline const HostId* classify(const ParsedFrame& f, const Snapshot& s, Decision& d) noexcept {
    const FlowKey& k = f.key;
    switch (f.kind) {
    case FrameKind::ipv4:
    case FrameKind::ipv6: break;
    case FrameKind::arp:
        if ((k.flags & kArpRequest) && lookup::vip_index(s, k.dst) != kNoVip) {
            d.owner = s.default_host;
            d.verdict = s.default_host == s.self && s.self != kNoHost ? Verdict::arp_replied
                                                                       : Verdict::arp_not_default;
        } else {
            d.verdict = Verdict::passed_non_vip;
        }
        return nullptr;
    case FrameKind::nd_solicit:
        if (lookup::vip_index(s, k.dst) != kNoVip) {
            d.owner = s.default_host;
            d.verdict = s.default_host == s.self && s.self != kNoHost ? Verdict::nd_replied
                                                                       : Verdict::nd_not_default;
        } else {
            d.verdict = Verdict::passed_non_vip;
        }
        return nullptr;
    default:
        d.verdict = Verdict::passed_non_vip;
        return nullptr;
    }

    const uint16_t vip = lookup::vip_index(s, k.dst);
    if (vip == kNoVip) {
        d.verdict = Verdict::passed_non_vip;
        return nullptr;
    }
    if (!s.started) {
        d.verdict = Verdict::stopped;
        return nullptr;
    }

    // TCP/UDP with ports: first fragments, whole datagrams and ICMP errors
    // (whose key already is the inner flow seen from the client).
    if ((k.flags & kHasPorts) && (k.proto == kProtoTcp || k.proto == kProtoUdp)) {
        const uint16_t r = lookup::rule_match(s.rules, vip, k.proto, k.dport);
        if (r == kNoRule) {
            to_default_host(d, s);
            return nullptr;
        }
        d.rule = r;
        const CompiledRule& c = s.rules.rules[r];
        switch (c.mode) {
        case FilterMode::multiple:
            d.bucket = bucket_of(affinity_hash(k, c.affinity, c.hash_seed), s.buckets);
            return &s.owners[static_cast<size_t>(r) * s.buckets + d.bucket];
        case FilterMode::single:
            return &c.single_owner;
        default:
            d.verdict = Verdict::disabled_rule;
            return nullptr;
        }
    }
    if ((k.flags & kIcmpEcho) && !s.echo_owners.empty()) {
        const uint32_t n = static_cast<uint32_t>(s.echo_owners.size());
        d.bucket = bucket_of(affinity_hash(k, Affinity::single, s.echo_seed), n);
        return &s.echo_owners[d.bucket];
    }
    // Other ICMP, other protocols, non-first fragments decided on L3 only.
    to_default_host(d, s);
    return nullptr;
}

// Stage two.
inline void settle(const HostId* slot, const Snapshot& s, Decision& d) noexcept {
    const HostId o = *slot;
    d.owner = o;
    d.verdict = (o == s.self && o != kNoHost) ? Verdict::accepted : Verdict::not_owner;
}

}  // namespace

Decision decide(const ParsedFrame& f, const Snapshot& s) noexcept {
    Decision d;
    if (const HostId* slot = classify(f, s, d)) settle(slot, s, d);
    return d;
}

void decide_burst(std::span<const ParsedFrame> frames, const Snapshot& s, std::span<Decision> out,
                  const uint8_t* decided) noexcept {
    constexpr size_t kChunk = 32;
    const size_t n = frames.size() < out.size() ? frames.size() : out.size();
    const HostId* slots[kChunk];
    for (size_t base = 0; base < n; base += kChunk) {
        const size_t m = n - base < kChunk ? n - base : kChunk;
        // Stage one for the chunk, prefetching every owner slot it needs...
        for (size_t i = 0; i < m; ++i) {
            if (decided != nullptr && decided[base + i] != 0) {
                slots[i] = nullptr;
                continue;
            }
            out[base + i] = Decision{};
            slots[i] = classify(frames[base + i], s, out[base + i]);
            if (slots[i]) __builtin_prefetch(slots[i]);
        }
        // ...then stage two once the lines are (likely) in cache.
        for (size_t i = 0; i < m; ++i)
            if (slots[i]) settle(slots[i], s, out[base + i]);
    }
}

bool decide_v4_fast(std::span<const uint8_t> frame, const Snapshot& s, Decision& d) noexcept {
    constexpr size_t kEth = 14, kIp = 20;
    const uint8_t* const f = frame.data();
    const size_t size = frame.size();
    if (size < kEth + kIp || f[12] != 0x08 || f[13] != 0x00) return false;  // IPv4, untagged
    const uint8_t* const ip = f + kEth;
    if (ip[0] != 0x45) return false;  // version 4, no options
    const size_t total = (size_t{ip[2]} << 8) | ip[3];
    if (total < kIp || total > size - kEth) return false;
    if (((ip[6] & 0x3f) | ip[7]) != 0) return false;  // MF or an offset: a fragment
    const uint8_t proto = ip[9];
    const uint8_t* const l4 = ip + kIp;
    const size_t avail = total - kIp;
    if (proto == kProtoTcp) {
        if (avail < 20) return false;
        const size_t doff = size_t{static_cast<uint8_t>(l4[12] >> 4)} * 4;
        if (doff < 20 || doff > avail) return false;
    } else if (proto == kProtoUdp) {
        if (avail < 8) return false;
        const size_t ulen = (size_t{l4[4]} << 8) | l4[5];
        if (ulen < 8 || ulen > avail) return false;
    } else {
        return false;
    }
    if (!s.started) return false;
    const uint16_t vip = lookup::vip_index_v4(s, ip + 16);
    if (vip == kNoVip) return false;
    const uint16_t dport = static_cast<uint16_t>((l4[2] << 8) | l4[3]);
    const uint16_t r = lookup::rule_match(s.rules, vip, proto, dport);
    if (r == kNoRule) return false;
    const CompiledRule& c = s.rules.rules[r];
    if (c.mode != FilterMode::multiple) return false;
    const uint32_t src = (uint32_t{ip[12]} << 24) | (uint32_t{ip[13]} << 16) | (uint32_t{ip[14]} << 8) | ip[15];
    const uint16_t sport = static_cast<uint16_t>((l4[0] << 8) | l4[1]);
    const uint32_t bucket = bucket_of(affinity_hash_v4(src, sport, c.affinity, c.hash_seed), s.buckets);
    const HostId o = s.owners[static_cast<size_t>(r) * s.buckets + bucket];
    d.verdict = (o == s.self && o != kNoHost) ? Verdict::accepted : Verdict::not_owner;
    d.rule = r;
    d.owner = o;
    d.bucket = bucket;
    return true;
}

bool decide_foreign_v4(std::span<const uint8_t> frame, const Snapshot& s, Decision& d) noexcept {
    Decision x;
    if (!decide_v4_fast(frame, s, x) || x.verdict != Verdict::not_owner) return false;
    d = x;
    return true;
}

}  // namespace nlbd::core
