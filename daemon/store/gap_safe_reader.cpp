#include "store/gap_safe_reader.hpp"

#include <algorithm>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <sstream>

#include "pg/array_literal.hpp"
#include "store/pg_names.hpp"
#include "store/table_names.hpp"

namespace orchestratord::store {
namespace asio = boost::asio;

namespace {

// Columns of the batch query, in the order build_batch() reads them. Binary
// format: integers arrive as network-order bytes and bytea as raw bytes; uuid,
// jsonb and timestamptz are converted in SQL to what orch_event carries.
constexpr const char* kColumns =
    "e.global_position, e.bounded_context, e.aggregate_type, e.aggregate_id, e.aggregate_version, "
    "e.event_id::text, e.event_type, e.event_version, e.payload, e.trace_id, e.correlation_id, e.causation_id, "
    "e.metadata::text, e.created_at";
// The same columns read back from the byte-bounded sub-select.
constexpr const char* kBoundedColumns =
    "e.global_position, e.bounded_context, e.aggregate_type, e.aggregate_id, e.aggregate_version, e.event_id, "
    "e.event_type, e.event_version, e.payload, e.trace_id, e.correlation_id, e.causation_id, e.metadata, "
    "e.created_at, e.slice";
// Added to a sub-select's columns: the payload bytes of this row and of all
// rows before it in the read, so the outer query keeps the prefix that fits
// max_bytes (and always the first row, however large).
constexpr const char* kRunningBytes =
    ", sum(octet_length(e.payload)) OVER (ORDER BY e.global_position ROWS UNBOUNDED PRECEDING) AS read_bytes, "
    "octet_length(e.payload) AS "
    "own_bytes";
constexpr int kSliceColumn = 14;
constexpr int kHolesColumn = 15;
constexpr int kFinalColumn = 16;
constexpr int kFirstMissingColumn = 17;
// How many rows past the checkpoint one read without events of ours may
// cover (bounds the index range it counts, however sparse the positions).
constexpr int64_t kEmptyWindow = 50000;
// timestamptz in binary format: microseconds since 2000-01-01 UTC.
constexpr int64_t kPostgresEpochUs = 946684800000000LL;

const char* optional_text(const pg::Result& rows, int row, int column) {
    return rows.is_null(row, column) ? nullptr : rows.data(row, column);
}

EventBatch to_batch(pg::Result rows) {
    EventBatch batch;
    // The statement always returns a row; a NULL position means "no events".
    const int count = rows.rows() == 1 && rows.is_null(0, 0) ? 0 : rows.rows();
    batch.events.resize(static_cast<size_t>(count));
    batch.slices.resize(static_cast<size_t>(count));
    for (int row = 0; row < count; ++row) {
        orch_event& event = batch.events[static_cast<size_t>(row)];
        event.struct_size = sizeof(orch_event);
        event.global_position = rows.int8(row, 0);
        event.bounded_context = rows.data(row, 1);
        event.aggregate_type = rows.data(row, 2);
        event.aggregate_id = rows.data(row, 3);
        event.aggregate_version = rows.int8(row, 4);
        event.event_id = rows.data(row, 5);
        event.event_type = rows.data(row, 6);
        event.event_version = rows.int4(row, 7);
        event.payload = reinterpret_cast<const uint8_t*>(rows.data(row, 8));
        event.payload_size = static_cast<size_t>(rows.length(row, 8));
        event.trace_id = optional_text(rows, row, 9);
        event.correlation_id = optional_text(rows, row, 10);
        event.causation_id = optional_text(rows, row, 11);
        event.metadata = optional_text(rows, row, 12);
        event.created_at_us = rows.int8(row, 13) + kPostgresEpochUs;
        batch.slices[static_cast<size_t>(row)] = rows.int4(row, kSliceColumn);
    }
    // The statement relies on the CTE scan keeping the batch's order; should a
    // future planner not, restore it here rather than deliver out of order.
    bool ordered = true;
    for (size_t i = 1; i < batch.events.size() && ordered; ++i) {
        ordered = batch.events[i - 1].global_position < batch.events[i].global_position;
    }
    if (!ordered) {
        std::vector<size_t> order(batch.events.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return batch.events[a].global_position < batch.events[b].global_position;
        });
        std::vector<orch_event> events;
        std::vector<int32_t> slices;
        for (size_t i : order) {
            events.push_back(batch.events[i]);
            slices.push_back(batch.slices[i]);
        }
        batch.events = std::move(events);
        batch.slices = std::move(slices);
    }
    if (count > 0) batch.final_position = batch.events.back().global_position;
    batch.rows = std::move(rows);
    return batch;
}

}  // namespace

// Where the read starts: the lowest checkpoint among the owned slices.
int64_t lowest_position(const ReadRequest& request) {
    int64_t from = INT64_MAX;
    for (int32_t slice : request.owned_slices) from = std::min(from, request.positions[static_cast<size_t>(slice)]);
    return from == INT64_MAX ? 0 : from;
}

struct GapSafeReader::Query {
    std::string sql;
    pg::Params params;
    // Every visible position past the checkpoint is in the answer (all
    // slices from one position, no scope, no upper bound): the missing
    // positions can be counted from the rows themselves.
    bool whole_stream = false;
};

std::string GapSafeReader::slice_expression(const std::string& column, const std::string& slice_count_param) {
    // hashtextextended is built in (no extension) and stable across versions;
    // the double modulo keeps the result non-negative without abs(), which
    // would overflow on the smallest bigint.
    return "((hashtextextended(" + column + ", 0) % " + slice_count_param + " + " + slice_count_param + ") % " +
           slice_count_param + ")::int4";
}

GapSafeReader::GapSafeReader(const config::EventStoreConfig& store, BlockedReport on_blocked,
                             std::chrono::milliseconds report_after)
    : store_(store),
      table_(qualified(store, store.events_table)),
      on_blocked_(std::move(on_blocked)),
      report_after_(report_after) {}

// The batch statement. With `upto`: read the range (from, upto] completely
// (the re-read after waiting) instead of the next `limit` events.
GapSafeReader::Query GapSafeReader::build(const ReadRequest& request, std::optional<int64_t> upto) const {
    Query query;
    auto param = [&](std::optional<std::string> value) {
        query.params.push_back(std::move(value));
        std::string placeholder = "$";  // appended, not `"$" + ...`: GCC 12 -O3 warns falsely on that
        placeholder += std::to_string(query.params.size());
        return placeholder;
    };
    const int64_t from = lowest_position(request);
    bool uniform = true;
    for (int32_t slice : request.owned_slices)
        uniform = uniform && request.positions[static_cast<size_t>(slice)] == from;
    const bool all_slices = static_cast<int32_t>(request.owned_slices.size()) == request.slice_count;
    const std::string p_from = param(std::to_string(from));
    const std::string p_slices = param(std::to_string(request.slice_count));
    const std::string slice = slice_expression("e.aggregate_id", p_slices + "::int8");

    std::ostringstream sql;
    const bool unscoped = request.scope.aggregate_types.empty() && request.scope.bounded_contexts.empty() &&
                          request.scope.event_types.empty();
    if (all_slices && uniform && unscoped && !upto) {
        // The common case while catching up: a plain index-order scan. The
        // general statement below materializes the batch to count what is
        // missing, which cost about a third of the read.
        sql << "SELECT " << kBoundedColumns << " FROM (SELECT " << kColumns << ", " << slice << " AS slice"
            << kRunningBytes << " FROM " << table_ << " e WHERE e.global_position > " << p_from
            << " ORDER BY e.global_position LIMIT " << param(std::to_string(request.limit))
            << ") e WHERE e.read_bytes - e.own_bytes < " << param(std::to_string(request.max_bytes))
            << " ORDER BY e.global_position";
        query.sql = sql.str();
        query.whole_stream = true;
        return query;
    }
    sql << "WITH ";
    // Read as a sub-select that also sums the payload bytes, cut to the
    // prefix that fits max_bytes. A re-read (`upto`) is bounded the same way:
    // an open writer may have committed any amount below `upto` meanwhile.
    sql << "batch AS (SELECT " << kBoundedColumns << " FROM (SELECT " << kColumns << ", " << slice << " AS slice"
        << kRunningBytes << " FROM " << table_ << " e";
    sql << " WHERE e.global_position > " << p_from;
    if (!(all_slices && uniform)) {
        // Only this worker's slices, each from its own checkpoint: a filter
        // on an array of per-slice positions (slices owned elsewhere at the
        // maximum), not a join, so the scan stays in index order and the
        // LIMIT ends it early. A join let the planner hash and sort, which
        // reads every row past the checkpoint for each batch.
        std::vector<int64_t> positions(static_cast<size_t>(request.slice_count), INT64_MAX);
        for (int32_t s : request.owned_slices)
            positions[static_cast<size_t>(s)] = request.positions[static_cast<size_t>(s)];
        sql << " AND e.global_position > (" << param(pg::number_array(positions)) << "::int8[])[" << slice << " + 1]";
    }
    if (!request.scope.aggregate_types.empty()) {
        sql << " AND e.aggregate_type = ANY(" << param(pg::text_array(request.scope.aggregate_types)) << "::text[])";
    }
    if (!request.scope.bounded_contexts.empty()) {
        sql << " AND e.bounded_context = ANY(" << param(pg::text_array(request.scope.bounded_contexts)) << "::text[])";
    }
    if (!request.scope.event_types.empty()) {
        sql << " AND e.event_type = ANY(" << param(pg::text_array(request.scope.event_types)) << "::text[])";
    }
    if (upto) sql << " AND e.global_position <= " << param(std::to_string(*upto));
    sql << " ORDER BY e.global_position LIMIT " << param(std::to_string(request.limit))
        << ") e WHERE e.read_bytes - e.own_bytes < " << param(std::to_string(request.max_bytes))
        << " ORDER BY e.global_position";
    // One row even when the batch is empty (LEFT JOIN on the one-row `top`),
    // so an empty read still tells how far it is final: up to the batch's
    // highest position, or, when nothing of ours is there, up to the
    // kEmptyWindow-th row past `from`. The missing positions are counted in
    // the whole table (a hole of another slice or scope counts too: we cannot
    // know whose it is) and the first of them is found, all in this
    // statement's snapshot: what is final must come from the snapshot the
    // rows come from. A later statement would see holes filled meanwhile and
    // move "final" past rows this batch never contained.
    sql << "), top AS (SELECT coalesce((SELECT max(global_position) FROM batch), "
        << "(SELECT coalesce(max(w.global_position), " << p_from << ") FROM (SELECT global_position FROM " << table_
        << " WHERE global_position > " << p_from << " ORDER BY global_position LIMIT "
        << param(std::to_string(kEmptyWindow)) << ") w)) AS hi), "
        << "gaps AS (SELECT top.hi, (top.hi - " << p_from << " - (SELECT count(*) FROM " << table_
        << " x WHERE x.global_position > " << p_from << " AND x.global_position <= top.hi))::int8 AS holes FROM top), "
        << "first AS (SELECT g.hi, g.holes, CASE WHEN g.holes > 0 THEN (SELECT min(x.prev + 1) FROM (SELECT "
        << "global_position, lag(global_position, 1, " << p_from << ") OVER (ORDER BY global_position) AS prev FROM "
        << table_ << " WHERE global_position > " << p_from
        << " AND global_position <= g.hi) x WHERE x.global_position <> x.prev + 1) END AS first_missing FROM gaps g) "
        << "SELECT b.*, f.holes, f.hi, f.first_missing FROM first f LEFT JOIN batch b ON true";
    // No second sort: the CTE scan keeps the batch's order (checked in to_batch).
    query.sql = sql.str();
    return query;
}

asio::awaitable<EventBatch> GapSafeReader::read(pg::AsyncConnection& connection, const ReadRequest& request) {
    if (stopped_) throw ReadStopped();
    Query query = build(request, std::nullopt);
    const int64_t from = lowest_position(request);
    pg::Result rows = co_await connection.query_prepared(query.sql, query.params, "read events", pg::Format::binary);
    // Everything below decides from this one snapshot: the highest position
    // the read covers, how many positions are missing up to it, and the first
    // missing one.
    int64_t hi = from;
    int64_t holes = 0;
    int64_t first_missing = 0;
    if (query.whole_stream) {
        if (rows.rows() == 0) co_return EventBatch{};  // nothing visible past the checkpoint
        hi = rows.int8(rows.rows() - 1, 0);
        holes = hi - from - rows.rows();
        int64_t expected = from + 1;
        for (int row = 0; holes > 0 && row < rows.rows(); ++row, ++expected) {
            if (rows.int8(row, 0) != expected) {
                first_missing = expected;
                break;
            }
        }
    } else {
        hi = rows.int8(0, kFinalColumn);
        holes = rows.int8(0, kHolesColumn);
        if (!rows.is_null(0, kFirstMissingColumn)) first_missing = rows.int8(0, kFirstMissingColumn);
    }
    EventBatch batch = to_batch(std::move(rows));
    if (holes == 0) {
        if (hi > from) batch.final_position = hi;
        co_return batch;
    }
    if (first_missing > from + 1) {
        // Everything below the first missing position is final now, also
        // when none of it is ours (a rolled-back hole further on must not
        // hold this read's slices back).
        size_t below = 0;
        while (below < batch.events.size() && batch.events[below].global_position < first_missing) ++below;
        batch.events.resize(below);
        batch.slices.resize(below);
        batch.final_position = first_missing - 1;
        co_return batch;
    }
    // The very next position is missing: wait for the writers open now. A
    // writer takes its lock on the events table before it draws a position,
    // so every transaction that could still fill a hole up to `hi` either
    // holds that lock now or has ended, and the re-read below sees it.
    const auto table = pg::make_params(table_);
    const auto open = co_await connection.exec(
        "SELECT coalesce(array_agg(l.virtualtransaction), '{}')::text FROM pg_locks l "
        "WHERE l.relation = $1::regclass AND l.mode = 'RowExclusiveLock'",
        table, "list the open writers");
    co_await wait_for_writers(connection, open.at(0, 0).value_or("{}"));
    // Read (from, hi] again with a fresh snapshot: every writer that could fill
    // a hole there has ended, so what is missing now was rolled back.
    Query again = build(request, hi);
    pg::Result reread = co_await connection.query_prepared(again.sql, again.params,
                                                           "read events again after open writers", pg::Format::binary);
    EventBatch final_batch = to_batch(std::move(reread));
    // Every position up to `hi` is final now (committed or gone for good), so
    // any prefix of the range is too: when the limits may have cut the
    // re-read, it is final up to its last event, otherwise up to `hi` (also
    // when every event there was rolled back).
    size_t bytes = 0;
    for (const auto& event : final_batch.events) bytes += event.payload_size;
    const bool maybe_cut = static_cast<int64_t>(final_batch.events.size()) >= request.limit ||
                           static_cast<int64_t>(bytes) >= request.max_bytes;
    final_batch.final_position = maybe_cut ? final_batch.events.back().global_position : hi;
    co_return final_batch;
}

void GapSafeReader::stop() {
    stopped_ = true;
    for (auto* timer : waits_) timer->cancel();
}

// Waits until none of `writers` (virtual transaction ids) holds its lock on
// the events table any more. A prepared transaction (PREPARE TRANSACTION)
// keeps that lock, with no backend and no virtualxid lock of its own, until
// COMMIT PREPARED or ROLLBACK PREPARED: waiting on the table lock covers it and
// ordinary transactions alike.
asio::awaitable<void> GapSafeReader::wait_for_writers(pg::AsyncConnection& connection, const std::string& writers) {
    if (writers == "{}") co_return;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    waits_.insert(&timer);
    const auto started = std::chrono::steady_clock::now();
    // However the wait ends (stop or a lost connection throw): back to 0 for
    // the metric, and the timer is no longer ours to cancel.
    struct WaitEnded {
        GapSafeReader& reader;
        asio::steady_timer* timer;
        ~WaitEnded() {
            reader.waits_.erase(timer);
            if (reader.on_waiting_) reader.on_waiting_(0);
        }
    } wait_ended{*this, &timer};
    auto next_report = started + report_after_;
    std::chrono::milliseconds pause(1);
    const auto params = pg::make_params(writers, table_);
    for (;;) {
        if (stopped_) throw ReadStopped();
        const auto open = co_await connection.exec(
            "SELECT l.pid, extract(epoch FROM clock_timestamp() - coalesce(a.xact_start, p.prepared))::float8, "
            "p.gid FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "LEFT JOIN pg_locks x ON l.pid IS NULL AND x.locktype = 'transactionid' "
            "AND x.virtualtransaction = l.virtualtransaction "
            "LEFT JOIN pg_prepared_xacts p ON p.transaction = x.transactionid "
            "WHERE l.relation = $2::regclass AND l.mode = 'RowExclusiveLock' "
            "AND l.virtualtransaction = ANY($1::text[])",
            params, "wait for open writers");
        if (open.rows == 0) co_return;
        const auto now = std::chrono::steady_clock::now();
        if (on_waiting_) on_waiting_(std::chrono::duration<double>(now - started).count());
        if (now >= next_report && on_blocked_) {
            // pg_stat_activity shows xact_start only for sessions of the
            // reader's own role (or with pg_read_all_stats); for another
            // role's writer the reader's own wait is the best figure: it
            // has been open at least that long.
            const double waited = std::chrono::duration<double>(now - started).count();
            std::vector<BlockedWriter> blocked;
            for (int64_t row = 0; row < open.rows; ++row) {
                const auto open_seconds = open.at(row, 1);
                blocked.push_back({std::stoi(open.at(row, 0).value_or("0")),
                                   open_seconds ? std::max(std::stod(*open_seconds), waited) : waited,
                                   open.at(row, 2).value_or("")});
            }
            on_blocked_(blocked, now - started);
            next_report = now + report_after_;
        }
        timer.expires_after(pause);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
}

asio::awaitable<int64_t> head_position(pg::AsyncConnection& connection, const config::EventStoreConfig& store) {
    const auto rows =
        co_await connection.exec("SELECT coalesce(max(global_position), 0) FROM " + TableNames::of(store).events,
                                 pg::Params{}, "read the head position");
    co_return std::stoll(*rows.at(0, 0));
}

}  // namespace orchestratord::store
