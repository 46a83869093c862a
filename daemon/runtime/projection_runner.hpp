#pragma once
// Runs one projection of one replica set: read a final batch (GapSafeReader),
// hand it to the plugin on a handler thread (never on the event loop, so
// heartbeats are never starved by slow projection code), then commit the
// checkpoints of the batch's slices: in the batch transaction for
// transactional projections, after the handler returns for at-least-once ones.
// Failures are retried with exponential backoff; after max_attempts the
// on_error policy pauses the projection or dead-letters the failing event.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/slice_ownership.hpp"
#include "config/config.hpp"
#include "pg/connection_pool.hpp"
#include "plugins/projection_instance.hpp"
#include "runtime/crash_breadcrumb.hpp"
#include "store/checkpoint_store.hpp"
#include "store/gap_safe_reader.hpp"
#include "store/read_coalescer.hpp"

namespace orchestratord::metrics {
class Metrics;
}  // namespace orchestratord::metrics

namespace orchestratord::pg {
class AsyncConnection;
}  // namespace orchestratord::pg

namespace orchestratord::runtime {

struct RunnerSettings {
    pg::ConnectionPool* pool = nullptr;  // shared by every runner of the process
    config::EventStoreConfig event_store;
    config::ReplicaSetConfig replica_set;
    config::ProjectionConfig projection;
    store::Scope scope;
    bool notify_available = false;                 // the NOTIFY trigger exists: idle runners need not poll
    store::ReadCoalescer* coalescer = nullptr;     // shared by every runner of the process
    cluster::SliceOwnership* ownership = nullptr;  // the slices this worker owns in the replica set
    metrics::Metrics* metrics = nullptr;           // optional
    std::string state_directory;                   // crash breadcrumbs; empty: crash isolation is off
};

class ProjectionRunner {
public:
    ProjectionRunner(boost::asio::io_context& io, RunnerSettings settings,
                     std::unique_ptr<plugins::ProjectionInstance> instance);
    // Joins the handler thread: call only when handler_busy() is false.
    ~ProjectionRunner();

    // Runs until stop(); the in-flight batch is finished (or rolled back) first.
    boost::asio::awaitable<void> run();
    void stop();
    // New events may be there: end an idle wait now.
    void wake();
    // The cluster changed something (a NOTIFY on its channel): the
    // projection's state (paused elsewhere) is read again at the next step.
    void state_may_have_changed();
    // The plugin's handler is running (or hung) on this runner's handler
    // thread; what it was given, for the log line of a stop that cannot wait.
    bool handler_busy() const { return handler_busy_; }
    std::string handler_context() const;

    const std::string& name() const { return settings_.projection.name; }
    const std::string& replica_set() const { return settings_.replica_set.name; }
    const config::ProjectionConfig& projection() const { return settings_.projection; }
    const plugins::ProjectionInstance& instance() const { return *instance_; }
    // A new version of the plugin (SIGHUP after a rename into place): it takes
    // over at the next batch boundary; the old instance is destroyed then.
    void replace_instance(std::unique_ptr<plugins::ProjectionInstance> next, store::Scope scope);

private:
    // The connection borrowed for the current step (lease_).
    pg::AsyncConnection& connection() { return lease_->connection(); }
    boost::asio::awaitable<std::optional<std::chrono::milliseconds>> step();
    boost::asio::awaitable<std::optional<std::chrono::milliseconds>> step_with_connection();
    boost::asio::awaitable<void> prepare();
    boost::asio::awaitable<void> load_state();
    void take_replacement();
    boost::asio::awaitable<void> follow_ownership();
    boost::asio::awaitable<std::shared_ptr<const store::EventBatch>> read_batch(pg::AsyncConnection& connection,
                                                                                const store::ReadRequest& request);
    std::vector<int64_t> checkpoints_at(int64_t position) const;
    boost::asio::awaitable<bool> write_checkpoints(const std::vector<int64_t>& next, bool warn_if_lost = true);
    boost::asio::awaitable<void> handle_and_prefetch(const store::EventBatch& batch);
    boost::asio::awaitable<void> handle(const store::EventBatch& batch);
    boost::asio::awaitable<bool> handle_range(const store::EventBatch& batch, size_t begin, size_t end,
                                              int64_t checkpoint);
    bool boundary_wanted() const;
    int64_t read_ahead_limit() const;
    boost::asio::awaitable<plugins::CallResult> deliver(const store::EventBatch& batch, size_t begin, size_t end,
                                                        int64_t checkpoint);
    boost::asio::awaitable<bool> handle_one_by_one(const store::EventBatch& batch, size_t begin, size_t end,
                                                   int64_t checkpoint);
    boost::asio::awaitable<bool> isolate_crashing_event(const store::EventBatch& batch, size_t index,
                                                        int64_t checkpoint, const std::string& error);
    boost::asio::awaitable<void> dead_letter(const store::EventBatch& batch, size_t index, const std::string& error,
                                             int64_t attempts);
    boost::asio::awaitable<void> pause(const std::string& reason);
    boost::asio::awaitable<void> sweep_checkpoints();
    boost::asio::awaitable<void> write_unwritten_positions(const std::vector<int32_t>& slices, bool warn_if_lost);
    boost::asio::awaitable<void> sleep(std::chrono::milliseconds duration);
    boost::asio::awaitable<void> back_off(std::chrono::milliseconds duration);
    struct Delivery {
        plugins::CallResult result;
        int64_t attempts = 0;    // tries of these events so far, all failed unless result.ok
        bool abandoned = false;  // a boundary came during a back-off: nothing committed
    };
    struct Retry {
        int64_t tried = 0;                     // failed tries of these events already made
        int64_t limit = 1;                     // tries in all, after which the failure stands
        std::chrono::milliseconds backoff{0};  // the first wait; doubles up to on_error.max_backoff
    };
    boost::asio::awaitable<Delivery> deliver_with_retries(const store::EventBatch& batch, size_t begin, size_t end,
                                                          int64_t checkpoint, Retry retry);
    boost::asio::awaitable<bool> back_off_for_retry(std::chrono::milliseconds backoff);
    boost::asio::awaitable<bool> still_own_slices_of(const store::EventBatch& batch, size_t begin, size_t end);
    boost::asio::awaitable<void> housekeeping();
    bool advance_positions(std::vector<int64_t>& positions, int64_t position) const;
    boost::asio::awaitable<void> report_progress();
    std::string context() const;
    std::chrono::steady_clock::time_point read_not_before(const std::vector<int64_t>& positions) const;

    void watch_slow_handler(std::chrono::steady_clock::time_point started,
                            std::chrono::steady_clock::time_point report_at);

    boost::asio::io_context& io_;
    // Plugin code runs here, never on the event loop; one thread per
    // projection, so a handler that never returns stalls only its projection.
    boost::asio::thread_pool handler_thread_{1};
    bool handler_busy_ = false;
    int64_t handler_first_ = 0;  // positions of the call in progress
    int64_t handler_last_ = 0;
    boost::asio::steady_timer slow_handler_timer_;
    std::function<void(double seconds)> report_handler_running_;  // the metric, when there are metrics
    RunnerSettings settings_;
    std::unique_ptr<plugins::ProjectionInstance> instance_;
    std::unique_ptr<plugins::ProjectionInstance> replacement_;  // waiting for a batch boundary
    store::Scope replacement_scope_;
    std::optional<pg::ConnectionPool::Lease> lease_;  // the current step's connection from the pool
    store::GapSafeReader reader_;
    boost::asio::steady_timer idle_timer_;     // idle waits: ended by wake-ups and stop
    boost::asio::steady_timer backoff_timer_;  // retry/reconnect back-off: ended only by stop

    int32_t slice_count_ = 0;
    int ownership_slot_ = 0;
    int64_t view_version_ = -1;                // the ownership view the slices below come from
    bool reload_checkpoints_ = true;           // after a fencing failure: the database knows best
    store::Fence fence_;                       // this worker and its checkpoint lease
    std::map<int32_t, int64_t> epochs_;        // slice -> the ownership epoch we hold it at
    std::map<int64_t, int64_t> failed_tries_;  // position -> failed tries of that event on this worker
    std::vector<int32_t> owned_slices_;
    std::vector<int64_t> positions_;                       // handled up to here, per slice
    std::vector<int64_t> written_;                         // last checkpoint written, per slice
    std::shared_ptr<const store::EventBatch> prefetched_;  // the next batch, read while the last one was handled
    bool prepared_ = false;
    bool stopping_ = false;
    bool wake_pending_ = false;
    std::chrono::steady_clock::time_point last_wake_at_{};
    std::chrono::steady_clock::time_point last_read_at_{};
    std::vector<int64_t> last_read_positions_;
    bool last_read_full_ = false;  // the previous read returned a whole batch (or more)
    bool paused_ = false;
    bool recheck_state_ = false;  // read the projection's state before the next batch
    int64_t handled_ = 0;
    std::chrono::milliseconds idle_ = std::chrono::milliseconds(10);  // polling pause without NOTIFY
    std::chrono::steady_clock::time_point last_sweep_;
    std::chrono::steady_clock::time_point last_progress_;
    int64_t handled_at_last_progress_ = 0;
    CrashIsolation crash_isolation_;  // what the previous process left when this projection's handler crashed it
};

}  // namespace orchestratord::runtime
