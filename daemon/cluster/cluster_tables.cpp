#include "cluster/cluster_tables.hpp"

#include <stdexcept>

#include "pg/array_literal.hpp"
#include "pg/async_connection.hpp"
#include "store/pg_names.hpp"

namespace orchestratord::cluster {
namespace asio = boost::asio;

namespace {

std::string milliseconds(std::chrono::milliseconds duration) {
    return std::to_string(duration.count());
}

// "{a,b}" from PostgreSQL's text form of an array to its elements.
std::vector<std::string> array_elements(const std::optional<std::string>& text) {
    std::vector<std::string> out;
    if (!text || text->size() < 2) return out;
    std::string current;
    for (char c : text->substr(1, text->size() - 2)) {
        if (c == ',') {
            out.push_back(current);
            current.clear();
        } else {
            current += c;
        }
    }
    if (!current.empty()) out.push_back(current);
    return out;
}

// The one definition of a stale worker (alias: the workers table's alias,
// param: the placeholder holding stale_worker_timeout in milliseconds). The
// heartbeat's check, ending the sessions and removing the rows must agree.
std::string is_stale(const std::string& alias, const std::string& param) {
    return alias + ".last_heartbeat < now() - " + param + "::int8 * interval '1 millisecond'";
}

}  // namespace

std::string session_name(const std::string& session_tag, const std::string& role) {
    return "orchestratord " + session_tag + " " + role;
}

std::string cluster_channel(const config::EventStoreConfig& store) {
    return store::fit_name("orchestratord_cluster_" + store.schema);
}

ClusterTables::ClusterTables(const config::EventStoreConfig& store, std::string replica_set)
    : tables_(store::TableNames::of(store)),
      checkpoints_(store),
      replica_set_(std::move(replica_set)),
      channel_(store::quote_identifier(cluster_channel(store))) {}

asio::awaitable<int32_t> ClusterTables::register_replica_set(pg::AsyncConnection& connection,
                                                             int32_t configured_slices) {
    // pg::make_params, not braces: see its comment.
    const auto insert = pg::make_params(replica_set_, std::to_string(configured_slices));
    co_await connection.exec(
        "INSERT INTO " + tables_.replica_sets + " (name, slices) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", insert,
        "register the replica set");
    const auto select = pg::make_params(replica_set_);
    const auto rows = co_await connection.exec("SELECT slices FROM " + tables_.replica_sets + " WHERE name = $1",
                                               select, "read the replica set's slice count");
    const int32_t slices = std::stoi(*rows.at(0, 0));
    // One row per slice: the ownership the cluster coordinates and fences on.
    const auto create = pg::make_params(replica_set_, std::to_string(slices));
    co_await connection.exec("INSERT INTO " + tables_.slices +
                                 " (replica_set, slice) SELECT $1, g FROM generate_series(0, $2::int4 - 1) AS g "
                                 "ON CONFLICT (replica_set, slice) DO NOTHING",
                             create, "create the replica set's slices");
    co_return slices;
}

asio::awaitable<std::string> ClusterTables::register_worker(pg::AsyncConnection& connection,
                                                            const WorkerIdentity& identity) {
    const auto params = pg::make_params(replica_set_, identity.host, std::to_string(identity.pid), identity.version,
                                        identity.session_tag, pg::text_array(identity.projections));
    const auto rows = co_await connection.exec(
        "WITH w AS (INSERT INTO " + tables_.workers +
            " (replica_set, id, host, pid, version, session_tag) VALUES ($1, gen_random_uuid(), $2, $3, $4, $5) "
            "RETURNING id), p AS (" +
            checkpoints_.create_rows("w", "$6") + ") SELECT id FROM w",
        params, "register the worker");
    co_return *rows.at(0, 0);
}

asio::awaitable<std::optional<HeartbeatReport>> ClusterTables::heartbeat(
    pg::AsyncConnection& connection, const std::string& worker, std::chrono::milliseconds stale_after,
    std::chrono::milliseconds coordination_timeout) {
    const std::string current_generation =
        "(SELECT g.members, g.created_at FROM " + tables_.generations + " g JOIN " + tables_.replica_sets +
        " r ON r.name = g.replica_set AND r.generation = g.number WHERE r.name = $1)";
    const auto params =
        pg::make_params(replica_set_, worker, milliseconds(stale_after), milliseconds(coordination_timeout));
    const auto rows = co_await connection.exec(
        "WITH current_generation AS " + current_generation + " UPDATE " + tables_.workers +
            " SET last_heartbeat = now() WHERE replica_set = $1 AND id = $2::uuid RETURNING "
            "(SELECT generation FROM " +
            tables_.replica_sets +
            " WHERE name = $1), "
            "(SELECT count(*) FROM " +
            tables_.workers + " w WHERE w.replica_set = $1 AND " + is_stale("w", "$3") +
            "), "
            "coalesce((SELECT array_agg(w.id ORDER BY w.id) FROM " +
            tables_.workers +
            " w WHERE w.replica_set = $1) = (SELECT members FROM current_generation), false), "
            "(SELECT count(*) FROM " +
            tables_.slices +
            " s WHERE s.replica_set = $1 AND s.owner IS DISTINCT FROM s.target_owner), "
            "coalesce((SELECT created_at < now() - $4::int8 * interval '1 millisecond' FROM current_generation), "
            "true), "
            "(SELECT (extract(epoch FROM min(w.last_heartbeat) - now()) * 1000 + $3::int8)::int8 FROM " +
            tables_.workers +
            " w WHERE w.replica_set = $1 AND w.id <> $2::uuid), "
            "coalesce((SELECT cardinality(members) FROM current_generation), 0)",
        params, "heartbeat");
    if (rows.rows == 0) co_return std::nullopt;
    HeartbeatReport report;
    report.generation = std::stoll(rows.at(0, 0).value_or("0"));
    report.stale_workers = std::stoll(rows.at(0, 1).value_or("0"));
    report.settled = rows.at(0, 2) == "t";
    report.moving_slices = std::stoll(rows.at(0, 3).value_or("0"));
    report.generation_overdue = rows.at(0, 4) == "t";
    if (const auto next_stale = rows.at(0, 5))
        report.next_stale_in = std::chrono::milliseconds(std::stoll(*next_stale));
    report.generation_members = std::stoll(rows.at(0, 6).value_or("0"));
    co_return report;
}

asio::awaitable<std::vector<EndedSessions>> ClusterTables::end_stale_sessions(pg::AsyncConnection& connection,
                                                                              std::chrono::milliseconds stale_after) {
    const auto params = pg::make_params(replica_set_, milliseconds(stale_after));
    const auto rows = co_await connection.exec(
        "SELECT w.id::text, count(a.pid) FILTER (WHERE pg_terminate_backend(a.pid)) FROM " + tables_.workers +
            " w JOIN pg_stat_activity a ON a.application_name LIKE 'orchestratord ' || w.session_tag || ' %' "
            "AND a.pid <> pg_backend_pid() AND a.usesysid = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
            "WHERE w.replica_set = $1 AND w.session_tag IS NOT NULL AND w.session_tag <> '' "
            "AND " +
            is_stale("w", "$2") + " GROUP BY w.id",
        params, "end the sessions of stale workers");
    std::vector<EndedSessions> ended;
    for (int64_t i = 0; i < rows.rows; ++i) {
        ended.push_back({rows.at(i, 0).value_or(""), std::stoll(rows.at(i, 1).value_or("0"))});
    }
    co_return ended;
}

asio::awaitable<std::optional<int64_t>> ClusterTables::lock_replica_set(pg::AsyncConnection& connection) {
    const auto name = pg::make_params(replica_set_);
    const auto locked = co_await connection.exec(
        "SELECT generation FROM " + tables_.replica_sets + " WHERE name = $1 FOR UPDATE SKIP LOCKED", name,
        "lock the replica set");
    if (locked.rows == 0) co_return std::nullopt;
    co_return std::stoll(locked.at(0, 0).value_or("0"));
}

asio::awaitable<std::vector<StaleWorker>> ClusterTables::remove_stale_workers(pg::AsyncConnection& connection,
                                                                              std::chrono::milliseconds stale_after) {
    const auto params = pg::make_params(replica_set_, milliseconds(stale_after));
    const auto rows = co_await connection.exec(
        "DELETE FROM " + tables_.workers + " w WHERE w.replica_set = $1 AND " + is_stale("w", "$2") +
            " RETURNING w.id, w.host, w.pid, extract(epoch FROM clock_timestamp() - w.last_heartbeat)::float8",
        params, "remove stale workers");
    std::vector<StaleWorker> removed;
    for (int64_t i = 0; i < rows.rows; ++i) {
        removed.push_back({rows.at(i, 0).value_or(""), rows.at(i, 1).value_or(""), rows.at(i, 2).value_or(""),
                           std::stod(rows.at(i, 3).value_or("0"))});
    }
    co_return removed;
}

asio::awaitable<std::vector<std::string>> ClusterTables::live_workers(pg::AsyncConnection& connection) {
    const auto name = pg::make_params(replica_set_);
    const auto rows = co_await connection.exec(
        "SELECT coalesce(array_agg(id ORDER BY id), '{}')::text FROM " + tables_.workers + " WHERE replica_set = $1",
        name, "list live workers");
    co_return array_elements(rows.at(0, 0));
}

asio::awaitable<std::optional<GenerationRecord>> ClusterTables::read_generation(
    pg::AsyncConnection& connection, int64_t number, std::chrono::milliseconds coordination_timeout) {
    const auto params = pg::make_params(replica_set_, std::to_string(number), milliseconds(coordination_timeout));
    const auto rows = co_await connection.exec(
        "SELECT members::text, created_at < now() - $3::int8 * interval '1 millisecond' FROM " + tables_.generations +
            " WHERE replica_set = $1 AND number = $2",
        params, "read the current generation");
    if (rows.rows == 0) co_return std::nullopt;
    co_return GenerationRecord{array_elements(rows.at(0, 0)), rows.at(0, 1) == "t"};
}

asio::awaitable<std::vector<SliceAssignment>> ClusterTables::read_assignment(pg::AsyncConnection& connection) {
    const auto name = pg::make_params(replica_set_);
    const auto rows =
        co_await connection.exec("SELECT slice, coalesce(owner::text, ''), coalesce(target_owner::text, '') FROM " +
                                     tables_.slices + " WHERE replica_set = $1 ORDER BY slice",
                                 name, "read the slice assignment");
    std::vector<SliceAssignment> assignment;
    for (int64_t i = 0; i < rows.rows; ++i) {
        assignment.push_back({std::stoi(*rows.at(i, 0)), *rows.at(i, 1), *rows.at(i, 2)});
    }
    co_return assignment;
}

asio::awaitable<void> ClusterTables::write_generation(pg::AsyncConnection& connection, int64_t number,
                                                      const std::vector<std::string>& members,
                                                      const std::vector<int32_t>& slices,
                                                      const std::vector<std::string>& targets) {
    if (targets.size() != slices.size()) {
        throw std::invalid_argument("write_generation: " + std::to_string(targets.size()) + " targets for " +
                                    std::to_string(slices.size()) + " slices");
    }
    std::string target_ids = "{";  // uuid[]: NULL for a slice without a target
    for (size_t i = 0; i < targets.size(); ++i) {
        if (i > 0) target_ids += ',';
        target_ids += targets[i].empty() ? "NULL" : targets[i];
    }
    target_ids += '}';
    const auto params = pg::make_params(replica_set_, std::to_string(number), pg::text_array(members),
                                        pg::number_array(slices), target_ids);
    co_await connection.exec(
        "WITH g AS (INSERT INTO " + tables_.generations +
            " (replica_set, number, members) VALUES ($1, $2, $3::uuid[])), "
            "r AS (UPDATE " +
            tables_.replica_sets +
            " SET generation = $2 WHERE name = $1) "
            "UPDATE " +
            tables_.slices +
            " s SET target_owner = t.target FROM unnest($4::int4[], $5::uuid[]) AS t(slice, target) "
            "WHERE s.replica_set = $1 AND s.slice = t.slice AND s.target_owner IS DISTINCT FROM t.target",
        params, "write the new generation");
}

asio::awaitable<std::vector<FreedSlice>> ClusterTables::free_slices(pg::AsyncConnection& connection, FreeReason reason,
                                                                    const std::string& worker,
                                                                    const std::vector<int32_t>& slices) {
    std::string condition;
    std::string purpose;
    pg::Params params = pg::make_params(replica_set_);
    bool graceful = false;  // by the owner ($2) itself: wait for its batches that are committing
    switch (reason) {
        case FreeReason::owner_gone:
            condition = "s.owner IS NOT NULL AND NOT EXISTS (SELECT 1 FROM " + tables_.workers +
                        " w WHERE w.replica_set = $1 AND w.id = s.owner)";
            purpose = "free the slices of workers that are gone";
            break;
        case FreeReason::not_handed_over:
            // The fencing (a revoked lease) makes a late commit by the owner fail.
            condition = "s.owner IS NOT NULL AND s.owner IS DISTINCT FROM s.target_owner";
            purpose = "free slices not handed over in time";
            break;
        case FreeReason::released:
            condition = "s.slice = ANY($3::int4[]) AND s.owner = $2::uuid AND s.target_owner IS DISTINCT FROM $2::uuid";
            purpose = "release slices";
            params.emplace_back(worker);
            params.emplace_back(pg::number_array(slices));
            graceful = true;
            break;
        case FreeReason::leaving:
            condition = "s.owner = $2::uuid";
            purpose = "release every slice";
            params.emplace_back(worker);
            graceful = true;
            break;
    }
    if (graceful && worker.empty()) throw std::invalid_argument(purpose + ": no worker id given");
    std::string batches;
    std::string batches_done = "true";
    if (graceful) {
        batches = "batches AS (SELECT 1 FROM " + tables_.progress +
                  " WHERE replica_set = $1 AND writer = $2::uuid FOR NO KEY UPDATE), ";
        batches_done = "(SELECT count(*) FROM batches) >= 0";
    }
    const auto rows = co_await connection.exec(
        "WITH " + batches + "freed AS (UPDATE " + tables_.slices +
            " s SET owner = NULL, epoch = s.epoch + 1 WHERE s.replica_set = $1 AND (" + condition +
            ") RETURNING s.slice, s.epoch - 1 AS held), "
            "closed AS (UPDATE " +
            tables_.slice_history +
            " h SET released_at = clock_timestamp() FROM freed f WHERE h.replica_set = $1 AND h.slice = f.slice AND "
            "h.epoch = f.held RETURNING h.slice, h.owner) "
            "SELECT f.slice, c.owner FROM freed f LEFT JOIN closed c USING (slice) WHERE " +
            batches_done + " ORDER BY f.slice",
        params, purpose);
    std::vector<FreedSlice> freed;
    for (int64_t i = 0; i < rows.rows; ++i) freed.push_back({std::stoi(*rows.at(i, 0)), rows.at(i, 1).value_or("")});
    co_return freed;
}

asio::awaitable<WorkerSlices> ClusterTables::read_worker_slices(pg::AsyncConnection& connection,
                                                                const std::string& worker) {
    const auto params = pg::make_params(replica_set_, worker);
    const auto rows = co_await connection.exec(
        "SELECT slice, owner IS NOT NULL, epoch, target_owner IS NOT DISTINCT FROM $2::uuid, (SELECT generation FROM " +
            tables_.replica_sets +
            " WHERE name = $1), "
            "(SELECT max(lease) FROM " +
            tables_.progress + " WHERE replica_set = $1 AND writer = $2::uuid) FROM " + tables_.slices +
            " WHERE replica_set = $1 AND (owner = $2::uuid OR (owner IS NULL AND target_owner = $2::uuid))",
        params, "read this worker's slices");
    WorkerSlices result;
    for (int64_t i = 0; i < rows.rows; ++i) {
        result.slices.push_back(
            {std::stoi(*rows.at(i, 0)), rows.at(i, 1) == "t", std::stoll(*rows.at(i, 2)), rows.at(i, 3) == "t"});
    }
    if (rows.rows > 0) {
        result.generation = std::stoll(rows.at(0, 4).value_or("0"));
        if (rows.at(0, 5)) result.lease = std::stoll(*rows.at(0, 5));
    }
    co_return result;
}

asio::awaitable<std::vector<AcquiredSlice>> ClusterTables::acquire(pg::AsyncConnection& connection,
                                                                   const std::string& worker) {
    const auto params = pg::make_params(replica_set_, worker);
    const auto rows = co_await connection.exec(
        "WITH taken AS (UPDATE " + tables_.slices +
            " SET owner = $2::uuid, epoch = epoch + 1 WHERE replica_set = $1 AND owner IS NULL AND target_owner = "
            "$2::uuid RETURNING slice, epoch), "
            "h AS (INSERT INTO " +
            tables_.slice_history +
            " (replica_set, slice, epoch, owner, acquired_at) SELECT $1, slice, epoch, $2::uuid, clock_timestamp() "
            "FROM taken) SELECT slice, epoch FROM taken ORDER BY slice",
        params, "acquire slices");
    std::vector<AcquiredSlice> acquired;
    for (int64_t i = 0; i < rows.rows; ++i) acquired.push_back({std::stoi(*rows.at(i, 0)), std::stoll(*rows.at(i, 1))});
    co_return acquired;
}

asio::awaitable<void> ClusterTables::remove_worker(pg::AsyncConnection& connection, const std::string& worker) {
    const auto params = pg::make_params(replica_set_, worker);
    co_await connection.exec("DELETE FROM " + tables_.workers + " WHERE replica_set = $1 AND id = $2::uuid", params,
                             "unregister the worker");
}

asio::awaitable<void> ClusterTables::notify(pg::AsyncConnection& connection) {
    co_await connection.exec("NOTIFY " + channel_, pg::Params{}, "tell the cluster");
}

}  // namespace orchestratord::cluster
