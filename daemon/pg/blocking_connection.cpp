#include "pg/blocking_connection.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <chrono>

#include "pg/conninfo.hpp"
#include "pg/detail/libpq_text.hpp"

namespace orchestratord::pg {

struct BlockingConnection::Handle {
    PGconn* conn = nullptr;
    ~Handle() {
        if (conn != nullptr) PQfinish(conn);
    }
};

namespace {

using detail::ignore_notice;
using detail::trimmed;

struct ResultDeleter {
    void operator()(PGresult* result) const { PQclear(result); }
};

}  // namespace

BlockingConnection::BlockingConnection(const std::string& conninfo, int connect_timeout_seconds)
    : handle_(std::make_unique<Handle>()) {
    const char* keywords[] = {"dbname", "connect_timeout", "application_name", nullptr};
    const std::string timeout = std::to_string(connect_timeout_seconds);
    const char* values[] = {conninfo.c_str(), timeout.c_str(), "orchestratord", nullptr};
    // expand_dbname=1: the first dbname value may itself be a full connection string.
    handle_->conn = PQconnectdbParams(keywords, values, 1);
    if (handle_->conn == nullptr) throw Error("connect to PostgreSQL", "", "out of memory");
    if (PQstatus(handle_->conn) != CONNECTION_OK) {
        throw Error("connect to PostgreSQL at " + mask_conninfo(conninfo), "",
                    scrub_conninfo_secrets(trimmed(PQerrorMessage(handle_->conn)), conninfo));
    }
    PQsetNoticeReceiver(handle_->conn, ignore_notice, nullptr);
}

BlockingConnection::~BlockingConnection() = default;
BlockingConnection::BlockingConnection(BlockingConnection&&) noexcept = default;
BlockingConnection& BlockingConnection::operator=(BlockingConnection&&) noexcept = default;

int BlockingConnection::server_version() const {
    return PQserverVersion(handle_->conn);
}

void BlockingConnection::exec_script(const std::string& sql, const std::string& purpose) {
    std::unique_ptr<PGresult, ResultDeleter> result(PQexec(handle_->conn, sql.c_str()));
    if (!result) throw Error(purpose, "", trimmed(PQerrorMessage(handle_->conn)));
    const ExecStatusType status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        const char* sqlstate = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
        throw Error(purpose, sqlstate != nullptr ? sqlstate : "", trimmed(PQresultErrorMessage(result.get())));
    }
}

std::optional<std::string> BlockingConnection::wait_for_notification(int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (PQconsumeInput(handle_->conn) == 0) {
            throw Error("wait for a notification", "", trimmed(PQerrorMessage(handle_->conn)));
        }
        if (PGnotify* notify = PQnotifies(handle_->conn)) {
            std::string channel = notify->relname;
            PQfreemem(notify);
            return channel;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        pollfd wanted{PQsocket(handle_->conn), POLLIN, 0};
        ::poll(&wanted, 1, static_cast<int>(left.count()));
    }
}

Rows BlockingConnection::exec(const std::string& sql, const Params& params, const std::string& purpose) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& param : params) values.push_back(param ? param->c_str() : nullptr);
    std::unique_ptr<PGresult, ResultDeleter> result(PQexecParams(
        handle_->conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0));
    if (!result) throw Error(purpose, "", trimmed(PQerrorMessage(handle_->conn)));
    const ExecStatusType status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        const char* sqlstate = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
        throw Error(purpose, sqlstate != nullptr ? sqlstate : "", trimmed(PQresultErrorMessage(result.get())));
    }
    Rows rows;
    rows.rows = PQntuples(result.get());
    rows.columns = PQnfields(result.get());
    const char* affected = PQcmdTuples(result.get());
    rows.affected = affected != nullptr && *affected != '\0' ? std::stoll(affected) : 0;
    rows.cells.reserve(static_cast<size_t>(rows.rows * rows.columns));
    for (int row = 0; row < rows.rows; ++row) {
        for (int column = 0; column < rows.columns; ++column) {
            if (PQgetisnull(result.get(), row, column)) {
                rows.cells.emplace_back(std::nullopt);
            } else {
                rows.cells.emplace_back(std::string(PQgetvalue(result.get(), row, column),
                                                    static_cast<size_t>(PQgetlength(result.get(), row, column))));
            }
        }
    }
    return rows;
}

}  // namespace orchestratord::pg
