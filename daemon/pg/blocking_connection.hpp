#pragma once
// A synchronous libpq connection for short, one-off work: the startup check,
// CLI subcommands, and tests. The daemon's event path uses the asynchronous
// connection on the Asio loop instead.
#include <memory>
#include <optional>
#include <string>

#include "pg/error.hpp"
#include "pg/rows.hpp"

namespace orchestratord::pg {

class BlockingConnection {
public:
    // Connects; throws pg::Error (purpose "connect to PostgreSQL") with the
    // masked connection string when the server cannot be reached.
    explicit BlockingConnection(const std::string& conninfo, int connect_timeout_seconds = 10);
    ~BlockingConnection();
    BlockingConnection(const BlockingConnection&) = delete;
    BlockingConnection& operator=(const BlockingConnection&) = delete;
    BlockingConnection(BlockingConnection&&) noexcept;
    BlockingConnection& operator=(BlockingConnection&&) noexcept;  // e.g. to reconnect after a server restart

    // Runs one parameterised statement; throws pg::Error naming `purpose`.
    Rows exec(const std::string& sql, const Params& params = {}, const std::string& purpose = "run statement");
    // Runs a script of several statements without parameters (simple query
    // protocol); for migrations only, never for values from outside.
    void exec_script(const std::string& sql, const std::string& purpose);
    int server_version() const;
    // Waits up to timeout_ms for a NOTIFY on a channel this connection LISTENs
    // to; returns the channel name, or nullopt on timeout.
    std::optional<std::string> wait_for_notification(int timeout_ms);

private:
    struct Handle;
    std::unique_ptr<Handle> handle_;
};

}  // namespace orchestratord::pg
