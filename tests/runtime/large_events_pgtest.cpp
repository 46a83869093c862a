// Large events: memory is bounded by max_read_bytes, not only by batch_size
// and the read-ahead's event count.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "support/event_store_fixture.hpp"
#include "support/http_get.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

// The process's peak resident set size in MiB (VmHWM).
double peak_rss_mib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    }
    return -1;
}

// The bound on the daemon's peak memory. Under AddressSanitizer the
// daemon's memory is its own plus ASan's shadow memory and redzones, and
// freed blocks wait in a quarantine: the daemon runs with the quarantine off
// and the bound allows for the rest (a bounded read measured 1.5x its
// Release figure; an unbounded one stays well above the allowance).
#if defined(__SANITIZE_ADDRESS__)
constexpr double kPeakBoundMib = 150 * 1.5;
#else
constexpr double kPeakBoundMib = 150;
#endif

// The daemon's environment: the read bound of 16 MiB, and no ASan quarantine.
std::map<std::string, std::optional<std::string>> bounded_read_env() {
    std::map<std::string, std::optional<std::string>> env{{"ORCHESTRATORD_MAX_READ_BYTES", std::to_string(16 << 20)}};
#if defined(__SANITIZE_ADDRESS__)
    const char* inherited = std::getenv("ASAN_OPTIONS");
    env["ASAN_OPTIONS"] = std::string(inherited ? inherited : "") + ":quarantine_size_mb=0";
#endif
    return env;
}

}  // namespace

TEST_CASE("large events are read a bounded number of bytes at a time, a larger one alone", "[event-path][memory]") {
    EventStoreFixture store("large_events");
    const std::string insert = "INSERT INTO " + store.schema() +
                               ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, "
                               "event_type, payload) SELECT 'test', 'Thing', 'big-' || g, 1, gen_random_uuid(), "
                               "'Big', convert_to(repeat('x', $2::int), 'UTF8') FROM generate_series(1, $1::int) g";
    // 60 events of 4 MiB: 240 MiB in all, more than one batch of 50 holds.
    store.db().exec(insert, {"60", std::to_string(4 << 20)});
    // One event larger than the whole bound.
    store.db().exec("INSERT INTO " + store.schema() +
                    ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, "
                    "payload) VALUES ('test', 'Thing', 'huge', 1, gen_random_uuid(), 'Huge', "
                    "convert_to(repeat('y', 20 << 20), 'UTF8'))");
    const std::string file = store.dir().file("file.txt");
    const std::string projection = "      - name: recorder_file\n        config: {file: '" + file + "'}\n";
    auto daemon = store.start_daemon(store.config_file(projection, 50), "daemon.log", bounded_read_env());
    std::map<int64_t, int> seen;
    REQUIRE(store.wait_until(
        [&] {
            seen.clear();
            count_file_deliveries(file, seen);
            return seen.size() == 61;
        },
        60s));
    const double peak = peak_rss_mib(daemon->pid());
    INFO("peak RSS " << peak << " MiB");
    // A read holds at most 16 MiB of payload (4 events), the one handled and
    // the one read ahead: far below one batch of 50 (200 MiB).
    CHECK(peak > 0);
    CHECK(peak < kPeakBoundMib);
    // Every delivery came in a batch of at most 4; the 20 MiB event alone.
    std::ifstream in(file);
    std::string line;
    int64_t largest_batch = 0;
    int64_t huge_batch = 0;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        int64_t position = 0;
        std::string aggregate;
        int64_t version = 0;
        int64_t batch = 0;
        if (!(fields >> position >> aggregate >> version >> batch)) continue;
        largest_batch = std::max(largest_batch, batch);
        if (aggregate == "huge") huge_batch = batch;
    }
    CHECK(largest_batch <= 4);
    CHECK(huge_batch == 1);
    stop_gracefully(*daemon);
    CHECK(store.lowest_checkpoint("recorder_file") == 61);
}

TEST_CASE("events committed behind an open writer are read again a bounded number of bytes at a time",
          "[event-path][memory][late-commit]") {
    EventStoreFixture store("large_behind_writer");
    const std::string file = store.dir().file("file.txt");
    const std::string projection = "      - name: recorder_file\n        config: {file: '" + file + "'}\n";
    auto daemon = store.start_daemon(store.config_file(projection, 50), "daemon.log", bounded_read_env());
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    const int port = logged_http_port(daemon->output());
    REQUIRE(port > 0);
    // An application transaction writes 40 events of 4 MiB and stays open;
    // a later, small event commits above them.
    orchestratord::pg::BlockingConnection writer(pg_url());
    writer.exec("BEGIN");
    writer.exec("INSERT INTO " + store.schema() +
                ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, "
                "payload) SELECT 'test', 'Thing', 'big-' || g, 1, gen_random_uuid(), 'Big', "
                "convert_to(repeat('x', 4 << 20), 'UTF8') FROM generate_series(1, 40) g");
    store.append(1, 1);
    const std::string blocked =
        "pupsourcing_orchestrator_reader_blocked_seconds{projection=\"recorder_file\",replica_set=\"test\"}";
    REQUIRE(store.wait_until([&] { return metric_value(http_get(port, "/metrics").body, blocked) > 0; }, 20s));
    writer.exec("COMMIT");
    std::map<int64_t, int> seen;
    REQUIRE(store.wait_until(
        [&] {
            seen.clear();
            count_file_deliveries(file, seen);
            return seen.size() == 41;
        },
        60s));
    const double peak = peak_rss_mib(daemon->pid());
    INFO("peak RSS " << peak << " MiB");
    CHECK(peak > 0);
    CHECK(peak < kPeakBoundMib);  // all 160 MiB at once without the bound on the re-read
    stop_gracefully(*daemon);
    CHECK(store.lowest_checkpoint("recorder_file") == 41);
}
