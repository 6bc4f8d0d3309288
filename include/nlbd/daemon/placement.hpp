#pragma once
// Lcore placement (SPEC §6, issue 5): which CPUs the workers and the control
// (DPDK main) lcore run on when neither the user nor the NIC profile pinned
// them with -l / --lcores / -c.
//
// Two halves:
//   plan_placement()  pure policy over a Topology description; unit-tested
//                     with synthetic machines (tests/unit/placement_test.cpp).
//   read_topology()   fills a Topology from the real machine through hwloc.
//
// Policy (plan_placement):
//   - the NIC's NUMA node is the "home" node; unknown (vdev, no PCI info):
//     the node of the first allowed CPU;
//   - workers: one PU per physical core (never two SMT siblings of one core),
//     cores of the home node first (ascending), then other nodes' cores if
//     the home node has too few; capped at what the machine allows, with a
//     warning;
//   - control: a PU on a core no worker uses; preferred on another node,
//     else the home node's last unused core, else (too few cores) an unused
//     SMT sibling of a worker core, else (no free PU at all) the first
//     allowed PU is kept for control and the workers shrink by one;
//   - 2 allowed CPUs: control on the lower, one worker on the higher
//     (today's behaviour); 1 CPU: single-lcore mode (the worker runs on the
//     main lcore, workers is empty).
//   Only CPUs in the allowed set are ever chosen.

#include <cstdint>
#include <string>
#include <vector>

namespace nlbd::daemon {

inline constexpr int kUnknownNode = -1;

struct TopoCore {
    unsigned id = 0;            // physical core index (hwloc logical index)
    int node = 0;               // NUMA node it belongs to (kUnknownNode: none)
    std::vector<unsigned> pus;  // OS CPU numbers of its PUs (SMT siblings), ascending
};

struct Topology {
    std::vector<TopoCore> cores;    // all cores of the machine, any order
    int nic_node = kUnknownNode;    // NUMA node of the wire NIC
    std::string nic;                // NIC name for the description ("" : none)
    std::vector<unsigned> allowed;  // CPUs the process may run on (empty: all PUs)
};

struct Placement {
    unsigned control = 0;            // main lcore (CPU number)
    std::vector<unsigned> workers;   // worker lcores; empty: single-lcore mode
    int node = kUnknownNode;         // home node the workers were placed on
    std::vector<unsigned> avoided;   // SMT siblings of worker PUs left idle
    std::vector<std::string> warnings;
    std::string description;         // one human-readable line, "placement: ..."

    // EAL -l value: control and workers, ascending, comma separated.
    std::string lcore_list() const;
};

// Pure. wanted_workers == 0 is treated as 1. A topology with no allowed PU
// at all yields control 0 and no workers (single lcore on CPU 0).
Placement plan_placement(const Topology& topo, unsigned wanted_workers);

// Reads the machine with hwloc: cores, PUs, NUMA nodes, and when nic_pci is
// a PCI address ("0000:3b:00.0" / "3b:00.0") the NIC's NUMA node (I/O
// discovery enabled). `allowed` is left for the caller (the affinity mask).
// Returns false (topo untouched) when hwloc cannot load the topology; error
// then says why.
bool read_topology(const std::string& nic_pci, Topology& topo, std::string& error);

}  // namespace nlbd::daemon
