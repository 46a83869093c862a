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

struct MigrationReport {
    std::vector<std::string> applied;  // "version: description" of each one run now
    bool trigger_installed = false;
};

// Applies what is missing, in one transaction; throws pg::Error naming the migration.
MigrationReport migrate(pg::BlockingConnection& connection, const config::EventStoreConfig& store,
                        bool with_notify_trigger);

// The versions of migrations() not applied yet to the store's schema (every
// one when orchestratord never migrated it), for `check-config --connect`.
std::vector<int> pending_migrations(pg::BlockingConnection& connection, const config::EventStoreConfig& store);

// The SQL `migrate --print` shows.
std::string migration_script(const config::EventStoreConfig& store, bool with_notify_trigger);

}  // namespace orchestratord::store
