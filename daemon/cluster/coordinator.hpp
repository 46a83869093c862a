#pragma once
// The coordinator's work for one replica set, done by whichever member locks
// the replica set row this tick (docs/cluster.md, "Coordination"): ends the
// sessions of stale workers and removes them, folds the checkpoint rows of
// departed workers, frees their slices, writes a new generation with a
// balanced, sticky assignment when the live workers changed, and otherwise
// frees slices whose owner did not hand them over within coordination_timeout.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/cluster_tables.hpp"
#include "cluster/slice_ownership.hpp"
#include "config/config.hpp"
#include "metrics/metrics.hpp"
#include "store/checkpoint_store.hpp"

namespace orchestratord::pg {
class AsyncConnection;
}

namespace orchestratord::cluster {

class Coordinator {
public:
    // The tables, settings, ownership and metrics must outlive the coordinator. The
    // generation it writes is recorded in `ownership`, the one place that
    // holds this worker's view of it.
    Coordinator(ClusterTables& tables, const config::EventStoreConfig& store, const config::ReplicaSetConfig& settings,
                SliceOwnership& ownership, metrics::ClusterMetrics& metrics);

    // Ends the sessions of stale workers (before coordinating, outside its
    // transaction: a frozen process may hold rows the coordinator needs).
    boost::asio::awaitable<void> end_stale_sessions(pg::AsyncConnection& connection);
    // One attempt, in one transaction holding the replica set row; skipped
    // when another member holds it. False: it gave up this tick (a lock wait
    // timed out behind a batch), try again next tick. A lost connection
    // throws.
    boost::asio::awaitable<bool> coordinate(pg::AsyncConnection& connection);

private:
    // Returns whether the other members must be told.
    boost::asio::awaitable<bool> coordinate_locked(pg::AsyncConnection& connection, int64_t generation);
    boost::asio::awaitable<void> write_generation(pg::AsyncConnection& connection, int64_t generation,
                                                  const std::vector<std::string>& members);
    std::string context() const;

    ClusterTables& tables_;
    store::CheckpointStore checkpoints_;
    const config::ReplicaSetConfig& settings_;
    SliceOwnership& ownership_;
    metrics::ClusterMetrics& metrics_;
};

}  // namespace orchestratord::cluster
