#include "cluster/cluster_member.hpp"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cluster/slice_reconciler.hpp"
#include "log/quoted.hpp"
#include "pg/async_connection.hpp"

namespace orchestratord::cluster {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

std::chrono::milliseconds milliseconds(config::Duration duration) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(duration);
}

std::string host_name() {
    char buffer[256] = {};
    if (::gethostname(buffer, sizeof buffer - 1) != 0) return "unknown";
    return buffer;
}

}  // namespace

ClusterMember::ClusterMember(asio::io_context& io, MemberSettings settings)
    : io_(io),
      settings_(std::move(settings)),
      metrics_(settings_.metrics != nullptr ? settings_.metrics->cluster(settings_.replica_set.name)
                                            : metrics::ClusterMetrics{}),
      tables_(settings_.event_store, settings_.replica_set.name),
      coordinator_(tables_, settings_.event_store, settings_.replica_set, ownership_, metrics_),
      connection_(std::make_unique<pg::AsyncConnection>(io)),
      wake_timer_(io),
      fence_timer_(io) {
    ownership_.on_boundary([this] {
        need_reconcile_ = true;
        poke();
    });
}

ClusterMember::~ClusterMember() = default;

std::string ClusterMember::context() const {
    return ownership_.log_context(settings_.replica_set.name);
}

std::optional<std::chrono::steady_clock::time_point> ClusterMember::fenced_since() const {
    const auto deadline = ownership_.commit_deadline();
    if (deadline > std::chrono::steady_clock::now()) return std::nullopt;
    return deadline;
}

std::optional<std::string> ClusterMember::coordinating() const {
    if (!last_report_) return "no heartbeat yet";
    if (last_report_->stale_workers > 0) {
        return fmt::format("{} stale worker(s) to remove", last_report_->stale_workers);
    }
    if (!last_report_->settled) return std::string("the workers changed; a new generation is due");
    if (last_report_->moving_slices > 0) {
        return fmt::format("{} slice(s) moving to their new owners", last_report_->moving_slices);
    }
    if (!ownership_.withdrawn_slices().empty()) {
        return fmt::format("{} slice(s) of this worker being handed over", ownership_.withdrawn_slices().size());
    }
    return std::nullopt;
}

void ClusterMember::poke() {
    woken_ = true;
    wake_timer_.cancel();
}

void ClusterMember::stop() {
    stopping_ = true;
    poke();
}

void ClusterMember::coordination_changed() {
    need_coordinate_ = true;
    need_reconcile_ = true;
    poke();
}

asio::awaitable<void> ClusterMember::connect() {
    // A heartbeat that takes longer than the self-fencing horizon is useless:
    // the server cancels it and the next tick tries again.
    const auto horizon = settings_.replica_set.stale_worker_timeout - settings_.replica_set.heartbeat_interval;
    co_await connection_->connect(settings_.conninfo,
                                  session_name(settings_.session_tag, "cluster " + settings_.replica_set.name),
                                  std::max<int64_t>(milliseconds(horizon).count(), 100));
}

// The replica set's stored slice count goes to the runners with the
// ownership view; the worker's checkpoint rows are created with it.
asio::awaitable<void> ClusterMember::register_worker() {
    const auto& rs = settings_.replica_set;
    const int32_t slices = co_await tables_.register_replica_set(*connection_, static_cast<int32_t>(rs.slices));
    if (slices != rs.slices && slices != ownership_.slice_count()) {
        spdlog::warn(
            "replica set was created with a different slice count; using the stored one replica_set={} stored={} "
            "configured={}",
            rs.name, slices, rs.slices);
    }
    WorkerIdentity identity;
    identity.host = host_name();
    identity.pid = ::getpid();
    identity.version = settings_.version;
    identity.session_tag = settings_.session_tag;
    for (const auto& projection : rs.projections) identity.projections.push_back(projection.name);
    worker_id_ = co_await tables_.register_worker(*connection_, identity);
    ownership_.set_slice_count(slices);
    ownership_.set_owner(worker_id_);
    next_heartbeat_ = std::chrono::steady_clock::now();
    metrics_.workers_registered.increment();
    metrics_.current_generation_partitions.set(slices);
    metrics_.set_state(worker_id_, metrics::WorkerState::running);
    spdlog::info("worker registered {} host={} pid={} version={} session_tag={}", context(), identity.host,
                 identity.pid, identity.version, identity.session_tag);
}

// Refreshes this worker's row with the database clock, and in the same
// statement learns whether anything needs coordinating.
asio::awaitable<void> ClusterMember::heartbeat() {
    const auto& rs = settings_.replica_set;
    const auto sent = std::chrono::steady_clock::now();
    const auto report = co_await tables_.heartbeat(*connection_, worker_id_, milliseconds(rs.stale_worker_timeout),
                                                   milliseconds(rs.coordination_timeout));
    if (!report) {
        // Someone removed us as stale (we were stopped or cut off): whatever
        // we owned is gone. Start over as a new worker.
        spdlog::error("this worker was removed as stale; dropping every slice and registering again {}", context());
        ownership_.forget_all();
        worker_id_.clear();
        co_await register_worker();
        co_return co_await heartbeat();
    }
    metrics_.heartbeat_latency.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count());
    metrics_.database_reachable.set(1);
    metrics_.active_workers.set(static_cast<double>(report->generation_members));
    // Self-fencing counts from when the heartbeat was sent: the database's
    // deadline counts from its now(), which is later, so we always stop first.
    ownership_.set_commit_deadline(sent + (rs.stale_worker_timeout - rs.heartbeat_interval));
    if (heartbeat_failing_) {
        spdlog::info("heartbeat works again {}", context());
        heartbeat_failing_ = false;
        metrics_.set_state(worker_id_, metrics::WorkerState::running);
        need_reconcile_ = true;  // take back what is still ours
    }
    last_report_ = report;
    const bool stale = report->stale_workers > 0;
    const bool moving = report->moving_slices > 0;
    if (report->generation != ownership_.generation()) need_reconcile_ = true;
    ownership_.set_generation(report->generation);
    stale_seen_ = stale;
    if (stale || !report->settled || (moving && report->generation_overdue)) need_coordinate_ = true;
    if (moving) need_reconcile_ = true;
    // Another worker turns stale before our next tick: look again right
    // then, so its slices move within stale_worker_timeout of its last
    // heartbeat, not up to a heartbeat_interval later.
    if (report->next_stale_in) {
        const auto due = sent + *report->next_stale_in + 20ms;
        if (due > std::chrono::steady_clock::now()) next_heartbeat_ = std::min(next_heartbeat_, due);
    }
    fence_timer_.cancel();  // re-arm the self-fence watch at the new deadline
}

// reconfiguration_total counts every generation this worker moved to after
// its first, whoever wrote it.
void ClusterMember::follow_generation_in_metrics() {
    const int64_t generation = ownership_.generation();
    if (generation == generation_in_metrics_) return;
    if (generation_in_metrics_ >= 0 && generation > generation_in_metrics_) metrics_.reconfigurations.increment();
    generation_in_metrics_ = generation;
}

asio::awaitable<void> ClusterMember::coordinate() {
    if (stale_seen_) {
        stale_seen_ = false;
        co_await coordinator_.end_stale_sessions(*connection_);
    }
    const bool done = co_await coordinator_.coordinate(*connection_);
    if (!done) need_coordinate_ = true;
}

// Brings this process's view in line with the database: slices taken away
// are dropped, slices assigned elsewhere are withdrawn and released once the
// runners are done with them, free slices assigned here are acquired.
asio::awaitable<void> ClusterMember::reconcile() {
    const auto db = co_await tables_.read_worker_slices(*connection_, worker_id_);
    // No rows at all: this worker was removed; the heartbeat starts over.
    if (db.generation) ownership_.set_generation(*db.generation);
    if (db.lease) ownership_.set_lease(*db.lease);
    const ReconcilePlan plan = SliceReconciler::plan(db.slices, ownership_);
    for (int32_t slice : plan.forget) ownership_.forget(slice);
    if (!plan.forget.empty()) {
        spdlog::warn("slices were taken away from this worker {} slices={}", context(), fmt::join(plan.forget, ","));
    }
    for (int32_t slice : plan.withdraw) ownership_.withdraw(slice);
    for (const auto& [slice, epoch] : plan.adopt) ownership_.offer(slice, epoch);
    for (const auto& [slice, epoch] : plan.release) {
        ownership_.offer(slice, epoch);
        ownership_.withdraw(slice);
    }
    if (!plan.withdraw.empty()) {
        spdlog::info("handing slices over: stopping them at the next batch boundary {} slices={}", context(),
                     fmt::join(plan.withdraw, ","));
    }
    if (!plan.adopt.empty()) {
        std::vector<int32_t> adopted;
        for (const auto& [slice, epoch] : plan.adopt) adopted.push_back(slice);
        spdlog::info("resuming slices this worker still owns {} slices={}", context(), fmt::join(adopted, ","));
    }
    const auto drained = ownership_.drained();
    if (!drained.empty()) co_await release(drained);
    if (plan.acquire) co_await acquire();
}

asio::awaitable<void> ClusterMember::release(const std::map<int32_t, int64_t>& slices) {
    std::vector<int32_t> numbers;
    for (const auto& [slice, epoch] : slices) numbers.push_back(slice);
    const auto freed = co_await tables_.free_slices(*connection_, FreeReason::released, worker_id_, numbers);
    std::vector<int32_t> released;
    for (const auto& slice : freed) released.push_back(slice.slice);
    for (int32_t slice : numbers) ownership_.forget(slice);  // the rest is re-read next time
    if (!released.empty()) {
        co_await tables_.notify(*connection_);
        spdlog::info("released slices {} slices={} count={}", context(), fmt::join(released, ","), released.size());
    }
    need_reconcile_ = released.size() != numbers.size();
}

asio::awaitable<void> ClusterMember::acquire() {
    const auto taken = co_await tables_.acquire(*connection_, worker_id_);
    std::vector<int32_t> acquired;
    for (const auto& slice : taken) {
        ownership_.offer(slice.slice, slice.epoch);
        acquired.push_back(slice.slice);
    }
    metrics_.partition_assignments.increment(static_cast<double>(acquired.size()));
    if (!acquired.empty()) {
        spdlog::info("acquired slices {} slices={} count={} owned={}", context(), fmt::join(acquired, ","),
                     acquired.size(), ownership_.offered_slices().size());
    }
}

// Graceful stop, after the runners have committed their last batches.
asio::awaitable<void> ClusterMember::leave() {
    if (worker_id_.empty()) co_return;
    const auto freed = co_await tables_.free_slices(*connection_, FreeReason::leaving, worker_id_);
    ownership_.forget_all();
    co_await tables_.remove_worker(*connection_, worker_id_);
    co_await tables_.notify(*connection_);
    spdlog::info("worker unregistered {} released_slices={}", context(), freed.size());
}

// Stops all work once the last committed heartbeat is too old, before the
// other workers may consider this one stale.
asio::awaitable<void> ClusterMember::watch_self_fence() {
    const auto check_every = std::max<std::chrono::steady_clock::duration>(settings_.replica_set.heartbeat_interval / 4,
                                                                           std::chrono::milliseconds(20));
    bool fenced_in_metrics = false;
    while (!stopping_) {
        fence_timer_.expires_after(check_every);
        boost::system::error_code ec;
        co_await fence_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (stopping_) break;
        if (!ownership_.may_commit() && !ownership_.offered_slices().empty()) {
            spdlog::error(
                "self-fencing: no heartbeat committed within stale_worker_timeout - heartbeat_interval; "
                "stopping work on every slice until the database answers {} slices={}",
                context(), ownership_.offered_slices().size());
            ownership_.forget_all();
        }
        const bool fenced = !ownership_.may_commit();
        if (fenced != fenced_in_metrics) {
            fenced_in_metrics = fenced;
            metrics_.self_fenced.set(fenced ? 1 : 0);
            metrics_.set_state(worker_id_, fenced               ? metrics::WorkerState::self_fenced
                                           : heartbeat_failing_ ? metrics::WorkerState::heartbeat_failing
                                                                : metrics::WorkerState::running);
        }
        metrics_.slices_owned.set(static_cast<double>(ownership_.offered_slices().size()));
    }
}

asio::awaitable<void> ClusterMember::run() {
    asio::co_spawn(io_, watch_self_fence(), asio::detached);
    const auto heartbeat_interval = settings_.replica_set.heartbeat_interval;
    std::chrono::milliseconds backoff(100);
    std::string failure;
    while (!stopping_) {
        try {
            if (!connection_->ok()) co_await connect();
            if (worker_id_.empty()) co_await register_worker();
            if (std::chrono::steady_clock::now() >= next_heartbeat_) {
                next_heartbeat_ = std::chrono::steady_clock::now() + heartbeat_interval;
                co_await heartbeat();
            }
            if (need_coordinate_) {
                need_coordinate_ = false;
                co_await coordinate();
            }
            if (need_reconcile_) {
                need_reconcile_ = false;
                co_await reconcile();
            }
            follow_generation_in_metrics();
            metrics_.slices_owned.set(static_cast<double>(ownership_.offered_slices().size()));
            backoff = std::chrono::milliseconds(100);
            if (woken_) {
                woken_ = false;
                continue;
            }
            wake_timer_.expires_at(next_heartbeat_);
            boost::system::error_code ec;
            co_await wake_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            woken_ = false;
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!failure.empty()) {
            if (!heartbeat_failing_ || backoff >= std::chrono::milliseconds(1000)) {
                spdlog::error("heartbeat failed {} error={} retry_in={}ms", context(), log::quoted(failure),
                              backoff.count());
            }
            heartbeat_failing_ = true;
            metrics_.database_reachable.set(0);
            metrics_.set_state(worker_id_, metrics::WorkerState::heartbeat_failing);
            failure.clear();
            connection_->close();
            need_coordinate_ = need_reconcile_ = true;
            next_heartbeat_ = std::chrono::steady_clock::now();
            wake_timer_.expires_after(backoff);
            boost::system::error_code ec;
            co_await wake_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            backoff = std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(heartbeat_interval));
        }
    }
    fence_timer_.cancel();
    metrics_.set_state(worker_id_, metrics::WorkerState::stopping);
    try {
        if (!connection_->ok()) co_await connect();
        co_await leave();
    } catch (const std::exception& e) {
        spdlog::error("could not unregister; the others will remove this worker as stale {} error={}", context(),
                      log::quoted(e.what()));
    }
    connection_->close();
}

}  // namespace orchestratord::cluster
