#include "cli/status_report.hpp"

#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "pg/blocking_connection.hpp"
#include "store/event_store_check.hpp"
#include "store/pg_names.hpp"

namespace orchestratord::cli {
namespace {

int64_t number(const std::optional<std::string>& text) {
    return text ? std::stoll(*text) : 0;
}

}  // namespace

int print_status(const config::Config& config, bool json) {
    try {
        pg::BlockingConnection db(config.database.url);
        const auto& store = config.event_store;
        if (const auto problems = store::event_store_problems(db, store); !problems.empty()) {
            for (const auto& problem : problems) std::cerr << "error: " << problem << "\n";
            return 1;
        }
        const int64_t head = number(
            db.exec("SELECT coalesce(max(global_position), 0) FROM " + store::qualified(store, store.events_table))
                .at(0, 0));
        nlohmann::json out{{"head", head}, {"replica_sets", nlohmann::json::array()}};
        for (const auto& replica_set : config.replica_sets) {
            const auto row = db.exec(
                "SELECT slices, generation FROM " + store::own_table(store, "replica_sets") + " WHERE name = $1",
                {replica_set.name}, "read the replica set");
            const auto workers = db.exec(
                "SELECT w.id::text, w.host, w.pid, extract(epoch FROM now() - w.last_heartbeat)::float8, "
                "extract(epoch FROM now() - w.started_at)::float8, w.version, "
                "(SELECT coalesce(string_agg(s.slice::text, ',' ORDER BY s.slice), '') FROM " +
                    store::own_table(store, "slices") +
                    " s WHERE s.replica_set = w.replica_set AND s.owner = w.id) FROM " +
                    store::own_table(store, "workers") + " w WHERE w.replica_set = $1 ORDER BY w.started_at",
                {replica_set.name}, "read the workers");
            // Slices without an owner, or whose owner is not yet their target: a handoff in progress.
            const auto slices = db.exec(
                "SELECT count(*) FILTER (WHERE owner IS NULL), "
                "count(*) FILTER (WHERE owner IS DISTINCT FROM target_owner) FROM " +
                    store::own_table(store, "slices") + " WHERE replica_set = $1",
                {replica_set.name}, "read the slices");
            nlohmann::json entry{{"name", replica_set.name},
                                 {"created", row.rows > 0},
                                 {"slices", row.rows > 0 ? number(row.at(0, 0)) : replica_set.slices},
                                 {"generation", row.rows > 0 ? number(row.at(0, 1)) : 0},
                                 {"slices_unowned", number(slices.at(0, 0))},
                                 {"slices_moving", number(slices.at(0, 1))},
                                 {"workers", nlohmann::json::array()},
                                 {"projections", nlohmann::json::array()}};
            for (int64_t w = 0; w < workers.rows; ++w) {
                nlohmann::json owned = nlohmann::json::array();
                std::stringstream list(workers.at(w, 6).value_or(""));
                for (std::string slice; std::getline(list, slice, ',');) owned.push_back(std::stoi(slice));
                entry["workers"].push_back({{"id", workers.at(w, 0).value_or("")},
                                            {"host", workers.at(w, 1).value_or("")},
                                            {"pid", number(workers.at(w, 2))},
                                            {"heartbeat_age_s", std::stod(workers.at(w, 3).value_or("0"))},
                                            {"uptime_s", std::stod(workers.at(w, 4).value_or("0"))},
                                            {"version", workers.at(w, 5).value_or("")},
                                            {"slices_owned", owned.size()},
                                            {"slices", owned}});
            }
            for (const auto& projection : replica_set.projections) {
                const auto checkpoints =
                    db.exec("SELECT coalesce(min(position), 0), coalesce(max(position), 0), count(*) FROM " +
                                store::own_table(store, "checkpoints") + " WHERE replica_set = $1 AND projection = $2",
                            {replica_set.name, projection.name}, "read checkpoints");
                const auto state =
                    db.exec("SELECT state, coalesce(reason, '') FROM " + store::own_table(store, "projection_state") +
                                " WHERE replica_set = $1 AND projection = $2",
                            {replica_set.name, projection.name}, "read the projection state");
                const auto letters = db.exec("SELECT count(*) FROM " + store::own_table(store, "dead_letters") +
                                                 " WHERE replica_set = $1 AND projection = $2",
                                             {replica_set.name, projection.name}, "count dead letters");
                // Slices without a row have not started: their checkpoint is 0.
                const int64_t slices_with_rows = number(checkpoints.at(0, 2));
                const int64_t lowest =
                    slices_with_rows < entry["slices"].get<int64_t>() ? 0 : number(checkpoints.at(0, 0));
                entry["projections"].push_back({{"name", projection.name},
                                                {"state", state.rows > 0 ? *state.at(0, 0) : std::string("running")},
                                                {"reason", state.rows > 0 ? *state.at(0, 1) : std::string()},
                                                {"lowest_checkpoint", lowest},
                                                {"highest_checkpoint", number(checkpoints.at(0, 1))},
                                                {"lag_events", std::max<int64_t>(0, head - lowest)},
                                                {"dead_letters", number(letters.at(0, 0))}});
            }
            out["replica_sets"].push_back(entry);
        }
        if (json) {
            std::cout << out.dump(2) << "\n";
            return 0;
        }
        std::cout << "event store head: " << head << "\n";
        for (const auto& rs : out["replica_sets"]) {
            std::cout << "\nreplica set " << rs["name"].get<std::string>() << ": " << rs["slices"]
                      << " slices, generation " << rs["generation"] << ", " << rs["workers"].size() << " worker(s)"
                      << (rs["created"].get<bool>() ? "" : " (no worker has started yet)") << "\n";
            if (rs["slices_moving"].get<int64_t>() > 0) {
                std::cout << "  handoff in progress: " << rs["slices_moving"] << " slice(s) moving, "
                          << rs["slices_unowned"] << " without an owner\n";
            }
            for (const auto& worker : rs["workers"]) {
                std::cout << "  worker " << worker["id"].get<std::string>() << " on "
                          << worker["host"].get<std::string>() << " pid " << worker["pid"] << ": "
                          << worker["slices_owned"] << " slice(s), last heartbeat " << std::fixed
                          << std::setprecision(1) << worker["heartbeat_age_s"].get<double>() << "s ago\n";
            }
            std::cout << "  " << std::left << std::setw(28) << "projection" << std::setw(10) << "state" << std::right
                      << std::setw(14) << "checkpoint" << std::setw(12) << "lag" << std::setw(14) << "dead letters"
                      << "\n";
            for (const auto& p : rs["projections"]) {
                std::cout << "  " << std::left << std::setw(28) << p["name"].get<std::string>() << std::setw(10)
                          << p["state"].get<std::string>() << std::right << std::setw(14)
                          << p["lowest_checkpoint"].get<int64_t>() << std::setw(12) << p["lag_events"].get<int64_t>()
                          << std::setw(14) << p["dead_letters"].get<int64_t>() << "\n";
                if (!p["reason"].get<std::string>().empty()) {
                    std::cout << "    paused: " << p["reason"].get<std::string>() << "\n";
                }
            }
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "status failed: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace orchestratord::cli
