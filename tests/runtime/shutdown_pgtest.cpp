// Stopping a daemon that is waiting: for an application transaction that
// stays open, or for a projection handler that never returns. A stop ends
// every wait at once, releases the slices and exits cleanly; a hung handler
// stalls only its own projection and cannot hold the process hostage.
#include <catch2/catch.hpp>

#include <csignal>

#include "support/event_store_fixture.hpp"
#include "support/http_get.hpp"
#include "support/measure.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

// Polls /metrics until `metric` is above 0; false after `timeout`.
bool wait_for_metric(EventStoreFixture& store, int port, const std::string& metric, std::chrono::milliseconds timeout) {
    return store.wait_until([&] { return metric_value(http_get(port, "/metrics").body, metric) > 0; }, timeout);
}

}  // namespace

TEST_CASE("a stop while the reader waits for an open writer ends at once and cleanly, every time",
          "[shutdown][late-commit]") {
    EventStoreFixture store("stop_waiting");
    const std::string config = store.config_file(store.recorder(), 10);
    const std::string insert = "INSERT INTO " + store.schema() +
                               ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, "
                               "event_type, payload) VALUES ('test', 'Thing', $1, 1, gen_random_uuid(), 'T', '\\x00')";
    const std::string blocked =
        "pupsourcing_orchestrator_reader_blocked_seconds{projection=\"recorder\",replica_set=\"test\"}";
    for (int run = 0; run < 20; ++run) {
        INFO("run " << run);
        auto daemon = store.start_daemon(config, "daemon" + std::to_string(run) + ".log");
        REQUIRE(daemon->wait_for_output("ready;", 15s));
        const int port = logged_http_port(daemon->output());
        REQUIRE(port > 0);
        // An application transaction holds a position open; a later one commits.
        orchestratord::pg::BlockingConnection open_writer(pg_url());
        open_writer.exec("BEGIN");
        open_writer.exec(insert, {"open-" + std::to_string(run)});
        store.db().exec(insert, {"after-" + std::to_string(run)});
        REQUIRE(wait_for_metric(store, port, blocked, 20s));

        const auto stopped_at = std::chrono::steady_clock::now();
        daemon->signal(SIGTERM);
        const auto status = daemon->wait(20s);
        const double took = seconds_since(stopped_at);
        INFO(daemon->output());
        REQUIRE(status);
        CHECK(status->exited);  // not killed by SIGABRT/SIGSEGV
        CHECK(status->code == 0);
        // The default coordination_timeout is 60 s: the stop did not wait for the writer.
        CHECK(took < 5.0);
        CHECK_THAT(daemon->output(), Catch::Contains("worker unregistered"));
        CHECK_THAT(daemon->output(), !Catch::Contains("coordination timeout"));
        open_writer.exec("ROLLBACK");
    }
}

TEST_CASE("a handler that never returns stalls only its projection, is reported, and cannot hold up the stop",
          "[shutdown][hung-handler]") {
    EventStoreFixture store("hung_handler");
    const std::string file = store.dir().file("file.txt");
    // Two projections hang (more than the old shared pool of two handler
    // threads), the third must keep going.
    const std::string projections = "      - name: recorder\n        config: {table: " + store.schema() +
                                    ".recorded, hang_position: 3}\n        slow_handler_after: 1s\n"
                                    "      - name: recorder_scoped\n        config: {table: " +
                                    store.schema() + ".recorded, hang_position: 6}\n        slow_handler_after: 1s\n" +
                                    "      - name: recorder_file\n        config: {file: '" + file + "'}\n";
    store.append(5, 5);                                        // positions 1-5
    store.append(5, 5, "UserRegistered", "User", "identity");  // positions 6-10
    auto daemon =
        store.start_daemon(store.config_file(projections, 10), "daemon.log", {{"COORDINATION_TIMEOUT", "3s"}});
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    REQUIRE(store.wait_until([&] { return lines_in(file) == 10; }, 15s));
    // Still moving while both others hang.
    store.append_each(20, 5);
    REQUIRE(store.wait_until([&] { return lines_in(file) == 30; }, 15s));

    INFO(daemon->output());
    REQUIRE(daemon->wait_for_output("projection handler still running", 15s));
    CHECK_THAT(daemon->output(), Catch::Contains("projection=recorder ") && Catch::Contains("first_position=1"));
    const int port = logged_http_port(daemon->output());
    REQUIRE(port > 0);
    CHECK(wait_for_metric(
        store, port, "pupsourcing_orchestrator_handler_running_seconds{projection=\"recorder\",replica_set=\"test\"}",
        10s));

    const auto stopped_at = std::chrono::steady_clock::now();
    daemon->signal(SIGTERM);
    const auto status = daemon->wait(30s);
    const double took = seconds_since(stopped_at);
    REQUIRE(status);
    CHECK(status->exited);
    CHECK(status->code == 0);
    // coordination_timeout (3 s) for the batches, a few seconds to leave the cluster.
    CHECK(took < 10.0);
    CHECK_THAT(daemon->output(),
               Catch::Contains("exiting without waiting for a projection handler that did not return"));
    CHECK_THAT(daemon->output(), Catch::Contains("worker unregistered"));
    // Its slices are free for the next owner.
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() + ".orchestratord_slices WHERE owner IS NOT NULL") ==
          0);
}

TEST_CASE("a hung at-least-once handler holds no pool connection: the others go on with a pool of one",
          "[shutdown][hung-handler]") {
    EventStoreFixture store("hung_pool_of_one");
    const std::string file = store.dir().file("file.txt");
    const std::string projections =
        store.recorder() + "      - name: recorder_file\n        config: {file: '" + file + "', hang_position: 5}\n";
    store.append(10, 10);
    // 3 = one for cluster membership, one for the NOTIFY listener, one for both projections.
    auto daemon = store.start_daemon(
        store.config_file(projections, 10), "daemon.log",
        {{"ORCHESTRATORD_DATABASE_MAX_OPEN_CONNS", "3"}, {"ORCHESTRATORD_DATABASE_MAX_IDLE_CONNS", "1"}});
    INFO(daemon->output());
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    REQUIRE(store.wait_until([&] { return store.recorded() == 10; }, 15s));
    store.append_each(10, 5);
    REQUIRE(store.wait_until([&] { return store.recorded() == 20; }, 15s));
    CHECK(lines_in(file) == 0);  // the hung one is still in its first batch
    daemon->signal(SIGKILL);
    daemon->wait(10s);
}

TEST_CASE("a second stop signal ends the process at once, even with a handler that never returns",
          "[shutdown][hung-handler]") {
    EventStoreFixture store("second_signal");
    const std::string projections =
        "      - name: recorder\n        config: {table: " + store.schema() + ".recorded, hang_position: 2}\n";
    store.append(5, 5);
    // The daemon's batch transaction is open (its handler hangs inside it);
    // the projections' sessions carry the daemon's session tag.
    auto hung_batch_open = [&](const ChildProcess& daemon) {
        const std::string output = daemon.output();
        const auto at = output.find("session_tag=");
        if (at == std::string::npos) return false;
        const std::string tag = output.substr(at + 12, output.find_first_of(" \n", at + 12) - at - 12);
        return store.wait_until(
            [&] {
                return store.scalar(
                           "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND "
                           "application_name = 'orchestratord " +
                           tag + " projections'") > 0;
            },
            15s);
    };

    SECTION("during the drain") {
        auto daemon = store.start_daemon(store.config_file(projections, 10));
        REQUIRE(daemon->wait_for_output("ready;", 15s));
        REQUIRE(hung_batch_open(*daemon));
        daemon->signal(SIGTERM);
        REQUIRE(daemon->wait_for_output("stopping gracefully", 5s));
        const auto second_at = std::chrono::steady_clock::now();
        daemon->signal(SIGINT);
        const auto status = daemon->wait(5s);
        INFO(daemon->output());
        REQUIRE(status);
        CHECK(seconds_since(second_at) < 2.0);
        CHECK_THAT(daemon->output(), Catch::Contains("got a second stop signal"));
    }
    SECTION("after the drain timed out") {
        auto daemon =
            store.start_daemon(store.config_file(projections, 10), "daemon.log", {{"COORDINATION_TIMEOUT", "2s"}});
        REQUIRE(daemon->wait_for_output("ready;", 15s));
        REQUIRE(hung_batch_open(*daemon));
        daemon->signal(SIGTERM);
        REQUIRE(daemon->wait_for_output("projections did not finish their batches in time", 10s));
        // Whatever the process does now, it must not outlive a second signal.
        daemon->signal(SIGINT);
        const auto status = daemon->wait(8s);
        INFO(daemon->output());
        REQUIRE(status);
    }
}
