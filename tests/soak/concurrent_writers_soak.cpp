// Soaks: real daemons over the throwaway PostgreSQL while several writer
// connections append the way applications do (concurrent transactions held
// open, rollbacks, two-phase commit). Afterwards every committed event must
// have been handled: exactly once by the transactional projections (scoped
// and unscoped), at least once by the at-least-once one, each aggregate in
// version order. A fixed seed (SOAK_SEED overrides it) is printed with a
// one-line summary, so a failure can be replayed.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>

#include "soak/concurrent_writers.hpp"
#include "support/event_store_fixture.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

uint32_t soak_seed() {
    const char* value = std::getenv("SOAK_SEED");
    return value != nullptr ? static_cast<uint32_t>(std::strtoul(value, nullptr, 10)) : 20261202u;
}

// How long the writers run in each soak (SOAK_SECONDS overrides it).
std::chrono::milliseconds soak_duration(std::chrono::milliseconds fallback) {
    const char* value = std::getenv("SOAK_SECONDS");
    return value != nullptr ? std::chrono::milliseconds(std::atol(value) * 1000) : fallback;
}

// A worker of replica set "test" running three projections: recorder
// (transactional, all events), recorder_scoped (transactional, User events
// only) and recorder_file (at-least-once, one file per worker).
class SoakCluster {
public:
    SoakCluster(const std::string& label, bool notify_trigger) : store_(label, notify_trigger) {
        store_.db().exec("CREATE TABLE " + store_.schema() + ".recorded_scoped (LIKE " + store_.schema() +
                         ".recorded INCLUDING ALL)");
    }
    EventStoreFixture& store() { return store_; }
    const std::string& schema() const { return store_.schema(); }

    std::string file_of(int worker) const { return store_.dir().file("worker" + std::to_string(worker) + ".txt"); }

    ChildProcess& start(int worker) {
        const std::string& schema = store_.schema();
        const std::string config = store_.dir().write(
            "worker" + std::to_string(worker) + ".yaml",
            "database: {url: '" + pg_url() + "'}\nevent_store: {schema: " + schema +
                "}\nlogging: {level: info}\nplugins: {directory: " FIXTURE_PLUGIN_DIR
                "}\nhttp: {listen: '127.0.0.1:0'}\nreplica_sets:\n  - name: test\n"
                "    heartbeat_interval: 200ms\n    stale_worker_timeout: 1s\n    coordination_timeout: 3s\n"
                "    batch_size: 20\n    poll_interval_max: 100ms\n    projections:\n"
                "      - name: recorder\n        config: {table: " +
                schema + ".recorded}\n      - name: recorder_scoped\n        config: {table: " + schema +
                ".recorded_scoped}\n      - name: recorder_file\n        config: {file: '" + file_of(worker) + "'}\n");
        auto& slot = workers_[worker];
        slot =
            store_.start_daemon(config, "worker" + std::to_string(worker) + "." + std::to_string(++starts_) + ".log");
        REQUIRE(slot->wait_for_output("ready;", 20s));
        return *slot;
    }
    void stop_all() {
        for (auto& [index, worker] : workers_) stop_gracefully(*worker);
        workers_.clear();
    }
    void kill(int worker) {
        workers_.at(worker)->signal(SIGKILL);
        REQUIRE(workers_.at(worker)->wait(10s));
        workers_.erase(worker);
    }
    ChildProcess& worker(int index) { return *workers_.at(index); }

    int64_t scalar(const std::string& sql) { return store_.scalar(sql); }

    struct Tally {
        int64_t events = 0;
        int64_t missing = 0;     // over the three projections
        int64_t duplicates = 0;  // over the two transactional projections
        int64_t repeated_at_least_once = 0;
        int64_t out_of_order = 0;
    };

    // Waits until every projection has caught up with the head (or the
    // timeout passed), then counts what is missing, repeated or out of order.
    Tally tally(std::chrono::milliseconds timeout = 60s) {
        const std::string& s = schema();
        const int64_t events = scalar("SELECT count(*) FROM " + s + ".events");
        const int64_t scoped = scalar("SELECT count(*) FROM " + s + ".events WHERE aggregate_type = 'User'");
        auto file_positions = [&] {
            std::map<int64_t, int> seen;
            for (int worker = 0; worker < 8; ++worker) count_file_deliveries(file_of(worker), seen);
            return seen;
        };
        store_.wait_until(
            [&] {
                return scalar("SELECT count(DISTINCT global_position) FROM " + s + ".recorded") == events &&
                       scalar("SELECT count(DISTINCT global_position) FROM " + s + ".recorded_scoped") == scoped &&
                       static_cast<int64_t>(file_positions().size()) == events;
            },
            timeout);
        Tally tally;
        tally.events = events;
        tally.missing = scalar("SELECT count(*) FROM " + s + ".events e WHERE NOT EXISTS (SELECT 1 FROM " + s +
                               ".recorded r WHERE r.global_position = e.global_position)") +
                        scalar("SELECT count(*) FROM " + s +
                               ".events e WHERE e.aggregate_type = 'User' AND NOT EXISTS (SELECT 1 "
                               "FROM " +
                               s + ".recorded_scoped r WHERE r.global_position = e.global_position)");
        const auto seen = file_positions();
        const auto all = store_.db().exec("SELECT global_position FROM " + s + ".events");
        for (int64_t i = 0; i < all.rows; ++i) {
            if (seen.count(std::stoll(*all.at(i, 0))) == 0) ++tally.missing;
        }
        for (const auto& [position, times] : seen) tally.repeated_at_least_once += times - 1;
        for (const char* table : {"recorded", "recorded_scoped"}) {
            tally.duplicates += scalar("SELECT count(*) - count(DISTINCT global_position) FROM " + s + "." + table);
            // Applied in version order per aggregate: the order of the rows
            // (id) and of the versions agree.
            tally.out_of_order += scalar(
                "SELECT count(*) FROM (SELECT aggregate_version, lag(aggregate_version) OVER (PARTITION BY "
                "aggregate_id ORDER BY id) AS previous FROM " +
                s + "." + table + ") x WHERE previous IS NOT NULL AND aggregate_version <= previous");
        }
        return tally;
    }

private:
    EventStoreFixture store_;
    std::map<int, std::unique_ptr<ChildProcess>> workers_;
    int starts_ = 0;
};

void print_summary(const std::string& name, uint32_t seed, const ConcurrentWriters& writers, int64_t faults,
                   const SoakCluster::Tally& tally) {
    std::printf(
        "soak: %s seed=%u events=%lld rolled_back_tx=%lld prepared_tx=%lld faults=%lld missing=%lld duplicates=%lld "
        "at_least_once_repeats=%lld out_of_order=%lld\n",
        name.c_str(), seed, static_cast<long long>(tally.events), static_cast<long long>(writers.rolled_back()),
        static_cast<long long>(writers.prepared()), static_cast<long long>(faults),
        static_cast<long long>(tally.missing), static_cast<long long>(tally.duplicates),
        static_cast<long long>(tally.repeated_at_least_once), static_cast<long long>(tally.out_of_order));
    std::fflush(stdout);
}

void soak_workers(int workers, const std::string& label) {
    const uint32_t seed = soak_seed();
    INFO("replay with SOAK_SEED=" << seed);
    SoakCluster cluster(label, true);
    for (int w = 0; w < workers; ++w) cluster.start(w);
    ConcurrentWriters writers(cluster.schema(), seed);
    std::this_thread::sleep_for(soak_duration(20s));
    writers.stop();
    const auto tally = cluster.tally();
    print_summary(label, seed, writers, 0, tally);
    cluster.stop_all();
    CHECK(writers.rolled_back() > 0);
    CHECK(tally.events > 1000);
    CHECK(tally.missing == 0);
    CHECK(tally.duplicates == 0);
    CHECK(tally.out_of_order == 0);
    // No faults: nothing is handed over mid-batch, so nothing repeats.
    CHECK(tally.repeated_at_least_once == 0);
}

}  // namespace

TEST_CASE("soak: one worker misses nothing while concurrent writers hold transactions open and roll back", "[soak]") {
    soak_workers(1, "soak_one");
}

TEST_CASE("soak: three workers miss nothing while concurrent writers hold transactions open and roll back", "[soak]") {
    soak_workers(3, "soak_three");
}

TEST_CASE("soak: two-phase commit writers are waited for, never skipped", "[soak]") {
    const uint32_t seed = soak_seed();
    INFO("replay with SOAK_SEED=" << seed);
    // No NOTIFY trigger: PostgreSQL refuses to PREPARE a transaction that sent NOTIFY.
    SoakCluster cluster("soak_2pc", false);
    cluster.start(0);
    WriterOptions options;
    options.two_phase_percent = 40;
    ConcurrentWriters writers(cluster.schema(), seed, options);
    std::this_thread::sleep_for(soak_duration(12s));
    writers.stop();
    const auto tally = cluster.tally();
    print_summary("soak_2pc", seed, writers, 0, tally);
    cluster.stop_all();
    CHECK(writers.prepared() > 0);
    CHECK(tally.missing == 0);
    CHECK(tally.duplicates == 0);
    CHECK(tally.out_of_order == 0);
}

TEST_CASE("soak: faults (backends terminated, a worker killed and restarted) lose and repeat nothing transactional",
          "[soak]") {
    const uint32_t seed = soak_seed();
    INFO("replay with SOAK_SEED=" << seed);
    SoakCluster cluster("soak_faults", true);
    for (int w = 0; w < 3; ++w) cluster.start(w);
    ConcurrentWriters writers(cluster.schema(), seed);
    std::mt19937 random(seed);
    int64_t faults = 0;
    const auto until = std::chrono::steady_clock::now() + soak_duration(20s);
    auto next_kill = std::chrono::steady_clock::now() + 5s;
    int killed = 0;
    while (std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200 + random() % 200));
        // One of the daemons' sessions (projection, cluster or listener
        // connection), ended as an administrator or a proxy would.
        faults += cluster.scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity WHERE application_name "
            "LIKE 'orchestratord %' ORDER BY random() LIMIT 1) x");
        if (std::chrono::steady_clock::now() >= next_kill) {
            const int victim = killed++ % 3;
            cluster.kill(victim);
            ++faults;
            cluster.start(victim);
            next_kill = std::chrono::steady_clock::now() + 6s;
        }
    }
    writers.stop();
    const auto tally = cluster.tally(90s);
    print_summary("soak_faults", seed, writers, faults, tally);
    // Never two owners of a slice at once.
    const auto overlaps = cluster.scalar(
        "SELECT count(*) FROM (SELECT released_at, lead(acquired_at) OVER (PARTITION BY slice ORDER BY epoch) AS "
        "next_acquired, lead(epoch) OVER (PARTITION BY slice ORDER BY epoch) AS next_epoch FROM " +
        cluster.schema() +
        ".orchestratord_slice_history WHERE replica_set = 'test') h WHERE next_epoch IS NOT NULL AND "
        "(released_at IS NULL OR released_at > next_acquired)");
    cluster.stop_all();
    CHECK(faults > 10);
    CHECK(overlaps == 0);
    CHECK(tally.missing == 0);
    CHECK(tally.duplicates == 0);
    CHECK(tally.out_of_order == 0);
}
