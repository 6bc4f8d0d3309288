#pragma once
// The EAL command line nlbd starts DPDK with (SPEC §6, §8). Pure: the facts
// about the machine come in as EalEnvironment, so the policy is unit-tested
// without DPDK (tests/unit/eal_args_test.cpp).
//
// Order: program name, the user's options after `--`, the NIC profile's
// [eal] options, then what nlbd adds automatically, each only when the user
// did not decide it already:
//   --file-prefix=P        hugepages: a shared configuration under
//                          /var/run/dpdk/P, so that secondary processes
//                          (dpdk-dumpcap, dpdk-proc-info) attach with the same
//                          prefix; P = env.file_prefix ("nlbd-<host id>"),
//                          so several nlbd processes may run at once
//   --in-memory            hugepages and no env.file_prefix
//   --no-huge -m N --no-shconf   no usable hugepages (--in-memory is not
//                          allowed together with --no-huge in DPDK 22.11)
//   --no-pci               neither port is a PCI address
//   -l c0,c1               two lcores from the process affinity (control +
//                          worker); one CPU: -l c0, the worker runs on main;
//                          or env.lcores (hwloc placement) + --main-lcore
//   --vdev DEV / -a PCI    the two ports

#include <cstdint>
#include <string>
#include <vector>

namespace nlbd::daemon {

struct EalEnvironment {
    bool hugepages_available = true;  // HugePages_Free > 0 and hugetlbfs mounted
    std::vector<unsigned> cpus;       // CPUs the process may run on, ascending
    uint32_t no_huge_memory_mb = 512; // -m value when falling back to --no-huge
    // Lcores chosen by placement (src/dp/placement.cpp): control first, then
    // the workers. Empty: the first two of `cpus`. Used only when the user
    // and the profile gave no -l/--lcores/-c; adds --main-lcore when the
    // control lcore is not the lowest.
    std::vector<unsigned> lcores;
    // EAL file prefix with hugepages (empty: --in-memory, nothing shared).
    std::string file_prefix;
};

struct PortDevice {
    std::string device;  // as configured
    bool is_pci = false;
    std::string name;    // what rte_eth_dev_get_port_by_name() knows it as
};

// "0000:01:00.0" or "01:00.0" (optionally followed by ",key=val" devargs).
bool is_pci_address(const std::string& device);

// Splits a configured device into its kind and ethdev name: vdevs are named
// by the part before the first comma; PCI addresses get the 0000: domain.
PortDevice port_device(const std::string& device);

// True when args contains any of the options (exact match, or "--opt=...").
bool has_option(const std::vector<std::string>& args, std::initializer_list<const char*> opts);

std::vector<std::string> build_eal_args(const std::string& program,
                                        const std::vector<std::string>& user_args,
                                        const std::vector<std::string>& profile_args,
                                        const PortDevice& wire, const PortDevice& local,
                                        const EalEnvironment& env);

// Reads /proc/meminfo, /proc/mounts and the affinity mask.
EalEnvironment probe_environment();

}  // namespace nlbd::daemon
