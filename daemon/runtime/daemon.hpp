#pragma once
// The long-running process: after the start-up checks, one Asio event loop
// runs the cluster members (one per replica set), the projection runners, the
// NOTIFY listener and the HTTP endpoints, and owns the signals (SIGTERM/SIGINT
// stop, SIGHUP reloads) and the systemd watchdog.
#include "config/loader.hpp"

namespace orchestratord::runtime {

// Exit codes: 0 after a graceful stop; 1 when startup fails (database or
// plugins); 78 (EX_CONFIG) for an invalid configuration, so systemd's
// RestartPreventExitStatus can stop a restart loop on a bad file.
inline constexpr int kExitOk = 0;
inline constexpr int kExitStartupFailed = 1;
inline constexpr int kExitConfig = 78;

// Runs until SIGTERM/SIGINT; returns the process exit code.
int run_daemon(const config::LoadOptions& options);

}  // namespace orchestratord::runtime
