#pragma once
// How far each projection of a replica set is behind the head of the events
// table, in positions and in seconds of the events' created_at, read in one
// statement for the metrics (runtime/metrics_sampler).
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace orchestratord::pg {
class AsyncConnection;
}

namespace orchestratord::store {

struct ProjectionLag {
    std::string projection;
    int64_t head = 0;        // the highest global position, 0 when the table is empty
    int64_t checkpoint = 0;  // the lowest checkpoint over every slice (0 while a slice has none)
    double lag_seconds = 0;  // created_at of the head minus that of the event at the checkpoint
};

// One row per projection in `projections`. Where the checkpoint's event does
// not exist (checkpoint 0, or a deleted event) the first event after it
// stands in for it.
boost::asio::awaitable<std::vector<ProjectionLag>> read_projection_lags(pg::AsyncConnection& connection,
                                                                        const config::EventStoreConfig& store,
                                                                        const std::string& replica_set,
                                                                        const std::vector<std::string>& projections);

}  // namespace orchestratord::store
