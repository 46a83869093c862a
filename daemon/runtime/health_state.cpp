#include "runtime/health_state.hpp"

#include <fmt/format.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

namespace orchestratord::runtime {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// How often the loop stamps a turn, and how old the stamp may be before the
// loop counts as stuck (a handler blocking it that long starves every
// heartbeat and batch).
constexpr auto kTurnEvery = 1s;
constexpr auto kStuckAfter = 5s;

double seconds(Clock::duration duration) {
    return std::chrono::duration<double>(duration).count();
}

std::string seconds_text(Clock::duration duration) {
    return fmt::format("{:.1f}s", seconds(duration));
}

}  // namespace

HealthState::HealthState(asio::io_context& io, const config::Config& config, const Members& members,
                         const Runners& runners)
    : config_(config), members_(members), runners_(runners), tick_timer_(io) {}

asio::awaitable<void> HealthState::watch_loop() {
    while (!stopping_) {
        last_turn_ = Clock::now();
        tick_timer_.expires_after(kTurnEvery);
        boost::system::error_code ec;
        co_await tick_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
}

void HealthState::stop() {
    stopping_ = true;
    tick_timer_.cancel();
}

http::Verdict HealthState::live() const {
    const auto now = Clock::now();
    if (now - last_turn_ > kStuckAfter) {
        return {false, "event loop stuck: its last turn was " + seconds_text(now - last_turn_) + " ago"};
    }
    for (const auto& member : members_) {
        const auto fenced = member->fenced_since();
        const auto limit = member->settings().stale_worker_timeout;
        if (fenced && now - *fenced > limit) {
            return {false, "replica set " + member->replica_set() + ": self-fenced for " + seconds_text(now - *fenced) +
                               ", longer than stale_worker_timeout " + seconds_text(limit) +
                               " (no heartbeat reaches the database)"};
        }
    }
    return {};
}

http::Verdict HealthState::ready() const {
    if (!plugins_loaded_) return {false, "plugins not loaded yet"};
    const auto now = Clock::now();
    for (const auto& member : members_) {
        const std::string where = "replica set " + member->replica_set() + ": ";
        if (member->heartbeat_failing()) return {false, where + "database unreachable (heartbeats failing)"};
        if (member->worker_id().empty()) return {false, where + "not registered yet"};
        if (const auto fenced = member->fenced_since()) {
            return {false, where + "self-fenced for " + seconds_text(now - *fenced)};
        }
        if (const auto coordinating = member->coordinating()) return {false, where + "coordinating: " + *coordinating};
    }
    const int64_t max_lag = config_.http.ready_max_lag;
    for (const auto& runner : runners_) {
        const std::string where = "projection " + runner->name() + " of replica set " + runner->replica_set() + ": ";
        const auto standing = runner->standing();
        if (!standing.started) return {false, where + "not started yet"};
        if (max_lag > 0 && standing.lag && *standing.lag > max_lag) {
            return {false, where + "lags " + std::to_string(*standing.lag) + " events, more than http.ready_max_lag " +
                               std::to_string(max_lag)};
        }
    }
    return {};
}

std::string HealthState::status_json() const {
    const auto now = Clock::now();
    const auto verdict = [](const http::Verdict& v) {
        nlohmann::json out{{"ok", v.ok}};
        if (!v.ok) out["reason"] = v.reason;
        return out;
    };
    nlohmann::json status{{"live", verdict(live())}, {"ready", verdict(ready())}};
    nlohmann::json replica_sets = nlohmann::json::array();
    for (const auto& member : members_) {
        const auto& ownership = member->ownership();
        nlohmann::json slices = nlohmann::json::array();
        for (const auto& [slice, epoch] : ownership.offered_slices()) slices.push_back(slice);
        nlohmann::json withdrawn = nlohmann::json::array();
        for (const auto& [slice, withdrawal] : ownership.withdrawn_slices()) withdrawn.push_back(slice);
        nlohmann::json entry{{"name", member->replica_set()},
                             {"worker_id", member->worker_id()},
                             {"generation", ownership.generation()},
                             {"slice_count", ownership.slice_count()},
                             {"database_reachable", !member->heartbeat_failing()},
                             {"owned_slices", std::move(slices)},
                             {"handing_over_slices", std::move(withdrawn)},
                             {"self_fenced_seconds", nullptr},
                             {"coordinating", nullptr}};
        if (const auto fenced = member->fenced_since()) entry["self_fenced_seconds"] = seconds(now - *fenced);
        if (const auto coordinating = member->coordinating()) entry["coordinating"] = *coordinating;
        nlohmann::json projections = nlohmann::json::array();
        for (const auto& runner : runners_) {
            if (runner->replica_set() != member->replica_set()) continue;
            const auto standing = runner->standing();
            nlohmann::json projection{{"name", runner->name()},
                                      {"state", !standing.started ? "starting"
                                                : standing.paused ? "paused"
                                                                  : "running"},
                                      {"slices", standing.slices},
                                      {"checkpoint", nullptr},
                                      {"lag", nullptr}};
            if (standing.checkpoint) projection["checkpoint"] = *standing.checkpoint;
            if (standing.lag) projection["lag"] = *standing.lag;
            projections.push_back(std::move(projection));
        }
        entry["projections"] = std::move(projections);
        replica_sets.push_back(std::move(entry));
    }
    status["replica_sets"] = std::move(replica_sets);
    return status.dump();
}

}  // namespace orchestratord::runtime
