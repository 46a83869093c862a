#include "cluster/cluster_member.hpp"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cluster/slice_assigner.hpp"
#include "pg/array_literal.hpp"
#include "pg/async_connection.hpp"
#include "store/checkpoint_store.hpp"
#include "store/pg_names.hpp"

namespace orchestratord::cluster {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

int64_t milliseconds(config::Duration duration) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

std::string host_name() {
    char buffer[256] = {};
    if (::gethostname(buffer, sizeof buffer - 1) != 0) return "unknown";
    return buffer;
}

// "{a,b}" from PostgreSQL's text form of an array to its elements.
std::vector<std::string> array_elements(const std::optional<std::string>& text) {
    std::vector<std::string> out;
    if (!text || text->size() < 2) return out;
    std::string current;
    for (char c : text->substr(1, text->size() - 2)) {
        if (c == ',') {
            out.push_back(current);
            current.clear();
        } else {
            current += c;
        }
    }
    if (!current.empty()) out.push_back(current);
    return out;
}

// The one definition of a stale worker (alias: the workers table's alias,
// param: the placeholder holding stale_worker_timeout in milliseconds). The
// heartbeat's check, ending the sessions and removing the rows must agree.
std::string is_stale(const std::string& alias, const std::string& param) {
    return alias + ".last_heartbeat < now() - " + param + "::int8 * interval '1 millisecond'";
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

std::string session_name(const std::string& session_tag, const std::string& role) {
    return "orchestratord " + session_tag + " " + role;
}

std::string cluster_channel(const config::EventStoreConfig& store) {
    return store::fit_name("orchestratord_cluster_" + store.schema);
}

ClusterMember::ClusterMember(asio::io_context& io, MemberSettings settings)
    : io_(io),
      settings_(std::move(settings)),
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
    return "replica_set=" + settings_.replica_set.name + " worker=" + (worker_id_.empty() ? "-" : worker_id_) +
           " generation=" + std::to_string(generation_);
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
                                  std::max<int64_t>(milliseconds(horizon), 100));
}

asio::awaitable<void> ClusterMember::register_worker() {
    store::CheckpointStore checkpoints(settings_.event_store);
    co_await checkpoints.register_replica_set(*connection_, settings_.replica_set.name,
                                              static_cast<int32_t>(settings_.replica_set.slices));
    std::vector<std::string> projections;
    for (const auto& projection : settings_.replica_set.projections) projections.push_back(projection.name);
    const auto params = pg::make_params(settings_.replica_set.name, host_name(), std::to_string(::getpid()),
                                        settings_.version, settings_.session_tag, pg::text_array(projections));
    // The worker's checkpoint rows (lease 0) are created with it, in one
    // statement: its runners can write checkpoints exactly as long as they
    // exist, and nothing else creates them (store/checkpoint_store.hpp).
    const auto rows = co_await connection_->exec(
        "WITH w AS (INSERT INTO " + store::own_table(settings_.event_store, "workers") +
            " (replica_set, id, host, pid, version, session_tag) VALUES ($1, gen_random_uuid(), $2, $3, $4, $5) "
            "RETURNING id), "
            "p AS (INSERT INTO " +
            store::own_table(settings_.event_store, "progress") +
            " (replica_set, projection, writer) SELECT $1, unnest($6::text[]), w.id FROM w) "
            "SELECT id FROM w",
        params, "register the worker");
    worker_id_ = *rows.at(0, 0);
    ownership_.set_owner(worker_id_);
    next_heartbeat_ = std::chrono::steady_clock::now();
    spdlog::info("worker registered {} host={} pid={} version={} session_tag={}", context(), host_name(), ::getpid(),
                 settings_.version, settings_.session_tag);
}

// Refreshes this worker's row with the database clock, and in the same
// statement learns whether anything needs coordinating.
asio::awaitable<void> ClusterMember::heartbeat() {
    const auto& rs = settings_.replica_set;
    const std::string workers = store::own_table(settings_.event_store, "workers");
    const std::string sets = store::own_table(settings_.event_store, "replica_sets");
    const std::string generations = store::own_table(settings_.event_store, "generations");
    const std::string slices = store::own_table(settings_.event_store, "slices");
    const std::string current_generation =
        "(SELECT g.members, g.created_at FROM " + generations + " g JOIN " + sets +
        " r ON r.name = g.replica_set AND r.generation = g.number WHERE r.name = $1)";
    const auto params = pg::make_params(rs.name, worker_id_, std::to_string(milliseconds(rs.stale_worker_timeout)),
                                        std::to_string(milliseconds(rs.coordination_timeout)));
    const auto sent = std::chrono::steady_clock::now();
    const auto rows = co_await connection_->exec(
        "WITH current_generation AS " + current_generation + " UPDATE " + workers +
            " SET last_heartbeat = now() WHERE replica_set = $1 AND id = $2::uuid RETURNING "
            "(SELECT generation FROM " +
            sets +
            " WHERE name = $1), "
            "(SELECT count(*) FROM " +
            workers + " w WHERE w.replica_set = $1 AND " + is_stale("w", "$3") +
            "), "
            "coalesce((SELECT array_agg(w.id ORDER BY w.id) FROM " +
            workers +
            " w WHERE w.replica_set = $1) = (SELECT members FROM current_generation), false), "
            "(SELECT count(*) FROM " +
            slices +
            " s WHERE s.replica_set = $1 AND s.owner IS DISTINCT FROM s.target_owner), "
            "coalesce((SELECT created_at < now() - $4::int8 * interval '1 millisecond' FROM current_generation), "
            "true), "
            "(SELECT (extract(epoch FROM min(w.last_heartbeat) - now()) * 1000 + $3::int8)::int8 FROM " +
            workers + " w WHERE w.replica_set = $1 AND w.id <> $2::uuid)",
        params, "heartbeat");
    if (rows.rows == 0) {
        // Someone removed us as stale (we were stopped or cut off): whatever
        // we owned is gone. Start over as a new worker.
        spdlog::error("this worker was removed as stale; dropping every slice and registering again {}", context());
        ownership_.forget_all();
        worker_id_.clear();
        co_await register_worker();
        co_return co_await heartbeat();
    }
    // Self-fencing counts from when the heartbeat was sent: the database's
    // deadline counts from its now(), which is later, so we always stop first.
    ownership_.set_commit_deadline(sent + (rs.stale_worker_timeout - rs.heartbeat_interval));
    if (heartbeat_failing_) {
        spdlog::info("heartbeat works again {}", context());
        heartbeat_failing_ = false;
        need_reconcile_ = true;  // take back what is still ours
    }
    const int64_t generation = std::stoll(rows.at(0, 0).value_or("0"));
    const bool stale = rows.at(0, 1) != "0";
    const bool settled = rows.at(0, 2) == "t";
    const bool moving = rows.at(0, 3) != "0";
    const bool overdue = rows.at(0, 4) == "t";
    if (generation != generation_) need_reconcile_ = true;
    generation_ = generation;
    ownership_.set_generation(generation);
    stale_seen_ = stale;
    if (stale || !settled || (moving && overdue)) need_coordinate_ = true;
    if (moving) need_reconcile_ = true;
    // Another worker turns stale before our next tick: look again right
    // then, so its slices move within stale_worker_timeout of its last
    // heartbeat, not up to a heartbeat_interval later.
    if (const auto until_stale = rows.at(0, 5)) {
        const auto due = sent + std::chrono::milliseconds(std::stoll(*until_stale)) + 20ms;
        if (due > std::chrono::steady_clock::now()) next_heartbeat_ = std::min(next_heartbeat_, due);
    }
    fence_timer_.cancel();  // re-arm the self-fence watch at the new deadline
}

// Frees the slices matching `condition` (owner = NULL, next epoch) and closes
// their ownership history. Returns (slice, previous owner) rows.
//
// With InFlight::wait_for_them the statement also locks the releasing
// worker's checkpoint rows. A batch transaction holds its row from the
// checkpoint write until it ends and checks its slices' epochs in a later
// statement, so it either commits before this release or sees the new epoch
// and rolls back: a batch can never commit for a slice already handed over,
// whatever path (a retry after a back-off, a missed boundary) led there.
asio::awaitable<pg::Rows> ClusterMember::free_slices(const std::string& condition, const pg::Params& params,
                                                     const std::string& purpose, InFlight in_flight) {
    const std::string slices = store::own_table(settings_.event_store, "slices");
    const std::string history = store::own_table(settings_.event_store, "slice_history");
    std::string batches_done = "true";
    std::string batches;
    if (in_flight == InFlight::wait_for_them) {
        batches = "batches AS (SELECT 1 FROM " + store::own_table(settings_.event_store, "progress") +
                  " WHERE replica_set = $1 AND writer = $2::uuid FOR NO KEY UPDATE), ";
        batches_done = "(SELECT count(*) FROM batches) >= 0";
    }
    co_return co_await connection_->exec(
        "WITH " + batches + "freed AS (UPDATE " + slices +
            " s SET owner = NULL, epoch = s.epoch + 1 WHERE s.replica_set = $1 AND (" + condition +
            ") RETURNING s.slice, s.epoch - 1 AS held), "
            "closed AS (UPDATE " +
            history +
            " h SET released_at = clock_timestamp() FROM freed f WHERE h.replica_set = $1 AND h.slice = f.slice AND "
            "h.epoch = f.held RETURNING h.slice, h.owner) "
            "SELECT f.slice, c.owner FROM freed f LEFT JOIN closed c USING (slice) WHERE " +
            batches_done + " ORDER BY f.slice",
        params, purpose);
}

asio::awaitable<void> ClusterMember::notify_cluster() {
    co_await connection_->exec("NOTIFY " + store::quote_identifier(cluster_channel(settings_.event_store)),
                               pg::Params{}, "tell the cluster");
}

// Ends every session of the processes of stale workers (found by the tag in
// their application_name). A frozen process can hold slice row locks in an
// open batch transaction; ending its sessions rolls that back, so the slices
// can be freed, and nothing it started can commit any more. Only sessions of
// our own database role: others cannot be signalled without privileges.
asio::awaitable<void> ClusterMember::end_stale_sessions() {
    const auto& rs = settings_.replica_set;
    const auto params = pg::make_params(rs.name, std::to_string(milliseconds(rs.stale_worker_timeout)));
    const auto ended = co_await connection_->exec(
        "SELECT w.id::text, count(a.pid) FILTER (WHERE pg_terminate_backend(a.pid)) FROM " +
            store::own_table(settings_.event_store, "workers") +
            " w JOIN pg_stat_activity a ON a.application_name LIKE 'orchestratord ' || w.session_tag || ' %' "
            "AND a.pid <> pg_backend_pid() AND a.usesysid = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
            "WHERE w.replica_set = $1 AND w.session_tag IS NOT NULL AND w.session_tag <> '' "
            "AND " +
            is_stale("w", "$2") + " GROUP BY w.id",
        params, "end the sessions of stale workers");
    for (int64_t i = 0; i < ended.rows; ++i) {
        if (ended.at(i, 1) == "0") continue;
        spdlog::warn(
            "ended the database sessions of a stale worker so it can commit nothing more {} stale_worker={} "
            "sessions={}",
            context(), ended.at(i, 0).value_or(""), ended.at(i, 1).value_or(""));
    }
}

// One coordination attempt: only the worker that locks the replica set row
// coordinates this tick; the others skip it instead of queueing.
asio::awaitable<void> ClusterMember::coordinate() {
    const auto& rs = settings_.replica_set;
    if (stale_seen_) {
        stale_seen_ = false;
        co_await end_stale_sessions();
    }
    const std::string sets = store::own_table(settings_.event_store, "replica_sets");
    const auto started = std::chrono::steady_clock::now();
    const auto name = pg::make_params(rs.name);
    // A batch holding slice rows may delay coordination, never a heartbeat:
    // give up quickly and try again next tick.
    const int64_t lock_timeout = std::clamp<int64_t>(milliseconds(rs.heartbeat_interval) / 2, 50, 1000);
    co_await connection_->exec("BEGIN", pg::Params{}, "begin coordination");
    std::exception_ptr failure;
    try {
        co_await connection_->exec("SET LOCAL lock_timeout = " + std::to_string(lock_timeout), pg::Params{},
                                   "limit coordination lock waits");
        const auto locked = co_await connection_->exec(
            "SELECT generation FROM " + sets + " WHERE name = $1 FOR UPDATE SKIP LOCKED", name, "lock the replica set");
        if (locked.rows == 0) {
            co_await connection_->exec("ROLLBACK", pg::Params{}, "end coordination");
            co_return;  // another worker coordinates this tick
        }
        co_await coordinate_locked(std::stoll(*locked.at(0, 0)));
        co_await connection_->exec("COMMIT", pg::Params{}, "commit coordination");
    } catch (...) {
        failure = std::current_exception();
    }
    if (failure) {
        // Usually the lock timeout (a batch holds a slice row): roll back and
        // try again next tick. A lost connection goes up to the caller.
        if (!connection_->ok() || !is_sql_error(failure)) std::rethrow_exception(failure);
        spdlog::debug("coordination gave up this tick {} error=\"{}\"", context(), describe(failure));
        co_await connection_->exec("ROLLBACK", pg::Params{}, "end coordination");
        need_coordinate_ = true;
        co_return;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    spdlog::debug("coordinated {} duration_s={:.3f}", context(), seconds);
}

// The coordinator's work, inside its transaction holding the replica set row.
asio::awaitable<void> ClusterMember::coordinate_locked(int64_t generation) {
    const auto& rs = settings_.replica_set;
    const std::string workers = store::own_table(settings_.event_store, "workers");
    const std::string generations = store::own_table(settings_.event_store, "generations");
    const auto name = pg::make_params(rs.name);
    bool notify = false;
    const auto stale_params = pg::make_params(rs.name, std::to_string(milliseconds(rs.stale_worker_timeout)));
    const auto stale = co_await connection_->exec(
        "DELETE FROM " + workers + " w WHERE w.replica_set = $1 AND " + is_stale("w", "$2") +
            " RETURNING w.id, w.host, w.pid, extract(epoch FROM now() - w.last_heartbeat)::float8",
        stale_params, "remove stale workers");
    for (int64_t i = 0; i < stale.rows; ++i) {
        spdlog::warn("removed a stale worker {} stale_worker={} stale_host={} stale_pid={} silent_s={:.1f}", context(),
                     stale.at(i, 0).value_or(""), stale.at(i, 1).value_or(""), stale.at(i, 2).value_or(""),
                     std::stod(stale.at(i, 3).value_or("0")));
    }
    // Before their slices are freed: folding a departed worker's checkpoint
    // rows waits for a write of it still in flight and fences later ones.
    store::CheckpointStore checkpoints(settings_.event_store);
    const int64_t folded = co_await checkpoints.fold_departed(*connection_, rs.name);
    if (folded > 0) spdlog::debug("folded the checkpoints of departed workers {} workers={}", context(), folded);
    const auto orphaned = co_await free_slices("s.owner IS NOT NULL AND NOT EXISTS (SELECT 1 FROM " + workers +
                                                   " w WHERE w.replica_set = $1 AND w.id = s.owner)",
                                               name, "free the slices of workers that are gone");
    if (orphaned.rows > 0) {
        notify = true;
        spdlog::info("freed slices of workers that are gone {} slices={}", context(), orphaned.rows);
    }
    const auto live = co_await connection_->exec(
        "SELECT coalesce(array_agg(id ORDER BY id), '{}')::text FROM " + workers + " WHERE replica_set = $1", name,
        "list live workers");
    const auto gen_params =
        pg::make_params(rs.name, std::to_string(generation), std::to_string(milliseconds(rs.coordination_timeout)));
    const auto last = co_await connection_->exec(
        "SELECT members::text, created_at < now() - $3::int8 * interval '1 millisecond' FROM " + generations +
            " WHERE replica_set = $1 AND number = $2",
        gen_params, "read the current generation");
    const std::string live_members = live.at(0, 0).value_or("{}");
    if (last.rows == 0 || last.at(0, 0) != live_members) {
        co_await write_generation(generation + 1, live_members);
        notify = true;
    } else if (last.at(0, 1) == "t") {
        // The generation is older than coordination_timeout and some
        // owner still has not handed its slice over: take it away. The
        // fencing check makes a late commit by that owner fail.
        const auto forced = co_await free_slices("s.owner IS NOT NULL AND s.owner IS DISTINCT FROM s.target_owner",
                                                 name, "free slices not handed over in time");
        std::vector<std::string> owners;
        for (int64_t i = 0; i < forced.rows; ++i) {
            spdlog::error("coordination timeout: slice not released in time, freed it {} slice={} owner={}", context(),
                          forced.at(i, 0).value_or(""), forced.at(i, 1).value_or(""));
            const std::string owner = forced.at(i, 1).value_or("");
            if (!owner.empty() && std::find(owners.begin(), owners.end(), owner) == owners.end()) {
                owners.push_back(owner);
            }
        }
        // Those owners are alive but late: revoking their lease makes their
        // commit in flight (if any) finish first and every later one fail,
        // until they have read the new ownership and lease.
        co_await checkpoints.revoke_leases(*connection_, rs.name, owners);
        if (forced.rows > 0) notify = true;
    }
    if (notify) co_await notify_cluster();
}

// Writes generation G+1 for the live workers and points every slice at its
// new target owner. Only slices whose target changes are written.
asio::awaitable<void> ClusterMember::write_generation(int64_t generation, const std::string& live) {
    const auto& rs = settings_.replica_set;
    const std::string slices = store::own_table(settings_.event_store, "slices");
    const auto name = pg::make_params(rs.name);
    const auto current =
        co_await connection_->exec("SELECT slice, coalesce(owner::text, ''), coalesce(target_owner::text, '') FROM " +
                                       slices + " WHERE replica_set = $1 ORDER BY slice",
                                   name, "read the slice assignment");
    const auto members = array_elements(live);
    std::vector<std::string> holders(static_cast<size_t>(current.rows));
    for (int64_t i = 0; i < current.rows; ++i) {
        const std::string owner = *current.at(i, 1);
        const std::string target = *current.at(i, 2);
        const bool target_live = std::find(members.begin(), members.end(), target) != members.end();
        holders[static_cast<size_t>(i)] = target_live ? target : owner;
    }
    const auto targets = assign_slices(holders, members);
    std::vector<int32_t> slice_numbers;
    std::string target_ids = "{";  // uuid[]: NULL for a slice without a target
    size_t moved = 0;
    for (int64_t i = 0; i < current.rows; ++i) {
        const auto index = static_cast<size_t>(i);
        slice_numbers.push_back(std::stoi(*current.at(i, 0)));
        if (i > 0) target_ids += ',';
        target_ids += targets[index].empty() ? "NULL" : targets[index];
        if (!targets[index].empty() && targets[index] != *current.at(i, 1)) ++moved;
    }
    target_ids += '}';
    const auto write =
        pg::make_params(rs.name, std::to_string(generation), live, pg::number_array(slice_numbers), target_ids);
    co_await connection_->exec(
        "WITH g AS (INSERT INTO " + store::own_table(settings_.event_store, "generations") +
            " (replica_set, number, members) VALUES ($1, $2, $3::uuid[])), "
            "r AS (UPDATE " +
            store::own_table(settings_.event_store, "replica_sets") +
            " SET generation = $2 WHERE name = $1) "
            "UPDATE " +
            slices +
            " s SET target_owner = t.target FROM unnest($4::int4[], $5::uuid[]) AS t(slice, target) "
            "WHERE s.replica_set = $1 AND s.slice = t.slice AND s.target_owner IS DISTINCT FROM t.target",
        write, "write the new generation");
    generation_ = generation;
    ownership_.set_generation(generation);
    spdlog::info("new generation {} workers={} slices={} slices_moving={}", context(), members.size(), current.rows,
                 moved);
}

// Brings this process's view in line with the database: slices taken away
// are dropped, slices assigned elsewhere are withdrawn and released once the
// runners are done with them, free slices assigned here are acquired.
asio::awaitable<void> ClusterMember::reconcile() {
    const std::string slices = store::own_table(settings_.event_store, "slices");
    const auto params = pg::make_params(settings_.replica_set.name, worker_id_);
    // One snapshot for the slices and the lease: a coordinator takes slices
    // and revokes the lease in one transaction.
    const auto rows = co_await connection_->exec(
        "SELECT slice, owner IS NOT NULL, epoch, target_owner IS NOT DISTINCT FROM $2::uuid, (SELECT generation FROM " +
            store::own_table(settings_.event_store, "replica_sets") +
            " WHERE name = $1), "
            "(SELECT max(lease) FROM " +
            store::own_table(settings_.event_store, "progress") +
            " WHERE replica_set = $1 AND writer = $2::uuid) FROM " + slices +
            " WHERE replica_set = $1 AND (owner = $2::uuid OR (owner IS NULL AND target_owner = $2::uuid))",
        params, "read this worker's slices");
    if (rows.rows > 0) {
        generation_ = std::stoll(rows.at(0, 4).value_or("0"));
        ownership_.set_generation(generation_);
        // No rows at all: this worker was removed; the heartbeat starts over.
        if (rows.at(0, 5)) ownership_.set_lease(std::stoll(*rows.at(0, 5)));
    }
    std::map<int32_t, std::pair<int64_t, bool>> mine;  // slice -> (epoch, still assigned here)
    bool free_for_us = false;
    for (int64_t i = 0; i < rows.rows; ++i) {
        if (rows.at(i, 1) == "f") {
            free_for_us = true;
            continue;
        }
        mine[std::stoi(*rows.at(i, 0))] = {std::stoll(*rows.at(i, 2)), rows.at(i, 3) == "t"};
    }
    std::vector<int32_t> taken;
    auto still_ours = [&](int32_t slice, int64_t epoch) {
        auto found = mine.find(slice);
        return found != mine.end() && found->second.first == epoch;
    };
    for (const auto& [slice, epoch] : ownership_.offered_slices()) {
        if (!still_ours(slice, epoch)) taken.push_back(slice);
    }
    for (const auto& [slice, withdrawal] : ownership_.withdrawn_slices()) {
        if (!still_ours(slice, withdrawal.epoch)) taken.push_back(slice);
    }
    for (int32_t slice : taken) ownership_.forget(slice);
    if (!taken.empty()) {
        spdlog::warn("slices were taken away from this worker {} slices={}", context(), fmt::join(taken, ","));
    }
    const bool may_work = ownership_.may_commit();
    std::vector<int32_t> withdrawn;
    std::vector<int32_t> adopted;
    for (const auto& [slice, state] : mine) {
        const auto [epoch, assigned_here] = state;
        if (!assigned_here && ownership_.offered(slice)) {
            ownership_.withdraw(slice);
            withdrawn.push_back(slice);
        } else if (assigned_here && may_work && !ownership_.offered(slice)) {
            ownership_.offer(slice, epoch);  // e.g. after a self-fence that ended before anyone took it
            adopted.push_back(slice);
        } else if (!assigned_here && !ownership_.withdrawn(slice) && !ownership_.offered(slice)) {
            // Ours in the database but not in use here (after a self-fence): release at once.
            ownership_.offer(slice, epoch);
            ownership_.withdraw(slice);
        }
    }
    if (!withdrawn.empty()) {
        spdlog::info("handing slices over: stopping them at the next batch boundary {} slices={}", context(),
                     fmt::join(withdrawn, ","));
    }
    if (!adopted.empty()) {
        spdlog::info("resuming slices this worker still owns {} slices={}", context(), fmt::join(adopted, ","));
    }
    const auto drained = ownership_.drained();
    if (!drained.empty()) co_await release(drained);
    if (free_for_us && may_work) co_await acquire();
}

asio::awaitable<void> ClusterMember::release(const std::map<int32_t, int64_t>& slices) {
    std::vector<int32_t> numbers;
    for (const auto& [slice, epoch] : slices) numbers.push_back(slice);
    const auto freed = co_await free_slices(
        "s.slice = ANY($3::int4[]) AND s.owner = $2::uuid AND s.target_owner IS DISTINCT FROM $2::uuid",
        pg::make_params(settings_.replica_set.name, worker_id_, pg::number_array(numbers)), "release slices",
        InFlight::wait_for_them);
    std::vector<int32_t> released;
    for (int64_t i = 0; i < freed.rows; ++i) released.push_back(std::stoi(*freed.at(i, 0)));
    for (int32_t slice : numbers) ownership_.forget(slice);  // the rest is re-read next time
    if (!released.empty()) {
        co_await notify_cluster();
        spdlog::info("released slices {} slices={} count={}", context(), fmt::join(released, ","), released.size());
    }
    need_reconcile_ = released.size() != numbers.size();
}

asio::awaitable<void> ClusterMember::acquire() {
    const std::string slices = store::own_table(settings_.event_store, "slices");
    const std::string history = store::own_table(settings_.event_store, "slice_history");
    const auto params = pg::make_params(settings_.replica_set.name, worker_id_);
    const auto taken = co_await connection_->exec(
        "WITH taken AS (UPDATE " + slices +
            " SET owner = $2::uuid, epoch = epoch + 1 WHERE replica_set = $1 AND owner IS NULL AND target_owner = "
            "$2::uuid RETURNING slice, epoch), "
            "h AS (INSERT INTO " +
            history +
            " (replica_set, slice, epoch, owner, acquired_at) SELECT $1, slice, epoch, $2::uuid, clock_timestamp() "
            "FROM taken) SELECT slice, epoch FROM taken ORDER BY slice",
        params, "acquire slices");
    std::vector<int32_t> acquired;
    for (int64_t i = 0; i < taken.rows; ++i) {
        const int32_t slice = std::stoi(*taken.at(i, 0));
        ownership_.offer(slice, std::stoll(*taken.at(i, 1)));
        acquired.push_back(slice);
    }
    if (!acquired.empty()) {
        spdlog::info("acquired slices {} slices={} count={} owned={}", context(), fmt::join(acquired, ","),
                     acquired.size(), ownership_.offered_slices().size());
    }
}

// Graceful stop, after the runners have committed their last batches.
asio::awaitable<void> ClusterMember::leave() {
    if (worker_id_.empty()) co_return;
    const auto freed =
        co_await free_slices("s.owner = $2::uuid", pg::make_params(settings_.replica_set.name, worker_id_),
                             "release every slice", InFlight::wait_for_them);
    ownership_.forget_all();
    const auto params = pg::make_params(settings_.replica_set.name, worker_id_);
    co_await connection_->exec("DELETE FROM " + store::own_table(settings_.event_store, "workers") +
                                   " WHERE replica_set = $1 AND id = $2::uuid",
                               params, "unregister the worker");
    co_await notify_cluster();
    spdlog::info("worker unregistered {} released_slices={}", context(), freed.rows);
}

// Stops all work once the last committed heartbeat is too old, before the
// other workers may consider this one stale.
asio::awaitable<void> ClusterMember::watch_self_fence() {
    const auto check_every = std::max<std::chrono::steady_clock::duration>(settings_.replica_set.heartbeat_interval / 4,
                                                                           std::chrono::milliseconds(20));
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
                spdlog::error("heartbeat failed {} error=\"{}\" retry_in={}ms", context(), failure, backoff.count());
            }
            heartbeat_failing_ = true;
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
    try {
        if (!connection_->ok()) co_await connect();
        co_await leave();
    } catch (const std::exception& e) {
        spdlog::error("could not unregister; the others will remove this worker as stale {} error=\"{}\"", context(),
                      e.what());
    }
    connection_->close();
}

}  // namespace orchestratord::cluster
