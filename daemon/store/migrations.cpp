#include "store/migrations.hpp"

#include <fmt/format.h>

#include <set>
#include <string_view>

#include "pg/blocking_connection.hpp"
#include "store/pg_names.hpp"
#include "store/table_names.hpp"

namespace orchestratord::store {

namespace {

// Fills a migration's {name} placeholders. Written as raw strings, the SQL
// reads as it runs; {{}} is a literal {} (an empty array).
template <typename... Names>
std::string sql(std::string_view text, const Names&... names) {
    return fmt::format(fmt::runtime(text), names...);
}

}  // namespace

std::vector<Migration> migrations(const config::EventStoreConfig& store) {
    const auto& tables = TableNames::of(store);
    std::vector<Migration> list;

    // Version 1: the pupsourcing event store, exactly as the Go library creates
    // it. IF NOT EXISTS: an existing event store is read as it is, never altered.
    list.push_back(
        {1, "pupsourcing event store tables (created only when absent)",
         sql(R"sql(CREATE TABLE IF NOT EXISTS {events} (
    global_position BIGSERIAL PRIMARY KEY,
    bounded_context TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    aggregate_version BIGINT NOT NULL,
    event_id UUID NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    event_version INT NOT NULL DEFAULT 1,
    payload BYTEA NOT NULL,
    trace_id TEXT NULL,
    correlation_id TEXT NULL,
    causation_id TEXT NULL,
    metadata JSONB NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (bounded_context, aggregate_type, aggregate_id, aggregate_version)
);
CREATE INDEX IF NOT EXISTS {type_index} ON {events} (event_type, global_position);
CREATE TABLE IF NOT EXISTS {aggregate_heads} (
    bounded_context TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    aggregate_version BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (bounded_context, aggregate_type, aggregate_id)
);
CREATE TABLE IF NOT EXISTS {checkpoints} (
    projection_name TEXT PRIMARY KEY,
    last_global_position BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
)sql",
             fmt::arg("events", tables.events),
             fmt::arg("type_index", quote_identifier(store.events_table + "_event_type_global_position_idx")),
             fmt::arg("aggregate_heads", qualified(store, store.aggregate_heads_table)),
             fmt::arg("checkpoints", qualified(store, store.checkpoints_table)))});

    // Version 2: orchestratord's own coordination and checkpoint tables, all
    // keyed by replica set (docs/design.md explains each).
    list.push_back(
        {2, "orchestratord coordination, checkpoint and dead-letter tables",
         sql(R"sql(CREATE TABLE IF NOT EXISTS {replica_sets} (
    name TEXT PRIMARY KEY,
    slices INT NOT NULL CHECK (slices > 0),
    generation BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {workers} (
    replica_set TEXT NOT NULL REFERENCES {replica_sets} (name) ON DELETE CASCADE,
    id UUID NOT NULL,
    host TEXT NOT NULL,
    pid INT NOT NULL,
    version TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_heartbeat TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (replica_set, id)
);
CREATE TABLE IF NOT EXISTS {generations} (
    replica_set TEXT NOT NULL REFERENCES {replica_sets} (name) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    members UUID[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (replica_set, number)
);
CREATE TABLE IF NOT EXISTS {slices} (
    replica_set TEXT NOT NULL REFERENCES {replica_sets} (name) ON DELETE CASCADE,
    slice INT NOT NULL,
    owner UUID NULL,
    epoch BIGINT NOT NULL DEFAULT 0,
    target_owner UUID NULL,
    PRIMARY KEY (replica_set, slice)
);
CREATE TABLE IF NOT EXISTS {slice_history} (
    replica_set TEXT NOT NULL,
    slice INT NOT NULL,
    epoch BIGINT NOT NULL,
    owner UUID NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    released_at TIMESTAMPTZ NULL,
    PRIMARY KEY (replica_set, slice, epoch)
);
CREATE TABLE IF NOT EXISTS {checkpoints} (
    replica_set TEXT NOT NULL,
    projection TEXT NOT NULL,
    slice INT NOT NULL,
    position BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (replica_set, projection, slice)
);
CREATE TABLE IF NOT EXISTS {projection_state} (
    replica_set TEXT NOT NULL,
    projection TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'paused', 'resetting')),
    reason TEXT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (replica_set, projection)
);
CREATE TABLE IF NOT EXISTS {dead_letters} (
    id BIGSERIAL PRIMARY KEY,
    replica_set TEXT NOT NULL,
    projection TEXT NOT NULL,
    slice INT NOT NULL,
    global_position BIGINT NOT NULL,
    event_id UUID NOT NULL,
    error TEXT NOT NULL,
    attempts INT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (replica_set, projection, event_id)
);
)sql",
             fmt::arg("replica_sets", tables.replica_sets), fmt::arg("workers", tables.workers),
             fmt::arg("generations", tables.generations), fmt::arg("slices", tables.slices),
             fmt::arg("slice_history", tables.slice_history), fmt::arg("checkpoints", tables.checkpoints),
             fmt::arg("projection_state", tables.projection_state), fmt::arg("dead_letters", tables.dead_letters))});

    // Every session of a worker's process carries this tag in its
    // application_name, so a coordinator can end the sessions of a worker it
    // removes as stale (a frozen process may hold slice locks in an open
    // transaction, which would block the takeover).
    list.push_back({3, "worker session tags (to end a stale worker's sessions)",
                    sql("ALTER TABLE {workers} ADD COLUMN IF NOT EXISTS session_tag TEXT;\n",
                        fmt::arg("workers", tables.workers))});

    // Version 4: checkpoints as one row per (replica set, projection, writing
    // worker) holding every slice's position in an array, so a batch commits
    // its checkpoints and the fencing check by updating one row instead of
    // locking and upserting a row per slice (docs/cluster.md, "Fencing").
    // A slice's checkpoint is the highest position any row holds for it; the
    // nil writer row keeps positions of workers that are gone. The per-slice
    // table becomes a view with the same columns, for status and operators.
    list.push_back({4, "checkpoints: one row of slice positions per writing worker (fenced by its lease)",
                    sql(R"sql(CREATE TABLE IF NOT EXISTS {progress} (
    replica_set TEXT NOT NULL,
    projection TEXT NOT NULL,
    writer UUID NOT NULL,
    lease BIGINT NOT NULL DEFAULT 0,
    positions BIGINT[] NOT NULL DEFAULT '{{}}',
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (replica_set, projection, writer)
);
INSERT INTO {progress} (replica_set, projection, writer, positions)
    SELECT c.replica_set, c.projection, '{no_writer}', array_agg(c.position ORDER BY c.slice)
    FROM (SELECT o.replica_set, o.projection, g.slice, max(o.position) FILTER (WHERE o.slice = g.slice) AS position
          FROM {checkpoints} o JOIN {replica_sets} r ON r.name = o.replica_set, generate_series(0, r.slices - 1) AS g(slice)
          GROUP BY 1, 2, 3) c
    GROUP BY 1, 2;
DROP TABLE {checkpoints};
CREATE VIEW {checkpoints} AS
    SELECT p.replica_set, p.projection, (u.i - 1)::int4 AS slice, max(u.position) AS position,
           max(p.updated_at) AS updated_at
    FROM {progress} p, unnest(p.positions) WITH ORDINALITY AS u(position, i)
    WHERE u.position IS NOT NULL
    GROUP BY 1, 2, 3;
)sql",
                        fmt::arg("progress", tables.progress), fmt::arg("checkpoints", tables.checkpoints),
                        fmt::arg("replica_sets", tables.replica_sets), fmt::arg("no_writer", kNoWriter))});
    // Version 5: a projection's failing tries, for `status` (retrying, with
    // the count and the last error) while its error policy has not decided.
    list.push_back({5, "projection state: failing tries and the last error",
                    sql("ALTER TABLE {projection_state} ADD COLUMN IF NOT EXISTS failed_tries INT NOT NULL DEFAULT 0, "
                        "ADD COLUMN IF NOT EXISTS last_error TEXT NULL, ADD COLUMN IF NOT EXISTS failing_since "
                        "TIMESTAMPTZ NULL;\n",
                        fmt::arg("projection_state", tables.projection_state))});
    return list;
}

Migration notify_trigger(const config::EventStoreConfig& store) {
    // The function lives in the store's schema, the trigger on the table: one name serves both.
    // Statement level: one NOTIFY per inserting statement, not per row, and
    // PostgreSQL folds identical notifications within a transaction.
    return {1000, "statement-level NOTIFY trigger on the events table (optional)",
            sql(R"sql(CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{channel}', '');
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS {trigger} ON {events};
CREATE TRIGGER {trigger} AFTER INSERT ON {events} FOR EACH STATEMENT EXECUTE FUNCTION {function}();
)sql",
                fmt::arg("function", qualified(store, notify_trigger_name(store))),
                fmt::arg("trigger", quote_identifier(notify_trigger_name(store))),
                fmt::arg("channel", events_channel(store)), fmt::arg("events", TableNames::of(store).events))};
}

std::string migration_script(const config::EventStoreConfig& store, bool with_notify_trigger) {
    std::string script = "-- orchestratord migrations for schema " + store.schema + "\nBEGIN;\n";
    script += "CREATE SCHEMA IF NOT EXISTS " + quote_identifier(store.schema) + ";\n";
    auto all = migrations(store);
    if (with_notify_trigger) all.push_back(notify_trigger(store));
    for (const auto& migration : all) {
        script += "\n-- " + std::to_string(migration.version) + ": " + migration.description + "\n" + migration.sql;
    }
    return script + "\nCOMMIT;\n";
}

MigrationReport migrate(pg::BlockingConnection& connection, const config::EventStoreConfig& store,
                        bool with_notify_trigger) {
    MigrationReport report;
    const std::string& ledger = TableNames::of(store).schema_migrations;
    connection.exec("BEGIN", {}, "start the migration transaction");
    try {
        // Concurrent runs queue here, so every CREATE below runs once.
        connection.exec("SELECT pg_advisory_xact_lock(hashtext('orchestratord.migrate.' || $1))", {store.schema},
                        "take the migration lock");
        connection.exec("CREATE SCHEMA IF NOT EXISTS " + quote_identifier(store.schema), {}, "create the schema");
        connection.exec("CREATE TABLE IF NOT EXISTS " + ledger +
                            " (version INT PRIMARY KEY, description TEXT NOT NULL, "
                            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                        {}, "create the migration ledger");
        std::set<int> applied;
        const auto rows = connection.exec("SELECT version FROM " + ledger, {}, "read the migration ledger");
        for (int64_t row = 0; row < rows.rows; ++row) applied.insert(std::stoi(*rows.at(row, 0)));

        auto all = migrations(store);
        if (with_notify_trigger) all.push_back(notify_trigger(store));
        for (const auto& migration : all) {
            if (applied.contains(migration.version)) continue;
            const std::string purpose =
                "apply migration " + std::to_string(migration.version) + " (" + migration.description + ")";
            connection.exec_script(migration.sql, purpose);
            connection.exec("INSERT INTO " + ledger + " (version, description) VALUES ($1, $2)",
                            {std::to_string(migration.version), migration.description}, purpose);
            report.applied.push_back(std::to_string(migration.version) + ": " + migration.description);
            if (migration.version == 1000) report.trigger_installed = true;
        }
        connection.exec("COMMIT", {}, "commit the migrations");
    } catch (...) {
        try {
            connection.exec("ROLLBACK", {}, "roll back the migrations");
        } catch (...) {
            // The original error is the one worth reporting.
        }
        throw;
    }
    return report;
}

std::vector<int> pending_migrations(pg::BlockingConnection& connection, const config::EventStoreConfig& store) {
    const std::string& ledger = TableNames::of(store).schema_migrations;
    std::set<int> applied;
    const auto exists =
        connection.exec("SELECT to_regclass($1) IS NOT NULL", {ledger}, "look for the migration ledger");
    if (exists.at(0, 0) == "t") {
        const auto rows = connection.exec("SELECT version FROM " + ledger, {}, "read the migration ledger");
        for (int64_t row = 0; row < rows.rows; ++row) applied.insert(std::stoi(*rows.at(row, 0)));
    }
    std::vector<int> pending;
    for (const auto& migration : migrations(store)) {
        if (!applied.contains(migration.version)) pending.push_back(migration.version);
    }
    return pending;
}

}  // namespace orchestratord::store
