// The two log line formats: the JSON one splits a line into its sentence and
// key=value fields, the text one keeps every entry on one line; both name
// the levels as the configuration does.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "log/formatters.hpp"
#include "log/line_fields.hpp"
#include "log/quoted.hpp"

using namespace orchestratord;

namespace {

// Every line one entry wrote through a logger with the given format.
std::string write(log::Format format, spdlog::level::level_enum level, const std::string& text) {
    std::ostringstream out;
    spdlog::logger logger("test", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
    logger.set_formatter(log::make_formatter(format));
    logger.set_level(spdlog::level::trace);
    logger.log(level, text);
    return out.str();
}

nlohmann::json json_entry(const std::string& text, spdlog::level::level_enum level = spdlog::level::info) {
    const std::string line = write(log::Format::json, level, text);
    REQUIRE(line.size() > 1);
    REQUIRE(line.back() == '\n');
    REQUIRE(line.find('\n') == line.size() - 1);  // one line
    return nlohmann::json::parse(line);
}

}  // namespace

TEST_CASE("a JSON log line has the sentence in msg and each key=value field as its own key", "[log][json]") {
    const auto entry = json_entry(
        "projection progress replica_set=main projection=users worker=0b5c1d2e-aaaa-bbbb-cccc-000000000001 "
        "generation=7 lag=12 rate=1500/s retry_in=100ms duration_s=0.250 attempt=1/3");
    CHECK(entry["msg"] == "projection progress");
    CHECK(entry["level"] == "info");
    CHECK(entry["ts"].is_string());
    CHECK(entry["pid"].is_number_integer());
    CHECK(entry["replica_set"] == "main");
    CHECK(entry["projection"] == "users");
    CHECK(entry["worker"] == "0b5c1d2e-aaaa-bbbb-cccc-000000000001");
    CHECK(entry["generation"] == 7);
    CHECK(entry["lag"].is_number_integer());
    CHECK(entry["duration_s"].is_number_float());
    CHECK(entry["duration_s"].get<double>() == Approx(0.25));
    // Values that only start like numbers stay strings.
    CHECK(entry["rate"] == "1500/s");
    CHECK(entry["retry_in"] == "100ms");
    CHECK(entry["attempt"] == "1/3");
}

TEST_CASE("numbers in JSON log lines: signs and decimals are numbers but leading zeros and exponents are not",
          "[log][json]") {
    const auto entry = json_entry("figures a=-5 b=0 c=-0.5 d=007 e=1e5 f=1. g=.5 h=99999999999999999999 i=1.2.3");
    CHECK(entry["a"] == -5);
    CHECK(entry["b"] == 0);
    CHECK(entry["c"].get<double>() == Approx(-0.5));
    CHECK(entry["d"] == "007");
    CHECK(entry["e"] == "1e5");
    CHECK(entry["f"] == "1.");
    CHECK(entry["g"] == ".5");
    CHECK(entry["h"] == "99999999999999999999");  // does not fit 64 bits
    CHECK(entry["i"] == "1.2.3");
}

TEST_CASE("quoted values come back unescaped with their quotes and backslashes and newlines and spaces",
          "[log][json]") {
    const std::string error = "relation \"a b\" does not exist\nLINE 1: SELECT * FROM a\\b\n\ttab\x01 end\n";
    const auto entry = json_entry("heartbeat failed replica_set=main error=" + log::quoted(error) + " retry_in=200ms");
    CHECK(entry["msg"] == "heartbeat failed");
    CHECK(entry["replica_set"] == "main");
    // The trailing newline libpq adds is dropped by quoted(); the rest is intact.
    CHECK(entry["error"] == "relation \"a b\" does not exist\nLINE 1: SELECT * FROM a\\b\n\ttab\x01 end");
    CHECK(entry["retry_in"] == "200ms");
}

TEST_CASE("quoted() writes one line with quotes and backslashes escaped", "[log][quoted]") {
    CHECK(log::quoted("plain") == "\"plain\"");
    CHECK(log::quoted("") == "\"\"");
    CHECK(log::quoted("say \"hi\"\\now") == R"("say \"hi\"\\now")");
    CHECK(log::quoted("first\nsecond\r\n") == R"("first\nsecond")");
    CHECK(log::quoted(std::string("bell\x07", 5)) == R"("bell\u0007")");
}

TEST_CASE("a log line without fields keeps its whole text in msg", "[log][json]") {
    const auto entry = json_entry("  stopped; nothing = here, see: =a 1a=b  ");
    CHECK(entry["msg"] == "  stopped; nothing = here, see: =a 1a=b  ");
    const auto one_word = json_entry("ready");
    CHECK(one_word["msg"] == "ready");
    CHECK(one_word.size() == 4);  // ts, level, msg, pid
}

TEST_CASE("text that is not a field stays in msg and is never lost", "[log][json]") {
    SECTION("words after the fields join the sentence") {
        const auto entry =
            json_entry("the process crashed; resumes replica_set=main signal=11 crash 2 of crash_limit=3");
        CHECK(entry["msg"] == "the process crashed; resumes crash 2 of");
        CHECK(entry["replica_set"] == "main");
        CHECK(entry["signal"] == 11);
        CHECK(entry["crash_limit"] == 3);
    }
    SECTION("an unclosed quote stays text") {
        const auto entry = json_entry("refused plugin file=/p/x.so reason=\"no end");
        CHECK(entry["file"] == "/p/x.so");
        CHECK(entry["msg"] == "refused plugin reason=\"no end");
        CHECK_FALSE(entry.contains("reason"));
    }
    SECTION("a quote followed by more text in the same token stays text") {
        const auto entry = json_entry("odd a=\"x\"y b=1");
        CHECK(entry["msg"] == "odd a=\"x\"y");
        CHECK(entry["b"] == 1);
    }
    SECTION("reserved and repeated keys stay text") {
        const auto entry = json_entry("plugin says msg=hello level=9 projection=a projection=b");
        CHECK(entry["msg"] == "plugin says msg=hello level=9 projection=b");
        CHECK(entry["level"] == "info");
        CHECK(entry["projection"] == "a");
    }
    SECTION("garbage bytes and control characters") {
        const std::string garbage("\xff\xfe=\"\\ \x01 ==x= =\"", 15);
        const std::string line = write(log::Format::json, spdlog::level::info, garbage);
        const auto entry = nlohmann::json::parse(line);  // invalid UTF-8 replaced, still JSON
        CHECK(entry["msg"].get<std::string>().find("==x=") != std::string::npos);
    }
    SECTION("an empty value and a trailing escape") {
        const auto entry = json_entry("empty a= b=\"x\\");
        CHECK(entry["a"] == "");
        CHECK(entry["msg"] == "empty b=\"x\\");
    }
}

TEST_CASE("split_fields keeps the fields in line order", "[log][json]") {
    const auto parts = log::split_fields("sentence z=1 a=\"two words\" m=3");
    CHECK(parts.message == "sentence");
    REQUIRE(parts.fields.size() == 3);
    CHECK(parts.fields[0] == std::make_pair(std::string("z"), std::string("1")));
    CHECK(parts.fields[1] == std::make_pair(std::string("a"), std::string("two words")));
    CHECK(parts.fields[2] == std::make_pair(std::string("m"), std::string("3")));
}

TEST_CASE("a multi-line error logged as it came is one text line and one JSON line", "[log][text][json]") {
    const std::string error = "cannot start: connection failed\nDETAIL:  is the server running?\n";
    const std::string text = write(log::Format::text, spdlog::level::critical, error);
    CHECK(text.find('\n') == text.size() - 1);
    CHECK(text.find("cannot start: connection failed | DETAIL:  is the server running?\n") != std::string::npos);
    const auto entry = json_entry(error);
    CHECK(entry["msg"] == error);
}

TEST_CASE("both formats name the levels as the configuration does", "[log][levels]") {
    const std::string warn = write(log::Format::text, spdlog::level::warn, "slow replica_set=main");
    CHECK(warn.find(" warn  slow replica_set=main\n") != std::string::npos);
    CHECK(warn.find("warning") == std::string::npos);
    const std::string critical = write(log::Format::text, spdlog::level::critical, "cannot start");
    CHECK(critical.find(" error cannot start\n") != std::string::npos);
    const std::string info = write(log::Format::text, spdlog::level::info, "ready");
    CHECK(info.find("Z info  ready\n") != std::string::npos);
    CHECK(json_entry("x", spdlog::level::warn)["level"] == "warn");
    CHECK(json_entry("x", spdlog::level::err)["level"] == "error");
    CHECK(json_entry("x", spdlog::level::critical)["level"] == "error");
    CHECK(json_entry("x", spdlog::level::debug)["level"] == "debug");
}
