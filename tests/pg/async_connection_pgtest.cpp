// The libpq-on-Asio connection against a real server: results, errors with
// SQLSTATE and purpose, statement timeouts, notifications.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>

#include "pg/async_connection.hpp"
#include "pg/blocking_connection.hpp"
#include "support/pg_env.hpp"
#include "support/run_on_loop.hpp"

using namespace orchestratord;
namespace asio = boost::asio;

namespace {
const auto& run = test::run_on_loop;
}  // namespace

TEST_CASE("queries return rows, in text and binary", "[pg][async]") {
    run([](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "async-test");
        const auto rows = co_await connection.exec("SELECT $1::text || 'b', NULL::int", pg::make_params("a"), "concat");
        CHECK(rows.at(0, 0) == "ab");
        CHECK_FALSE(rows.at(0, 1));
        const auto binary = co_await connection.query_prepared("SELECT 5000000000::int8, 7::int4, 'x'::text", {},
                                                               "binary", pg::Format::binary);
        CHECK(binary.int8(0, 0) == 5000000000LL);
        CHECK(binary.int4(0, 1) == 7);
        CHECK(binary.text(0, 2) == "x");
        CHECK(binary.data(0, 2)[1] == '\0');  // libpq terminates binary values too
    });
}

TEST_CASE("errors carry SQLSTATE and the statement's purpose", "[pg][async]") {
    run([](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "async-test");
        try {
            co_await connection.exec("SELECT * FROM no_such_table", {}, "read the thing");
            FAIL("must throw");
        } catch (const pg::Error& e) {
            CHECK(e.sqlstate() == "42P01");
            CHECK_THAT(e.what(), Catch::StartsWith("read the thing: "));
            CHECK_FALSE(pg::is_connection_error(e));
        }
        // The connection is still usable after a failed statement.
        const auto rows = co_await connection.exec("SELECT 1", {}, "after an error");
        CHECK(rows.at(0, 0) == "1");
    });
}

TEST_CASE("a statement running past statement_timeout is cancelled by the server", "[pg][async]") {
    run([](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "async-test", 100);
        try {
            co_await connection.exec("SELECT pg_sleep(5)", {}, "sleep");
            FAIL("must time out");
        } catch (const pg::Error& e) {
            CHECK(e.sqlstate() == "57014");
        }
    });
}

TEST_CASE("an unreachable server is an error naming the masked URL", "[pg][async]") {
    CHECK_THROWS_WITH(
        run([](asio::io_context& io) -> asio::awaitable<void> {
            pg::AsyncConnection connection(io);
            co_await connection.connect("postgresql://u:secret@127.0.0.1:1/db", "async-test");
        }),
        Catch::Contains("connect to PostgreSQL at postgresql://u:****@127.0.0.1:1/db") && !Catch::Contains("secret"));
}

TEST_CASE("notifications arrive on the connection's socket", "[pg][async]") {
    run([](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection listener(io);
        co_await listener.connect(test::pg_url(), "async-test");
        co_await listener.exec("LISTEN async_test_channel", {}, "listen");
        pg::BlockingConnection sender(test::pg_url());
        sender.exec("NOTIFY async_test_channel");
        const std::string channel = co_await listener.next_notification();
        CHECK(channel == "async_test_channel");
    });
}
