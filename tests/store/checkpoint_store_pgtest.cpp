// CheckpointStore on a real PostgreSQL: one row of slice positions per
// writing worker, fenced by its lease (store/checkpoint_store.hpp).
#include <catch2/catch.hpp>

#include "pg/async_connection.hpp"
#include "pg/rows.hpp"
#include "store/checkpoint_store.hpp"
#include "store/pg_names.hpp"
#include "support/event_store_fixture.hpp"
#include "support/run_on_loop.hpp"

using namespace orchestratord;
namespace asio = boost::asio;

namespace {

constexpr const char* kFirst = "00000000-0000-0000-0000-00000000000a";
constexpr const char* kSecond = "00000000-0000-0000-0000-00000000000b";

// A replica set of 4 slices with two registered workers and their (empty)
// checkpoint rows, as a cluster member's registration leaves them, and the
// store to work on them.
struct TwoWorkers {
    test::EventStoreFixture store;
    config::EventStoreConfig event_store;
    store::CheckpointStore checkpoints;

    explicit TwoWorkers(const std::string& label)
        : store(label),
          event_store{store.schema(), "events", "aggregate_heads", "projection_checkpoints"},
          checkpoints(event_store) {
        const std::string s = store.schema();
        store.db().exec("INSERT INTO " + s + ".orchestratord_replica_sets (name, slices) VALUES ('r', 4)");
        for (const char* id : {kFirst, kSecond}) {
            store.db().exec("INSERT INTO " + s +
                                ".orchestratord_workers (replica_set, id, host, pid, version) VALUES ('r', $1, 'h', "
                                "1, 'v')",
                            {id});
            store.db().exec(
                "INSERT INTO " + s + ".orchestratord_progress (replica_set, projection, writer) VALUES ('r', 'p', $1)",
                {id});
        }
    }
};

// Named helpers instead of braced lists: GCC 12 mishandles braced
// initializer temporaries in coroutines (see pg::make_params).
std::vector<int64_t> positions(int64_t a, int64_t b, int64_t c, int64_t d) {
    return std::vector<int64_t>{a, b, c, d};
}
store::Fence fence(const char* id, int64_t lease) {
    store::Fence result;
    result.owner = id;
    result.lease = lease;
    return result;
}
std::vector<std::string> writers(const char* id) {
    return std::vector<std::string>(1, id);
}

}  // namespace

TEST_CASE("a worker's checkpoint row takes writes only while its lease holds, and a slice's checkpoint is the highest",
          "[store][fencing][I1]") {
    TwoWorkers cluster("ckpt_lease");
    auto& checkpoints = cluster.checkpoints;
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "checkpoint-store-test");
        const store::Fence first = fence(kFirst, 0);
        const store::Fence second = fence(kSecond, 0);
        const std::vector<std::string> only_first = writers(kFirst);
        const bool first_written = co_await checkpoints.write(connection, "r", "p", first, positions(5, 6, 7, 8));
        CHECK(first_written);
        const bool second_written = co_await checkpoints.write(connection, "r", "p", second, positions(9, 1, 0, 0));
        CHECK(second_written);
        const auto after_both = co_await checkpoints.load(connection, "r", "p", 4);
        CHECK(after_both == positions(9, 6, 7, 8));

        // Revoked: the old lease writes nothing, the new one does.
        co_await checkpoints.revoke_leases(connection, "r", only_first);
        const bool revoked_written = co_await checkpoints.write(connection, "r", "p", first, positions(50, 60, 70, 80));
        CHECK_FALSE(revoked_written);
        const auto after_refusal = co_await checkpoints.load(connection, "r", "p", 4);
        CHECK(after_refusal == positions(9, 6, 7, 8));
        const bool renewed_written =
            co_await checkpoints.write(connection, "r", "p", fence(kFirst, 1), positions(5, 16, 7, 8));
        CHECK(renewed_written);
        const auto after_renewal = co_await checkpoints.load(connection, "r", "p", 4);
        CHECK(after_renewal == positions(9, 16, 7, 8));
    });
    // The per-slice view says the same.
    CHECK(cluster.store.scalar(
              "SELECT position FROM " + cluster.store.schema() +
              ".orchestratord_checkpoints WHERE replica_set = 'r' AND projection = 'p' AND slice = 1") == 16);
}

TEST_CASE("a departed worker's positions are kept by the nil writer and its late writes match nothing",
          "[store][fencing][I1]") {
    TwoWorkers cluster("ckpt_fold");
    auto& checkpoints = cluster.checkpoints;
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "checkpoint-store-test");
        const bool first_written =
            co_await checkpoints.write(connection, "r", "p", fence(kFirst, 0), positions(5, 6, 7, 8));
        CHECK(first_written);
        const bool second_written =
            co_await checkpoints.write(connection, "r", "p", fence(kSecond, 0), positions(1, 9, 1, 1));
        CHECK(second_written);
        // Nobody has departed yet.
        const auto none_departed = co_await checkpoints.fold_departed(connection, "r");
        CHECK(none_departed == 0);

        co_await connection.exec("DELETE FROM " + store::own_table(cluster.event_store, "workers") + " WHERE id = $1",
                                 pg::make_params(std::string(kFirst)), "remove the first worker");
        const auto first_folded = co_await checkpoints.fold_departed(connection, "r");
        CHECK(first_folded == 1);
        CHECK_FALSE(co_await checkpoints.write(connection, "r", "p", fence(kFirst, 0), positions(50, 60, 70, 80)));
        const auto after_first_left = co_await checkpoints.load(connection, "r", "p", 4);
        CHECK(after_first_left == positions(5, 9, 7, 8));

        // A second departure merges into the same nil row, slice by slice.
        co_await connection.exec("DELETE FROM " + store::own_table(cluster.event_store, "workers") + " WHERE id = $1",
                                 pg::make_params(std::string(kSecond)), "remove the second worker");
        const auto second_folded = co_await checkpoints.fold_departed(connection, "r");
        CHECK(second_folded == 1);
        const auto after_both_left = co_await checkpoints.load(connection, "r", "p", 4);
        CHECK(after_both_left == positions(5, 9, 7, 8));
    });
    CHECK(cluster.store.scalar("SELECT count(*) FROM " + cluster.store.schema() + ".orchestratord_progress") == 1);
    CHECK(cluster.store.scalar("SELECT count(*) FROM " + cluster.store.schema() +
                               ".orchestratord_progress WHERE writer = '" + store::kNoWriter + "'") == 1);
}

TEST_CASE("revoking a lease waits for the worker's batch transaction that holds its row", "[store][fencing][I1]") {
    TwoWorkers cluster("ckpt_wait");
    auto& checkpoints = cluster.checkpoints;
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection worker(io), coordinator(io);
        co_await worker.connect(test::pg_url(), "checkpoint-store-test");
        co_await coordinator.connect(test::pg_url(), "checkpoint-store-test");
        // The worker's batch has written its checkpoints and not committed yet.
        co_await worker.exec("BEGIN", pg::Params{}, "begin the batch");
        const bool in_batch = co_await checkpoints.write(worker, "r", "p", fence(kFirst, 0), positions(5, 6, 7, 8));
        CHECK(in_batch);
        // The revocation cannot pass it (it would wait; the lock timeout shows it).
        co_await coordinator.exec("SET lock_timeout = 200", pg::Params{}, "bound the wait");
        const std::vector<std::string> revoked = writers(kFirst);
        bool waited = false;
        try {
            co_await checkpoints.revoke_leases(coordinator, "r", revoked);
        } catch (const pg::Error& e) {
            waited = std::string(e.what()).find("lock timeout") != std::string::npos;
        }
        CHECK(waited);
        co_await worker.exec("COMMIT", pg::Params{}, "commit the batch");
        co_await checkpoints.revoke_leases(coordinator, "r", revoked);
        // The committed batch counts; the next one is refused.
        const auto committed = co_await checkpoints.load(coordinator, "r", "p", 4);
        CHECK(committed == positions(5, 6, 7, 8));
        const bool after_revocation =
            co_await checkpoints.write(worker, "r", "p", fence(kFirst, 0), positions(9, 9, 9, 9));
        CHECK_FALSE(after_revocation);
    });
}
