#include "runtime/runner_settings.hpp"
#include "log/quoted.hpp"

#include <spdlog/spdlog.h>

namespace orchestratord::runtime {

std::string runner_context(const RunnerSettings& settings) {
    const auto& ownership = *settings.ownership;
    std::string text = "replica_set=" + settings.replica_set.name + " projection=" + settings.projection.name;
    text += " worker=";
    text += ownership.owner().empty() ? std::string("-") : ownership.owner();
    text += " generation=";
    text += std::to_string(ownership.generation());
    return text;
}

void warn_blocked_writers(const RunnerSettings& settings, const std::vector<store::BlockedWriter>& writers,
                          std::chrono::steady_clock::duration waited) {
    for (const auto& writer : writers) {
        if (!writer.prepared_gid.empty()) {
            spdlog::warn(
                "reader blocked by a prepared transaction on the events table; it holds back every projection "
                "until COMMIT PREPARED or ROLLBACK PREPARED {} gid={} prepared_s={:.1f} waited_s={:.1f}",
                runner_context(settings), log::quoted(writer.prepared_gid), writer.open_seconds,
                std::chrono::duration<double>(waited).count());
            continue;
        }
        spdlog::warn(
            "reader blocked by an open writer on the events table; consider idle_in_transaction_session_timeout {} "
            "writer_pid={} writer_open_s={:.1f} waited_s={:.1f}",
            runner_context(settings), writer.pid, writer.open_seconds, std::chrono::duration<double>(waited).count());
    }
}

}  // namespace orchestratord::runtime
