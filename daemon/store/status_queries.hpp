#pragma once
// What the database says about a running installation, read with one blocking
// connection: for `orchestratord status` (the replica sets' rows, workers,
// slices, checkpoints, projection state and dead letters) and for the
// daemon's start-up line (who it is connected as, whether the NOTIFY trigger
// is installed). Every statement on orchestratord's tables that a report
// needs lives here, with typed results.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace orchestratord::pg {
class BlockingConnection;
}

namespace orchestratord::store {

// The database and role a connection is logged in as.
struct ConnectedAs {
    std::string database;
    std::string user;
};
ConnectedAs connected_as(pg::BlockingConnection& connection);

// Whether `orchestratord migrate --with-notify-trigger` installed the NOTIFY
// trigger on the events table (without it, idle workers poll).
bool notify_trigger_installed(pg::BlockingConnection& connection, const config::EventStoreConfig& store);

class StatusQueries {
public:
    // The replica set's row, written by its first worker.
    struct ReplicaSet {
        int64_t slices = 0;
        int64_t generation = 0;
    };
    struct Worker {
        std::string id;
        std::string host;
        int64_t pid = 0;
        double heartbeat_age_s = 0;
        double uptime_s = 0;
        std::string version;
        std::vector<int> slices;  // the slices it owns, ascending
    };
    // Slices without an owner, and slices whose owner is not yet their
    // target: a handoff in progress.
    struct Handoff {
        int64_t unowned = 0;
        int64_t moving = 0;
    };
    // The checkpoint rows of one projection: slices without a row have not
    // started, their checkpoint is 0.
    struct Checkpoints {
        int64_t lowest = 0;
        int64_t highest = 0;
        int64_t slices_with_rows = 0;
        bool started = false;  // a worker has run the projection (its checkpoint row exists)
    };
    // A projection without a row is running.
    struct ProjectionState {
        std::string state;         // running, paused or resetting
        std::string reason;        // why it is paused; empty otherwise
        int64_t failed_tries = 0;  // tries that failed in a row, until a batch succeeds
        std::string last_error;    // the last of them
    };

    StatusQueries(pg::BlockingConnection& connection, const config::EventStoreConfig& store);

    int64_t head();  // the highest global position in the events table, 0 when empty
    std::optional<ReplicaSet> replica_set(const std::string& name);
    std::vector<Worker> workers(const std::string& replica_set);  // oldest first
    Handoff handoff(const std::string& replica_set);
    Checkpoints checkpoints(const std::string& replica_set, const std::string& projection);
    std::optional<ProjectionState> projection_state(const std::string& replica_set, const std::string& projection);
    int64_t dead_letters(const std::string& replica_set, const std::string& projection);

private:
    pg::BlockingConnection& db_;
    const config::EventStoreConfig& store_;
};

}  // namespace orchestratord::store
