#pragma once
// Where the throwaway PostgreSQL started by scripts/test.sh listens: the
// standard libpq variables PGHOST, PGPORT, PGUSER (and PGDATABASE).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

namespace orchestratord::test {

inline std::string env_or(const char* name, const char* fallback) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? value : fallback;
}

// A URL for the test database; fails the test when no database was provided.
inline std::string pg_url() {
    if (std::getenv("PGPORT") == nullptr) {
        FAIL("PGPORT is not set: run the pg tests through scripts/test.sh, which starts a throwaway PostgreSQL");
    }
    return "postgresql://" + env_or("PGUSER", "postgres") + "@" + env_or("PGHOST", "127.0.0.1") + ":" +
           env_or("PGPORT", "5432") + "/" + env_or("PGDATABASE", "postgres");
}

}  // namespace orchestratord::test
