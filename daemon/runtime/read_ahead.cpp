#include "runtime/read_ahead.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

#include "async/event.hpp"
#include "log/quoted.hpp"

namespace orchestratord::runtime {
namespace asio = boost::asio;

// Shared by the read's coroutine and finish(): whichever ends last frees it.
struct ReadAhead::Pending {
    std::shared_ptr<const store::EventBatch> batch;
    async::Event finished;  // set when the read is done
    explicit Pending(asio::io_context& io) : finished(io.get_executor()) {}
};

ReadAhead::ReadAhead(asio::io_context& io, pg::ConnectionPool& pool, Read read, std::function<std::string()> context)
    : io_(io), pool_(pool), read_(std::move(read)), context_(std::move(context)) {}

asio::awaitable<void> ReadAhead::handle_while_reading(store::ReadRequest next,
                                                      std::function<asio::awaitable<void>()> handle,
                                                      std::function<bool()> as_assumed) {
    const auto pending = co_await start(std::move(next));
    if (!pending) {
        co_await handle();
        co_return;
    }
    // Even when handling fails, wait for the read: it refers to the runner,
    // and its result is only good if the batch succeeded.
    std::exception_ptr failure;
    try {
        co_await handle();
    } catch (...) {
        failure = std::current_exception();
    }
    co_await pending->finished.wait();
    if (failure) std::rethrow_exception(failure);
    if (pending->batch && as_assumed()) ready_ = std::move(pending->batch);
}

// The read on a second connection, or null when there is none free now.
asio::awaitable<std::shared_ptr<ReadAhead::Pending>> ReadAhead::start(store::ReadRequest next) {
    std::optional<pg::ConnectionPool::Lease> second;
    try {
        second = co_await pool_.try_acquire();
    } catch (const std::exception& e) {
        spdlog::debug("no connection for reading ahead {} error={}", context_(), log::quoted(e.what()));
    }
    if (!second) co_return nullptr;
    auto pending = std::make_shared<Pending>(io_);
    asio::co_spawn(
        io_,
        [this, pending, next = std::move(next), lease = std::move(*second)]() mutable -> asio::awaitable<void> {
            try {
                pending->batch = co_await read_(lease.connection(), next);
            } catch (const std::exception& e) {
                // The connection is in an unknown state: the pool drops it.
                spdlog::debug("prefetch failed {} error={}", context_(), log::quoted(e.what()));
                lease.connection().close();
            }
            lease.reset();
            pending->finished.set();
        },
        asio::detached);
    co_return pending;
}

}  // namespace orchestratord::runtime
