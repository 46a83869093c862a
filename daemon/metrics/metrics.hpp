#pragma once
// The daemon's Prometheus metrics (docs/metrics.md lists every family), kept
// in one prometheus-cpp registry and served as text by http/. Families are
// named like the reference's (pupsourcing_orchestrator_*) and labelled with
// the replica set. prometheus-cpp stays behind this header: the rest of the
// daemon updates metrics through the small handles below, which do nothing
// when default-constructed, so code that runs without metrics (tests, CLI
// commands) needs no checks.
#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace orchestratord::metrics {

class Counter {
public:
    Counter() = default;
    explicit Counter(prometheus::Counter* counter) : counter_(counter) {}
    void increment(double by = 1) const;

private:
    prometheus::Counter* counter_ = nullptr;
};

class Gauge {
public:
    Gauge() = default;
    explicit Gauge(prometheus::Gauge* gauge) : gauge_(gauge) {}
    void set(double value) const;
    void increment(double by = 1) const;
    void decrement(double by = 1) const;

private:
    prometheus::Gauge* gauge_ = nullptr;
};

class Histogram {
public:
    Histogram() = default;
    explicit Histogram(prometheus::Histogram* histogram) : histogram_(histogram) {}
    void observe(double value) const;

private:
    prometheus::Histogram* histogram_ = nullptr;
};

class Metrics;

// What a worker is doing in its replica set, as worker_state{worker_id,state}:
// 1 for the current state, 0 for the others.
enum class WorkerState { registering, running, heartbeat_failing, self_fenced, stopping };
std::string_view worker_state_name(WorkerState state);

// One replica set's membership families, updated by cluster/.
struct ClusterMetrics {
    Counter generations;                  // generations this worker wrote as coordinator
    Counter workers_registered;           // registrations of this process (again after being removed as stale)
    Counter partition_assignments;        // slices this worker acquired
    Counter reconfigurations;             // generation changes this worker followed
    Counter stale_workers_cleaned;        // stale workers this worker removed as coordinator
    Gauge active_workers;                 // members of the current generation
    Gauge current_generation_partitions;  // the slices the current generation divides among the workers
    Gauge slices_owned;                   // slices this worker owns
    Gauge self_fenced;                    // 1 while this worker has stopped work for lack of a heartbeat
    Gauge database_reachable;             // 1 while heartbeats commit
    Histogram coordination_duration;
    Histogram heartbeat_latency;

    // Sets worker_state for `worker_id` (the previous worker id's series go
    // when the worker registers again under a new id).
    void set_state(const std::string& worker_id, WorkerState state);

    Metrics* metrics = nullptr;
    std::string replica_set;
    std::string worker_id;  // the id the last state was reported for
};

// One projection's families, updated by runtime/'s runner and its parts.
struct ProjectionMetrics {
    Counter events_processed;  // handled or dead-lettered
    Counter errors;            // failed handler calls
    Counter retries;           // handler calls that try events again after they failed
    Counter dead_letters;      // events recorded as dead letters
    Gauge paused;              // 1 while the projection is paused
    Gauge reader_blocked_seconds;
    Gauge handler_running_seconds;
    Gauge handler_queue_depth;      // calls waiting for or running on the handler thread
    Histogram processing_duration;  // one handler call (a batch or part of one)
};

// Sampled every few seconds from the database (runtime/metrics_sampler).
struct ProjectionLagMetrics {
    Gauge lag_events;
    Gauge lag_seconds;
    Gauge checkpoint_position;
};

class Metrics {
public:
    Metrics();
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    ClusterMetrics cluster(const std::string& replica_set);
    ProjectionMetrics projection(const std::string& replica_set, const std::string& projection);
    ProjectionLagMetrics lag(const std::string& replica_set, const std::string& projection);
    Gauge head_position(const std::string& replica_set);
    Gauge pool_connections_in_use();
    Gauge pool_connections_idle();
    void set_build_info(const std::string& version, const std::string& abi);
    void set_plugin_info(const std::string& replica_set, const std::string& projection, const std::string& plugin,
                         const std::string& version);

    // worker_state for one worker: 1 for `state`, 0 for the others.
    void set_worker_state(const std::string& replica_set, const std::string& worker_id, WorkerState state);
    // Removes a worker id's worker_state series (it registered again under another id).
    void forget_worker(const std::string& replica_set, const std::string& worker_id);

    // Everything, in the Prometheus text exposition format.
    std::string render() const;

private:
    struct Families;
    std::unique_ptr<Families> families_;
};

}  // namespace orchestratord::metrics
