#pragma once
// One transaction on an AsyncConnection: BEGIN, the caller's statements,
// then COMMIT or ROLLBACK, written once instead of by every caller.
#include <boost/asio/awaitable.hpp>
#include <exception>
#include <string>

#include "pg/async_connection.hpp"

namespace orchestratord::pg {

// What the body of a transaction decided.
enum class Outcome { commit, roll_back };

// Runs `body` (a callable returning awaitable<Outcome>) between BEGIN and
// COMMIT, or ROLLBACK when it returns Outcome::roll_back. When the body
// throws, the transaction is rolled back (if the connection is still up)
// and the body's exception goes on to the caller: the connection can go back
// to its pool with no transaction open. Should that ROLLBACK fail as well,
// the connection is closed, so its pool drops it, and the body's exception
// is still the one reported. A roll back the body decided on a connection
// that is lost by then throws the loss (pg::Error), as any statement would. `purpose` names the transaction in errors
// ("begin <purpose>", "commit <purpose>").
template <typename Body>
boost::asio::awaitable<Outcome> with_transaction(AsyncConnection& connection, const std::string& purpose, Body body) {
    co_await connection.exec("BEGIN", Params{}, "begin " + purpose);
    Outcome outcome = Outcome::roll_back;
    // Captured, not rethrown from the handler: no co_await is allowed
    // inside one, and the ROLLBACK below must come first.
    std::exception_ptr failure;
    try {
        outcome = co_await body();
    } catch (...) {
        failure = std::current_exception();
    }
    if (!failure && outcome == Outcome::commit) {
        co_await connection.exec("COMMIT", Params{}, "commit " + purpose);
        co_return outcome;
    }
    // A body that failed because the connection is gone reports that;
    // the server has rolled back.
    if (failure && !connection.ok()) std::rethrow_exception(failure);
    // A body that decided to roll back is never told "rolled back" on a lost
    // connection: the ROLLBACK fails and reports the loss, so the caller
    // does not count a database failure as the body's own (a plugin that
    // returned the error of its failed statement) nor use the connection on.
    std::exception_ptr rollback_failure;
    try {
        co_await connection.exec("ROLLBACK", Params{}, "roll back " + purpose);
    } catch (...) {
        rollback_failure = std::current_exception();
    }
    if (rollback_failure) {
        connection.close();
        if (!failure) std::rethrow_exception(rollback_failure);
    }
    if (failure) std::rethrow_exception(failure);
    co_return outcome;
}

}  // namespace orchestratord::pg
