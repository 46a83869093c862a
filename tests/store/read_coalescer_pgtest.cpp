// ReadCoalescer in process, on a real PostgreSQL: identical reads share one
// statement, but never with a caller that needs a read started after it.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "pg/async_connection.hpp"
#include "store/read_coalescer.hpp"
#include "support/event_store_fixture.hpp"

using namespace orchestratord;
namespace asio = boost::asio;

TEST_CASE("identical reads share one statement, a later need gets a fresh read", "[store][shared-read]") {
    test::EventStoreFixture store("coalesce");
    store.append(30, 30);
    asio::io_context io;
    config::EventStoreConfig event_store{store.schema(), "events", "aggregate_heads", "projection_checkpoints"};
    store::GapSafeReader reader(event_store, nullptr);
    store::ReadCoalescer coalescer(io, std::chrono::seconds(10));
    pg::AsyncConnection first(io), second(io), third(io);

    store::ReadRequest request;
    request.slice_count = 64;
    for (int32_t s = 0; s < 64; ++s) request.owned_slices.push_back(s);
    request.positions.assign(64, 0);
    request.limit = 100;

    std::shared_ptr<const store::EventBatch> a, b, c;
    const auto woken = std::chrono::steady_clock::now();
    auto run = [&]() -> asio::awaitable<void> {
        co_await first.connect(test::pg_url(), "coalesce-test");
        co_await second.connect(test::pg_url(), "coalesce-test");
        co_await third.connect(test::pg_url(), "coalesce-test");
        // Two runners woken by the same notification ask at once.
        bool other_done = false;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                b = co_await coalescer.read(reader, second, request, woken);
                other_done = true;
            },
            asio::detached);
        a = co_await coalescer.read(reader, first, request, woken);
        while (!other_done) co_await asio::post(io, asio::use_awaitable);
        // New events arrive; a runner told about them needs a newer read.
        store.append(5, 5);
        c = co_await coalescer.read(reader, third, request, std::chrono::steady_clock::now());
    };
    std::exception_ptr failure;
    asio::co_spawn(io, run(), [&](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure) std::rethrow_exception(failure);

    REQUIRE(a != nullptr);
    CHECK(a == b);  // the very same batch object
    CHECK(a->events.size() == 30);
    CHECK(c->events.size() == 35);
    CHECK(coalescer.reads() == 2);
    CHECK(coalescer.shared() == 1);
}

TEST_CASE("a failed shared read fails its waiters too and the next read starts afresh", "[store][shared-read]") {
    test::EventStoreFixture store("coalesce_fail");
    store.append(10, 10);
    asio::io_context io;
    config::EventStoreConfig event_store{store.schema(), "events", "aggregate_heads", "projection_checkpoints"};
    store::GapSafeReader reader(event_store, nullptr);
    store::ReadCoalescer coalescer(io, std::chrono::seconds(10));
    pg::AsyncConnection first(io), second(io);

    store::ReadRequest request;
    request.slice_count = 64;
    for (int32_t s = 0; s < 64; ++s) request.owned_slices.push_back(s);
    request.positions.assign(64, 0);
    request.limit = 100;

    // The events table locked by another session: the read started first
    // (the spawned one, on `second`) waits until its statement_timeout
    // cancels it, an error that arrives while the other caller waits for
    // that read.
    pg::BlockingConnection locker(test::pg_url());
    std::string first_error, second_error;
    std::shared_ptr<const store::EventBatch> after;
    const auto woken = std::chrono::steady_clock::now();
    auto run = [&]() -> asio::awaitable<void> {
        co_await first.connect(test::pg_url(), "coalesce-test");
        co_await second.connect(test::pg_url(), "coalesce-test", 300);
        locker.exec("BEGIN");
        locker.exec("LOCK TABLE " + store.schema() + ".events IN ACCESS EXCLUSIVE MODE");
        bool other_done = false;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                try {
                    co_await coalescer.read(reader, second, request, woken);
                } catch (const std::exception& e) {
                    second_error = e.what();
                }
                other_done = true;
            },
            asio::detached);
        try {
            co_await coalescer.read(reader, first, request, woken);
        } catch (const std::exception& e) {
            first_error = e.what();
        }
        while (!other_done) co_await asio::post(io, asio::use_awaitable);
        locker.exec("COMMIT");
        // Not the failed read kept for sharing: a read of its own.
        after = co_await coalescer.read(reader, second, request, woken);
    };
    std::exception_ptr failure;
    asio::co_spawn(io, run(), [&](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure) std::rethrow_exception(failure);

    CHECK_THAT(second_error, Catch::Contains("statement timeout"));
    CHECK(first_error == second_error);
    CHECK(coalescer.shared() == 1);
    REQUIRE(after != nullptr);
    CHECK(after->events.size() == 10);
    CHECK(coalescer.reads() == 2);
}
