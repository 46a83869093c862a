#include <catch2/catch.hpp>

#include "config/duration.hpp"

using namespace orchestratord::config;
using namespace std::chrono_literals;

TEST_CASE("Go-style durations parse like time.ParseDuration", "[config][duration]") {
    CHECK(parse_duration("250ms").value == 250ms);
    CHECK(parse_duration("5s").value == 5s);
    CHECK(parse_duration("1m30s").value == 90s);
    CHECK(parse_duration("1h").value == 1h);
    CHECK(parse_duration("1.5h").value == 90min);
    CHECK(parse_duration("2h45m10.5s").value == 2h + 45min + 10500ms);
    CHECK(parse_duration("100us").value == 100us);
    CHECK(parse_duration("100\xC2\xB5s").value == 100us);
    CHECK(parse_duration("7ns").value == 7ns);
    CHECK(parse_duration("0").value == 0s);
    CHECK(parse_duration("-5s").value == -5s);
}

TEST_CASE("malformed durations are refused with a reason", "[config][duration]") {
    for (const char* text : {"", "5", "abc", "5 s", "5sec", "s", "1m30", "--1s", "1.s.5"}) {
        INFO(text);
        const auto parsed = parse_duration(text);
        CHECK_FALSE(parsed.ok);
        CHECK_FALSE(parsed.error.empty());
    }
    CHECK_THAT(parse_duration("5").error, Catch::Contains("missing unit"));
    CHECK_THAT(parse_duration("5sec").error, Catch::Contains("unknown unit"));
}

TEST_CASE("durations format like Go's Duration.String", "[config][duration]") {
    CHECK(format_duration(0s) == "0s");
    CHECK(format_duration(500ms) == "500ms");
    CHECK(format_duration(1500ms) == "1.5s");
    CHECK(format_duration(90s) == "1m30s");
    CHECK(format_duration(1h) == "1h0m0s");
    CHECK(format_duration(2us) == "2us");
    CHECK(format_duration(-5s) == "-5s");
    CHECK(parse_duration(format_duration(2h + 3min + 4s + 5ms)).value == 2h + 3min + 4s + 5ms);
}
