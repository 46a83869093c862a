#include "store/event_store_check.hpp"

#include <map>

#include "pg/blocking_connection.hpp"
#include "store/pg_names.hpp"

namespace orchestratord::store {
namespace {

// The pupsourcing events table: column -> type as format_type() prints it.
const std::map<std::string, std::string>& expected_columns() {
    static const std::map<std::string, std::string> columns{
        {"global_position", "bigint"},
        {"bounded_context", "text"},
        {"aggregate_type", "text"},
        {"aggregate_id", "text"},
        {"aggregate_version", "bigint"},
        {"event_id", "uuid"},
        {"event_type", "text"},
        {"event_version", "integer"},
        {"payload", "bytea"},
        {"trace_id", "text"},
        {"correlation_id", "text"},
        {"causation_id", "text"},
        {"metadata", "jsonb"},
        {"created_at", "timestamp with time zone"},
    };
    return columns;
}

}  // namespace

std::vector<std::string> event_store_problems(pg::BlockingConnection& connection,
                                              const config::EventStoreConfig& store) {
    std::vector<std::string> problems;
    const std::string table = qualified(store, store.events_table);
    const std::string shown = store.schema + "." + store.events_table;

    const auto exists = connection.exec("SELECT to_regclass($1) IS NOT NULL", {table}, "look for the events table");
    if (exists.at(0, 0) != "t") {
        problems.push_back("events table " + shown +
                           " does not exist; run `orchestratord migrate` or fix event_store.schema / "
                           "event_store.events_table");
        return problems;
    }

    const auto columns = connection.exec(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
        {table}, "read the events table's columns");
    std::map<std::string, std::string> found;
    for (int64_t row = 0; row < columns.rows; ++row) found[*columns.at(row, 0)] = *columns.at(row, 1);
    for (const auto& [name, type] : expected_columns()) {
        auto column = found.find(name);
        if (column == found.end()) {
            problems.push_back("events table " + shown + " has no column " + name + " (" + type +
                               "); it is not a pupsourcing events table");
        } else if (column->second != type) {
            problems.push_back("events table " + shown + " column " + name + " is " + column->second + ", expected " +
                               type);
        }
    }
    if (!problems.empty()) return problems;

    // Positions must be drawn in order (CACHE 1): with a cache, each session
    // pre-allocates a block and positions stop following time, which breaks
    // the rule the reader uses to detect late commits.
    const auto sequence = connection.exec(
        "SELECT pg_get_serial_sequence($1, 'global_position'), "
        "(SELECT seqcache FROM pg_sequence WHERE seqrelid = pg_get_serial_sequence($1, 'global_position')::regclass)",
        {table}, "read the global_position sequence");
    if (!sequence.at(0, 0)) {
        problems.push_back("events table " + shown +
                           " column global_position has no sequence (expected BIGSERIAL or an identity column)");
    } else if (sequence.at(0, 1) && *sequence.at(0, 1) != "1") {
        problems.push_back("sequence " + *sequence.at(0, 0) + " has CACHE " + *sequence.at(0, 1) +
                           "; orchestratord needs CACHE 1 to detect late commits. Run: ALTER SEQUENCE " +
                           *sequence.at(0, 0) + " CACHE 1");
    }
    return problems;
}

}  // namespace orchestratord::store
