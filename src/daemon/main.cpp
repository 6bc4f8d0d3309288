// nlbd: the command line (SPEC §6, §8); the daemon itself is daemon.hpp.
//
//   nlbd [--config FILE (default /etc/nlbd/cluster.toml)] [--nic FILE] [--run-for SECONDS] [--stats-json FILE]
//        [--check-config] [--control-socket PATH | --no-control-socket]
//        [-- EAL options]
//
// Load + validate the configuration (a bad config never starts an engine),
// then --check-config prints a summary, or a Daemon starts, runs until a
// signal or --run-for, stops and reports.

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "nlbd/cluster/heartbeat.hpp"
#include "nlbd/config/config.hpp"
#include "nlbd/ctl/tls_server.hpp"
#include "nlbd/daemon/control.hpp"
#include "nlbd/daemon/daemon.hpp"
#include "nlbd/daemon/stats.hpp"
#include "nlbd/log/log.hpp"

namespace {

using namespace nlbd;

using daemon::Options;

// Where the package's example goes and the unit looks (docs/install.md).
constexpr const char* kDefaultConfig = "/etc/nlbd/cluster.toml";

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
        {"--config", "FILE", "cluster file (TOML; default /etc/nlbd/cluster.toml)",
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
    std::fprintf(out, "usage: nlbd [--config FILE] [options] [-- EAL options]\n");
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
    if (o.config.empty()) o.config = kDefaultConfig;
    return o;
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
        NLBD_LOG(error, "%s", e.what());
        return 1;
    } catch (const std::exception& e) {
        NLBD_LOG(error, "%s: %s", opt.config.c_str(), e.what());
        return 1;
    }

    if (opt.check_config) {
        std::shared_ptr<const core::Snapshot> snap;
        std::string warning;
        if (!cfg.cluster.secret_file.empty()) {
            try {
                (void)cluster::load_secret(cfg.cluster.secret_file);
            } catch (const std::exception& e) {
                NLBD_LOG(error, "%s: cluster.secret_file: %s", cfg.file.c_str(), e.what());
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
                NLBD_LOG(error, "%s: [control]: %s", cfg.file.c_str(), e.what());
                return 1;
            }
        }
        try {
            snap = core::compile_snapshot(daemon::static_snapshot_input(cfg, &warning));
        } catch (const std::exception& e) {
            NLBD_LOG(error, "%s: cannot compile a snapshot: %s", cfg.file.c_str(), e.what());
            return 1;
        }
        daemon::print_config_summary(stdout, cfg, snap.get());
        if (!warning.empty() && !cfg.cluster.static_members.empty())
            std::printf("  warning: %s\n", warning.c_str());
        std::printf("configuration OK\n");
        return 0;
    }

    daemon::install_signal_handlers();  // SIGHUP must never end nlbd, even while it starts
    log::set_level(cfg.log_level);
    try {
        daemon::Daemon d(opt, cfg, argv[0]);
        return d.run();
    } catch (const daemon::StartError& e) {
        NLBD_LOG(error, "%s", e.what());
        return 1;
    } catch (const std::exception& e) {
        NLBD_LOG(error, "fatal: %s", e.what());
        return 1;
    }
}
