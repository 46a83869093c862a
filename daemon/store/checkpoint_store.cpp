#include "store/checkpoint_store.hpp"

#include <algorithm>
#include <map>

#include "pg/array_literal.hpp"
#include "store/migrations.hpp"

namespace orchestratord::store {
namespace asio = boost::asio;

CheckpointStore::CheckpointStore(const config::EventStoreConfig& store)
    : replica_sets_(own_table(store, "replica_sets")),
      checkpoints_(own_table(store, "checkpoints")),
      slices_(own_table(store, "slices")) {}

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
    const int32_t slices = std::stoi(*rows.at(0, 0));
    // One row per slice: the ownership the cluster coordinates and fences on.
    const auto create = pg::make_params(replica_set, std::to_string(slices));
    co_await connection.exec("INSERT INTO " + slices_ +
                                 " (replica_set, slice) SELECT $1, g FROM generate_series(0, $2::int4 - 1) AS g "
                                 "ON CONFLICT (replica_set, slice) DO NOTHING",
                             create, "create the replica set's slices");
    co_return slices;
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

// The fencing check and the write are one statement: the slice rows still
// owned by this worker at the epoch it acquired them are locked FOR SHARE
// (so no release or takeover can commit before this transaction ends) and
// only their checkpoints are written. Slices missing from the answer were
// taken away.
asio::awaitable<std::vector<int32_t>> CheckpointStore::advance(pg::AsyncConnection& connection,
                                                               const std::string& replica_set,
                                                               const std::string& projection,
                                                               const std::vector<int32_t>& slices, int64_t position,
                                                               const Fence& fence) {
    std::vector<int32_t> written;
    if (slices.empty()) co_return written;
    std::vector<int64_t> epochs;
    epochs.reserve(slices.size());
    for (int32_t slice : slices) epochs.push_back(fence.epochs.at(slice));
    const auto params = pg::make_params(replica_set, projection, pg::number_array(slices), std::to_string(position),
                                        pg::number_array(epochs), fence.owner);
    const auto result = co_await connection.query_prepared(
        "WITH fenced AS (SELECT s.slice FROM " + slices_ +
            " s JOIN unnest($3::int4[], $5::int8[]) AS t(slice, epoch) ON s.slice = t.slice AND s.epoch = t.epoch "
            "WHERE s.replica_set = $1 AND s.owner = $6::uuid FOR SHARE OF s) "
            "INSERT INTO " +
            checkpoints_ +
            " AS c (replica_set, projection, slice, position, updated_at) "
            "SELECT $1, $2, slice, $4::int8, now() FROM fenced "
            "ON CONFLICT (replica_set, projection, slice) DO UPDATE "
            "SET position = GREATEST(c.position, EXCLUDED.position), updated_at = now() RETURNING slice",
        params, "write checkpoints (fenced)");
    written.reserve(static_cast<size_t>(result.rows()));
    for (int row = 0; row < result.rows(); ++row) written.push_back(std::stoi(std::string(result.text(row, 0))));
    std::sort(written.begin(), written.end());
    co_return written;
}

}  // namespace orchestratord::store
