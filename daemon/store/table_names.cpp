#include "store/table_names.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "store/pg_names.hpp"

namespace orchestratord::store {
namespace {

TableNames build(const config::EventStoreConfig& store) {
    TableNames names;
    names.events = qualified(store, store.events_table);
    names.replica_sets = own_table(store, "replica_sets");
    names.workers = own_table(store, "workers");
    names.generations = own_table(store, "generations");
    names.slices = own_table(store, "slices");
    names.slice_history = own_table(store, "slice_history");
    names.progress = own_table(store, "progress");
    names.checkpoints = own_table(store, "checkpoints");
    names.projection_state = own_table(store, "projection_state");
    names.dead_letters = own_table(store, "dead_letters");
    names.schema_migrations = own_table(store, "schema_migrations");
    return names;
}

}  // namespace

const TableNames& TableNames::of(const config::EventStoreConfig& store) {
    // Handler threads may ask too: a lock, and node-based storage so the
    // references handed out never move.
    static std::mutex mutex;
    static std::map<std::pair<std::string, std::string>, std::unique_ptr<const TableNames>> built;
    std::lock_guard lock(mutex);
    auto& names = built[{store.schema, store.events_table}];
    if (!names) names = std::make_unique<const TableNames>(build(store));
    return *names;
}

}  // namespace orchestratord::store
