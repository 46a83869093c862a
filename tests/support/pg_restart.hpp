#pragma once
// Restarts the throwaway PostgreSQL of scripts/test.sh (TEST_PG_DIR,
// TEST_PG_SCRIPT) and requires it to come back. Every connection is cut:
// tests open new ones afterwards. Only for tests marked RUN_SERIAL.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>

#include "support/child_process.hpp"

namespace orchestratord::test {

inline void restart_postgres() {
    const char* pg_dir = std::getenv("TEST_PG_DIR");
    const char* pg_script = std::getenv("TEST_PG_SCRIPT");
    if (pg_dir == nullptr || pg_script == nullptr) FAIL("run through scripts/test.sh, which sets TEST_PG_DIR");
    const auto restarted = run_command({pg_script, "restart", pg_dir}, {}, std::chrono::seconds(120));
    INFO(restarted.output);
    REQUIRE(restarted.status.code == 0);
}

}  // namespace orchestratord::test
