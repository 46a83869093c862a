#include "store/checkpoint_store.hpp"

#include "pg/array_literal.hpp"
#include "store/pg_names.hpp"

namespace orchestratord::store {
namespace asio = boost::asio;

CheckpointStore::CheckpointStore(const config::EventStoreConfig& store) : tables_(TableNames::of(store)) {}

std::string CheckpointStore::create_rows(const std::string& writer, const std::string& projections) const {
    return "INSERT INTO " + tables_.progress + " (replica_set, projection, writer) SELECT $1, unnest(" + projections +
           "::text[]), " + writer + ".id FROM " + writer;
}

asio::awaitable<std::vector<int64_t>> CheckpointStore::load(pg::AsyncConnection& connection,
                                                            const std::string& replica_set,
                                                            const std::string& projection, int32_t slice_count) {
    std::vector<int64_t> positions(static_cast<size_t>(slice_count), 0);
    const auto params = pg::make_params(replica_set, projection);
    const auto rows = co_await connection.exec(
        "SELECT slice, position FROM " + tables_.checkpoints + " WHERE replica_set = $1 AND projection = $2", params,
        "load checkpoints");
    for (int64_t row = 0; row < rows.rows; ++row) {
        const int slice = std::stoi(*rows.at(row, 0));
        if (slice >= 0 && slice < slice_count) positions[static_cast<size_t>(slice)] = std::stoll(*rows.at(row, 1));
    }
    co_return positions;
}

// The fencing check and the write are one single-row UPDATE: the row lock it
// takes is held until the batch transaction ends, so a revocation waits for
// it, and a write after a revocation matches no row (PostgreSQL re-checks the
// lease on the row's newest version).
asio::awaitable<bool> CheckpointStore::write(pg::AsyncConnection& connection, const std::string& replica_set,
                                             const std::string& projection, const Fence& fence,
                                             const std::vector<int64_t>& positions) {
    const auto params =
        pg::make_params(replica_set, projection, fence.owner, std::to_string(fence.lease), pg::number_array(positions));
    const auto result = co_await connection.query_prepared(
        "UPDATE " + tables_.progress +
            " SET positions = $5::int8[], updated_at = now() WHERE replica_set = $1 AND projection = $2 "
            "AND writer = $3::uuid AND lease = $4::int8 RETURNING 1",
        params, "write checkpoints (fenced)");
    co_return result.rows() == 1;
}

asio::awaitable<bool> CheckpointStore::owns_at_epochs(pg::AsyncConnection& connection, const std::string& replica_set,
                                                      const std::string& owner, const std::vector<int32_t>& slices,
                                                      const std::vector<int64_t>& epochs) {
    if (slices.empty()) co_return true;
    const auto params = pg::make_params(replica_set, owner, pg::number_array(slices), pg::number_array(epochs),
                                        std::to_string(slices.size()));
    const auto result = co_await connection.query_prepared(
        "SELECT count(*) = $5::int8 FROM " + tables_.slices +
            " s JOIN unnest($3::int4[], $4::int8[]) AS o(slice, epoch) ON s.slice = o.slice "
            "WHERE s.replica_set = $1 AND s.owner = $2::uuid AND s.epoch = o.epoch",
        params, "check the batch's slices are still ours (fenced)");
    co_return result.rows() == 1 && result.data(0, 0)[0] == 't';
}

asio::awaitable<void> CheckpointStore::revoke_leases(pg::AsyncConnection& connection, const std::string& replica_set,
                                                     const std::vector<std::string>& writers) {
    if (writers.empty()) co_return;
    const auto params = pg::make_params(replica_set, pg::text_array(writers));
    co_await connection.exec(
        "UPDATE " + tables_.progress + " SET lease = lease + 1 WHERE replica_set = $1 AND writer = ANY($2::uuid[])",
        params, "revoke checkpoint leases");
}

// Slice by slice, the highest position of the departed rows and the nil
// writer's row is kept.
asio::awaitable<int64_t> CheckpointStore::fold_departed(pg::AsyncConnection& connection,
                                                        const std::string& replica_set) {
    const auto params = pg::make_params(replica_set, std::string(kNoWriter));
    const auto folded = co_await connection.exec(
        "WITH gone AS (DELETE FROM " + tables_.progress +
            " p WHERE p.replica_set = $1 AND p.writer <> $2::uuid AND NOT EXISTS (SELECT 1 FROM " + tables_.workers +
            " w WHERE w.replica_set = $1 AND w.id = p.writer) RETURNING p.projection, p.writer, p.positions), "
            "merged AS (SELECT x.projection, array_agg(x.position ORDER BY x.i) AS positions FROM ("
            "SELECT g.projection, u.i, max(u.position) AS position FROM gone g, "
            "unnest(g.positions) WITH ORDINALITY AS u(position, i) GROUP BY 1, 2) x GROUP BY 1), "
            "kept AS (INSERT INTO " +
            tables_.progress +
            " AS c (replica_set, projection, writer, positions) SELECT $1, m.projection, $2::uuid, m.positions "
            "FROM merged m ON CONFLICT (replica_set, projection, writer) DO UPDATE SET positions = "
            "(SELECT array_agg(greatest(t.a, t.b) ORDER BY t.i) FROM "
            "unnest(c.positions, EXCLUDED.positions) WITH ORDINALITY AS t(a, b, i)), updated_at = now()) "
            "SELECT count(DISTINCT writer) FROM gone",
        params, "fold the checkpoints of departed workers");
    co_return std::stoll(folded.at(0, 0).value_or("0"));
}

}  // namespace orchestratord::store
