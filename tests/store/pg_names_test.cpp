// Every name derived from the configured schema and table names fits
// PostgreSQL's 63-byte limit, and long names stay distinct.
#include <catch2/catch.hpp>

#include <map>

#include "cluster/cluster_member.hpp"
#include "store/pg_names.hpp"

using namespace orchestratord;

namespace {

config::EventStoreConfig store_of(const std::string& schema, const std::string& events_table) {
    return {schema, events_table, "aggregate_heads", "projection_checkpoints"};
}

// Every derived name, by what it names.
std::map<std::string, std::string> derived_names(const config::EventStoreConfig& store) {
    return {{"events channel", store::events_channel(store)},
            {"trigger and function", store::notify_trigger_name(store)},
            {"cluster channel", cluster::cluster_channel(store)}};
}

}  // namespace

TEST_CASE("names that fit are kept as they are", "[names]") {
    const auto store = store_of("public", "events");
    CHECK(store::events_channel(store) == "orchestratord_events_public_events");
    CHECK(store::notify_trigger_name(store) == "orchestratord_notify_events");
    CHECK(cluster::cluster_channel(store) == "orchestratord_cluster_public");
    const std::string exactly(63, 'n');
    CHECK(store::fit_name(exactly) == exactly);
}

TEST_CASE("names derived from 63-character schema and table names fit in 63 bytes", "[names]") {
    const std::string schema = "s" + std::string(62, 'x');
    const std::string table = "t" + std::string(62, 'y');
    REQUIRE(schema.size() == 63);
    for (const auto& [what, name] : derived_names(store_of(schema, table))) {
        INFO(what << ": " << name);
        CHECK(name.size() <= store::kMaxNameBytes);
        CHECK(name.starts_with("orchestratord_"));  // still tells an operator whose it is
    }
}

TEST_CASE("long names that share their first 63 characters stay distinct", "[names]") {
    const std::string shared(63, 'a');
    CHECK(store::fit_name(shared + "b") != store::fit_name(shared + "c"));
    CHECK(store::fit_name(shared + "b") == store::fit_name(shared + "b"));  // stable

    // Schemas and tables that differ only in their last character.
    const std::string prefix(62, 'p');
    const auto a = derived_names(store_of(prefix + "1", prefix + "1"));
    const auto b = derived_names(store_of(prefix + "2", prefix + "1"));
    const auto c = derived_names(store_of(prefix + "1", prefix + "2"));
    CHECK(a.at("events channel") != b.at("events channel"));
    CHECK(a.at("events channel") != c.at("events channel"));
    CHECK(a.at("cluster channel") != b.at("cluster channel"));
    CHECK(a.at("trigger and function") != c.at("trigger and function"));
}

TEST_CASE("a name is never cut inside a UTF-8 character", "[names]") {
    // 53 ASCII bytes then two-byte characters: byte 54 is the second half of one.
    std::string full(53, 'a');
    for (int i = 0; i < 10; ++i) full += "\xC3\xA9";  // é
    const std::string fitted = store::fit_name(full);
    CHECK(fitted.size() <= store::kMaxNameBytes);
    const size_t suffix = fitted.rfind('_');
    REQUIRE(suffix != std::string::npos);
    // The prefix ends on a whole character: an odd count of é bytes would mean half of one.
    CHECK((suffix - 53) % 2 == 0);
}
