#include "runtime/projection_runner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <climits>
#include <iterator>
#include <limits>

#include "log/quoted.hpp"
#include "metrics/metrics.hpp"
#include "pg/async_connection.hpp"
#include "store/checkpoint_store.hpp"
#include "store/projection_state.hpp"

namespace orchestratord::runtime {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto kSweepInterval = 10s;   // slices without events also get their checkpoint moved
constexpr auto kIdleWithNotify = 30s;  // safety read while idle when NOTIFY wakes us
constexpr auto kBusyPoll = 10ms;       // first idle pause without NOTIFY; doubles up to poll_interval_max

}  // namespace

ProjectionRunner::ProjectionRunner(asio::io_context& io, RunnerSettings settings,
                                   std::unique_ptr<plugins::ProjectionInstance> instance)
    : settings_(std::move(settings)),
      instance_(std::move(instance)),
      reader_(settings_.event_store,
              [this](const std::vector<store::BlockedWriter>& writers, std::chrono::steady_clock::duration waited) {
                  warn_blocked_writers(settings_, writers, waited);
              }),
      idle_timer_(io),
      backoff_timer_(io),
      crash_isolation_(settings_.state_directory, settings_.replica_set.name, settings_.projection.name,
                       settings_.projection.on_error.crash_limit),
      commit_(io, settings_, instance_, positions_, crash_isolation_),
      failures_(settings_, commit_, positions_, crash_isolation_,
                FailurePolicy::Runner{
                    .stopping = [this] { return stopping_; },
                    .boundary_wanted = [this] { return boundary_wanted(); },
                    .back_off = [this](std::chrono::milliseconds duration) { return back_off(duration); },
                    .paused =
                        [this] {
                            paused_ = true;
                            settings_.projection_metrics.paused.set(1);
                        },
                }),
      read_ahead_(
          io, *settings_.pool,
          [this](pg::AsyncConnection& connection, const store::ReadRequest& request) {
              return read_batch(connection, request);
          },
          [this] { return context(); }),
      progress_(settings_) {
    ownership_slot_ = settings_.ownership->attach();
    if (settings_.metrics != nullptr) {
        reader_.report_waiting(
            [blocked = settings_.projection_metrics.reader_blocked_seconds](double seconds) { blocked.set(seconds); });
    }
}

ProjectionRunner::~ProjectionRunner() = default;

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

void ProjectionRunner::state_may_have_changed() {
    recheck_state_ = true;
    wake();  // an idle runner says at once that it stopped too
}

void ProjectionRunner::replace_instance(std::unique_ptr<plugins::ProjectionInstance> next, store::Scope scope) {
    replacement_ = std::move(next);
    replacement_scope_ = std::move(scope);
    wake();
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
            read_ahead_.drop();
            continue;
        } catch (const std::exception& e) {
            // co_await is not allowed in a handler: note the failure, recover below.
            failure = e.what();
        }
        if (!failure.empty()) {
            if (stopping_) break;
            spdlog::warn("database error, reconnecting {} error={} retry_in={}ms", context(), log::quoted(failure),
                         reconnect_backoff.count());
            failure.clear();
            prepared_ = false;
            read_ahead_.drop();
            co_await back_off(reconnect_backoff);
            reconnect_backoff = std::min(reconnect_backoff * 2, std::chrono::milliseconds(5000));
            continue;
        }
        if (pause_for) co_await sleep(*pause_for);
    }
    // Graceful stop: leave every slice's checkpoint where it really is.
    if (prepared_) {
        try {
            Lease lease = co_await settings_.pool->acquire();
            co_await sweep_checkpoints(lease.connection());
        } catch (const std::exception& e) {
            spdlog::warn("could not write final checkpoints {} error={}", context(), log::quoted(e.what()));
        }
    }
    spdlog::info("projection stopped {} handled={}", context(), failures_.handled());
}

// One step on a connection borrowed from the pool: returns the connection
// before the caller sleeps, so idle projections hold none. A connection whose
// state is unknown after an error is closed, so the pool drops it.
asio::awaitable<std::optional<std::chrono::milliseconds>> ProjectionRunner::step() {
    take_replacement();  // a batch boundary
    // Nothing to do until the ownership view changes: no connection needed.
    const bool view_changed = settings_.ownership->version() != view_version_ || reload_checkpoints_ || recheck_state_;
    const bool registered = settings_.ownership->slice_count() > 0;  // else the member's first view wakes us
    if (!registered || (prepared_ && !view_changed && (paused_ || positions_.owned().empty()))) {
        wake_pending_ = false;
        co_return std::chrono::hours(24);
    }
    Lease lease = co_await settings_.pool->acquire();
    try {
        co_return co_await step_with_connection(lease);
    } catch (const SlicesLost&) {
        throw;  // the batch rolled back cleanly: the connection goes back to the pool
    } catch (...) {
        // After any other error the connection's state is unknown, so the
        // pool must drop it.
        if (lease) lease.connection().close();
        throw;
    }
}

// Reads and handles one batch; returns how long to sleep afterwards, if at
// all. The handling may lend `lease` to the pool and borrow another.
asio::awaitable<std::optional<std::chrono::milliseconds>> ProjectionRunner::step_with_connection(Lease& lease) {
    if (!prepared_) co_await prepare(lease.connection());
    if (recheck_state_) co_await load_state(lease.connection());
    co_await follow_ownership(lease.connection());
    if (!settings_.ownership->may_commit()) {
        // Self-fenced: nothing we handled could be committed. The member
        // stops every slice (a new view wakes us); look again meanwhile.
        wake_pending_ = false;
        co_return std::chrono::duration_cast<std::chrono::milliseconds>(settings_.replica_set.heartbeat_interval);
    }
    if (paused_ || positions_.owned().empty()) {
        // Paused, or nothing assigned to us (yet): the member wakes us when that changes.
        wake_pending_ = false;
        co_return std::chrono::hours(24);
    }
    std::shared_ptr<const store::EventBatch> read = read_ahead_.take();
    if (!read) {
        store::ReadRequest request{slice_count_,
                                   positions_.owned(),
                                   positions_.positions(),
                                   settings_.scope,
                                   settings_.replica_set.batch_size,
                                   settings_.replica_set.max_read_bytes};
        read = co_await read_batch(lease.connection(), request);
    }
    const store::EventBatch& batch = *read;
    if (batch.events.empty()) {
        last_read_full_ = false;
        // A prefix up to the first missing position may be final
        // without events of ours in it; nothing to hand over then.
        if (positions_.advance(batch.final_position)) co_return std::nullopt;
        co_await housekeeping(lease.connection());
        // Going idle: the checkpoints that reads without events of ours
        // moved are written now (one UPDATE, only when they moved), not at
        // the first sweep after the pause, which lasts 30 s with NOTIFY: a
        // scoped projection whose scope saw none of the last events would
        // show a lag that long although it has caught up.
        co_await commit_.write_unwritten(lease.connection(), positions_.owned(), true);
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
        co_await handle_and_read_ahead(lease, batch);
    } else {
        co_await failures_.handle(lease, batch);
    }
    co_await housekeeping(lease.connection());
    co_return std::nullopt;
}

// Loads where this projection stands. Called at start and after every
// database error: an uncommitted batch rolled back, so the database's
// checkpoints are the truth.
asio::awaitable<void> ProjectionRunner::prepare(pg::AsyncConnection& connection) {
    store::CheckpointStore checkpoints(settings_.event_store);
    slice_count_ = settings_.ownership->slice_count();  // the stored one, from the cluster member
    // No slice is owned yet: the cluster member says which are ours, and the
    // first follow_ownership() starts from its view.
    positions_ = SlicePositions(
        co_await checkpoints.load(connection, settings_.replica_set.name, settings_.projection.name, slice_count_));
    read_ahead_.drop();
    view_version_ = -1;
    reload_checkpoints_ = false;

    co_await load_state(connection);
    spdlog::info("projection starting {} mode={} slices={} lowest_checkpoint={}", context(),
                 plugins::mode_name(instance_->mode()), slice_count_, positions_.lowest());
    prepared_ = true;
    last_sweep_ = std::chrono::steady_clock::now();
    progress_.restart(positions_.lowest());
}

ProjectionRunner::Standing ProjectionRunner::standing() const {
    Standing standing;
    standing.started = prepared_;
    standing.paused = paused_;
    if (!prepared_) return standing;
    standing.slices = positions_.owned();
    if (standing.slices.empty()) {
        standing.lag = 0;  // nothing of ours can be behind
        return standing;
    }
    standing.checkpoint = positions_.lowest_owned(std::numeric_limits<int64_t>::max());
    if (const auto head = progress_.head()) standing.lag = std::max<int64_t>(0, *head - *standing.checkpoint);
    return standing;
}

// Reads whether the projection is paused (by any worker of the replica set:
// a pause holds for the projection everywhere, not only where it failed).
asio::awaitable<void> ProjectionRunner::load_state(pg::AsyncConnection& connection) {
    recheck_state_ = false;
    // Named, not a braced temporary in the co_await: GCC 12 destroys such a
    // temporary twice.
    const store::ProjectionKey key{settings_.replica_set.name, settings_.projection.name};
    const store::ProjectionState state = co_await store::read_projection_state(connection, settings_.event_store, key);
    if (state.paused && !paused_) {
        spdlog::warn("projection is paused; it stays stopped until it is resumed {} reason={}", context(),
                     log::quoted(state.reason));
    }
    paused_ = state.paused;
    settings_.projection_metrics.paused.set(paused_ ? 1 : 0);
}

void ProjectionRunner::report_plugin(const std::string& plugin, const std::string& version) {
    if (settings_.metrics == nullptr) return;
    settings_.metrics->set_plugin_info(settings_.replica_set.name, settings_.projection.name, plugin, version);
}

// Called between batches only: no handler of this runner is running and no
// read of the old scope is kept.
void ProjectionRunner::take_replacement() {
    if (!replacement_) return;
    const std::string old_plugin = instance_->plugin_name() + " " + instance_->plugin_version();
    const std::string old_file = instance_->plugin_file();
    instance_ = std::move(replacement_);  // the old instance (and maybe its library) goes here
    settings_.scope = std::move(replacement_scope_);
    read_ahead_.drop();
    last_read_positions_.clear();
    // The file is usually the same path, replaced: the versions tell the swap apart.
    spdlog::info(
        "projection now runs the new plugin version {} plugin={} was={} mode={} file={}{}", context(),
        log::quoted(instance_->plugin_name() + " " + instance_->plugin_version()), log::quoted(old_plugin),
        plugins::mode_name(instance_->mode()), log::quoted(instance_->plugin_file()),
        old_file == instance_->plugin_file() ? std::string() : std::string(" was_file=") + log::quoted(old_file));
}

// At a batch boundary: switch to the cluster member's current view of our
// slices. Slices going away get their last checkpoints written first (we
// still own them: the member waits for our acknowledgement before releasing);
// slices coming in start from their checkpoints, which another worker may
// have moved.
asio::awaitable<void> ProjectionRunner::follow_ownership(pg::AsyncConnection& connection) {
    const cluster::OwnershipView view = settings_.ownership->enter(ownership_slot_);
    if (view.version == view_version_ && !reload_checkpoints_) co_return;
    const std::vector<int32_t>& owned = positions_.owned();
    std::vector<int32_t> leaving;
    std::set_difference(owned.begin(), owned.end(), view.slices.begin(), view.slices.end(),
                        std::back_inserter(leaving));
    // Only positions advanced by reads that found nothing for these slices
    // are unwritten here (handled events are checkpointed with their batch),
    // so this write just saves the next owner a re-scan. When we were idle
    // the member did not wait for us and the slice may be released already;
    // the positions are still true (reached while we owned it), and the
    // highest position of any row wins, so the next owner is not disturbed.
    co_await commit_.write_unwritten(connection, leaving, false);

    std::vector<int32_t> arriving;
    if (reload_checkpoints_) {
        arriving = view.slices;
    } else {
        std::set_difference(view.slices.begin(), view.slices.end(), owned.begin(), owned.end(),
                            std::back_inserter(arriving));
    }
    if (!arriving.empty()) {
        store::CheckpointStore checkpoints(settings_.event_store);
        positions_.adopt(arriving, co_await checkpoints.load(connection, settings_.replica_set.name,
                                                             settings_.projection.name, slice_count_));
    }
    if (!leaving.empty() || !arriving.empty()) {
        spdlog::debug("projection follows the slice assignment {} slices={} arriving={} leaving={}", context(),
                      view.slices.size(), arriving.size(), leaving.size());
    }
    positions_.set_owned(view.slices);
    commit_.follow(view);
    read_ahead_.drop();
    last_read_positions_.clear();
    reload_checkpoints_ = false;
    view_version_ = view.version;
    settings_.ownership->acknowledge(ownership_slot_, view.version);
}

// A shared read is good for us only if it started after we were last woken
// (otherwise it may predate events we were told about). When we repeat the
// very read we did last (nothing moved), it must also be newer than that one,
// or polling would keep getting the same empty answer.
std::chrono::steady_clock::time_point ProjectionRunner::read_not_before(const std::vector<int64_t>& positions) const {
    if (positions == last_read_positions_) return std::max(last_wake_at_, last_read_at_);
    return last_wake_at_;
}

// Reads (or shares) a batch, here or ahead, and remembers when and from
// where, for the next read's not_before rule.
asio::awaitable<std::shared_ptr<const store::EventBatch>> ProjectionRunner::read_batch(
    pg::AsyncConnection& connection, const store::ReadRequest& request) {
    wake_pending_ = false;  // this read sees everything committed before it
    auto batch = co_await settings_.coalescer->read(reader_, connection, request, read_not_before(request.positions));
    last_read_at_ = std::chrono::steady_clock::now();
    last_read_positions_ = request.positions;
    co_return batch;
}

// Catching up: the next read (of several batches at once: fewer, larger
// statements, still handed over and checkpointed batch by batch) runs while
// this one is handled, assuming it succeeds.
asio::awaitable<void> ProjectionRunner::handle_and_read_ahead(Lease& lease, const store::EventBatch& batch) {
    const std::vector<int64_t> expected = positions_.advanced(batch.final_position);
    store::ReadRequest next{slice_count_,
                            positions_.owned(),
                            expected,
                            settings_.scope,
                            ReadAhead::limit(settings_.replica_set.batch_size),
                            settings_.replica_set.max_read_bytes};
    std::function<asio::awaitable<void>()> handle = [&] { return failures_.handle(lease, batch); };
    std::function<bool()> as_assumed = [&] { return !paused_ && positions_.positions() == expected; };
    co_await read_ahead_.handle_while_reading(std::move(next), std::move(handle), std::move(as_assumed));
}

bool ProjectionRunner::boundary_wanted() const {
    return stopping_ || replacement_ != nullptr || recheck_state_ || settings_.ownership->version() != view_version_ ||
           !settings_.ownership->may_commit();
}

// Periodic work between batches: the checkpoint sweep and the progress line.
asio::awaitable<void> ProjectionRunner::housekeeping(pg::AsyncConnection& connection) {
    if (std::chrono::steady_clock::now() - last_sweep_ > kSweepInterval) co_await sweep_checkpoints(connection);
    if (progress_.due()) co_await progress_.report(connection, positions_, failures_.handled());
}

// Moves the checkpoints of slices that had no events recently, so a restart
// does not rescan long ranges for them.
asio::awaitable<void> ProjectionRunner::sweep_checkpoints(pg::AsyncConnection& connection) {
    last_sweep_ = std::chrono::steady_clock::now();
    co_await load_state(connection);  // a pause elsewhere whose NOTIFY was missed
    // Tries of events every owned slice has passed are no longer needed.
    failures_.rules().forget_up_to(positions_.lowest_owned(INT64_MAX));
    co_await commit_.write_unwritten(connection, positions_.owned(), true);
}

}  // namespace orchestratord::runtime
