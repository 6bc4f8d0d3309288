// nlbd: the DPDK data plane around the pure core (SPEC §6, §8).
//
//   nlbd --config FILE [--nic FILE] [--run-for SECONDS] [--stats-json FILE]
//        [--check-config] [--control-socket PATH | --no-control-socket]
//        [-- EAL options]
//
// Control flow: load + validate config (a bad config never starts an engine)
// -> EAL -> ports -> snapshot -> worker lcore -> wait for a signal or
// --run-for -> stop worker -> read port stats -> stop and close ports (the
// pcap vdev writes its output on close) -> report.

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_errno.h>
#include <rte_ring.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "nlbd/config/config.hpp"
#include "nlbd/ctl/server.hpp"
#include "nlbd/ctl/tls_server.hpp"
#include "nlbd/dp/cluster_control.hpp"
#include "nlbd/dp/control.hpp"
#include "nlbd/dp/distributor.hpp"
#include "nlbd/dp/eal_args.hpp"
#include "nlbd/dp/placement.hpp"
#include "nlbd/dp/port.hpp"
#include "nlbd/dp/prometheus.hpp"
#include "nlbd/dp/stats.hpp"
#include "nlbd/dp/telemetry.hpp"
#include "nlbd/dp/worker.hpp"
#include "nlbd/health/checker.hpp"

namespace {

using namespace nlbd;

struct Options {
    std::string config;
    std::optional<std::string> nic;
    double run_for_s = 0;  // 0 = until a signal
    std::optional<std::string> stats_json;
    bool check_config = false;
    std::optional<std::string> control_socket;  // default: /run/nlbd/nlbd-<host id>.sock
    bool no_control_socket = false;
    bool ignore_state = false;  // start from [host] initial_state, not the state file
    std::vector<std::string> eal;
};

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The command line is a table (STYLE.md).
struct OptionSpec {
    const char* name;
    const char* arg;  // nullptr: a flag
    const char* help;
    std::function<void(Options&, const std::string&)> apply;
};

const std::vector<OptionSpec>& option_table() {
    static const std::vector<OptionSpec> table = {
        {"--config", "FILE", "cluster file (TOML)",
         [](Options& o, const std::string& v) { o.config = v; }},
        {"--nic", "FILE", "NIC profile (overrides [cluster] nic_profile)",
         [](Options& o, const std::string& v) { o.nic = v; }},
        {"--run-for", "SECONDS", "stop after this many seconds (default: until SIGINT/SIGTERM)",
         [](Options& o, const std::string& v) {
             char* end = nullptr;
             errno = 0;
             const double s = std::strtod(v.c_str(), &end);
             if (errno != 0 || end == v.c_str() || *end != '\0' || !(s > 0))
                 throw UsageError("--run-for: '" + v + "' is not a positive number of seconds");
             o.run_for_s = s;
         }},
        {"--stats-json", "FILE", "write every counter as JSON at exit",
         [](Options& o, const std::string& v) { o.stats_json = v; }},
        {"--check-config", nullptr, "validate the configuration, print a summary and exit",
         [](Options& o, const std::string&) { o.check_config = true; }},
        {"--control-socket", "PATH",
         "nlbctl control socket (default /run/nlbd/nlbd-<host id>.sock)",
         [](Options& o, const std::string& v) { o.control_socket = v; }},
        {"--ctl-socket", "PATH", "same as --control-socket",
         [](Options& o, const std::string& v) { o.control_socket = v; }},
        {"--no-control-socket", nullptr, "do not open a control socket",
         [](Options& o, const std::string&) { o.no_control_socket = true; }},
        {"--ignore-state", nullptr, "start from [host] initial_state, not from the host state file",
         [](Options& o, const std::string&) { o.ignore_state = true; }},
    };
    return table;
}

void usage(std::FILE* out) {
    std::fprintf(out, "usage: nlbd --config FILE [options] [-- EAL options]\n");
    for (const auto& o : option_table()) {
        std::string left = std::string(o.name) + (o.arg ? std::string(" ") + o.arg : "");
        std::fprintf(out, "  %-22s %s\n", left.c_str(), o.help);
    }
    std::fprintf(out, "  %-22s %s\n", "-h, --help", "this text");
}

Options parse_options(int argc, char** argv) {
    Options o;
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a == "-h" || a == "--help") {
            usage(stdout);
            std::exit(0);
        }
        std::optional<std::string> inline_value;
        if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
            inline_value = a.substr(eq + 1);
            a = a.substr(0, eq);
        }
        const OptionSpec* spec = nullptr;
        for (const auto& s : option_table())
            if (a == s.name) spec = &s;
        if (spec == nullptr) throw UsageError("unknown option '" + a + "'");
        std::string value;
        if (spec->arg != nullptr) {
            if (inline_value) value = *inline_value;
            else if (i + 1 < argc) value = argv[++i];
            else throw UsageError(a + " needs " + spec->arg);
        } else if (inline_value) {
            throw UsageError(a + " takes no value");
        }
        spec->apply(o, value);
    }
    for (; i < argc; ++i) o.eal.emplace_back(argv[i]);
    if (o.config.empty()) throw UsageError("--config FILE is required");
    return o;
}

std::string join(const std::vector<std::string>& v, const char* sep = " ") {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) {
        if (i != 0) s += sep;
        s += v[i];
    }
    return s;
}

std::string hosts_list(const std::vector<HostId>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) {
        if (i != 0) s += ',';
        s += std::to_string(unsigned(v[i]));
    }
    return s + "]";
}

void print_rules(std::FILE* out, const config::Config& cfg, const core::Snapshot* snap) {
    std::fprintf(out, "  %-4s %-40s %-11s %-5s %-9s %-8s %-6s %-4s %s\n", "rule", "vip", "ports",
                 "proto", "mode", "affinity", "weight", "prio", snap ? "buckets-owned" : "");
    for (size_t i = 0; i < cfg.rules.size(); ++i) {
        const PortRule& r = cfg.rules[i];
        std::string owned;
        if (snap != nullptr) {
            for (size_t ci = 0; ci < snap->rules.rules.size(); ++ci)
                if (snap->rules.rules[ci].config_index == i) {
                    owned = std::to_string(dp::buckets_owned(*snap, static_cast<uint16_t>(ci))) +
                            "/" + std::to_string(snap->buckets);
                    break;
                }
        }
        std::fprintf(out, "  %-4zu %-40s %-11s %-5s %-9s %-8s %-6s %-4u %s\n", i,
                     r.vip ? r.vip->to_string().c_str() : "all",
                     (std::to_string(r.port_lo) + "-" + std::to_string(r.port_hi)).c_str(),
                     dp::name_of(r.protocol), dp::name_of(r.mode), dp::name_of(r.affinity),
                     r.equal_weight ? "equal" : std::to_string(r.load_weight).c_str(),
                     unsigned(r.handling_priority), owned.c_str());
    }
}

void print_config_summary(std::FILE* out, const config::Config& cfg, const core::Snapshot* snap) {
    std::fprintf(out, "config %s\n", cfg.file.c_str());
    std::fprintf(out, "  cluster '%s', mode %s, %u buckets, heartbeat %u ms x %u, ethertype 0x%04x\n",
                 cfg.cluster.name.c_str(), dp::name_of(cfg.cluster.mode), cfg.cluster.buckets,
                 cfg.cluster.heartbeat_interval_ms, cfg.cluster.heartbeat_tolerance,
                 cfg.cluster.heartbeat_ethertype);
    std::string vips;
    for (size_t i = 0; i < cfg.cluster.vips.size(); ++i)
        vips += (i ? ", " : "") + cfg.cluster.vips[i].to_string();
    std::fprintf(out, "  vips: %s\n", vips.c_str());
    std::fprintf(out, "  host %u, initial state %s, members %s\n", unsigned(cfg.host.id),
                 cfg.host.initial_state == config::InitialState::started   ? "started"
                 : cfg.host.initial_state == config::InitialState::stopped ? "stopped"
                                                                           : "suspended",
                 cfg.cluster.static_members.empty() ? "dynamic"
                                                    : hosts_list(cfg.cluster.static_members).c_str());
    if (snap != nullptr)
        std::fprintf(out, "  cluster MAC %s, source MAC %s, default host %u\n",
                     snap->cluster_mac.to_string().c_str(), snap->source_mac.to_string().c_str(),
                     unsigned(snap->default_host));
    print_rules(out, cfg, snap);
    std::fprintf(out, "  ports: wire '%s', local '%s'\n", cfg.wire.device.c_str(),
                 cfg.local.device.c_str());
    const auto& n = cfg.nic;
    std::fprintf(out,
                 "  nic profile '%s' (%s): %u worker(s), dispatch %s, %u rxq/%u txq, %u/%u descriptors, "
                 "burst %u, mempool %u (cache %u, room %u), rx csum %s, tx csum %s, eal [%s]\n",
                 n.name.c_str(), n.file.empty() ? "defaults" : n.file.c_str(), unsigned(n.workers),
                 config::dispatch_name(n.dispatch), n.rx_queues,
                 n.tx_queues, n.rx_descriptors, n.tx_descriptors, n.burst, n.mempool_size,
                 n.mempool_cache, n.mbuf_data_room, n.rx_checksum_offload ? "on" : "off",
                 n.tx_checksum_offload ? "on" : "off", join(n.eal_args).c_str());
    std::fprintf(out, "  dataplane: idle %s, fragments %u datagrams x %u held, timeout %u ms\n",
                 cfg.dataplane.idle_policy == config::IdlePolicy::poll ? "poll" : "adaptive",
                 cfg.dataplane.frag_table_size, cfg.dataplane.frag_max_held,
                 cfg.dataplane.frag_timeout_ms);
    std::fprintf(out,
                 "  connections: %u per worker, TCP timeouts syn %u s, established %u s, fin %u s\n",
                 cfg.dataplane.conn_table_size, cfg.dataplane.tcp_syn_timeout_s,
                 cfg.dataplane.tcp_established_timeout_s, cfg.dataplane.tcp_fin_timeout_s);
    if (cfg.cluster.static_members.empty())
        std::fprintf(out, "  membership: dynamic (heartbeats%s)\n",
                     cfg.cluster.secret_file.empty() ? ", NOT authenticated: no secret_file"
                                                     : ", HMAC-SHA256");
    std::fprintf(out, "  telemetry: prometheus %s, DPDK telemetry %s\n",
                 cfg.telemetry.prometheus
                     ? ("http://" + cfg.telemetry.prometheus_listen + "/metrics").c_str()
                     : "off",
                 cfg.telemetry.dpdk_telemetry
                     ? ("on (dpdk-telemetry.py -f nlbd-" + std::to_string(cfg.host.id) + ")").c_str()
                     : "off");
    if (cfg.control.remote_listen.empty()) {
        std::fprintf(out, "  remote control: off\n");
    } else {
        std::string who;
        for (const auto& [cn, role] : cfg.control.remote_allow) who += (who.empty() ? "" : ", ") + cn + " " + role;
        std::fprintf(out, "  remote control: mutual TLS on %s, client CA %s; allowed: %s\n",
                     cfg.control.remote_listen.c_str(), cfg.control.remote_ca.c_str(), who.c_str());
    }
}

// Signals only set a flag; the control loop (or the worker's control tick
// on one lcore) turns it into a stop.
std::atomic<bool> g_signal{false};
// SIGHUP (systemctl reload, log rotation): reload the configuration.
std::atomic<bool> g_reload{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_signal(int) { g_signal.store(true, std::memory_order_relaxed); }
extern "C" void on_hangup(int) { g_reload.store(true, std::memory_order_relaxed); }

void install_signals() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sa.sa_handler = on_hangup;
    sigaction(SIGHUP, &sa, nullptr);
}

using Clock = std::chrono::steady_clock;

struct ControlState {
    std::atomic<bool> stop{false};
    std::optional<Clock::time_point> deadline;
    dp::ClusterControl* cluster = nullptr;
    // Set when a stop was requested: the host has announced `stopped` and the
    // worker runs until then so that the announcement reaches the wire.
    std::optional<Clock::time_point> leaving_until;
    // Telemetry cache refresh (docs/telemetry.md); must not throw.
    std::function<void(Clock::time_point)> telemetry;

    // Control work: stop on a signal or at the deadline; heartbeats,
    // membership, commands, snapshot publication and reclamation.
    void tick() noexcept {
        const Clock::time_point now = Clock::now();
        if (!leaving_until &&
            (g_signal.load(std::memory_order_relaxed) || (deadline && now >= *deadline))) {
            if (cluster != nullptr) cluster->leave();
            leaving_until = now + std::chrono::milliseconds(cluster && cluster->dynamic() ? 20 : 0);
        }
        if (leaving_until && now >= *leaving_until) {
            stop.store(true, std::memory_order_relaxed);
            return;
        }
        if (cluster != nullptr && g_reload.exchange(false, std::memory_order_relaxed)) {
            try {
                (void)cluster->run_command("reload", {});
            } catch (const std::exception& e) {
                std::fprintf(stderr, "nlbd: reload (SIGHUP): %s\n", e.what());
            }
        }
        if (cluster != nullptr) cluster->poll();
        if (telemetry) telemetry(now);
    }
    static void tick_fn(void* ctx) noexcept { static_cast<ControlState*>(ctx)->tick(); }
};

// Data-plane lcores to ask placement for before EAL exists: the workers, and
// one RX distributor when it will (probably) be needed. auto mode is
// resolved later from the port's capabilities; before that, a PCI NIC is
// assumed to have RSS and a vdev not (docs/multicore.md).
unsigned data_lcores_wanted(const config::NicProfile& nic, const dp::PortDevice& wire) {
    const unsigned w = std::max<unsigned>(nic.workers, 1);
    const bool distributor = nic.dispatch == config::DispatchMode::distributor ||
                             (nic.dispatch == config::DispatchMode::auto_ && w > 1 && !wire.is_pci);
    return w + (distributor ? 1 : 0);
}

// The dispatch plan, from the profile, the ports' capabilities and the
// lcores EAL gave us (main lcore excluded).
struct DispatchPlan {
    config::DispatchMode mode = config::DispatchMode::rss;
    unsigned workers = 1;
    std::vector<unsigned> worker_lcores;  // empty: one worker on the main lcore
    int distributor_lcore = -1;
    dp::QueuePlan wire;
    dp::QueuePlan local;
    std::vector<std::string> notes;       // printed at start
};

DispatchPlan plan_dispatch(const config::NicProfile& nic, const dp::PortCaps& wire,
                           const dp::PortCaps& local, const std::vector<unsigned>& lcores) {
    DispatchPlan p;
    const unsigned wanted = std::max<unsigned>(nic.workers, 1);
    using M = config::DispatchMode;
    M mode = nic.dispatch;
    if (mode == M::auto_)
        mode = wanted == 1 || (wire.rss_offloads != 0 && wire.max_rx_queues >= wanted) ? M::rss
                                                                                      : M::distributor;
    if (mode == M::rss && wire.max_rx_queues < wanted)
        throw dp::PortError("dispatch rss: the wire port (" + wire.driver + ") has " +
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

// Rings the plan needs (distributor inputs, TX hand-over); freed at exit.
struct Rings {
    std::vector<rte_ring*> all;
    rte_ring* make(const std::string& name, unsigned size, int socket) {
        rte_ring* r = rte_ring_create(name.c_str(), size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (r == nullptr) throw std::runtime_error("cannot create ring " + name + ": " + rte_strerror(rte_errno));
        all.push_back(r);
        return r;
    }
    ~Rings() {
        for (rte_ring* r : all) rte_ring_free(r);
    }
};
constexpr unsigned kDistributorRing = 1024;  // frames queued per worker
constexpr unsigned kTxRing = 1024;

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

int run(const Options& opt, const config::Config& cfg, const char* program) {
    install_signals();  // SIGHUP must never end the daemon, even while it starts
    // --- EAL -------------------------------------------------------------
    const dp::PortDevice wire_dev = dp::port_device(cfg.wire.device);
    const dp::PortDevice local_dev = dp::port_device(cfg.local.device);
    dp::EalEnvironment env = dp::probe_environment();
    env.no_huge_memory_mb = no_huge_memory_mb(cfg.nic);
    if (!env.hugepages_available && dp::has_option(opt.eal, {"--in-memory"}) &&
        !dp::has_option(opt.eal, {"--no-huge"}))
        std::fprintf(stderr, "nlbd: warning: no free hugepages; --in-memory needs them\n");
    // Placement (docs/placement.md): unless the user or the NIC profile
    // pinned the lcores, hwloc picks them (workers on the wire NIC's NUMA
    // node, one per physical core; control on another core).
    {
        std::vector<std::string> given = opt.eal;
        given.insert(given.end(), cfg.nic.eal_args.begin(), cfg.nic.eal_args.end());
        if (!dp::has_option(given, {"-l", "--lcores", "-c"}) && !env.cpus.empty()) {
            dp::Topology topo;
            topo.allowed = env.cpus;
            topo.nic = wire_dev.name;
            std::string err;
            if (dp::read_topology(wire_dev.is_pci ? wire_dev.name : "", topo, err)) {
                const dp::Placement pl =
                    dp::plan_placement(topo, data_lcores_wanted(cfg.nic, wire_dev));
                env.lcores.push_back(pl.control);
                env.lcores.insert(env.lcores.end(), pl.workers.begin(), pl.workers.end());
                std::fprintf(stderr, "nlbd: %s\n", pl.description.c_str());
            } else {
                std::fprintf(stderr,
                             "nlbd: placement: hwloc failed (%s); lcores from the affinity mask\n",
                             err.c_str());
            }
        }
    }
    std::vector<std::string> eal_args =
        dp::build_eal_args(program, opt.eal, cfg.nic.eal_args, wire_dev, local_dev, env);
    // DPDK telemetry (docs/telemetry.md): its socket lives in the EAL runtime
    // directory /var/run/dpdk/<file-prefix>/; a prefix per host makes
    // `dpdk-telemetry.py -f nlbd-<host id>` find this daemon even when
    // several run on one machine (the --in-memory / --no-shconf decision
    // above is already taken, so the prefix shares nothing).
    if (!cfg.telemetry.dpdk_telemetry) {
        if (!dp::has_option(eal_args, {"--no-telemetry"})) eal_args.emplace_back("--no-telemetry");
    } else if (!dp::has_option(eal_args, {"--file-prefix", "--no-telemetry"})) {
        eal_args.push_back("--file-prefix=nlbd-" + std::to_string(cfg.host.id));
    }
    std::fprintf(stderr, "nlbd: EAL args: %s%s\n", join(eal_args).c_str(),
                 env.hugepages_available ? "" : "  (no hugepages: --no-huge fallback)");
    std::vector<char*> eal_argv;
    for (auto& a : eal_args) eal_argv.push_back(a.data());
    eal_argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(eal_args.size()), eal_argv.data()) < 0) {
        std::fprintf(stderr, "nlbd: EAL initialisation failed: %s\n", rte_strerror(rte_errno));
        return 1;
    }

    int rc = 0;
    {
        // --- dispatch plan and ports ---------------------------------------
        std::vector<unsigned> data_lcores;
        for (unsigned l = rte_get_next_lcore(-1, 1, 0); l < RTE_MAX_LCORE; l = rte_get_next_lcore(l, 1, 0))
            data_lcores.push_back(l);
        dp::PortInfo wire, local;
        DispatchPlan plan;
        try {
            plan = plan_dispatch(cfg.nic, dp::port_caps("wire", wire_dev), dp::port_caps("local", local_dev),
                                 data_lcores);
            wire = dp::open_port("wire", wire_dev, cfg.nic, cfg.nic.promiscuous, plan.wire);
            local = dp::open_port("local", local_dev, cfg.nic, false, plan.local);
        } catch (const dp::PortError& e) {
            std::fprintf(stderr, "nlbd: %s\n", e.what());
            rte_eal_cleanup();
            return 1;
        }
        for (const dp::PortInfo* p : {&wire, &local})
            std::fprintf(stderr,
                         "nlbd: port %-5s id %u driver %s MAC %s socket %d, %u rxq x %u rxd / %u txq x "
                         "%u txd, offloads rx 0x%llx tx 0x%llx%s%s\n",
                         p->role.c_str(), p->port_id, p->driver.c_str(),
                         p->mac.to_string().c_str(), p->socket, p->rx_queues, p->rx_descriptors,
                         p->tx_queues, p->tx_descriptors,
                         static_cast<unsigned long long>(p->rx_offloads),
                         static_cast<unsigned long long>(p->tx_offloads),
                         p->rss_hf != 0 ? (", RSS types 0x" + [&] {
                             char b[24];
                             std::snprintf(b, sizeof b, "%llx", static_cast<unsigned long long>(p->rss_hf));
                             return std::string(b);
                         }()).c_str()
                                        : "",
                         p->promiscuous ? ", promiscuous" : "");

        // Start-up failed after the ports were opened: undo, in tear-down order.
        auto abandon_ports = [&]() {
            dp::stop_port(wire);
            dp::stop_port(local);
            dp::close_port(wire);
            dp::close_port(local);
            dp::free_pool(wire);
            dp::free_pool(local);
            rte_eal_cleanup();
            return 1;
        };

        // --- snapshot ----------------------------------------------------
        dp::SnapshotPublisher publisher(plan.workers);
        // Health checks (SPEC §9): declared before the cluster, which holds a
        // raw pointer to it, so that it outlives it.
        std::unique_ptr<health::Checker> health_checker;
        std::unique_ptr<dp::ClusterControl> cluster;
        try {
            cluster = std::make_unique<dp::ClusterControl>(cfg, publisher, wire.pool, wire.mac);
            cluster->reload_source = {opt.config, opt.nic};
            cluster->restore_state(opt.ignore_state);
            cluster->start();
            if (auto checks = health::Checker::checks_from_config(cfg); !checks.empty()) {
                for (const auto& c : checks)
                    std::fprintf(stderr,
                                 "nlbd: health: rule %zu: %s check of %s:%u every %u ms (timeout %u ms, "
                                 "rise %u, fall %u)\n",
                                 c.rule, health::name_of(c.probe.kind).data(),
                                 c.probe.address.to_string().c_str(), unsigned(c.probe.port),
                                 c.interval_ms, c.probe.timeout_ms, c.rise, c.fall);
                health_checker = std::make_unique<health::Checker>(std::move(checks), cfg.rules.size());
                cluster->health = health_checker.get();
                health_checker->start();
            }
        } catch (const std::exception& e) {
            std::fprintf(stderr, "nlbd: %s\n", e.what());
            cluster.reset();
            return abandon_ports();
        }
        const core::Snapshot& snap = *publisher.current();
        std::fprintf(stderr,
                     "nlbd: membership (%s): self %u (%s), members %s, default host %u, epoch %llu, "
                     "%u buckets, mode %s, cluster MAC %s, source MAC %s\n",
                     cluster->dynamic() ? "dynamic, heartbeats; initial view" : "static",
                     unsigned(snap.self), snap.started ? "started" : "not started",
                     hosts_list(snap.members).c_str(), unsigned(snap.default_host),
                     static_cast<unsigned long long>(snap.epoch), snap.buckets,
                     dp::name_of(snap.mode), snap.cluster_mac.to_string().c_str(),
                     snap.source_mac.to_string().c_str());
        print_rules(stderr, cfg, &snap);

        // --- workers (docs/multicore.md) ------------------------------------
        const unsigned n_workers = plan.workers;
        Rings rings;
        std::vector<std::unique_ptr<dp::Worker>> workers;
        std::unique_ptr<dp::Distributor> distributor;
        const int socket = wire.socket < 0 ? SOCKET_ID_ANY : wire.socket;
        const std::string tag = std::to_string(cfg.host.id);
        bool l4_hash = false;
        for (const auto& f : cfg.nic.rss_fields) l4_hash |= f == "tcp" || f == "udp";
        try {
            dp::DistributorConfig dc;
            std::vector<dp::TxPath> wire_tx(n_workers), local_tx(n_workers);
            for (unsigned i = 0; i < n_workers; ++i) {
                if (plan.mode == config::DispatchMode::distributor)
                    dc.rings[i] = rings.make("nlbd_dist" + tag + "_" + std::to_string(i), kDistributorRing, socket);
                if (wire.tx_queues > 1) wire_tx[i].queue = static_cast<uint16_t>(i);
                else if (i != 0) wire_tx[i].ring = rings.make("nlbd_txw" + tag + "_" + std::to_string(i), kTxRing, socket);
                if (local.tx_queues > 1) local_tx[i].queue = static_cast<uint16_t>(i);
                else if (i != 0) local_tx[i].ring = rings.make("nlbd_txl" + tag + "_" + std::to_string(i), kTxRing, socket);
            }
            const uint64_t seed = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}() ^
                                  static_cast<uint64_t>(Clock::now().time_since_epoch().count());
            for (unsigned i = 0; i < n_workers; ++i) {
                dp::WorkerConfig wc;
                wc.index = static_cast<uint16_t>(i);
                wc.wire_port = wire.port_id;
                wc.local_port = local.port_id;
                wc.burst = cfg.nic.burst;
                wc.idle = cfg.dataplane.idle_policy;
                wc.wire_mac = wire.mac;
                wc.local_mac = local.mac;
                if (plan.mode == config::DispatchMode::distributor) {
                    wc.wire_ring = dc.rings[i];
                    wc.n_wire_rx_queues = 0;
                } else {
                    // RX queues round-robin over the workers.
                    wc.n_wire_rx_queues = 0;
                    for (unsigned q = i; q < wire.rx_queues; q += n_workers) {
                        if (wc.n_wire_rx_queues == dp::kMaxWorkerQueues)
                            throw std::runtime_error("more than " + std::to_string(dp::kMaxWorkerQueues) +
                                                     " wire RX queues per worker");
                        wc.wire_rx_queues[wc.n_wire_rx_queues++] = static_cast<uint16_t>(q);
                    }
                }
                wc.local_rx = i < local.rx_queues;
                wc.local_rx_queue = static_cast<uint16_t>(i);
                wc.wire_tx = wire_tx[i];
                wc.local_tx = local_tx[i];
                if (i == 0) {
                    for (unsigned j = 1; j < n_workers; ++j) {
                        wc.drain_wire[j - 1] = wire_tx[j].ring;
                        wc.drain_local[j - 1] = local_tx[j].ring;
                    }
                    if (wire.tx_queues == 1 || local.tx_queues == 1)
                        wc.n_drain = static_cast<uint16_t>(n_workers - 1);
                    wc.control_tx = cluster->control_tx();
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
                wc.heartbeat_ethertype = cfg.cluster.heartbeat_ethertype;
                wc.heartbeat_rx = cluster->heartbeat_rx();
                workers.push_back(std::make_unique<dp::Worker>(wc, publisher.pointer()));
            }
            if (plan.mode == config::DispatchMode::distributor) {
                dc.wire_port = wire.port_id;
                dc.burst = cfg.nic.burst;
                dc.idle = cfg.dataplane.idle_policy;
                dc.workers = static_cast<uint16_t>(n_workers);
                dc.l4 = l4_hash;
                dc.heartbeat_ethertype = cfg.cluster.heartbeat_ethertype;
                dc.heartbeat_rx = cluster->heartbeat_rx();
                distributor = std::make_unique<dp::Distributor>(dc);
            }
        } catch (const std::exception& e) {
            std::fprintf(stderr, "nlbd: data plane: %s\n", e.what());
            workers.clear();
            distributor.reset();
            cluster.reset();
            return abandon_ports();
        }
        {
            std::string lc;
            for (unsigned l : plan.worker_lcores) lc += (lc.empty() ? "" : ",") + std::to_string(l);
            if (plan.mode == config::DispatchMode::distributor)
                std::fprintf(stderr,
                             "nlbd: dispatch distributor: RX lcore %d reads the wire queue and spreads "
                             "flows (hash on %s) to %u worker(s) on lcores %s; TX %s\n",
                             plan.distributor_lcore, l4_hash ? "addresses + TCP/UDP ports" : "addresses",
                             n_workers, lc.c_str(),
                             wire.tx_queues > 1 ? "a wire queue per worker" : "through worker 0");
            else
                std::fprintf(stderr,
                             "nlbd: dispatch rss: %u worker(s) on lcores %s, %u wire RX queue(s) "
                             "round-robin, TX %s\n",
                             n_workers, lc.empty() ? "(main)" : lc.c_str(), unsigned(wire.rx_queues),
                             wire.tx_queues > 1 ? "a wire queue per worker" : "through worker 0");
            for (const auto& n : plan.notes) std::fprintf(stderr, "nlbd: dispatch: note: %s\n", n.c_str());
        }

        // Live counters: the sum over the workers and the distributor
        // (control thread only).
        auto total_counters = [&](dp::RunReport& r) {
            auto sum = std::make_shared<dp::WorkerCounters>();
            std::fill(std::begin(r.verdicts), std::end(r.verdicts), 0);
            r.frags = {};
            for (const auto& w : workers) {
                dp::add_counters(*sum, w->counters());
                uint64_t v[kVerdictCount];
                w->verdicts_at_exit(v);
                for (unsigned i = 0; i < kVerdictCount; ++i) r.verdicts[i] += v[i];
                dp::add_frag_stats(r.frags, w->frag_stats());
            }
            if (distributor) {
                dp::add_counters(*sum, distributor->counters());
                for (unsigned i = 0; i < kVerdictCount; ++i)
                    r.verdicts[i] += dp::read_counter(distributor->counters().verdicts[i]);
            }
            r.owned_counters = sum;
            r.counters = sum.get();
        };
        auto workers_json = [&]() {
            std::string j = "\"workers\":{\"dispatch\":\"" + std::string(config::dispatch_name(plan.mode)) +
                            "\",\"count\":" + std::to_string(n_workers) + ",\"per_worker\":[";
            for (unsigned i = 0; i < n_workers; ++i) {
                const dp::WorkerCounters& c = workers[i]->counters();
                uint64_t accepted = 0;
                for (Verdict v : {Verdict::accepted, Verdict::accepted_conn, Verdict::default_host_accepted,
                                  Verdict::passed_non_vip})
                    accepted += dp::read_counter(c.verdicts[static_cast<unsigned>(v)]);
                j += (i ? "," : "") + std::string("{\"index\":") + std::to_string(i) +
                     ",\"lcore\":" +
                     (i < plan.worker_lcores.size() ? std::to_string(plan.worker_lcores[i]) : "null") +
                     ",\"rx_total\":" + std::to_string(dp::read_counter(c.rx_total)) +
                     ",\"to_local\":" + std::to_string(accepted) +
                     ",\"loops\":" + std::to_string(dp::read_counter(c.loops)) +
                     ",\"idle_sleeps\":" + std::to_string(dp::read_counter(c.idle_sleeps)) +
                     ",\"tx_handed\":" + std::to_string(dp::read_counter(c.tx_handed)) +
                     ",\"tx_drained\":" + std::to_string(dp::read_counter(c.tx_drained)) +
                     ",\"connections\":" + std::to_string(workers[i]->conn_stats().entries) + "}";
            }
            j += "]";
            if (distributor) {
                const dp::WorkerCounters& c = distributor->counters();
                j += ",\"distributor\":{\"lcore\":" + std::to_string(plan.distributor_lcore) +
                     ",\"rx_packets\":" + std::to_string(dp::read_counter(c.wire.rx_packets)) +
                     ",\"dispatch_full\":" +
                     std::to_string(dp::read_counter(c.verdicts[static_cast<unsigned>(Verdict::dispatch_full)])) +
                     ",\"heartbeats\":" +
                     std::to_string(dp::read_counter(c.verdicts[static_cast<unsigned>(Verdict::heartbeat)])) +
                     ",\"loops\":" + std::to_string(dp::read_counter(c.loops)) +
                     ",\"idle_sleeps\":" + std::to_string(dp::read_counter(c.idle_sleeps)) +
                     ",\"dispatched\":[";
                for (unsigned i = 0; i < n_workers; ++i)
                    j += (i ? "," : "") + std::to_string(distributor->dispatched(i));
                j += "]}";
            }
            return j + "}";
        };
        auto live_report = [&](dp::RunReport& r) {
            r.cfg = &cluster->config();
            r.snap = publisher.current().get();
            total_counters(r);
            core::ConnStats cs;
            uint64_t capacity = 0;
            for (const auto& w : workers) {
                const core::ConnStats& s = w->conn_stats();
                cs.entries += s.entries;
                cs.inserted += s.inserted;
                cs.removed += s.removed;
                for (size_t i = 0; i < cs.expired.size(); ++i) cs.expired[i] += s.expired[i];
                cs.evicted += s.evicted;
                cs.evicted_established += s.evicted_established;
                cs.insert_failed += s.insert_failed;
                capacity += w->conn_capacity();
            }
            uint64_t expired = 0;
            for (uint64_t e : cs.expired) expired += e;
            const dp::ClusterControl::HeldForeign hf = cluster->held_foreign();
            r.extra = "\"connections\":{\"entries\":" + std::to_string(cs.entries) +
                      ",\"capacity\":" + std::to_string(capacity) +
                      ",\"inserted\":" + std::to_string(cs.inserted) +
                      ",\"removed\":" + std::to_string(cs.removed) +
                      ",\"expired\":" + std::to_string(expired) +
                      ",\"evicted\":" + std::to_string(cs.evicted) +
                      ",\"evicted_established\":" + std::to_string(cs.evicted_established) +
                      ",\"insert_failed\":" + std::to_string(cs.insert_failed) +
                      ",\"held_foreign\":" + (hf.valid ? std::to_string(hf.count) : std::string("null")) +
                      "},\n" + workers_json() + ",\n" + cluster->stats_members();
        };
        // The host's count: the sum over the workers, valid only when every
        // worker finished a sweep under the snapshot now published.
        cluster->held_foreign = [&]() {
            dp::ClusterControl::HeldForeign h;
            const core::Snapshot* s = publisher.current().get();
            if (s == nullptr) return h;
            uint64_t total = 0;
            for (const auto& w : workers) {
                const uint64_t hf = dp::read_counter(w->counters().held_foreign);
                if (hf == dp::kHeldForeignUnknown || (hf >> 32) != (s->generation & 0xffffffffu)) return h;
                total += hf & 0xffffffffu;
            }
            h.count = static_cast<uint32_t>(std::min<uint64_t>(total, 0xfffffffeu));
            h.generation = s->generation;
            h.valid = true;
            return h;
        };
        // Receive-path progress for the liveness clock (multi-lcore only: one
        // lcore runs control between its own polls).
        if (workers.size() > 1 || distributor)
            cluster->rx_loops = [&](std::vector<uint64_t>& v) {
                for (const auto& w : workers) v.push_back(dp::read_counter(w->counters().loops));
                if (distributor) v.push_back(dp::read_counter(distributor->counters().loops));
            };
        cluster->stats_provider = [&]() {
            dp::RunReport r;
            live_report(r);
            r.wire_hw = dp::port_stats(wire);
            r.local_hw = dp::port_stats(local);
            return dp::stats_json(r);
        };

        std::unique_ptr<ctl::ControlServer> server;
        std::string default_link;  // symlink we created, removed at exit
        if (!opt.no_control_socket) {
            const std::string path = opt.control_socket
                                         ? *opt.control_socket
                                         : "/run/nlbd/nlbd-" + std::to_string(cfg.host.id) + ".sock";
            try {
                server = std::make_unique<ctl::ControlServer>(
                    path, [c = cluster.get()](const std::string& cmd, const std::vector<std::string>& args) {
                        return c->post(cmd, args);
                    });
                std::fprintf(stderr, "nlbd: control socket %s\n", path.c_str());
                // nlbctl's default is ctl::kDefaultSocketPath: point it at the
                // first daemon on this machine (never replaces a live file).
                if (!opt.control_socket) {
                    const std::string link = ctl::kDefaultSocketPath;
                    struct stat st;
                    if (lstat(link.c_str(), &st) == 0 && S_ISLNK(st.st_mode) &&
                        ::stat(link.c_str(), &st) != 0)
                        ::unlink(link.c_str());  // dangling: its daemon is gone
                    if (::symlink(path.substr(path.rfind('/') + 1).c_str(), link.c_str()) == 0)
                        default_link = link;
                }
            } catch (const std::exception& e) {
                std::fprintf(stderr, "nlbd: warning: no control socket: %s\n", e.what());
            }
        }

        // --- telemetry (docs/telemetry.md) -------------------------------
        // The control loop refreshes the cache; DPDK's telemetry threads and
        // the Prometheus thread only read it.
        auto telemetry_cache = std::make_shared<dp::TelemetryCache>();
        std::unique_ptr<dp::PrometheusServer> prometheus;
        const bool dpdk_telemetry =
            cfg.telemetry.dpdk_telemetry && !dp::has_option(eal_args, {"--no-telemetry"});
        const bool telemetry_on = cfg.telemetry.prometheus || dpdk_telemetry;
        if (telemetry_on) {
            try {
                telemetry_cache->update(cluster->run_command("stats", {}));
            } catch (const std::exception& e) {
                std::fprintf(stderr, "nlbd: warning: telemetry: %s\n", e.what());
            }
        }
        if (dpdk_telemetry) {
            if (dp::register_dpdk_telemetry(telemetry_cache))
                std::fprintf(stderr,
                             "nlbd: DPDK telemetry: /nlbd/stats /nlbd/rules /nlbd/cluster on "
                             "%s/dpdk_telemetry.v2\n",
                             rte_eal_get_runtime_dir());
            else
                std::fprintf(stderr, "nlbd: warning: cannot register the DPDK telemetry commands\n");
        }
        if (cfg.telemetry.prometheus) {
            try {
                prometheus = std::make_unique<dp::PrometheusServer>(
                    cfg.telemetry.prometheus_address, cfg.telemetry.prometheus_port,
                    [c = telemetry_cache]() {
                        const dp::TelemetryCache::Doc d = c->get();
                        if (d == nullptr) throw std::runtime_error("no statistics yet");
                        return dp::format_metrics(*d);
                    });
                std::fprintf(stderr, "nlbd: prometheus: http://%s/metrics\n",
                             cfg.telemetry.prometheus_listen.c_str());
            } catch (const std::exception& e) {
                std::fprintf(stderr, "nlbd: warning: %s\n", e.what());
            }
        }

        // Remote control over mutual TLS ([control] remote_*, docs/remote.md):
        // the same commands as the UNIX socket, through the same handler,
        // authorised per command by the client certificate's CN.
        // Reload (docs/reload.md): what main owns is rebuilt here, on the
        // control thread, after ClusterControl applied the new configuration.
        // Both run only on the control thread, so the swaps need no lock.
        cluster->on_reloaded = [&](const config::Config& before, const config::Config& after) {
            std::string note;
            if (health_checker) {
                cluster->health = nullptr;
                health_checker->stop();
                health_checker.reset();
            }
            if (auto checks = health::Checker::checks_from_config(after); !checks.empty()) {
                health_checker = std::make_unique<health::Checker>(std::move(checks), after.rules.size());
                cluster->health = health_checker.get();
                health_checker->start();
            }
            if (before.telemetry.prometheus_listen != after.telemetry.prometheus_listen) {
                if (prometheus) prometheus->stop();
                prometheus.reset();
                if (after.telemetry.prometheus) {
                    try {
                        prometheus = std::make_unique<dp::PrometheusServer>(
                            after.telemetry.prometheus_address, after.telemetry.prometheus_port,
                            [c = telemetry_cache]() {
                                const dp::TelemetryCache::Doc d = c->get();
                                if (d == nullptr) throw std::runtime_error("no statistics yet");
                                return dp::format_metrics(*d);
                            });
                        std::fprintf(stderr, "nlbd: prometheus: http://%s/metrics\n",
                                     after.telemetry.prometheus_listen.c_str());
                    } catch (const std::exception& e) {
                        note = std::string("prometheus: ") + e.what();
                    }
                }
            }
            return note;
        };

        std::unique_ptr<ctl::TlsControlServer> remote;
        if (!cfg.control.remote_listen.empty()) {
            try {
                ctl::TlsServerOptions ro;
                ro.listen = cfg.control.remote_listen;
                ro.cert_file = cfg.control.remote_cert;
                ro.key_file = cfg.control.remote_key;
                ro.ca_file = cfg.control.remote_ca;
                for (const auto& [cn, role] : cfg.control.remote_allow) ro.allow[cn] = ctl::parse_role(role);
                remote = std::make_unique<ctl::TlsControlServer>(
                    std::move(ro), [c = cluster.get()](const std::string& cmd, const std::vector<std::string>& args) {
                        return c->post(cmd, args);
                    });
                std::fprintf(stderr, "nlbd: remote control (mutual TLS) on %s, port %u, %zu client CNs allowed\n",
                             cfg.control.remote_listen.c_str(), unsigned(remote->port()),
                             cfg.control.remote_allow.size());
            } catch (const std::exception& e) {
                std::fprintf(stderr, "nlbd: warning: no remote control: %s\n", e.what());
            }
        }

        ControlState control;
        control.cluster = cluster.get();
        // Refreshed while something reads the cache (DPDK telemetry, or a
        // Prometheus listener, which a reload may add or remove).
        control.telemetry = [c = cluster.get(), cache = telemetry_cache, dpdk_telemetry,
                             due = dp::TelemetryRefresher(dp::kTelemetryRefresh)](
                                Clock::time_point now) mutable {
                if (!dpdk_telemetry && !c->config().telemetry.prometheus) return;
                if (!due.due(now)) return;
                try {
                    cache->update(c->run_command("stats", {}));
                } catch (...) {
                    // Keep the previous document; the next interval retries.
                }
            };
        if (opt.run_for_s > 0)
            control.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(opt.run_for_s));

        const unsigned main_lcore = rte_get_main_lcore();
        const char* idle_name = cfg.dataplane.idle_policy == config::IdlePolicy::poll ? "poll" : "adaptive";
        if (!plan.worker_lcores.empty()) {
            // Stop order: control's stop ends the distributor first; then the
            // workers, which empty their rings before returning; then worker 0
            // sends what the others handed it in their last loop.
            std::atomic<bool> workers_stop{false};
            std::vector<dp::Worker::Launch> launches(n_workers);
            dp::Distributor::Launch dlaunch{distributor.get(), &control.stop};
            std::vector<unsigned> launched;
            std::fprintf(stderr, "nlbd: lcores: control on %u, %u worker(s)%s; idle policy %s\n",
                         main_lcore, n_workers, distributor ? " + RX distributor" : "", idle_name);
            for (unsigned i = 0; i < n_workers && rc == 0; ++i) {
                launches[i] = {workers[i].get(), &workers_stop};
                if (rte_eal_remote_launch(&dp::Worker::lcore_main, &launches[i], plan.worker_lcores[i]) != 0) {
                    std::fprintf(stderr, "nlbd: cannot launch worker %u on lcore %u\n", i, plan.worker_lcores[i]);
                    rc = 1;
                } else {
                    launched.push_back(plan.worker_lcores[i]);
                }
            }
            bool dist_launched = false;
            if (rc == 0 && distributor) {
                if (rte_eal_remote_launch(&dp::Distributor::lcore_main, &dlaunch,
                                          static_cast<unsigned>(plan.distributor_lcore)) != 0) {
                    std::fprintf(stderr, "nlbd: cannot launch the distributor on lcore %d\n", plan.distributor_lcore);
                    rc = 1;
                } else {
                    dist_launched = true;
                }
            }
            if (rc != 0) control.stop.store(true, std::memory_order_relaxed);
            while (!control.stop.load(std::memory_order_relaxed)) {
                const timespec ts{0, 1'000'000};
                nanosleep(&ts, nullptr);
                control.tick();
            }
            if (dist_launched) rte_eal_wait_lcore(static_cast<unsigned>(plan.distributor_lcore));
            workers_stop.store(true, std::memory_order_relaxed);
            for (unsigned l : launched) rte_eal_wait_lcore(l);
            if (!launched.empty()) workers[0]->drain_after_stop();
        } else {
            std::fprintf(stderr, "nlbd: lcores: one lcore (%u): worker and control share it; idle policy %s\n",
                         main_lcore, idle_name);
            workers[0]->run(control.stop, dp::ControlTick{&ControlState::tick_fn, &control, 1024});
        }

        // --- tear-down and report ---------------------------------------
        cluster->close_commands();
        if (prometheus) prometheus->stop();
        dp::set_dpdk_telemetry_source(nullptr);
        if (health_checker) health_checker->stop();
        if (server) server->stop();
        if (remote) remote->stop();
        dp::RunReport report;
        live_report(report);
        dp::stop_port(wire);
        dp::stop_port(local);
        report.wire_hw = dp::port_stats(wire);
        report.local_hw = dp::port_stats(local);
        dp::close_port(wire);
        dp::close_port(local);

        if (opt.stats_json) {
            std::ofstream f(*opt.stats_json, std::ios::trunc);
            f << dp::stats_json(report);
            f.close();
            if (!f) {
                std::fprintf(stderr, "nlbd: cannot write %s: %s\n", opt.stats_json->c_str(),
                             std::strerror(errno));
                rc = 1;
            }
        }
        dp::print_summary(stderr, report);
        server.reset();
        if (!default_link.empty()) ::unlink(default_link.c_str());
        cluster.reset();  // frees the frames still in its rings
        dp::free_pool(wire);
        dp::free_pool(local);
    }
    rte_eal_cleanup();
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    try {
        opt = parse_options(argc, argv);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "nlbd: %s\n", e.what());
        usage(stderr);
        return 2;
    }

    config::Config cfg;
    try {
        cfg = config::load_config(opt.config, opt.nic);
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nlbd: %s: %s\n", opt.config.c_str(), e.what());
        return 1;
    }

    if (opt.check_config) {
        std::shared_ptr<const core::Snapshot> snap;
        std::string warning;
        if (!cfg.cluster.secret_file.empty()) {
            try {
                (void)cluster::load_secret(cfg.cluster.secret_file);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "nlbd: %s: cluster.secret_file: %s\n", cfg.file.c_str(), e.what());
                return 1;
            }
        }
        if (!cfg.control.remote_listen.empty()) {
            try {
                ctl::TlsServerOptions ro;
                ro.cert_file = cfg.control.remote_cert;
                ro.key_file = cfg.control.remote_key;
                ro.ca_file = cfg.control.remote_ca;
                ctl::check_server_files(ro);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "nlbd: %s: [control]: %s\n", cfg.file.c_str(), e.what());
                return 1;
            }
        }
        try {
            snap = core::compile_snapshot(dp::static_snapshot_input(cfg, &warning));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "nlbd: %s: cannot compile a snapshot: %s\n", cfg.file.c_str(),
                         e.what());
            return 1;
        }
        print_config_summary(stdout, cfg, snap.get());
        if (!warning.empty() && !cfg.cluster.static_members.empty())
            std::printf("  warning: %s\n", warning.c_str());
        std::printf("configuration OK\n");
        return 0;
    }

    try {
        return run(opt, cfg, argv[0]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nlbd: fatal: %s\n", e.what());
        return 1;
    }
}
