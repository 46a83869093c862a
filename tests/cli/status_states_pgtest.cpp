// `orchestratord status` says what a projection is doing as the database
// shows it: never started, running, not running once its only worker is
// gone (killed, its heartbeat stale), and the database being unreachable is
// one line (or a JSON error object).
#include <signal.h>
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <string>

#include "support/event_store_fixture.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

// A worker with a short stale timeout, running `projections` (YAML list items).
std::string worker_config(EventStoreFixture& store, const std::string& name, const std::string& projections,
                          int batch_size = 100) {
    return store.dir().write(name, "database: {url: '" + pg_url() + "'}\nevent_store: {schema: " + store.schema() +
                                       "}\nplugins: {directory: " FIXTURE_PLUGIN_DIR
                                       "}\nhttp: {listen: '127.0.0.1:0'}\nreplica_sets:\n  - name: test\n"
                                       "    heartbeat_interval: 200ms\n    stale_worker_timeout: 1s\n"
                                       "    poll_interval_max: 200ms\n    batch_size: " +
                                       std::to_string(batch_size) + "\n    projections:\n" + projections);
}

nlohmann::json status_json(const std::string& config) {
    const auto status = run_command({ORCHESTRATORD_BIN, "status", "--json", "--config", config});
    INFO(status.output);
    REQUIRE(status.status.code == 0);
    return nlohmann::json::parse(status.output);
}

std::string state_of(const nlohmann::json& report, const std::string& projection) {
    for (const auto& entry : report["replica_sets"][0]["projections"]) {
        if (entry["name"] == projection) return entry["state"];
    }
    return "(absent)";
}

}  // namespace

TEST_CASE("status: never started, running, and not running once the only worker was killed", "[status]") {
    EventStoreFixture store("status_states");
    const std::string recorder = store.recorder();
    const std::string running = worker_config(store, "worker.yaml", recorder);
    // What the operator's status sees: one more projection, which no worker runs.
    const std::string file = store.dir().file("file.txt");
    const std::string seen = worker_config(
        store, "status.yaml", recorder + "      - name: recorder_file\n        config: {file: '" + file + "'}\n");
    auto daemon = store.start_daemon(running);
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    store.append(20, 20);
    REQUIRE(store.wait_until([&] { return store.recorded() == 20; }, 15s));

    nlohmann::json report;
    REQUIRE(store.wait_until(
        [&] {
            report = status_json(seen);
            return state_of(report, "recorder") == "running";
        },
        10s));
    CHECK(state_of(report, "recorder_file") == "never started");

    daemon->signal(SIGKILL);
    REQUIRE(daemon->wait(10s));
    // Its heartbeat turns stale after 1 s; no other worker removes it.
    const bool stale = store.wait_until(
        [&] {
            report = status_json(seen);
            return state_of(report, "recorder") == "not running";
        },
        10s);
    INFO(report.dump(2));
    CHECK(stale);
    CHECK(report["replica_sets"][0]["workers"][0]["stale"] == true);
    CHECK(state_of(report, "recorder_file") == "never started");

    const auto text = run_command({ORCHESTRATORD_BIN, "status", "--config", seen});
    INFO(text.output);
    CHECK_THAT(text.output, Catch::Contains("0 live worker(s)"));
    CHECK_THAT(text.output, Catch::Contains("stale, removed when a live worker coordinates"));
    CHECK_THAT(text.output, Catch::Contains("not running"));
    CHECK_THAT(text.output, !Catch::Contains("handoff in progress"));
}

TEST_CASE("status: an unreachable database is one line, or a JSON error object", "[status]") {
    EventStoreFixture store("status_unreachable");
    const std::string config = worker_config(store, "worker.yaml", store.recorder());
    const std::map<std::string, std::optional<std::string>> unreachable{
        {"DATABASE_URL", "postgres://app@127.0.0.1:1/db"}};

    const auto text = run_command({ORCHESTRATORD_BIN, "status", "--config", config}, unreachable);
    INFO(text.output);
    CHECK(text.status.code == 1);
    CHECK_THAT(text.output, Catch::StartsWith("status failed: "));
    CHECK_THAT(text.output, Catch::Contains("Connection refused"));
    CHECK(text.output.find('\n') == text.output.size() - 1);  // one line

    const auto json = run_command({ORCHESTRATORD_BIN, "status", "--json", "--config", config}, unreachable);
    INFO(json.output);
    CHECK(json.status.code == 1);
    const auto error = nlohmann::json::parse(json.output);
    CHECK_THAT(error["error"].get<std::string>(), Catch::Contains("Connection refused"));
}

TEST_CASE("the progress line of a projection catching up gives the time left", "[status][progress]") {
    EventStoreFixture store("progress_eta");
    // 40 ms per batch of 10: the first read of 2,000 events takes about 8 s,
    // so the first progress line (5 s after the start, between reads) comes
    // while 2,000 more wait.
    const std::string config = worker_config(store, "worker.yaml", store.recorder("recorder", ", delay_ms: 40"), 10);
    store.append(4000, 4000);
    auto daemon = store.start_daemon(config);
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    const bool estimated = daemon->wait_for_output("eta_s=", 30s);
    INFO(daemon->output());
    REQUIRE(estimated);
    const std::string output = daemon->output();
    const size_t line_start = output.rfind('\n', output.find("eta_s=")) + 1;
    const std::string line = output.substr(line_start, output.find('\n', line_start) - line_start);
    INFO(line);
    CHECK_THAT(line, Catch::Contains("projection progress"));
    const long eta = std::stol(line.substr(line.find("eta_s=") + 6));
    CHECK(eta >= 0);
    CHECK(eta < 60);
}

TEST_CASE("status: a projection whose batches fail is retrying, with the tries and the last error, until one succeeds",
          "[status][retrying]") {
    EventStoreFixture store("status_retrying");
    // The first three handler calls fail, a second apart; then all succeed.
    const std::string projection = "      - name: recorder\n        config: {table: " + store.schema() +
                                   ".recorded, fail_batches: 3}\n        on_error: {policy: pause, max_attempts: 10, "
                                   "initial_backoff: 1s, max_backoff: 1s}\n";
    const std::string config = worker_config(store, "worker.yaml", projection);
    auto daemon = store.start_daemon(config);
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    store.append(5, 5);

    nlohmann::json retrying;
    REQUIRE(store.wait_until(
        [&] {
            const auto report = status_json(config);
            for (const auto& entry : report["replica_sets"][0]["projections"]) {
                if (entry["name"] == "recorder" && entry["state"] == "retrying") retrying = entry;
            }
            return !retrying.is_null();
        },
        15s));
    INFO(retrying.dump(2));
    CHECK(retrying["failed_tries"].get<int64_t>() >= 1);
    CHECK_THAT(retrying["last_error"].get<std::string>(), Catch::Contains("on purpose"));
    const auto text = run_command({ORCHESTRATORD_BIN, "status", "--config", config});
    CHECK_THAT(text.output, Catch::Contains("tries failed in a row, last error: ") ||
                                Catch::Contains("running"));  // it may have recovered in between

    REQUIRE(store.wait_until([&] { return store.recorded() == 5; }, 20s));
    nlohmann::json recovered;
    REQUIRE(store.wait_until(
        [&] {
            recovered = status_json(config);
            return state_of(recovered, "recorder") == "running";
        },
        10s));
    CHECK(recovered["replica_sets"][0]["projections"][0]["failed_tries"] == 0);
    CHECK(recovered["replica_sets"][0]["projections"][0]["last_error"] == "");
}
