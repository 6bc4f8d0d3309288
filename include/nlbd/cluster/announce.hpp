#pragma once
// VIP announcement over BGP through a routing daemon (SPEC §11,
// docs/scale-out.md): the pure part. Which VIPs this host announces now
// (the gate), whether a drainstop must withdraw first (last started host),
// and the BIRD 2 include file that carries the announcement. No I/O: the
// daemon's Announcer writes the file and runs birdc.
//
// Every host runs its own BIRD peering with the routers and announces a VIP
// only while it is started, converged and serving every rule of that VIP
// (enabled on this host, health check not down). The routers then have the
// route while at least one host of the cluster announces it.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nlbd/cluster/membership.hpp"
#include "nlbd/core/types.hpp"

namespace nlbd::cluster {

// One port rule as the gate sees it on this host.
struct AnnounceRule {
    bool all_vips = false;  // vip = "all": applies to every VIP
    IpAddr vip;             // when !all_vips
    bool serving = false;   // enabled on this host and its health check not down
};

struct AnnounceInput {
    bool started = false;          // host state started (not draining, stopped, suspended)
    bool converged = false;        // this host's view is converged (as default or not)
    bool announcing = false;       // this host announced something last time
    uint64_t converging_ms = 0;    // how long the view has not been converged
    uint32_t converging_grace_ms = 0;
    bool withdrawing = false;      // drainstop of the last host: withdraw first
    bool link_up = true;           // the wire link: a host cut off its segment serves nothing
};

// Whether the host state and convergence allow announcing at all: started,
// wire link up, not withdrawing, and converged, or re-converging for at most
// the grace while it already announced.
bool announce_allowed(const AnnounceInput& in) noexcept;

// The VIPs of `vips` (config order) that this host announces: every VIP at
// least one rule applies to and whose every applying rule is serving, when
// announce_allowed(in).
std::vector<IpAddr> announced_vips(std::span<const IpAddr> vips, std::span<const AnnounceRule> rules,
                                   const AnnounceInput& in);

// Whether a drainstop of this host removes the cluster's last started host
// (every other live peer of the view is not started): then the VIPs are
// withdrawn first and the drain waits announce.withdraw_delay_ms.
bool last_started_host(std::span<const PeerStatus> peers, HostId self) noexcept;

// Names used in the include file; the operator's bird.conf exports with
// `export filter nlbd_export;` (docs/scale-out.md).
inline constexpr std::string_view kBirdProtocol = "nlbd_announce";
inline constexpr std::string_view kBirdFilter = "nlbd_export";

// The BIRD 2 include file: a static protocol with one blackhole /32 per
// announced VIP (none: an empty protocol, every route withdrawn) and a
// filter that accepts only those routes with BGP next hop `next_hop`.
// `origin` goes into the header comment (cluster, host). IPv4 only.
std::string render_bird_include(std::span<const IpAddr> announced, const IpAddr& next_hop,
                                std::string_view origin);

}  // namespace nlbd::cluster
