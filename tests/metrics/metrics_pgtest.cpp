// Every family of docs/metrics.md on a real daemon's /metrics, after it went
// through what each family counts: a start, batches, a handler error with a
// retry, a dead letter, a pause, a rebalance to a second worker and that
// worker's removal as stale after a SIGKILL.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "support/event_store_fixture.hpp"
#include "support/http_get.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

// A worker with short cluster timings: `recorder` dead-letters the event at
// position 7, `recorder_file` pauses at position 15.
std::string worker_config(EventStoreFixture& store, int worker) {
    const std::string name = "worker" + std::to_string(worker);
    return store.dir().write(
        name + ".yaml",
        "database: {url: '" + pg_url() + "'}\nevent_store: {schema: " + store.schema() +
            "}\nlogging: {level: debug}\nplugins: {directory: " FIXTURE_PLUGIN_DIR
            "}\nhttp: {listen: '127.0.0.1:0'}\nreplica_sets:\n  - name: test\n"
            "    heartbeat_interval: 200ms\n    stale_worker_timeout: 1s\n    coordination_timeout: 3s\n"
            "    batch_size: 10\n    poll_interval_max: 200ms\n    projections:\n"
            "      - name: recorder\n        config: {table: " +
            store.schema() +
            ".recorded, fail_position: 7}\n        on_error: {policy: dead-letter, max_attempts: 2, "
            "initial_backoff: 10ms, max_backoff: 20ms}\n"
            "      - name: recorder_file\n        config: {file: '" +
            store.dir().file(name + ".txt") +
            "', fail_position: 15}\n        on_error: {policy: pause, max_attempts: 2, initial_backoff: 10ms}\n");
}

// The families docs/metrics.md lists, with their types.
std::map<std::string, std::string> documented_families() {
    std::ifstream in(ORCHESTRATORD_SOURCE_DIR "/docs/metrics.md");
    static const std::regex row(R"(^\| `(pupsourcing_orchestrator_[a-z_]+)` \| ([a-z]+) \|)");
    std::map<std::string, std::string> families;
    std::string line;
    while (std::getline(in, line)) {
        std::smatch match;
        if (std::regex_search(line, match, row)) families[match[1].str()] = match[2].str();
    }
    return families;
}

// The sum of a family's samples whose labels contain `labels` (a histogram
// is summed over its _count samples): -1 when there is none.
double sum_of(const std::string& text, const std::string& family, const std::string& labels = "",
              const std::string& type = "gauge") {
    const std::string sample = type == "histogram" ? family + "_count" : family;
    std::istringstream in(text);
    std::string line;
    double sum = -1;
    while (std::getline(in, line)) {
        if (line.rfind(sample + "{", 0) != 0 && line.rfind(sample + " ", 0) != 0) continue;
        const auto close = line.find('}');
        const std::string label_text = close == std::string::npos ? "" : line.substr(0, close);
        if (label_text.find(labels) == std::string::npos) continue;
        sum = (sum < 0 ? 0 : sum) + std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
}

std::string scrape(int port) {
    return http_get(port, "/metrics").body;
}

}  // namespace

TEST_CASE("every documented metric family has samples and moves with what it counts", "[metrics]") {
    EventStoreFixture store("metrics");
    store.append(20, 20);
    const auto families = documented_families();
    REQUIRE(families.size() > 20);

    auto first = store.start_daemon(worker_config(store, 1), "worker1.log");
    REQUIRE(first->wait_for_output("ready;", 15s));
    const int port = logged_http_port(first->output());
    REQUIRE(port > 0);
    const std::string recorder = R"(projection="recorder",)";
    const std::string paused_one = R"(projection="recorder_file",)";

    // A batch, an error with a retry, a dead letter and a pause.
    REQUIRE(store.wait_until([&] { return store.recorded() == 19; }, 20s));
    REQUIRE(first->wait_for_output("dead-lettered an event", 20s));
    REQUIRE(first->wait_for_output("projection paused after repeated failures", 20s));
    // The sampled gauges follow within a sample interval or two.
    REQUIRE(store.wait_until(
        [&] {
            const std::string text = scrape(port);
            return sum_of(text, "pupsourcing_orchestrator_projection_lag_events", recorder) == 0 &&
                   sum_of(text, "pupsourcing_orchestrator_checkpoint_position", recorder) == 20 &&
                   sum_of(text, "pupsourcing_orchestrator_projection_lag_events", paused_one) == 6;
        },
        15s));
    std::string text = scrape(port);
    INFO(text);
    CHECK(sum_of(text, "pupsourcing_orchestrator_events_processed_total", recorder) == 20);
    CHECK(sum_of(text, "pupsourcing_orchestrator_events_processed_total", paused_one) == 14);
    CHECK(sum_of(text, "pupsourcing_orchestrator_projection_errors_total", recorder) >= 2);
    CHECK(sum_of(text, "pupsourcing_orchestrator_projection_retries_total", recorder) >= 1);
    CHECK(sum_of(text, "pupsourcing_orchestrator_dead_letters_total", recorder) == 1);
    CHECK(sum_of(text, "pupsourcing_orchestrator_dead_letters_total", paused_one) == 0);
    CHECK(sum_of(text, "pupsourcing_orchestrator_projection_paused", paused_one) == 1);
    CHECK(sum_of(text, "pupsourcing_orchestrator_projection_paused", recorder) == 0);
    CHECK(sum_of(text, "pupsourcing_orchestrator_head_position") == 20);
    CHECK(sum_of(text, "pupsourcing_orchestrator_checkpoint_position", paused_one) == 14);
    CHECK(sum_of(text, "pupsourcing_orchestrator_projection_lag_seconds", paused_one) >= 0);
    CHECK(sum_of(text, "pupsourcing_orchestrator_event_processing_duration_seconds", recorder, "histogram") >= 3);
    CHECK(sum_of(text, "pupsourcing_orchestrator_workers_registered_total") == 1);
    CHECK(sum_of(text, "pupsourcing_orchestrator_partition_assignments_total") == 64);
    CHECK(sum_of(text, "pupsourcing_orchestrator_slices_owned") == 64);
    CHECK(sum_of(text, "pupsourcing_orchestrator_current_generation_partitions") == 64);
    CHECK(sum_of(text, "pupsourcing_orchestrator_active_workers") == 1);
    CHECK(sum_of(text, "pupsourcing_orchestrator_worker_state", R"(state="running")") == 1);
    CHECK(sum_of(text, "pupsourcing_orchestrator_database_reachable") == 1);
    CHECK(sum_of(text, "pupsourcing_orchestrator_self_fenced") == 0);
    CHECK(sum_of(text, "pupsourcing_orchestrator_heartbeat_latency_seconds", "", "histogram") >= 1);
    CHECK(sum_of(text, "pupsourcing_orchestrator_coordination_duration_seconds", "", "histogram") >= 1);
    CHECK(sum_of(text, "pupsourcing_orchestrator_build_info", R"(abi="1.0")") == 1);
    CHECK(sum_of(text, "pupsourcing_orchestrator_plugin_info", R"(plugin="recorder",projection="recorder")") == 1);
    const double generations_alone = sum_of(text, "pupsourcing_orchestrator_generations_total");
    CHECK(generations_alone >= 1);

    // A rebalance: a second worker joins, the first follows a new generation
    // and hands half of the slices over.
    auto second = store.start_daemon(worker_config(store, 2), "worker2.log");
    REQUIRE(second->wait_for_output("ready;", 15s));
    REQUIRE(store.wait_until(
        [&] {
            const std::string now = scrape(port);
            return sum_of(now, "pupsourcing_orchestrator_active_workers") == 2 &&
                   sum_of(now, "pupsourcing_orchestrator_slices_owned") == 32;
        },
        20s));
    CHECK(sum_of(scrape(port), "pupsourcing_orchestrator_reconfiguration_total") >= 1);

    // A stale worker: SIGKILL the second; the first removes it and takes
    // every slice back.
    second->signal(SIGKILL);
    REQUIRE(second->wait(10s));
    REQUIRE(store.wait_until(
        [&] {
            const std::string now = scrape(port);
            return sum_of(now, "pupsourcing_orchestrator_stale_workers_cleaned_total") == 1 &&
                   sum_of(now, "pupsourcing_orchestrator_slices_owned") == 64 &&
                   sum_of(now, "pupsourcing_orchestrator_active_workers") == 1;
        },
        20s));
    text = scrape(port);
    CHECK(sum_of(text, "pupsourcing_orchestrator_reconfiguration_total") >= 2);
    CHECK(sum_of(text, "pupsourcing_orchestrator_generations_total") > generations_alone);
    CHECK(sum_of(text, "pupsourcing_orchestrator_partition_assignments_total") > 64);

    // Every documented family has a sample, and every counter has counted.
    for (const auto& [family, type] : families) {
        INFO(family << " (" << type << ")");
        const double value = sum_of(text, family, "", type);
        CHECK(value >= 0);
        if (type == "counter") CHECK(value > 0);
    }
    stop_gracefully(*first);
}
