// The daemon with logging.format json, as a log shipper reads it: every line
// one JSON object, the context of each line in keys of its own, and an error
// with quotes and newlines (libpq's) intact in its `error` key.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/event_store_fixture.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> lines_of(const std::string& output) {
    std::vector<std::string> lines;
    std::istringstream in(output);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// Sentences written with a replica set's context (a cluster member's, a
// coordinator's or a projection runner's): their lines must carry it.
const std::vector<std::string> kReplicaSetSentences = {
    "worker registered",
    "new generation",
    "acquired slices",
    "projection starting",
    "projection failed to handle a batch",
    "dead-lettered an event",
    "projection paused after repeated failures; other projections continue",
    "projection stopped",
    "worker unregistered",
};

}  // namespace

TEST_CASE("with logging.format json every line is a JSON object and lines of a replica set carry replica_set",
          "[log][json][daemon]") {
    EventStoreFixture store("json_logs");
    store.append(20, 20);
    // A poison event that is dead-lettered, and a projection whose table is
    // missing (the crasher, told no position to crash at): its error is
    // libpq's, with quotes around the relation's name.
    const std::string projections = "      - name: recorder\n        config: {table: " + store.schema() +
                                    ".recorded, fail_position: 7}\n        on_error: {policy: dead-letter, "
                                    "max_attempts: 2, initial_backoff: 10ms, max_backoff: 20ms}\n"
                                    "      - name: crasher\n        config: {table: " +
                                    store.schema() +
                                    ".missing}\n        on_error: {policy: pause, max_attempts: 2, "
                                    "initial_backoff: 10ms, max_backoff: 20ms}\n";
    auto daemon = store.start_daemon(store.config_file(projections, 10), "daemon.log",
                                     {{"ORCHESTRATORD_LOGGING_FORMAT", "json"}});
    const bool recorded = store.wait_until([&] { return store.recorded() == 19; }, 20s);
    const bool paused = daemon->wait_for_output("projection paused after repeated failures", 20s);
    const bool dead_lettered = daemon->wait_for_output("dead-lettered an event", 20s);
    INFO(daemon->output());
    REQUIRE(recorded);
    REQUIRE(paused);
    REQUIRE(dead_lettered);
    stop_gracefully(*daemon);

    const auto lines = lines_of(daemon->output());
    INFO(daemon->output());
    REQUIRE(lines.size() > 10);
    std::set<std::string> seen;
    bool quoted_error_seen = false;
    for (const auto& line : lines) {
        INFO(line);
        nlohmann::json entry;
        REQUIRE_NOTHROW(entry = nlohmann::json::parse(line));
        REQUIRE(entry.is_object());
        CHECK(entry["ts"].is_string());
        CHECK(entry["pid"].is_number_integer());
        const std::string level = entry.value("level", "");
        CHECK((level == "debug" || level == "info" || level == "warn" || level == "error"));
        const std::string msg = entry.value("msg", "");
        CHECK_FALSE(msg.empty());
        // The sentence alone: no field of the context is left in msg.
        CHECK(msg.find("replica_set=") == std::string::npos);
        CHECK(msg.find("worker=") == std::string::npos);
        CHECK(msg.find("error=") == std::string::npos);
        const bool has_context =
            entry.contains("projection") || entry.contains("worker") || entry.contains("generation");
        for (const auto& sentence : kReplicaSetSentences) {
            if (msg.rfind(sentence, 0) == 0) {
                seen.insert(sentence);
                CHECK(entry.value("replica_set", "") == "test");
            }
        }
        if (has_context) CHECK(entry.value("replica_set", "") == "test");
        if (entry.contains("generation")) CHECK(entry["generation"].is_number_integer());
        if (msg == "projection failed to handle a batch" && entry.value("projection", "") == "crasher") {
            REQUIRE(entry["error"].is_string());
            const std::string error = entry["error"];
            CHECK_THAT(error, Catch::Contains("\"" + store.schema() + ".missing\" does not exist"));
            CHECK(entry["first_position"].is_number_integer());
            quoted_error_seen = true;
        }
        if (msg.rfind("dead-lettered an event", 0) == 0) {
            CHECK(entry["position"] == 7);
            CHECK_THAT(entry.value("error", ""), Catch::Contains("poison event at position 7"));
        }
    }
    CHECK(quoted_error_seen);
    for (const auto& sentence : kReplicaSetSentences) {
        INFO(sentence);
        CHECK(seen.count(sentence) == 1);
    }
}
