#include "cli/status_report.hpp"

#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "pg/blocking_connection.hpp"
#include "store/event_store_check.hpp"
#include "store/status_queries.hpp"

namespace orchestratord::cli {

int print_status(const config::Config& config, bool json) {
    try {
        pg::BlockingConnection db(config.database.url);
        if (const auto problems = store::event_store_problems(db, config.event_store); !problems.empty()) {
            for (const auto& problem : problems) std::cerr << "error: " << problem << "\n";
            return 1;
        }
        store::StatusQueries query(db, config.event_store);
        const int64_t head = query.head();
        nlohmann::json out{{"head", head}, {"replica_sets", nlohmann::json::array()}};
        for (const auto& replica_set : config.replica_sets) {
            const auto row = query.replica_set(replica_set.name);
            const auto workers = query.workers(replica_set.name);
            const auto handoff = query.handoff(replica_set.name);
            const int64_t slices = row ? row->slices : replica_set.slices;
            nlohmann::json entry{{"name", replica_set.name},
                                 {"created", row.has_value()},
                                 {"slices", slices},
                                 {"generation", row ? row->generation : 0},
                                 {"slices_unowned", handoff.unowned},
                                 {"slices_moving", handoff.moving},
                                 {"workers", nlohmann::json::array()},
                                 {"projections", nlohmann::json::array()}};
            for (const auto& worker : workers) {
                entry["workers"].push_back({{"id", worker.id},
                                            {"host", worker.host},
                                            {"pid", worker.pid},
                                            {"heartbeat_age_s", worker.heartbeat_age_s},
                                            {"uptime_s", worker.uptime_s},
                                            {"version", worker.version},
                                            {"slices_owned", worker.slices.size()},
                                            {"slices", worker.slices}});
            }
            for (const auto& projection : replica_set.projections) {
                const auto checkpoints = query.checkpoints(replica_set.name, projection.name);
                const auto state = query.projection_state(replica_set.name, projection.name);
                // Slices without a row have not started: their checkpoint is 0.
                const int64_t lowest = checkpoints.slices_with_rows < slices ? 0 : checkpoints.lowest;
                entry["projections"].push_back(
                    {{"name", projection.name},
                     {"state", state ? state->state : std::string("running")},
                     {"reason", state ? state->reason : std::string()},
                     {"lowest_checkpoint", lowest},
                     {"highest_checkpoint", checkpoints.highest},
                     {"lag_events", std::max<int64_t>(0, head - lowest)},
                     {"dead_letters", query.dead_letters(replica_set.name, projection.name)}});
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
