#pragma once
// What one projection runner is given, shared by the runner and its parts
// (BatchCommit, FailurePolicy, ReadAhead), and the key=value context their
// log lines carry.
#include <chrono>
#include <string>
#include <vector>

#include "cluster/slice_ownership.hpp"
#include "config/config.hpp"
#include "metrics/metrics.hpp"
#include "store/gap_safe_reader.hpp"
#include "store/read_coalescer.hpp"

namespace orchestratord::pg {
class ConnectionPool;
}  // namespace orchestratord::pg

namespace orchestratord::runtime {

struct RunnerSettings {
    pg::ConnectionPool* pool = nullptr;  // shared by every runner of the process
    config::EventStoreConfig event_store;
    config::ReplicaSetConfig replica_set;
    config::ProjectionConfig projection;
    store::Scope scope;
    bool notify_available = false;                  // the NOTIFY trigger exists: idle runners need not poll
    store::ReadCoalescer* coalescer = nullptr;      // shared by every runner of the process
    cluster::SliceOwnership* ownership = nullptr;   // the slices this worker owns in the replica set
    metrics::Metrics* metrics = nullptr;            // optional
    metrics::ProjectionMetrics projection_metrics;  // this projection's families (no-ops without metrics)
    std::string state_directory;                    // crash breadcrumbs; empty: crash isolation is off
};

// "replica_set=... projection=... worker=... generation=..." for log lines;
// the worker and generation are read from the ownership at each call.
std::string runner_context(const RunnerSettings& settings);

// The reader has been waiting for open writers on the events table: says who
// holds it back (a prepared transaction, or a session's open transaction).
void warn_blocked_writers(const RunnerSettings& settings, const std::vector<store::BlockedWriter>& writers,
                          std::chrono::steady_clock::duration waited);

}  // namespace orchestratord::runtime
