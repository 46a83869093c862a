#pragma once
// Per-slice checkpoints: (replica set, projection, slice) -> the position up
// to which every event of that slice has been handled. Writes never move a
// checkpoint backwards (GREATEST), so a late or repeated commit is harmless.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "pg/async_connection.hpp"

namespace orchestratord::store {

// Who commits, and the ownership epoch of each slice it holds.
struct Fence {
    std::string owner;
    std::map<int32_t, int64_t> epochs;
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
    // Moves the given slices' checkpoints to `position` (never backwards),
    // but only for slices `fence.owner` still owns at the given epochs.
    // Returns the slices written; the others were taken away (in a batch
    // transaction, the caller must then roll back).
    boost::asio::awaitable<std::vector<int32_t>> advance(pg::AsyncConnection& connection,
                                                         const std::string& replica_set, const std::string& projection,
                                                         const std::vector<int32_t>& slices, int64_t position,
                                                         const Fence& fence);

private:
    std::string replica_sets_;
    std::string checkpoints_;
    std::string slices_;
};

}  // namespace orchestratord::store
