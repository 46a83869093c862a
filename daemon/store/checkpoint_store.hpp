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

namespace orchestratord::store {

// Who commits: the worker and the lease it holds on its checkpoint rows.
struct Fence {
    std::string owner;
    int64_t lease = 0;
};

class CheckpointStore {
public:
    explicit CheckpointStore(const config::EventStoreConfig& store);

    // Creates the replica set's row on first use and returns its stored slice
    // count, which wins over the configuration (changing it is an offline job).
    boost::asio::awaitable<int32_t> register_replica_set(pg::AsyncConnection& connection,
                                                         const std::string& replica_set, int32_t configured_slices);
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
    std::string replica_sets_;
    std::string progress_;
    std::string checkpoints_;  // the per-slice view over progress_
    std::string slices_;
    std::string workers_;
};

}  // namespace orchestratord::store
