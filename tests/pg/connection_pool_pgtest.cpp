// The projections' connection pool against a real server: max_open bounds
// the connections (a borrower waits), surplus idle connections close,
// expired and broken ones are replaced.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "pg/blocking_connection.hpp"
#include "pg/connection_pool.hpp"
#include "support/pg_env.hpp"
#include "support/run_on_loop.hpp"

using namespace orchestratord;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

pg::PoolSettings settings(const std::string& name, size_t max_open, size_t max_idle) {
    pg::PoolSettings pool;
    pool.conninfo = test::pg_url();
    pool.application_name = name + "-" + std::to_string(::getpid());
    pool.max_open = max_open;
    pool.max_idle = max_idle;
    return pool;
}

// Connections the server sees for this pool.
int64_t server_side(const pg::PoolSettings& pool) {
    pg::BlockingConnection db(test::pg_url());
    return std::stoll(
        *db.exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", {pool.application_name})
             .at(0, 0));
}

asio::awaitable<void> pause(asio::io_context& io, std::chrono::milliseconds duration) {
    asio::steady_timer timer(io, duration);
    co_await timer.async_wait(asio::use_awaitable);
}

asio::awaitable<std::string> backend_pid(pg::ConnectionPool::Lease& lease) {
    const auto rows = co_await lease.connection().exec("SELECT pg_backend_pid()", pg::Params{}, "backend pid");
    co_return *rows.at(0, 0);
}

}  // namespace

TEST_CASE("the pool opens at most max_open connections and the next borrower waits for a return", "[pg][pool]") {
    const auto config = settings("pool-max-open", 2, 2);
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::ConnectionPool pool(io, config);
        auto first = co_await pool.acquire();
        auto second = co_await pool.acquire();
        CHECK(pool.open() == 2);
        const auto none = co_await pool.try_acquire();
        CHECK_FALSE(none);
        CHECK(server_side(config) == 2);

        bool third_got_one = false;
        asio::steady_timer got(io, asio::steady_timer::time_point::max());
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                auto third = co_await pool.acquire();
                third_got_one = true;
                CHECK(pool.open() == 2);  // the returned one, not a new one
                got.cancel();
            },
            asio::detached);
        co_await pause(io, 100ms);
        CHECK_FALSE(third_got_one);  // still waiting: the pool is full
        first.reset();
        boost::system::error_code ec;
        got.expires_after(10s);
        co_await got.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        CHECK(third_got_one);
        CHECK(server_side(config) == 2);
    });
}

TEST_CASE("idle connections beyond max_idle are closed once unused for a moment", "[pg][pool]") {
    const auto config = settings("pool-max-idle", 4, 1);
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::ConnectionPool pool(io, config);
        {
            auto a = co_await pool.acquire();
            auto b = co_await pool.acquire();
            auto c = co_await pool.acquire();
        }
        CHECK(pool.open() == 3);  // kept through a burst
        for (int i = 0; i < 100 && pool.open() > 1; ++i) co_await pause(io, 50ms);
        CHECK(pool.open() == 1);
        CHECK(pool.idle() == 1);
        CHECK(server_side(config) == 1);
    });
}

TEST_CASE("a connection past max_lifetime or broken is replaced instead of reused", "[pg][pool]") {
    auto config = settings("pool-lifetime", 2, 2);
    config.max_lifetime = 0s;
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::ConnectionPool pool(io, config);
        auto lease = co_await pool.acquire();
        const auto first = co_await backend_pid(lease);
        lease.reset();
        CHECK(pool.open() == 0);  // expired: closed on return
        lease = co_await pool.acquire();
        const auto replaced = co_await backend_pid(lease);
        CHECK(replaced != first);
    });
    config.max_lifetime = std::chrono::hours(1);
    test::run_on_loop([&](asio::io_context& io) -> asio::awaitable<void> {
        pg::ConnectionPool pool(io, config);
        auto lease = co_await pool.acquire();
        const auto first = co_await backend_pid(lease);
        lease.connection().close();  // as after an error in a transaction
        lease.reset();
        lease = co_await pool.acquire();
        const auto second = co_await backend_pid(lease);
        CHECK(second != first);
        lease.reset();
        lease = co_await pool.acquire();
        const auto third = co_await backend_pid(lease);
        CHECK(third == second);  // a healthy one is reused
    });
}
