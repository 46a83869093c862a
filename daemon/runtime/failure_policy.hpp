#pragma once
// What a projection does when its handler fails: retry with exponential
// back-off, split a failing batch so the failing event is found, then the
// on_error policy (pause the projection, or dead-letter the event and go on).
// Also where an event the previous process crashed on is handed over (from
// CrashIsolation) to that same policy.
//
// RetryRules is the pure half (no I/O, unit-tested): how many tries a
// delivery gets, how long to wait between them. FailurePolicy drives the
// deliveries through BatchCommit and applies the rules.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "config/config.hpp"
#include "pg/connection_pool.hpp"
#include "plugins/projection_instance.hpp"
#include "runtime/batch_commit.hpp"
#include "runtime/crash_breadcrumb.hpp"
#include "runtime/runner_settings.hpp"
#include "runtime/slice_positions.hpp"
#include "store/event_batch.hpp"

namespace orchestratord::runtime {

// The tries one delivery (a batch, or one event) may make.
struct Retry {
    int64_t tried = 0;                     // failed tries of these events already made
    int64_t limit = 1;                     // tries in all, after which the failure stands
    std::chrono::milliseconds backoff{0};  // the first wait; doubles up to on_error.max_backoff
};

// A batch of several events gets one try; when it fails, each of its events
// is delivered alone. The batch's try counts as each event's first attempt,
// so an event gets max_attempts tries in all, and always at least one try
// alone (so the failing one is found, also with max_attempts 1). Tries an
// event already had on this worker (in earlier batches, or before a batch was
// abandoned and read again) count towards its limit.
class RetryRules {
public:
    explicit RetryRules(const config::OnErrorConfig& on_error);

    // A delivery of `events` events, the first at `first_position`.
    Retry for_delivery(size_t events, int64_t first_position) const;
    std::chrono::milliseconds initial_backoff() const { return initial_backoff_; }
    // Wait once before splitting a failed batch into single events.
    bool back_off_before_split() const { return max_attempts_ > 1; }
    // One event split out of a failed batch: its back-off starts where the
    // batch's one left off.
    Retry for_split_event(int64_t position) const;
    // The wait after `backoff`: doubled, up to max_backoff.
    std::chrono::milliseconds after(std::chrono::milliseconds backoff) const;

    // A try of the event at `position` failed, or it succeeded (forgotten).
    void record(int64_t position, bool ok);
    void forget(int64_t position) { failed_tries_.erase(position); }
    // Every owned slice has passed `position`: its tries are no longer needed.
    void forget_up_to(int64_t position);
    int64_t tried(int64_t position) const;
    int64_t max_attempts() const { return max_attempts_; }

private:
    int64_t max_attempts_;
    std::chrono::milliseconds initial_backoff_;
    std::chrono::milliseconds max_backoff_;
    std::map<int64_t, int64_t> failed_tries_;  // position -> failed tries of that event on this worker
};

class FailurePolicy {
public:
    // What the policy needs from its runner.
    struct Runner {
        std::function<bool()> stopping;
        // A stop, a plugin swap, a state re-read or a change of the slices
        // (or a self-fence) is waiting for the next batch boundary.
        std::function<bool()> boundary_wanted;
        // Waits `duration`, ended only by a stop (new events do not end it).
        std::function<boost::asio::awaitable<void>(std::chrono::milliseconds)> back_off;
        // The projection was paused here.
        std::function<void()> paused;
    };

    FailurePolicy(const RunnerSettings& settings, BatchCommit& commit, SlicePositions& positions,
                  CrashIsolation& crash_isolation, Runner runner);

    // Hands a read over in batches of batch_size (a read while catching up
    // holds several), each committed with its checkpoint. Between batches, a
    // boundary ends the read early: the rest is read again after it. `lease`
    // is the step's connection; it is lent back to the pool while waiting.
    boost::asio::awaitable<void> handle(pg::ConnectionPool::Lease& lease, const store::EventBatch& batch);

    RetryRules& rules() { return rules_; }
    // Events handled or dead-lettered since the runner started, for its progress line.
    int64_t handled() const { return handled_; }

private:
    struct Delivery {
        plugins::CallResult result;
        int64_t attempts = 0;    // tries of these events so far, all failed unless result.ok
        bool abandoned = false;  // a boundary came during a back-off: nothing committed
    };
    boost::asio::awaitable<bool> handle_range(pg::ConnectionPool::Lease& lease, const store::EventBatch& batch,
                                              size_t begin, size_t end, int64_t checkpoint);
    boost::asio::awaitable<bool> handle_one_by_one(pg::ConnectionPool::Lease& lease, const store::EventBatch& batch,
                                                   size_t begin, size_t end, int64_t checkpoint);
    boost::asio::awaitable<bool> isolate_crashing_event(pg::ConnectionPool::Lease& lease,
                                                        const store::EventBatch& batch, size_t index,
                                                        int64_t checkpoint, const std::string& error);
    boost::asio::awaitable<Delivery> deliver_with_retries(pg::ConnectionPool::Lease& lease,
                                                          const store::EventBatch& batch, size_t begin, size_t end,
                                                          int64_t checkpoint, Retry retry);
    boost::asio::awaitable<bool> back_off_for_retry(pg::ConnectionPool::Lease& lease,
                                                    std::chrono::milliseconds backoff);
    boost::asio::awaitable<void> pause(pg::AsyncConnection& connection, const std::string& reason);
    boost::asio::awaitable<void> dead_letter(pg::AsyncConnection& connection, const store::EventBatch& batch,
                                             size_t index, const std::string& error, int64_t attempts);
    void count_handled(int64_t position, int64_t events);
    boost::asio::awaitable<void> commit_checkpoint(pg::AsyncConnection& connection, int64_t checkpoint);

    const RunnerSettings& settings_;
    BatchCommit& commit_;
    SlicePositions& positions_;
    CrashIsolation& crash_isolation_;
    Runner runner_;
    RetryRules rules_;
    int64_t handled_ = 0;
    // Failing tries may be recorded for `status` (true at start: an earlier
    // run may have left some), so the next success clears them.
    bool failures_recorded_ = true;
};

}  // namespace orchestratord::runtime
