#pragma once
// Statements on orchestratord's per-projection tables: whether a projection
// is paused (and why), and the events it dead-lettered. A pause holds for the
// projection in the whole replica set, not only on the worker where it
// failed; a dead letter records an event the projection gave up on, so its
// checkpoint could move past it.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "pg/async_connection.hpp"

namespace orchestratord::store {

// One projection of one replica set.
struct ProjectionKey {
    std::string replica_set;
    std::string projection;
};

struct ProjectionState {
    bool paused = false;
    std::string reason;  // why it was paused; empty when it is not
};

struct DeadLetter {
    int32_t slice = 0;
    int64_t global_position = 0;
    std::string event_id;
    std::string error;
    int64_t attempts = 0;  // tries of the event that failed, or crashes of the process on it
};

// The projection's state; not paused when no state was ever recorded.
boost::asio::awaitable<ProjectionState> read_projection_state(pg::AsyncConnection& connection,
                                                              const config::EventStoreConfig& store,
                                                              const ProjectionKey& key);

// Records the pause (replacing an earlier reason), then NOTIFYs `channel`, so
// the other workers' runners of the projection re-read its state and stop too.
boost::asio::awaitable<void> pause_projection(pg::AsyncConnection& connection, const config::EventStoreConfig& store,
                                              const ProjectionKey& key, const std::string& reason,
                                              const std::string& channel);

// A try of the projection's events failed (`tries` of them so far): kept for
// `status` until a batch succeeds again.
boost::asio::awaitable<void> record_failed_try(pg::AsyncConnection& connection, const config::EventStoreConfig& store,
                                               const ProjectionKey& key, int64_t tries, const std::string& error);

// A batch succeeded: forgets the failing tries recorded (none: no change).
boost::asio::awaitable<void> clear_failed_tries(pg::AsyncConnection& connection, const config::EventStoreConfig& store,
                                                const ProjectionKey& key);

// Records `letter`; a letter for the same event replaces the earlier one. Run
// it in the transaction that moves the checkpoint past the event.
boost::asio::awaitable<void> record_dead_letter(pg::AsyncConnection& connection, const config::EventStoreConfig& store,
                                                const ProjectionKey& key, const DeadLetter& letter);

}  // namespace orchestratord::store
