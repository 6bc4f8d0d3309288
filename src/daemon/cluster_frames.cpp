#include "nlbd/daemon/cluster_frames.hpp"

#include <cstring>

#include "nlbd/core/snapshot.hpp"

namespace nlbd::daemon {
namespace {

uint16_t inet_checksum(const uint8_t* p, size_t n) {
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1) s += static_cast<uint32_t>(p[n - 1] << 8);
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(~s);
}

}  // namespace

namespace {

// IGMPv2 message `type` about 239.255.y.z, to the IPv4 group `dst_ip` (and
// its 01-00-5e MAC): 14 + 24 (IPv4 with router alert) + 8 bytes.
std::vector<uint8_t> igmp_v2_frame(uint8_t type, const uint8_t group[4], const uint8_t dst_ip[4],
                                   const MacAddr& src_mac, const std::optional<IpAddr>& src_ip) {
    std::vector<uint8_t> f(14 + 24 + 8, 0);
    const uint8_t dst[6] = {0x01, 0x00, 0x5e, static_cast<uint8_t>(dst_ip[1] & 0x7f), dst_ip[2], dst_ip[3]};
    std::memcpy(f.data(), dst, 6);
    std::memcpy(f.data() + 6, src_mac.b.data(), 6);
    f[12] = 0x08;
    f[13] = 0x00;
    uint8_t* ip = f.data() + 14;
    ip[0] = 0x46;  // version 4, IHL 6 (router alert option)
    ip[1] = 0xc0;  // DSCP CS6 (network control)
    ip[3] = 32;    // total length: 24 + 8
    ip[8] = 1;     // TTL
    ip[9] = 2;     // IGMP
    if (src_ip && src_ip->family == Family::v4) std::memcpy(ip + 12, src_ip->b.data(), 4);
    std::memcpy(ip + 16, dst_ip, 4);
    ip[20] = 0x94;  // router alert, length 4, value 0
    ip[21] = 0x04;
    const uint16_t ipsum = inet_checksum(ip, 24);
    ip[10] = static_cast<uint8_t>(ipsum >> 8);
    ip[11] = static_cast<uint8_t>(ipsum);
    uint8_t* igmp = ip + 24;
    igmp[0] = type;
    std::memcpy(igmp + 4, group, 4);
    const uint16_t sum = inet_checksum(igmp, 8);
    igmp[2] = static_cast<uint8_t>(sum >> 8);
    igmp[3] = static_cast<uint8_t>(sum);
    return f;
}

}  // namespace

std::vector<uint8_t> igmp_v2_report(const IpAddr& vip, const MacAddr& src_mac,
                                    const std::optional<IpAddr>& src_ip) {
    if (vip.family != Family::v4) return {};
    const uint8_t group[4] = {239, 255, vip.b[2], vip.b[3]};
    return igmp_v2_frame(0x16, group, group, src_mac, src_ip);  // v2 membership report, to the group
}

std::vector<uint8_t> igmp_v2_leave(const IpAddr& vip, const MacAddr& src_mac,
                                   const std::optional<IpAddr>& src_ip) {
    if (vip.family != Family::v4) return {};
    const uint8_t group[4] = {239, 255, vip.b[2], vip.b[3]};
    const uint8_t all_routers[4] = {224, 0, 0, 2};
    return igmp_v2_frame(0x17, group, all_routers, src_mac, src_ip);  // leave group (RFC 2236 §3)
}

std::vector<size_t> select_rules(const std::vector<PortRule>& rules, const std::optional<IpAddr>& vip,
                                 bool all_ports, uint16_t port) {
    std::vector<size_t> out;
    for (size_t i = 0; i < rules.size(); ++i) {
        const PortRule& r = rules[i];
        if (vip && r.vip && !(*r.vip == *vip)) continue;
        if (!all_ports && (port < r.port_lo || port > r.port_hi)) continue;
        out.push_back(i);
    }
    return out;
}

}  // namespace nlbd::daemon
