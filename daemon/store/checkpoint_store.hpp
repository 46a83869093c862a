#pragma once
// Per-slice checkpoints: (replica set, projection, slice) -> the position up
// to which every event of that slice has been handled.
//
// Stored as one row per (replica set, projection, writer): the writer is a
// worker, and its row holds a position for every slice (an array), so a batch
// writes its checkpoints with one single-row UPDATE. A slice's checkpoint is
// the highest position any row holds for it: a row only ever holds positions
// its writer reached while it owned the slice (or read from the others), so
// the highest one is always true, and a late or repeated write is harmless.
//
// The fence: a worker's rows are created with its registration and carry a
// lease number. Whoever takes slices from a worker without its cooperation
// (stale worker removed, slice not handed over in time) first bumps that
// lease or folds the rows away; that UPDATE/DELETE waits for a batch that
// holds the row, and every later write with the old lease matches no row.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "pg/async_connection.hpp"
#include "store/table_names.hpp"

namespace orchestratord::store {

// Who commits: the worker and the lease it holds on its checkpoint rows.
struct Fence {
    std::string owner;
    int64_t lease = 0;
};

class CheckpointStore {
public:
    explicit CheckpointStore(const config::EventStoreConfig& store);

    // The statement that creates a new worker's checkpoint rows (lease 0), one
    // per projection, as an item of a WITH query: `writer` names an earlier
    // item with an `id` column (the worker being registered), $1 holds the
    // replica set and `projections` is the placeholder of a text[] of
    // projection names. The worker's registration embeds it, so the rows and
    // the worker are created in one statement (cluster/cluster_tables.hpp).
    std::string create_rows(const std::string& writer, const std::string& projections) const;
    // Every slice's checkpoint (0 when none was written yet).
    boost::asio::awaitable<std::vector<int64_t>> load(pg::AsyncConnection& connection, const std::string& replica_set,
                                                      const std::string& projection, int32_t slice_count);
    // Stores `positions` (one per slice) as the fence's owner's row, if the
    // owner still holds its lease. False: the lease was revoked or the row
    // folded away, nothing was written (in a batch transaction, the caller
    // must then roll back).
    boost::asio::awaitable<bool> write(pg::AsyncConnection& connection, const std::string& replica_set,
                                       const std::string& projection, const Fence& fence,
                                       const std::vector<int64_t>& positions);

    // Inside a batch transaction, after write(): true when `owner` still owns
    // each of `slices` at the epoch it acquired it with (`epochs`, same order).
    // A graceful release takes the releasing worker's checkpoint rows (which
    // write() holds until the batch ends) in the statement that frees the
    // slices, so either the batch commits before the release, or this check,
    // a statement after the row lock was granted, sees the new epoch.
    boost::asio::awaitable<bool> owns_at_epochs(pg::AsyncConnection& connection, const std::string& replica_set,
                                                const std::string& owner, const std::vector<int32_t>& slices,
                                                const std::vector<int64_t>& epochs);

    // --- coordinator side, inside its transaction ---
    // Bumps the lease of these workers' rows: their writes in flight finish
    // first, later ones are refused.
    boost::asio::awaitable<void> revoke_leases(pg::AsyncConnection& connection, const std::string& replica_set,
                                               const std::vector<std::string>& writers);
    // Merges the rows of writers that are no longer registered into the
    // nil writer's row and deletes them (which also fences those writers).
    // Returns how many writers were folded.
    boost::asio::awaitable<int64_t> fold_departed(pg::AsyncConnection& connection, const std::string& replica_set);

private:
    const TableNames& tables_;
};

}  // namespace orchestratord::store
