// The sample plugins against a real PostgreSQL: their SQL runs through the
// host's transaction callbacks and commits (or rolls back) with the batch.
#include <catch2/catch.hpp>

#include <orchestratord/plugin_abi.h>

#include <string>
#include <vector>

#include "pg/blocking_connection.hpp"
#include "plugins/plugin_catalog.hpp"
#include "plugins/projection_instance.hpp"
#include "support/pg_env.hpp"

using namespace orchestratord;
using namespace orchestratord::plugins;

namespace {

// The batch transaction, as the event path will provide it.
class TransactionSession : public SqlSession {
public:
    explicit TransactionSession(pg::BlockingConnection& connection) : connection_(connection) {}
    SqlRows exec(const std::string& sql, const SqlParams& params) override {
        return connection_.exec(sql, params, "projection statement");
    }

private:
    pg::BlockingConnection& connection_;
};

struct StoredEvent {
    std::string aggregate_id;
    int64_t version;
    std::string type;
    std::string payload;
    std::string event_id;
    orch_event raw{};
};

std::vector<StoredEvent> make_events(
    std::initializer_list<std::tuple<const char*, int64_t, const char*, const char*>> list) {
    std::vector<StoredEvent> events;
    int64_t position = 0;
    for (const auto& [id, version, type, payload] : list) {
        StoredEvent event{id, version, type, payload,
                          "00000000-0000-0000-0000-" + std::to_string(100000000000 + ++position)};
        events.push_back(std::move(event));
    }
    position = 0;
    for (auto& event : events) {
        event.raw.struct_size = sizeof(orch_event);
        event.raw.global_position = ++position;
        event.raw.bounded_context = "identity";
        event.raw.aggregate_type = "User";
        event.raw.aggregate_id = event.aggregate_id.c_str();
        event.raw.aggregate_version = event.version;
        event.raw.event_id = event.event_id.c_str();
        event.raw.event_type = event.type.c_str();
        event.raw.event_version = 1;
        event.raw.payload = reinterpret_cast<const uint8_t*>(event.payload.data());
        event.raw.payload_size = event.payload.size();
    }
    return events;
}

std::vector<const orch_event*> pointers(const std::vector<StoredEvent>& events) {
    std::vector<const orch_event*> out;
    for (const auto& event : events) out.push_back(&event.raw);
    return out;
}

const LoadedPlugin& plugin(const PluginScan& scan, const std::string& projection) {
    const LoadedPlugin* found = scan.find(projection);
    REQUIRE(found != nullptr);
    return *found;
}

}  // namespace

TEST_CASE("user_directory maintains the users table inside the batch transaction", "[plugins][sample]") {
    pg::BlockingConnection connection(test::pg_url());
    connection.exec("DROP TABLE IF EXISTS users_test");
    const PluginScan scan = scan_plugins(SAMPLE_PLUGIN_DIR);
    ProjectionInstance users(plugin(scan, "user_directory"), "user_directory", R"({"table":"users_test"})", "test");
    CHECK(users.mode() == ProjectionMode::transactional);
    TransactionSession session(connection);

    const auto events = make_events({
        {"u1", 1, "UserRegistered", R"({"email":"ada@example.com","name":"Ada"})"},
        {"u2", 1, "UserRegistered", R"({"email":"bob@example.com","name":"Bob"})"},
        {"u1", 2, "UserEmailChanged", R"({"email":"ada@lovelace.org"})"},
        {"u2", 2, "UserDeleted", "{}"},
    });
    connection.exec("BEGIN");
    const CallResult result = users.handle_batch(pointers(events), &session);
    REQUIRE(result.ok);
    connection.exec("COMMIT");

    const auto rows = connection.exec("SELECT user_id, email, name, version FROM users_test ORDER BY user_id");
    REQUIRE(rows.rows == 1);
    CHECK(rows.at(0, 0) == "u1");
    CHECK(rows.at(0, 1) == "ada@lovelace.org");
    CHECK(rows.at(0, 2) == "Ada");
    CHECK(rows.at(0, 3) == "2");

    // Replaying the same batch (at-least-once redelivery) changes nothing.
    connection.exec("BEGIN");
    REQUIRE(users.handle_batch(pointers(events), &session).ok);
    connection.exec("COMMIT");
    CHECK(connection.exec("SELECT count(*) FROM users_test").at(0, 0) == "1");
    CHECK(connection.exec("SELECT email FROM users_test WHERE user_id = 'u1'").at(0, 0) == "ada@lovelace.org");

    // reset() empties the read model for a rebuild.
    connection.exec("BEGIN");
    REQUIRE(users.reset(&session).ok);
    connection.exec("COMMIT");
    CHECK(connection.exec("SELECT count(*) FROM users_test").at(0, 0) == "0");
    connection.exec("DROP TABLE users_test");
}

TEST_CASE("a bad payload fails the batch and its writes roll back", "[plugins][sample]") {
    pg::BlockingConnection connection(test::pg_url());
    connection.exec("DROP TABLE IF EXISTS users_poison");
    const PluginScan scan = scan_plugins(SAMPLE_PLUGIN_DIR);
    ProjectionInstance users(plugin(scan, "user_directory"), "user_directory", R"({"table":"users_poison"})", "test");
    TransactionSession session(connection);

    const auto events = make_events({
        {"u1", 1, "UserRegistered", R"({"email":"ada@example.com","name":"Ada"})"},
        {"u2", 1, "UserRegistered", "not json at all"},
    });
    connection.exec("BEGIN");
    const CallResult result = users.handle_batch(pointers(events), &session);
    connection.exec("ROLLBACK");
    REQUIRE_FALSE(result.ok);
    CHECK_THAT(result.error, Catch::Contains("at position 2: payload is not a JSON object"));
    CHECK(connection.exec("SELECT to_regclass('users_poison') IS NULL").at(0, 0) == "t");

    const auto missing_field = make_events({{"u3", 1, "UserRegistered", R"({"name":"No Email"})"}});
    connection.exec("BEGIN");
    const CallResult no_email = users.handle_batch(pointers(missing_field), &session);
    connection.exec("ROLLBACK");
    REQUIRE_FALSE(no_email.ok);
    CHECK_THAT(no_email.error, Catch::Contains("lacks string field \"email\""));
}

TEST_CASE("an SQL error inside a plugin becomes the batch's error", "[plugins][sample]") {
    pg::BlockingConnection connection(test::pg_url());
    connection.exec("DROP TABLE IF EXISTS counts_broken");
    // A table with the expected name but the wrong shape makes the upsert fail.
    connection.exec("CREATE TABLE counts_broken (event_type TEXT PRIMARY KEY)");
    const PluginScan scan = scan_plugins(SAMPLE_PLUGIN_DIR);
    ProjectionInstance counter(plugin(scan, "event_counter_table"), "event_counter_table",
                               R"({"table":"counts_broken"})", "test");
    TransactionSession session(connection);
    const auto events = make_events({{"u1", 1, "UserRegistered", "{}"}});
    connection.exec("BEGIN");
    const CallResult result = counter.handle_batch(pointers(events), &session);
    connection.exec("ROLLBACK");
    REQUIRE_FALSE(result.ok);
    CHECK_THAT(result.error, Catch::Contains("column \"events\" of relation \"counts_broken\" does not exist"));
    CHECK_THAT(result.error, Catch::Contains("SQLSTATE 42703"));
    connection.exec("DROP TABLE counts_broken");
}

TEST_CASE("event_counter_table counts per event type transactionally", "[plugins][sample]") {
    pg::BlockingConnection connection(test::pg_url());
    connection.exec("DROP TABLE IF EXISTS counts_test");
    const PluginScan scan = scan_plugins(SAMPLE_PLUGIN_DIR);
    ProjectionInstance counter(plugin(scan, "event_counter_table"), "event_counter_table", R"({"table":"counts_test"})",
                               "test");
    TransactionSession session(connection);
    const auto events = make_events({{"u1", 1, "A", "{}"}, {"u1", 2, "B", "{}"}, {"u2", 1, "A", "{}"}});
    connection.exec("BEGIN");
    REQUIRE(counter.handle_batch(pointers(events), &session).ok);
    connection.exec("COMMIT");
    const auto rows = connection.exec("SELECT event_type, events, last_position FROM counts_test ORDER BY event_type");
    REQUIRE(rows.rows == 2);
    CHECK(rows.at(0, 0) == "A");
    CHECK(rows.at(0, 1) == "2");
    CHECK(rows.at(0, 2) == "3");
    CHECK(rows.at(1, 1) == "1");
    connection.exec("DROP TABLE counts_test");
}
