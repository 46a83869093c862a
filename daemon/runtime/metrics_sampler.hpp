#pragma once
// The metrics that are sampled rather than counted where things happen:
// every couple of seconds, each replica set's lag per projection (in events
// and in seconds), the head position and the lowest checkpoints, read in one
// statement per replica set on a pool connection (skipped when the pool has
// none to spare), and the pool's connections in use and idle. Sampling on
// its own timer keeps the lag current for idle and paused projections too,
// and costs the event path nothing.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <vector>

#include "config/config.hpp"
#include "metrics/metrics.hpp"

namespace orchestratord::pg {
class ConnectionPool;
}

namespace orchestratord::runtime {

class MetricsSampler {
public:
    // Everything given must outlive the sampler.
    MetricsSampler(boost::asio::io_context& io, metrics::Metrics& metrics, pg::ConnectionPool& pool,
                   const config::Config& config);

    boost::asio::awaitable<void> run();
    void stop();

private:
    boost::asio::awaitable<void> sample(const config::ReplicaSetConfig& replica_set);

    metrics::Metrics& metrics_;
    pg::ConnectionPool& pool_;
    const config::Config& config_;
    boost::asio::steady_timer timer_;
    metrics::Gauge in_use_;
    metrics::Gauge idle_;
    bool stopping_ = false;
};

}  // namespace orchestratord::runtime
