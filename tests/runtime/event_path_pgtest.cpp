// The event path end to end: real daemons over a real PostgreSQL, checking
// what the recorder fixture plugin saw.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/event_store_fixture.hpp"
#include "support/http_get.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

// Every recorded delivery, in the order they were committed.
std::vector<std::tuple<int64_t, std::string, int64_t>> deliveries(EventStoreFixture& store) {
    const auto rows = store.db().exec("SELECT global_position, aggregate_id, aggregate_version FROM " + store.schema() +
                                      ".recorded ORDER BY id");
    std::vector<std::tuple<int64_t, std::string, int64_t>> out;
    for (int64_t row = 0; row < rows.rows; ++row) {
        out.emplace_back(std::stoll(*rows.at(row, 0)), *rows.at(row, 1), std::stoll(*rows.at(row, 2)));
    }
    return out;
}

void check_per_aggregate_order(const std::vector<std::tuple<int64_t, std::string, int64_t>>& seen) {
    std::map<std::string, int64_t> last_version;
    for (const auto& [position, aggregate, version] : seen) {
        INFO("aggregate " << aggregate << " at position " << position);
        CHECK(version > last_version[aggregate]);
        last_version[aggregate] = version;
    }
}

}  // namespace

TEST_CASE("a transaction committing a lower position late is delivered, in order, exactly once",
          "[event-path][late-commit]") {
    EventStoreFixture store("late_commit");
    store.append(5);
    auto daemon = store.start_daemon(store.config_file(store.recorder(), 10));
    REQUIRE(store.wait_until([&] { return store.recorded() == 5; }, 15s));

    // A draws position p and stays open; B draws p+1 and commits.
    orchestratord::pg::BlockingConnection a(pg_url());
    orchestratord::pg::BlockingConnection b(pg_url());
    const std::string insert =
        "INSERT INTO " + store.schema() +
        ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, "
        "event_type, payload) VALUES ('test', 'Thing', $1, 1, gen_random_uuid(), 'Late', '\\x00') "
        "RETURNING global_position";
    const auto a_pid = *a.exec("SELECT pg_backend_pid()").at(0, 0);
    a.exec("BEGIN");
    const int64_t p = std::stoll(*a.exec(insert, {"late-a"}).at(0, 0));
    const int64_t p_next = std::stoll(*b.exec(insert, {"late-b"}).at(0, 0));
    REQUIRE(p_next == p + 1);

    // The reader waits for A and says so, naming A's backend.
    INFO(daemon->output());
    REQUIRE(daemon->wait_for_output("reader blocked by an open writer", 20s));
    CHECK_THAT(daemon->output(), Catch::Contains("writer_pid=" + a_pid));
    // ...and in the metric, which counts the seconds of waiting.
    const int port = logged_http_port(daemon->output());
    REQUIRE(port > 0);
    const std::string blocked =
        "pupsourcing_orchestrator_reader_blocked_seconds{projection=\"recorder\",replica_set=\"test\"}";
    const auto waiting = http_get(port, "/metrics");
    CHECK(waiting.status == 200);
    CHECK_THAT(waiting.content_type, Catch::StartsWith("text/plain; version=0.0.4"));
    CHECK(metric_value(waiting.body, blocked) > 0);
    CHECK(store.recorded() == 5);
    // No checkpoint has passed p while A is open.
    CHECK(store.scalar("SELECT max(position) FROM " + store.schema() + ".orchestratord_checkpoints") < p);

    a.exec("COMMIT");
    REQUIRE(store.wait_until([&] { return store.recorded() == 7; }, 10s));
    CHECK(metric_value(http_get(port, "/metrics").body, blocked) == 0);
    const auto seen = deliveries(store);
    CHECK(std::get<0>(seen[5]) == p);
    CHECK(std::get<0>(seen[6]) == p + 1);
    stop_gracefully(*daemon);
    CHECK(store.recorded() == 7);
    CHECK(store.lowest_checkpoint() == p + 1);
}

TEST_CASE("a rolled-back writer's hole is passed promptly", "[event-path][late-commit]") {
    EventStoreFixture store("rollback_hole");
    auto daemon = store.start_daemon(store.config_file(store.recorder(), 10));
    orchestratord::pg::BlockingConnection a(pg_url());
    const std::string insert = "INSERT INTO " + store.schema() +
                               ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, "
                               "event_type, payload) VALUES ('test', 'Thing', $1, 1, gen_random_uuid(), 'T', '\\x00')";
    a.exec("BEGIN");
    a.exec(insert, {"rolled-back"});
    store.db().exec(insert, {"committed"});
    a.exec("ROLLBACK");
    const auto rolled_back_at = std::chrono::steady_clock::now();
    REQUIRE(store.wait_until([&] { return store.recorded() == 1; }, 10s));
    CHECK(std::chrono::steady_clock::now() - rolled_back_at < 2s);
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() + ".recorded WHERE aggregate_id = 'committed'") == 1);
    stop_gracefully(*daemon);
}

TEST_CASE("a transactional projection applies every event exactly once across 20 SIGKILLs",
          "[event-path][exactly-once]") {
    EventStoreFixture store("exactly_once");
    store.append_each(4000, 40);
    const int64_t head = store.head();
    const std::string config = store.config_file(store.recorder(), 20);
    std::mt19937 random(20261127);
    std::uniform_int_distribution<int> delay_ms(5, 120);
    int kills = 0;
    for (int run = 0; run < 20; ++run) {
        auto daemon = store.start_daemon(config, "run" + std::to_string(run) + ".log");
        REQUIRE(daemon->wait_for_output("projection starting", 15s));
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));  // a random point, not a sync
        daemon->signal(SIGKILL);
        REQUIRE(daemon->wait(5s));
        ++kills;
        if (run == 10) store.append_each(1000, 40);  // more arrives while workers die
    }
    auto daemon = store.start_daemon(config, "final.log");
    const int64_t final_head = store.head();
    CHECK(final_head == head + 1000);
    REQUIRE(store.wait_until(
        [&] {
            return store.scalar("SELECT count(DISTINCT global_position) FROM " + store.schema() + ".recorded") ==
                   final_head;
        },
        60s));
    stop_gracefully(*daemon);

    INFO("kills: " << kills);
    CHECK(store.recorded() == final_head);  // no duplicates
    CHECK(store.scalar("SELECT count(*) FROM (SELECT global_position FROM " + store.schema() +
                       ".recorded GROUP BY 1 HAVING count(*) > 1) d") == 0);
    CHECK(store.lowest_checkpoint() == final_head);
    check_per_aggregate_order(deliveries(store));
}

TEST_CASE("an at-least-once projection misses nothing across SIGKILLs and repeats at most a batch per kill",
          "[event-path][at-least-once]") {
    EventStoreFixture store("at_least_once");
    store.append_each(3000, 30);
    const int64_t head = store.head();
    const std::string file = store.dir().file("deliveries.txt");
    const int batch_size = 25;
    const std::string config =
        store.config_file("      - name: recorder_file\n        config: {file: '" + file + "'}\n", batch_size);
    std::mt19937 random(42);
    std::uniform_int_distribution<int> delay_ms(5, 100);
    const int kills = 10;
    for (int run = 0; run < kills; ++run) {
        auto daemon = store.start_daemon(config, "run" + std::to_string(run) + ".log");
        REQUIRE(daemon->wait_for_output("projection starting", 15s));
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
        daemon->signal(SIGKILL);
        REQUIRE(daemon->wait(5s));
    }
    auto count_lines = [&](std::map<int64_t, int>& seen) {
        seen.clear();
        count_file_deliveries(file, seen);
    };
    auto daemon = store.start_daemon(config, "final.log");
    std::map<int64_t, int> seen;
    REQUIRE(store.wait_until(
        [&] {
            count_lines(seen);
            return static_cast<int64_t>(seen.size()) == head;
        },
        60s));
    stop_gracefully(*daemon);
    count_lines(seen);
    int64_t duplicates = 0;
    for (const auto& [position, times] : seen) duplicates += times - 1;
    CHECK(static_cast<int64_t>(seen.size()) == head);
    CHECK(seen.begin()->first == 1);
    CHECK(seen.rbegin()->first == head);
    CHECK(duplicates <= static_cast<int64_t>(kills) * batch_size);
    // Catching up reads many batches at once; the projection still gets them
    // batch_size at a time.
    std::ifstream lines(file);
    std::string line;
    size_t largest = 0;
    while (std::getline(lines, line)) {
        std::istringstream fields(line);
        int64_t position = 0, version = 0;
        std::string aggregate;
        size_t size = 0;
        if (fields >> position >> aggregate >> version >> size) largest = std::max(largest, size);
    }
    CHECK(largest == static_cast<size_t>(batch_size));
}

TEST_CASE("a projection's scope is applied: it sees exactly the events it declared", "[event-path][scope]") {
    EventStoreFixture store("scope");
    store.append(10, 10, "UserRegistered", "User", "identity");
    store.append(10, 10, "UserEmailChanged", "User", "identity");  // other type
    store.append(10, 10, "UserRegistered", "User", "marketing");   // other bounded context
    store.append(10, 10, "UserRegistered", "Lead", "identity");    // other aggregate type
    store.append(5, 5, "UserDeleted", "User", "identity");
    auto daemon = store.start_daemon(store.config_file(store.recorder("recorder_scoped"), 7));
    REQUIRE(store.wait_until([&] { return store.recorded() == 15; }, 15s));
    stop_gracefully(*daemon);
    CHECK(store.recorded() == 15);
    CHECK(store.lowest_checkpoint("recorder_scoped") == store.head());
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() +
                       ".recorded WHERE event_type NOT IN ('UserRegistered', 'UserDeleted')") == 0);
    // Every column reached the plugin.
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() +
                       ".recorded WHERE payload_size > 0 AND metadata LIKE '%test%'") == 15);
}

TEST_CASE("a poison event is dead-lettered and the projection goes on", "[event-path][poison]") {
    EventStoreFixture store("dead_letter");
    store.append(20, 20);
    const std::string projection = "      - name: recorder\n        config: {table: " + store.schema() +
                                   ".recorded, fail_position: 7}\n        on_error: {policy: dead-letter, "
                                   "max_attempts: 2, initial_backoff: 10ms, max_backoff: 20ms}\n";
    auto daemon = store.start_daemon(store.config_file(projection, 10));
    REQUIRE(store.wait_until([&] { return store.recorded() == 19; }, 20s));
    REQUIRE(store.wait_until(
        [&] { return store.scalar("SELECT count(*) FROM " + store.schema() + ".orchestratord_dead_letters") == 1; },
        20s));
    stop_gracefully(*daemon);
    CHECK(store.lowest_checkpoint() == 20);
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() + ".recorded WHERE global_position = 7") == 0);
    const auto letter = store.db().exec("SELECT global_position, attempts, error FROM " + store.schema() +
                                        ".orchestratord_dead_letters");
    REQUIRE(letter.rows == 1);
    CHECK(letter.at(0, 0) == "7");
    CHECK(letter.at(0, 1) == "2");
    CHECK_THAT(*letter.at(0, 2), Catch::Contains("poison event at position 7"));
    CHECK_THAT(daemon->output(), Catch::Contains("dead-lettered an event"));
    // The poison event was tried max_attempts times in all, as the dead
    // letter says: once in its batch, once alone.
    const std::string output = daemon->output();
    size_t tries = 0;
    for (size_t at = output.find("projection failed to handle a batch"); at != std::string::npos;
         at = output.find("projection failed to handle a batch", at + 1)) {
        ++tries;
    }
    CHECK(tries == 2);

    // The operator sees it in `orchestratord status`.
    const auto status =
        run_command({ORCHESTRATORD_BIN, "status", "--json", "--config", store.config_file(projection, 10)});
    INFO(status.output);
    REQUIRE(status.status.code == 0);
    const auto report = nlohmann::json::parse(status.output);
    CHECK(report["head"] == 20);
    const auto& recorder = report["replica_sets"][0]["projections"][0];
    CHECK(recorder["name"] == "recorder");
    CHECK(recorder["lowest_checkpoint"] == 20);
    CHECK(recorder["lag_events"] == 0);
    CHECK(recorder["dead_letters"] == 1);
    // Dead-lettered, not paused; and the daemon was stopped above, so no
    // live worker runs it now.
    CHECK(recorder["state"] == "not running");
    const auto text = run_command({ORCHESTRATORD_BIN, "status", "--config", store.config_file(projection, 10)});
    CHECK_THAT(text.output, Catch::Contains("replica set test: 64 slices"));
}

TEST_CASE("a poison event pauses its projection while the others continue", "[event-path][poison]") {
    EventStoreFixture store("pause");
    store.append(20, 20);
    const std::string file = store.dir().file("other.txt");
    const std::string projections = "      - name: recorder\n        config: {table: " + store.schema() +
                                    ".recorded, fail_position: 15}\n        on_error: {policy: pause, max_attempts: 2, "
                                    "initial_backoff: 10ms}\n      - name: recorder_file\n        config: {file: '" +
                                    file + "'}\n";
    auto daemon = store.start_daemon(store.config_file(projections, 10));
    auto lines = [&] {
        std::ifstream in(file);
        return std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
    };
    REQUIRE(store.wait_until([&] { return lines() == 20; }, 20s));
    REQUIRE(daemon->wait_for_output("projection paused after repeated failures", 20s));
    stop_gracefully(*daemon);
    // The projection holds exactly at the poison event: everything before it
    // was applied (also the healthy events of its batch), nothing after it.
    CHECK(store.recorded() == 14);
    CHECK(store.scalar("SELECT max(global_position) FROM " + store.schema() + ".recorded") == 14);
    CHECK(store.lowest_checkpoint() == 14);
    const auto state =
        store.db().exec("SELECT state, reason FROM " + store.schema() + ".orchestratord_projection_state");
    REQUIRE(state.rows == 1);
    CHECK(state.at(0, 0) == "paused");
    CHECK_THAT(*state.at(0, 1), Catch::Contains("poison event at position 15"));
    const auto status = run_command({ORCHESTRATORD_BIN, "status", "--config", store.config_file(projections, 10)});
    CHECK_THAT(status.output, Catch::Contains("paused: event at position 15"));
    CHECK_THAT(status.output, Catch::Contains("failed 2 times"));

    // A restart keeps it paused instead of failing again.
    auto again = store.start_daemon(store.config_file(projections, 10), "again.log");
    REQUIRE(again->wait_for_output("projection is paused", 15s));
    stop_gracefully(*again);
    CHECK(store.recorded() == 14);
}

TEST_CASE("connections are replaced after conn_max_lifetime without losing or repeating events", "[event-path][pool]") {
    EventStoreFixture store("lifetime");
    auto daemon = store.start_daemon(store.config_file(store.recorder(), 10), "daemon.log",
                                     {{"ORCHESTRATORD_DATABASE_CONN_MAX_LIFETIME", "1s"}});
    int64_t appended = 0;
    // Keep appending until a recycle happened, then a little more.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (daemon->output().find("recycling connections after conn_max_lifetime") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
        store.append(5, 5);
        appended += 5;
        REQUIRE(store.wait_until([&] { return store.recorded() == appended; }, 10s));
    }
    INFO(daemon->output());
    REQUIRE_THAT(daemon->output(), Catch::Contains("recycling connections after conn_max_lifetime"));
    store.append(5, 5);
    appended += 5;
    REQUIRE(store.wait_until([&] { return store.recorded() == appended; }, 10s));
    stop_gracefully(*daemon);
    CHECK(store.recorded() == appended);
    CHECK(store.scalar("SELECT count(DISTINCT global_position) FROM " + store.schema() + ".recorded") == appended);
}

TEST_CASE("retry back-off lasts its full time while new events keep waking the runner", "[event-path][poison]") {
    EventStoreFixture store("backoff");
    store.append(5, 5);
    const std::string projection = "      - name: recorder\n        config: {table: " + store.schema() +
                                   ".recorded, fail_position: 3}\n        on_error: {policy: pause, max_attempts: 3, "
                                   "initial_backoff: 400ms, max_backoff: 400ms}\n";
    auto daemon = store.start_daemon(store.config_file(projection, 10));
    REQUIRE(daemon->wait_for_output("attempt=1/3", 15s));
    const auto first = std::chrono::steady_clock::now();
    // Appends send NOTIFY, which wakes idle runners; it must not cut the back-off short.
    while (daemon->output().find("attempt=3/3") == std::string::npos &&
           std::chrono::steady_clock::now() - first < 10s) {
        store.append(1, 1, "Other", "Thing", "noise");
        std::this_thread::sleep_for(20ms);  // the append rate, not a synchronisation
    }
    const auto third = std::chrono::steady_clock::now();
    INFO(daemon->output());
    REQUIRE_THAT(daemon->output(), Catch::Contains("attempt=3/3"));
    CHECK(third - first >= 750ms);  // two back-offs of 400 ms
    stop_gracefully(*daemon);
}

TEST_CASE("a daemon never opens more than max_open_conns connections and still handles everything",
          "[event-path][pool]") {
    EventStoreFixture store("max_open");
    store.append_each(3000, 40);
    std::string projections = store.recorder();
    for (int i = 0; i < 5; ++i) projections += "      - name: noop_" + std::to_string(i) + "\n";
    // 4 in all: one for cluster membership, one for the listener, two shared by six projections.
    auto daemon = store.start_daemon(
        store.config_file(projections, 20), "daemon.log",
        {{"ORCHESTRATORD_DATABASE_MAX_OPEN_CONNS", "4"}, {"ORCHESTRATORD_DATABASE_MAX_IDLE_CONNS", "1"}});
    INFO(daemon->output());
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    // Every session of the process is named "orchestratord <session tag> <role>".
    REQUIRE(store.wait_until(
        [&] {
            return store.scalar("SELECT count(*) FROM " + store.schema() +
                                ".orchestratord_workers WHERE pid = " + std::to_string(daemon->pid())) == 1;
        },
        15s));
    const std::string pool_name =
        "orchestratord " +
        *store.db()
             .exec("SELECT session_tag FROM " + store.schema() + ".orchestratord_workers WHERE pid = $1",
                   {std::to_string(daemon->pid())})
             .at(0, 0) +
        " projections";
    int64_t most = 0;
    const int64_t total = store.head();
    REQUIRE(store.wait_until(
        [&] {
            most = std::max(most, store.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
                                               pool_name + "'"));
            // noop_4 has committed the batch with the last event (slices without
            // events only move on the periodic sweep).
            return store.recorded() == total &&
                   store.scalar("SELECT coalesce(max(position), 0) FROM " + store.schema() +
                                ".orchestratord_checkpoints WHERE projection = 'noop_4'") == total;
        },
        60s));
    INFO(daemon->output());
    CHECK(most >= 1);
    CHECK(most <= 2);
    CHECK_THAT(daemon->output(), Catch::Contains("connection pool for projections max_open=2"));
    stop_gracefully(*daemon);
    CHECK(store.scalar("SELECT count(DISTINCT global_position) FROM " + store.schema() + ".recorded") == total);
    CHECK(store.recorded() == total);
}

TEST_CASE("a plugin renamed into place takes over at a batch boundary after SIGHUP without losing or repeating events",
          "[event-path][reload]") {
    EventStoreFixture store("plugin_swap");
    TempDir plugins;
    std::filesystem::copy_file(FIXTURE_PLUGIN_DIR "/recorder.so", plugins.file("recorder.so"));
    store.append_each(500, 25);
    auto daemon = store.start_daemon(store.config_file(store.recorder(), 20), "daemon.log",
                                     {{"ORCHESTRATORD_PLUGINS_DIRECTORY", plugins.path()}});
    REQUIRE(store.wait_until([&] { return store.recorded() == 500; }, 30s));

    // Events keep coming while the new version is installed as documented:
    // copy under a temporary name, rename into place, SIGHUP.
    std::atomic<bool> appending{true};
    std::thread appender([&] {
        orchestratord::pg::BlockingConnection db(pg_url());
        for (int i = 0; i < 20 && appending; ++i) {
            append_events(db, store.schema(), 25, 25);
            std::this_thread::sleep_for(20ms);
        }
    });
    std::filesystem::copy_file(FIXTURE_PLUGIN_DIR "-v2/recorder.so", plugins.file(".recorder.so.new"));
    std::filesystem::rename(plugins.file(".recorder.so.new"), plugins.file("recorder.so"));
    daemon->signal(SIGHUP);
    INFO(daemon->output());
    REQUIRE(daemon->wait_for_output("now runs the new plugin version", 15s));
    appender.join();
    store.append_each(100, 25);  // certainly after the swap
    const int64_t total = store.head();
    REQUIRE(store.wait_until([&] { return store.recorded() == total; }, 30s));
    stop_gracefully(*daemon);

    CHECK(store.scalar("SELECT count(DISTINCT global_position) FROM " + store.schema() + ".recorded") == total);
    CHECK(store.recorded() == total);
    // The first 500 by the old version; the last 100 by the new one; one switch in between.
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() +
                       ".recorded WHERE global_position <= 500 AND metadata = 'v2'") == 0);
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() + ".recorded WHERE global_position > " +
                       std::to_string(total - 100) + " AND metadata IS DISTINCT FROM 'v2'") == 0);
    CHECK(store.scalar("SELECT count(*) FROM (SELECT metadata = 'v2' AS v2, lag(metadata = 'v2') OVER (ORDER BY id) "
                       "AS before FROM " +
                       store.schema() + ".recorded) s WHERE v2 IS DISTINCT FROM before AND before IS NOT NULL") == 1);
    CHECK_THAT(daemon->output(),
               Catch::Contains("switches to plugin recorder version 0.0.2 at its next batch boundary"));
}

TEST_CASE("the HTTP endpoints answer, and a busy address is reported without stopping the daemon",
          "[event-path][http]") {
    EventStoreFixture store("http");
    const std::string config = store.config_file(store.recorder());
    auto first = store.start_daemon(config, "first.log");
    REQUIRE(first->wait_for_output("ready;", 15s));
    const int port = logged_http_port(first->output());
    REQUIRE(port > 0);
    const auto health = http_get(port, "/healthz");
    CHECK(health.status == 200);
    CHECK(health.body == "ok\n");
    CHECK(http_get(port, "/nothing-here").status == 404);
    CHECK_THAT(http_get(port, "/metrics").body,
               Catch::Contains("# TYPE pupsourcing_orchestrator_reader_blocked_seconds gauge"));

    // A second daemon configured for the same address: an error naming it, and work goes on.
    std::string taken = read_file(config);
    const auto at = taken.find("127.0.0.1:0");
    REQUIRE(at != std::string::npos);
    taken.replace(at, std::string("127.0.0.1:0").size(), "127.0.0.1:" + std::to_string(port));
    // Not under systemd, where http.required would default to true.
    auto second =
        store.start_daemon(store.dir().write("taken.yaml", taken), "second.log", {{"NOTIFY_SOCKET", std::nullopt}});
    REQUIRE(second->wait_for_output("ready;", 15s));
    CHECK_THAT(second->output(),
               Catch::Contains("http.listen 127.0.0.1:" + std::to_string(port) + ": cannot listen there"));
    store.append_each(10, 5);
    REQUIRE(store.wait_until([&] { return store.recorded() >= 10; }, 15s));
    stop_gracefully(*second);
    stop_gracefully(*first);
}

TEST_CASE("a projection waiting to retry a failed batch lends its connection to the others", "[event-path][pool]") {
    EventStoreFixture store("backoff_pool");
    store.append_each(40, 20);
    // One connection for all projections (3 = membership + listener + 1); the
    // failing one waits 4 s before each retry.
    const std::string projections =
        "      - name: throws_non_standard\n        on_error: {policy: pause, max_attempts: 2, "
        "initial_backoff: 4s}\n" +
        store.recorder();
    auto daemon = store.start_daemon(
        store.config_file(projections), "daemon.log",
        {{"ORCHESTRATORD_DATABASE_MAX_OPEN_CONNS", "3"}, {"ORCHESTRATORD_DATABASE_MAX_IDLE_CONNS", "1"}});
    INFO(daemon->output());
    REQUIRE(daemon->wait_for_output("projection failed to handle a batch", 15s));
    const auto failed_at = std::chrono::steady_clock::now();
    // The recorder gets the connection during the back-off, not after it.
    REQUIRE(store.wait_until([&] { return store.recorded() == 40; }, 10s));
    CHECK(std::chrono::steady_clock::now() - failed_at < 3s);
    CHECK(daemon->output().find("attempt=2/2") == std::string::npos);  // still backing off
    stop_gracefully(*daemon);
}
