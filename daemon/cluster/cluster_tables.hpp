#pragma once
// Every statement on the cluster's tables (orchestratord_replica_sets,
// _workers, _generations, _slices, _slice_history), for one replica set, with
// typed inputs and outputs. The protocol that uses them is described in
// cluster_member.hpp and docs/cluster.md; the checkpoint rows the fencing
// relies on belong to store/checkpoint_store.hpp.
//
// Each method is one statement on the given connection, so a caller decides
// what runs in one transaction (the coordinator holds the replica set row).
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "store/checkpoint_store.hpp"
#include "store/table_names.hpp"

namespace orchestratord::pg {
class AsyncConnection;
}

namespace orchestratord::cluster {

// The application_name of a session of this process: "orchestratord <tag> <role>".
std::string session_name(const std::string& session_tag, const std::string& role);

// The NOTIFY channel of coordination changes (new generation, released
// slices), at most 63 bytes whatever the schema name (store/pg_names.hpp).
std::string cluster_channel(const config::EventStoreConfig& store);

// Who a worker is, as stored in its row.
struct WorkerIdentity {
    std::string host;
    int64_t pid = 0;
    std::string version;
    std::string session_tag;               // in the application_name of every session of the process
    std::vector<std::string> projections;  // its checkpoint rows are created with it
};

// What one heartbeat learns about the replica set.
struct HeartbeatReport {
    int64_t generation = 0;           // the replica set's current generation
    int64_t stale_workers = 0;        // workers whose last heartbeat is older than stale_worker_timeout
    bool settled = false;             // the live workers are exactly the current generation's members
    int64_t moving_slices = 0;        // slices whose owner is not their target owner
    bool generation_overdue = false;  // the generation is older than coordination_timeout (or absent)
    // How long until the next other worker turns stale (negative: already
    // is); none when this worker is alone.
    std::optional<std::chrono::milliseconds> next_stale_in;
    int64_t generation_members = 0;  // the workers the current generation divides the slices among
};

struct StaleWorker {
    std::string id;
    std::string host;
    std::string pid;
    double silent_seconds = 0;
};

struct EndedSessions {
    std::string worker;
    int64_t sessions = 0;  // how many sessions of it were ended
};

// Why slices are freed (owner = NULL, next epoch); each reason is its own condition.
enum class FreeReason {
    owner_gone,       // their owner's worker row is gone (stale or unregistered)
    not_handed_over,  // their owner is not their target and the generation is overdue
    released,         // a graceful release by their owner of the given slices no longer assigned to it
    leaving,          // a graceful release of every slice of the worker, which is stopping
};

struct FreedSlice {
    int32_t slice = 0;
    std::string previous_owner;  // from the slice's history; empty when none was recorded
};

struct GenerationRecord {
    std::vector<std::string> members;  // worker ids, sorted
    bool overdue = false;              // older than coordination_timeout
};

struct SliceAssignment {
    int32_t slice = 0;
    std::string owner;   // empty while free
    std::string target;  // empty without a target
};

// One of this worker's slices as the database sees it: owned by it, or free
// and assigned to it.
struct SliceRow {
    int32_t slice = 0;
    bool owned = false;          // owned by this worker; false: free and assigned to it
    int64_t epoch = 0;           // the ownership epoch
    bool assigned_here = false;  // its target owner is this worker
};

// This worker's slices, the generation and its lease, from one snapshot.
struct WorkerSlices {
    std::vector<SliceRow> slices;
    std::optional<int64_t> generation;  // none when the replica set has no row
    std::optional<int64_t> lease;       // none when this worker has no checkpoint rows
};

struct AcquiredSlice {
    int32_t slice = 0;
    int64_t epoch = 0;
};

class ClusterTables {
public:
    ClusterTables(const config::EventStoreConfig& store, std::string replica_set);

    const std::string& replica_set() const { return replica_set_; }

    // Creates the replica set's row and its slice rows on first use; returns
    // the stored slice count, which wins over the configuration.
    boost::asio::awaitable<int32_t> register_replica_set(pg::AsyncConnection& connection, int32_t configured_slices);
    // Inserts a new worker row and its checkpoint rows in one statement:
    // its runners can write checkpoints exactly as long as the rows exist,
    // and nothing else creates them. Returns the new worker's id.
    boost::asio::awaitable<std::string> register_worker(pg::AsyncConnection& connection,
                                                        const WorkerIdentity& identity);
    // Refreshes the worker's last_heartbeat with the database clock and, in
    // the same statement, reports on the replica set. None: the worker row
    // is gone (someone removed it as stale).
    boost::asio::awaitable<std::optional<HeartbeatReport>> heartbeat(pg::AsyncConnection& connection,
                                                                     const std::string& worker,
                                                                     std::chrono::milliseconds stale_after,
                                                                     std::chrono::milliseconds coordination_timeout);
    // Ends every session of the processes of stale workers (found by the
    // session tag in their application_name), of the same database role.
    boost::asio::awaitable<std::vector<EndedSessions>> end_stale_sessions(pg::AsyncConnection& connection,
                                                                          std::chrono::milliseconds stale_after);
    // Locks the replica set row without waiting (SKIP LOCKED) and returns its
    // generation; none when another session holds it. Inside a transaction.
    boost::asio::awaitable<std::optional<int64_t>> lock_replica_set(pg::AsyncConnection& connection);
    boost::asio::awaitable<std::vector<StaleWorker>> remove_stale_workers(pg::AsyncConnection& connection,
                                                                          std::chrono::milliseconds stale_after);
    // The registered workers' ids, sorted.
    boost::asio::awaitable<std::vector<std::string>> live_workers(pg::AsyncConnection& connection);
    boost::asio::awaitable<std::optional<GenerationRecord>> read_generation(
        pg::AsyncConnection& connection, int64_t number, std::chrono::milliseconds coordination_timeout);
    // Every slice's owner and target, by slice.
    boost::asio::awaitable<std::vector<SliceAssignment>> read_assignment(pg::AsyncConnection& connection);
    // Records generation `number` for `members`, makes it current and sets
    // the slices' target owners (`targets`: one per slice of `slices`, empty
    // for none); only changed targets are written.
    boost::asio::awaitable<void> write_generation(pg::AsyncConnection& connection, int64_t number,
                                                  const std::vector<std::string>& members,
                                                  const std::vector<int32_t>& slices,
                                                  const std::vector<std::string>& targets);
    // Frees slices and closes their ownership history. `worker` and `slices`
    // are used by FreeReason::released (both) and ::leaving (worker). A
    // graceful release also locks the releasing worker's checkpoint rows,
    // which a batch transaction holds from its checkpoint write until it
    // ends: a batch either commits before the release or sees the new epoch
    // and rolls back.
    boost::asio::awaitable<std::vector<FreedSlice>> free_slices(pg::AsyncConnection& connection, FreeReason reason,
                                                                const std::string& worker = {},
                                                                const std::vector<int32_t>& slices = {});
    // The slices this worker owns or may acquire, the generation and the
    // worker's lease, in one snapshot (a coordinator takes slices and revokes
    // the lease in one transaction).
    boost::asio::awaitable<WorkerSlices> read_worker_slices(pg::AsyncConnection& connection, const std::string& worker);
    // Takes the free slices assigned to `worker` (next epoch) and opens their history.
    boost::asio::awaitable<std::vector<AcquiredSlice>> acquire(pg::AsyncConnection& connection,
                                                               const std::string& worker);
    boost::asio::awaitable<void> remove_worker(pg::AsyncConnection& connection, const std::string& worker);
    // NOTIFY on the cluster channel: the other members coordinate and reconcile now.
    boost::asio::awaitable<void> notify(pg::AsyncConnection& connection);

private:
    const store::TableNames& tables_;
    store::CheckpointStore checkpoints_;
    std::string replica_set_;
    std::string channel_;
};

}  // namespace orchestratord::cluster
