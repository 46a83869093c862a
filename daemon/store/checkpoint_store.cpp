#include "store/checkpoint_store.hpp"

#include "store/migrations.hpp"

namespace orchestratord::store {
namespace asio = boost::asio;

CheckpointStore::CheckpointStore(const config::EventStoreConfig& store)
    : replica_sets_(qualified(store, "orchestratord_replica_sets")),
      checkpoints_(qualified(store, "orchestratord_checkpoints")) {}

asio::awaitable<int32_t> CheckpointStore::register_replica_set(pg::AsyncConnection& connection,
                                                               const std::string& replica_set,
                                                               int32_t configured_slices) {
    // pg::make_params, not braces: see its comment.
    const auto insert = pg::make_params(replica_set, std::to_string(configured_slices));
    co_await connection.exec(
        "INSERT INTO " + replica_sets_ + " (name, slices) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", insert,
        "register the replica set");
    const auto select = pg::make_params(replica_set);
    const auto rows = co_await connection.exec("SELECT slices FROM " + replica_sets_ + " WHERE name = $1", select,
                                               "read the replica set's slice count");
    co_return std::stoi(*rows.at(0, 0));
}

asio::awaitable<std::vector<int64_t>> CheckpointStore::load(pg::AsyncConnection& connection,
                                                            const std::string& replica_set,
                                                            const std::string& projection, int32_t slice_count) {
    std::vector<int64_t> positions(static_cast<size_t>(slice_count), 0);
    const auto params = pg::make_params(replica_set, projection);
    const auto rows = co_await connection.exec(
        "SELECT slice, position FROM " + checkpoints_ + " WHERE replica_set = $1 AND projection = $2", params,
        "load checkpoints");
    for (int64_t row = 0; row < rows.rows; ++row) {
        const int slice = std::stoi(*rows.at(row, 0));
        if (slice >= 0 && slice < slice_count) positions[static_cast<size_t>(slice)] = std::stoll(*rows.at(row, 1));
    }
    co_return positions;
}

asio::awaitable<void> CheckpointStore::advance(pg::AsyncConnection& connection, const std::string& replica_set,
                                               const std::string& projection, const std::vector<int32_t>& slices,
                                               int64_t position) {
    if (slices.empty()) co_return;
    std::string array = "{";
    for (size_t i = 0; i < slices.size(); ++i) {
        if (i > 0) array += ',';
        array += std::to_string(slices[i]);
    }
    array += "}";
    const auto params = pg::make_params(replica_set, projection, array, std::to_string(position));
    co_await connection.query("INSERT INTO " + checkpoints_ +
                                  " AS c (replica_set, projection, slice, position, updated_at) "
                                  "SELECT $1, $2, s, $4::int8, now() FROM unnest($3::int4[]) AS s "
                                  "ON CONFLICT (replica_set, projection, slice) DO UPDATE "
                                  "SET position = GREATEST(c.position, EXCLUDED.position), updated_at = now()",
                              params, "write checkpoints");
}

}  // namespace orchestratord::store
