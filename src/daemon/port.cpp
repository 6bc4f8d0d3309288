#include "nlbd/daemon/port.hpp"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace nlbd::daemon {
namespace {

[[noreturn, gnu::cold]] void fail(const std::string& role, const std::string& device,
                                  const std::string& what, int err) {
    throw PortError("port " + role + " (" + device + "): " + what + ": " +
                    rte_strerror(err < 0 ? -err : err));
}

uint16_t find_port(const std::string& role, const PortDevice& dev) {
    uint16_t port_id = 0;
    if (int rc = rte_eth_dev_get_port_by_name(dev.name.c_str(), &port_id); rc != 0)
        fail(role, dev.device, "no ethdev named '" + dev.name + "' was probed", rc);
    return port_id;
}

// Profile rss_fields -> ethdev RSS hash types. Empty: IPv4 + IPv6 addresses.
// Without "tcp"/"udp" the device is asked for its IP types only; drivers
// that classify TCP/UDP as separate packet types (i40e, ice) then hash those
// on queue 0 only: list "tcp"/"udp" for them (docs/multicore.md). With them,
// unfragmented TCP/UDP hash on the ports too and fragments on addresses,
// exactly like the distributor's flow hash.
uint64_t rss_types(const std::vector<std::string>& fields) {
    bool v4 = fields.empty(), v6 = fields.empty(), tcp = false, udp = false;
    for (const auto& f : fields) {
        v4 |= f == "ipv4";
        v6 |= f == "ipv6";
        tcp |= f == "tcp";
        udp |= f == "udp";
    }
    uint64_t hf = 0;
    if (v4) hf |= RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER;
    if (v6) hf |= RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_FRAG_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_OTHER;
    if (tcp) hf |= (v4 ? RTE_ETH_RSS_NONFRAG_IPV4_TCP : 0) | (v6 ? RTE_ETH_RSS_NONFRAG_IPV6_TCP : 0);
    if (udp) hf |= (v4 ? RTE_ETH_RSS_NONFRAG_IPV4_UDP : 0) | (v6 ? RTE_ETH_RSS_NONFRAG_IPV6_UDP : 0);
    return hf;
}

std::vector<uint8_t> hex_bytes(const std::string& hex) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    return out;
}

}  // namespace

PortCaps port_caps(const std::string& role, const PortDevice& dev) {
    const uint16_t port_id = find_port(role, dev);
    rte_eth_dev_info info;
    if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0)
        fail(role, dev.device, "rte_eth_dev_info_get", rc);
    PortCaps c;
    c.driver = info.driver_name != nullptr ? info.driver_name : "?";
    c.max_rx_queues = info.max_rx_queues;
    c.max_tx_queues = info.max_tx_queues;
    c.rss_offloads = info.flow_type_rss_offloads;
    c.rss_key_size = info.hash_key_size;
    return c;
}

PortInfo open_port(const std::string& role, const PortDevice& dev, const config::NicProfile& nic,
                   bool promiscuous, const QueuePlan& q) {
    PortInfo p;
    p.role = role;
    p.device = dev.device;

    const uint16_t port_id = find_port(role, dev);
    p.port_id = port_id;

    rte_eth_dev_info info;
    if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0)
        fail(role, dev.device, "rte_eth_dev_info_get", rc);
    p.driver = info.driver_name != nullptr ? info.driver_name : "?";
    p.socket = rte_eth_dev_socket_id(port_id);
    const int socket = p.socket < 0 ? SOCKET_ID_ANY : p.socket;

    // Mempool: the cache may not exceed RTE_MEMPOOL_CACHE_MAX_SIZE nor
    // n / 1.5 (rte_mempool_create's rule).
    const unsigned n = std::max<uint32_t>(nic.mempool_size, 1023);
    const unsigned cache =
        std::min<unsigned>({nic.mempool_cache, RTE_MEMPOOL_CACHE_MAX_SIZE, n * 2 / 3});
    const std::string pool_name = "nlbd_" + role;
    p.pool = rte_pktmbuf_pool_create(pool_name.c_str(), n, cache, 0, nic.mbuf_data_room, socket);
    if (p.pool == nullptr)
        fail(role, dev.device, "mbuf pool of " + std::to_string(n) + " x " +
                                   std::to_string(nic.mbuf_data_room) + " bytes",
             rte_errno);

    rte_eth_conf conf;
    std::memset(&conf, 0, sizeof conf);
    if (nic.rx_checksum_offload)
        conf.rxmode.offloads |= info.rx_offload_capa & (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM |
                                                        RTE_ETH_RX_OFFLOAD_UDP_CKSUM |
                                                        RTE_ETH_RX_OFFLOAD_TCP_CKSUM);
    if (nic.tx_checksum_offload)
        conf.txmode.offloads |= info.tx_offload_capa & (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM |
                                                        RTE_ETH_TX_OFFLOAD_UDP_CKSUM |
                                                        RTE_ETH_TX_OFFLOAD_TCP_CKSUM);
    // Frames larger than one mbuf arrive as chains when the device can.
    const uint32_t room = nic.mbuf_data_room > RTE_PKTMBUF_HEADROOM
                              ? uint32_t{nic.mbuf_data_room} - RTE_PKTMBUF_HEADROOM
                              : 0;
    if (room < uint32_t{RTE_ETHER_MAX_LEN} &&
        (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) != 0)
        conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
    if ((info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0)
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    p.rx_offloads = conf.rxmode.offloads;
    p.tx_offloads = conf.txmode.offloads;

    // RSS: the profile's hash types that the device supports, its key when
    // given (the device's default otherwise). Devices without RSS (vdevs)
    // spread by other means or not at all (docs/multicore.md).
    std::vector<uint8_t> key;
    if (q.rss && q.rx > 1 && info.flow_type_rss_offloads != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = rss_types(nic.rss_fields) & info.flow_type_rss_offloads;
        if (!nic.rss_key.empty()) {
            key = hex_bytes(nic.rss_key);
            if (info.hash_key_size != 0 && key.size() != info.hash_key_size)
                throw PortError("port " + role + " (" + dev.device + "): nic.rss_key has " +
                                std::to_string(key.size()) + " bytes, the device wants " +
                                std::to_string(info.hash_key_size));
            conf.rx_adv_conf.rss_conf.rss_key = key.data();
            conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<uint8_t>(key.size());
        }
        p.rss_hf = conf.rx_adv_conf.rss_conf.rss_hf;
    }
    if (q.rx > info.max_rx_queues || q.tx > info.max_tx_queues)
        throw PortError("port " + role + " (" + dev.device + "): " + std::to_string(q.rx) + " RX / " +
                        std::to_string(q.tx) + " TX queues wanted, the device has " +
                        std::to_string(info.max_rx_queues) + " / " + std::to_string(info.max_tx_queues));
    if (int rc = rte_eth_dev_configure(port_id, q.rx, q.tx, &conf); rc != 0)
        fail(role, dev.device,
             "rte_eth_dev_configure (" + std::to_string(q.rx) + " rx, " + std::to_string(q.tx) +
                 " tx queues)",
             rc);
    p.rx_queues = q.rx;
    p.tx_queues = q.tx;

    uint16_t nb_rxd = nic.rx_descriptors;
    uint16_t nb_txd = nic.tx_descriptors;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &nb_rxd, &nb_txd); rc != 0)
        fail(role, dev.device, "rte_eth_dev_adjust_nb_rx_tx_desc", rc);
    p.rx_descriptors = nb_rxd;
    p.tx_descriptors = nb_txd;

    rte_eth_rxconf rxconf = info.default_rxconf;
    rxconf.offloads = conf.rxmode.offloads;
    for (uint16_t i = 0; i < q.rx; ++i)
        if (int rc = rte_eth_rx_queue_setup(port_id, i, nb_rxd, socket, &rxconf, p.pool); rc != 0)
            fail(role, dev.device, "rte_eth_rx_queue_setup (queue " + std::to_string(i) + ")", rc);
    rte_eth_txconf txconf = info.default_txconf;
    txconf.offloads = conf.txmode.offloads;
    for (uint16_t i = 0; i < q.tx; ++i)
        if (int rc = rte_eth_tx_queue_setup(port_id, i, nb_txd, socket, &txconf); rc != 0)
            fail(role, dev.device, "rte_eth_tx_queue_setup (queue " + std::to_string(i) + ")", rc);

    rte_ether_addr mac;
    if (rte_eth_macaddr_get(port_id, &mac) == 0) std::memcpy(p.mac.b.data(), mac.addr_bytes, 6);

    if (int rc = rte_eth_dev_start(port_id); rc != 0)
        fail(role, dev.device, "rte_eth_dev_start", rc);

    if (promiscuous) {
        // Some vdevs (net_pcap on files) have no promiscuous mode and see
        // everything anyway: not an error.
        p.promiscuous = rte_eth_promiscuous_enable(port_id) == 0 &&
                        rte_eth_promiscuous_get(port_id) == 1;
    }
    return p;
}

PortStats port_stats(const PortInfo& p) {
    PortStats s;
    rte_eth_stats st;
    if (rte_eth_stats_get(p.port_id, &st) == 0) {
        s.imissed = st.imissed;
        s.ierrors = st.ierrors;
        s.oerrors = st.oerrors;
        s.rx_nombuf = st.rx_nombuf;
        s.hw_ipackets = st.ipackets;
        s.hw_opackets = st.opackets;
    }
    return s;
}

void stop_port(PortInfo& p) noexcept { rte_eth_dev_stop(p.port_id); }

void close_port(PortInfo& p) noexcept { rte_eth_dev_close(p.port_id); }

void free_pool(PortInfo& p) noexcept {
    if (p.pool != nullptr) rte_mempool_free(p.pool);
    p.pool = nullptr;
}

}  // namespace nlbd::daemon
