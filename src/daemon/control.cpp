#include "nlbd/daemon/control.hpp"

#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <stdexcept>

namespace nlbd::daemon {

core::SnapshotInput static_snapshot_input(const config::Config& cfg, std::string* warning) {
    core::SnapshotInput in;
    in.self = cfg.host.id;
    in.started = cfg.host.initial_state == config::InitialState::started;
    in.epoch = 1;
    in.buckets = cfg.cluster.buckets;
    in.mode = cfg.cluster.mode;
    in.vips = cfg.cluster.vips;
    in.rules = cfg.rules;

    std::vector<HostId> ids = cfg.cluster.static_members;
    if (ids.empty()) {
        ids = {cfg.host.id};
        if (warning != nullptr)
            *warning =
                "no [cluster] static_members: dynamic membership (heartbeats); this static "
                "view is a one-member cluster of host " +
                std::to_string(cfg.host.id);
    }
    for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] == cfg.host.id && !in.started) continue;  // a stopped host is not live
        core::Member m;
        m.id = ids[i];
        for (const PortRule& r : cfg.rules) {
            const bool have_w = cfg.cluster.static_members.size() > 0 && i < r.static_weights.size();
            const bool have_p =
                cfg.cluster.static_members.size() > 0 && i < r.static_priorities.size();
            m.weights.push_back(have_w ? r.static_weights[i]
                                       : effective_weight(r));
            m.priorities.push_back(have_p ? r.static_priorities[i] : uint8_t{0});
        }
        in.members.push_back(std::move(m));
    }
    std::sort(in.members.begin(), in.members.end(),
              [](const core::Member& a, const core::Member& b) { return a.id < b.id; });
    return in;
}

SnapshotPublisher::SnapshotPublisher(unsigned max_workers) {
    const size_t sz = rte_rcu_qsbr_get_memsize(max_workers);
    qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("nlbd_qsbr", sz, RTE_CACHE_LINE_SIZE));
    if (qsbr_ == nullptr) throw std::runtime_error("cannot allocate the RCU QSBR variable");
    if (rte_rcu_qsbr_init(qsbr_, max_workers) != 0) {
        rte_free(qsbr_);
        throw std::runtime_error("rte_rcu_qsbr_init failed");
    }
}

SnapshotPublisher::~SnapshotPublisher() {
    // Workers have stopped (and gone offline) before the publisher dies.
    ptr_.store(nullptr, std::memory_order_release);
    retired_.clear();
    current_.reset();
    rte_free(qsbr_);
}

void SnapshotPublisher::publish(std::shared_ptr<const core::Snapshot> s) {
    ptr_.store(s.get(), std::memory_order_release);
    if (current_) retired_.push_back({rte_rcu_qsbr_start(qsbr_), std::move(current_)});
    current_ = std::move(s);
    reclaim();
}

size_t SnapshotPublisher::reclaim() {
    while (!retired_.empty() && rte_rcu_qsbr_check(qsbr_, retired_.front().token, false) == 1)
        retired_.pop_front();
    return retired_.size();
}

}  // namespace nlbd::daemon
