#include "runtime/projection_pool.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "cluster/cluster_member.hpp"

namespace orchestratord::runtime {

pg::PoolSettings projection_pool_settings(const config::Config& config, const std::string& session_tag) {
    const int64_t reserved = static_cast<int64_t>(config.replica_sets.size()) + 1;
    int64_t for_projections = config.database.max_open_conns - reserved;
    if (for_projections < 1) {
        spdlog::warn(
            "database.max_open_conns={} leaves no connection for projections after {} for cluster membership "
            "and the NOTIFY listener; using 1",
            config.database.max_open_conns, reserved);
        for_projections = 1;
    }
    config::Duration statement_timeout = config.replica_sets.front().coordination_timeout;
    for (const auto& replica_set : config.replica_sets) {
        statement_timeout = std::min(statement_timeout, replica_set.coordination_timeout);
    }
    pg::PoolSettings pool;
    pool.conninfo = config.database.url;
    pool.application_name = cluster::session_name(session_tag, "projections");
    // No statement of a batch may outlive coordination_timeout: that is how
    // long a new owner waits for a slice at most, so a stuck statement fails
    // (and is retried) instead of holding the slice indefinitely.
    pool.statement_timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(statement_timeout).count();
    pool.max_open = static_cast<size_t>(for_projections);
    pool.max_idle = static_cast<size_t>(std::max<int64_t>(0, config.database.max_idle_conns));
    pool.max_lifetime = config.database.conn_max_lifetime;
    pool.debug_log = [](const std::string& what) { spdlog::debug("connection pool: {}", what); };
    spdlog::info("connection pool for projections max_open={} max_idle={} conn_max_lifetime={}s", for_projections,
                 config.database.max_idle_conns,
                 std::chrono::duration_cast<std::chrono::seconds>(config.database.conn_max_lifetime).count());
    return pool;
}

}  // namespace orchestratord::runtime
