#include "runtime/batch_commit.hpp"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <future>
#include <optional>

#include "pg/async_connection.hpp"
#include "pg/transaction.hpp"
#include "plugins/transaction_control.hpp"

namespace orchestratord::runtime {
namespace asio = boost::asio;

namespace {

// The batch transaction as a plugin sees it. The plugin runs on a handler
// thread; each statement is sent by the event loop, which owns the
// connection, and the handler thread waits for its result.
class LoopTransaction : public plugins::SqlSession {
public:
    LoopTransaction(asio::io_context& io, pg::AsyncConnection& connection) : io_(io), connection_(connection) {}

    plugins::SqlRows exec(const std::string& sql, const plugins::SqlParams& params) override {
        if (auto refusal = plugins::transaction_control_refusal(sql)) throw std::runtime_error(*refusal);
        std::promise<plugins::SqlRows> done;
        auto result = done.get_future();
        asio::co_spawn(
            io_,
            [&]() -> asio::awaitable<void> {
                try {
                    done.set_value(co_await connection_.exec(sql, params, "projection statement"));
                } catch (...) {
                    done.set_exception(std::current_exception());
                }
            },
            asio::detached);
        return result.get();
    }

private:
    asio::io_context& io_;
    pg::AsyncConnection& connection_;
};

}  // namespace

BatchCommit::BatchCommit(asio::io_context& io, const RunnerSettings& settings,
                         const std::unique_ptr<plugins::ProjectionInstance>& instance, SlicePositions& positions,
                         CrashIsolation& crash_isolation)
    : io_(io),
      settings_(settings),
      instance_(instance),
      positions_(positions),
      crash_isolation_(crash_isolation),
      slow_handler_timer_(io) {}

BatchCommit::~BatchCommit() {
    handler_thread_.join();
}

std::string BatchCommit::handler_context() const {
    return runner_context(settings_) + " first_position=" + std::to_string(handler_first_) +
           " last_position=" + std::to_string(handler_last_);
}

void BatchCommit::follow(const cluster::OwnershipView& view) {
    fence_.owner = view.owner;
    fence_.lease = view.lease;
    epochs_ = view.epochs;
}

asio::awaitable<plugins::CallResult> BatchCommit::deliver(pg::ConnectionPool::Lease& lease,
                                                          const store::EventBatch& batch, size_t begin, size_t end,
                                                          int64_t checkpoint) {
    if (instance_->mode() == plugins::ProjectionMode::transactional) {
        co_return co_await deliver_in_transaction(lease.connection(), batch, begin, end, checkpoint);
    }
    // An at-least-once handler needs no connection: the pool lends it to the
    // other projections meanwhile, so a handler that hangs holds none.
    lease.reset();
    plugins::CallResult result = co_await call_handler(batch, begin, end, nullptr);
    lease = co_await settings_.pool->acquire();
    // Written right after the handler returns, so a crash repeats at most
    // this batch. (It overlaps with the read ahead.)
    if (!result.ok) co_return result;
    const bool written = co_await write(lease.connection(), positions_.checkpoints_at(checkpoint));
    if (!written) throw SlicesLost();
    co_return result;
}

// The plugin's writes and the checkpoints commit together, and only while
// the fencing check inside the transaction finds the slices still ours;
// otherwise everything rolls back (a failed handler, SlicesLost).
asio::awaitable<plugins::CallResult> BatchCommit::deliver_in_transaction(pg::AsyncConnection& connection,
                                                                         const store::EventBatch& batch, size_t begin,
                                                                         size_t end, int64_t checkpoint) {
    plugins::CallResult result;
    co_await pg::with_transaction(connection, "the batch transaction", [&]() -> asio::awaitable<pg::Outcome> {
        LoopTransaction transaction(io_, connection);
        result = co_await call_handler(batch, begin, end, &transaction);
        if (!result.ok) co_return pg::Outcome::roll_back;
        const bool written = co_await write(connection, positions_.checkpoints_at(checkpoint));
        if (!written) throw SlicesLost();
        const bool still_owned = co_await still_own_slices_of(connection, batch, begin, end);
        if (!still_owned) throw SlicesLost();
        co_return pg::Outcome::commit;
    });
    co_return result;
}

// The handler runs on the handler thread; this coroutine resumes on the loop.
asio::awaitable<plugins::CallResult> BatchCommit::call_handler(const store::EventBatch& batch, size_t begin, size_t end,
                                                               plugins::SqlSession* session) {
    const auto events = batch.pointers(begin, end);
    handler_busy_ = true;
    handler_first_ = batch.events[begin].global_position;
    handler_last_ = batch.events[end - 1].global_position;
    const auto started = std::chrono::steady_clock::now();
    watch_slow_handler(started, started + settings_.projection.slow_handler_after);
    const CrashBreadcrumb breadcrumb = crash_isolation_.breadcrumb(handler_first_, handler_last_);
    const auto& metrics = settings_.projection_metrics;
    metrics.handler_queue_depth.increment();
    plugins::CallResult result = co_await asio::co_spawn(
        handler_thread_,
        [&]() -> asio::awaitable<plugins::CallResult> {
            plugins::CallResult handled;
            {
                // Armed by the handler thread itself, for a crash in the plugin.
                ArmedBreadcrumb armed(breadcrumb);
                handled = instance_->handle_batch(events, session);
            }
            co_return handled;
        },
        asio::use_awaitable);
    metrics.handler_queue_depth.decrement();
    metrics.processing_duration.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    handler_busy_ = false;
    slow_handler_timer_.cancel();
    metrics.handler_running_seconds.set(0);
    co_return result;
}

// Reports a handler call that runs longer than slow_handler_after, and again
// every further period, until it returns (call_handler() cancels the timer).
void BatchCommit::watch_slow_handler(std::chrono::steady_clock::time_point started,
                                     std::chrono::steady_clock::time_point report_at) {
    if (settings_.projection.slow_handler_after <= config::Duration::zero()) return;
    slow_handler_timer_.expires_at(report_at);
    slow_handler_timer_.async_wait([this, started](boost::system::error_code ec) {
        if (ec || !handler_busy_) return;
        const auto now = std::chrono::steady_clock::now();
        const double seconds = std::chrono::duration<double>(now - started).count();
        spdlog::warn(
            "projection handler still running; this projection waits for it, the others go on {} running_s={:.1f} "
            "first_position={} last_position={}",
            runner_context(settings_), seconds, handler_first_, handler_last_);
        settings_.projection_metrics.handler_running_seconds.set(seconds);
        watch_slow_handler(started, now + settings_.projection.slow_handler_after);
    });
}

// The second half of the fence for a transactional batch, after its
// checkpoint write: every slice with events in [begin, end) is still ours at
// the epoch we acquired it with. (The lease alone does not change when a
// slice is handed over gracefully.)
asio::awaitable<bool> BatchCommit::still_own_slices_of(pg::AsyncConnection& connection, const store::EventBatch& batch,
                                                       size_t begin, size_t end) {
    std::vector<int32_t> slices(batch.slices.begin() + static_cast<std::ptrdiff_t>(begin),
                                batch.slices.begin() + static_cast<std::ptrdiff_t>(end));
    std::sort(slices.begin(), slices.end());
    slices.erase(std::unique(slices.begin(), slices.end()), slices.end());
    std::vector<int64_t> epochs;
    for (int32_t slice : slices) {
        const auto found = epochs_.find(slice);
        epochs.push_back(found == epochs_.end() ? -1 : found->second);
    }
    store::CheckpointStore checkpoints(settings_.event_store);
    const bool owned =
        co_await checkpoints.owns_at_epochs(connection, settings_.replica_set.name, fence_.owner, slices, epochs);
    if (!owned) {
        spdlog::warn("fencing check failed: a slice of the batch changed hands, rolling the batch back {} slices={}",
                     runner_context(settings_), fmt::join(slices, ","));
        settings_.ownership->lost(positions_.owned());
    }
    co_return owned;
}

asio::awaitable<bool> BatchCommit::write(pg::AsyncConnection& connection, const std::vector<int64_t>& checkpoints,
                                         bool warn_if_lost) {
    if (!settings_.ownership->may_commit()) {
        // Self-fenced (no heartbeat for too long): the cluster member stops
        // every slice at once and says so; nothing to report here.
        spdlog::debug("not committing: this worker is self-fenced {}", runner_context(settings_));
        co_return false;
    }
    store::CheckpointStore store(settings_.event_store);
    const bool written =
        co_await store.write(connection, settings_.replica_set.name, settings_.projection.name, fence_, checkpoints);
    if (written) {
        positions_.written(checkpoints);
    } else if (!warn_if_lost) {
        spdlog::debug("slices already released; their last positions stay with the next owner {}",
                      runner_context(settings_));
    } else {
        spdlog::warn(
            "fencing check failed: slices were taken away from this worker, not committing for them {} slices={}",
            runner_context(settings_), positions_.owned().size());
        settings_.ownership->lost(positions_.owned());
    }
    co_return written;
}

asio::awaitable<void> BatchCommit::write_unwritten(pg::AsyncConnection& connection, const std::vector<int32_t>& slices,
                                                   bool warn_if_lost) {
    const auto next = positions_.unwritten(slices);
    if (next) co_await write(connection, *next, warn_if_lost);
}

}  // namespace orchestratord::runtime
