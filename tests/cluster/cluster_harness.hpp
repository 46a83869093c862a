#pragma once
// Several real orchestratord processes forming one cluster over the
// throwaway PostgreSQL, with short timings (200ms heartbeat, 1s stale, 3s
// coordination timeout), two projections per worker and a background
// appender. Each worker runs:
//   - recorder (transactional): one row per event in <schema>.recorded,
//     committed with the checkpoint, so exactly-once can be checked;
//   - recorder_file (at-least-once): one line per event in worker<i>.txt.
#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "support/event_store_fixture.hpp"
#include "support/stop_gracefully.hpp"

namespace orchestratord::test {

using namespace std::chrono_literals;

constexpr auto kHeartbeat = 200ms;
constexpr auto kStale = 1000ms;
constexpr auto kCoordination = 3000ms;
constexpr int kSlices = 64;

// Appends a few events every few milliseconds on its own connection until
// stopped, so every scenario runs while the stream grows.
class Appender {
public:
    Appender(const std::string& schema, int per_tick = 10, std::chrono::milliseconds every = 20ms)
        : schema_(schema), per_tick_(per_tick), every_(every), thread_([this] { run(); }) {}
    ~Appender() { stop(); }
    void stop() {
        running_ = false;
        if (thread_.joinable()) thread_.join();
    }

private:
    void run() {
        pg::BlockingConnection db(pg_url());
        while (running_) {
            try {
                append_events(db, schema_, per_tick_, 40);
            } catch (const std::exception&) {
                // PostgreSQL restarting: reconnect and go on.
                std::this_thread::sleep_for(100ms);
                try {
                    db = pg::BlockingConnection(pg_url());
                } catch (const std::exception&) {
                }
            }
            std::this_thread::sleep_for(every_);
        }
    }
    std::string schema_;
    int per_tick_;
    std::chrono::milliseconds every_;
    std::atomic<bool> running_{true};
    std::thread thread_;
};

struct SliceState {
    std::string owner;
    std::string target;
    int64_t epoch = 0;
};

class ClusterHarness {
public:
    explicit ClusterHarness(const std::string& label, int delay_ms = 0) : store_(label), delay_ms_(delay_ms) {}

    EventStoreFixture& store() { return store_; }
    const std::string& schema() const { return store_.schema(); }

    // Batches of this worker take `ms` longer (a slow projection).
    void set_delay(int worker, int ms) { delays_[worker] = ms; }
    // More settings for this worker's transactional recorder: `config` goes
    // into its config mapping (", key: value" pairs), `on_error` is its
    // on_error mapping (e.g. "{initial_backoff: 4s}").
    void set_recorder(int worker, const std::string& config, const std::string& on_error) {
        recorder_config_[worker] = config;
        recorder_on_error_[worker] = on_error;
    }

    std::string config(int worker) const {
        const int delay = delays_.count(worker) > 0 ? delays_.at(worker) : delay_ms_;
        const std::string& schema = store_.schema();
        return store_.dir().write(
            "worker" + std::to_string(worker) + ".yaml",
            "database: {url: '" + pg_url() + "'}\nevent_store: {schema: " + schema +
                "}\nlogging: {level: debug}\nplugins: {directory: " FIXTURE_PLUGIN_DIR
                "}\nhttp: {listen: '127.0.0.1:0'}\nreplica_sets:\n  - name: test\n    "
                "heartbeat_interval: 200ms\n    stale_worker_timeout: 1s\n"
                "    coordination_timeout: 3s\n    batch_size: 50\n    poll_interval_max: 200ms\n"
                "    projections:\n      - name: recorder\n        config: {table: " +
                schema + ".recorded, delay_ms: " + std::to_string(delay) + setting_of(recorder_config_, worker) +
                "}\n" +
                (recorder_on_error_.count(worker) > 0 ? "        on_error: " + recorder_on_error_.at(worker) + "\n"
                                                      : std::string()) +
                "      - name: recorder_file\n        config: {file: '" + file_of(worker) + "'}\n");
    }
    static std::string setting_of(const std::map<int, std::string>& settings, int worker) {
        const auto found = settings.find(worker);
        return found == settings.end() ? std::string() : found->second;
    }
    std::string file_of(int worker) const { return store_.dir().file("worker" + std::to_string(worker) + ".txt"); }

    ChildProcess& start(int worker) {
        auto& slot = workers_[worker];
        slot = store_.start_daemon(config(worker),
                                   "worker" + std::to_string(worker) + "." + std::to_string(++starts_) + ".log");
        return *slot;
    }
    ChildProcess& worker(int index) { return *workers_.at(index); }
    bool running(int index) const { return workers_.count(index) > 0 && workers_.at(index) != nullptr; }

    // SIGTERM and wait for a clean exit.
    void stop(int worker) {
        stop_gracefully(*workers_.at(worker));
        workers_.erase(worker);
    }
    void kill(int worker) {
        auto& process = *workers_.at(worker);
        process.signal(SIGKILL);
        REQUIRE(process.wait(10s));
        workers_.erase(worker);
    }

    std::map<int32_t, SliceState> slices() {
        const auto rows = store_.db().exec(
            "SELECT slice, coalesce(owner::text, ''), coalesce(target_owner::text, ''), "
            "epoch FROM " +
            schema() + ".orchestratord_slices WHERE replica_set = 'test'");
        std::map<int32_t, SliceState> out;
        for (int64_t i = 0; i < rows.rows; ++i) {
            out[std::stoi(*rows.at(i, 0))] = {*rows.at(i, 1), *rows.at(i, 2), std::stoll(*rows.at(i, 3))};
        }
        return out;
    }
    int64_t live_workers() {
        return store_.scalar("SELECT count(*) FROM " + schema() + ".orchestratord_workers WHERE replica_set = 'test'");
    }
    int64_t generation() {
        return store_.scalar("SELECT generation FROM " + schema() + ".orchestratord_replica_sets WHERE name = 'test'");
    }

    // Every slice owned by a registered worker that is also its target, by
    // exactly `workers` workers whose shares differ by at most one.
    bool converged(int workers) {
        if (live_workers() != workers) return false;
        const int64_t owned_by_live = store_.scalar(
            "SELECT count(*) FROM " + schema() + ".orchestratord_slices s JOIN " + schema() +
            ".orchestratord_workers w ON w.replica_set = s.replica_set AND w.id = s.owner WHERE s.replica_set = "
            "'test' AND s.owner = s.target_owner");
        if (owned_by_live != kSlices) return false;
        const auto counts = shares();
        if (static_cast<int>(counts.size()) != workers) return false;
        return counts.front() - counts.back() <= 1;
    }
    // Slices per owner, largest first.
    std::vector<int64_t> shares() {
        std::map<std::string, int64_t> per_owner;
        for (const auto& [slice, state] : slices()) {
            if (!state.owner.empty()) ++per_owner[state.owner];
        }
        std::vector<int64_t> counts;
        for (const auto& [owner, count] : per_owner) counts.push_back(count);
        std::sort(counts.rbegin(), counts.rend());
        return counts;
    }
    bool wait_converged(int workers, std::chrono::milliseconds timeout = 15s) {
        return store_.wait_until([&] { return converged(workers); }, timeout);
    }

    int64_t events() { return store_.scalar("SELECT count(*) FROM " + schema() + ".events"); }
    int64_t recorded_distinct() {
        return store_.scalar("SELECT count(DISTINCT global_position) FROM " + schema() + ".recorded");
    }
    // How many times each position was handled by the at-least-once projection, over every worker's file.
    std::map<int64_t, int> file_deliveries() {
        std::map<int64_t, int> seen;
        for (int worker = 0; worker < 16; ++worker) count_file_deliveries(file_of(worker), seen);
        return seen;
    }
    // Waits until both projections have handled every appended event.
    bool wait_all_handled(std::chrono::milliseconds timeout = 60s) {
        const int64_t total = events();
        return store_.wait_until(
            [&] { return recorded_distinct() == total && static_cast<int64_t>(file_deliveries().size()) == total; },
            timeout);
    }

    // The transactional projection applied every event exactly once and each
    // aggregate's events in order; the at-least-once one missed none.
    // Returns how many deliveries the at-least-once projection repeated.
    int64_t check_delivery() {
        const int64_t total = events();
        REQUIRE(wait_all_handled());
        CHECK(store_.scalar("SELECT count(*) FROM " + schema() + ".recorded") == total);
        CHECK(recorded_distinct() == total);
        const auto rows = store_.db().exec("SELECT aggregate_id, aggregate_version, global_position FROM " + schema() +
                                           ".recorded ORDER BY id");
        std::map<std::string, int64_t> last_version;
        int64_t out_of_order = 0;
        for (int64_t i = 0; i < rows.rows; ++i) {
            const int64_t version = std::stoll(*rows.at(i, 1));
            if (version <= last_version[*rows.at(i, 0)]) ++out_of_order;
            last_version[*rows.at(i, 0)] = version;
        }
        CHECK(out_of_order == 0);
        const auto seen = file_deliveries();
        CHECK(static_cast<int64_t>(seen.size()) == total);
        int64_t repeated = 0;
        for (const auto& [position, times] : seen) repeated += times - 1;
        return repeated;
    }

    // Ownership history: for every slice, each owner's tenure ended before the
    // next one began (no slice was ever owned by two workers at once).
    void check_never_owned_twice() {
        const auto rows = store_.db().exec(
            "SELECT count(*) FROM (SELECT released_at, lead(acquired_at) OVER (PARTITION BY slice ORDER BY epoch) AS "
            "next_acquired, lead(epoch) OVER (PARTITION BY slice ORDER BY epoch) AS next_epoch FROM " +
            schema() +
            ".orchestratord_slice_history WHERE replica_set = 'test') h WHERE next_epoch IS NOT NULL AND "
            "(released_at IS NULL OR released_at > next_acquired)");
        CHECK(*rows.at(0, 0) == "0");
        CHECK(store_.scalar("SELECT count(*) FROM " + schema() + ".orchestratord_slice_history") >= kSlices);
    }

private:
    EventStoreFixture store_;
    int delay_ms_;
    std::map<int, int> delays_;
    std::map<int, std::string> recorder_config_;
    std::map<int, std::string> recorder_on_error_;
    std::map<int, std::unique_ptr<ChildProcess>> workers_;
    int starts_ = 0;
};

}  // namespace orchestratord::test
