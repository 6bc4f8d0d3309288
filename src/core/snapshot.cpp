// Snapshot compilation (control plane): validated rules + live membership ->
// the flat tables the packet path indexes. See docs/design.md.

#include "nlbd/core/snapshot.hpp"

#include <algorithm>
#include <unordered_map>

#include "nlbd/core/bucket_map.hpp"
#include "nlbd/core/rule_schema.hpp"

namespace nlbd::core {
namespace {

constexpr size_t kIndexedListMin = 8;  // lists longer than this get a block index

inline uint64_t mix64(uint64_t h) noexcept {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

}  // namespace

// Identity of a rule's cluster-wide content. Per-host fields (load weight,
// handling priority) and the source line are left out on purpose: every host
// must derive the same seed for the same rule.
uint64_t rule_identity(const PortRule& r) {
    // The seeded prefix of the canonical record (the fields marked `seeded` in
    // rule_schema.hpp). A rule keeps its hash seed, so its flows keep their
    // buckets, when only an unseeded field (the affinity timeout) changes.
    static_assert(kRuleSeedLen % 8 == 0, "the seed is absorbed in 8-byte words");
    const RuleRecord rec = rule_record(r);
    uint64_t h = 0x6e6c62642d72756cull;  // "nlbd-rul"
    auto absorb = [&h](uint64_t w) { h = mix64(h ^ w) + 0x9e3779b97f4a7c15ull; };
    for (size_t o = 0; o < kRuleSeedLen; o += 8) {
        uint64_t w = 0;
        for (size_t i = 0; i < 8; ++i) w = (w << 8) | rec[o + i];
        absorb(w);
    }
    return mix64(h);
}

uint32_t rule_seed(uint64_t id) noexcept {
    return static_cast<uint32_t>(id ^ (id >> 32));
}

namespace {

uint8_t weight_of(const Member& m, const PortRule& r, size_t i) {
    uint8_t w = i < m.weights.size() ? m.weights[i] : effective_weight(r);
    return std::min<uint8_t>(w, 100);
}

uint8_t priority_of(const Member& m, const PortRule& r, size_t i, HostId self) {
    if (i < m.priorities.size()) return m.priorities[i];
    return m.id == self ? r.handling_priority : 0;
}

// First IPv4 VIP, else the first VIP, else the zero address.
IpAddr mac_source_address(const std::vector<IpAddr>& vips) {
    for (const IpAddr& a : vips)
        if (a.family == Family::v4) return a;
    return vips.empty() ? IpAddr{} : vips.front();
}

// w.x.y.z of SPEC §3: an IPv4 address, or the last 4 bytes of an IPv6 one.
std::array<uint8_t, 4> wxyz(const IpAddr& a) {
    const size_t o = a.family == Family::v6 ? 12 : 0;
    return {a.b[o], a.b[o + 1], a.b[o + 2], a.b[o + 3]};
}

std::vector<uint16_t> build_vip_table(const std::vector<IpAddr>& vips) {
    size_t size = 8;
    while (size < vips.size() * 2) size *= 2;
    std::vector<uint16_t> t(size, kNoVip);
    const size_t mask = size - 1;
    for (size_t v = 0; v < vips.size(); ++v) {
        size_t i = detail::vip_slot_hash(vips[v]) & mask;
        bool dup = false;
        while (t[i] != kNoVip) {
            if (vips[t[i]] == vips[v]) {
                dup = true;  // keep the first index of a repeated VIP
                break;
            }
            i = (i + 1) & mask;
        }
        if (!dup) t[i] = static_cast<uint16_t>(v);
    }
    return t;
}

}  // namespace

MacAddr cluster_mac(ClusterMode mode, const IpAddr& first_v4_vip) {
    const auto a = wxyz(first_v4_vip);
    switch (mode) {
    case ClusterMode::multicast: return MacAddr{{0x03, 0xbf, a[0], a[1], a[2], a[3]}};
    case ClusterMode::igmp: return MacAddr{{0x01, 0x00, 0x5e, 0x7f, a[2], a[3]}};
    case ClusterMode::unicast:
    default: return MacAddr{{0x02, 0xbf, a[0], a[1], a[2], a[3]}};
    }
}

MacAddr unicast_source_mac(HostId self, const IpAddr& first_v4_vip) {
    const auto a = wxyz(first_v4_vip);
    return MacAddr{{0x02, self, a[0], a[1], a[2], a[3]}};
}

std::shared_ptr<const Snapshot> compile_snapshot(const SnapshotInput& in) {
    auto s = std::make_shared<Snapshot>();
    s->epoch = in.epoch;
    s->generation = in.generation;
    s->rules_generation = in.rules_generation;
    s->self = in.self;
    s->started = in.started;
    s->buckets = std::clamp(in.buckets, kMinBuckets, kMaxBuckets);
    s->mode = in.mode;
    s->vips = in.vips;
    s->vip_table = build_vip_table(s->vips);

    const IpAddr mac_ip = mac_source_address(s->vips);
    s->cluster_mac = cluster_mac(in.mode, mac_ip);
    // In the multicast modes the data plane may prefer the port's own MAC;
    // the masked address is still unique per host and never the cluster MAC.
    s->source_mac = unicast_source_mac(in.self, mac_ip);

    // Live members, ascending id, duplicates dropped.
    std::vector<const Member*> members;
    for (const Member& m : in.members)
        if (m.id != kNoHost) members.push_back(&m);
    std::sort(members.begin(), members.end(),
              [](const Member* a, const Member* b) { return a->id < b->id; });
    members.erase(std::unique(members.begin(), members.end(),
                              [](const Member* a, const Member* b) { return a->id == b->id; }),
                  members.end());
    for (const Member* m : members) s->members.push_back(m->id);
    s->default_host = s->members.empty() ? kNoHost : s->members.front();

    const std::vector<PortRule> defaults{default_port_rule()};
    const std::vector<PortRule>& rules = in.rules.empty() ? defaults : in.rules;
    const size_t n = rules.size();
    const uint32_t B = s->buckets;

    // Previous rows by rule identity, usable only with the same bucket count.
    std::unordered_map<uint64_t, size_t> prev_row;
    const Snapshot* prev = in.previous;
    if (prev && prev->buckets == B && prev->owners.size() == prev->rule_ids.size() * B) {
        for (size_t r = 0; r < prev->rule_ids.size(); ++r)
            if (prev->rules.rules[r].mode == FilterMode::multiple)
                prev_row.emplace(prev->rule_ids[r], r);
    }

    RuleTable& t = s->rules;
    t.rules.resize(n);
    t.lists.assign((s->vips.size() + 1) * 2, {});
    s->rule_ids.resize(n);
    s->owners.assign(n * B, kNoHost);
    std::vector<MemberWeight> mw(members.size());

    for (size_t i = 0; i < n; ++i) {
        const PortRule& r = rules[i];
        CompiledRule& c = t.rules[i];
        const uint64_t id = rule_identity(r);
        s->rule_ids[i] = id;
        c.port_lo = r.port_lo;
        c.port_hi = r.port_hi;
        c.mode = r.mode;
        c.affinity = r.affinity;
        c.config_index = static_cast<uint16_t>(i);
        c.hash_seed = rule_seed(id);
        c.affinity_timeout_s = r.affinity_timeout_s;

        // Interval lists. A rule for an address that is not a VIP never matches.
        size_t slot = 0;
        bool listed = true;
        if (r.vip) {
            const uint16_t v = s->vip_index(*r.vip);
            listed = v != kNoVip;
            slot = static_cast<size_t>(v) + 1;
        }
        if (listed) {
            const RuleTable::Interval iv{r.port_lo, r.port_hi, static_cast<uint16_t>(i)};
            if (r.protocol != Protocol::udp) t.lists[slot * 2].push_back(iv);
            if (r.protocol != Protocol::tcp) t.lists[slot * 2 + 1].push_back(iv);
        }

        if (i < in.local_disabled.size() && in.local_disabled[i] != 0) {
            c.mode = FilterMode::disabled;  // this host drops the rule; seed unchanged
        } else if (r.mode == FilterMode::single && i < in.single_owners.size()) {
            c.single_owner = in.single_owners[i];
            c.single_dirty = i < in.single_dirty.size() && in.single_dirty[i] != 0;
        } else if (r.mode == FilterMode::multiple && !in.class_maps.empty()) {
            // Precomputed agreed maps (dynamic membership).
            const uint16_t k = i < in.rule_class.size() ? in.rule_class[i] : kNoClass;
            if (k < in.class_maps.size() && in.class_maps[k].size() == B) {
                std::copy(in.class_maps[k].begin(), in.class_maps[k].end(),
                          s->owners.begin() + static_cast<ptrdiff_t>(i * B));
                if (k < in.class_dirty.size() && in.class_dirty[k].size() == B) {
                    if (s->dirty.empty()) s->dirty.assign(n * B, 0);
                    std::copy(in.class_dirty[k].begin(), in.class_dirty[k].end(),
                              s->dirty.begin() + static_cast<ptrdiff_t>(i * B));
                }
            }
        } else if (r.mode == FilterMode::single) {
            // Best (lowest non-zero) handling priority, else the lowest id.
            HostId best = s->default_host;
            unsigned best_prio = 256;
            for (const Member* m : members) {
                const uint8_t p = priority_of(*m, r, i, in.self);
                if (p != 0 && p < best_prio) {
                    best_prio = p;
                    best = m->id;
                }
            }
            c.single_owner = best;
        } else if (r.mode == FilterMode::multiple) {
            for (size_t k = 0; k < members.size(); ++k)
                mw[k] = MemberWeight{members[k]->id, weight_of(*members[k], r, i)};
            std::vector<HostId> row;
            if (auto it = prev_row.find(id); it != prev_row.end()) {
                const std::span<const HostId> old(prev->owners.data() + it->second * B, B);
                row = rebalance_bucket_map(old, mw, B, c.hash_seed);
            } else {
                row = build_bucket_map(mw, B, c.hash_seed);
            }
            std::copy(row.begin(), row.end(), s->owners.begin() + static_cast<ptrdiff_t>(i * B));
        }
    }
    for (auto& list : t.lists)
        std::sort(list.begin(), list.end(),
                  [](const RuleTable::Interval& a, const RuleTable::Interval& b) { return a.lo < b.lo; });
    // Block index for long lists (short ones are searched directly).
    t.block_base.assign(t.lists.size(), RuleTable::kNoBlocks);
    for (size_t l = 0; l < t.lists.size(); ++l) {
        const auto& list = t.lists[l];
        if (list.size() <= kIndexedListMin) continue;
        t.block_base[l] = static_cast<uint32_t>(t.blocks.size());
        size_t i = 0;
        for (uint32_t k = 0; k <= 256; ++k) {
            while (i < list.size() && list[i].hi < k * 256) ++i;
            t.blocks.push_back(static_cast<uint16_t>(i));
        }
    }

    // ICMP echo: one equal-weight map over the live members.
    std::vector<MemberWeight> eq;
    for (HostId h : s->members) eq.push_back(MemberWeight{h, kEqualWeight});
    if (in.echo_map.size() == B)
        s->echo_owners = in.echo_map;
    else if (prev && prev->echo_owners.size() == B)
        s->echo_owners = rebalance_bucket_map(prev->echo_owners, eq, B, s->echo_seed);
    else
        s->echo_owners = build_bucket_map(eq, B, s->echo_seed);
    return s;
}

}  // namespace nlbd::core
