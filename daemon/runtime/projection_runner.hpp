#pragma once
// Runs one projection of one replica set: follows the slices this worker
// owns, reads final batches for them (GapSafeReader, shared through the
// ReadCoalescer) and hands each read to its parts:
//   SlicePositions  where the projection stands per slice (a value)
//   BatchCommit     the plugin call on the handler thread and the commit
//                   of the batch's checkpoints through the fencing check
//   FailurePolicy   retries, back-off, splitting, pause, dead letter
//   ReadAhead       the next read while the current one is handled
//   ProgressLog     the periodic progress line
// Each step borrows a connection from the pool and passes it on explicitly;
// it is returned before the runner sleeps, so idle projections hold none.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pg/connection_pool.hpp"
#include "plugins/projection_instance.hpp"
#include "runtime/batch_commit.hpp"
#include "runtime/crash_breadcrumb.hpp"
#include "runtime/failure_policy.hpp"
#include "runtime/progress_log.hpp"
#include "runtime/read_ahead.hpp"
#include "runtime/runner_settings.hpp"
#include "runtime/slice_positions.hpp"
#include "store/gap_safe_reader.hpp"

namespace orchestratord::runtime {

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
    bool handler_busy() const { return commit_.handler_busy(); }
    std::string handler_context() const { return commit_.handler_context(); }

    // Where the projection stands as this runner knows it, without asking
    // the database (for /status and /readyz).
    struct Standing {
        bool started = false;  // its checkpoints are loaded
        bool paused = false;
        std::vector<int32_t> slices;        // the owned slices it works on
        std::optional<int64_t> checkpoint;  // the lowest position of those slices
        std::optional<int64_t> lag;         // events behind the head seen last (every few seconds)
    };
    Standing standing() const;

    const std::string& name() const { return settings_.projection.name; }
    const std::string& replica_set() const { return settings_.replica_set.name; }
    const config::ProjectionConfig& projection() const { return settings_.projection; }
    const plugins::ProjectionInstance& instance() const { return *instance_; }
    // A new version of the plugin (SIGHUP after a rename into place): it takes
    // over at the next batch boundary; the old instance is destroyed then.
    void replace_instance(std::unique_ptr<plugins::ProjectionInstance> next, store::Scope scope);
    // plugin_info for this projection: which plugin and version it runs.
    void report_plugin(const std::string& plugin, const std::string& version);

private:
    using Lease = pg::ConnectionPool::Lease;
    boost::asio::awaitable<std::optional<std::chrono::milliseconds>> step();
    boost::asio::awaitable<std::optional<std::chrono::milliseconds>> step_with_connection(Lease& lease);
    boost::asio::awaitable<void> prepare(pg::AsyncConnection& connection);
    boost::asio::awaitable<void> load_state(pg::AsyncConnection& connection);
    void take_replacement();
    boost::asio::awaitable<void> follow_ownership(pg::AsyncConnection& connection);
    boost::asio::awaitable<std::shared_ptr<const store::EventBatch>> read_batch(pg::AsyncConnection& connection,
                                                                                const store::ReadRequest& request);
    std::chrono::steady_clock::time_point read_not_before(const std::vector<int64_t>& positions) const;
    boost::asio::awaitable<void> handle_and_read_ahead(Lease& lease, const store::EventBatch& batch);
    bool boundary_wanted() const;
    boost::asio::awaitable<void> sleep(std::chrono::milliseconds duration);
    boost::asio::awaitable<void> back_off(std::chrono::milliseconds duration);
    boost::asio::awaitable<void> housekeeping(pg::AsyncConnection& connection);
    boost::asio::awaitable<void> sweep_checkpoints(pg::AsyncConnection& connection);
    std::string context() const { return runner_context(settings_); }

    RunnerSettings settings_;
    std::unique_ptr<plugins::ProjectionInstance> instance_;
    std::unique_ptr<plugins::ProjectionInstance> replacement_;  // waiting for a batch boundary
    store::Scope replacement_scope_;
    store::GapSafeReader reader_;
    boost::asio::steady_timer idle_timer_;     // idle waits: ended by wake-ups and stop
    boost::asio::steady_timer backoff_timer_;  // retry/reconnect back-off: ended only by stop
    CrashIsolation crash_isolation_;  // what the previous process left when this projection's handler crashed it
    SlicePositions positions_;
    // Declared after instance_: destroyed first, so the handler thread is
    // joined before the instance it may be running goes.
    BatchCommit commit_;
    FailurePolicy failures_;
    ReadAhead read_ahead_;
    ProgressLog progress_;

    int32_t slice_count_ = 0;
    int ownership_slot_ = 0;
    int64_t view_version_ = -1;       // the ownership view the owned slices come from
    bool reload_checkpoints_ = true;  // after a fencing failure: the database knows best
    bool prepared_ = false;
    bool stopping_ = false;
    bool wake_pending_ = false;
    std::chrono::steady_clock::time_point last_wake_at_{};
    std::chrono::steady_clock::time_point last_read_at_{};
    std::vector<int64_t> last_read_positions_;
    bool last_read_full_ = false;  // the previous read returned a whole batch (or more)
    bool paused_ = false;
    bool recheck_state_ = false;  // read the projection's state before the next batch
    std::chrono::milliseconds idle_ = std::chrono::milliseconds(10);  // polling pause without NOTIFY
    std::chrono::steady_clock::time_point last_sweep_;
};

}  // namespace orchestratord::runtime
