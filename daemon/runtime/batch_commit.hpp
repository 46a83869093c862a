#pragma once
// Commits one batch of a projection: hands its events to the plugin on the
// projection's handler thread (never on the event loop, so heartbeats are
// never starved by slow projection code), then writes the checkpoints of the
// batch's slices through the fencing check. Transactional projections get
// the batch transaction: BEGIN, the plugin's statements (sent by the loop,
// which owns the connection), the checkpoint write, the check that every
// slice of the batch is still ours at the epoch we took it with, then COMMIT,
// or ROLLBACK when anything failed. At-least-once projections get their
// checkpoints written right after the handler returns.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster/slice_ownership.hpp"
#include "pg/connection_pool.hpp"
#include "plugins/projection_instance.hpp"
#include "runtime/crash_breadcrumb.hpp"
#include "runtime/runner_settings.hpp"
#include "runtime/slice_positions.hpp"
#include "store/checkpoint_store.hpp"
#include "store/event_batch.hpp"

namespace orchestratord::runtime {

// Thrown when the fencing check finds slices taken away: the batch was rolled
// back (transactional) or its checkpoints for those slices not written; the
// runner re-reads the ownership view and the checkpoints.
struct SlicesLost : std::runtime_error {
    SlicesLost() : std::runtime_error("slices were taken away") {}
};

class BatchCommit {
public:
    // `instance` is the runner's current plugin instance (swapped only
    // between batches); `positions` are the runner's, moved on every write.
    BatchCommit(boost::asio::io_context& io, const RunnerSettings& settings,
                const std::unique_ptr<plugins::ProjectionInstance>& instance, SlicePositions& positions,
                CrashIsolation& crash_isolation);
    // Joins the handler thread: destroy only when handler_busy() is false.
    ~BatchCommit();
    BatchCommit(const BatchCommit&) = delete;
    BatchCommit& operator=(const BatchCommit&) = delete;

    // The fence to commit under, from the ownership view the runner follows.
    void follow(const cluster::OwnershipView& view);
    const store::Fence& fence() const { return fence_; }

    // Delivers events [begin, end) of `batch` and commits the checkpoints of
    // the owned slices at `checkpoint`. Returns the plugin's error, if any
    // (nothing was committed then); database errors throw, a failed fencing
    // check throws SlicesLost. For an at-least-once handler `lease` goes back
    // to the pool while the handler runs (a handler that hangs holds no
    // connection) and is borrowed again afterwards.
    boost::asio::awaitable<plugins::CallResult> deliver(pg::ConnectionPool::Lease& lease,
                                                        const store::EventBatch& batch, size_t begin, size_t end,
                                                        int64_t checkpoint);

    // Writes this worker's checkpoint row through the fencing check. False
    // when the lease was revoked (slices were taken away): the slices in use
    // are handed back to the ownership view, which re-reads the database.
    // `warn_if_lost` false: slices being left may be released already, which
    // is expected and only logged at debug level.
    boost::asio::awaitable<bool> write(pg::AsyncConnection& connection, const std::vector<int64_t>& checkpoints,
                                       bool warn_if_lost = true);
    // Writes the checkpoints of `slices` whose handled position is ahead of
    // the last one written (moved by reads that found nothing for them).
    boost::asio::awaitable<void> write_unwritten(pg::AsyncConnection& connection, const std::vector<int32_t>& slices,
                                                 bool warn_if_lost);

    // The plugin's handler is running (or hung) on the handler thread, and
    // the positions of the call, for the log line of a stop that cannot wait.
    bool handler_busy() const { return handler_busy_; }
    std::string handler_context() const;

private:
    boost::asio::awaitable<plugins::CallResult> deliver_in_transaction(pg::AsyncConnection& connection,
                                                                       const store::EventBatch& batch, size_t begin,
                                                                       size_t end, int64_t checkpoint);
    boost::asio::awaitable<plugins::CallResult> call_handler(const store::EventBatch& batch, size_t begin, size_t end,
                                                             plugins::SqlSession* session);
    boost::asio::awaitable<bool> still_own_slices_of(pg::AsyncConnection& connection, const store::EventBatch& batch,
                                                     size_t begin, size_t end);
    void watch_slow_handler(std::chrono::steady_clock::time_point started,
                            std::chrono::steady_clock::time_point report_at);

    boost::asio::io_context& io_;
    const RunnerSettings& settings_;
    const std::unique_ptr<plugins::ProjectionInstance>& instance_;
    SlicePositions& positions_;
    CrashIsolation& crash_isolation_;
    store::Fence fence_;                 // this worker and its checkpoint lease
    std::map<int32_t, int64_t> epochs_;  // slice -> the ownership epoch we hold it at
    bool handler_busy_ = false;
    int64_t handler_first_ = 0;  // positions of the call in progress
    int64_t handler_last_ = 0;
    boost::asio::steady_timer slow_handler_timer_;
    // Plugin code runs here, never on the event loop; one thread per
    // projection, so a handler that never returns stalls only its projection.
    // Last member: joined first on destruction, before anything it may use.
    boost::asio::thread_pool handler_thread_{1};
};

}  // namespace orchestratord::runtime
