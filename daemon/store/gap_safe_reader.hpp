#pragma once
// Reads batches in global_position order without ever skipping a late commit
// (docs/event-path.md). Positions come from a sequence and are drawn before
// commit, so "position > checkpoint" alone would skip a transaction that
// commits a lower position after a higher one was read. Each read also counts
// the positions missing below the batch's highest one (in the whole table, not
// just this read's slices and scope). With no missing position the batch is
// final. Otherwise the part below the first missing position is final; for the
// rest the reader notes the transactions holding RowExclusiveLock on the
// events table (read after the batch's snapshot), waits until they have ended
// and reads the range again: what is still missing then was rolled back.
// Why that is enough: a writer locks the table before it draws a position and
// keeps the lock until it ends, so a writer that could still fill a hole below
// the batch's top was either listed (and waited for) or had already ended when
// the lock list was read, and the re-read's newer snapshot sees its rows.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "pg/async_connection.hpp"
#include "store/event_batch.hpp"

namespace orchestratord::store {

// Which events a projection sees: empty lists mean "all".
struct Scope {
    std::vector<std::string> aggregate_types;
    std::vector<std::string> bounded_contexts;
    std::vector<std::string> event_types;
    bool operator==(const Scope&) const = default;
};

struct ReadRequest {
    int32_t slice_count = 64;
    std::vector<int32_t> owned_slices;  // sorted
    std::vector<int64_t> positions;     // checkpoint per slice, indexed by slice number
    Scope scope;
    int64_t limit = 100;
    // At most this many payload bytes in one read (the first event is read
    // whatever its size), so memory stays bounded with large events.
    int64_t max_bytes = INT64_MAX;
};

// Called while the reader waits for an open writer: its pid and how long its
// transaction has been open (at least as long as the reader has waited for
// it, which is all it knows of another role's transaction).
struct BlockedWriter {
    int32_t pid = 0;  // 0 for a prepared transaction: no backend runs it
    double open_seconds = 0;
    std::string prepared_gid;  // the global id of a prepared transaction
};

// Thrown by a read that stop() ended.
struct ReadStopped : std::runtime_error {
    ReadStopped() : std::runtime_error("the reader was stopped") {}
};
using BlockedReport =
    std::function<void(const std::vector<BlockedWriter>&, std::chrono::steady_clock::duration waited)>;

class GapSafeReader {
public:
    GapSafeReader(const config::EventStoreConfig& store, BlockedReport on_blocked,
                  std::chrono::milliseconds report_after = std::chrono::seconds(5));

    // Told how long the reader has been waiting for open writers, while it
    // waits, and 0 when the wait ends (for the blocked-reader metric).
    void report_waiting(std::function<void(double seconds)> on_waiting) { on_waiting_ = std::move(on_waiting); }

    // One final batch (possibly empty: nothing new is visible).
    boost::asio::awaitable<EventBatch> read(pg::AsyncConnection& connection, const ReadRequest& request);
    // Ends every wait for open writers at once (they throw ReadStopped), and
    // every later read: for a prompt shutdown while a writer stays open.
    void stop();

    // The SQL expression of an event's slice, for documentation and tests.
    static std::string slice_expression(const std::string& column, const std::string& slice_count_param);

private:
    struct Query;
    Query build(const ReadRequest& request, std::optional<int64_t> upto) const;
    boost::asio::awaitable<void> wait_for_writers(pg::AsyncConnection& connection, const std::string& writers);

    config::EventStoreConfig store_;
    std::string table_;
    BlockedReport on_blocked_;
    std::chrono::milliseconds report_after_;
    std::function<void(double seconds)> on_waiting_;
    bool stopped_ = false;
    std::set<boost::asio::steady_timer*> waits_;  // the timers of waits in progress
};

// The highest global position in the events table (0 when it is empty),
// committed or not: for progress lines, not for reading.
boost::asio::awaitable<int64_t> head_position(pg::AsyncConnection& connection, const config::EventStoreConfig& store);

}  // namespace orchestratord::store
