#include "store/projection_lag.hpp"

#include "pg/array_literal.hpp"
#include "pg/async_connection.hpp"
#include "store/table_names.hpp"

namespace orchestratord::store {

boost::asio::awaitable<std::vector<ProjectionLag>> read_projection_lags(pg::AsyncConnection& connection,
                                                                        const config::EventStoreConfig& store,
                                                                        const std::string& replica_set,
                                                                        const std::vector<std::string>& projections) {
    const auto& tables = TableNames::of(store);
    // A slice without a checkpoint row has not started: the lowest
    // checkpoint is 0 until every slice has one.
    const std::string sql =
        "WITH head AS (SELECT global_position, created_at FROM " + tables.events +
        " ORDER BY global_position DESC LIMIT 1), "
        "lowest AS (SELECT p.projection, CASE WHEN count(c.slice) < coalesce((SELECT slices FROM " +
        tables.replica_sets +
        " WHERE name = $1), 0) THEN 0 ELSE coalesce(min(c.position), 0) END AS position "
        "FROM unnest($2::text[]) AS p(projection) LEFT JOIN " +
        tables.checkpoints +
        " c ON c.replica_set = $1 AND c.projection = p.projection GROUP BY p.projection) "
        "SELECT l.projection, coalesce(h.global_position, 0), l.position, "
        "coalesce(greatest(extract(epoch FROM h.created_at - coalesce("
        "(SELECT e.created_at FROM " +
        tables.events +
        " e WHERE e.global_position = l.position), "
        "(SELECT e.created_at FROM " +
        tables.events +
        " e WHERE e.global_position > l.position ORDER BY e.global_position LIMIT 1), h.created_at)), 0), "
        "0)::float8 "
        "FROM lowest l LEFT JOIN head h ON true ORDER BY l.projection";
    const auto rows = co_await connection.exec(sql, pg::make_params(replica_set, pg::text_array(projections)),
                                               "read the projections' lag");
    std::vector<ProjectionLag> lags;
    for (int64_t row = 0; row < rows.rows; ++row) {
        ProjectionLag lag;
        lag.projection = rows.at(row, 0).value_or("");
        lag.head = std::stoll(rows.at(row, 1).value_or("0"));
        lag.checkpoint = std::stoll(rows.at(row, 2).value_or("0"));
        lag.lag_seconds = std::stod(rows.at(row, 3).value_or("0"));
        lags.push_back(std::move(lag));
    }
    co_return lags;
}

}  // namespace orchestratord::store
