#include "metrics/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace orchestratord::metrics {

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      reader_blocked_seconds_(prometheus::BuildGauge()
                                  .Name("pupsourcing_orchestrator_reader_blocked_seconds")
                                  .Help("How long the reader has been waiting for a writer that keeps a transaction "
                                        "open on the events table (0: not waiting)")
                                  .Register(*registry_)),
      handler_running_seconds_(prometheus::BuildGauge()
                                   .Name("pupsourcing_orchestrator_handler_running_seconds")
                                   .Help("How long the projection's current handler call has been running, once it "
                                         "runs longer than slow_handler_after (0: none is slow)")
                                   .Register(*registry_)) {}

prometheus::Gauge& Metrics::reader_blocked_seconds(const std::string& replica_set, const std::string& projection) {
    return reader_blocked_seconds_.Add({{"replica_set", replica_set}, {"projection", projection}});
}

prometheus::Gauge& Metrics::handler_running_seconds(const std::string& replica_set, const std::string& projection) {
    return handler_running_seconds_.Add({{"replica_set", replica_set}, {"projection", projection}});
}

std::string Metrics::render() const {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, registry_->Collect());
    return out.str();
}

}  // namespace orchestratord::metrics
