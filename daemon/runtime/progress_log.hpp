#pragma once
// The line a running projection logs every few seconds: where it stands
// (its lowest owned checkpoint), the head of the events table, the lag
// between them, and how fast it handles events.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>

#include "pg/async_connection.hpp"
#include "runtime/runner_settings.hpp"
#include "runtime/slice_positions.hpp"

namespace orchestratord::runtime {

class ProgressLog {
public:
    explicit ProgressLog(const RunnerSettings& settings) : settings_(settings) {}

    // The projection (re)started at `checkpoint` (its lowest): the next line
    // comes one interval from now, and measures its speed from there.
    void restart(int64_t checkpoint) {
        last_ = std::chrono::steady_clock::now();
        checkpoint_at_last_ = checkpoint;
    }
    bool due() const;
    // Logs the line; `handled` counts the events handled since the start.
    boost::asio::awaitable<void> report(pg::AsyncConnection& connection, const SlicePositions& positions,
                                        int64_t handled);
    // The head of the events table at the last report (for /status and
    // /readyz; they never query the database themselves); none before it.
    std::optional<int64_t> head() const { return head_; }

private:
    const RunnerSettings& settings_;
    std::chrono::steady_clock::time_point last_;
    int64_t handled_at_last_ = 0;
    int64_t checkpoint_at_last_ = 0;
    std::optional<int64_t> head_;
};

}  // namespace orchestratord::runtime
