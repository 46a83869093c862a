#pragma once
// The settings of the connection pool the projections share.
#include <string>

#include "config/config.hpp"
#include "pg/connection_pool.hpp"

namespace orchestratord::runtime {

// database.max_open_conns bounds every connection of the process: one per
// replica set (heartbeats must never wait for a busy pool) and the NOTIFY
// listener are set aside, the projections share the rest (at least one, with
// a warning). No statement may outlive the shortest coordination_timeout.
// Logs the pool's size.
pg::PoolSettings projection_pool_settings(const config::Config& config, const std::string& session_tag);

}  // namespace orchestratord::runtime
