#pragma once
// One PostgreSQL connection driven by the Asio event loop: libpq in
// non-blocking mode, waiting on the connection's socket instead of blocking a
// thread. One coroutine at a time owns a connection (the caller serialises).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>

#include "pg/error.hpp"
#include "pg/result.hpp"
#include "pg/rows.hpp"

namespace orchestratord::pg {

enum class Format { text = 0, binary = 1 };

class AsyncConnection {
public:
    explicit AsyncConnection(boost::asio::io_context& io);
    ~AsyncConnection();
    AsyncConnection(const AsyncConnection&) = delete;
    AsyncConnection& operator=(const AsyncConnection&) = delete;

    // Connects without blocking the loop; throws pg::Error with the masked
    // connection string on failure. A positive statement_timeout_ms makes the
    // server cancel any statement of this connection that runs longer
    // (SQLSTATE 57014).
    boost::asio::awaitable<void> connect(const std::string& conninfo, const std::string& application_name,
                                         int64_t statement_timeout_ms = 0);
    // Runs one parameterised statement; throws pg::Error naming `purpose`,
    // with SQLSTATE. The result stays in libpq's memory (no copy).
    boost::asio::awaitable<Result> query(const std::string& sql, const Params& params, const std::string& purpose,
                                         Format format = Format::text);
    // The same, through a prepared statement kept per connection: statements
    // run once per batch are planned once, not every time.
    boost::asio::awaitable<Result> query_prepared(const std::string& sql, const Params& params,
                                                  const std::string& purpose, Format format = Format::text);
    // Runs a statement and copies its text result out (small results only).
    boost::asio::awaitable<Rows> exec(const std::string& sql, const Params& params, const std::string& purpose);
    // Waits for the next NOTIFY on a channel this connection LISTENs to; returns the channel.
    boost::asio::awaitable<std::string> next_notification();

    bool ok() const;
    // Drops the connection (after an error) so the next use reconnects.
    void close();

private:
    struct State;
    std::unique_ptr<State> state_;
};

// True when the error means the connection itself is gone (server restart,
// network), so the caller should reconnect rather than report a SQL error.
bool is_connection_error(const Error& error);

}  // namespace orchestratord::pg
