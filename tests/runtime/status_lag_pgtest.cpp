// `orchestratord status` lag against a real daemon: the head is the highest
// committed position, and a projection that has caught up shows lag 0 whatever
// permanent holes (rolled-back inserts) and jumps (setval far ahead) the
// positions have, also when its scope sees none of the last events.
#include <catch2/catch.hpp>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/event_store_fixture.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

// How long a projection may take to show lag 0 once the events are there (it
// takes about a second). A scoped projection whose scope saw none of the last
// events has its checkpoints moved by reads that found nothing; they must be
// written before it goes idle, not at a sweep after its 30 s idle pause.
constexpr auto kCaughtUpWithin = 5s;

// The scoped fixture's events (User/identity/UserRegistered) and others, one
// per aggregate (the fixture's versions are right within one statement only
// then).
void append_scoped(EventStoreFixture& store, int count) {
    store.append(count, count, "UserRegistered", "User", "identity");
}
void append_other(EventStoreFixture& store, int count) {
    store.append(count, count, "Happened", "Thing", "test");
}

// Draws a position in a transaction on its own connection and rolls it back:
// a permanent hole. Returns the position.
int64_t rolled_back_insert(EventStoreFixture& store, const std::string& event_type = "UserRegistered") {
    orchestratord::pg::BlockingConnection writer(pg_url());
    writer.exec("BEGIN");
    const auto row = writer.exec("INSERT INTO " + store.schema() +
                                     ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, "
                                     "event_id, event_type, payload) VALUES ('identity', 'User', 'rolled-back', 1, "
                                     "gen_random_uuid(), $1, '\\x00') RETURNING global_position",
                                 {event_type});
    writer.exec("ROLLBACK");
    return std::stoll(*row.at(0, 0));
}

// Both recorders, each into its own table.
std::string both_recorders(EventStoreFixture& store) {
    store.db().exec("CREATE TABLE " + store.schema() + ".recorded_scoped (LIKE " + store.schema() +
                    ".recorded INCLUDING ALL)");
    return store.recorder("recorder") + "      - name: recorder_scoped\n        config: {table: " + store.schema() +
           ".recorded_scoped}\n";
}

nlohmann::json status_json(const std::string& config) {
    const auto status = run_command({ORCHESTRATORD_BIN, "status", "--json", "--config", config});
    INFO(status.output);
    REQUIRE(status.status.code == 0);
    return nlohmann::json::parse(status.output);
}

const nlohmann::json& projection(const nlohmann::json& report, const std::string& name) {
    for (const auto& entry : report["replica_sets"][0]["projections"]) {
        if (entry["name"] == name) return entry;
    }
    FAIL("no projection " << name << " in " << report.dump());
    throw std::logic_error("unreachable");
}

// The text table's row for `name`: name, state, checkpoint, lag, dead letters.
std::vector<std::string> text_row(const std::string& text, const std::string& name) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream fields(line);
        std::vector<std::string> row;
        for (std::string field; fields >> field;) row.push_back(field);
        if (!row.empty() && row[0] == name) return row;
    }
    return {};
}

// Polls `status --json` until every projection in `names` shows lag 0 with
// its lowest checkpoint at the event store's head (as the events table says);
// returns the last report. Fails after kCaughtUpWithin.
nlohmann::json wait_caught_up(EventStoreFixture& store, const std::string& config,
                              const std::vector<std::string>& names) {
    const int64_t head = store.head();
    nlohmann::json report;
    const bool caught_up = store.wait_until(
        [&] {
            report = status_json(config);
            for (const auto& name : names) {
                const auto& p = projection(report, name);
                if (p["lag_events"] != 0 || p["lowest_checkpoint"] != head) return false;
            }
            return true;
        },
        kCaughtUpWithin);
    INFO("head " << head << ", last status: " << report.dump(2));
    REQUIRE(caught_up);
    CHECK(report["head"] == head);
    return report;
}

// What the text form says about `names` agrees: head, checkpoint, lag 0.
void check_text_caught_up(EventStoreFixture& store, const std::string& config, const std::vector<std::string>& names) {
    const auto text = run_command({ORCHESTRATORD_BIN, "status", "--config", config});
    INFO(text.output);
    REQUIRE(text.status.code == 0);
    const std::string head = std::to_string(store.head());
    CHECK_THAT(text.output, Catch::Contains("event store head: " + head + "\n"));
    for (const auto& name : names) {
        const auto row = text_row(text.output, name);
        REQUIRE(row.size() == 5);
        CHECK(row[2] == head);
        CHECK(row[3] == "0");
    }
}

}  // namespace

TEST_CASE("status: both projections reach lag 0 past a rolled-back insert between scoped and other events",
          "[status][lag]") {
    EventStoreFixture store("lag_hole");
    const std::string config = store.config_file(both_recorders(store), 10);
    auto daemon = store.start_daemon(config);
    REQUIRE(daemon->wait_for_output("ready;", 15s));

    append_scoped(store, 50);
    const int64_t hole = rolled_back_insert(store);
    append_other(store, 50);
    REQUIRE(hole == 51);
    REQUIRE(store.head() == 101);

    // Nothing of the scoped projection's scope past the hole: it reaches the
    // head all the same.
    const std::vector<std::string> both{"recorder", "recorder_scoped"};
    wait_caught_up(store, config, both);

    append_scoped(store, 10);
    append_other(store, 10);
    REQUIRE(store.head() == 121);
    REQUIRE(store.scalar("SELECT count(*) FROM " + store.schema() + ".events") == 120);
    const auto report = wait_caught_up(store, config, both);
    check_text_caught_up(store, config, both);
    for (const auto& name : both) {
        INFO(name);
        CHECK(projection(report, name)["highest_checkpoint"] == 121);
    }
    // Caught up means handled: every event once, the scoped one only its own.
    CHECK(store.recorded() == 120);
    CHECK(store.scalar("SELECT count(DISTINCT global_position) FROM " + store.schema() +
                       ".recorded_scoped WHERE event_type = 'UserRegistered'") == 60);
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() + ".recorded_scoped") == 60);
    stop_gracefully(*daemon);
}

TEST_CASE("status: the head is the highest committed position, not the sequence, across a setval far ahead",
          "[status][lag]") {
    EventStoreFixture store("lag_setval");
    const std::string config = store.config_file(both_recorders(store), 10);
    auto daemon = store.start_daemon(config);
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    append_scoped(store, 10);
    append_other(store, 10);
    const std::vector<std::string> both{"recorder", "recorder_scoped"};
    wait_caught_up(store, config, both);

    // The sequence jumps far ahead; nothing was committed there yet, so the
    // head (and the lag) must not move.
    constexpr int64_t kJump = 5000000000;
    store.db().exec("SELECT setval(pg_get_serial_sequence('" + store.schema() + ".events', 'global_position'), " +
                    std::to_string(kJump) + ")");
    auto report = status_json(config);
    CHECK(report["head"] == 20);
    for (const auto& name : both) {
        INFO(name);
        CHECK(projection(report, name)["lag_events"] == 0);
    }

    // Past the jump, first only events out of the scoped projection's scope:
    // it has to cross the jump without any event of its own.
    append_other(store, 3);
    REQUIRE(store.head() == kJump + 3);
    report = wait_caught_up(store, config, both);
    CHECK(report["head"] == kJump + 3);

    // Then its own events, the last ones out of its scope again, and a
    // rolled-back insert past them: the sequence ends one ahead of the
    // highest committed position.
    append_scoped(store, 3);
    append_other(store, 3);
    CHECK(rolled_back_insert(store) == kJump + 10);
    REQUIRE(store.head() == kJump + 9);

    report = wait_caught_up(store, config, both);
    check_text_caught_up(store, config, both);
    CHECK(report["head"] == kJump + 9);
    CHECK(store.recorded() == 29);
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() + ".recorded_scoped") == 13);
    stop_gracefully(*daemon);
}

TEST_CASE("status: a scoped projection reaches lag 0 when the last events, after a hole, are out of its scope",
          "[status][lag]") {
    EventStoreFixture store("lag_tail");
    append_scoped(store, 20);
    const int64_t hole = rolled_back_insert(store, "UserDeleted");
    append_other(store, 20);
    REQUIRE(hole == 21);
    REQUIRE(store.head() == 41);

    // Started after the appends: the scoped projection catches up from 0 and
    // its last events are followed by a hole and 20 it does not see.
    const std::string config = store.config_file(both_recorders(store), 10);
    auto daemon = store.start_daemon(config);
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    const std::vector<std::string> both{"recorder", "recorder_scoped"};
    const auto report = wait_caught_up(store, config, both);
    check_text_caught_up(store, config, both);
    CHECK(projection(report, "recorder_scoped")["highest_checkpoint"] == 41);
    CHECK(store.scalar("SELECT max(global_position) FROM " + store.schema() + ".recorded_scoped") == 20);
    CHECK(store.recorded() == 40);
    stop_gracefully(*daemon);
}
