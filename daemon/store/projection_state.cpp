#include "store/projection_state.hpp"

#include "store/pg_names.hpp"

namespace orchestratord::store {

boost::asio::awaitable<ProjectionState> read_projection_state(pg::AsyncConnection& connection,
                                                              const config::EventStoreConfig& store,
                                                              const ProjectionKey& key) {
    const auto params = pg::make_params(key.replica_set, key.projection);
    const auto rows =
        co_await connection.exec("SELECT state, coalesce(reason, '') FROM " + own_table(store, "projection_state") +
                                     " WHERE replica_set = $1 AND projection = $2",
                                 params, "read the projection's state");
    ProjectionState state;
    state.paused = rows.rows > 0 && rows.at(0, 0) == "paused";
    if (state.paused) state.reason = rows.at(0, 1).value_or("");
    co_return state;
}

boost::asio::awaitable<void> pause_projection(pg::AsyncConnection& connection, const config::EventStoreConfig& store,
                                              const ProjectionKey& key, const std::string& reason,
                                              const std::string& channel) {
    const auto params = pg::make_params(key.replica_set, key.projection, reason);
    co_await connection.exec("INSERT INTO " + own_table(store, "projection_state") +
                                 " (replica_set, projection, state, reason) VALUES ($1, $2, 'paused', $3) "
                                 "ON CONFLICT (replica_set, projection) DO UPDATE SET state = 'paused', "
                                 "reason = EXCLUDED.reason, updated_at = now()",
                             params, "pause the projection");
    co_await connection.exec("NOTIFY " + quote_identifier(channel), pg::Params{}, "tell the other workers");
}

boost::asio::awaitable<void> record_failed_try(pg::AsyncConnection& connection, const config::EventStoreConfig& store,
                                               const ProjectionKey& key, int64_t tries, const std::string& error) {
    const auto params = pg::make_params(key.replica_set, key.projection, std::to_string(tries), error);
    co_await connection.exec("INSERT INTO " + own_table(store, "projection_state") +
                                 " AS s (replica_set, projection, failed_tries, last_error, failing_since) VALUES ($1, "
                                 "$2, $3, $4, now()) ON CONFLICT (replica_set, projection) DO UPDATE SET failed_tries "
                                 "= EXCLUDED.failed_tries, last_error = EXCLUDED.last_error, failing_since = "
                                 "coalesce(s.failing_since, now()), updated_at = now()",
                             params, "record a failed try");
}

boost::asio::awaitable<void> clear_failed_tries(pg::AsyncConnection& connection, const config::EventStoreConfig& store,
                                                const ProjectionKey& key) {
    const auto params = pg::make_params(key.replica_set, key.projection);
    co_await connection.exec("UPDATE " + own_table(store, "projection_state") +
                                 " SET failed_tries = 0, last_error = NULL, failing_since = NULL, updated_at = now() "
                                 "WHERE replica_set = $1 AND projection = $2 AND failed_tries > 0",
                             params, "forget the failed tries");
}

boost::asio::awaitable<void> record_dead_letter(pg::AsyncConnection& connection, const config::EventStoreConfig& store,
                                                const ProjectionKey& key, const DeadLetter& letter) {
    const auto params = pg::make_params(key.replica_set, key.projection, std::to_string(letter.slice),
                                        std::to_string(letter.global_position), letter.event_id, letter.error,
                                        std::to_string(letter.attempts));
    co_await connection.exec(
        "INSERT INTO " + own_table(store, "dead_letters") +
            " (replica_set, projection, slice, global_position, event_id, error, attempts) VALUES ($1, $2, $3, $4, $5, "
            "$6, $7) ON CONFLICT (replica_set, projection, event_id) DO UPDATE SET error = EXCLUDED.error, "
            "attempts = EXCLUDED.attempts, created_at = now()",
        params, "record a dead letter");
}

}  // namespace orchestratord::store
