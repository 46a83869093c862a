// `orchestratord migrate` and the events table checks against a real PostgreSQL.
// Each test works in its own schema so tests can run in parallel.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <csignal>
#include <memory>
#include <thread>

#include "config/config.hpp"
#include "pg/blocking_connection.hpp"
#include "store/event_store_check.hpp"
#include "store/migrations.hpp"
#include "store/pg_names.hpp"
#include "support/child_process.hpp"
#include "support/pg_env.hpp"
#include "support/temp_dir.hpp"

using namespace orchestratord;
using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

// A fresh schema, dropped afterwards.
struct Schema {
    std::string name;
    pg::BlockingConnection connection{pg_url()};
    config::EventStoreConfig store;

    explicit Schema(const std::string& label) : Schema(label + "_" + std::to_string(::getpid()), "events") {}
    // A schema of exactly this name, with this events table.
    Schema(std::string exact_name, const std::string& events_table) : name(std::move(exact_name)) {
        connection.exec("DROP SCHEMA IF EXISTS " + store::quote_identifier(name) + " CASCADE");
        store = {name, events_table, "aggregate_heads", "projection_checkpoints"};
    }
    ~Schema() {
        try {
            connection.exec("DROP SCHEMA IF EXISTS " + store::quote_identifier(name) + " CASCADE");
        } catch (...) {
        }
    }
    std::string config_file(const TempDir& dir) const {
        return dir.write("orchestratord.yaml", "database: {url: '" + pg_url() + "'}\nevent_store: {schema: " + name +
                                                   "}\nreplica_sets: [{name: migrate-test}]\n");
    }
    int64_t count(const std::string& sql) { return std::stoll(*connection.exec(sql).at(0, 0)); }
};

}  // namespace

TEST_CASE("migrate creates the event store and orchestratord's tables, and a second run changes nothing", "[migrate]") {
    Schema schema("mig_twice");
    TempDir dir;
    const std::string file = schema.config_file(dir);
    const auto first = run_command({ORCHESTRATORD_BIN, "migrate", "--config", file});
    INFO(first.output);
    REQUIRE(first.status.code == 0);
    CHECK_THAT(first.output, Catch::Contains("applied 1: pupsourcing event store tables"));
    CHECK_THAT(first.output, Catch::Contains("applied 2: orchestratord coordination"));
    for (const char* table : {"events", "aggregate_heads", "projection_checkpoints", "orchestratord_replica_sets",
                              "orchestratord_workers", "orchestratord_generations", "orchestratord_slices",
                              "orchestratord_slice_history", "orchestratord_checkpoints", "orchestratord_progress",
                              "orchestratord_projection_state", "orchestratord_dead_letters"}) {
        INFO(table);
        CHECK(schema.connection.exec("SELECT to_regclass($1) IS NOT NULL", {schema.name + "." + table}).at(0, 0) ==
              "t");
    }
    CHECK(store::event_store_problems(schema.connection, schema.store).empty());

    const auto second = run_command({ORCHESTRATORD_BIN, "migrate", "--config", file});
    CHECK(second.status.code == 0);
    CHECK_THAT(second.output, Catch::Contains("is up to date"));
    CHECK(schema.count("SELECT count(*) FROM " + schema.name + ".orchestratord_schema_migrations") == 5);
}

TEST_CASE("migration 4 carries per-slice checkpoints of an older schema over into checkpoint rows", "[migrate]") {
    Schema schema("mig_upgrade");
    // The schema as migrations 1 to 3 left it, with checkpoints in it.
    const std::string ledger = schema.name + ".orchestratord_schema_migrations";
    schema.connection.exec("CREATE SCHEMA " + schema.name);
    schema.connection.exec("CREATE TABLE " + ledger +
                           " (version INT PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL "
                           "DEFAULT now())");
    for (const auto& migration : store::migrations(schema.store)) {
        if (migration.version > 3) continue;
        schema.connection.exec_script(migration.sql, "old migration");
        schema.connection.exec("INSERT INTO " + ledger + " VALUES ($1, $2)",
                               {std::to_string(migration.version), migration.description});
    }
    schema.connection.exec("INSERT INTO " + schema.name + ".orchestratord_replica_sets (name, slices) VALUES ('a', 4)");
    schema.connection.exec("INSERT INTO " + schema.name +
                           ".orchestratord_checkpoints (replica_set, projection, slice, position) VALUES "
                           "('a', 'p', 0, 10), ('a', 'p', 1, 20), ('a', 'p', 3, 40), ('a', 'q', 2, 7)");

    TempDir dir;
    const auto run = run_command({ORCHESTRATORD_BIN, "migrate", "--config", schema.config_file(dir)});
    INFO(run.output);
    REQUIRE(run.status.code == 0);
    CHECK_THAT(run.output, Catch::Contains("applied 4: checkpoints"));
    // The same checkpoints, read through the per-slice view; slices never
    // written stay absent.
    const auto rows = schema.connection.exec("SELECT projection || ':' || slice || '=' || position FROM " +
                                             schema.name + ".orchestratord_checkpoints ORDER BY projection, slice");
    std::vector<std::string> seen;
    for (int64_t i = 0; i < rows.rows; ++i) seen.push_back(*rows.at(i, 0));
    CHECK(seen == std::vector<std::string>{"p:0=10", "p:1=20", "p:3=40", "q:2=7"});
    // Kept by the nil writer, one row per projection.
    CHECK(schema.count("SELECT count(*) FROM " + schema.name + ".orchestratord_progress WHERE writer = '" +
                       store::kNoWriter + "'") == 2);
}

TEST_CASE("concurrent migrate runs are safe and apply each migration once", "[migrate]") {
    Schema schema("mig_concurrent");
    TempDir dir;
    const std::string file = schema.config_file(dir);
    std::vector<std::unique_ptr<ChildProcess>> runs;
    for (int i = 0; i < 4; ++i) {
        runs.push_back(std::make_unique<ChildProcess>(
            std::vector<std::string>{ORCHESTRATORD_BIN, "migrate", "--config", file, "--with-notify-trigger"},
            std::map<std::string, std::optional<std::string>>{}, dir.file("run" + std::to_string(i) + ".log")));
    }
    for (auto& run : runs) {
        const auto status = run->wait(60s);
        INFO(run->output());
        REQUIRE(status);
        CHECK(status->code == 0);
    }
    // 1 to 5 and the NOTIFY trigger (1000), each once.
    CHECK(schema.count("SELECT count(*) FROM " + schema.name + ".orchestratord_schema_migrations") == 6);
    CHECK(schema.count("SELECT count(DISTINCT version) FROM " + schema.name + ".orchestratord_schema_migrations") == 6);
}

TEST_CASE("migrate never alters an existing events table", "[migrate]") {
    Schema schema("mig_existing");
    schema.connection.exec("CREATE SCHEMA " + schema.name);
    // An existing event store with one extra column of the application's own.
    schema.connection.exec_script(
        "CREATE TABLE " + schema.name +
            ".events (global_position BIGSERIAL PRIMARY KEY, bounded_context TEXT NOT NULL, aggregate_type TEXT NOT "
            "NULL,"
            " aggregate_id TEXT NOT NULL, aggregate_version BIGINT NOT NULL, event_id UUID NOT NULL UNIQUE,"
            " event_type TEXT NOT NULL, event_version INT NOT NULL, payload BYTEA NOT NULL, trace_id TEXT,"
            " correlation_id TEXT, causation_id TEXT, metadata JSONB, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
            " tenant TEXT);",
        "create a pre-existing events table");
    TempDir dir;
    const auto result = run_command({ORCHESTRATORD_BIN, "migrate", "--config", schema.config_file(dir)});
    INFO(result.output);
    CHECK(result.status.code == 0);
    CHECK(schema.count("SELECT count(*) FROM pg_attribute WHERE attrelid = '" + schema.name +
                       ".events'::regclass AND attname = 'tenant'") == 1);
    CHECK(store::event_store_problems(schema.connection, schema.store).empty());
}

TEST_CASE("migrate --print shows quoted SQL without touching the database", "[migrate]") {
    TempDir dir;
    const std::string file = dir.write("orchestratord.yaml",
                                       "database: {url: 'postgresql://nobody@127.0.0.1:1/none'}\n"
                                       "event_store: {schema: Store_1, events_table: MyEvents}\n"
                                       "replica_sets: [{name: print}]\n");
    const auto result =
        run_command({ORCHESTRATORD_BIN, "migrate", "--config", file, "--print", "--with-notify-trigger"});
    INFO(result.output);
    CHECK(result.status.code == 0);
    CHECK_THAT(result.output, Catch::Contains("CREATE TABLE IF NOT EXISTS \"Store_1\".\"MyEvents\""));
    CHECK_THAT(result.output, Catch::Contains("CREATE SCHEMA IF NOT EXISTS \"Store_1\""));
    CHECK_THAT(result.output, Catch::Contains("FOR EACH STATEMENT"));
}

TEST_CASE("the NOTIFY trigger wakes listeners once per inserting statement", "[migrate][notify]") {
    Schema schema("mig_notify");
    TempDir dir;
    REQUIRE(run_command({ORCHESTRATORD_BIN, "migrate", "--config", schema.config_file(dir), "--with-notify-trigger"})
                .status.code == 0);
    pg::BlockingConnection listener(pg_url());
    const std::string channel = store::events_channel(schema.store);
    listener.exec("LISTEN " + store::quote_identifier(channel));
    schema.connection.exec("INSERT INTO " + schema.name +
                           ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id,"
                           " event_type, payload) SELECT 'c', 'A', 'a' || g, 1, gen_random_uuid(), 'T', '\\x00'"
                           " FROM generate_series(1, 3) g");
    const auto notified = listener.wait_for_notification(5000);
    REQUIRE(notified);
    CHECK(*notified == channel);
    CHECK_FALSE(listener.wait_for_notification(200));  // one statement, one notification
}

TEST_CASE("a missing or wrong events table is refused with what to do", "[migrate][check]") {
    Schema schema("mig_wrong");
    auto problems = [&] {
        std::string all;
        for (const auto& problem : store::event_store_problems(schema.connection, schema.store)) all += problem + "\n";
        return all;
    };
    schema.connection.exec("CREATE SCHEMA " + schema.name);
    CHECK_THAT(problems(),
               Catch::Contains("events table " + schema.name + ".events does not exist; run `orchestratord migrate`"));

    schema.connection.exec("CREATE TABLE " + schema.name +
                           ".events (global_position BIGSERIAL PRIMARY KEY, aggregate_id INT, payload TEXT)");
    const std::string wrong = problems();
    CHECK_THAT(wrong, Catch::Contains("has no column event_id (uuid)"));
    CHECK_THAT(wrong, Catch::Contains("column aggregate_id is integer, expected text"));
    CHECK_THAT(wrong, Catch::Contains("column payload is text, expected bytea"));

    // The daemon refuses to start on it, with the same sentences.
    TempDir dir;
    const auto result = run_command({ORCHESTRATORD_BIN, "--config", schema.config_file(dir)},
                                    {{"ORCHESTRATORD_PLUGINS_DIRECTORY", SAMPLE_PLUGIN_DIR}});
    INFO(result.output);
    CHECK(result.status.code == 1);
    CHECK_THAT(result.output, Catch::Contains("cannot start: events table " + schema.name + ".events has no column"));
}

TEST_CASE("an events sequence with CACHE > 1 is refused with the fix", "[migrate][check]") {
    Schema schema("mig_cache");
    TempDir dir;
    REQUIRE(run_command({ORCHESTRATORD_BIN, "migrate", "--config", schema.config_file(dir)}).status.code == 0);
    schema.connection.exec("ALTER SEQUENCE " + schema.name + ".events_global_position_seq CACHE 20");
    const auto problems = store::event_store_problems(schema.connection, schema.store);
    REQUIRE(problems.size() == 1);
    CHECK_THAT(problems[0], Catch::Contains("sequence " + schema.name + ".events_global_position_seq has CACHE 20"));
    CHECK_THAT(problems[0], Catch::Contains("ALTER SEQUENCE " + schema.name + ".events_global_position_seq CACHE 1"));
}

TEST_CASE("63-character schema and table names: the NOTIFY trigger works and wakes the daemon", "[migrate][notify]") {
    // The longest names the configuration accepts; the pid keeps parallel runs apart.
    std::string name = "long_" + std::to_string(::getpid()) + "_";
    name += std::string(63 - name.size(), 's');
    const std::string table = "events_" + std::string(56, 'e');
    REQUIRE(name.size() == 63);
    REQUIRE(table.size() == 63);
    Schema schema(name, table);

    TempDir dir;
    const std::string file =
        dir.write("orchestratord.yaml", "database: {url: '" + pg_url() + "'}\nevent_store: {schema: " + name +
                                            ", events_table: " + table +
                                            "}\nlogging: {level: debug}\nplugins: {directory: " + FIXTURE_PLUGIN_DIR +
                                            "}\nhttp: {listen: '127.0.0.1:0'}\nreplica_sets:\n"
                                            "  - name: long-names\n    projections:\n      - name: recorder\n"
                                            "        config: {table: " +
                                            name + ".recorded}\n");
    const auto migrated = run_command({ORCHESTRATORD_BIN, "migrate", "--config", file, "--with-notify-trigger"});
    INFO(migrated.output);
    REQUIRE(migrated.status.code == 0);
    CHECK_THAT(migrated.output, Catch::Contains("applied 1000: statement-level NOTIFY trigger"));

    // An INSERT into the events table still succeeds, and its NOTIFY arrives
    // on the channel the daemon derives.
    auto insert_event = [&](const std::string& aggregate) {
        schema.connection.exec("INSERT INTO " + name + "." + table +
                                   " (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id,"
                                   " event_type, payload) VALUES ('c', 'A', $1, 1, gen_random_uuid(), 'T', '\\x00')",
                               {aggregate});
    };
    pg::BlockingConnection listener(pg_url());
    const std::string channel = store::events_channel(schema.store);
    listener.exec("LISTEN " + store::quote_identifier(channel));
    insert_event("first");
    const auto notified = listener.wait_for_notification(5000);
    REQUIRE(notified);
    CHECK(*notified == channel);

    // The daemon finds the trigger under the same name and listens on the
    // same channel. Once it has found the trigger, an idle worker reads again
    // only every 30 s unless NOTIFY wakes it, so an event handled within 15 s
    // was delivered by the wake-up.
    schema.connection.exec("CREATE TABLE " + name +
                           ".recorded (id BIGSERIAL PRIMARY KEY, global_position BIGINT, aggregate_id TEXT, "
                           "aggregate_version BIGINT, event_type TEXT, payload_size BIGINT, metadata TEXT)");
    ChildProcess daemon({ORCHESTRATORD_BIN, "--config", file}, {}, dir.file("daemon.log"));
    const bool found_trigger = daemon.wait_for_output("new events wake the workers through NOTIFY", 15s);
    const bool listening = daemon.wait_for_output("listening for notifications channel=" + channel, 15s);
    auto recorded = [&](const std::string& aggregate) {
        return schema.count("SELECT count(*) FROM " + name + ".recorded WHERE aggregate_id = '" + aggregate + "'");
    };
    // Polls the table the recorder writes, as EventStoreFixture::wait_until does.
    auto wait_recorded = [&](const std::string& aggregate, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (recorded(aggregate) == 0) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(20ms);
        }
        return true;
    };
    const bool first = wait_recorded("first", 30s);
    if (first) insert_event("second");
    const bool second = first && wait_recorded("second", 15s);
    daemon.signal(SIGTERM);
    const auto stopped = daemon.wait(10s);
    INFO(daemon.output());
    CHECK(found_trigger);
    CHECK(listening);
    CHECK(first);
    CHECK(second);
    CHECK(stopped);
}

TEST_CASE("migrate --with-notify-trigger warns when the server allows two-phase commit", "[migrate][notify]") {
    Schema schema("mig_twophase");
    TempDir dir;
    const auto migrated =
        run_command({ORCHESTRATORD_BIN, "migrate", "--config", schema.config_file(dir), "--with-notify-trigger"});
    INFO(migrated.output);
    REQUIRE(migrated.status.code == 0);
    const int64_t allowed = schema.count("SELECT current_setting('max_prepared_transactions')::int");
    if (allowed == 0) {
        // Nothing to warn about; scripts/pg-private.sh starts servers that allow it, to test the warning.
        CHECK_THAT(migrated.output, !Catch::Contains("two-phase commit"));
        return;
    }
    CHECK_THAT(migrated.output, Catch::Contains("warning: this server allows two-phase commit"));
    CHECK_THAT(migrated.output,
               Catch::Contains("DROP TRIGGER \"orchestratord_notify_events\" ON \"" + schema.name + "\".\"events\""));
    // What the warning is about: such a transaction cannot be prepared.
    schema.connection.exec("BEGIN");
    schema.connection.exec("INSERT INTO " + schema.name +
                           ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id,"
                           " event_type, payload) VALUES ('c', 'A', 'a', 1, gen_random_uuid(), 'T', '\\x00')");
    CHECK_THROWS_WITH(schema.connection.exec("PREPARE TRANSACTION 'orchestratord_test_" + schema.name + "'"),
                      Catch::Contains("cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY"));
    schema.connection.exec("ROLLBACK");

    // Without the flag there is no trigger and nothing to warn about.
    const auto plain = run_command({ORCHESTRATORD_BIN, "migrate", "--config", schema.config_file(dir)});
    CHECK_THAT(plain.output, !Catch::Contains("two-phase commit"));
}
