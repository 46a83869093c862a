// The table of sections and the enum spellings that the loader, the
// environment check and the key reference all read.
#include <catch2/catch.hpp>

#include "config/environment.hpp"
#include "config/loader.hpp"
#include "config/schema.hpp"
#include "support/temp_dir.hpp"

using namespace orchestratord::config;

TEST_CASE("every enum value has one spelling, read back as the same value", "[config][schema]") {
    for (auto level : {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error}) {
        CHECK(parse_value<LogLevel>(value_name(level)) == level);
    }
    for (auto format : {LogFormat::text, LogFormat::json}) CHECK(parse_value<LogFormat>(value_name(format)) == format);
    CHECK(value_name(OnErrorPolicy::dead_letter) == "dead-letter");
    CHECK(parse_value<OnErrorPolicy>("dead-letter") == OnErrorPolicy::dead_letter);
    CHECK(parse_value<OnErrorPolicy>("pause") == OnErrorPolicy::pause);
    CHECK_FALSE(parse_value<OnErrorPolicy>("dead_letter").has_value());
    CHECK_FALSE(parse_value<LogLevel>("warning").has_value());
}

TEST_CASE("enum-valued keys load as enums and reject other spellings naming the input", "[config][schema]") {
    orchestratord::test::TempDir dir;
    LoadOptions options;
    options.file = dir.write("orchestratord.yaml",
                             "database: {url: 'postgres://h/db'}\nlogging: {level: warn, format: json}\n"
                             "replica_sets: [{name: main, projections: [{name: p, on_error: dead-letter}]}]\n");
    const Config config = load_config(options);
    CHECK(config.logging.level == LogLevel::warn);
    CHECK(config.logging.format == LogFormat::json);
    CHECK(config.replica_sets[0].projections[0].on_error.policy == OnErrorPolicy::dead_letter);

    options.env = {{"ORCHESTRATORD_LOGGING_FORMAT", "yaml"}};
    try {
        load_config(options);
        FAIL("an unknown format must be an error");
    } catch (const ConfigError& e) {
        REQUIRE(e.problems().size() == 1);
        CHECK(e.problems()[0] ==
              "ORCHESTRATORD_LOGGING_FORMAT (logging.format): must be one of text,json (got \"yaml\")");
    }
}

TEST_CASE("the table of sections nests each section under its parent", "[config][schema]") {
    using Keys = std::vector<std::string_view>;
    CHECK(nested_keys("top level") == Keys{"database", "event_store", "logging", "http", "plugins", "replica_sets"});
    CHECK(nested_keys("replica_sets[]") == Keys{"projections"});
    CHECK(nested_keys("replica_sets[].projections[]") == Keys{"config", "on_error"});
    CHECK(nested_keys("database").empty());
    size_t mapped = 0;
    for_each_section([&](const auto& section) {
        INFO(section.title);
        CHECK_FALSE(section.keys.empty());
        if (section.in_config != nullptr) {
            ++mapped;
            CHECK(section.parent == "top level");
            CHECK(section.prefix == std::string(section.key) + ".");
        }
    });
    CHECK(mapped == 5);
}

TEST_CASE("the variables the configuration reads come from the table", "[config][schema]") {
    const auto known = known_variables();
    for (const char* name : {"ORCHESTRATORD_CONFIG", "DATABASE_URL", "ORCHESTRATORD_EVENT_STORE_SCHEMA",
                             "ORCHESTRATORD_LOGGING_LEVEL", "ORCHESTRATORD_HTTP_LISTEN",
                             "ORCHESTRATORD_PLUGINS_DIRECTORY", "REPLICA_SET", "ORCHESTRATORD_PRESET", "BATCH_SIZE"}) {
        CHECK(known.contains(name));
    }
    Findings findings;
    check_variable_names({{"ORCHESTRATORD_SLICES", "8"}, {"ORCHESTRATORD_SLICE", "8"}, {"HOME", "/root"}}, findings);
    REQUIRE(findings.problems.size() == 1);
    CHECK_THAT(findings.problems[0], Catch::StartsWith("ORCHESTRATORD_SLICE: unknown environment variable"));
}
