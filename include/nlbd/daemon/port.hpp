#pragma once
// Port bring-up and tear-down (control plane; may throw PortError).
// The queue counts come from the dispatch plan (docs/multicore.md); the NIC
// profile gives descriptors, mempool, RSS and offloads. Offloads and RSS hash
// types are requested only when the device reports the capability
// (rte_eth_dev_info_get).

#include <cstdint>
#include <stdexcept>
#include <string>

#include "nlbd/config/config.hpp"
#include "nlbd/core/types.hpp"
#include "nlbd/daemon/eal_args.hpp"

struct rte_mempool;

namespace nlbd::daemon {

class PortError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct PortInfo {
    std::string role;      // "wire" / "local"
    std::string device;    // as configured
    uint16_t port_id = 0;
    int socket = -1;       // NUMA node, -1 = any
    std::string driver;
    MacAddr mac;
    uint16_t rx_descriptors = 0;
    uint16_t tx_descriptors = 0;
    uint64_t rx_offloads = 0;
    uint64_t tx_offloads = 0;
    bool promiscuous = false;
    uint16_t rx_queues = 1;
    uint16_t tx_queues = 1;
    uint64_t rss_hf = 0;   // RSS hash types configured (0: no RSS)
    rte_mempool* pool = nullptr;
};

// What the device offers, read before configuring it.
struct PortCaps {
    std::string driver;
    uint16_t max_rx_queues = 1;
    uint16_t max_tx_queues = 1;
    uint64_t rss_offloads = 0;   // flow_type_rss_offloads
    uint8_t rss_key_size = 0;
};
// Throws PortError when no ethdev was probed for dev.
PortCaps port_caps(const std::string& role, const PortDevice& dev);

struct QueuePlan {
    uint16_t rx = 1;
    uint16_t tx = 1;
    bool rss = false;  // configure RSS over the RX queues (when the device has it)
};

// Finds the ethdev probed for `dev`, creates its mempool on the port's
// socket, configures q.rx RX / q.tx TX queues (RSS from the profile's
// rss_key / rss_fields when q.rss and the device has RSS) and starts it.
// Throws PortError naming the role, the device and the DPDK error.
PortInfo open_port(const std::string& role, const PortDevice& dev, const config::NicProfile& nic,
                   bool promiscuous, const QueuePlan& q = {});

struct PortStats {
    uint64_t imissed = 0;
    uint64_t ierrors = 0;
    uint64_t oerrors = 0;
    uint64_t rx_nombuf = 0;
    uint64_t hw_ipackets = 0;
    uint64_t hw_opackets = 0;
};
PortStats port_stats(const PortInfo& p);

// Tear-down, in this order for both ports: stop_port (no more RX/TX),
// close_port (net_pcap writes out its tx_pcap here), free_pool (only once no
// port can hold an mbuf of it: frames cross between the two ports' pools).
void stop_port(PortInfo& p) noexcept;
void close_port(PortInfo& p) noexcept;
void free_pool(PortInfo& p) noexcept;

}  // namespace nlbd::daemon
