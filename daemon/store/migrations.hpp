#pragma once
// `orchestratord migrate`: creates the pupsourcing event store tables when they
// are absent and orchestratord's own tables, as numbered migrations recorded in
// orchestratord_schema_migrations. Safe to run twice or from several processes
// at once (one transaction under an advisory lock). It never alters a table it
// did not create, except the optional NOTIFY trigger on the events table.
#include <string>
#include <vector>

#include "config/config.hpp"

namespace orchestratord::pg {
class BlockingConnection;
}

namespace orchestratord::store {

struct Migration {
    int version;
    std::string description;
    std::string sql;  // identifiers already quoted
};

// Every migration for this event store configuration, in order.
std::vector<Migration> migrations(const config::EventStoreConfig& store);

// The optional statement-level trigger that NOTIFYs events_channel() after inserts.
Migration notify_trigger(const config::EventStoreConfig& store);

// The channel the trigger notifies and workers LISTEN on; at most 63 bytes
// (store/pg_names.hpp), whatever the schema and table names.
std::string events_channel(const config::EventStoreConfig& store);

// The name of the NOTIFY trigger on the events table and of its function (in
// the store's schema), at most 63 bytes: `migrate` creates them under this
// name and the daemon looks the trigger up by it.
std::string notify_trigger_name(const config::EventStoreConfig& store);

struct MigrationReport {
    std::vector<std::string> applied;  // "version: description" of each one run now
    bool trigger_installed = false;
};

// Applies what is missing, in one transaction; throws pg::Error naming the migration.
MigrationReport migrate(pg::BlockingConnection& connection, const config::EventStoreConfig& store,
                        bool with_notify_trigger);

// The SQL `migrate --print` shows.
std::string migration_script(const config::EventStoreConfig& store, bool with_notify_trigger);

// Double-quotes an identifier (already validated by the config loader).
std::string quote_identifier(const std::string& name);
std::string qualified(const config::EventStoreConfig& store, const std::string& table);
// One of orchestratord's own tables, e.g. own_table(store, "workers") is
// "schema"."orchestratord_workers".
std::string own_table(const config::EventStoreConfig& store, const std::string& table);

// The writer of the checkpoint row that keeps the positions of workers that
// are gone (and of checkpoints migrated or imported from elsewhere).
inline constexpr const char* kNoWriter = "00000000-0000-0000-0000-000000000000";

}  // namespace orchestratord::store
