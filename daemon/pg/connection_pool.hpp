#pragma once
// The projection runners' connections (database.max_open_conns,
// max_idle_conns, conn_max_lifetime): at most max_open open at a time, at
// most max_idle kept open while unused (surplus ones are closed once unused
// for a second, so a burst of wake-ups does not reconnect every time), each
// replaced when it is returned after living longer than max_lifetime. A runner borrows a connection for a
// step (a read, a batch, its commit) and returns it before it sleeps, so idle
// projections hold no connection. Everything runs on the event loop.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pg/async_connection.hpp"

namespace orchestratord::pg {

struct PoolSettings {
    std::string conninfo;
    std::string application_name = "orchestratord";
    int64_t statement_timeout_ms = 0;
    size_t max_open = 25;
    size_t max_idle = 5;
    std::chrono::nanoseconds max_lifetime = std::chrono::hours(1);
    std::function<void(const std::string&)> debug_log;  // optional: what the pool does, for logs
};

class ConnectionPool {
    struct Pooled;

public:
    // A borrowed connection; returned to the pool when the lease ends. Close
    // the connection first (connection().close()) when its state is unknown
    // (an error in the middle of a transaction): the pool then drops it.
    class Lease {
    public:
        Lease() = default;
        Lease(Lease&& other) noexcept;
        Lease& operator=(Lease&& other) noexcept;
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease();
        AsyncConnection& connection() const;
        explicit operator bool() const { return pooled_ != nullptr; }
        void reset();

    private:
        friend class ConnectionPool;
        Lease(ConnectionPool* pool, std::unique_ptr<Pooled> pooled);
        ConnectionPool* pool_ = nullptr;
        std::unique_ptr<Pooled> pooled_;
    };

    ConnectionPool(boost::asio::io_context& io, PoolSettings settings);
    ~ConnectionPool();

    // Waits until a connection is free, opening one while fewer than
    // max_open are open. Throws pg::Error when a new connection fails.
    boost::asio::awaitable<Lease> acquire();
    // A connection only if one can be had without waiting for another
    // borrower (for optional work such as reading ahead).
    boost::asio::awaitable<std::optional<Lease>> try_acquire();

    size_t open() const { return open_; }
    size_t idle() const { return idle_.size(); }
    const PoolSettings& settings() const { return settings_; }

private:
    boost::asio::awaitable<Lease> open_new();
    void give_back(std::unique_ptr<Pooled> pooled);
    std::unique_ptr<Pooled> take_idle();
    void wake_one();
    void trim_surplus();
    void schedule_trim();

    boost::asio::io_context& io_;
    PoolSettings settings_;
    std::vector<std::unique_ptr<Pooled>> idle_;
    std::deque<std::shared_ptr<struct PoolWaiter>> waiters_;
    std::unique_ptr<struct PoolTimer> trim_timer_;
    bool trim_scheduled_ = false;
    size_t open_ = 0;  // idle + borrowed + being opened
};

}  // namespace orchestratord::pg
