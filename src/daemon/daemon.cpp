// The nlbd daemon (daemon.hpp): its parts, started in declaration order and
// stopped in reverse.

#include "nlbd/daemon/daemon.hpp"
#include "nlbd/log/log.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pdump.h>
#include <rte_ring.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <random>

#include "nlbd/ctl/server.hpp"
#include "nlbd/ctl/tls_server.hpp"
#include "nlbd/daemon/eal_args.hpp"
#include "nlbd/daemon/placement.hpp"
#include "nlbd/daemon/prometheus.hpp"
#include "nlbd/health/checker.hpp"

namespace nlbd::daemon {

namespace {

// Connection tables on the EAL's hugepage heap, on the NUMA socket of the
// lcore that builds them (each worker is built on its own lcore).
void* conn_table_alloc(size_t bytes, void*) {
    return rte_malloc_socket("nlbd_conn_table", bytes, RTE_CACHE_LINE_SIZE, static_cast<int>(rte_socket_id()));
}
void conn_table_free(void* p, void*) { rte_free(p); }

const char* backing_name(core::TableBacking b) {
    switch (b) {
    case core::TableBacking::allocator: return "hugepages (EAL, the worker's socket)";
    case core::TableBacking::mapping: return "anonymous mapping (transparent huge pages requested)";
    case core::TableBacking::heap: return "heap (4 KiB pages)";
    }
    return "?";
}

// Signals only set a flag; the control loop turns it into a stop or a reload.
std::atomic<bool> g_signal{false};
std::atomic<bool> g_reload{false};  // SIGHUP: systemctl reload, log rotation
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_signal(int) { g_signal.store(true, std::memory_order_relaxed); }
extern "C" void on_hangup(int) { g_reload.store(true, std::memory_order_relaxed); }

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& a : v) {
        if (!s.empty()) s += ' ';
        s += a;
    }
    return s;
}

const char* idle_name(config::IdlePolicy p) {
    return p == config::IdlePolicy::poll ? "poll" : "adaptive";
}

// Data-plane lcores to ask placement for before EAL exists: the workers, and
// one RX distributor when it will (probably) be needed. auto mode is
// resolved later from the port's capabilities; before that, a PCI NIC is
// assumed to have RSS and a vdev not (docs/multicore.md).
unsigned data_lcores_wanted(const config::NicProfile& nic, const PortDevice& wire) {
    const unsigned w = std::max<unsigned>(nic.workers, 1);
    const bool distributor = nic.dispatch == config::DispatchMode::distributor ||
                             (nic.dispatch == config::DispatchMode::auto_ && w > 1 && !wire.is_pci);
    return w + (distributor ? 1 : 0);
}

uint32_t no_huge_memory_mb(const config::NicProfile& nic) {
    // Two pools of mempool_size mbufs (data room + mbuf header + mempool
    // overhead), plus room for rings, the fragment table and EAL itself.
    // Without hugepages memory comes in 4 KiB pages and a mempool object
    // never crosses a page: a default mbuf (~2.4 KB) takes a whole page.
    const uint64_t object = uint64_t{nic.mbuf_data_room} + 256;
    const uint64_t per_page = std::max<uint64_t>(1, 4096 / object);
    const uint64_t per_mbuf = object > 4096 ? object : 4096 / per_page;
    const uint64_t pools_mb = (2 * uint64_t{nic.mempool_size} * per_mbuf) >> 20;
    return static_cast<uint32_t>(std::max<uint64_t>(256, pools_mb + 160));
}

constexpr unsigned kDistributorRing = 1024;  // frames queued per worker
constexpr unsigned kTxRing = 1024;

// Runs fn on `lcore` (an idle EAL worker lcore) and waits for it; an
// exception thrown there is rethrown here as a StartError.
void run_on_lcore(unsigned lcore, const std::function<void()>& fn) {
    struct Job {
        const std::function<void()>* fn;
        std::string error;
    } job{&fn, {}};
    auto trampoline = [](void* arg) -> int {
        auto* j = static_cast<Job*>(arg);
        try {
            (*j->fn)();
        } catch (const std::exception& e) {
            j->error = e.what();
        }
        return 0;
    };
    if (rte_eal_remote_launch(trampoline, &job, lcore) != 0)
        throw StartError("cannot launch a job on lcore " + std::to_string(lcore));
    rte_eal_wait_lcore(lcore);
    if (!job.error.empty()) throw StartError("lcore " + std::to_string(lcore) + ": " + job.error);
}

}  // namespace

void install_signal_handlers() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sa.sa_handler = on_hangup;
    sigaction(SIGHUP, &sa, nullptr);
}

DispatchPlan plan_dispatch(const config::NicProfile& nic, const PortCaps& wire, const PortCaps& local,
                           const std::vector<unsigned>& lcores) {
    DispatchPlan p;
    const unsigned wanted = std::max<unsigned>(nic.workers, 1);
    using M = config::DispatchMode;
    M mode = nic.dispatch;
    if (mode == M::auto_)
        mode = wanted == 1 || (wire.rss_offloads != 0 && wire.max_rx_queues >= wanted) ? M::rss
                                                                                      : M::distributor;
    if (mode == M::rss && wire.max_rx_queues < wanted)
        throw PortError("dispatch rss: the wire port (" + wire.driver + ") has " +
                        std::to_string(wire.max_rx_queues) + " RX queues, nic.workers = " +
                        std::to_string(wanted) + " (use dispatch = \"distributor\")");
    if (mode == M::rss && wanted > 1 && wire.rss_offloads == 0)
        p.notes.push_back("the wire port (" + wire.driver +
                          ") reports no RSS: each RX queue must already carry whole flows "
                          "(af_packet: kernel fanout hash; pcap: one file per queue)");
    unsigned workers = wanted;
    if (mode == M::distributor) {
        if (lcores.size() < 2) {
            p.notes.push_back("distributor mode needs 2 lcores besides the main one, EAL gave " +
                              std::to_string(lcores.size()) + ": one worker, no distributor");
            mode = M::rss;
            workers = 1;
        } else {
            workers = std::min<unsigned>(workers, static_cast<unsigned>(lcores.size()) - 1);
            p.distributor_lcore = static_cast<int>(lcores[0]);
            p.worker_lcores.assign(lcores.begin() + 1, lcores.begin() + 1 + workers);
        }
    }
    if (mode == M::rss) {
        workers = std::min<unsigned>(workers, std::max<size_t>(lcores.size(), 1));
        p.worker_lcores.assign(lcores.begin(), lcores.begin() + std::min<size_t>(workers, lcores.size()));
    }
    if (workers < wanted)
        p.notes.push_back("nic.workers = " + std::to_string(wanted) + " but only " +
                          std::to_string(workers) + " worker lcore(s) available");
    p.mode = mode;
    p.workers = workers;
    if (mode == M::rss) {
        const unsigned rxq = std::max<unsigned>(workers, std::min<unsigned>(nic.rx_queues, wire.max_rx_queues));
        p.wire.rx = static_cast<uint16_t>(rxq);
        p.wire.rss = rxq > 1;
    } else {
        p.wire.rx = 1;
    }
    p.wire.tx = static_cast<uint16_t>(wire.max_tx_queues >= workers ? workers : 1);
    p.local.rx = static_cast<uint16_t>(std::min<unsigned>(workers, std::max<uint16_t>(local.max_rx_queues, 1)));
    p.local.tx = static_cast<uint16_t>(local.max_tx_queues >= workers ? workers : 1);
    return p;
}

// --- EAL ----------------------------------------------------------------

Eal::Eal(const Options& opt, const config::Config& cfg, const char* program) {
    const PortDevice wire_dev = port_device(cfg.wire.device);
    const PortDevice local_dev = port_device(cfg.local.device);
    EalEnvironment env = probe_environment();
    env.no_huge_memory_mb = no_huge_memory_mb(cfg.nic);
    env.file_prefix = "nlbd-" + std::to_string(cfg.host.id);
    if (!env.hugepages_available && has_option(opt.eal, {"--in-memory"}) && !has_option(opt.eal, {"--no-huge"}))
        NLBD_LOG(warning, "no free hugepages; --in-memory needs them");
    // Placement (docs/placement.md): unless the user or the NIC profile
    // pinned the lcores, hwloc picks them (workers on the wire NIC's NUMA
    // node, one per physical core; control on another core).
    std::vector<std::string> given = opt.eal;
    given.insert(given.end(), cfg.nic.eal_args.begin(), cfg.nic.eal_args.end());
    if (!has_option(given, {"-l", "--lcores", "-c"}) && !env.cpus.empty()) {
        Topology topo;
        topo.allowed = env.cpus;
        topo.nic = wire_dev.name;
        std::string err;
        if (read_topology(wire_dev.is_pci ? wire_dev.name : "", topo, err)) {
            const Placement pl = plan_placement(topo, data_lcores_wanted(cfg.nic, wire_dev));
            env.lcores.push_back(pl.control);
            env.lcores.insert(env.lcores.end(), pl.workers.begin(), pl.workers.end());
            NLBD_LOG(info, "%s", pl.description.c_str());
        } else {
            NLBD_LOG(warning, "placement: hwloc failed (%s); lcores from the affinity mask",
                         err.c_str());
        }
    }
    args_ = build_eal_args(program, opt.eal, cfg.nic.eal_args, wire_dev, local_dev, env);
    // DPDK telemetry (docs/telemetry.md): its socket lives in the EAL runtime
    // directory /var/run/dpdk/<file-prefix>/; a prefix per host makes
    // `dpdk-telemetry.py -f nlbd-<host id>` find this daemon even when
    // several run on one machine.
    if (!cfg.telemetry.dpdk_telemetry) {
        if (!has_option(args_, {"--no-telemetry"})) args_.emplace_back("--no-telemetry");
    } else if (!has_option(args_, {"--file-prefix", "--no-telemetry"})) {
        args_.push_back("--file-prefix=nlbd-" + std::to_string(cfg.host.id));
    }
    NLBD_LOG(info, "EAL args: %s%s", join(args_).c_str(),
                 env.hugepages_available ? "" : "  (no hugepages: --no-huge fallback)");
    std::vector<std::string> scratch = args_;  // rte_eal_init may permute argv
    std::vector<char*> argv;
    for (auto& a : scratch) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(scratch.size()), argv.data()) < 0)
        throw StartError(std::string("EAL initialisation failed: ") + rte_strerror(rte_errno));
    // Packet capture (dpdk-dumpcap) by a secondary process: only with a
    // shared configuration (hugepages; not --in-memory or --no-shconf). Costs
    // nothing until a capture starts: then pdump adds RX/TX callbacks to the
    // captured queues.
    const bool shared = !has_option(args_, {"--in-memory", "--no-shconf"});
    if (shared && rte_pdump_init() == 0) {
        pdump_ = true;
        std::string prefix = "rte";
        for (const auto& a : args_)
            if (a.rfind("--file-prefix=", 0) == 0) prefix = a.substr(14);
        NLBD_LOG(info, "packet capture: dpdk-dumpcap --file-prefix=%s -i <port id> -w FILE.pcapng",
                     prefix.c_str());
    } else {
        NLBD_LOG(info, "packet capture (dpdk-dumpcap): %s",
                     shared ? rte_strerror(rte_errno)
                            : "unavailable without a shared EAL configuration (no hugepages, or --in-memory)");
    }
}

Eal::~Eal() {
    if (pdump_) rte_pdump_uninit();
    rte_eal_cleanup();
}

// --- ports --------------------------------------------------------------

Ports::Ports(const config::Config& cfg) {
    std::vector<unsigned> data_lcores;
    for (unsigned l = rte_get_next_lcore(-1, 1, 0); l < RTE_MAX_LCORE; l = rte_get_next_lcore(l, 1, 0))
        data_lcores.push_back(l);
    const PortDevice wire_dev = port_device(cfg.wire.device);
    const PortDevice local_dev = port_device(cfg.local.device);
    try {
        plan = plan_dispatch(cfg.nic, port_caps("wire", wire_dev), port_caps("local", local_dev), data_lcores);
        wire = open_port("wire", wire_dev, cfg.nic, cfg.nic.promiscuous, plan.wire);
        open_ = true;  // from here on the destructor closes both (closing an unopened one is harmless)
        local = open_port("local", local_dev, cfg.nic, false, plan.local);
    } catch (const PortError& e) {
        release();  // a constructor that throws runs no destructor of its own
        throw StartError(e.what());
    }
    for (const PortInfo* p : {&wire, &local}) {
        char rss[40] = "";
        if (p->rss_hf != 0)
            std::snprintf(rss, sizeof rss, ", RSS types 0x%llx", static_cast<unsigned long long>(p->rss_hf));
        NLBD_LOG(info,
                     "port %-5s id %u driver %s MAC %s socket %d, %u rxq x %u rxd / %u txq x "
                     "%u txd, offloads rx 0x%llx tx 0x%llx%s%s",
                     p->role.c_str(), p->port_id, p->driver.c_str(), p->mac.to_string().c_str(),
                     p->socket, p->rx_queues, p->rx_descriptors, p->tx_queues, p->tx_descriptors,
                     static_cast<unsigned long long>(p->rx_offloads),
                     static_cast<unsigned long long>(p->tx_offloads), rss,
                     p->promiscuous ? ", promiscuous" : "");
    }
}

void Ports::close(PortStats& wire_hw, PortStats& local_hw) noexcept {
    if (!open_) return;
    open_ = false;
    stop_port(wire);
    stop_port(local);
    wire_hw = port_stats(wire);
    local_hw = port_stats(local);
    close_port(wire);
    close_port(local);
}

void Ports::release() noexcept {
    PortStats ignored_wire, ignored_local;
    close(ignored_wire, ignored_local);
    // Only once no port and no ring can hold an mbuf: frames cross between
    // the two ports' pools.
    free_pool(wire);
    free_pool(local);
}

Ports::~Ports() { release(); }

// --- data plane ---------------------------------------------------------

DataPlane::DataPlane(const config::Config& cfg, const Ports& ports, SnapshotPublisher& publisher,
                     ClusterControl& cluster, const std::atomic<config::IdlePolicy>& idle)
    : plan_(ports.plan) {
    const unsigned n = plan_.workers;
    const PortInfo& wire = ports.wire;
    const PortInfo& local = ports.local;
    const int socket = wire.socket < 0 ? SOCKET_ID_ANY : wire.socket;
    const std::string tag = std::to_string(cfg.host.id);
    for (const auto& f : cfg.nic.rss_fields) l4_hash_ |= f == "tcp" || f == "udp";
    wire_tx_shared_ = wire.tx_queues == 1;
    auto make_ring = [&](const std::string& name, unsigned size) {
        rte_ring* r = rte_ring_create(name.c_str(), size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (r == nullptr) throw StartError("cannot create ring " + name + ": " + rte_strerror(rte_errno));
        rings_.push_back(r);
        return r;
    };
    try {
        dp::DistributorConfig dc;
        std::vector<dp::TxPath> wire_tx(n), local_tx(n);
        for (unsigned i = 0; i < n; ++i) {
            const std::string k = tag + "_" + std::to_string(i);
            if (plan_.mode == config::DispatchMode::distributor)
                dc.rings[i] = make_ring("nlbd_dist" + k, kDistributorRing);
            if (wire.tx_queues > 1) wire_tx[i].queue = static_cast<uint16_t>(i);
            else if (i != 0) wire_tx[i].ring = make_ring("nlbd_txw" + k, kTxRing);
            if (local.tx_queues > 1) local_tx[i].queue = static_cast<uint16_t>(i);
            else if (i != 0) local_tx[i].ring = make_ring("nlbd_txl" + k, kTxRing);
        }
        const uint64_t seed = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}() ^
                              static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        for (unsigned i = 0; i < n; ++i) {
            dp::WorkerConfig wc;
            wc.index = static_cast<uint16_t>(i);
            wc.wire_port = wire.port_id;
            wc.local_port = local.port_id;
            wc.burst = cfg.nic.burst;
            wc.idle = &idle;
            wc.wire_mac = wire.mac;
            wc.local_mac = local.mac;
            if (plan_.mode == config::DispatchMode::distributor) {
                wc.wire_ring = dc.rings[i];
                wc.n_wire_rx_queues = 0;
            } else {
                // RX queues round-robin over the workers.
                wc.n_wire_rx_queues = 0;
                for (unsigned q = i; q < wire.rx_queues; q += n) {
                    if (wc.n_wire_rx_queues == dp::kMaxWorkerQueues)
                        throw StartError("more than " + std::to_string(dp::kMaxWorkerQueues) +
                                         " wire RX queues per worker");
                    wc.wire_rx_queues[wc.n_wire_rx_queues++] = static_cast<uint16_t>(q);
                }
            }
            wc.local_rx = i < local.rx_queues;
            wc.local_rx_queue = static_cast<uint16_t>(i);
            wc.wire_tx = wire_tx[i];
            wc.local_tx = local_tx[i];
            if (i == 0) {
                for (unsigned j = 1; j < n; ++j) {
                    wc.drain_wire[j - 1] = wire_tx[j].ring;
                    wc.drain_local[j - 1] = local_tx[j].ring;
                }
                if (wire.tx_queues == 1 || local.tx_queues == 1) wc.n_drain = static_cast<uint16_t>(n - 1);
                wc.control_tx = cluster.control_tx();
            }
            wc.frag.capacity = cfg.dataplane.frag_table_size;
            wc.frag.max_held = cfg.dataplane.frag_max_held;
            wc.frag.timeout_ns = uint64_t{cfg.dataplane.frag_timeout_ms} * 1'000'000;
            wc.qsbr = publisher.qsbr();
            wc.qsbr_thread = i;
            wc.conn.capacity = cfg.dataplane.conn_table_size;
            wc.conn.timeouts.syn_s = cfg.dataplane.tcp_syn_timeout_s;
            wc.conn.timeouts.established_s = cfg.dataplane.tcp_established_timeout_s;
            wc.conn.timeouts.fin_s = cfg.dataplane.tcp_fin_timeout_s;
            wc.conn.seed = seed + 0x9e3779b97f4a7c15ull * i;
            if (rte_eal_has_hugepages() != 0) {
                wc.conn.memory.alloc = conn_table_alloc;
                wc.conn.memory.free = conn_table_free;
            }
            wc.heartbeat_ethertype = cfg.cluster.heartbeat_ethertype;
            wc.heartbeat_rx = cluster.heartbeat_rx();
            // Built where it will run: its tables are first touched on that
            // lcore (one lcore in all: the main one, here).
            std::unique_ptr<dp::Worker> w;
            auto build = [&] { w = std::make_unique<dp::Worker>(wc, publisher.pointer()); };
            if (i < plan_.worker_lcores.size()) run_on_lcore(plan_.worker_lcores[i], build);
            else build();
            const core::ConnTable& t = w->conn_table();
            NLBD_LOG(info, "worker %u: connection table %u slots, %.1f MB, on %s", i, t.slots(),
                     static_cast<double>(t.memory_bytes()) / 1e6, backing_name(t.backing()));
            workers_.push_back(std::move(w));
        }
        if (plan_.mode == config::DispatchMode::distributor) {
            dc.wire_port = wire.port_id;
            dc.burst = cfg.nic.burst;
            dc.idle = &idle;
            dc.workers = static_cast<uint16_t>(n);
            dc.l4 = l4_hash_;
            dc.heartbeat_ethertype = cfg.cluster.heartbeat_ethertype;
            dc.heartbeat_rx = cluster.heartbeat_rx();
            run_on_lcore(static_cast<unsigned>(plan_.distributor_lcore),
                         [&] { distributor_ = std::make_unique<dp::Distributor>(dc); });
        }
    } catch (const std::exception& e) {
        release();  // a constructor that throws runs no destructor of its own
        throw StartError(std::string("data plane: ") + e.what());
    }
}

void DataPlane::release() noexcept {
    distributor_.reset();
    workers_.clear();
    for (rte_ring* r : rings_) rte_ring_free(r);
    rings_.clear();
}

DataPlane::~DataPlane() { release(); }

std::string DataPlane::describe() const {
    std::string lc;
    for (unsigned l : plan_.worker_lcores) {
        if (!lc.empty()) lc += ',';
        lc += std::to_string(l);
    }
    const char* tx = wire_tx_shared_ ? "through worker 0" : "a wire queue per worker";
    char line[512];
    if (plan_.mode == config::DispatchMode::distributor)
        std::snprintf(line, sizeof line,
                      "dispatch distributor: RX lcore %d reads the wire queue and spreads flows (hash on "
                      "%s) to %u worker(s) on lcores %s; TX %s",
                      plan_.distributor_lcore, l4_hash_ ? "addresses + TCP/UDP ports" : "addresses",
                      plan_.workers, lc.c_str(), tx);
    else
        std::snprintf(line, sizeof line,
                      "dispatch rss: %u worker(s) on lcores %s, %u wire RX queue(s) round-robin, TX %s",
                      plan_.workers, lc.empty() ? "(main)" : lc.c_str(), unsigned(plan_.wire.rx), tx);
    return line;
}

bool DataPlane::run(std::atomic<bool>& stop, const dp::ControlTick& tick) {
    if (plan_.worker_lcores.empty()) {
        workers_[0]->run(stop, tick);
        return true;
    }
    // Stop order: control's stop ends the distributor first; then the
    // workers, which empty their rings before returning; then worker 0
    // sends what the others handed it in their last loop.
    bool ok = true;
    std::atomic<bool> workers_stop{false};
    std::vector<dp::Worker::Launch> launches(workers_.size());
    dp::Distributor::Launch dlaunch{distributor_.get(), &stop};
    std::vector<unsigned> launched;
    for (unsigned i = 0; i < workers_.size() && ok; ++i) {
        launches[i] = {workers_[i].get(), &workers_stop};
        if (rte_eal_remote_launch(&dp::Worker::lcore_main, &launches[i], plan_.worker_lcores[i]) != 0) {
            NLBD_LOG(error, "cannot launch worker %u on lcore %u", i, plan_.worker_lcores[i]);
            ok = false;
        } else {
            launched.push_back(plan_.worker_lcores[i]);
        }
    }
    bool dist_launched = false;
    if (ok && distributor_) {
        if (rte_eal_remote_launch(&dp::Distributor::lcore_main, &dlaunch,
                                  static_cast<unsigned>(plan_.distributor_lcore)) != 0) {
            NLBD_LOG(error, "cannot launch the distributor on lcore %d", plan_.distributor_lcore);
            ok = false;
        } else {
            dist_launched = true;
        }
    }
    if (!ok) stop.store(true, std::memory_order_relaxed);
    while (!stop.load(std::memory_order_relaxed)) {
        const timespec ts{0, 1'000'000};
        nanosleep(&ts, nullptr);
        tick.fn(tick.ctx);
    }
    if (dist_launched) rte_eal_wait_lcore(static_cast<unsigned>(plan_.distributor_lcore));
    workers_stop.store(true, std::memory_order_relaxed);
    for (unsigned l : launched) rte_eal_wait_lcore(l);
    if (!launched.empty()) workers_[0]->drain_after_stop();
    return ok;
}

void DataPlane::totals(RunReport& r) const {
    auto sum = std::make_shared<WorkerCounters>();
    std::fill(std::begin(r.verdicts), std::end(r.verdicts), 0);
    r.frags = {};
    for (const auto& w : workers_) {
        add_counters(*sum, w->counters());
        uint64_t v[kVerdictCount];
        w->verdicts_at_exit(v);
        for (unsigned i = 0; i < kVerdictCount; ++i) r.verdicts[i] += v[i];
        add_frag_stats(r.frags, w->frag_stats());
    }
    if (distributor_) {
        add_counters(*sum, distributor_->counters());
        for (unsigned i = 0; i < kVerdictCount; ++i)
            r.verdicts[i] += read_counter(distributor_->counters().verdicts[i]);
    }
    r.owned_counters = sum;
    r.counters = sum.get();
}

std::string DataPlane::connections_json(const ClusterControl::HeldForeign& hf) const {
    core::ConnStats cs;
    uint64_t capacity = 0;
    for (const auto& w : workers_) {
        const core::ConnStats& s = w->conn_stats();
        cs.entries += s.entries;
        cs.inserted += s.inserted;
        cs.removed += s.removed;
        for (size_t i = 0; i < cs.expired.size(); ++i) cs.expired[i] += s.expired[i];
        cs.evicted += s.evicted;
        cs.evicted_established += s.evicted_established;
        cs.insert_failed += s.insert_failed;
        cs.affinity_entries += s.affinity_entries;
        cs.affinity_hits += s.affinity_hits;
        cs.affinity_yielded += s.affinity_yielded;
        cs.affinity_evicted += s.affinity_evicted;
        cs.affinity_insert_failed += s.affinity_insert_failed;
        capacity += w->conn_capacity();
    }
    uint64_t expired = 0;
    for (uint64_t e : cs.expired) expired += e;
    return "\"connections\":{\"entries\":" + std::to_string(cs.entries) +
           ",\"capacity\":" + std::to_string(capacity) + ",\"inserted\":" + std::to_string(cs.inserted) +
           ",\"removed\":" + std::to_string(cs.removed) + ",\"expired\":" + std::to_string(expired) +
           ",\"evicted\":" + std::to_string(cs.evicted) +
           ",\"evicted_established\":" + std::to_string(cs.evicted_established) +
           ",\"insert_failed\":" + std::to_string(cs.insert_failed) +
           ",\"affinity_entries\":" + std::to_string(cs.affinity_entries) +
           ",\"affinity_hits\":" + std::to_string(cs.affinity_hits) +
           ",\"affinity_yielded\":" + std::to_string(cs.affinity_yielded) +
           ",\"affinity_evicted\":" + std::to_string(cs.affinity_evicted) +
           ",\"affinity_insert_failed\":" + std::to_string(cs.affinity_insert_failed) +
           ",\"held_foreign\":" + (hf.valid ? std::to_string(hf.count) : std::string("null")) + "}";
}

std::string DataPlane::workers_json() const {
    const auto count = [](const uint64_t& c) { return std::to_string(read_counter(c)); };
    std::string j = "\"workers\":{\"dispatch\":\"" + std::string(config::dispatch_name(plan_.mode)) +
                    "\",\"count\":" + std::to_string(workers_.size()) + ",\"per_worker\":[";
    for (unsigned i = 0; i < workers_.size(); ++i) {
        const WorkerCounters& c = workers_[i]->counters();
        uint64_t accepted = 0;
        for (Verdict v : {Verdict::accepted, Verdict::accepted_conn, Verdict::default_host_accepted,
                          Verdict::passed_non_vip})
            accepted += read_counter(c.verdicts[static_cast<unsigned>(v)]);
        if (i != 0) j += ',';
        j += "{\"index\":" + std::to_string(i) + ",\"lcore\":" +
             (i < plan_.worker_lcores.size() ? std::to_string(plan_.worker_lcores[i]) : "null") +
             ",\"rx_total\":" + count(c.rx_total) + ",\"to_local\":" + std::to_string(accepted) +
             ",\"loops\":" + count(c.loops) + ",\"idle_sleeps\":" + count(c.idle_sleeps) +
             ",\"tx_handed\":" + count(c.tx_handed) + ",\"tx_drained\":" + count(c.tx_drained) +
             ",\"connections\":" + std::to_string(workers_[i]->conn_stats().entries) + "}";
    }
    j += "]";
    if (distributor_) {
        const WorkerCounters& c = distributor_->counters();
        j += ",\"distributor\":{\"lcore\":" + std::to_string(plan_.distributor_lcore) +
             ",\"rx_packets\":" + count(c.wire.rx_packets) +
             ",\"dispatch_full\":" + count(c.verdicts[static_cast<unsigned>(Verdict::dispatch_full)]) +
             ",\"heartbeats\":" + count(c.verdicts[static_cast<unsigned>(Verdict::heartbeat)]) +
             ",\"loops\":" + count(c.loops) + ",\"idle_sleeps\":" + count(c.idle_sleeps) + ",\"dispatched\":[";
        for (unsigned i = 0; i < workers_.size(); ++i) {
            if (i != 0) j += ',';
            j += std::to_string(distributor_->dispatched(i));
        }
        j += "]}";
    }
    return j + "}";
}

// The host's count: the sum over the workers, valid only when every worker
// finished a sweep under the snapshot now published.
ClusterControl::HeldForeign DataPlane::held_foreign(const core::Snapshot* s) const {
    ClusterControl::HeldForeign h;
    if (s == nullptr) return h;
    uint64_t total = 0;
    for (const auto& w : workers_) {
        const uint64_t hf = read_counter(w->counters().held_foreign);
        if (hf == dp::kHeldForeignUnknown || (hf >> 32) != (s->generation & 0xffffffffu)) return h;
        total += hf & 0xffffffffu;
    }
    h.count = static_cast<uint32_t>(std::min<uint64_t>(total, 0xfffffffeu));
    h.generation = s->generation;
    h.valid = true;
    return h;
}

void DataPlane::rx_loops(std::vector<uint64_t>& v) const {
    for (const auto& w : workers_) v.push_back(read_counter(w->counters().loops));
    if (distributor_) v.push_back(read_counter(distributor_->counters().loops));
}

// --- the daemon ---------------------------------------------------------

namespace {

// /healthz from the telemetry document (refreshed every kTelemetryRefresh):
// healthy when this host is started and its view converged.
HttpHandlers::Health health_of(const TelemetryCache::Doc& doc) {
    HttpHandlers::Health h;
    const ctl::Json* st = doc != nullptr ? doc->find("cluster_state") : nullptr;
    if (st == nullptr) {
        h.text = "no state yet";
        return h;
    }
    const std::string state = st->get_string("state", "unknown");
    const std::string host = st->get_string("host_state", "unknown");
    const bool converged = st->get_bool("converged");
    h.ok = host == "started" && converged;
    h.text = "host " + host + ", cluster " + state + (converged ? "" : " (not converged)");
    return h;
}

std::unique_ptr<ClusterControl> start_cluster(const Options& opt, const config::Config& cfg,
                                              SnapshotPublisher& publisher, const Ports& ports) {
    try {
        auto c = std::make_unique<ClusterControl>(cfg, publisher, ports.wire.pool, ports.wire.mac);
        c->reload_source = {opt.config, opt.nic};
        c->restore_state(opt.ignore_state);
        c->start();
        return c;
    } catch (const StartError&) {
        throw;
    } catch (const std::exception& e) {
        throw StartError(e.what());
    }
}

std::unique_ptr<ctl::ControlServer> start_socket(const Options& opt, const config::Config& cfg,
                                                 ClusterControl& cluster, std::string& link_out) {
    if (opt.no_control_socket) return nullptr;
    const std::string path =
        opt.control_socket ? *opt.control_socket : "/run/nlbd/nlbd-" + std::to_string(cfg.host.id) + ".sock";
    try {
        auto s = std::make_unique<ctl::ControlServer>(
            path, [c = &cluster](const std::string& cmd, const std::vector<std::string>& args, const std::string& who) {
                return c->post(cmd, args, who);
            });
        NLBD_LOG(info, "control socket %s", path.c_str());
        // nlbctl's default is ctl::kDefaultSocketPath: point it at the first
        // daemon on this machine (never replaces a live file).
        if (!opt.control_socket) {
            const std::string link = ctl::kDefaultSocketPath;
            struct stat st;
            if (lstat(link.c_str(), &st) == 0 && S_ISLNK(st.st_mode) && ::stat(link.c_str(), &st) != 0)
                ::unlink(link.c_str());  // dangling: its daemon is gone
            if (::symlink(path.substr(path.rfind('/') + 1).c_str(), link.c_str()) == 0) link_out = link;
        }
        return s;
    } catch (const std::exception& e) {
        NLBD_LOG(warning, "no control socket: %s", e.what());
        return nullptr;
    }
}

}  // namespace

Daemon::Daemon(const Options& opt, const config::Config& cfg, const char* program)
    : opt_(opt),
      eal_(opt, cfg, program),
      ports_(cfg),
      publisher_(ports_.plan.workers),
      cluster_(start_cluster(opt, cfg, publisher_, ports_)),
      idle_(cfg.dataplane.idle_policy),
      dataplane_(cfg, ports_, publisher_, *cluster_, idle_),
      socket_(start_socket(opt, cfg, *cluster_, default_link_.path)),
      telemetry_(std::make_shared<TelemetryCache>()),
      dpdk_telemetry_(cfg.telemetry.dpdk_telemetry && !has_option(eal_.args(), {"--no-telemetry"})),
      telemetry_due_(kTelemetryRefresh) {
    start_health(cfg);
    const core::Snapshot& snap = *publisher_.current();
    std::string members;
    for (HostId h : snap.members) {
        if (!members.empty()) members += ',';
        members += std::to_string(unsigned(h));
    }
    NLBD_LOG(info,
             "membership (%s): self %u (%s), members [%s], default host %u, epoch %llu, %u buckets, mode %s, "
             "cluster MAC %s, source MAC %s",
             cluster_->dynamic() ? "dynamic, heartbeats; initial view" : "static", unsigned(snap.self),
             snap.started ? "started" : "not started", members.c_str(), unsigned(snap.default_host),
             static_cast<unsigned long long>(snap.epoch), snap.buckets, name_of(snap.mode),
             snap.cluster_mac.to_string().c_str(), snap.source_mac.to_string().c_str());
    print_rules(stderr, cfg, &snap);
    NLBD_LOG(info, "%s", dataplane_.describe().c_str());
    for (const auto& n : ports_.plan.notes) NLBD_LOG(info, "dispatch: note: %s", n.c_str());

    // What the cluster control asks of the daemon (control thread only).
    if (dataplane_.multi_lcore())
        cluster_->rx_loops = [this](std::vector<uint64_t>& v) { dataplane_.rx_loops(v); };
    cluster_->held_foreign = [this] { return dataplane_.held_foreign(publisher_.current().get()); };
    cluster_->stats_provider = [this] {
        RunReport r;
        live_report(r);
        r.wire_hw = port_stats(ports_.wire);
        r.local_hw = port_stats(ports_.local);
        return stats_json(r);
    };
    cluster_->on_reloaded = [this](const config::Config& before, const config::Config& after) {
        return reloaded(before, after);
    };
    cluster_->reload_progress = [this](bool reloading) {
        if (ready_sent_) notify_.send(reloading ? "RELOADING=1" : "READY=1");
    };

    // Telemetry (docs/telemetry.md): the control loop refreshes the cache;
    // DPDK's telemetry threads and the Prometheus thread only read it.
    if (cfg.telemetry.prometheus || dpdk_telemetry_) {
        try {
            telemetry_->update(cluster_->run_command("stats", {}));
        } catch (const std::exception& e) {
            NLBD_LOG(warning, "telemetry: %s", e.what());
        }
    }
    if (dpdk_telemetry_) {
        if (register_dpdk_telemetry(telemetry_))
            NLBD_LOG(info, "DPDK telemetry: /nlbd/stats /nlbd/rules /nlbd/cluster on %s/dpdk_telemetry.v2",
                         rte_eal_get_runtime_dir());
        else
            NLBD_LOG(warning, "cannot register the DPDK telemetry commands");
    }
    if (std::string e = start_prometheus(cfg); !e.empty()) NLBD_LOG(warning, "%s", e.c_str());
    if (std::string e = start_remote(cfg); !e.empty()) NLBD_LOG(warning, "%s", e.c_str());

    if (opt_.run_for_s > 0)
        deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(opt_.run_for_s));
}

Daemon::~Daemon() {
    // Members stop in reverse declaration order; the DPDK telemetry
    // callbacks, registered with EAL, stop reading the cache first.
    set_dpdk_telemetry_source(nullptr);
}

DefaultLink::~DefaultLink() {
    if (!path.empty()) ::unlink(path.c_str());
}

void Daemon::start_health(const config::Config& cfg) {
    if (health_) {
        cluster_->health = nullptr;
        health_->stop();
        health_.reset();
    }
    auto checks = health::Checker::checks_from_config(cfg);
    if (checks.empty()) return;
    for (const auto& c : checks)
        NLBD_LOG(info,
                     "health: rule %zu: %s check of %s:%u every %u ms (timeout %u ms, rise %u, fall %u)",
                     c.rule, health::name_of(c.probe.kind).data(), c.probe.address.to_string().c_str(),
                     unsigned(c.probe.port), c.interval_ms, c.probe.timeout_ms, c.rise, c.fall);
    health_ = std::make_unique<health::Checker>(std::move(checks), cfg.rules.size());
    cluster_->health = health_.get();
    health_->start();
}

std::string Daemon::start_prometheus(const config::Config& cfg) {
    prometheus_.reset();  // stops and joins
    if (!cfg.telemetry.prometheus) return {};
    try {
        HttpHandlers h;
        h.metrics = [c = telemetry_]() {
            const TelemetryCache::Doc d = c->get();
            if (d == nullptr) throw std::runtime_error("no statistics yet");
            return format_metrics(*d);
        };
        h.healthz = [c = telemetry_]() { return health_of(c->get()); };
        prometheus_ = std::make_unique<PrometheusServer>(cfg.telemetry.prometheus_address,
                                                         cfg.telemetry.prometheus_port, std::move(h));
        NLBD_LOG(info, "prometheus: http://%s/metrics", cfg.telemetry.prometheus_listen.c_str());
        return {};
    } catch (const std::exception& e) {
        return std::string("prometheus: ") + e.what();
    }
}

// Remote control over mutual TLS ([control] remote_*, docs/remote.md): the
// same commands as the UNIX socket, through the same handler, authorised per
// command by the client certificate's CN.
std::string Daemon::start_remote(const config::Config& cfg) {
    remote_.reset();  // stops and joins
    if (cfg.control.remote_listen.empty()) return {};
    try {
        ctl::TlsServerOptions ro;
        ro.listen = cfg.control.remote_listen;
        ro.cert_file = cfg.control.remote_cert;
        ro.key_file = cfg.control.remote_key;
        ro.ca_file = cfg.control.remote_ca;
        for (const auto& [cn, role] : cfg.control.remote_allow) ro.allow[cn] = ctl::parse_role(role);
        remote_ = std::make_unique<ctl::TlsControlServer>(
            std::move(ro), [c = cluster_.get()](const std::string& cmd, const std::vector<std::string>& args,
                                                const std::string& who) { return c->post(cmd, args, who); });
        NLBD_LOG(info, "remote control (mutual TLS) on %s, port %u, %zu client CNs allowed",
                     cfg.control.remote_listen.c_str(), unsigned(remote_->port()), cfg.control.remote_allow.size());
        return {};
    } catch (const std::exception& e) {
        return std::string("no remote control: ") + e.what();
    }
}

// Reload (docs/reload.md): ClusterControl applied the new configuration;
// rebuild what the daemon owns and whose configuration changed. Runs on the
// control thread, like everything that reads these members, so the swaps
// need no lock.
std::string Daemon::reloaded(const config::Config& before, const config::Config& after) {
    std::string note;
    const auto add = [&note](const std::string& s) {
        if (s.empty()) return;
        if (!note.empty()) note += "; ";
        note += s;
    };
    start_health(after);  // rule indexes may have moved: always rebuilt
    if (before.telemetry.prometheus != after.telemetry.prometheus ||
        before.telemetry.prometheus_listen != after.telemetry.prometheus_listen)
        add(start_prometheus(after));
    const auto& a = before.control;
    const auto& b = after.control;
    if (a.remote_listen != b.remote_listen || a.remote_cert != b.remote_cert || a.remote_key != b.remote_key ||
        a.remote_ca != b.remote_ca || a.remote_allow != b.remote_allow) {
        // Replaced at the next tick, not here: this reload may have come
        // through that listener, whose thread waits in post() for this very
        // command, and stopping it joins that thread. Its files are checked
        // now, so that a bad certificate or key is in the reload's answer.
        if (!b.remote_listen.empty()) {
            try {
                ctl::TlsServerOptions ro;
                ro.cert_file = b.remote_cert;
                ro.key_file = b.remote_key;
                ro.ca_file = b.remote_ca;
                ctl::check_server_files(ro);
            } catch (const std::exception& e) {
                add(std::string("remote control: ") + e.what() + " (the listener will not start)");
            }
        }
        restart_remote_ = true;
    }
    if (before.log_level != after.log_level) {
        log::set_level(after.log_level);
        NLBD_LOG(notice, "log level %s", log::name_of(after.log_level));
    }
    if (before.dataplane.idle_policy != after.dataplane.idle_policy) {
        idle_.store(after.dataplane.idle_policy, std::memory_order_relaxed);
        NLBD_LOG(notice, "idle policy %s", idle_name(after.dataplane.idle_policy));
    }
    return note;
}

void Daemon::live_report(RunReport& r) const {
    r.cfg = &cluster_->config();
    r.snap = publisher_.current().get();
    dataplane_.totals(r);
    r.extra = dataplane_.connections_json(cluster_->held_foreign()) + ",\n" + dataplane_.workers_json() +
              ",\n" + cluster_->stats_members();
}

void Daemon::tick() noexcept {
    const Clock::time_point now = Clock::now();
    if (!leaving_until_ &&
        (g_signal.load(std::memory_order_relaxed) || (deadline_ && now >= *deadline_))) {
        notify_.send("STOPPING=1");
        cluster_->leave();
        leaving_until_ = now + std::chrono::milliseconds(cluster_->dynamic() ? 20 : 0);
    }
    if (leaving_until_ && now >= *leaving_until_) {
        stop_.store(true, std::memory_order_relaxed);
        return;
    }
    if (g_reload.exchange(false, std::memory_order_relaxed)) {
        try {
            (void)cluster_->run_command("reload", {}, "SIGHUP");
        } catch (const std::exception& e) {
            NLBD_LOG(warning, "reload (SIGHUP): %s", e.what());
        }
    }
    cluster_->poll();
    if (restart_remote_) {  // after a reload; the command that asked has been answered
        restart_remote_ = false;
        try {
            if (std::string e = start_remote(cluster_->config()); !e.empty())
                NLBD_LOG(warning, "%s", e.c_str());
        } catch (...) {
            NLBD_LOG(warning, "remote control: restart failed");
        }
    }
    notify_tick(now);
    // Refreshed while something reads the cache (DPDK telemetry, or a
    // Prometheus listener, which a reload may add or remove).
    if ((dpdk_telemetry_ || cluster_->config().telemetry.prometheus) && telemetry_due_.due(now)) {
        try {
            telemetry_->update(cluster_->run_command("stats", {}));
        } catch (...) {
            // Keep the previous document; the next interval retries.
        }
    }
}

void Daemon::notify_tick(Clock::time_point now) noexcept {
    if (!notify_.enabled() || leaving_until_) return;
    if (!ready_sent_) {
        // The first tick: ports, workers (launched by now) and the control
        // socket are up.
        ready_sent_ = notify_.send("READY=1\nMAINPID=" + std::to_string(::getpid()));
        next_status_ = now;
        dataplane_.rx_loops(watchdog_loops_);
        next_watchdog_ = now;
    }
    if (now >= next_status_) {
        next_status_ = now + std::chrono::milliseconds(250);
        try {
            notify_.status(cluster_->status_line());
        } catch (...) {
            // The next interval retries.
        }
    }
    const uint64_t wd = notify_.watchdog_usec();
    if (wd == 0 || now < next_watchdog_) return;
    next_watchdog_ = now + std::chrono::microseconds(wd / 2);
    // Only while every data-plane lcore made progress since the last ping:
    // a worker stuck in a loop (or a driver call that never returns) stops
    // the pings and systemd restarts the service after WatchdogSec. With one
    // lcore this tick runs between the worker's own polls.
    std::vector<uint64_t> loops;
    try {
        dataplane_.rx_loops(loops);
    } catch (...) {
        return;
    }
    bool advanced = loops.size() == watchdog_loops_.size();
    for (size_t i = 0; advanced && i < loops.size(); ++i) advanced = loops[i] != watchdog_loops_[i];
    watchdog_loops_ = std::move(loops);
    if (advanced) notify_.send("WATCHDOG=1");
}

int Daemon::run() {
    NLBD_LOG(info, "lcores: control on %u, %u worker(s)%s; idle policy %s", rte_get_main_lcore(),
                 ports_.plan.workers, ports_.plan.distributor_lcore >= 0 ? " + RX distributor" : "",
                 idle_name(idle_.load(std::memory_order_relaxed)));
    int rc = dataplane_.run(stop_, dp::ControlTick{&Daemon::tick_fn, this, 1024}) ? 0 : 1;

    // --- stop, in reverse: listeners first, so that no command runs while
    // the report is made; then the ports (their statistics read in between).
    cluster_->close_commands();
    remote_.reset();
    prometheus_.reset();
    set_dpdk_telemetry_source(nullptr);
    socket_.reset();
    if (health_) health_->stop();
    RunReport report;
    live_report(report);
    ports_.close(report.wire_hw, report.local_hw);
    if (opt_.stats_json) {
        std::ofstream f(*opt_.stats_json, std::ios::trunc);
        f << stats_json(report);
        f.close();
        if (!f) {
            NLBD_LOG(error, "cannot write %s: %s", opt_.stats_json->c_str(), std::strerror(errno));
            rc = 1;
        }
    }
    print_summary(stderr, report);
    return rc;
}

}  // namespace nlbd::daemon
