#include "nlbd/daemon/placement.hpp"

#include <hwloc.h>

#include <algorithm>
#include <set>

namespace nlbd::daemon {
namespace {

// A core restricted to the allowed CPUs.
struct Usable {
    const TopoCore* core;
    std::vector<unsigned> pus;  // allowed PUs of the core, ascending
};

const TopoCore* core_of(const Topology& topo, unsigned cpu) {
    for (const auto& c : topo.cores)
        if (std::find(c.pus.begin(), c.pus.end(), cpu) != c.pus.end()) return &c;
    return nullptr;
}

std::string cpu_text(const Topology& topo, unsigned cpu, bool with_node) {
    std::string s = "cpu" + std::to_string(cpu);
    if (const TopoCore* c = core_of(topo, cpu)) {
        s += " (core " + std::to_string(c->id);
        if (with_node && c->node != kUnknownNode) s += ", NUMA " + std::to_string(c->node);
        s += ')';
    }
    return s;
}

std::string node_text(int node) {
    return node == kUnknownNode ? std::string("unknown") : std::to_string(node);
}

void describe(const Topology& topo, Placement& p, const std::string& home_why) {
    std::string d = "placement: ";
    d += topo.nic.empty() ? std::string("NIC:") : "NIC " + topo.nic;
    d += home_why;
    d += "; workers: ";
    if (p.workers.empty()) {
        d += "none (single lcore: the worker runs on the control lcore)";
    } else {
        for (size_t i = 0; i < p.workers.size(); ++i) {
            if (i) d += ", ";
            d += cpu_text(topo, p.workers[i], false);
        }
    }
    d += "; control: " + cpu_text(topo, p.control, true);
    if (!p.avoided.empty()) {
        d += "; SMT siblings avoided: ";
        for (size_t i = 0; i < p.avoided.size(); ++i) {
            if (i) d += ", ";
            d += "cpu" + std::to_string(p.avoided[i]);
        }
    }
    for (const auto& w : p.warnings) d += "; warning: " + w;
    p.description = std::move(d);
}

}  // namespace

std::string Placement::lcore_list() const {
    std::vector<unsigned> all = workers;
    all.push_back(control);
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    std::string s;
    for (size_t i = 0; i < all.size(); ++i) {
        if (i) s += ',';
        s += std::to_string(all[i]);
    }
    return s;
}

Placement plan_placement(const Topology& topo, unsigned wanted_workers) {
    Placement p;
    const unsigned wanted = std::max(1u, wanted_workers);

    // Allowed CPUs, ascending. Empty: every PU the topology knows.
    std::set<unsigned> allowed(topo.allowed.begin(), topo.allowed.end());
    if (allowed.empty())
        for (const auto& c : topo.cores) allowed.insert(c.pus.begin(), c.pus.end());
    const std::vector<unsigned> cpus(allowed.begin(), allowed.end());

    // Home node: the NIC's, else the node of the first allowed CPU.
    std::string home_why;
    const TopoCore* first_core = cpus.empty() ? nullptr : core_of(topo, cpus[0]);
    const int first_node = first_core ? first_core->node : kUnknownNode;
    bool nic_node_usable = false;
    if (topo.nic_node != kUnknownNode) {
        for (const auto& c : topo.cores)
            if (c.node == topo.nic_node)
                for (unsigned pu : c.pus)
                    if (allowed.count(pu)) nic_node_usable = true;
    }
    if (topo.nic_node != kUnknownNode && nic_node_usable) {
        p.node = topo.nic_node;
        home_why = " on NUMA " + node_text(p.node);
    } else if (topo.nic_node != kUnknownNode) {
        p.node = first_node;
        home_why = " on NUMA " + node_text(topo.nic_node) + ", no allowed CPU there: using NUMA " +
                   node_text(p.node);
        p.warnings.push_back("the NIC's NUMA node " + node_text(topo.nic_node) +
                             " has no allowed CPU; packets cross the interconnect");
    } else {
        p.node = first_node;
        home_why = " NUMA unknown: using NUMA " + node_text(p.node) +
                   (cpus.empty() ? std::string() : " (node of cpu" + std::to_string(cpus[0]) + ")");
    }

    // Small machines: the behaviour nlbd always had.
    if (cpus.size() <= 2) {
        p.control = cpus.empty() ? 0 : cpus[0];
        if (cpus.size() == 2) p.workers.push_back(cpus[1]);
        if (cpus.size() == 2 && core_of(topo, cpus[0]) && core_of(topo, cpus[0]) == core_of(topo, cpus[1]))
            p.warnings.push_back("control and worker are SMT siblings of one core (only 2 CPUs allowed)");
        if (wanted > p.workers.size() && !cpus.empty())
            p.warnings.push_back(std::to_string(wanted) + " workers wanted, only " +
                                 std::to_string(p.workers.size()) + " possible with " +
                                 std::to_string(cpus.size()) + " allowed CPU(s)");
        describe(topo, p, home_why);
        return p;
    }

    // Cores with at least one allowed PU. CPUs hwloc did not place in a core
    // become cores of their own (node unknown).
    std::vector<Usable> usable;
    std::vector<TopoCore> orphans;
    for (unsigned cpu : cpus)
        if (!core_of(topo, cpu)) {
            TopoCore t;
            t.id = cpu;
            t.node = kUnknownNode;
            t.pus = {cpu};
            orphans.push_back(t);
        }
    for (const auto& c : topo.cores) {
        Usable u{&c, {}};
        for (unsigned pu : c.pus)
            if (allowed.count(pu)) u.pus.push_back(pu);
        std::sort(u.pus.begin(), u.pus.end());
        if (!u.pus.empty()) usable.push_back(std::move(u));
    }
    for (const auto& o : orphans) usable.push_back(Usable{&o, o.pus});
    // Home-node cores first, then the others by node; within, by first PU.
    std::sort(usable.begin(), usable.end(), [&](const Usable& a, const Usable& b) {
        const bool ah = a.core->node == p.node, bh = b.core->node == p.node;
        if (ah != bh) return ah;
        if (a.core->node != b.core->node) return a.core->node < b.core->node;
        return a.pus[0] < b.pus[0];
    });

    if (usable.size() == 1) {
        // One physical core with 3+ allowed PUs: siblings are all there is.
        p.control = usable[0].pus[0];
        p.workers.push_back(usable[0].pus[1]);
        p.warnings.push_back("only one physical core allowed: control and worker are SMT siblings");
        if (wanted > 1)
            p.warnings.push_back(std::to_string(wanted) +
                                 " workers wanted, only 1 possible on one physical core");
        describe(topo, p, home_why);
        return p;
    }

    // Control: the first core outside the home node, else the home node's
    // first core (core 0 usually also carries OS housekeeping and IRQs).
    size_t control_idx = 0;
    for (size_t i = 0; i < usable.size(); ++i)
        if (usable[i].core->node != p.node) {
            control_idx = i;
            break;
        }
    p.control = usable[control_idx].pus[0];

    // Workers: one PU per remaining core, home node first.
    bool spilled = false;
    for (size_t i = 0; i < usable.size() && p.workers.size() < wanted; ++i) {
        if (i == control_idx) continue;
        const Usable& u = usable[i];
        if (u.core->node != p.node) spilled = true;
        p.workers.push_back(u.pus[0]);
        for (size_t k = 1; k < u.pus.size(); ++k) p.avoided.push_back(u.pus[k]);
    }
    std::sort(p.avoided.begin(), p.avoided.end());
    if (spilled)
        p.warnings.push_back("NUMA " + node_text(p.node) +
                             " has too few free cores: some workers run on another node");
    if (p.workers.size() < wanted)
        p.warnings.push_back(std::to_string(wanted) + " workers wanted, capped at " +
                             std::to_string(p.workers.size()) +
                             " (one per free physical core, no SMT siblings)");
    describe(topo, p, home_why);
    return p;
}

bool read_topology(const std::string& nic_pci, Topology& topo, std::string& error) {
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) != 0) {
        error = "hwloc_topology_init failed";
        return false;
    }
    const bool want_io = !nic_pci.empty();
    if (want_io) hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (hwloc_topology_load(t) != 0) {
        hwloc_topology_destroy(t);
        error = "hwloc_topology_load failed";
        return false;
    }

    Topology out;
    out.allowed = topo.allowed;
    out.nic = topo.nic;
    const int ncores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    for (int i = 0; i < ncores; ++i) {
        hwloc_obj_t core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, static_cast<unsigned>(i));
        TopoCore c;
        c.id = core->logical_index;
        c.node = kUnknownNode;
        if (core->nodeset) {
            const int n = hwloc_bitmap_first(core->nodeset);
            if (n >= 0 && hwloc_bitmap_weight(core->nodeset) == 1) c.node = n;
        }
        if (core->cpuset) {
            for (int pu = hwloc_bitmap_first(core->cpuset); pu >= 0;
                 pu = hwloc_bitmap_next(core->cpuset, pu))
                c.pus.push_back(static_cast<unsigned>(pu));
        }
        if (!c.pus.empty()) out.cores.push_back(std::move(c));
    }
    // Machines hwloc shows no cores for: one core per PU.
    if (out.cores.empty()) {
        const int npus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
        for (int i = 0; i < npus; ++i) {
            hwloc_obj_t pu = hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, static_cast<unsigned>(i));
            TopoCore c;
            c.id = pu->logical_index;
            c.node = kUnknownNode;
            if (pu->nodeset && hwloc_bitmap_weight(pu->nodeset) == 1)
                c.node = hwloc_bitmap_first(pu->nodeset);
            c.pus.push_back(pu->os_index);
            out.cores.push_back(std::move(c));
        }
    }

    out.nic_node = kUnknownNode;
    if (want_io) {
        std::string bus = nic_pci.substr(0, nic_pci.find(','));
        hwloc_obj_t dev = hwloc_get_pcidev_by_busidstring(t, bus.c_str());
        if (dev) {
            hwloc_obj_t parent = hwloc_get_non_io_ancestor_obj(t, dev);
            if (parent && parent->nodeset && hwloc_bitmap_weight(parent->nodeset) == 1)
                out.nic_node = hwloc_bitmap_first(parent->nodeset);
        }
    }
    hwloc_topology_destroy(t);
    topo = std::move(out);
    return true;
}

}  // namespace nlbd::daemon
