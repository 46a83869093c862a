#include "runtime/failure_policy.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "cluster/cluster_member.hpp"
#include "log/quoted.hpp"
#include "pg/async_connection.hpp"
#include "pg/transaction.hpp"
#include "store/projection_state.hpp"

namespace orchestratord::runtime {
namespace asio = boost::asio;

namespace {

std::chrono::milliseconds as_milliseconds(config::Duration duration) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(duration);
}

}  // namespace

RetryRules::RetryRules(const config::OnErrorConfig& on_error)
    : max_attempts_(on_error.max_attempts),
      initial_backoff_(as_milliseconds(on_error.initial_backoff)),
      max_backoff_(as_milliseconds(on_error.max_backoff)) {}

Retry RetryRules::for_delivery(size_t events, int64_t first_position) const {
    if (events != 1) return Retry{0, 1, initial_backoff_};
    const int64_t before = tried(first_position);
    return Retry{before, std::max(max_attempts_, before + 1), initial_backoff_};
}

Retry RetryRules::for_split_event(int64_t position) const {
    const int64_t before = tried(position);
    return Retry{before, std::max(max_attempts_, before + 1), after(initial_backoff_)};
}

std::chrono::milliseconds RetryRules::after(std::chrono::milliseconds backoff) const {
    return std::min(backoff * 2, max_backoff_);
}

void RetryRules::record(int64_t position, bool ok) {
    if (ok) {
        failed_tries_.erase(position);
    } else {
        ++failed_tries_[position];
    }
}

void RetryRules::forget_up_to(int64_t position) {
    failed_tries_.erase(failed_tries_.begin(), failed_tries_.upper_bound(position));
}

int64_t RetryRules::tried(int64_t position) const {
    const auto found = failed_tries_.find(position);
    return found == failed_tries_.end() ? int64_t{0} : found->second;
}

FailurePolicy::FailurePolicy(const RunnerSettings& settings, BatchCommit& commit, SlicePositions& positions,
                             CrashIsolation& crash_isolation, Runner runner)
    : settings_(settings),
      commit_(commit),
      positions_(positions),
      crash_isolation_(crash_isolation),
      runner_(std::move(runner)),
      rules_(settings.projection.on_error) {}

asio::awaitable<void> FailurePolicy::handle(pg::ConnectionPool::Lease& lease, const store::EventBatch& batch) {
    const size_t size = batch.events.size();
    const auto batch_size = static_cast<size_t>(settings_.replica_set.batch_size);
    for (size_t begin = 0; begin < size; begin += batch_size) {
        if (begin > 0 && runner_.boundary_wanted()) co_return;
        const size_t end = std::min(size, begin + batch_size);
        // Every owned slice is final up to the read's final position, so up
        // to any event in it too.
        const int64_t checkpoint = end == size ? batch.final_position : batch.events[end - 1].global_position;
        if (crash_isolation_.suspects(batch.events[begin].global_position, batch.events[end - 1].global_position)) {
            if (!co_await handle_one_by_one(lease, batch, begin, end, checkpoint)) co_return;
            continue;
        }
        if (!co_await handle_range(lease, batch, begin, end, checkpoint)) co_return;
        crash_isolation_.passed(checkpoint);
    }
}

// The previous process crashed in this projection's handler on events of
// this range: they are delivered one at a time, so a further crash names a
// single event, and an event that crashed the process crash_limit times gets
// the on_error policy without the handler being called again.
asio::awaitable<bool> FailurePolicy::handle_one_by_one(pg::ConnectionPool::Lease& lease, const store::EventBatch& batch,
                                                       size_t begin, size_t end, int64_t checkpoint) {
    for (size_t i = begin; i < end; ++i) {
        if (i > begin && runner_.boundary_wanted()) co_return false;
        const int64_t position = batch.events[i].global_position;
        const int64_t until = i + 1 == end ? checkpoint : position;
        const auto crashed_too_often = crash_isolation_.verdict(position);
        const bool go_on = crashed_too_often
                               ? co_await isolate_crashing_event(lease, batch, i, until, *crashed_too_often)
                               : co_await handle_range(lease, batch, i, i + 1, until);
        if (!go_on) co_return false;
        crash_isolation_.passed(until);
    }
    co_return true;
}

// The on_error policy for an event the handler crashed the process on too
// often, as handle_range() applies it to one that keeps failing.
asio::awaitable<bool> FailurePolicy::isolate_crashing_event(pg::ConnectionPool::Lease& lease,
                                                            const store::EventBatch& batch, size_t index,
                                                            int64_t checkpoint, const std::string& error) {
    const int64_t position = batch.events[index].global_position;
    if (settings_.projection.on_error.policy == config::OnErrorPolicy::pause) {
        co_await pause(lease.connection(), "event at position " + std::to_string(position) + " (event_id " +
                                               batch.events[index].event_id + "): " + error);
        crash_isolation_.passed(position);
        co_return false;
    }
    co_await dead_letter(lease.connection(), batch, index, error, crash_isolation_.crashes());
    count_handled(position, 1);
    if (checkpoint > position) {
        co_await commit_checkpoint(lease.connection(), checkpoint);
        positions_.advance(checkpoint);
    }
    co_return true;
}

// One batch: events [begin, end) of the read, checkpointed at `checkpoint`.
// False when the projection cannot go on with this read (stopping, paused,
// or the batch was abandoned at a boundary). When a batch of several events
// fails, it backs off once and then delivers the events one by one, so the
// healthy ones before the failing event commit and the on_error policy
// applies to that event alone: a pause holds exactly there, a dead letter
// names it.
asio::awaitable<bool> FailurePolicy::handle_range(pg::ConnectionPool::Lease& lease, const store::EventBatch& batch,
                                                  size_t begin, size_t end, int64_t checkpoint) {
    const bool single = end - begin == 1;
    const Delivery whole = co_await deliver_with_retries(
        lease, batch, begin, end, checkpoint, rules_.for_delivery(end - begin, batch.events[begin].global_position));
    if (whole.abandoned) co_return false;
    if (whole.result.ok) {
        count_handled(checkpoint, static_cast<int64_t>(end - begin));
        co_return true;
    }
    if (runner_.stopping()) co_return false;  // the next run starts from the checkpoint
    if (!single && rules_.back_off_before_split() && !co_await back_off_for_retry(lease, rules_.initial_backoff())) {
        co_return false;
    }
    for (size_t i = begin; i < end; ++i) {
        const int64_t position = batch.events[i].global_position;
        // A lone event already had all its tries above.
        Delivery one = whole;
        if (!single)
            one = co_await deliver_with_retries(lease, batch, i, i + 1, position, rules_.for_split_event(position));
        if (one.abandoned) co_return false;
        if (one.result.ok) {
            count_handled(position, 1);
            continue;
        }
        if (runner_.stopping()) co_return false;
        if (settings_.projection.on_error.policy == config::OnErrorPolicy::pause) {
            co_await pause(lease.connection(), "event at position " + std::to_string(position) + " (event_id " +
                                                   batch.events[i].event_id + ") failed " +
                                                   std::to_string(one.attempts) + " times: " + one.result.error);
            co_return false;
        }
        co_await dead_letter(lease.connection(), batch, i, one.result.error, one.attempts);
        rules_.forget(position);
        count_handled(position, 1);
    }
    // The rest of the read's range up to `checkpoint` had no events of ours.
    co_await commit_checkpoint(lease.connection(), checkpoint);
    positions_.advance(checkpoint);
    co_return true;
}

// Delivers events [begin, end) until it succeeds or `retry.limit` tries of
// them (counting the `retry.tried` ones already made) have failed, backing
// off between tries. After a back-off the batch may be stale: a stop, a
// plugin swap, a change of our slices (they may have been handed over while
// we waited) or a self-fence abandons it (`abandoned`): nothing of it was
// committed and it is read again after the boundary.
asio::awaitable<FailurePolicy::Delivery> FailurePolicy::deliver_with_retries(pg::ConnectionPool::Lease& lease,
                                                                             const store::EventBatch& batch,
                                                                             size_t begin, size_t end,
                                                                             int64_t checkpoint, Retry retry) {
    Delivery delivery;
    delivery.attempts = retry.tried;
    for (;;) {
        // Events that failed before, in their batch or alone, are tried again.
        if (delivery.attempts > 0) settings_.projection_metrics.retries.increment();
        delivery.result = co_await commit_.deliver(lease, batch, begin, end, checkpoint);
        ++delivery.attempts;
        for (size_t i = begin; i < end; ++i) rules_.record(batch.events[i].global_position, delivery.result.ok);
        const store::ProjectionKey key{settings_.replica_set.name, settings_.projection.name};
        if (delivery.result.ok) {
            if (failures_recorded_) co_await store::clear_failed_tries(lease.connection(), settings_.event_store, key);
            failures_recorded_ = false;
            co_return delivery;
        }
        settings_.projection_metrics.errors.increment();
        spdlog::error(
            "projection failed to handle a batch {} attempt={}/{} first_position={} last_position={} error={}",
            runner_context(settings_), delivery.attempts, rules_.max_attempts(), batch.events[begin].global_position,
            batch.events[end - 1].global_position, log::quoted(delivery.result.error));
        co_await store::record_failed_try(lease.connection(), settings_.event_store, key, delivery.attempts,
                                          delivery.result.error);
        failures_recorded_ = true;
        if (delivery.attempts >= retry.limit) co_return delivery;
        if (!co_await back_off_for_retry(lease, retry.backoff)) {
            spdlog::info(
                "not retrying the batch as it was read: the slices, the plugin or the run state changed during the "
                "back-off; it is read again {} first_position={} last_position={}",
                runner_context(settings_), batch.events[begin].global_position, batch.events[end - 1].global_position);
            delivery.abandoned = true;
            co_return delivery;
        }
        retry.backoff = rules_.after(retry.backoff);
    }
}

// Waits before another try, lending the connection to other projections
// meanwhile (nothing of the failed try is left on it: it rolled back). False
// when the batch must be abandoned at a boundary instead.
asio::awaitable<bool> FailurePolicy::back_off_for_retry(pg::ConnectionPool::Lease& lease,
                                                        std::chrono::milliseconds backoff) {
    lease.reset();
    co_await runner_.back_off(backoff);
    lease = co_await settings_.pool->acquire();
    co_return !runner_.boundary_wanted();
}

asio::awaitable<void> FailurePolicy::pause(pg::AsyncConnection& connection, const std::string& reason) {
    // Arguments named, not temporaries in the co_await: GCC 12 destroys a
    // braced temporary there twice.
    const store::ProjectionKey key{settings_.replica_set.name, settings_.projection.name};
    const std::string channel = cluster::cluster_channel(settings_.event_store);
    co_await store::pause_projection(connection, settings_.event_store, key, reason, channel);
    runner_.paused();
    spdlog::error("projection paused after repeated failures; other projections continue {} reason={}",
                  runner_context(settings_), log::quoted(reason));
}

// The dead letter and the checkpoint past its event commit together.
asio::awaitable<void> FailurePolicy::dead_letter(pg::AsyncConnection& connection, const store::EventBatch& batch,
                                                 size_t index, const std::string& error, int64_t attempts) {
    const orch_event& event = batch.events[index];
    const store::ProjectionKey key{settings_.replica_set.name, settings_.projection.name};
    const store::DeadLetter letter{batch.slices[index], event.global_position, std::string(event.event_id), error,
                                   attempts};
    co_await pg::with_transaction(connection, "dead-lettering", [&]() -> asio::awaitable<pg::Outcome> {
        co_await store::record_dead_letter(connection, settings_.event_store, key, letter);
        const bool written = co_await commit_.write(connection, positions_.checkpoints_at(event.global_position));
        if (!written) throw SlicesLost();  // rolled back: the slice's new owner delivers the event
        co_return pg::Outcome::commit;
    });
    settings_.projection_metrics.dead_letters.increment();
    spdlog::error("dead-lettered an event {} position={} event_id={} event_type={} attempts={} error={}",
                  runner_context(settings_), event.global_position, event.event_id, event.event_type, attempts,
                  log::quoted(error));
}

void FailurePolicy::count_handled(int64_t position, int64_t events) {
    positions_.advance(position);
    handled_ += events;
    settings_.projection_metrics.events_processed.increment(static_cast<double>(events));
}

asio::awaitable<void> FailurePolicy::commit_checkpoint(pg::AsyncConnection& connection, int64_t checkpoint) {
    // The result is named, not awaited in the condition: GCC 12 miscompiles a
    // coroutine that ends in an `if (co_await ...)` (SIGILL when it returns).
    const bool written = co_await commit_.write(connection, positions_.checkpoints_at(checkpoint));
    if (!written) throw SlicesLost();
}

}  // namespace orchestratord::runtime
