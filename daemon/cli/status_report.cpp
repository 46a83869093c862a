#include "cli/status_report.hpp"

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "pg/blocking_connection.hpp"
#include "store/event_store_check.hpp"
#include "store/status_queries.hpp"

namespace orchestratord::cli {
namespace {

// What a projection is doing, from what the database shows: its state row
// (paused, resetting), whether any worker ever ran it, whether a live worker
// runs it now, and how far behind it is.
std::string projection_state(const std::optional<store::StatusQueries::ProjectionState>& state, bool started,
                             size_t live_workers, int64_t lag, int64_t batch_size) {
    if (state && state->state != "running") return state->state;
    if (!started) return "never started";
    if (live_workers == 0) return "not running";
    if (state && state->failed_tries > 0) return "retrying";
    if (lag > batch_size) return "catching up";
    return "running";
}

// libpq's messages span lines ("...failed: Connection refused\n\tIs the
// server running..."): an error is reported on one.
std::string one_line(const std::string& text) {
    std::string line;
    for (char c : text) {
        if (c == '\n') {
            line += "; ";
        } else if (c != '\t' && c != '\r') {
            line += c;
        }
    }
    while (line.ends_with("; ") || line.ends_with(' ')) line.pop_back();
    return line;
}

// "last heartbeat 1.2s ago", or how soon a silent worker is removed.
std::string heartbeat_text(double age_s, double heartbeat_s, double stale_s) {
    char text[128];
    if (age_s <= 2 * heartbeat_s) {
        std::snprintf(text, sizeof text, "last heartbeat %.1fs ago", age_s);
    } else if (age_s < stale_s) {
        std::snprintf(text, sizeof text, "no heartbeat %.0fs, removed in %.0fs", age_s, stale_s - age_s);
    } else {
        std::snprintf(text, sizeof text, "no heartbeat %.0fs: stale, removed when a live worker coordinates", age_s);
    }
    return text;
}

double seconds(config::Duration duration) {
    return std::chrono::duration<double>(duration).count();
}

}  // namespace

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
            const double stale_s = seconds(replica_set.stale_worker_timeout);
            const double heartbeat_s = seconds(replica_set.heartbeat_interval);
            size_t live = 0;
            for (const auto& worker : workers) live += worker.heartbeat_age_s < stale_s ? 1 : 0;
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
                                            {"stale", worker.heartbeat_age_s >= stale_s},
                                            {"heartbeat", heartbeat_text(worker.heartbeat_age_s, heartbeat_s, stale_s)},
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
                const int64_t lag = std::max<int64_t>(0, head - lowest);
                entry["projections"].push_back(
                    {{"name", projection.name},
                     {"state", projection_state(state, checkpoints.started, live, lag, replica_set.batch_size)},
                     {"reason", state ? state->reason : std::string()},
                     {"failed_tries", state ? state->failed_tries : 0},
                     {"last_error", state ? state->last_error : std::string()},
                     {"lowest_checkpoint", lowest},
                     {"highest_checkpoint", checkpoints.highest},
                     {"lag_events", lag},
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
            size_t live = 0;
            for (const auto& worker : rs["workers"]) live += worker["stale"].get<bool>() ? 0 : 1;
            std::cout << "\nreplica set " << rs["name"].get<std::string>() << ": " << rs["slices"]
                      << " slices, generation " << rs["generation"] << ", " << live << " live worker(s)"
                      << (rs["created"].get<bool>() ? "" : " (no worker has started yet)") << "\n";
            if (rs["slices_moving"].get<int64_t>() > 0 && live > 0) {
                std::cout << "  handoff in progress: " << rs["slices_moving"] << " slice(s) moving, "
                          << rs["slices_unowned"] << " without an owner\n";
            }
            for (const auto& worker : rs["workers"]) {
                std::cout << "  worker " << worker["id"].get<std::string>() << " on "
                          << worker["host"].get<std::string>() << " pid " << worker["pid"] << ": "
                          << worker["slices_owned"] << " slice(s), " << worker["heartbeat"].get<std::string>() << "\n";
            }
            std::cout << "  " << std::left << std::setw(28) << "projection" << std::setw(15) << "state" << std::right
                      << std::setw(14) << "checkpoint" << std::setw(12) << "lag" << std::setw(14) << "dead letters"
                      << "\n";
            for (const auto& p : rs["projections"]) {
                std::cout << "  " << std::left << std::setw(28) << p["name"].get<std::string>() << std::setw(15)
                          << p["state"].get<std::string>() << std::right << std::setw(14)
                          << p["lowest_checkpoint"].get<int64_t>() << std::setw(12) << p["lag_events"].get<int64_t>()
                          << std::setw(14) << p["dead_letters"].get<int64_t>() << "\n";
                if (!p["reason"].get<std::string>().empty()) {
                    std::cout << "    paused: " << p["reason"].get<std::string>() << "\n";
                } else if (p["state"] == "retrying") {
                    std::cout << "    retrying: " << p["failed_tries"].get<int64_t>()
                              << " tries failed in a row, last error: " << p["last_error"].get<std::string>() << "\n";
                }
            }
        }
        return 0;
    } catch (const std::exception& e) {
        const std::string error = one_line(e.what());
        if (json) {
            std::cout << nlohmann::json{{"error", error}}.dump(2) << "\n";
        } else {
            std::cerr << "status failed: " << error << "\n";
        }
        return 1;
    }
}

}  // namespace orchestratord::cli
