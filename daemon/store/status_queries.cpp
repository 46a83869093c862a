#include "store/status_queries.hpp"

#include <sstream>

#include "pg/blocking_connection.hpp"
#include "store/pg_names.hpp"

namespace orchestratord::store {
namespace {

int64_t number(const std::optional<std::string>& text) {
    return text ? std::stoll(*text) : 0;
}

double seconds(const std::optional<std::string>& text) {
    return std::stod(text.value_or("0"));
}

}  // namespace

ConnectedAs connected_as(pg::BlockingConnection& connection) {
    const auto rows = connection.exec("SELECT current_database(), current_user", {}, "check the connection");
    return {rows.at(0, 0).value_or(""), rows.at(0, 1).value_or("")};
}

bool notify_trigger_installed(pg::BlockingConnection& connection, const config::EventStoreConfig& store) {
    const auto rows = connection.exec("SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2",
                                      {qualified(store, store.events_table), notify_trigger_name(store)},
                                      "look for the NOTIFY trigger");
    return rows.at(0, 0) != "0";
}

StatusQueries::StatusQueries(pg::BlockingConnection& connection, const config::EventStoreConfig& store)
    : db_(connection), store_(store) {}

int64_t StatusQueries::head() {
    return number(
        db_.exec("SELECT coalesce(max(global_position), 0) FROM " + qualified(store_, store_.events_table)).at(0, 0));
}

std::optional<StatusQueries::ReplicaSet> StatusQueries::replica_set(const std::string& name) {
    const auto rows =
        db_.exec("SELECT slices, generation FROM " + own_table(store_, "replica_sets") + " WHERE name = $1", {name},
                 "read the replica set");
    if (rows.rows == 0) return std::nullopt;
    return ReplicaSet{number(rows.at(0, 0)), number(rows.at(0, 1))};
}

std::vector<StatusQueries::Worker> StatusQueries::workers(const std::string& replica_set) {
    const auto rows = db_.exec(
        "SELECT w.id::text, w.host, w.pid, extract(epoch FROM now() - w.last_heartbeat)::float8, "
        "extract(epoch FROM now() - w.started_at)::float8, w.version, "
        "(SELECT coalesce(string_agg(s.slice::text, ',' ORDER BY s.slice), '') FROM " +
            own_table(store_, "slices") + " s WHERE s.replica_set = w.replica_set AND s.owner = w.id) FROM " +
            own_table(store_, "workers") + " w WHERE w.replica_set = $1 ORDER BY w.started_at",
        {replica_set}, "read the workers");
    std::vector<Worker> workers;
    for (int64_t w = 0; w < rows.rows; ++w) {
        Worker worker{rows.at(w, 0).value_or(""),
                      rows.at(w, 1).value_or(""),
                      number(rows.at(w, 2)),
                      seconds(rows.at(w, 3)),
                      seconds(rows.at(w, 4)),
                      rows.at(w, 5).value_or(""),
                      {}};
        std::stringstream list(rows.at(w, 6).value_or(""));
        for (std::string slice; std::getline(list, slice, ',');) worker.slices.push_back(std::stoi(slice));
        workers.push_back(std::move(worker));
    }
    return workers;
}

StatusQueries::Handoff StatusQueries::handoff(const std::string& replica_set) {
    const auto rows = db_.exec(
        "SELECT count(*) FILTER (WHERE owner IS NULL), "
        "count(*) FILTER (WHERE owner IS DISTINCT FROM target_owner) FROM " +
            own_table(store_, "slices") + " WHERE replica_set = $1",
        {replica_set}, "read the slices");
    return {number(rows.at(0, 0)), number(rows.at(0, 1))};
}

StatusQueries::Checkpoints StatusQueries::checkpoints(const std::string& replica_set, const std::string& projection) {
    const auto rows = db_.exec(
        "SELECT coalesce(min(position), 0), coalesce(max(position), 0), count(*), EXISTS (SELECT "
        "FROM " +
            own_table(store_, "progress") + " WHERE replica_set = $1 AND projection = $2) FROM " +
            own_table(store_, "checkpoints") + " WHERE replica_set = $1 AND projection = $2",
        {replica_set, projection}, "read checkpoints");
    return {number(rows.at(0, 0)), number(rows.at(0, 1)), number(rows.at(0, 2)), rows.at(0, 3) == "t"};
}

std::optional<StatusQueries::ProjectionState> StatusQueries::projection_state(const std::string& replica_set,
                                                                              const std::string& projection) {
    const auto rows =
        db_.exec("SELECT state, coalesce(reason, ''), failed_tries, coalesce(last_error, '') FROM " +
                     own_table(store_, "projection_state") + " WHERE replica_set = $1 AND projection = $2",
                 {replica_set, projection}, "read the projection state");
    if (rows.rows == 0) return std::nullopt;
    return ProjectionState{rows.at(0, 0).value_or(""), rows.at(0, 1).value_or(""), number(rows.at(0, 2)),
                           rows.at(0, 3).value_or("")};
}

int64_t StatusQueries::dead_letters(const std::string& replica_set, const std::string& projection) {
    return number(db_.exec("SELECT count(*) FROM " + own_table(store_, "dead_letters") +
                               " WHERE replica_set = $1 AND projection = $2",
                           {replica_set, projection}, "count dead letters")
                      .at(0, 0));
}

}  // namespace orchestratord::store
