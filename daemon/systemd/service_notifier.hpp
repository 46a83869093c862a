#pragma once
// The one place that talks to systemd (sd_notify). Every call is a no-op when
// the daemon was not started by systemd (NOTIFY_SOCKET unset), so the daemon
// runs the same way in a terminal, a container or a test.
#include <chrono>
#include <optional>
#include <string>

namespace orchestratord::systemd {

class ServiceNotifier {
public:
    ServiceNotifier();

    void ready(const std::string& status);
    void reloading();
    void stopping();
    void status(const std::string& text);
    void watchdog_ping();

    // How often to ping the watchdog (half of WATCHDOG_USEC), when it is enabled.
    std::optional<std::chrono::microseconds> watchdog_period() const { return watchdog_period_; }

private:
    void send(const std::string& state);
    std::optional<std::chrono::microseconds> watchdog_period_;
};

}  // namespace orchestratord::systemd
