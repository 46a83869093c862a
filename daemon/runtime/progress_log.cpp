#include "runtime/progress_log.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "store/gap_safe_reader.hpp"

namespace orchestratord::runtime {
using namespace std::chrono_literals;

namespace {

constexpr auto kProgressInterval = 5s;  // how often a running projection logs its progress

}  // namespace

bool ProgressLog::due() const {
    return std::chrono::steady_clock::now() - last_ > kProgressInterval;
}

boost::asio::awaitable<void> ProgressLog::report(pg::AsyncConnection& connection, const SlicePositions& positions,
                                                 int64_t handled) {
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    const int64_t head_position = co_await store::head_position(connection, settings_.event_store);
    head_ = head_position;
    const int64_t lowest = positions.lowest_owned(head_position);
    const double rate = seconds > 0 ? static_cast<double>(handled - handled_at_last_) / seconds : 0;
    handled_at_last_ = handled;
    const int64_t lag = std::max<int64_t>(0, head_position - lowest);
    // The time left at the speed the checkpoint moved since the last line
    // (positions per second, as the lag is counted), once it has moved.
    const double advance = seconds > 0 ? static_cast<double>(lowest - checkpoint_at_last_) / seconds : 0;
    checkpoint_at_last_ = lowest;
    const std::string eta = lag > 0 && advance >= 1 ? fmt::format(" eta_s={:.0f}", lag / advance) : "";
    spdlog::info("projection progress {} slices={} checkpoint={} head={} lag={} handled={} rate={:.0f}/s{}",
                 runner_context(settings_), positions.owned().size(), lowest, head_position, lag, handled, rate, eta);
}

}  // namespace orchestratord::runtime
