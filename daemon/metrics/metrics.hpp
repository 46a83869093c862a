#pragma once
// The daemon's Prometheus metrics (docs/event-path.md lists them), kept in one
// prometheus-cpp registry and served as text by http/. Families are named like
// the reference's (pupsourcing_orchestrator_*) and labelled with the replica set.
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace orchestratord::metrics {

class Metrics {
public:
    Metrics();

    // Seconds a projection's reader has been waiting for a writer that keeps
    // a transaction open on the events table (0 while it is not waiting).
    prometheus::Gauge& reader_blocked_seconds(const std::string& replica_set, const std::string& projection);

    // Seconds the projection's current handler call has been running, set
    // once it runs longer than slow_handler_after (0 when none is slow).
    prometheus::Gauge& handler_running_seconds(const std::string& replica_set, const std::string& projection);

    // Everything, in the Prometheus text exposition format.
    std::string render() const;

private:
    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Gauge>& reader_blocked_seconds_;
    prometheus::Family<prometheus::Gauge>& handler_running_seconds_;
};

}  // namespace orchestratord::metrics
