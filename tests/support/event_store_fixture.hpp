#pragma once
// An isolated event store for one test: its own schema (migrated with the
// NOTIFY trigger), a `recorded` table for the recorder fixture plugin, a
// config file, and helpers to append events and start daemons.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "pg/blocking_connection.hpp"
#include "support/child_process.hpp"
#include "support/pg_env.hpp"
#include "support/temp_dir.hpp"

namespace orchestratord::test {

// Appends `count` events to schema.events spread over `aggregates`
// aggregates, each aggregate's versions continuing where they were.
inline void append_events(pg::BlockingConnection& db, const std::string& schema, int count, int aggregates = 50,
                          const std::string& type = "Happened", const std::string& aggregate_type = "Thing",
                          const std::string& context = "test") {
    db.exec("INSERT INTO " + schema +
                ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, "
                "payload, metadata) "
                "SELECT $4, $3, 'agg-' || (g % $2::int), "
                "coalesce((SELECT max(aggregate_version) FROM " +
                schema +
                ".events e WHERE e.aggregate_id = 'agg-' || (g % $2::int)), 0) + 1, "
                "gen_random_uuid(), $5, convert_to('{\"n\":' || g || '}', 'UTF8'), '{\"test\":true}'::jsonb "
                "FROM generate_series(1, $1::int) g",
            {std::to_string(count), std::to_string(aggregates), aggregate_type, context, type});
}

// Adds to `seen` how many times each position appears in a recorder_file
// output ("position aggregate version" per line; a torn last line is ignored).
inline void count_file_deliveries(const std::string& file, std::map<int64_t, int>& seen) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        int64_t position = 0;
        std::string aggregate;
        int64_t version = 0;
        if (fields >> position >> aggregate >> version) ++seen[position];
    }
}

class EventStoreFixture {
public:
    // notify_trigger: migrate with the optional NOTIFY trigger (without it,
    // writers may use two-phase commit).
    explicit EventStoreFixture(const std::string& label, bool notify_trigger = true)
        : schema_(label + "_" + std::to_string(::getpid())), db_(pg_url()) {
        db_.exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
        std::vector<std::string> migrate{ORCHESTRATORD_BIN, "migrate", "--config", config_file("")};
        if (notify_trigger) migrate.push_back("--with-notify-trigger");
        const auto migrated = run_command(migrate);
        INFO(migrated.output);
        REQUIRE(migrated.status.code == 0);
        db_.exec("CREATE TABLE " + schema_ +
                 ".recorded (id BIGSERIAL PRIMARY KEY, global_position BIGINT, aggregate_id TEXT, aggregate_version "
                 "BIGINT, event_type TEXT, payload_size BIGINT, metadata TEXT)");
    }
    ~EventStoreFixture() {
        try {
            db_.exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
        } catch (...) {
        }
    }

    const std::string& schema() const { return schema_; }
    pg::BlockingConnection& db() { return db_; }
    const TempDir& dir() const { return dir_; }

    // A config with one replica set running `projections_yaml` (list entries,
    // indented by 6 spaces) at `batch_size`.
    std::string config_file(const std::string& projections_yaml, int batch_size = 100,
                            const std::string& name = "orchestratord.yaml") const {
        return dir_.write(name,
                          "database: {url: '" + pg_url() + "'}\n" + "event_store: {schema: " + schema_ +
                              "}\nlogging: {level: debug}\nplugins: {directory: " FIXTURE_PLUGIN_DIR
                              "}\nhttp: {listen: '127.0.0.1:0'}\nreplica_sets:\n  - name: test\n    batch_size: " +
                              std::to_string(batch_size) + "\n    poll_interval_max: 200ms\n" +
                              (projections_yaml.empty() ? "" : "    projections:\n" + projections_yaml));
    }

    std::string recorder(const std::string& projection = "recorder", const std::string& extra = "") const {
        return "      - name: " + projection + "\n        config: {table: " + schema_ + ".recorded" + extra + "}\n";
    }

    // Appends `count` events spread over `aggregates` aggregates, each
    // aggregate's versions continuing where they were.
    void append(int count, int aggregates = 50, const std::string& type = "Happened",
                const std::string& aggregate_type = "Thing", const std::string& context = "test") {
        append_events(db_, schema_, count, aggregates, type, aggregate_type, context);
    }

    // One event per statement keeps versions right when aggregates repeat.
    void append_each(int count, int aggregates = 50) {
        for (int i = 0; i < count; i += aggregates) append(std::min(aggregates, count - i), aggregates);
    }

    int64_t scalar(const std::string& sql) {
        const auto rows = db_.exec(sql);
        return rows.at(0, 0) ? std::stoll(*rows.at(0, 0)) : 0;
    }
    int64_t head() { return scalar("SELECT coalesce(max(global_position), 0) FROM " + schema_ + ".events"); }
    int64_t recorded() { return scalar("SELECT count(*) FROM " + schema_ + ".recorded"); }
    int64_t lowest_checkpoint(const std::string& projection = "recorder") {
        return scalar("SELECT coalesce(min(position), 0) FROM " + schema_ +
                      ".orchestratord_checkpoints WHERE projection = '" + projection + "'");
    }

    // Polls the database until `done` holds; false after `timeout`.
    bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (done()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return done();
    }

    std::unique_ptr<ChildProcess> start_daemon(const std::string& config, const std::string& log_name = "daemon.log",
                                               std::map<std::string, std::optional<std::string>> env = {}) {
        auto daemon = std::make_unique<ChildProcess>(std::vector<std::string>{ORCHESTRATORD_BIN, "--config", config},
                                                     env, dir_.file(log_name));
        return daemon;
    }

private:
    TempDir dir_;
    std::string schema_;
    pg::BlockingConnection db_;
};

}  // namespace orchestratord::test
