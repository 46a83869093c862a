#pragma once
// SIGTERM a daemon and require a clean exit (status 0).
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>

#include "support/child_process.hpp"

namespace orchestratord::test {

inline void stop_gracefully(ChildProcess& daemon, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    // Before "ready" the signal handlers may not be installed yet.
    REQUIRE(daemon.wait_for_output("ready;", std::chrono::seconds(15)));
    daemon.signal(SIGTERM);
    const auto status = daemon.wait(timeout);
    INFO(daemon.output());
    REQUIRE(status);
    CHECK(status->exited);
    CHECK(status->code == 0);
}

}  // namespace orchestratord::test
