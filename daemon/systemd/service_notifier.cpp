#include "systemd/service_notifier.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

namespace orchestratord::systemd {

ServiceNotifier::ServiceNotifier() {
    uint64_t usec = 0;
    // unset_environment=0: child processes (none today) could still see it.
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        watchdog_period_ = std::chrono::microseconds(usec / 2);
    }
}

void ServiceNotifier::send(const std::string& state) {
    sd_notify(0, state.c_str());
}

void ServiceNotifier::ready(const std::string& status) {
    send("READY=1\nSTATUS=" + status);
}

void ServiceNotifier::reloading() {
    // Type=notify-reload (systemd 253+) wants the monotonic time with RELOADING=1.
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<uint64_t>(now.tv_sec) * 1000000ULL + static_cast<uint64_t>(now.tv_nsec) / 1000ULL;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void ServiceNotifier::stopping() {
    send("STOPPING=1");
}

void ServiceNotifier::status(const std::string& text) {
    send("STATUS=" + text);
}

void ServiceNotifier::watchdog_ping() {
    send("WATCHDOG=1");
}

}  // namespace orchestratord::systemd
