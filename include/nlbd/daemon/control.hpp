#pragma once
// Control-plane side of the data plane: the static membership view and the
// publication of snapshots to workers (control thread only; may throw).

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "nlbd/config/config.hpp"
#include "nlbd/core/snapshot.hpp"

struct rte_rcu_qsbr;

namespace nlbd::daemon {

// The snapshot input for static membership ([cluster] static_members), or a
// one-member cluster of this host when there is none (dynamic membership is
// not implemented yet: *warning says so). Member i of static_members gets,
// per rule, weight = static_weights[i] if given, else 50 for "equal", else
// the rule's load_weight; priority = static_priorities[i] if given, else 0.
// A host whose initial state is not `started` is not a live member and its
// snapshot has started = false.
core::SnapshotInput static_snapshot_input(const config::Config& cfg, std::string* warning);

// Publishes immutable snapshots to the workers. The pointer workers read is
// swapped with release order; a replaced snapshot stays alive until every
// registered worker has reported a quiescent state after the swap
// (rte_rcu_qsbr), then it is freed by reclaim(). Never blocks, so it also
// works when the worker runs on the control thread (one lcore).
class SnapshotPublisher {
public:
    explicit SnapshotPublisher(unsigned max_workers);
    ~SnapshotPublisher();
    SnapshotPublisher(const SnapshotPublisher&) = delete;
    SnapshotPublisher& operator=(const SnapshotPublisher&) = delete;

    rte_rcu_qsbr* qsbr() const noexcept { return qsbr_; }
    const std::atomic<const core::Snapshot*>& pointer() const noexcept { return ptr_; }
    const std::shared_ptr<const core::Snapshot>& current() const noexcept { return current_; }

    void publish(std::shared_ptr<const core::Snapshot> s);
    // Frees retired snapshots no worker can still see; returns how many are left.
    size_t reclaim();

private:
    rte_rcu_qsbr* qsbr_ = nullptr;
    std::atomic<const core::Snapshot*> ptr_{nullptr};
    std::shared_ptr<const core::Snapshot> current_;
    struct Retired {
        uint64_t token;
        std::shared_ptr<const core::Snapshot> snapshot;
    };
    std::deque<Retired> retired_;
};

}  // namespace nlbd::daemon
