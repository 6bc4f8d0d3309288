// NIC profile parsing and validation (SPEC §7): the tuning of one NIC kind,
// kept apart from the cluster policy.

#include <filesystem>
#include <string>

#include "nlbd/config/config.hpp"
#include "nlbd/core/rule_schema.hpp"
#include "reader.hpp"

namespace nlbd::config {

namespace {

using detail::Section;

constexpr unsigned kMinQueues = 1, kMaxQueues = 128;
constexpr unsigned kMinDescriptors = 64, kMaxDescriptors = 16384;
constexpr unsigned kMaxBurst = 512;
constexpr unsigned kMinMempool = 256, kMaxMempool = 1u << 24;
constexpr unsigned kMaxMempoolCache = 512;    // RTE_MEMPOOL_CACHE_MAX_SIZE
constexpr unsigned kMbufHeadroom = 128;       // RTE_PKTMBUF_HEADROOM
constexpr unsigned kMinDataRoom = kMbufHeadroom + 1518;  // one full Ethernet frame per mbuf
constexpr unsigned kRssKeyShort = 40, kRssKeyLong = 52;  // bytes (ixgbe/mlx5, i40e/ice)

constexpr const char* kRssKeyAllowed =
    "a hex string of 40 bytes (80 hex digits) or 52 bytes (104 hex digits), or \"\" for the driver default";
constexpr const char* kRssFieldsAllowed = "an array of distinct values ipv4, ipv6, tcp, udp";

// May the data plane run an RX distributor lcore with worker rings? Always
// with dispatch = "distributor"; with "auto" only when there are several
// workers (one worker is always run to completion), and then the check below
// assumes the worst case, because only the opened port tells which one auto
// picks.
bool may_distribute(const NicProfile& nic) {
    return nic.dispatch == DispatchMode::distributor ||
           (nic.dispatch == DispatchMode::auto_ && nic.workers > 1);
}

bool is_power_of_two(unsigned v) { return v != 0 && (v & (v - 1)) == 0; }

bool is_hex(const std::string& s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    return true;
}

class NicChecker {
public:
    explicit NicChecker(const NicProfile& nic) : nic_(nic) {}

    [[noreturn]] void fail(const std::string& key, const std::string& wrong, const std::string& allowed) const {
        auto it = nic_.lines.find(key);
        unsigned line = it != nic_.lines.end() ? it->second : 0;
        if (line == 0) {
            auto n = nic_.lines.find("nic");
            line = n != nic_.lines.end() ? n->second : 0;
        }
        detail::fail(nic_.file, line, key, wrong, allowed);
    }
    void range(const std::string& key, int64_t v, int64_t lo, int64_t hi) const {
        if (v < lo || v > hi)
            fail(key, std::to_string(v) + " is out of range",
                 "an integer " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    void descriptors(const std::string& key, unsigned v) const {
        if (v < kMinDescriptors || v > kMaxDescriptors || !is_power_of_two(v))
            fail(key, std::to_string(v) + " is not a power of two in range",
                 "a power of two " + std::to_string(kMinDescriptors) + ".." + std::to_string(kMaxDescriptors));
    }

    void check() const {
        range("nic.workers", nic_.workers, 1, kMaxWorkers);
        range("nic.rx_queues", nic_.rx_queues, kMinQueues, kMaxQueues);
        range("nic.tx_queues", nic_.tx_queues, kMinQueues, kMaxQueues);
        check_dispatch();
        descriptors("nic.rx_descriptors", nic_.rx_descriptors);
        descriptors("nic.tx_descriptors", nic_.tx_descriptors);
        range("nic.burst", nic_.burst, 1, kMaxBurst);
        if (nic_.burst > nic_.rx_descriptors)
            fail("nic.burst", std::to_string(nic_.burst) + " exceeds rx_descriptors (" +
                                  std::to_string(nic_.rx_descriptors) + ")",
                 "1..512 and at most rx_descriptors");
        range("nic.mempool_size", nic_.mempool_size, kMinMempool, kMaxMempool);
        range("nic.mempool_cache", nic_.mempool_cache, 0, kMaxMempoolCache);
        // DPDK refuses a cache larger than size / 1.5 (rte_mempool_create).
        if (uint64_t{nic_.mempool_cache} * 3 > uint64_t{nic_.mempool_size} * 2)
            fail("nic.mempool_cache",
                 std::to_string(nic_.mempool_cache) + " is more than mempool_size / 1.5 (" +
                     std::to_string(nic_.mempool_size * 2 / 3) + ")",
                 "0..512 and at most mempool_size / 1.5");
        check_mempool_size();
        range("nic.mbuf_data_room", nic_.mbuf_data_room, kMinDataRoom, 65535);
        if (!nic_.rss_key.empty()) {
            const size_t n = nic_.rss_key.size();
            if (!is_hex(nic_.rss_key) || (n != 2 * kRssKeyShort && n != 2 * kRssKeyLong))
                fail("nic.rss_key",
                     is_hex(nic_.rss_key) ? std::to_string(n) + " hex digits" : std::string("is not hexadecimal"),
                     kRssKeyAllowed);
        }
        for (size_t i = 0; i < nic_.rss_fields.size(); ++i) {
            const std::string key = "nic.rss_fields[" + std::to_string(i + 1) + "]";
            const std::string& f = nic_.rss_fields[i];
            if (f != "ipv4" && f != "ipv6" && f != "tcp" && f != "udp")
                fail(key, detail::quote(f) + " is not an RSS field", kRssFieldsAllowed);
            for (size_t j = 0; j < i; ++j)
                if (nic_.rss_fields[j] == f) fail(key, detail::quote(f) + " is listed twice", kRssFieldsAllowed);
        }
    }

private:
    // rss: every worker needs at least one wire RX queue of its own (extra
    // queues are shared round-robin). distributor: the RX lcore reads the one
    // wire queue, so more queues would hold frames that nobody polls.
    void check_dispatch() const {
        if (nic_.dispatch == DispatchMode::rss && nic_.rx_queues < nic_.workers)
            fail("nic.dispatch",
                 "\"rss\" with rx_queues = " + std::to_string(nic_.rx_queues) + " < workers = " +
                     std::to_string(nic_.workers),
                 "dispatch = \"rss\" with rx_queues >= workers (one or more wire RX queues per "
                 "worker), or dispatch = \"distributor\" / \"auto\"");
        if (nic_.dispatch == DispatchMode::distributor && nic_.rx_queues != 1)
            fail("nic.rx_queues",
                 std::to_string(nic_.rx_queues) + " RX queues with dispatch = \"distributor\"",
                 "rx_queues = 1 with dispatch = \"distributor\" (its RX lcore reads one wire queue), "
                 "or dispatch = \"rss\" / \"auto\" for several queues");
    }

    // The pool must cover every mbuf that can be parked outside it at once:
    // one per RX and TX descriptor, a full cache plus a burst in flight per
    // lcore that allocates or frees (the workers, and the distributor's RX
    // lcore), and, with a distributor, every slot of its worker rings. A
    // smaller pool starves RX. Worst case for dispatch = "auto" (see
    // may_distribute). TX hand-off rings to worker 0 (a device with fewer TX
    // queues than workers) are not counted: their size is the data plane's.
    void check_mempool_size() const {
        const bool dist = may_distribute(nic_);
        const uint64_t lcores = uint64_t{nic_.workers} + (dist ? 1 : 0);
        const uint64_t ring_slots = dist ? uint64_t{nic_.workers} * kDistributorRingSize : 0;
        const uint64_t need = uint64_t{nic_.rx_queues} * nic_.rx_descriptors +
                              uint64_t{nic_.tx_queues} * nic_.tx_descriptors +
                              lcores * (nic_.mempool_cache + nic_.burst) + ring_slots;
        if (nic_.mempool_size >= need) return;
        std::string formula = "rx_queues*rx_descriptors + tx_queues*tx_descriptors + ";
        formula += dist ? "(workers+1)*(mempool_cache+burst) + workers*" + std::to_string(kDistributorRingSize) +
                              " distributor ring slots"
                        : std::string("workers*(mempool_cache+burst)");
        fail("nic.mempool_size",
             std::to_string(nic_.mempool_size) + " mbufs cannot fill the rings and caches",
             "at least " + formula + " = " + std::to_string(need));
    }

    const NicProfile& nic_;
};

}  // namespace

void validate(const NicProfile& nic) { NicChecker(nic).check(); }

std::string_view name_of(HealthKind k) noexcept { return kHealthKindNames[size_t(k)]; }

const char* initial_state_name(InitialState s) {
    switch (s) {
    case InitialState::started: return "started";
    case InitialState::stopped: return "stopped";
    case InitialState::suspended: return "suspended";
    }
    return "?";
}

const char* dispatch_name(DispatchMode mode) {
    switch (mode) {
        case DispatchMode::rss: return "rss";
        case DispatchMode::distributor: return "distributor";
        case DispatchMode::auto_: break;
    }
    return "auto";
}

NicProfile load_nic_profile(const std::string& file) {
    const toml::table root_table = detail::parse_toml_file(file);
    NicProfile nic;
    nic.file = file;
    nic.name = std::filesystem::path(file).stem().string();
    const Section root(file, nic.lines, root_table, "", 0, {"nic", "eal"});
    if (auto n = root.table("nic", {"name", "workers", "dispatch", "rx_queues", "tx_queues", "rx_descriptors", "tx_descriptors",
                                    "burst", "mempool_size", "mempool_cache", "mbuf_data_room",
                                    "rx_checksum_offload", "tx_checksum_offload", "promiscuous",
                                    "rss_key", "rss_fields"})) {
        if (auto v = n->string("name", "a profile name such as \"intel-ice\"")) {
            if (v->empty()) n->fail("name", "is empty", "a profile name such as \"intel-ice\"");
            nic.name = *v;
        }
        // Wide bounds here (type safety); the real ranges are checked by
        // validate(), which knows the cross-field rules.
        if (auto v = n->integer("workers", 1, kMaxWorkers)) nic.workers = static_cast<uint16_t>(*v);
        if (auto v = n->choice<DispatchMode>("dispatch", {{"auto", DispatchMode::auto_},
                                                          {"rss", DispatchMode::rss},
                                                          {"distributor", DispatchMode::distributor}}))
            nic.dispatch = *v;
        if (auto v = n->integer("rx_queues", kMinQueues, kMaxQueues)) nic.rx_queues = static_cast<uint16_t>(*v);
        if (auto v = n->integer("tx_queues", kMinQueues, kMaxQueues)) nic.tx_queues = static_cast<uint16_t>(*v);
        auto desc = [&](std::string_view key, uint16_t& out) {
            if (auto v = n->integer(key, kMinDescriptors, kMaxDescriptors)) {
                if (!is_power_of_two(static_cast<unsigned>(*v)))
                    n->fail(key, std::to_string(*v) + " is not a power of two",
                            "a power of two " + std::to_string(kMinDescriptors) + ".." +
                                std::to_string(kMaxDescriptors));
                out = static_cast<uint16_t>(*v);
            }
        };
        desc("rx_descriptors", nic.rx_descriptors);
        desc("tx_descriptors", nic.tx_descriptors);
        if (auto v = n->integer("burst", 1, kMaxBurst)) nic.burst = static_cast<uint16_t>(*v);
        if (auto v = n->integer("mempool_size", kMinMempool, kMaxMempool)) nic.mempool_size = static_cast<uint32_t>(*v);
        if (auto v = n->integer("mempool_cache", 0, kMaxMempoolCache)) nic.mempool_cache = static_cast<uint32_t>(*v);
        if (auto v = n->integer("mbuf_data_room", kMinDataRoom, 65535)) nic.mbuf_data_room = static_cast<uint16_t>(*v);
        if (auto v = n->boolean("rx_checksum_offload")) nic.rx_checksum_offload = *v;
        if (auto v = n->boolean("tx_checksum_offload")) nic.tx_checksum_offload = *v;
        if (auto v = n->boolean("promiscuous")) nic.promiscuous = *v;
        if (auto v = n->string("rss_key", kRssKeyAllowed)) nic.rss_key = *v;
        if (const toml::array* a = n->array("rss_fields", kRssFieldsAllowed)) {
            for (size_t i = 0; i < a->size(); ++i) {
                nic.rss_fields.push_back(detail::element_string(*n, "rss_fields", *a, i, kRssFieldsAllowed));
                nic.lines.emplace(detail::element_path(*n, "rss_fields", i),
                                  detail::element_line(*n, "rss_fields", (*a)[i]));
            }
        }
    }
    if (auto e = root.table("eal", {"args"})) {
        if (const toml::array* a = e->array("args", "an array of strings (EAL options)"))
            for (size_t i = 0; i < a->size(); ++i)
                nic.eal_args.push_back(detail::element_string(*e, "args", *a, i, "strings (EAL options)"));
    }
    validate(nic);
    return nic;
}

}  // namespace nlbd::config
