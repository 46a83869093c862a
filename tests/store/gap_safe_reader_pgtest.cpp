// GapSafeReader in process, on a real PostgreSQL: a position drawn by a writer
// that has not committed yet is waited for, never passed over; a rolled-back
// one does not hold the reader; a prepared transaction is waited for like an
// open one; stop() ends a wait at once.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>

#include <functional>
#include <string>
#include <vector>

#include "pg/async_connection.hpp"
#include "pg/blocking_connection.hpp"
#include "store/gap_safe_reader.hpp"
#include "support/event_store_fixture.hpp"

using namespace orchestratord;
namespace asio = boost::asio;

namespace {

constexpr int32_t kSlices = 8;

// A writer connection holding one appended event in a transaction it has not
// ended yet. Its aggregate is its own: an event of an aggregate the others
// append to would make their inserts wait on the unique version index.
struct OpenWriter {
    pg::BlockingConnection db;
    explicit OpenWriter(const std::string& schema) : db(test::pg_url()) {
        db.exec("BEGIN");
        db.exec("INSERT INTO " + schema +
                ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, "
                "payload, metadata) VALUES ('test', 'Thing', 'open-writer', 1, gen_random_uuid(), 'Happened', "
                "'\\x7b7d'::bytea, '{}'::jsonb)");
    }
};

// Reads from position 0 on every slice until the batch's final position
// reaches `head`, or a read returns nothing new. Returns every position read,
// in the order the batches gave them. `while_waiting` runs once, the first
// time the reader reports that it waits for an open writer.
// Rolls a prepared transaction back if the test ends before committing it:
// it would otherwise keep its locks, and the schema could not be dropped.
struct PreparedGuard {
    pg::BlockingConnection& db;
    std::string gid;
    ~PreparedGuard() {
        try {
            db.exec("ROLLBACK PREPARED '" + gid + "'");
        } catch (...) {  // committed already: nothing to undo
        }
    }
};

// A login role without pg_read_all_stats that may read the fixture's
// tables: pg_stat_activity hides other roles' transaction start from it, as
// it does from an orchestratord role that is not the application's.
struct ReaderRole {
    pg::BlockingConnection& db;
    std::string name;
    ReaderRole(pg::BlockingConnection& owner, const std::string& schema)
        : db(owner), name("gsr_reader_" + std::to_string(::getpid())) {
        db.exec("DROP ROLE IF EXISTS " + name);
        db.exec("CREATE ROLE " + name + " LOGIN");
        db.exec("GRANT USAGE ON SCHEMA " + schema + " TO " + name);
        db.exec("GRANT SELECT ON ALL TABLES IN SCHEMA " + schema + " TO " + name);
    }
    ~ReaderRole() {
        try {
            db.exec("DROP OWNED BY " + name);
            db.exec("DROP ROLE " + name);
        } catch (...) {  // a session of it still open: the next run drops it first
        }
    }
    std::string url() const {
        return "postgresql://" + name + "@" + test::env_or("PGHOST", "127.0.0.1") + ":" +
               test::env_or("PGPORT", "5432") + "/" + test::env_or("PGDATABASE", "postgres");
    }
};

struct ReadOutcome {
    std::vector<int64_t> positions;
    bool waited = false;
    std::exception_ptr failure;
};

ReadOutcome read_up_to(store::GapSafeReader& reader, const std::function<void()>& while_waiting, int64_t head,
                       const std::string& url = test::pg_url()) {
    ReadOutcome outcome;
    asio::io_context io;
    pg::AsyncConnection connection(io);
    reader.report_waiting([&](double seconds) {
        if (seconds <= 0 || outcome.waited) return;
        outcome.waited = true;
        if (while_waiting) while_waiting();
    });
    auto run = [&]() -> asio::awaitable<void> {
        co_await connection.connect(url, "gap-safe-reader-test");
        store::ReadRequest request;
        request.slice_count = kSlices;
        for (int32_t s = 0; s < kSlices; ++s) request.owned_slices.push_back(s);
        request.positions.assign(kSlices, 0);
        request.limit = 100;
        for (int reads = 0; reads < 20; ++reads) {
            const auto batch = co_await reader.read(connection, request);
            for (const auto& event : batch.events) outcome.positions.push_back(event.global_position);
            if (batch.final_position <= request.positions[0]) break;  // nothing new is final
            request.positions.assign(kSlices, batch.final_position);
            if (batch.final_position >= head) break;
        }
    };
    asio::co_spawn(io, run(), [&](std::exception_ptr e) { outcome.failure = e; });
    io.run();
    return outcome;
}

std::vector<int64_t> one_to(int64_t last) {
    std::vector<int64_t> all;
    for (int64_t p = 1; p <= last; ++p) all.push_back(p);
    return all;
}

}  // namespace

TEST_CASE("a position drawn by an open writer below committed ones is waited for and read in order",
          "[store][gap-safe]") {
    test::EventStoreFixture store("gsr_late", false);
    store.append(3);                  // 1..3
    OpenWriter late(store.schema());  // 4, not committed
    store.append(2);                  // 5..6, committed above the hole
    store::GapSafeReader reader({store.schema(), "events", "aggregate_heads", "projection_checkpoints"}, nullptr);
    const auto outcome = read_up_to(
        reader, [&] { late.db.exec("COMMIT"); }, 6);
    if (outcome.failure) std::rethrow_exception(outcome.failure);
    CHECK(outcome.waited);
    CHECK(outcome.positions == one_to(6));  // 4 is there, exactly once, in order
}

TEST_CASE("a position whose writer rolls back does not hold the reader", "[store][gap-safe]") {
    test::EventStoreFixture store("gsr_rollback", false);
    store.append(2);                    // 1..2
    OpenWriter rolled(store.schema());  // 3, rolled back below
    store.append(2);                    // 4..5
    store::GapSafeReader reader({store.schema(), "events", "aggregate_heads", "projection_checkpoints"}, nullptr);
    const auto outcome = read_up_to(
        reader, [&] { rolled.db.exec("ROLLBACK"); }, 5);
    if (outcome.failure) std::rethrow_exception(outcome.failure);
    CHECK(outcome.waited);
    CHECK(outcome.positions == std::vector<int64_t>{1, 2, 4, 5});
}

TEST_CASE("a prepared transaction's position is waited for until COMMIT PREPARED", "[store][gap-safe][2pc]") {
    test::EventStoreFixture store("gsr_prepared", false);
    store.append(2);  // 1..2
    const std::string gid = "gsr_prepared_" + store.schema();
    PreparedGuard guard{store.db(), gid};
    {
        OpenWriter prepared(store.schema());  // 3
        prepared.db.exec("PREPARE TRANSACTION '" + gid + "'");
    }                 // its session is gone; the prepared transaction keeps its lock
    store.append(2);  // 4..5
    std::vector<store::BlockedWriter> reported;
    store::GapSafeReader reader(
        {store.schema(), "events", "aggregate_heads", "projection_checkpoints"},
        [&](const std::vector<store::BlockedWriter>& writers, auto) { reported = writers; },
        std::chrono::milliseconds(0));
    const auto outcome = read_up_to(
        reader, [&] { store.db().exec("COMMIT PREPARED '" + gid + "'"); }, 5);
    if (outcome.failure) std::rethrow_exception(outcome.failure);
    CHECK(outcome.waited);
    CHECK(outcome.positions == one_to(5));
    REQUIRE(reported.size() == 1);
    CHECK(reported[0].pid == 0);
    CHECK(reported[0].prepared_gid == gid);
}

TEST_CASE("stop() ends a wait for an open writer at once", "[store][gap-safe][stop]") {
    test::EventStoreFixture store("gsr_stop", false);
    store.append(1);
    OpenWriter open(store.schema());  // stays open for the whole test
    store.append(1);
    store::GapSafeReader reader({store.schema(), "events", "aggregate_heads", "projection_checkpoints"}, nullptr);
    std::chrono::steady_clock::time_point stopped_at;
    const auto outcome = read_up_to(
        reader,
        [&] {
            stopped_at = std::chrono::steady_clock::now();
            reader.stop();
        },
        3);
    REQUIRE(outcome.waited);
    const double after_stop = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count();
    REQUIRE(outcome.failure);
    CHECK_THROWS_AS(std::rethrow_exception(outcome.failure), store::ReadStopped);
    CHECK(after_stop < 1.0);
    CHECK(outcome.positions == std::vector<int64_t>{1});  // what was final before the hole
    open.db.exec("ROLLBACK");
}

TEST_CASE("an open writer of another role is reported open at least as long as the reader waited for it",
          "[store][gap-safe][blocked]") {
    test::EventStoreFixture store("gsr_role", false);
    store.append(1);
    OpenWriter open(store.schema());  // the application's role, not the reader's
    store.append(1);
    ReaderRole role(store.db(), store.schema());
    std::vector<store::BlockedWriter> reported;
    std::chrono::duration<double> waited_at_report{0};
    bool committed = false;
    store::GapSafeReader reader(
        {store.schema(), "events", "aggregate_heads", "projection_checkpoints"},
        [&](const std::vector<store::BlockedWriter>& writers, std::chrono::steady_clock::duration waited) {
            if (committed) return;
            reported = writers;
            waited_at_report = waited;
            // Long enough that a figure of about 0 cannot pass for it.
            if (waited >= std::chrono::milliseconds(1500)) {
                open.db.exec("COMMIT");
                committed = true;
            }
        },
        std::chrono::milliseconds(0));
    const auto outcome = read_up_to(reader, nullptr, 3, role.url());
    if (outcome.failure) std::rethrow_exception(outcome.failure);
    REQUIRE(committed);
    CHECK(outcome.positions == one_to(3));
    REQUIRE(reported.size() == 1);
    CHECK(reported[0].pid > 0);
    CHECK(reported[0].open_seconds >= waited_at_report.count());
    CHECK(reported[0].open_seconds >= 1.5);
}
