#pragma once
// Restarts the throwaway PostgreSQL of scripts/test.sh (TEST_PG_DIR,
// TEST_PG_SCRIPT) and requires it to come back. Every connection is cut:
// tests open new ones afterwards. Only for tests marked RUN_SERIAL.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <string>

#include "support/child_process.hpp"

namespace orchestratord::test {

// Runs scripts/pg-private.sh `action` (restart, stop, resume) on the throwaway server.
inline void control_postgres(const std::string& action) {
    const char* pg_dir = std::getenv("TEST_PG_DIR");
    const char* pg_script = std::getenv("TEST_PG_SCRIPT");
    if (pg_dir == nullptr || pg_script == nullptr) FAIL("run through scripts/test.sh, which sets TEST_PG_DIR");
    const auto done = run_command({pg_script, action, pg_dir}, {}, std::chrono::seconds(120));
    INFO(action << ": " << done.output);
    REQUIRE(done.status.code == 0);
}

inline void restart_postgres() {
    control_postgres("restart");
}

// An outage: the server is down until resume_postgres(), which brings it back
// on the same port.
inline void stop_postgres() {
    control_postgres("stop");
}
inline void resume_postgres() {
    control_postgres("resume");
}

}  // namespace orchestratord::test
