#include "runtime/metrics_sampler.hpp"

#include <spdlog/spdlog.h>

#include "log/quoted.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "pg/connection_pool.hpp"
#include "store/projection_lag.hpp"

namespace orchestratord::runtime {
namespace asio = boost::asio;

namespace {

constexpr auto kSampleInterval = std::chrono::seconds(2);

}  // namespace

MetricsSampler::MetricsSampler(asio::io_context& io, metrics::Metrics& metrics, pg::ConnectionPool& pool,
                               const config::Config& config)
    : metrics_(metrics),
      pool_(pool),
      config_(config),
      timer_(io),
      in_use_(metrics.pool_connections_in_use()),
      idle_(metrics.pool_connections_idle()) {}

void MetricsSampler::stop() {
    stopping_ = true;
    timer_.cancel();
}

asio::awaitable<void> MetricsSampler::run() {
    while (!stopping_) {
        in_use_.set(static_cast<double>(pool_.open() - pool_.idle()));
        idle_.set(static_cast<double>(pool_.idle()));
        // A copy: a reload replaces the configuration while a sample waits
        // for the database, and references into it would dangle.
        const std::vector<config::ReplicaSetConfig> replica_sets = config_.replica_sets;
        for (const auto& replica_set : replica_sets) {
            if (stopping_) break;
            co_await sample(replica_set);
        }
        timer_.expires_after(kSampleInterval);
        boost::system::error_code ec;
        co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
}

// A failed sample leaves the last values; the heartbeat reports whether the
// database is reachable.
asio::awaitable<void> MetricsSampler::sample(const config::ReplicaSetConfig& replica_set) {
    std::vector<std::string> projections;
    for (const auto& projection : replica_set.projections) projections.push_back(projection.name);
    if (projections.empty()) co_return;
    const config::EventStoreConfig event_store = config_.event_store;  // see run(): kept across the waits
    std::string failure;
    try {
        auto lease = co_await pool_.try_acquire();
        if (!lease) co_return;  // every connection is busy with batches: sample next time
        try {
            const auto lags =
                co_await store::read_projection_lags(lease->connection(), event_store, replica_set.name, projections);
            for (const auto& lag : lags) {
                metrics_.head_position(replica_set.name).set(static_cast<double>(lag.head));
                const auto gauges = metrics_.lag(replica_set.name, lag.projection);
                gauges.checkpoint_position.set(static_cast<double>(lag.checkpoint));
                gauges.lag_events.set(static_cast<double>(std::max<int64_t>(0, lag.head - lag.checkpoint)));
                gauges.lag_seconds.set(lag.lag_seconds);
            }
        } catch (...) {
            lease->connection().close();  // its state is unknown: the pool drops it
            throw;
        }
    } catch (const std::exception& e) {
        failure = e.what();
    }
    if (!failure.empty()) {
        spdlog::debug("could not sample the projections' lag replica_set={} error={}", replica_set.name,
                      log::quoted(failure));
    }
}

}  // namespace orchestratord::runtime
