#include "runtime/projection_runner.hpp"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <future>
#include <iterator>
#include <stdexcept>

#include "cluster/cluster_member.hpp"
#include "metrics/metrics.hpp"
#include "pg/async_connection.hpp"
#include "pg/connection_pool.hpp"
#include "store/checkpoint_store.hpp"
#include "store/pg_names.hpp"

namespace orchestratord::runtime {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto kSweepInterval = 10s;    // slices without events also get their checkpoint moved
constexpr auto kProgressInterval = 5s;  // how often a running projection logs its progress
constexpr auto kIdleWithNotify = 30s;   // safety read while idle when NOTIFY wakes us
constexpr auto kBusyPoll = 10ms;        // first idle pause without NOTIFY; doubles up to poll_interval_max
// While catching up, one read fetches at least this many events (split into
// batches of batch_size): per event, a read of 2,000 costs the server about
// as much as twenty of 100, without the round trips, and the runner waits
// for its read ahead once per read, not once per batch.
constexpr int64_t kReadAheadEvents = 2000;

// The batch transaction as a plugin sees it. The plugin runs on a handler
// thread; each statement is sent by the event loop, which owns the
// connection, and the handler thread waits for its result.
class LoopTransaction : public plugins::SqlSession {
public:
    LoopTransaction(asio::io_context& io, pg::AsyncConnection& connection) : io_(io), connection_(connection) {}

    plugins::SqlRows exec(const std::string& sql, const plugins::SqlParams& params) override {
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

// Thrown when the fencing check finds slices taken away: the batch was rolled
// back (transactional) or its checkpoints for those slices not written; the
// run loop re-reads the ownership view and the checkpoints.
struct SlicesLost : std::runtime_error {
    SlicesLost() : std::runtime_error("slices were taken away") {}
};

bool is_slices_lost(const std::exception_ptr& failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const SlicesLost&) {
        return true;
    } catch (...) {
        return false;
    }
}

}  // namespace

ProjectionRunner::ProjectionRunner(asio::io_context& io, RunnerSettings settings,
                                   std::unique_ptr<plugins::ProjectionInstance> instance)
    : io_(io),
      slow_handler_timer_(io),
      settings_(std::move(settings)),
      instance_(std::move(instance)),
      reader_(settings_.event_store,
              [this](const std::vector<store::BlockedWriter>& writers, std::chrono::steady_clock::duration waited) {
                  for (const auto& writer : writers) {
                      if (!writer.prepared_gid.empty()) {
                          spdlog::warn(
                              "reader blocked by a prepared transaction on the events table; it holds back every "
                              "projection until COMMIT PREPARED or ROLLBACK PREPARED {} gid=\"{}\" "
                              "prepared_s={:.1f} waited_s={:.1f}",
                              context(), writer.prepared_gid, writer.open_seconds,
                              std::chrono::duration<double>(waited).count());
                          continue;
                      }
                      spdlog::warn(
                          "reader blocked by an open writer on the events table; consider "
                          "idle_in_transaction_session_timeout {} writer_pid={} writer_open_s={:.1f} waited_s={:.1f}",
                          context(), writer.pid, writer.open_seconds, std::chrono::duration<double>(waited).count());
                  }
              }),
      idle_timer_(io),
      backoff_timer_(io),
      crash_isolation_(settings_.state_directory, settings_.replica_set.name, settings_.projection.name,
                       settings_.projection.on_error.crash_limit) {
    ownership_slot_ = settings_.ownership->attach();
    if (settings_.metrics != nullptr) {
        auto& blocked =
            settings_.metrics->reader_blocked_seconds(settings_.replica_set.name, settings_.projection.name);
        reader_.report_waiting([&blocked](double seconds) { blocked.Set(seconds); });
        auto& running =
            settings_.metrics->handler_running_seconds(settings_.replica_set.name, settings_.projection.name);
        report_handler_running_ = [&running](double seconds) { running.Set(seconds); };
    }
}

ProjectionRunner::~ProjectionRunner() {
    handler_thread_.join();
}

std::string ProjectionRunner::handler_context() const {
    return context() + " first_position=" + std::to_string(handler_first_) +
           " last_position=" + std::to_string(handler_last_);
}

// Reports a handler call that runs longer than slow_handler_after, and again
// every further period, until it returns (deliver() cancels the timer).
void ProjectionRunner::watch_slow_handler(std::chrono::steady_clock::time_point started,
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
            context(), seconds, handler_first_, handler_last_);
        if (report_handler_running_) report_handler_running_(seconds);
        watch_slow_handler(started, now + settings_.projection.slow_handler_after);
    });
}

// A shared read is good for us only if it started after we were last woken
// (otherwise it may predate events we were told about). When we repeat the
// very read we did last (nothing moved), it must also be newer than that one,
// or polling would keep getting the same empty answer.
std::chrono::steady_clock::time_point ProjectionRunner::read_not_before(const std::vector<int64_t>& positions) const {
    if (positions == last_read_positions_) return std::max(last_wake_at_, last_read_at_);
    return last_wake_at_;
}

// Reads (or shares) a batch and remembers when and from where, for the next
// read's not_before rule.
asio::awaitable<std::shared_ptr<const store::EventBatch>> ProjectionRunner::read_batch(
    pg::AsyncConnection& connection, const store::ReadRequest& request) {
    auto batch = co_await settings_.coalescer->read(reader_, connection, request, read_not_before(request.positions));
    last_read_at_ = std::chrono::steady_clock::now();
    last_read_positions_ = request.positions;
    co_return batch;
}

std::string ProjectionRunner::context() const {
    const auto& ownership = *settings_.ownership;
    std::string text = "replica_set=" + settings_.replica_set.name + " projection=" + settings_.projection.name;
    text += " worker=";
    text += ownership.owner().empty() ? std::string("-") : ownership.owner();
    text += " generation=";
    text += std::to_string(ownership.generation());
    return text;
}

void ProjectionRunner::stop() {
    stopping_ = true;
    reader_.stop();  // a wait for an open writer ends now
    idle_timer_.cancel();
    backoff_timer_.cancel();
}

void ProjectionRunner::wake() {
    // Remembered, so a wake-up that arrives while we are reading (not
    // sleeping) is not lost: the next sleep returns at once.
    wake_pending_ = true;
    last_wake_at_ = std::chrono::steady_clock::now();
    idle_timer_.cancel();
}

asio::awaitable<void> ProjectionRunner::sleep(std::chrono::milliseconds duration) {
    settings_.ownership->leave(ownership_slot_);  // nothing in flight: our slices may be released meanwhile
    if (stopping_ || wake_pending_) co_return;
    idle_timer_.expires_after(duration);
    boost::system::error_code ec;
    co_await idle_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// Unlike sleep(), new events do not end this wait: a retry or reconnect
// back-off must last its full time even while events keep arriving.
asio::awaitable<void> ProjectionRunner::back_off(std::chrono::milliseconds duration) {
    settings_.ownership->leave(ownership_slot_);  // nothing in flight: our slices may be released meanwhile
    if (stopping_) co_return;
    backoff_timer_.expires_after(duration);
    boost::system::error_code ec;
    co_await backoff_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// Moves every owned slice to at least `position`; true when one moved.
bool ProjectionRunner::advance_positions(std::vector<int64_t>& positions, int64_t position) const {
    bool moved = false;
    for (int32_t s : owned_slices_) {
        auto& p = positions[static_cast<size_t>(s)];
        if (position > p) {
            p = position;
            moved = true;
        }
    }
    return moved;
}

// Loads where this projection stands. Called at start and after every
// database error: an uncommitted batch rolled back, so the database's
// checkpoints are the truth.
asio::awaitable<void> ProjectionRunner::prepare() {
    store::CheckpointStore checkpoints(settings_.event_store);
    slice_count_ = settings_.ownership->slice_count();  // the stored one, from the cluster member
    positions_ =
        co_await checkpoints.load(connection(), settings_.replica_set.name, settings_.projection.name, slice_count_);
    written_ = positions_;
    prefetched_.reset();
    // The cluster member says which slices are ours; start from its view.
    owned_slices_.clear();
    view_version_ = -1;
    reload_checkpoints_ = false;

    co_await load_state();
    const int64_t lowest = *std::min_element(positions_.begin(), positions_.end());
    spdlog::info("projection starting {} mode={} slices={} lowest_checkpoint={}", context(),
                 plugins::mode_name(instance_->mode()), slice_count_, lowest);
    prepared_ = true;
    last_sweep_ = last_progress_ = std::chrono::steady_clock::now();
}

// Reads whether the projection is paused (by any worker of the replica set:
// a pause holds for the projection everywhere, not only where it failed).
asio::awaitable<void> ProjectionRunner::load_state() {
    recheck_state_ = false;
    const std::string state_table = store::own_table(settings_.event_store, "projection_state");
    const auto key = pg::make_params(settings_.replica_set.name, settings_.projection.name);
    const auto state = co_await connection().exec(
        "SELECT state, coalesce(reason, '') FROM " + state_table + " WHERE replica_set = $1 AND projection = $2", key,
        "read the projection's state");
    const bool paused = state.rows > 0 && state.at(0, 0) == "paused";
    if (paused && !paused_) {
        spdlog::warn("projection is paused; it stays stopped until it is resumed {} reason=\"{}\"", context(),
                     state.at(0, 1).value_or(""));
    }
    paused_ = paused;
}

void ProjectionRunner::state_may_have_changed() {
    recheck_state_ = true;
    wake();  // an idle runner says at once that it stopped too
}

// At a batch boundary: switch to the cluster member's current view of our
// slices. Slices going away get their last checkpoints written first (we
// still own them: the member waits for our acknowledgement before releasing);
// slices coming in start from their checkpoints, which another worker may
// have moved.
asio::awaitable<void> ProjectionRunner::follow_ownership() {
    const cluster::OwnershipView view = settings_.ownership->enter(ownership_slot_);
    if (view.version == view_version_ && !reload_checkpoints_) co_return;
    std::vector<int32_t> leaving;
    std::set_difference(owned_slices_.begin(), owned_slices_.end(), view.slices.begin(), view.slices.end(),
                        std::back_inserter(leaving));
    // Only positions advanced by reads that found nothing for these slices
    // are unwritten here (handled events are checkpointed with their batch),
    // so this write just saves the next owner a re-scan. When we were idle
    // the member did not wait for us and the slice may be released already;
    // the positions are still true (reached while we owned it), and the
    // highest position of any row wins, so the next owner is not disturbed.
    co_await write_unwritten_positions(leaving, false);

    std::vector<int32_t> arriving;
    if (reload_checkpoints_) {
        arriving = view.slices;
    } else {
        std::set_difference(view.slices.begin(), view.slices.end(), owned_slices_.begin(), owned_slices_.end(),
                            std::back_inserter(arriving));
    }
    if (!arriving.empty()) {
        store::CheckpointStore checkpoints(settings_.event_store);
        const auto stored = co_await checkpoints.load(connection(), settings_.replica_set.name,
                                                      settings_.projection.name, slice_count_);
        for (int32_t s : arriving) {
            const auto index = static_cast<size_t>(s);
            positions_[index] = written_[index] = stored[index];
        }
    }
    if (!leaving.empty() || !arriving.empty()) {
        spdlog::debug("projection follows the slice assignment {} slices={} arriving={} leaving={}", context(),
                      view.slices.size(), arriving.size(), leaving.size());
    }
    owned_slices_ = view.slices;
    fence_.owner = view.owner;
    fence_.lease = view.lease;
    epochs_ = view.epochs;
    prefetched_.reset();
    last_read_positions_.clear();
    reload_checkpoints_ = false;
    view_version_ = view.version;
    settings_.ownership->acknowledge(ownership_slot_, view.version);
}

// The checkpoints after handling everything up to `position`: a batch is
// final for every owned slice (the read filtered them all), so each one moves
// there, not only those with events in it. The others keep what was written.
std::vector<int64_t> ProjectionRunner::checkpoints_at(int64_t position) const {
    std::vector<int64_t> next = written_;
    for (int32_t s : owned_slices_) {
        auto& p = next[static_cast<size_t>(s)];
        p = std::max(p, position);
    }
    return next;
}

// Writes this worker's checkpoint row through the fencing check. False when
// the lease was revoked (slices were taken away): the slices in use are
// handed back to the ownership view, which re-reads the database.
asio::awaitable<bool> ProjectionRunner::write_checkpoints(const std::vector<int64_t>& next, bool warn_if_lost) {
    if (!settings_.ownership->may_commit()) {
        // Self-fenced (no heartbeat for too long): the cluster member stops
        // every slice at once and says so; nothing to report here.
        spdlog::debug("not committing: this worker is self-fenced {}", context());
        co_return false;
    }
    store::CheckpointStore checkpoints(settings_.event_store);
    const bool written =
        co_await checkpoints.write(connection(), settings_.replica_set.name, settings_.projection.name, fence_, next);
    if (written) {
        for (size_t s = 0; s < written_.size(); ++s) written_[s] = std::max(written_[s], next[s]);
    } else if (!warn_if_lost) {
        spdlog::debug("slices already released; their last positions stay with the next owner {}", context());
    } else {
        spdlog::warn(
            "fencing check failed: slices were taken away from this worker, not committing for them {} slices={}",
            context(), owned_slices_.size());
        settings_.ownership->lost(owned_slices_);
    }
    co_return written;
}

asio::awaitable<void> ProjectionRunner::run() {
    std::chrono::milliseconds reconnect_backoff(100);
    std::string failure;
    while (!stopping_) {
        std::optional<std::chrono::milliseconds> pause_for;
        try {
            pause_for = co_await step();
            reconnect_backoff = 100ms;
        } catch (const SlicesLost&) {
            // Not a database failure: follow the new ownership and re-read.
            reload_checkpoints_ = true;
            prefetched_.reset();
            continue;
        } catch (const std::exception& e) {
            // co_await is not allowed in a handler: note the failure, recover below.
            failure = e.what();
        }
        if (!failure.empty()) {
            if (stopping_) break;
            spdlog::warn("database error, reconnecting {} error=\"{}\" retry_in={}ms", context(), failure,
                         reconnect_backoff.count());
            failure.clear();
            prepared_ = false;
            prefetched_.reset();
            co_await back_off(reconnect_backoff);
            reconnect_backoff = std::min(reconnect_backoff * 2, std::chrono::milliseconds(5000));
            continue;
        }
        if (pause_for) co_await sleep(*pause_for);
    }
    // Graceful stop: leave every slice's checkpoint where it really is.
    if (prepared_) {
        try {
            lease_ = co_await settings_.pool->acquire();
            co_await sweep_checkpoints();
        } catch (const std::exception& e) {
            spdlog::warn("could not write final checkpoints {} error=\"{}\"", context(), e.what());
        }
        lease_.reset();
    }
    spdlog::info("projection stopped {} handled={}", context(), handled_);
}

void ProjectionRunner::replace_instance(std::unique_ptr<plugins::ProjectionInstance> next, store::Scope scope) {
    replacement_ = std::move(next);
    replacement_scope_ = std::move(scope);
    wake();
}

// Called between batches only: no handler of this runner is running and no
// read of the old scope is kept.
void ProjectionRunner::take_replacement() {
    if (!replacement_) return;
    const std::string old_file = instance_->plugin_file();
    instance_ = std::move(replacement_);  // the old instance (and maybe its library) goes here
    settings_.scope = std::move(replacement_scope_);
    prefetched_.reset();
    last_read_positions_.clear();
    spdlog::info("projection now runs the new plugin version {} mode={} file={} was={}", context(),
                 plugins::mode_name(instance_->mode()), instance_->plugin_file(), old_file);
}

// One step on a connection borrowed from the pool: returns the connection
// before the caller sleeps, so idle projections hold none. A connection whose
// state is unknown after an error is closed, so the pool drops it.
asio::awaitable<std::optional<std::chrono::milliseconds>> ProjectionRunner::step() {
    take_replacement();  // a batch boundary
    // Nothing to do until the ownership view changes: no connection needed.
    const bool view_changed = settings_.ownership->version() != view_version_ || reload_checkpoints_ || recheck_state_;
    const bool registered = settings_.ownership->slice_count() > 0;  // else the member's first view wakes us
    if (!registered || (prepared_ && !view_changed && (paused_ || owned_slices_.empty()))) {
        wake_pending_ = false;
        co_return std::chrono::hours(24);
    }
    lease_ = co_await settings_.pool->acquire();
    std::optional<std::chrono::milliseconds> pause_for;
    std::exception_ptr failure;
    try {
        pause_for = co_await step_with_connection();
    } catch (...) {
        failure = std::current_exception();
    }
    // After a fencing failure the batch rolled back cleanly; after any other
    // error the connection's state is unknown, so the pool must drop it.
    if (failure && lease_ && !is_slices_lost(failure)) lease_->connection().close();
    lease_.reset();
    if (failure) std::rethrow_exception(failure);
    co_return pause_for;
}

// Reads and handles one batch; returns how long to sleep afterwards, if at all.
asio::awaitable<std::optional<std::chrono::milliseconds>> ProjectionRunner::step_with_connection() {
    if (!prepared_) co_await prepare();
    if (recheck_state_) co_await load_state();
    co_await follow_ownership();
    if (!settings_.ownership->may_commit()) {
        // Self-fenced: nothing we handled could be committed. The member
        // stops every slice (a new view wakes us); look again meanwhile.
        wake_pending_ = false;
        co_return std::chrono::duration_cast<std::chrono::milliseconds>(settings_.replica_set.heartbeat_interval);
    }
    if (paused_ || owned_slices_.empty()) {
        // Paused, or nothing assigned to us (yet): the member wakes us when that changes.
        wake_pending_ = false;
        co_return std::chrono::hours(24);
    }
    std::shared_ptr<const store::EventBatch> read;
    if (prefetched_) {
        read = std::move(prefetched_);
    } else {
        store::ReadRequest request{slice_count_,
                                   owned_slices_,
                                   positions_,
                                   settings_.scope,
                                   settings_.replica_set.batch_size,
                                   settings_.replica_set.max_read_bytes};
        wake_pending_ = false;  // this read sees everything committed before it
        read = co_await read_batch(connection(), request);
    }
    const store::EventBatch& batch = *read;
    if (batch.events.empty()) {
        last_read_full_ = false;
        // A prefix up to the first missing position may be final
        // without events of ours in it; nothing to hand over then.
        if (advance_positions(positions_, batch.final_position)) co_return std::nullopt;
        co_await housekeeping();
        // Going idle: the checkpoints that reads without events of ours
        // moved are written now (one UPDATE, only when they moved), not at
        // the first sweep after the pause, which lasts 30 s with NOTIFY: a
        // scoped projection whose scope saw none of the last events would
        // show a lag that long although it has caught up.
        co_await write_unwritten_positions(owned_slices_, true);
        const auto poll_max =
            std::chrono::duration_cast<std::chrono::milliseconds>(settings_.replica_set.poll_interval_max);
        const auto pause = settings_.notify_available ? std::chrono::milliseconds(kIdleWithNotify) : idle_;
        idle_ = std::min(idle_ * 2, poll_max);
        co_return pause;
    }
    idle_ = kBusyPoll;
    // Two full reads in a row mean we are catching up: read the next one
    // while handling this one. At the head the next read would mostly be
    // empty, so it waits for a wake-up instead (one full read can happen
    // there too, when an append of exactly a batch arrives).
    const bool full = static_cast<int64_t>(batch.events.size()) >= settings_.replica_set.batch_size;
    const bool catching_up = full && last_read_full_;
    last_read_full_ = full;
    if (catching_up) {
        co_await handle_and_prefetch(batch);
    } else {
        co_await handle(batch);
    }
    co_await housekeeping();
    co_return std::nullopt;
}

// Delivers events [begin, end) and commits the checkpoint of their slices at
// `checkpoint`. Returns the plugin's error, if any; database errors throw.
asio::awaitable<plugins::CallResult> ProjectionRunner::deliver(const store::EventBatch& batch, size_t begin, size_t end,
                                                               int64_t checkpoint) {
    const auto events = batch.pointers(begin, end);
    const bool transactional = instance_->mode() == plugins::ProjectionMode::transactional;
    if (transactional) co_await connection().exec("BEGIN", pg::Params{}, "begin the batch transaction");
    std::optional<LoopTransaction> transaction;
    if (transactional) transaction.emplace(io_, connection());
    plugins::SqlSession* session = transaction ? &*transaction : nullptr;
    // The handler runs on a handler thread; this coroutine resumes on the loop.
    // An at-least-once handler needs no connection: the pool lends it to the
    // other projections meanwhile, so a handler that hangs holds none.
    if (!transactional) lease_.reset();
    handler_busy_ = true;
    handler_first_ = batch.events[begin].global_position;
    handler_last_ = batch.events[end - 1].global_position;
    const auto started = std::chrono::steady_clock::now();
    watch_slow_handler(started, started + settings_.projection.slow_handler_after);
    const CrashBreadcrumb breadcrumb = crash_isolation_.breadcrumb(handler_first_, handler_last_);
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
    handler_busy_ = false;
    slow_handler_timer_.cancel();
    if (report_handler_running_) report_handler_running_(0);
    if (!lease_) lease_ = co_await settings_.pool->acquire();
    if (!result.ok) {
        if (transactional) co_await connection().exec("ROLLBACK", pg::Params{}, "roll back the failed batch");
        co_return result;
    }
    // At-least-once: written right after the handler returns, so a crash
    // repeats at most this batch. (It overlaps with the prefetched read.)
    // Transactional: the fencing check inside the batch transaction makes
    // the plugin's writes and the checkpoints commit only while we own the
    // slices; otherwise everything rolls back.
    if (!co_await write_checkpoints(checkpoints_at(checkpoint)) ||
        (transactional && !co_await still_own_slices_of(batch, begin, end))) {
        if (transactional) co_await connection().exec("ROLLBACK", pg::Params{}, "roll back the fenced batch");
        throw SlicesLost();
    }
    if (transactional) co_await connection().exec("COMMIT", pg::Params{}, "commit the batch");
    co_return result;
}

// The second half of the fence for a transactional batch, after its
// checkpoint write: every slice with events in [begin, end) is still ours at
// the epoch we acquired it with. (The lease alone does not change when a
// slice is handed over gracefully.)
asio::awaitable<bool> ProjectionRunner::still_own_slices_of(const store::EventBatch& batch, size_t begin, size_t end) {
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
        co_await checkpoints.owns_at_epochs(connection(), settings_.replica_set.name, fence_.owner, slices, epochs);
    if (!owned) {
        spdlog::warn("fencing check failed: a slice of the batch changed hands, rolling the batch back {} slices={}",
                     context(), fmt::join(slices, ","));
        settings_.ownership->lost(owned_slices_);
    }
    co_return owned;
}

// Handles `batch` while the next batch is read on a second connection (when
// the pool has one free right now), so PostgreSQL works on batch N+1 while
// this process handles batch N. The read
// assumes batch N succeeds; when it does not (retries exhausted, pause,
// stop), the prefetched batch is dropped and read again later. The handler is
// never cancelled: plugin code on a handler thread may be using the batch.
asio::awaitable<void> ProjectionRunner::handle_and_prefetch(const store::EventBatch& batch) {
    std::vector<int64_t> expected = positions_;
    advance_positions(expected, batch.final_position);
    struct Prefetch {
        std::shared_ptr<const store::EventBatch> batch;
        bool done = false;
        asio::steady_timer finished;
        explicit Prefetch(asio::io_context& io) : finished(io, asio::steady_timer::time_point::max()) {}
    };
    std::optional<pg::ConnectionPool::Lease> second;
    try {
        second = co_await settings_.pool->try_acquire();
    } catch (const std::exception& e) {
        spdlog::debug("no connection for reading ahead {} error=\"{}\"", context(), e.what());
    }
    if (!second) {
        co_await handle(batch);
        co_return;
    }
    auto prefetch = std::make_shared<Prefetch>(io_);
    // Catching up: read several batches at once (fewer, larger statements);
    // they are still handed over and checkpointed batch by batch.
    store::ReadRequest next{slice_count_,    owned_slices_,      expected,
                            settings_.scope, read_ahead_limit(), settings_.replica_set.max_read_bytes};
    wake_pending_ = false;  // the prefetch sees everything committed before it
    asio::co_spawn(
        io_,
        [this, prefetch, next, lease = std::move(*second)]() mutable -> asio::awaitable<void> {
            try {
                prefetch->batch = co_await read_batch(lease.connection(), next);
            } catch (const std::exception& e) {
                // The connection is in an unknown state: the pool drops it.
                spdlog::debug("prefetch failed {} error=\"{}\"", context(), e.what());
                lease.connection().close();
            }
            lease.reset();
            prefetch->done = true;
            prefetch->finished.cancel();
        },
        asio::detached);

    // Even when handling fails, wait for the prefetch: it refers to this
    // runner, and its result is only good if the batch succeeded.
    std::exception_ptr failure;
    try {
        co_await handle(batch);
    } catch (...) {
        failure = std::current_exception();
    }
    if (!prefetch->done) {
        boost::system::error_code ec;
        co_await prefetch->finished.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (failure) std::rethrow_exception(failure);
    if (prefetch->batch && !paused_ && positions_ == expected) prefetched_ = std::move(prefetch->batch);
}

// Delivers events [begin, end) until it succeeds or `retry.limit` tries of
// them (counting the `retry.tried` ones already made) have failed, backing
// off between tries (from `retry.backoff`, doubling). After a back-off the
// batch may be stale: a stop, a plugin swap, a change of our slices (they may
// have been handed over while we waited) or a self-fence abandons it
// (`abandoned`): nothing of it was committed and it is read again after the
// boundary.
asio::awaitable<ProjectionRunner::Delivery> ProjectionRunner::deliver_with_retries(const store::EventBatch& batch,
                                                                                   size_t begin, size_t end,
                                                                                   int64_t checkpoint, Retry retry) {
    const auto& on_error = settings_.projection.on_error;
    const auto max_backoff = std::chrono::duration_cast<std::chrono::milliseconds>(on_error.max_backoff);
    Delivery delivery;
    delivery.attempts = retry.tried;
    for (;;) {
        delivery.result = co_await deliver(batch, begin, end, checkpoint);
        ++delivery.attempts;
        for (size_t i = begin; i < end; ++i) {
            const int64_t position = batch.events[i].global_position;
            if (delivery.result.ok) {
                failed_tries_.erase(position);
            } else {
                ++failed_tries_[position];
            }
        }
        if (delivery.result.ok) co_return delivery;
        spdlog::error(
            "projection failed to handle a batch {} attempt={}/{} first_position={} last_position={} error=\"{}\"",
            context(), delivery.attempts, on_error.max_attempts, batch.events[begin].global_position,
            batch.events[end - 1].global_position, delivery.result.error);
        if (delivery.attempts >= retry.limit) co_return delivery;
        if (!co_await back_off_for_retry(retry.backoff)) {
            spdlog::info(
                "not retrying the batch as it was read: the slices, the plugin or the run state changed during the "
                "back-off; it is read again {} first_position={} last_position={}",
                context(), batch.events[begin].global_position, batch.events[end - 1].global_position);
            delivery.abandoned = true;
            co_return delivery;
        }
        retry.backoff = std::min(retry.backoff * 2, max_backoff);
    }
}

// Waits before another try, lending the connection to other projections
// meanwhile (nothing of the failed try is left on it: it rolled back). False
// when the batch must be abandoned at a boundary instead.
asio::awaitable<bool> ProjectionRunner::back_off_for_retry(std::chrono::milliseconds backoff) {
    lease_.reset();
    co_await back_off(backoff);
    lease_ = co_await settings_.pool->acquire();
    co_return !boundary_wanted();
}

// Hands a read over in batches of batch_size (a read while catching up holds
// several), each committed with its checkpoint. Between batches, a change
// of the slice view, a stop or a plugin swap ends the read early: the rest
// is read again after the boundary.
asio::awaitable<void> ProjectionRunner::handle(const store::EventBatch& batch) {
    const size_t size = batch.events.size();
    const auto batch_size = static_cast<size_t>(settings_.replica_set.batch_size);
    for (size_t begin = 0; begin < size; begin += batch_size) {
        if (begin > 0 && boundary_wanted()) co_return;
        const size_t end = std::min(size, begin + batch_size);
        // Every owned slice is final up to the read's final position, so up
        // to any event in it too.
        const int64_t checkpoint = end == size ? batch.final_position : batch.events[end - 1].global_position;
        if (crash_isolation_.suspects(batch.events[begin].global_position, batch.events[end - 1].global_position)) {
            if (!co_await handle_one_by_one(batch, begin, end, checkpoint)) co_return;
            continue;
        }
        if (!co_await handle_range(batch, begin, end, checkpoint)) co_return;
        crash_isolation_.passed(checkpoint);
    }
}

// The previous process crashed in this projection's handler on events of
// this range: they are delivered one at a time, so a further crash names a
// single event, and an event that crashed the process crash_limit times gets
// the on_error policy without the handler being called again.
asio::awaitable<bool> ProjectionRunner::handle_one_by_one(const store::EventBatch& batch, size_t begin, size_t end,
                                                          int64_t checkpoint) {
    for (size_t i = begin; i < end; ++i) {
        if (i > begin && boundary_wanted()) co_return false;
        const int64_t position = batch.events[i].global_position;
        const int64_t until = i + 1 == end ? checkpoint : position;
        const auto crashed_too_often = crash_isolation_.verdict(position);
        const bool go_on = crashed_too_often ? co_await isolate_crashing_event(batch, i, until, *crashed_too_often)
                                             : co_await handle_range(batch, i, i + 1, until);
        if (!go_on) co_return false;
        crash_isolation_.passed(until);
    }
    co_return true;
}

// The on_error policy for an event the handler crashed the process on too
// often, as handle_range() applies it to one that keeps failing.
asio::awaitable<bool> ProjectionRunner::isolate_crashing_event(const store::EventBatch& batch, size_t index,
                                                               int64_t checkpoint, const std::string& error) {
    const int64_t position = batch.events[index].global_position;
    if (settings_.projection.on_error.policy == config::OnErrorPolicy::pause) {
        co_await pause("event at position " + std::to_string(position) + " (event_id " + batch.events[index].event_id +
                       "): " + error);
        crash_isolation_.passed(position);
        co_return false;
    }
    co_await dead_letter(batch, index, error, crash_isolation_.crashes());
    advance_positions(positions_, position);
    ++handled_;
    if (checkpoint > position) {
        if (!co_await write_checkpoints(checkpoints_at(checkpoint))) throw SlicesLost();
        advance_positions(positions_, checkpoint);
    }
    co_return true;
}

int64_t ProjectionRunner::read_ahead_limit() const {
    return std::max<int64_t>(settings_.replica_set.batch_size, kReadAheadEvents);
}

bool ProjectionRunner::boundary_wanted() const {
    return stopping_ || replacement_ != nullptr || recheck_state_ || settings_.ownership->version() != view_version_ ||
           !settings_.ownership->may_commit();
}

// One batch: events [begin, end) of the read, checkpointed at `checkpoint`.
// False when the projection cannot go on with this read (stopping, paused,
// or the batch was abandoned at a boundary). When a batch of several events
// fails, it backs off once and then delivers the events one by one, so the
// healthy ones before the failing event commit and the on_error policy
// applies to that event alone: a pause holds exactly there, a dead letter
// names it. The batch's try counts as each event's first attempt, so an
// event gets max_attempts tries in all, and the dead letter says so.
asio::awaitable<bool> ProjectionRunner::handle_range(const store::EventBatch& batch, size_t begin, size_t end,
                                                     int64_t checkpoint) {
    const auto& on_error = settings_.projection.on_error;
    const auto initial_backoff = std::chrono::duration_cast<std::chrono::milliseconds>(on_error.initial_backoff);
    const bool single = end - begin == 1;
    // Tries an event already had on this worker (in earlier batches, or
    // before a batch was abandoned and read again) count towards its limit.
    auto tried = [&](size_t i) {
        const auto found = failed_tries_.find(batch.events[i].global_position);
        return found == failed_tries_.end() ? int64_t{0} : found->second;
    };
    const int64_t tried_before = single ? tried(begin) : 0;
    const Delivery whole = co_await deliver_with_retries(
        batch, begin, end, checkpoint,
        Retry{tried_before, single ? std::max(on_error.max_attempts, tried_before + 1) : 1, initial_backoff});
    if (whole.abandoned) co_return false;
    if (whole.result.ok) {
        advance_positions(positions_, checkpoint);
        handled_ += static_cast<int64_t>(end - begin);
        co_return true;
    }
    if (stopping_) co_return false;  // the next run starts from the checkpoint
    if (!single && on_error.max_attempts > 1 && !co_await back_off_for_retry(initial_backoff)) co_return false;
    const auto next_backoff =
        std::min(initial_backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(on_error.max_backoff));
    for (size_t i = begin; i < end; ++i) {
        const int64_t position = batch.events[i].global_position;
        // A lone event already had all its tries above. Split out of a
        // failed batch, an event gets at least one try alone (so the failing
        // one is found, also with max_attempts 1).
        Delivery one = whole;
        if (!single) {
            one = co_await deliver_with_retries(
                batch, i, i + 1, position,
                Retry{tried(i), std::max(on_error.max_attempts, tried(i) + 1), next_backoff});
        }
        if (one.abandoned) co_return false;
        if (one.result.ok) {
            advance_positions(positions_, position);
            ++handled_;
            continue;
        }
        if (stopping_) co_return false;
        if (on_error.policy == config::OnErrorPolicy::pause) {
            co_await pause("event at position " + std::to_string(position) + " (event_id " + batch.events[i].event_id +
                           ") failed " + std::to_string(one.attempts) + " times: " + one.result.error);
            co_return false;
        }
        co_await dead_letter(batch, i, one.result.error, one.attempts);
        failed_tries_.erase(position);
        advance_positions(positions_, position);
        ++handled_;
    }
    // The rest of the read's range up to `checkpoint` had no events of ours.
    if (!co_await write_checkpoints(checkpoints_at(checkpoint))) {
        throw SlicesLost();
    }
    advance_positions(positions_, checkpoint);
    co_return true;
}

asio::awaitable<void> ProjectionRunner::dead_letter(const store::EventBatch& batch, size_t index,
                                                    const std::string& error, int64_t attempts) {
    const orch_event& event = batch.events[index];
    const int32_t slice = batch.slices[index];
    const std::string table = store::own_table(settings_.event_store, "dead_letters");
    const auto params = pg::make_params(settings_.replica_set.name, settings_.projection.name, std::to_string(slice),
                                        std::to_string(event.global_position), std::string(event.event_id), error,
                                        std::to_string(attempts));
    co_await connection().exec("BEGIN", pg::Params{}, "begin dead-lettering");
    co_await connection().exec(
        "INSERT INTO " + table +
            " (replica_set, projection, slice, global_position, event_id, error, attempts) VALUES ($1, $2, $3, $4, $5, "
            "$6, $7) ON CONFLICT (replica_set, projection, event_id) DO UPDATE SET error = EXCLUDED.error, "
            "attempts = EXCLUDED.attempts, created_at = now()",
        params, "record a dead letter");
    if (!co_await write_checkpoints(checkpoints_at(event.global_position))) {
        co_await connection().exec("ROLLBACK", pg::Params{}, "roll back the fenced dead letter");
        throw SlicesLost();
    }
    co_await connection().exec("COMMIT", pg::Params{}, "commit the dead letter");
    spdlog::error("dead-lettered an event {} position={} event_id={} event_type={} attempts={} error=\"{}\"", context(),
                  event.global_position, event.event_id, event.event_type, attempts, error);
}

asio::awaitable<void> ProjectionRunner::pause(const std::string& reason) {
    const std::string table = store::own_table(settings_.event_store, "projection_state");
    const auto params = pg::make_params(settings_.replica_set.name, settings_.projection.name, reason);
    co_await connection().exec("INSERT INTO " + table +
                                   " (replica_set, projection, state, reason) VALUES ($1, $2, 'paused', $3) "
                                   "ON CONFLICT (replica_set, projection) DO UPDATE SET state = 'paused', "
                                   "reason = EXCLUDED.reason, updated_at = now()",
                               params, "pause the projection");
    paused_ = true;
    // The other workers' runners of this projection stop too (they re-read
    // the state when the cluster channel says something changed).
    co_await connection().exec("NOTIFY " + store::quote_identifier(cluster::cluster_channel(settings_.event_store)),
                               pg::Params{}, "tell the other workers");
    spdlog::error("projection paused after repeated failures; other projections continue {} reason=\"{}\"", context(),
                  reason);
}

// Periodic work between batches: the checkpoint sweep and the progress line.
asio::awaitable<void> ProjectionRunner::housekeeping() {
    if (std::chrono::steady_clock::now() - last_sweep_ > kSweepInterval) co_await sweep_checkpoints();
    if (std::chrono::steady_clock::now() - last_progress_ > kProgressInterval) co_await report_progress();
}

// Moves the checkpoints of slices that had no events recently, so a restart
// does not rescan long ranges for them.
asio::awaitable<void> ProjectionRunner::sweep_checkpoints() {
    last_sweep_ = std::chrono::steady_clock::now();
    co_await load_state();  // a pause elsewhere whose NOTIFY was missed
    // Tries of events every owned slice has passed are no longer needed.
    int64_t lowest = INT64_MAX;
    for (int32_t s : owned_slices_) lowest = std::min(lowest, positions_[static_cast<size_t>(s)]);
    failed_tries_.erase(failed_tries_.begin(), failed_tries_.upper_bound(lowest));
    co_await write_unwritten_positions(owned_slices_, true);
}

// Writes the checkpoints of `slices` whose handled position is ahead of the
// last one written (moved by reads that found nothing for them).
asio::awaitable<void> ProjectionRunner::write_unwritten_positions(const std::vector<int32_t>& slices,
                                                                  bool warn_if_lost) {
    std::vector<int64_t> next = written_;
    bool behind = false;
    for (int32_t s : slices) {
        const auto index = static_cast<size_t>(s);
        if (positions_[index] > next[index]) {
            next[index] = positions_[index];
            behind = true;
        }
    }
    if (behind) co_await write_checkpoints(next, warn_if_lost);
}

asio::awaitable<void> ProjectionRunner::report_progress() {
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - last_progress_).count();
    last_progress_ = now;
    const auto head =
        co_await connection().exec("SELECT coalesce(max(global_position), 0) FROM " +
                                       store::qualified(settings_.event_store, settings_.event_store.events_table),
                                   pg::Params{}, "read the head position");
    const int64_t head_position = std::stoll(*head.at(0, 0));
    int64_t lowest = head_position;
    for (int32_t s : owned_slices_) lowest = std::min(lowest, positions_[static_cast<size_t>(s)]);
    const double rate = seconds > 0 ? static_cast<double>(handled_ - handled_at_last_progress_) / seconds : 0;
    handled_at_last_progress_ = handled_;
    spdlog::info("projection progress {} slices={} checkpoint={} head={} lag={} handled={} rate={:.0f}/s", context(),
                 owned_slices_.size(), lowest, head_position, std::max<int64_t>(0, head_position - lowest), handled_,
                 rate);
}

}  // namespace orchestratord::runtime
