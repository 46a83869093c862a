#include "cluster/coordinator.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "cluster/slice_assigner.hpp"
#include "log/quoted.hpp"
#include "pg/async_connection.hpp"
#include "pg/transaction.hpp"

namespace orchestratord::cluster {
namespace asio = boost::asio;

namespace {

std::chrono::milliseconds milliseconds(config::Duration duration) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(duration);
}

// A statement failed but the connection is fine (for example lock_timeout).
// Kept out of the coroutines: GCC 12 mis-diagnoses rethrows inside them.
bool is_sql_error(const std::exception_ptr& failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const pg::Error& e) {
        return !pg::is_connection_error(e);
    } catch (...) {
        return false;
    }
}

std::string describe(const std::exception_ptr& failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown error";
    }
}

}  // namespace

Coordinator::Coordinator(ClusterTables& tables, const config::EventStoreConfig& store,
                         const config::ReplicaSetConfig& settings, SliceOwnership& ownership,
                         metrics::ClusterMetrics& metrics)
    : tables_(tables), checkpoints_(store), settings_(settings), ownership_(ownership), metrics_(metrics) {}

std::string Coordinator::context() const {
    return ownership_.log_context(settings_.name);
}

// A frozen process can hold slice row locks in an open batch transaction;
// ending its sessions rolls that back, so the slices can be freed, and
// nothing it started can commit any more. Only sessions of our own database
// role: others cannot be signalled without privileges.
asio::awaitable<void> Coordinator::end_stale_sessions(pg::AsyncConnection& connection) {
    const auto ended = co_await tables_.end_stale_sessions(connection, milliseconds(settings_.stale_worker_timeout));
    for (const auto& worker : ended) {
        if (worker.sessions == 0) continue;
        spdlog::warn(
            "ended the database sessions of a stale worker so it can commit nothing more {} stale_worker={} "
            "sessions={}",
            context(), worker.worker, worker.sessions);
    }
}

asio::awaitable<bool> Coordinator::coordinate(pg::AsyncConnection& connection) {
    const auto started = std::chrono::steady_clock::now();
    // A batch holding slice rows may delay coordination, never a heartbeat:
    // give up quickly and try again next tick.
    const int64_t lock_timeout = std::clamp<int64_t>(milliseconds(settings_.heartbeat_interval).count() / 2, 50, 1000);
    std::exception_ptr failure;
    pg::Outcome outcome = pg::Outcome::roll_back;
    try {
        outcome = co_await pg::with_transaction(connection, "coordination", [&]() -> asio::awaitable<pg::Outcome> {
            co_await connection.exec("SET LOCAL lock_timeout = " + std::to_string(lock_timeout), pg::Params{},
                                     "limit coordination lock waits");
            const auto generation = co_await tables_.lock_replica_set(connection);
            if (!generation) co_return pg::Outcome::roll_back;  // another worker coordinates this tick
            // Sent at COMMIT: the others see the new state when they are told.
            const bool notify = co_await coordinate_locked(connection, *generation);
            if (notify) co_await tables_.notify(connection);
            co_return pg::Outcome::commit;
        });
    } catch (...) {
        failure = std::current_exception();
    }
    if (failure) {
        // Usually the lock timeout (a batch holds a slice row): rolled back,
        // try again next tick. A lost connection goes up to the caller.
        if (!connection.ok() || !is_sql_error(failure)) std::rethrow_exception(failure);
        spdlog::debug("coordination gave up this tick {} error={}", context(), log::quoted(describe(failure)));
        co_return false;
    }
    if (outcome == pg::Outcome::roll_back) co_return true;  // another worker coordinated
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics_.coordination_duration.observe(seconds);
    spdlog::debug("coordinated {} duration_s={:.3f}", context(), seconds);
    co_return true;
}

// Inside the transaction holding the replica set row.
asio::awaitable<bool> Coordinator::coordinate_locked(pg::AsyncConnection& connection, int64_t generation) {
    bool notify = false;
    const auto stale = co_await tables_.remove_stale_workers(connection, milliseconds(settings_.stale_worker_timeout));
    metrics_.stale_workers_cleaned.increment(static_cast<double>(stale.size()));
    for (const auto& worker : stale) {
        spdlog::warn("removed a stale worker {} stale_worker={} stale_host={} stale_pid={} silent_s={:.1f}", context(),
                     worker.id, worker.host, worker.pid, worker.silent_seconds);
    }
    // Before their slices are freed: folding a departed worker's checkpoint
    // rows waits for a write of it still in flight and fences later ones.
    const int64_t folded = co_await checkpoints_.fold_departed(connection, settings_.name);
    if (folded > 0) spdlog::debug("folded the checkpoints of departed workers {} workers={}", context(), folded);
    const auto orphaned = co_await tables_.free_slices(connection, FreeReason::owner_gone);
    if (!orphaned.empty()) {
        notify = true;
        spdlog::info("freed slices of workers that are gone {} slices={}", context(), orphaned.size());
    }
    const auto live = co_await tables_.live_workers(connection);
    const auto last =
        co_await tables_.read_generation(connection, generation, milliseconds(settings_.coordination_timeout));
    if (!last || last->members != live) {
        co_await write_generation(connection, generation + 1, live);
        notify = true;
    } else if (last->overdue) {
        // The generation is older than coordination_timeout and some owner
        // still has not handed its slice over: take it away.
        const auto forced = co_await tables_.free_slices(connection, FreeReason::not_handed_over);
        std::vector<std::string> owners;
        for (const auto& slice : forced) {
            spdlog::error("coordination timeout: slice not released in time, freed it {} slice={} owner={}", context(),
                          slice.slice, slice.previous_owner);
            if (!slice.previous_owner.empty() &&
                std::find(owners.begin(), owners.end(), slice.previous_owner) == owners.end()) {
                owners.push_back(slice.previous_owner);
            }
        }
        // Those owners are alive but late: revoking their lease makes their
        // commit in flight (if any) finish first and every later one fail,
        // until they have read the new ownership and lease.
        co_await checkpoints_.revoke_leases(connection, settings_.name, owners);
        if (!forced.empty()) notify = true;
    }
    co_return notify;
}

// Writes generation G+1 for the live workers and points every slice at its
// new target owner.
asio::awaitable<void> Coordinator::write_generation(pg::AsyncConnection& connection, int64_t generation,
                                                    const std::vector<std::string>& members) {
    const auto current = co_await tables_.read_assignment(connection);
    std::vector<std::string> holders;
    std::vector<int32_t> slices;
    for (const auto& slice : current) {
        const bool target_live = std::find(members.begin(), members.end(), slice.target) != members.end();
        holders.push_back(target_live ? slice.target : slice.owner);
        slices.push_back(slice.slice);
    }
    const auto targets = assign_slices(holders, members);
    size_t moved = 0;
    for (size_t i = 0; i < current.size(); ++i) {
        if (!targets[i].empty() && targets[i] != current[i].owner) ++moved;
    }
    co_await tables_.write_generation(connection, generation, members, slices, targets);
    ownership_.set_generation(generation);
    metrics_.generations.increment();
    metrics_.active_workers.set(static_cast<double>(members.size()));
    spdlog::info("new generation {} workers={} slices={} slices_moving={}", context(), members.size(), current.size(),
                 moved);
}

}  // namespace orchestratord::cluster
