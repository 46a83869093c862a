#pragma once
// Reading ahead while catching up: the next read runs on a second connection
// (when the pool has one free right now) while the runner hands the current
// batch to the plugin, so PostgreSQL works on batch N+1 while this process
// handles batch N. The read assumes batch N succeeds; when it does not
// (retries exhausted, pause, stop), its result is dropped and read again
// later.
#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "pg/async_connection.hpp"
#include "pg/connection_pool.hpp"
#include "store/event_batch.hpp"
#include "store/gap_safe_reader.hpp"

namespace orchestratord::runtime {

class ReadAhead {
public:
    using Read = std::function<boost::asio::awaitable<std::shared_ptr<const store::EventBatch>>(
        pg::AsyncConnection& connection, const store::ReadRequest& request)>;

    // `read` reads one request on the connection given (the runner's read,
    // shared with other runners through the coalescer); `context` is for logs.
    ReadAhead(boost::asio::io_context& io, pg::ConnectionPool& pool, Read read, std::function<std::string()> context);

    // How many events one read fetches while catching up (split into batches
    // of batch_size): per event, a read of 2,000 costs the server about as
    // much as twenty of 100, without the round trips, and the runner waits
    // for its read ahead once per read, not once per batch.
    static int64_t limit(int64_t batch_size) { return std::max<int64_t>(batch_size, 2000); }

    // Hands the current batch over (`handle`) while `next`, the read after
    // it, runs on a second connection, if one can be had without waiting
    // (otherwise just `handle`). Returns when both are done. The read is kept
    // for take() only when `as_assumed()` says, after handling, that the
    // batch went as `next` assumed. The handler is never cancelled: plugin
    // code on the handler thread may be using the batch.
    boost::asio::awaitable<void> handle_while_reading(store::ReadRequest next,
                                                      std::function<boost::asio::awaitable<void>()> handle,
                                                      std::function<bool()> as_assumed);
    // The batch read ahead, if any; the runner reads itself otherwise.
    std::shared_ptr<const store::EventBatch> take() { return std::move(ready_); }
    // Slices, plugin or positions changed: a batch read ahead is stale.
    void drop() { ready_.reset(); }

private:
    struct Pending;
    boost::asio::awaitable<std::shared_ptr<Pending>> start(store::ReadRequest next);

    boost::asio::io_context& io_;
    pg::ConnectionPool& pool_;
    Read read_;
    std::function<std::string()> context_;
    std::shared_ptr<const store::EventBatch> ready_;  // the next batch, read while the last one was handled
};

}  // namespace orchestratord::runtime
