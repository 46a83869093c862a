#include "pg/async_connection.hpp"

#include <libpq-fe.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <vector>

#include "pg/conninfo.hpp"
#include "pg/detail/libpq_text.hpp"

namespace orchestratord::pg {
namespace asio = boost::asio;

namespace {

using detail::ignore_notice;
using detail::trimmed;

}  // namespace

struct AsyncConnection::State {
    asio::io_context& io;
    PGconn* conn = nullptr;
    std::map<std::string, std::string> prepared;  // SQL text -> statement name, per connection
    std::unique_ptr<asio::posix::stream_descriptor> socket;

    explicit State(asio::io_context& context) : io(context) {}

    // Asio knows a socket by its descriptor number, and releasing the wrapper
    // removes that number from the loop's epoll set. libpq closes its socket
    // itself: when it finds the connection lost, and while connecting, when
    // it moves on to the next address or host. The number is then free, and
    // the next socket this process opens (another connection's) gets it. A
    // wrapper released after that would unregister the other connection's
    // socket, whose waits would then never complete. So after every libpq
    // call that can close the socket, the wrapper is dropped or replaced in
    // the same step, before the loop runs anything else (only the loop thread
    // registers descriptors). The wrapper never owns the descriptor: libpq
    // closes it.
    void forget_closed_socket() {
        if (socket && PQsocket(conn) != socket->native_handle()) release_socket();
    }
    // While connecting, libpq may close a socket and open the next one under
    // the same number: the number cannot tell them apart, so the wrapper is
    // always replaced.
    void wrap_current_socket() {
        release_socket();
        const int fd = PQsocket(conn);
        if (fd >= 0) socket = std::make_unique<asio::posix::stream_descriptor>(io, fd);
    }
    void release_socket() {
        if (socket) {
            socket->cancel();
            socket->release();  // before PQfinish, so Asio never closes libpq's descriptor
            socket.reset();
        }
    }
    void finish() {
        prepared.clear();
        release_socket();
        if (conn != nullptr) {
            PQfinish(conn);
            conn = nullptr;
        }
    }
    asio::awaitable<void> wait(asio::posix::descriptor_base::wait_type type, const std::string& purpose) {
        if (!socket) throw Error(purpose, "", "connection lost");
        co_await socket->async_wait(type, asio::use_awaitable);
    }

    // Pushes the whole query out; a large parameter set may need several writes.
    asio::awaitable<void> flush(const std::string& purpose) {
        for (;;) {
            const int flushed = PQflush(conn);
            forget_closed_socket();
            if (flushed == 0) co_return;
            if (flushed < 0) throw Error(purpose, "", trimmed(PQerrorMessage(conn)));
            co_await wait(asio::posix::descriptor_base::wait_write, purpose);
        }
    }

    // Collects every result of the statement; keeps the last good one or the first error.
    asio::awaitable<Result> collect(const std::string& purpose) {
        Result good;
        std::optional<Error> failure;
        for (;;) {
            while (PQisBusy(conn) != 0) {
                co_await wait(asio::posix::descriptor_base::wait_read, purpose);
                const int consumed = PQconsumeInput(conn);
                forget_closed_socket();
                if (consumed == 0) throw Error(purpose, "", trimmed(PQerrorMessage(conn)));
            }
            PGresult* result = PQgetResult(conn);
            forget_closed_socket();
            if (result == nullptr) break;
            const ExecStatusType status = PQresultStatus(result);
            if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR) {
                if (!failure) {
                    const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
                    failure.emplace(purpose, sqlstate != nullptr ? sqlstate : "",
                                    trimmed(PQresultErrorMessage(result)));
                }
                PQclear(result);
            } else {
                good = Result(result);
            }
        }
        if (failure) throw *failure;
        if (PQstatus(conn) == CONNECTION_BAD) throw Error(purpose, "", "connection lost");
        co_return good;
    }

    // Sends with `send` (a PQsend* call) and returns the statement's result.
    template <typename Send>
    asio::awaitable<Result> round_trip(Send send, const std::string& purpose) {
        if (conn == nullptr) throw Error(purpose, "", "not connected");
        const int sent = send();
        forget_closed_socket();
        if (sent == 0) throw Error(purpose, "", trimmed(PQerrorMessage(conn)));
        co_await flush(purpose);
        co_return co_await collect(purpose);
    }
};

AsyncConnection::AsyncConnection(asio::io_context& io) : state_(std::make_unique<State>(io)) {}
AsyncConnection::~AsyncConnection() {
    state_->finish();
}

bool AsyncConnection::ok() const {
    return state_->conn != nullptr && PQstatus(state_->conn) == CONNECTION_OK;
}
void AsyncConnection::close() {
    state_->finish();
}

asio::awaitable<void> AsyncConnection::connect(const std::string& conninfo, const std::string& application_name,
                                               int64_t statement_timeout_ms) {
    state_->finish();
    // Set at connection start (startup packet), so it costs no round trip.
    const std::string options =
        statement_timeout_ms > 0 ? "-c statement_timeout=" + std::to_string(statement_timeout_ms) : std::string();
    const char* keywords[] = {"dbname", "application_name", statement_timeout_ms > 0 ? "options" : nullptr, nullptr};
    const char* values[] = {conninfo.c_str(), application_name.c_str(),
                            statement_timeout_ms > 0 ? options.c_str() : nullptr, nullptr};
    state_->conn = PQconnectStartParams(keywords, values, 1);
    const std::string purpose = "connect to PostgreSQL at " + mask_conninfo(conninfo);
    if (state_->conn == nullptr) throw Error(purpose, "", "out of memory");
    if (PQstatus(state_->conn) == CONNECTION_BAD) {
        const std::string message = scrub_conninfo_secrets(trimmed(PQerrorMessage(state_->conn)), conninfo);
        state_->finish();
        throw Error(purpose, "", message);
    }
    // The notice receiver is set before anything can produce a notice.
    PQsetNoticeReceiver(state_->conn, ignore_notice, nullptr);
    PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
    state_->wrap_current_socket();
    for (;;) {
        if (poll == PGRES_POLLING_READING) {
            co_await state_->wait(asio::posix::descriptor_base::wait_read, purpose);
        } else if (poll == PGRES_POLLING_WRITING) {
            co_await state_->wait(asio::posix::descriptor_base::wait_write, purpose);
        }
        poll = PQconnectPoll(state_->conn);
        state_->wrap_current_socket();
        if (poll == PGRES_POLLING_OK) break;
        if (poll == PGRES_POLLING_FAILED) {
            const std::string message = scrub_conninfo_secrets(trimmed(PQerrorMessage(state_->conn)), conninfo);
            state_->finish();
            throw Error(purpose, "", message);
        }
    }
    PQsetnonblocking(state_->conn, 1);
}

namespace {

std::vector<const char*> values_of(const Params& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& param : params) values.push_back(param ? param->c_str() : nullptr);
    return values;
}

}  // namespace

asio::awaitable<Result> AsyncConnection::query(const std::string& sql, const Params& params, const std::string& purpose,
                                               Format format) {
    const auto values = values_of(params);
    co_return co_await state_->round_trip(
        [&] {
            return PQsendQueryParams(state_->conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                     nullptr, nullptr, static_cast<int>(format));
        },
        purpose);
}

asio::awaitable<Result> AsyncConnection::query_prepared(const std::string& sql, const Params& params,
                                                        const std::string& purpose, Format format) {
    if (state_->conn == nullptr) throw Error(purpose, "", "not connected");
    auto found = state_->prepared.find(sql);
    if (found == state_->prepared.end()) {
        const std::string name = "orchestratord_" + std::to_string(state_->prepared.size() + 1);
        co_await state_->round_trip([&] { return PQsendPrepare(state_->conn, name.c_str(), sql.c_str(), 0, nullptr); },
                                    "prepare to " + purpose);
        found = state_->prepared.emplace(sql, name).first;
    }
    const auto values = values_of(params);
    co_return co_await state_->round_trip(
        [&] {
            return PQsendQueryPrepared(state_->conn, found->second.c_str(), static_cast<int>(values.size()),
                                       values.data(), nullptr, nullptr, static_cast<int>(format));
        },
        purpose);
}

asio::awaitable<Rows> AsyncConnection::exec(const std::string& sql, const Params& params, const std::string& purpose) {
    Result result = co_await query(sql, params, purpose, Format::text);
    Rows rows;
    rows.rows = result.rows();
    rows.columns = result.columns();
    rows.affected = result.affected();
    rows.cells.reserve(static_cast<size_t>(rows.rows * rows.columns));
    for (int row = 0; row < rows.rows; ++row) {
        for (int column = 0; column < rows.columns; ++column) {
            if (result.is_null(row, column)) {
                rows.cells.emplace_back(std::nullopt);
            } else {
                rows.cells.emplace_back(std::string(result.text(row, column)));
            }
        }
    }
    co_return rows;
}

asio::awaitable<std::string> AsyncConnection::next_notification() {
    for (;;) {
        if (state_->conn == nullptr) throw Error("wait for a notification", "", "not connected");
        if (PGnotify* notify = PQnotifies(state_->conn)) {
            std::string channel = notify->relname;
            PQfreemem(notify);
            co_return channel;
        }
        co_await state_->wait(asio::posix::descriptor_base::wait_read, "wait for a notification");
        const int consumed = PQconsumeInput(state_->conn);
        state_->forget_closed_socket();
        if (consumed == 0) throw Error("wait for a notification", "", trimmed(PQerrorMessage(state_->conn)));
    }
}

bool is_connection_error(const Error& error) {
    const std::string& state = error.sqlstate();
    // No SQLSTATE: libpq itself failed (socket closed, server gone). Class 08
    // is connection exceptions; 57P01-57P03 are shutdown and crash recovery.
    return state.empty() || state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03";
}

}  // namespace orchestratord::pg
