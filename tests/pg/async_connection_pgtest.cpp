// The libpq-on-Asio connection against a real server: results, errors with
// SQLSTATE and purpose, statement timeouts, notifications, lost connections.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>

#include "pg/async_connection.hpp"
#include "pg/blocking_connection.hpp"
#include "support/pg_env.hpp"
#include "support/run_on_loop.hpp"

using namespace orchestratord;
namespace asio = boost::asio;

namespace {
const auto& run = test::run_on_loop;
using namespace std::chrono_literals;

// The descriptor number the next socket() of this process gets.
int lowest_free_descriptor() {
    const int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::close(probe);
    return probe;
}

bool is_socket(int descriptor) {
    struct stat info {};
    return ::fstat(descriptor, &info) == 0 && S_ISSOCK(info.st_mode);
}

// Closes `connection` when `limit` passes before disarm(): a wait on its
// socket that would never complete fails the test instead of hanging it.
class Watchdog {
public:
    Watchdog(asio::io_context& io, pg::AsyncConnection& connection, std::chrono::milliseconds limit) : timer_(io) {
        timer_.expires_after(limit);
        timer_.async_wait([this, &connection](boost::system::error_code ec) {
            if (ec) return;  // disarmed
            fired_ = true;
            connection.close();
        });
    }
    bool disarm() {
        timer_.cancel();
        return fired_;
    }

private:
    asio::steady_timer timer_;
    bool fired_ = false;
};

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

// libpq closes its socket itself when it finds the connection lost, and the
// next socket the process opens gets the same number. Dropping the lost
// connection afterwards must not unregister that number from the event loop:
// the new connection would wait for its answers forever (a resumed worker's
// heartbeat did, after SIGSTOP, when another connection of it was closed late).
TEST_CASE("closing a connection the server ended never disturbs the connection that reuses its descriptor",
          "[pg][async]") {
    run([](asio::io_context& io) -> asio::awaitable<void> {
        const int descriptor = lowest_free_descriptor();
        pg::AsyncConnection lost(io);
        co_await lost.connect(test::pg_url(), "async-test lost");
        REQUIRE(is_socket(descriptor));
        pg::BlockingConnection admin(test::pg_url());
        admin.exec(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = 'async-test lost'");
        bool failed = false;
        try {
            co_await lost.exec("SELECT 1", {}, "use the ended session");
        } catch (const pg::Error& e) {
            failed = pg::is_connection_error(e);
        }
        REQUIRE(failed);
        REQUIRE_FALSE(is_socket(descriptor));  // libpq closed it on its own

        pg::AsyncConnection next(io);
        co_await next.connect(test::pg_url(), "async-test next");
        REQUIRE(is_socket(descriptor));  // the same number, another socket
        lost.close();
        Watchdog watchdog(io, next, 5s);
        std::string answer;
        try {
            const auto rows = co_await next.exec("SELECT 'still answered'", {}, "use the new connection");
            answer = rows.at(0, 0).value_or("");
        } catch (const std::exception& e) {
            answer = e.what();
        }
        CHECK_FALSE(watchdog.disarm());
        CHECK(answer == "still answered");
    });
}

// Connecting to the next host, libpq closes the refused socket and opens a
// new one, usually under the same number: the wait must follow the new one.
TEST_CASE("a connection string whose first host refuses connects to the next host", "[pg][async]") {
    const std::string url = "postgresql://" + test::env_or("PGUSER", "postgres") + "@127.0.0.1:1," +
                            test::env_or("PGHOST", "127.0.0.1") + ":" + test::env_or("PGPORT", "5432") + "/" +
                            test::env_or("PGDATABASE", "postgres");
    run([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::AsyncConnection connection(io);
        Watchdog watchdog(io, connection, 5s);
        std::string answer;
        try {
            co_await connection.connect(url, "async-test second host");
            const auto rows = co_await connection.exec("SELECT 'connected'", {}, "use the connection");
            answer = rows.at(0, 0).value_or("");
        } catch (const std::exception& e) {
            answer = e.what();
        }
        CHECK_FALSE(watchdog.disarm());
        CHECK(answer == "connected");
    });
}
