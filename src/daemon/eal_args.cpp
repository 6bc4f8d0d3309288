#include "nlbd/daemon/eal_args.hpp"

#include <sched.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace nlbd::daemon {
namespace {

bool hex_run(const std::string& s, size_t pos, size_t n) {
    if (pos + n > s.size()) return false;
    for (size_t i = 0; i < n; ++i)
        if (!std::isxdigit(static_cast<unsigned char>(s[pos + i]))) return false;
    return true;
}

// bus:device.function at pos: "bb:dd.f"
bool bdf_at(const std::string& s, size_t pos) {
    return hex_run(s, pos, 2) && pos + 2 < s.size() && s[pos + 2] == ':' &&
           hex_run(s, pos + 3, 2) && pos + 5 < s.size() && s[pos + 5] == '.' &&
           pos + 6 < s.size() && s[pos + 6] >= '0' && s[pos + 6] <= '7' &&
           (pos + 7 == s.size() || s[pos + 7] == ',');
}

std::string before_comma(const std::string& s) { return s.substr(0, s.find(',')); }

}  // namespace

bool is_pci_address(const std::string& device) {
    if (bdf_at(device, 0)) return true;
    return hex_run(device, 0, 4) && device.size() > 4 && device[4] == ':' && bdf_at(device, 5);
}

PortDevice port_device(const std::string& device) {
    PortDevice p;
    p.device = device;
    p.is_pci = is_pci_address(device);
    p.name = before_comma(device);
    if (p.is_pci && bdf_at(device, 0)) p.name = "0000:" + p.name;
    return p;
}

bool has_option(const std::vector<std::string>& args, std::initializer_list<const char*> opts) {
    for (const auto& a : args) {
        for (const char* o : opts) {
            const std::string opt = o;
            if (a == opt) return true;
            if (opt.size() > 2 && opt[1] == '-' && a.rfind(opt + "=", 0) == 0) return true;
            // Short options with the value attached: "-l0,1", "-m512".
            if (opt.size() == 2 && opt[0] == '-' && a.size() > 2 && a.rfind(opt, 0) == 0 &&
                a[1] != '-')
                return true;
        }
    }
    return false;
}

std::vector<std::string> build_eal_args(const std::string& program,
                                        const std::vector<std::string>& user_args,
                                        const std::vector<std::string>& profile_args,
                                        const PortDevice& wire, const PortDevice& local,
                                        const EalEnvironment& env) {
    std::vector<std::string> args{program};
    args.insert(args.end(), user_args.begin(), user_args.end());
    args.insert(args.end(), profile_args.begin(), profile_args.end());
    // Decisions already taken by the user or the profile.
    const auto given = args;

    const bool user_memory = has_option(given, {"--no-huge", "-m", "--socket-mem"});
    const bool user_sharing = has_option(given, {"--in-memory", "--file-prefix", "--no-shconf"});
    if (!env.hugepages_available && !user_memory) {
        args.insert(args.end(), {"--no-huge", "-m", std::to_string(env.no_huge_memory_mb)});
        if (!user_sharing) args.push_back("--no-shconf");
    } else if (!user_sharing) {
        if (env.file_prefix.empty()) args.push_back("--in-memory");
        else args.push_back("--file-prefix=" + env.file_prefix);
    }

    if (!wire.is_pci && !local.is_pci && !has_option(given, {"--no-pci"}))
        args.push_back("--no-pci");

    if (!has_option(given, {"-l", "--lcores", "-c"}) && !env.lcores.empty()) {
        std::vector<unsigned> sorted = env.lcores;
        std::sort(sorted.begin(), sorted.end());
        sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
        std::string list;
        for (unsigned c : sorted) {
            if (!list.empty()) list += ',';
            list += std::to_string(c);
        }
        args.insert(args.end(), {"-l", list});
        if (env.lcores[0] != sorted[0] && !has_option(given, {"--main-lcore"}))
            args.insert(args.end(), {"--main-lcore", std::to_string(env.lcores[0])});
    } else if (!has_option(given, {"-l", "--lcores", "-c"}) && !env.cpus.empty()) {
        std::string list = std::to_string(env.cpus[0]);
        if (env.cpus.size() > 1) {
            list += ',';
            list += std::to_string(env.cpus[1]);
        }
        args.insert(args.end(), {"-l", list});
    }

    for (const PortDevice* p : {&wire, &local}) {
        if (p->is_pci) args.insert(args.end(), {"-a", p->device});
        else args.insert(args.end(), {"--vdev", p->device});
    }
    return args;
}

EalEnvironment probe_environment() {
    EalEnvironment env;

    long free_pages = 0;
    std::ifstream meminfo("/proc/meminfo");
    for (std::string line; std::getline(meminfo, line);) {
        if (line.rfind("HugePages_Free:", 0) == 0) {
            std::istringstream(line.substr(15)) >> free_pages;
            break;
        }
    }
    bool mounted = false;
    std::ifstream mounts("/proc/mounts");
    for (std::string line; std::getline(mounts, line);) {
        std::istringstream ls(line);
        std::string dev, dir, type;
        ls >> dev >> dir >> type;
        if (type == "hugetlbfs") mounted = true;
    }
    env.hugepages_available = free_pages > 0 && mounted;

    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (unsigned c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) env.cpus.push_back(c);
    }
    return env;
}

}  // namespace nlbd::daemon
