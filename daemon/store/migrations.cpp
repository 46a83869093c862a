#include "store/migrations.hpp"

#include <set>

#include "pg/blocking_connection.hpp"
#include "store/pg_names.hpp"

namespace orchestratord::store {

std::vector<Migration> migrations(const config::EventStoreConfig& store) {
    const std::string events = qualified(store, store.events_table);
    std::vector<Migration> list;

    // Version 1: the pupsourcing event store, exactly as the Go library creates
    // it. IF NOT EXISTS: an existing event store is read as it is, never altered.
    list.push_back({1, "pupsourcing event store tables (created only when absent)",
                    "CREATE TABLE IF NOT EXISTS " + events +
                        " (\n"
                        "    global_position BIGSERIAL PRIMARY KEY,\n"
                        "    bounded_context TEXT NOT NULL,\n"
                        "    aggregate_type TEXT NOT NULL,\n"
                        "    aggregate_id TEXT NOT NULL,\n"
                        "    aggregate_version BIGINT NOT NULL,\n"
                        "    event_id UUID NOT NULL UNIQUE,\n"
                        "    event_type TEXT NOT NULL,\n"
                        "    event_version INT NOT NULL DEFAULT 1,\n"
                        "    payload BYTEA NOT NULL,\n"
                        "    trace_id TEXT NULL,\n"
                        "    correlation_id TEXT NULL,\n"
                        "    causation_id TEXT NULL,\n"
                        "    metadata JSONB NULL,\n"
                        "    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
                        "    UNIQUE (bounded_context, aggregate_type, aggregate_id, aggregate_version)\n"
                        ");\n"
                        "CREATE INDEX IF NOT EXISTS " +
                        quote_identifier(store.events_table + "_event_type_global_position_idx") + " ON " + events +
                        " (event_type, global_position);\n"
                        "CREATE TABLE IF NOT EXISTS " +
                        qualified(store, store.aggregate_heads_table) +
                        " (\n"
                        "    bounded_context TEXT NOT NULL,\n"
                        "    aggregate_type TEXT NOT NULL,\n"
                        "    aggregate_id TEXT NOT NULL,\n"
                        "    aggregate_version BIGINT NOT NULL,\n"
                        "    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
                        "    PRIMARY KEY (bounded_context, aggregate_type, aggregate_id)\n"
                        ");\n"
                        "CREATE TABLE IF NOT EXISTS " +
                        qualified(store, store.checkpoints_table) +
                        " (\n"
                        "    projection_name TEXT PRIMARY KEY,\n"
                        "    last_global_position BIGINT NOT NULL DEFAULT 0,\n"
                        "    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()\n"
                        ");\n"});

    // Version 2: orchestratord's own coordination and checkpoint tables, all
    // keyed by replica set (docs/design.md explains each).
    list.push_back(
        {2, "orchestratord coordination, checkpoint and dead-letter tables",
         "CREATE TABLE IF NOT EXISTS " + own_table(store, "replica_sets") +
             " (\n"
             "    name TEXT PRIMARY KEY,\n"
             "    slices INT NOT NULL CHECK (slices > 0),\n"
             "    generation BIGINT NOT NULL DEFAULT 0,\n"
             "    created_at TIMESTAMPTZ NOT NULL DEFAULT now()\n"
             ");\n"
             "CREATE TABLE IF NOT EXISTS " +
             own_table(store, "workers") +
             " (\n"
             "    replica_set TEXT NOT NULL REFERENCES " +
             own_table(store, "replica_sets") +
             " (name) ON DELETE CASCADE,\n"
             "    id UUID NOT NULL,\n"
             "    host TEXT NOT NULL,\n"
             "    pid INT NOT NULL,\n"
             "    version TEXT NOT NULL,\n"
             "    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
             "    last_heartbeat TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
             "    PRIMARY KEY (replica_set, id)\n"
             ");\n"
             "CREATE TABLE IF NOT EXISTS " +
             own_table(store, "generations") +
             " (\n"
             "    replica_set TEXT NOT NULL REFERENCES " +
             own_table(store, "replica_sets") +
             " (name) ON DELETE CASCADE,\n"
             "    number BIGINT NOT NULL,\n"
             "    members UUID[] NOT NULL,\n"
             "    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
             "    PRIMARY KEY (replica_set, number)\n"
             ");\n"
             "CREATE TABLE IF NOT EXISTS " +
             own_table(store, "slices") +
             " (\n"
             "    replica_set TEXT NOT NULL REFERENCES " +
             own_table(store, "replica_sets") +
             " (name) ON DELETE CASCADE,\n"
             "    slice INT NOT NULL,\n"
             "    owner UUID NULL,\n"
             "    epoch BIGINT NOT NULL DEFAULT 0,\n"
             "    target_owner UUID NULL,\n"
             "    PRIMARY KEY (replica_set, slice)\n"
             ");\n"
             "CREATE TABLE IF NOT EXISTS " +
             own_table(store, "slice_history") +
             " (\n"
             "    replica_set TEXT NOT NULL,\n"
             "    slice INT NOT NULL,\n"
             "    epoch BIGINT NOT NULL,\n"
             "    owner UUID NOT NULL,\n"
             "    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
             "    released_at TIMESTAMPTZ NULL,\n"
             "    PRIMARY KEY (replica_set, slice, epoch)\n"
             ");\n"
             "CREATE TABLE IF NOT EXISTS " +
             own_table(store, "checkpoints") +
             " (\n"
             "    replica_set TEXT NOT NULL,\n"
             "    projection TEXT NOT NULL,\n"
             "    slice INT NOT NULL,\n"
             "    position BIGINT NOT NULL DEFAULT 0,\n"
             "    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
             "    PRIMARY KEY (replica_set, projection, slice)\n"
             ");\n"
             "CREATE TABLE IF NOT EXISTS " +
             own_table(store, "projection_state") +
             " (\n"
             "    replica_set TEXT NOT NULL,\n"
             "    projection TEXT NOT NULL,\n"
             "    state TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'paused', 'resetting')),\n"
             "    reason TEXT NULL,\n"
             "    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
             "    PRIMARY KEY (replica_set, projection)\n"
             ");\n"
             "CREATE TABLE IF NOT EXISTS " +
             own_table(store, "dead_letters") +
             " (\n"
             "    id BIGSERIAL PRIMARY KEY,\n"
             "    replica_set TEXT NOT NULL,\n"
             "    projection TEXT NOT NULL,\n"
             "    slice INT NOT NULL,\n"
             "    global_position BIGINT NOT NULL,\n"
             "    event_id UUID NOT NULL,\n"
             "    error TEXT NOT NULL,\n"
             "    attempts INT NOT NULL,\n"
             "    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
             "    UNIQUE (replica_set, projection, event_id)\n"
             ");\n"});
    // Every session of a worker's process carries this tag in its
    // application_name, so a coordinator can end the sessions of a worker it
    // removes as stale (a frozen process may hold slice locks in an open
    // transaction, which would block the takeover).
    list.push_back({3, "worker session tags (to end a stale worker's sessions)",
                    "ALTER TABLE " + own_table(store, "workers") + " ADD COLUMN IF NOT EXISTS session_tag TEXT;\n"});
    // Version 4: checkpoints as one row per (replica set, projection, writing
    // worker) holding every slice's position in an array, so a batch commits
    // its checkpoints and the fencing check by updating one row instead of
    // locking and upserting a row per slice (docs/cluster.md, "Fencing").
    // A slice's checkpoint is the highest position any row holds for it; the
    // nil writer row keeps positions of workers that are gone. The per-slice
    // table becomes a view with the same columns, for status and operators.
    const std::string progress = own_table(store, "progress");
    const std::string checkpoints = own_table(store, "checkpoints");
    list.push_back(
        {4, "checkpoints: one row of slice positions per writing worker (fenced by its lease)",
         "CREATE TABLE IF NOT EXISTS " + progress +
             " (\n"
             "    replica_set TEXT NOT NULL,\n"
             "    projection TEXT NOT NULL,\n"
             "    writer UUID NOT NULL,\n"
             "    lease BIGINT NOT NULL DEFAULT 0,\n"
             "    positions BIGINT[] NOT NULL DEFAULT '{}',\n"
             "    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
             "    PRIMARY KEY (replica_set, projection, writer)\n"
             ");\n"
             "INSERT INTO " +
             progress +
             " (replica_set, projection, writer, positions)\n"
             "    SELECT c.replica_set, c.projection, '" +
             std::string(kNoWriter) +
             "', array_agg(c.position ORDER BY c.slice)\n"
             "    FROM (SELECT o.replica_set, o.projection, g.slice, max(o.position) FILTER (WHERE o.slice = g.slice) "
             "AS position\n"
             "          FROM " +
             checkpoints + " o JOIN " + own_table(store, "replica_sets") +
             " r ON r.name = o.replica_set, generate_series(0, r.slices - 1) AS g(slice)\n"
             "          GROUP BY 1, 2, 3) c\n"
             "    GROUP BY 1, 2;\n"
             "DROP TABLE " +
             checkpoints +
             ";\n"
             "CREATE VIEW " +
             checkpoints +
             " AS\n"
             "    SELECT p.replica_set, p.projection, (u.i - 1)::int4 AS slice, max(u.position) AS position,\n"
             "           max(p.updated_at) AS updated_at\n"
             "    FROM " +
             progress +
             " p, unnest(p.positions) WITH ORDINALITY AS u(position, i)\n"
             "    WHERE u.position IS NOT NULL\n"
             "    GROUP BY 1, 2, 3;\n"});
    return list;
}

Migration notify_trigger(const config::EventStoreConfig& store) {
    // The function lives in the store's schema, the trigger on the table: one name serves both.
    const std::string function = qualified(store, notify_trigger_name(store));
    const std::string trigger = quote_identifier(notify_trigger_name(store));
    const std::string channel = events_channel(store);
    // Statement level: one NOTIFY per inserting statement, not per row, and
    // PostgreSQL folds identical notifications within a transaction.
    return {1000, "statement-level NOTIFY trigger on the events table (optional)",
            "CREATE OR REPLACE FUNCTION " + function +
                "() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                "BEGIN\n"
                "    PERFORM pg_notify('" +
                channel +
                "', '');\n"
                "    RETURN NULL;\n"
                "END\n"
                "$$;\n"
                "DROP TRIGGER IF EXISTS " +
                trigger + " ON " + qualified(store, store.events_table) +
                ";\n"
                "CREATE TRIGGER " +
                trigger + " AFTER INSERT ON " + qualified(store, store.events_table) +
                " FOR EACH STATEMENT EXECUTE FUNCTION " + function + "();\n"};
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
    const std::string ledger = own_table(store, "schema_migrations");
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

}  // namespace orchestratord::store
