#pragma once
// The names orchestratord derives from the configured schema and table names:
// quoted, schema-qualified table names for SQL, the NOTIFY channels, the
// trigger and its function. Derived identifiers must fit PostgreSQL's name
// limit of 63 bytes (NAMEDATALEN - 1). A longer identifier is silently
// truncated, so two long names can end up as one; a longer channel name makes
// pg_notify() fail, and a trigger that calls it would fail every INSERT.
#include <cstddef>
#include <string>

#include "config/config.hpp"

namespace orchestratord::store {

inline constexpr size_t kMaxNameBytes = 63;

// `full` itself when it fits in kMaxNameBytes. Otherwise a readable prefix of
// it, '_' and 8 hex digits of a hash of the whole of `full`, 63 bytes in all,
// so two long names that share their first 63 bytes still differ.
//
// The result must never change between versions: the NOTIFY trigger installed
// by `migrate` keeps the channel name it was created with, and the daemon
// LISTENs on the name it derives at start.
std::string fit_name(const std::string& full);

// The channel the NOTIFY trigger notifies and workers LISTEN on; at most 63
// bytes, whatever the schema and table names.
std::string events_channel(const config::EventStoreConfig& store);

// The name of the NOTIFY trigger on the events table and of its function (in
// the store's schema), at most 63 bytes: `migrate` creates them under this
// name and the daemon looks the trigger up by it.
std::string notify_trigger_name(const config::EventStoreConfig& store);

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
