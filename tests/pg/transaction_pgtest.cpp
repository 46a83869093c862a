// with_transaction against a real server: a body's writes commit or roll
// back as it decides, and a body that throws leaves the connection with no
// transaction open (the next statement works) and its exception unchanged.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <stdexcept>

#include "pg/async_connection.hpp"
#include "pg/blocking_connection.hpp"
#include "pg/transaction.hpp"
#include "support/pg_env.hpp"
#include "support/run_on_loop.hpp"

using namespace orchestratord;
namespace asio = boost::asio;

namespace {

// A table of this test process's own, empty.
std::string fresh_table(const std::string& name) {
    const std::string table = name + "_" + std::to_string(::getpid());
    pg::BlockingConnection db(test::pg_url());
    db.exec("DROP TABLE IF EXISTS " + table);
    db.exec("CREATE TABLE " + table + " (value int)");
    return table;
}

int64_t rows_in(const std::string& table) {
    pg::BlockingConnection db(test::pg_url());
    return std::stoll(*db.exec("SELECT count(*) FROM " + table).at(0, 0));
}

// Whether a transaction block is open: outside one every statement is a
// transaction of its own and gets a new transaction id.
asio::awaitable<bool> in_transaction(pg::AsyncConnection& connection) {
    const auto first = co_await connection.exec("SELECT pg_current_xact_id()::text", pg::Params{}, "probe");
    const auto second = co_await connection.exec("SELECT pg_current_xact_id()::text", pg::Params{}, "probe");
    co_return *first.at(0, 0) == *second.at(0, 0);
}

}  // namespace

TEST_CASE("a transaction commits when its body says so and rolls back otherwise", "[pg][transaction]") {
    const std::string table = fresh_table("tx_outcome");
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "transaction-test");
        for (const auto outcome : {pg::Outcome::commit, pg::Outcome::roll_back}) {
            const auto result =
                co_await pg::with_transaction(connection, "a test", [&]() -> asio::awaitable<pg::Outcome> {
                    co_await connection.exec("INSERT INTO " + table + " VALUES (1)", pg::Params{}, "insert");
                    co_return outcome;
                });
            CHECK(result == outcome);
            CHECK_FALSE(co_await in_transaction(connection));
        }
    });
    CHECK(rows_in(table) == 1);
}

TEST_CASE("a body that throws rolls back, leaves no transaction open and its exception goes on", "[pg][transaction]") {
    const std::string table = fresh_table("tx_throw");
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "transaction-test");
        bool caught = false;
        try {
            co_await pg::with_transaction(connection, "a test", [&]() -> asio::awaitable<pg::Outcome> {
                co_await connection.exec("INSERT INTO " + table + " VALUES (1)", pg::Params{}, "insert");
                // A failing statement aborts the transaction on the server.
                co_await connection.exec("SELECT 1 / 0", pg::Params{}, "divide by zero");
                co_return pg::Outcome::commit;
            });
        } catch (const pg::Error& e) {
            caught = std::string(e.what()).find("divide by zero") != std::string::npos;
        }
        CHECK(caught);
        CHECK(connection.ok());
        // Not "current transaction is aborted": the connection is reusable.
        CHECK_FALSE(co_await in_transaction(connection));

        std::string message;
        try {
            co_await pg::with_transaction(connection, "a test", [&]() -> asio::awaitable<pg::Outcome> {
                co_await connection.exec("INSERT INTO " + table + " VALUES (2)", pg::Params{}, "insert");
                throw std::runtime_error("the body gave up");
            });
        } catch (const std::runtime_error& e) {
            message = e.what();
        }
        CHECK(message == "the body gave up");
        CHECK_FALSE(co_await in_transaction(connection));
    });
    CHECK(rows_in(table) == 0);
}

TEST_CASE("a body whose connection is lost reports that error and the connection is not reused", "[pg][transaction]") {
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "transaction-test");
        bool lost = false;
        try {
            co_await pg::with_transaction(connection, "a test", [&]() -> asio::awaitable<pg::Outcome> {
                // The server ends this very session.
                co_await connection.exec("SELECT pg_terminate_backend(pg_backend_pid())", pg::Params{}, "end itself");
                co_return pg::Outcome::commit;
            });
        } catch (const pg::Error& e) {
            lost = pg::is_connection_error(e);
        }
        CHECK(lost);
        CHECK_FALSE(connection.ok());
    });
}

// A body that decides to roll back after its connection was lost (a batch
// whose plugin reported the failed statement as its own error) must not look
// like a clean roll back: the caller would count a database failure as the
// plugin's, and use the dead connection on.
TEST_CASE("a body that rolls back after its connection was lost reports the lost connection", "[pg][transaction]") {
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        co_await connection.connect(test::pg_url(), "transaction-test");
        bool lost = false;
        try {
            co_await pg::with_transaction(connection, "a test", [&]() -> asio::awaitable<pg::Outcome> {
                try {
                    co_await connection.exec("SELECT pg_terminate_backend(pg_backend_pid())", pg::Params{},
                                             "end itself");
                } catch (const pg::Error&) {
                    // Reported as the body's own failure, as a plugin does.
                }
                co_return pg::Outcome::roll_back;
            });
        } catch (const pg::Error& e) {
            lost = pg::is_connection_error(e);
        }
        CHECK(lost);
        CHECK_FALSE(connection.ok());
    });
}
