#include "metrics/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <sstream>

namespace orchestratord::metrics {

namespace {

constexpr std::string_view kPrefix = "pupsourcing_orchestrator_";
constexpr std::array kWorkerStates = {WorkerState::registering, WorkerState::running, WorkerState::heartbeat_failing,
                                      WorkerState::self_fenced, WorkerState::stopping};

// The reference's buckets (Prometheus' defaults), so dashboards carry over.
prometheus::Histogram::BucketBoundaries default_buckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string name(std::string_view suffix) {
    return std::string(kPrefix) + std::string(suffix);
}

prometheus::Family<prometheus::Counter>& counter(prometheus::Registry& registry, std::string_view suffix,
                                                 const std::string& help) {
    return prometheus::BuildCounter().Name(name(suffix)).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& gauge(prometheus::Registry& registry, std::string_view suffix,
                                             const std::string& help) {
    return prometheus::BuildGauge().Name(name(suffix)).Help(help).Register(registry);
}

prometheus::Family<prometheus::Histogram>& histogram(prometheus::Registry& registry, std::string_view suffix,
                                                     const std::string& help) {
    return prometheus::BuildHistogram().Name(name(suffix)).Help(help).Register(registry);
}

}  // namespace

std::string_view worker_state_name(WorkerState state) {
    switch (state) {
        case WorkerState::registering:
            return "registering";
        case WorkerState::running:
            return "running";
        case WorkerState::heartbeat_failing:
            return "heartbeat_failing";
        case WorkerState::self_fenced:
            return "self_fenced";
        case WorkerState::stopping:
            return "stopping";
    }
    return "unknown";
}

void Counter::increment(double by) const {
    if (counter_ != nullptr) counter_->Increment(by);
}

void Gauge::set(double value) const {
    if (gauge_ != nullptr) gauge_->Set(value);
}

void Gauge::increment(double by) const {
    if (gauge_ != nullptr) gauge_->Increment(by);
}

void Gauge::decrement(double by) const {
    if (gauge_ != nullptr) gauge_->Decrement(by);
}

void Histogram::observe(double value) const {
    if (histogram_ != nullptr) histogram_->Observe(value);
}

void ClusterMetrics::set_state(const std::string& id, WorkerState state) {
    if (metrics == nullptr || id.empty()) return;
    if (!worker_id.empty() && worker_id != id) metrics->forget_worker(replica_set, worker_id);
    worker_id = id;
    metrics->set_worker_state(replica_set, id, state);
}

// Help texts of the reference's families are the reference's own.
struct Metrics::Families {
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
    prometheus::Registry& r = *registry;

    prometheus::Family<prometheus::Counter>& generations =
        counter(r, "generations_total", "Total number of generations created");
    prometheus::Family<prometheus::Counter>& workers_registered =
        counter(r, "workers_registered_total", "Total workers registered");
    prometheus::Family<prometheus::Counter>& partition_assignments =
        counter(r, "partition_assignments_total", "Total partition assignments");
    prometheus::Family<prometheus::Counter>& reconfigurations =
        counter(r, "reconfiguration_total", "Total reconfigurations triggered");
    prometheus::Family<prometheus::Counter>& stale_workers_cleaned =
        counter(r, "stale_workers_cleaned_total", "Total stale workers cleaned up");
    prometheus::Family<prometheus::Counter>& events_processed =
        counter(r, "events_processed_total", "Total events processed");
    prometheus::Family<prometheus::Counter>& projection_errors =
        counter(r, "projection_errors_total", "Total projection errors");
    prometheus::Family<prometheus::Gauge>& active_workers = gauge(r, "active_workers", "Current active workers");
    prometheus::Family<prometheus::Gauge>& current_generation_partitions =
        gauge(r, "current_generation_partitions", "Current generation partition count");
    prometheus::Family<prometheus::Gauge>& worker_state =
        gauge(r, "worker_state", "Worker state (1 for current state, 0 otherwise)");
    prometheus::Family<prometheus::Histogram>& coordination_duration =
        histogram(r, "coordination_duration_seconds", "Time spent in coordination phase");
    prometheus::Family<prometheus::Histogram>& event_processing_duration =
        histogram(r, "event_processing_duration_seconds", "Event processing latency");
    prometheus::Family<prometheus::Histogram>& heartbeat_latency =
        histogram(r, "heartbeat_latency_seconds", "Heartbeat round-trip latency");

    // Beyond the reference.
    prometheus::Family<prometheus::Gauge>& lag_events =
        gauge(r, "projection_lag_events",
              "Events between the head of the events table and the projection's lowest checkpoint");
    prometheus::Family<prometheus::Gauge>& lag_seconds =
        gauge(r, "projection_lag_seconds",
              "created_at of the newest event minus created_at of the event at the projection's lowest checkpoint");
    prometheus::Family<prometheus::Gauge>& head_position =
        gauge(r, "head_position", "The highest global position in the events table");
    prometheus::Family<prometheus::Gauge>& checkpoint_position =
        gauge(r, "checkpoint_position", "The projection's lowest checkpoint over all slices");
    prometheus::Family<prometheus::Gauge>& slices_owned = gauge(r, "slices_owned", "Slices this worker owns");
    prometheus::Family<prometheus::Counter>& dead_letters =
        counter(r, "dead_letters_total", "Events this worker recorded as dead letters");
    prometheus::Family<prometheus::Gauge>& paused = gauge(r, "projection_paused", "1 while the projection is paused");
    prometheus::Family<prometheus::Counter>& retries =
        counter(r, "projection_retries_total", "Handler calls that try events again after they failed");
    prometheus::Family<prometheus::Gauge>& reader_blocked_seconds = gauge(
        r, "reader_blocked_seconds",
        "How long the reader has been waiting for a writer that keeps a transaction open on the events table (0: not "
        "waiting)");
    prometheus::Family<prometheus::Gauge>& handler_running_seconds =
        gauge(r, "handler_running_seconds",
              "How long the projection's current handler call has been running, once it runs longer than "
              "slow_handler_after (0: none is slow)");
    prometheus::Family<prometheus::Gauge>& handler_queue_depth =
        gauge(r, "handler_queue_depth", "Handler calls waiting for or running on the projection's handler thread");
    prometheus::Family<prometheus::Gauge>& self_fenced =
        gauge(r, "self_fenced", "1 while this worker has stopped work because no heartbeat committed in time");
    prometheus::Family<prometheus::Gauge>& database_reachable =
        gauge(r, "database_reachable", "1 while this worker's heartbeats commit, 0 while they fail");
    prometheus::Family<prometheus::Gauge>& pool_in_use =
        gauge(r, "pool_connections_in_use", "Connections of the projection runners' pool that are borrowed");
    prometheus::Family<prometheus::Gauge>& pool_idle =
        gauge(r, "pool_connections_idle", "Connections of the projection runners' pool that are open and unused");
    prometheus::Family<prometheus::Gauge>& build_info =
        gauge(r, "build_info", "Always 1; the labels say which orchestratord and plugin ABI this is");
    prometheus::Family<prometheus::Gauge>& plugin_info =
        gauge(r, "plugin_info", "Always 1; the labels say which plugin and version runs a projection");
};

Metrics::Metrics() : families_(std::make_unique<Families>()) {}

Metrics::~Metrics() = default;

ClusterMetrics Metrics::cluster(const std::string& replica_set) {
    const prometheus::Labels labels{{"replica_set", replica_set}};
    auto& f = *families_;
    ClusterMetrics m;
    m.generations = Counter(&f.generations.Add(labels));
    m.workers_registered = Counter(&f.workers_registered.Add(labels));
    m.partition_assignments = Counter(&f.partition_assignments.Add(labels));
    m.reconfigurations = Counter(&f.reconfigurations.Add(labels));
    m.stale_workers_cleaned = Counter(&f.stale_workers_cleaned.Add(labels));
    m.active_workers = Gauge(&f.active_workers.Add(labels));
    m.current_generation_partitions = Gauge(&f.current_generation_partitions.Add(labels));
    m.slices_owned = Gauge(&f.slices_owned.Add(labels));
    m.self_fenced = Gauge(&f.self_fenced.Add(labels));
    m.database_reachable = Gauge(&f.database_reachable.Add(labels));
    m.coordination_duration = Histogram(&f.coordination_duration.Add(labels, default_buckets()));
    m.heartbeat_latency = Histogram(&f.heartbeat_latency.Add(labels, default_buckets()));
    m.metrics = this;
    m.replica_set = replica_set;
    return m;
}

ProjectionMetrics Metrics::projection(const std::string& replica_set, const std::string& projection) {
    const prometheus::Labels labels{{"replica_set", replica_set}, {"projection", projection}};
    auto& f = *families_;
    ProjectionMetrics m;
    m.events_processed = Counter(&f.events_processed.Add(labels));
    m.errors = Counter(&f.projection_errors.Add(labels));
    m.retries = Counter(&f.retries.Add(labels));
    m.dead_letters = Counter(&f.dead_letters.Add(labels));
    m.paused = Gauge(&f.paused.Add(labels));
    m.reader_blocked_seconds = Gauge(&f.reader_blocked_seconds.Add(labels));
    m.handler_running_seconds = Gauge(&f.handler_running_seconds.Add(labels));
    m.handler_queue_depth = Gauge(&f.handler_queue_depth.Add(labels));
    m.processing_duration = Histogram(&f.event_processing_duration.Add(labels, default_buckets()));
    return m;
}

ProjectionLagMetrics Metrics::lag(const std::string& replica_set, const std::string& projection) {
    const prometheus::Labels labels{{"replica_set", replica_set}, {"projection", projection}};
    auto& f = *families_;
    return {Gauge(&f.lag_events.Add(labels)), Gauge(&f.lag_seconds.Add(labels)),
            Gauge(&f.checkpoint_position.Add(labels))};
}

Gauge Metrics::head_position(const std::string& replica_set) {
    return Gauge(&families_->head_position.Add({{"replica_set", replica_set}}));
}

Gauge Metrics::pool_connections_in_use() {
    return Gauge(&families_->pool_in_use.Add({}));
}

Gauge Metrics::pool_connections_idle() {
    return Gauge(&families_->pool_idle.Add({}));
}

void Metrics::set_build_info(const std::string& version, const std::string& abi) {
    families_->build_info.Add({{"version", version}, {"abi", abi}}).Set(1);
}

void Metrics::set_plugin_info(const std::string& replica_set, const std::string& projection, const std::string& plugin,
                              const std::string& version) {
    // A projection runs one plugin at a time: a reload to another version
    // replaces its series.
    auto& family = families_->plugin_info;
    for (const auto& metric_family : family.Collect()) {
        for (const auto& metric : metric_family.metric) {
            prometheus::Labels labels;
            for (const auto& pair : metric.label) labels[pair.name] = pair.value;
            if (labels["replica_set"] == replica_set && labels["projection"] == projection) {
                family.Remove(&family.Add(labels));
            }
        }
    }
    family.Add({{"replica_set", replica_set}, {"projection", projection}, {"plugin", plugin}, {"version", version}})
        .Set(1);
}

void Metrics::set_worker_state(const std::string& replica_set, const std::string& worker_id, WorkerState state) {
    for (WorkerState each : kWorkerStates) {
        families_->worker_state
            .Add({{"replica_set", replica_set},
                  {"worker_id", worker_id},
                  {"state", std::string(worker_state_name(each))}})
            .Set(each == state ? 1 : 0);
    }
}

void Metrics::forget_worker(const std::string& replica_set, const std::string& worker_id) {
    auto& family = families_->worker_state;
    for (WorkerState each : kWorkerStates) {
        family.Remove(&family.Add(
            {{"replica_set", replica_set}, {"worker_id", worker_id}, {"state", std::string(worker_state_name(each))}}));
    }
}

std::string Metrics::render() const {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families_->registry->Collect());
    return out.str();
}

}  // namespace orchestratord::metrics
