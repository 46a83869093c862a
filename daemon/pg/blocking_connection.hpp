#pragma once
// A synchronous libpq connection for short, one-off work: the startup check,
// CLI subcommands, and tests. The daemon's event path uses the asynchronous
// connection on the Asio loop instead.
#include <memory>
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

    // Runs one parameterised statement; throws pg::Error naming `purpose`.
    Rows exec(const std::string& sql, const Params& params = {}, const std::string& purpose = "run statement");
    int server_version() const;

private:
    struct Handle;
    std::unique_ptr<Handle> handle_;
};

}  // namespace orchestratord::pg
