#pragma once
// This process's membership in one replica set (docs/cluster.md). One
// coroutine owns one connection and, every heartbeat_interval:
//   1. refreshes the worker row (one statement that also tells whether the
//      cluster needs coordinating, so an idle cluster costs one statement per
//      tick);
//   2. when needed, lets the Coordinator try to coordinate (whoever locks the
//      replica set row does, cluster/coordinator.hpp);
//   3. reconciles: applies SliceReconciler's plan (cluster/slice_reconciler.hpp)
//      to the ownership view, releases withdrawn slices once drained, acquires
//      free slices assigned to it.
// NOTIFY on the cluster channel runs steps 2 and 3 at once, so handoffs take
// milliseconds. A worker whose last committed heartbeat was sent more than
// stale_worker_timeout - heartbeat_interval ago stops all work (self-fencing)
// before anyone may take its slices. Every statement is in cluster_tables.hpp.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/cluster_tables.hpp"
#include "cluster/coordinator.hpp"
#include "cluster/slice_ownership.hpp"
#include "config/config.hpp"
#include "metrics/metrics.hpp"

namespace orchestratord::pg {
class AsyncConnection;
}

namespace orchestratord::cluster {

struct MemberSettings {
    std::string conninfo;
    config::EventStoreConfig event_store;
    config::ReplicaSetConfig replica_set;
    std::string version;
    std::string session_tag;              // in the application_name of every session of this process
    metrics::Metrics* metrics = nullptr;  // optional
};

class ClusterMember {
public:
    ClusterMember(boost::asio::io_context& io, MemberSettings settings);
    ~ClusterMember();

    // Runs until stop(); then releases every slice and removes the worker row.
    // Call stop() only once the runners have finished their last batches.
    boost::asio::awaitable<void> run();
    void stop();
    // Something changed in the cluster (NOTIFY): coordinate and reconcile now.
    void coordination_changed();

    SliceOwnership& ownership() { return ownership_; }
    const SliceOwnership& ownership() const { return ownership_; }
    const std::string& replica_set() const { return settings_.replica_set.name; }
    const config::ReplicaSetConfig& settings() const { return settings_.replica_set; }

    // For the health endpoints: what this member knows right now.
    // The worker id in the replica set; empty until registered.
    const std::string& worker_id() const { return worker_id_; }
    // The last heartbeat failed (the database is unreachable or refused it).
    bool heartbeat_failing() const { return heartbeat_failing_; }
    // Since when nothing may be committed (self-fenced); none while it may.
    std::optional<std::chrono::steady_clock::time_point> fenced_since() const;
    // Why the replica set is not settled as of the last heartbeat (workers
    // joining or gone, slices moving to their new owners, slices of this
    // worker waiting to be handed over); none when it is settled.
    std::optional<std::string> coordinating() const;

private:
    boost::asio::awaitable<void> connect();
    boost::asio::awaitable<void> register_worker();
    boost::asio::awaitable<void> heartbeat();
    boost::asio::awaitable<void> coordinate();
    boost::asio::awaitable<void> reconcile();
    boost::asio::awaitable<void> release(const std::map<int32_t, int64_t>& slices);
    boost::asio::awaitable<void> acquire();
    boost::asio::awaitable<void> leave();
    boost::asio::awaitable<void> watch_self_fence();
    void poke();
    void follow_generation_in_metrics();
    std::string context() const;

    boost::asio::io_context& io_;
    MemberSettings settings_;
    metrics::ClusterMetrics metrics_;
    SliceOwnership ownership_;  // also holds the generation this worker follows
    ClusterTables tables_;
    Coordinator coordinator_;
    std::unique_ptr<pg::AsyncConnection> connection_;
    boost::asio::steady_timer wake_timer_;
    boost::asio::steady_timer fence_timer_;
    std::string worker_id_;
    bool stopping_ = false;
    bool woken_ = false;
    bool need_coordinate_ = true;
    bool need_reconcile_ = true;
    bool stale_seen_ = false;  // the last heartbeat saw a stale worker
    bool heartbeat_failing_ = false;
    std::optional<HeartbeatReport> last_report_;  // of the last successful heartbeat
    std::chrono::steady_clock::time_point next_heartbeat_{};
    int64_t generation_in_metrics_ = -1;  // the generation reconfiguration_total last counted
};

}  // namespace orchestratord::cluster
