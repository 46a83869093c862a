// The cluster protocol against its table layer on a real PostgreSQL, without
// daemons: registration, heartbeat reports, coordination, acquire, release,
// stale removal and a forced handoff (cluster/cluster_tables.hpp,
// cluster/coordinator.hpp).
#include <catch2/catch.hpp>

#include <algorithm>

#include "cluster/cluster_tables.hpp"
#include "cluster/coordinator.hpp"
#include "cluster/slice_ownership.hpp"
#include "cluster/slice_reconciler.hpp"
#include "pg/async_connection.hpp"
#include "support/event_store_fixture.hpp"
#include "support/run_on_loop.hpp"

using namespace orchestratord;
using namespace orchestratord::cluster;
namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

const std::string kReplicaSet = "r";
const milliseconds kStaleAfter(10000);
const milliseconds kLongTimeout(3600 * 1000);

// A replica set "r" of 4 slices in a fresh schema, and what a member holds
// to work on it.
struct Cluster {
    test::EventStoreFixture store;
    config::EventStoreConfig event_store;
    config::ReplicaSetConfig settings;
    ClusterTables tables;
    SliceOwnership ownership;         // the coordinating member's
    metrics::ClusterMetrics metrics;  // no registry: updates do nothing
    Coordinator coordinator;

    explicit Cluster(const std::string& label)
        : store(label),
          event_store{store.schema(), "events", "aggregate_heads", "projection_checkpoints"},
          settings(replica_set()),
          tables(event_store, kReplicaSet),
          coordinator(tables, event_store, settings, ownership, metrics) {}

    static config::ReplicaSetConfig replica_set() {
        config::ReplicaSetConfig rs;
        rs.name = kReplicaSet;
        rs.heartbeat_interval = std::chrono::seconds(1);
        rs.stale_worker_timeout = kStaleAfter;
        rs.coordination_timeout = kLongTimeout;
        rs.slices = 4;
        return rs;
    }
    int64_t count(const std::string& table, const std::string& where) {
        return store.scalar("SELECT count(*) FROM " + store.schema() + ".orchestratord_" + table + " WHERE " + where);
    }
    std::string target_of(int slice) {
        const auto rows = store.db().exec("SELECT coalesce(target_owner::text, '') FROM " + store.schema() +
                                              ".orchestratord_slices WHERE replica_set = 'r' AND slice = $1",
                                          {std::to_string(slice)});
        return *rows.at(0, 0);
    }
};

WorkerIdentity identity(const std::string& tag) {
    WorkerIdentity worker;
    worker.host = "host-" + tag;
    worker.pid = 42;
    worker.version = "test";
    worker.session_tag = tag;
    worker.projections.push_back("p");
    worker.projections.push_back("q");
    return worker;
}

std::vector<int32_t> slice_numbers(const std::vector<AcquiredSlice>& slices) {
    std::vector<int32_t> numbers;
    for (const auto& slice : slices) numbers.push_back(slice.slice);
    return numbers;
}

std::vector<int32_t> slice_numbers(const std::vector<FreedSlice>& slices) {
    std::vector<int32_t> numbers;
    for (const auto& slice : slices) numbers.push_back(slice.slice);
    return numbers;
}

std::vector<int32_t> all_slices() {
    std::vector<int32_t> slices;
    for (int32_t s = 0; s < 4; ++s) slices.push_back(s);
    return slices;
}

}  // namespace

TEST_CASE("two workers register, coordinate, acquire, and the survivor takes a stale worker's slices",
          "[cluster][tables]") {
    Cluster cluster("cltables_protocol");
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "cluster-tables-test");
        auto& tables = cluster.tables;

        // The stored slice count wins over a later configuration.
        CHECK(co_await tables.register_replica_set(connection, 4) == 4);
        CHECK(co_await tables.register_replica_set(connection, 8) == 4);
        CHECK(cluster.count("slices", "replica_set = 'r'") == 4);

        // Each worker comes with its checkpoint rows, one per projection, lease 0.
        const std::string a = co_await tables.register_worker(connection, identity("ta"));
        const std::string b = co_await tables.register_worker(connection, identity("tb"));
        CHECK(a != b);
        CHECK(cluster.count("progress", "writer = '" + a + "' AND lease = 0") == 2);
        CHECK(cluster.count("progress", "writer = '" + b + "' AND lease = 0") == 2);

        // No generation yet: the heartbeat asks for coordination.
        const auto first = co_await tables.heartbeat(connection, a, kStaleAfter, kLongTimeout);
        REQUIRE(first);
        CHECK(first->generation == 0);
        CHECK(first->stale_workers == 0);
        CHECK_FALSE(first->settled);
        CHECK(first->moving_slices == 0);
        CHECK(first->generation_overdue);
        REQUIRE(first->next_stale_in);  // b turns stale in about stale_worker_timeout
        CHECK(*first->next_stale_in > milliseconds(5000));
        CHECK(*first->next_stale_in <= kStaleAfter);

        CHECK(co_await cluster.coordinator.coordinate(connection));
        CHECK(cluster.ownership.generation() == 1);
        CHECK(cluster.count("slices", "target_owner = '" + a + "'") == 2);
        CHECK(cluster.count("slices", "target_owner = '" + b + "'") == 2);
        const auto settled = co_await tables.heartbeat(connection, b, kStaleAfter, kLongTimeout);
        REQUIRE(settled);
        CHECK(settled->generation == 1);
        CHECK(settled->settled);
        CHECK(settled->moving_slices == 4);  // assigned, not yet acquired

        // The reconcile read: both of a's slices are free for it.
        SliceOwnership a_view;
        a_view.set_owner(a);
        const auto a_slices = co_await tables.read_worker_slices(connection, a);
        CHECK(a_slices.slices.size() == 2);
        CHECK(a_slices.generation == 1);
        CHECK(a_slices.lease == 0);
        CHECK(SliceReconciler::plan(a_slices.slices, a_view).acquire);

        const auto a_took = co_await tables.acquire(connection, a);
        const auto b_took = co_await tables.acquire(connection, b);
        CHECK(a_took.size() == 2);
        CHECK(b_took.size() == 2);
        for (const auto& slice : a_took) CHECK(slice.epoch == 1);
        const auto again = co_await tables.acquire(connection, a);
        CHECK(again.empty());  // nothing else is free for a
        CHECK(cluster.count("slice_history", "owner = '" + a + "' AND released_at IS NULL") == 2);
        const auto after_acquire = co_await tables.heartbeat(connection, a, kStaleAfter, kLongTimeout);
        REQUIRE(after_acquire);
        CHECK(after_acquire->moving_slices == 0);

        // A graceful release frees only slices assigned elsewhere.
        const auto kept = co_await tables.free_slices(connection, FreeReason::released, a, all_slices());
        CHECK(kept.empty());

        // b goes silent: the heartbeat sees it, the coordinator removes it,
        // folds its checkpoint rows, frees its slices and gives all to a.
        cluster.store.db().exec(
            "UPDATE " + cluster.store.schema() +
                ".orchestratord_workers SET last_heartbeat = now() - interval '1 hour' WHERE id = $1",
            {b});
        const auto saw_stale = co_await tables.heartbeat(connection, a, kStaleAfter, kLongTimeout);
        REQUIRE(saw_stale);
        CHECK(saw_stale->stale_workers == 1);
        REQUIRE(saw_stale->next_stale_in);
        CHECK(*saw_stale->next_stale_in < milliseconds(0));
        CHECK(co_await cluster.coordinator.coordinate(connection));
        CHECK(cluster.ownership.generation() == 2);
        CHECK(cluster.count("workers", "id = '" + b + "'") == 0);
        CHECK(cluster.count("progress", "writer = '" + b + "'") == 0);
        CHECK(cluster.count("slices", "owner = '" + b + "'") == 0);
        CHECK(cluster.count("slice_history", "owner = '" + b + "' AND released_at IS NULL") == 0);
        CHECK(cluster.count("slices", "target_owner = '" + a + "'") == 4);
        const auto b_gone = co_await tables.heartbeat(connection, b, kStaleAfter, kLongTimeout);
        CHECK_FALSE(b_gone);  // b must register again

        const auto a_took_rest = co_await tables.acquire(connection, a);
        CHECK(slice_numbers(a_took_rest) == slice_numbers(b_took));
        for (const auto& slice : a_took_rest) CHECK(slice.epoch == 3);  // b acquired at 1, freed at 2

        // a leaves: every slice is freed and the worker row goes.
        const auto freed = co_await tables.free_slices(connection, FreeReason::leaving, a);
        CHECK(slice_numbers(freed) == all_slices());
        for (const auto& slice : freed) CHECK(slice.previous_owner == a);
        co_await tables.remove_worker(connection, a);
        const auto live = co_await tables.live_workers(connection);
        CHECK(live.empty());
    });
}

TEST_CASE("a slice moves by a graceful release, or by force with a revoked lease when not handed over in time",
          "[cluster][tables]") {
    Cluster cluster("cltables_handoff");
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "cluster-tables-test");
        auto& tables = cluster.tables;
        co_await tables.register_replica_set(connection, 4);
        const std::string a = co_await tables.register_worker(connection, identity("ha"));
        CHECK(co_await cluster.coordinator.coordinate(connection));
        const auto a_took = co_await tables.acquire(connection, a);
        CHECK(slice_numbers(a_took) == all_slices());

        // A second worker joins: generation 2 moves two slices to it.
        const std::string b = co_await tables.register_worker(connection, identity("hb"));
        CHECK(co_await cluster.coordinator.coordinate(connection));
        CHECK(cluster.ownership.generation() == 2);
        const auto a_slices = co_await tables.read_worker_slices(connection, a);
        SliceOwnership a_view;
        a_view.set_owner(a);
        for (const auto& slice : a_took) a_view.offer(slice.slice, slice.epoch);
        const auto plan = SliceReconciler::plan(a_slices.slices, a_view);
        CHECK(plan.withdraw.size() == 2);

        // a releases one of them; the other stays with it past the timeout.
        const std::vector<int32_t> first(1, plan.withdraw[0]);
        const auto released = co_await tables.free_slices(connection, FreeReason::released, a, first);
        CHECK(slice_numbers(released) == first);
        CHECK(cluster.count("slices", "owner IS NULL") == 1);
        const auto b_took = co_await tables.acquire(connection, b);
        CHECK(slice_numbers(b_took) == first);

        // Not overdue yet: coordinating changes nothing.
        CHECK(co_await cluster.coordinator.coordinate(connection));
        CHECK(cluster.count("slices", "owner = '" + a + "'") == 3);
        CHECK(cluster.store.scalar("SELECT max(lease) FROM " + cluster.store.schema() +
                                   ".orchestratord_progress WHERE writer = '" + a + "'") == 0);

        // Overdue: the slice is taken from a and a's lease is revoked.
        cluster.settings.coordination_timeout = milliseconds(1);
        cluster.store.db().exec("SELECT pg_sleep(0.01)");  // the generation is now older than 1 ms
        CHECK(co_await cluster.coordinator.coordinate(connection));
        CHECK(cluster.count("slices", "owner = '" + a + "'") == 2);
        CHECK(cluster.count("slices", "slice = " + std::to_string(plan.withdraw[1]) + " AND owner IS NULL") == 1);
        const auto after = co_await tables.read_worker_slices(connection, a);
        CHECK(after.lease == 1);
        const auto b_took_late = co_await tables.acquire(connection, b);
        CHECK(b_took_late.size() == 1);
    });
}

TEST_CASE("the sessions of a stale worker are ended, those of a live one are not", "[cluster][tables]") {
    Cluster cluster("cltables_sessions");
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "cluster-tables-test");
        auto& tables = cluster.tables;
        co_await tables.register_replica_set(connection, 4);
        const std::string tag = "stale" + std::to_string(::getpid());
        const std::string live_tag = "live" + std::to_string(::getpid());
        const std::string stale = co_await tables.register_worker(connection, identity(tag));
        co_await tables.register_worker(connection, identity(live_tag));
        pg::AsyncConnection stale_session(io);
        co_await stale_session.connect(test::pg_url(), session_name(tag, "projections"));
        pg::AsyncConnection live_session(io);
        co_await live_session.connect(test::pg_url(), session_name(live_tag, "projections"));

        const auto none = co_await tables.end_stale_sessions(connection, kStaleAfter);
        CHECK(none.empty());
        cluster.store.db().exec(
            "UPDATE " + cluster.store.schema() +
                ".orchestratord_workers SET last_heartbeat = now() - interval '1 hour' WHERE id = $1",
            {stale});
        const auto ended = co_await tables.end_stale_sessions(connection, kStaleAfter);
        REQUIRE(ended.size() == 1);
        CHECK(ended[0].worker == stale);
        CHECK(ended[0].sessions == 1);
        // The stale worker's session is gone; the live worker's still answers.
        bool stale_session_ended = false;
        try {
            co_await stale_session.exec("SELECT 1", pg::Params{}, "use the stale worker's session");
        } catch (const std::exception&) {
            stale_session_ended = true;
        }
        CHECK(stale_session_ended);
        const auto answer = co_await live_session.exec("SELECT 1", pg::Params{}, "use the live worker's session");
        CHECK(answer.rows == 1);
    });
}

TEST_CASE("a stale worker's silence is measured when it is removed, not when the transaction began",
          "[cluster][tables]") {
    Cluster cluster("cltables_silence");
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "cluster-tables-test");
        auto& tables = cluster.tables;
        co_await tables.register_replica_set(connection, 4);
        const std::string silent = co_await tables.register_worker(connection, identity("silent"));
        // The coordination transaction has been open a while (lock waits,
        // a slow round trip) when the worker's row is removed.
        co_await connection.exec("BEGIN", pg::Params{}, "begin");
        co_await connection.exec("SELECT pg_sleep(2)", pg::Params{}, "hold the transaction open");
        cluster.store.db().exec("UPDATE " + cluster.store.schema() +
                                    ".orchestratord_workers SET last_heartbeat = clock_timestamp() - interval "
                                    "'30 seconds' WHERE id = $1",
                                {silent});
        const auto removed = co_await tables.remove_stale_workers(connection, kStaleAfter);
        co_await connection.exec("COMMIT", pg::Params{}, "commit");
        REQUIRE(removed.size() == 1);
        CHECK(removed[0].id == silent);
        CHECK(removed[0].silent_seconds >= 30.0);
        CHECK(removed[0].silent_seconds < 40.0);
    });
}
