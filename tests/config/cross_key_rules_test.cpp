// The rules between keys, one test per rule, on bound sections directly (the
// loader tests in config_test.cpp check the same rules through a YAML file).
#include <catch2/catch.hpp>

#include "config/cross_key_rules.hpp"

using namespace orchestratord::config;
using namespace std::chrono_literals;

namespace {

ProjectionConfig projection(const std::string& name) {
    ProjectionConfig p;
    p.name = name;
    return p;
}

ReplicaSetConfig replica_set(Duration heartbeat, Duration stale) {
    ReplicaSetConfig rs;
    rs.name = "main";
    rs.heartbeat_interval = heartbeat;
    rs.stale_worker_timeout = stale;
    rs.projections.push_back(projection("p"));
    return rs;
}

Findings check(const ReplicaSetConfig& rs, bool name_reported = false) {
    Findings findings;
    std::set<std::string> seen;
    check_replica_set(rs, "replica_sets[0].", name_reported, seen, findings);
    return findings;
}

}  // namespace

TEST_CASE("rule: database.url is required", "[config][rules]") {
    Findings findings;
    check_database(DatabaseConfig{.url = "", .max_open_conns = 25, .max_idle_conns = 5}, true, findings);
    REQUIRE(findings.problems.size() == 1);
    CHECK(findings.problems[0] ==
          "database.url: database url cannot be empty (set database.url in the file or DATABASE_URL)");
    Findings fine;
    check_database(DatabaseConfig{.url = "postgres://h/db", .max_open_conns = 25, .max_idle_conns = 5}, true, fine);
    CHECK(fine.problems.empty());
}

TEST_CASE("rule: max_idle_conns must not exceed max_open_conns", "[config][rules]") {
    Findings findings;
    check_database(DatabaseConfig{.url = "postgres://h/db", .max_open_conns = 2, .max_idle_conns = 3}, true, findings);
    REQUIRE(findings.problems.size() == 1);
    CHECK(findings.problems[0] == "database.max_idle_conns: MaxIdleConns must not exceed MaxOpenConns (3 > 2)");
    Findings equal;
    check_database(DatabaseConfig{.url = "postgres://h/db", .max_open_conns = 3, .max_idle_conns = 3}, true, equal);
    CHECK(equal.problems.empty());
}

TEST_CASE("rule: at least one replica set, and REPLICA_SET names at most one", "[config][rules]") {
    Findings none;
    check_replica_set_count(0, false, true, none);
    REQUIRE(none.problems.size() == 1);
    CHECK_THAT(none.problems[0], Catch::StartsWith("replica_sets: ReplicaSet cannot be empty"));
    Findings several;
    check_replica_set_count(2, true, true, several);
    REQUIRE(several.problems.size() == 1);
    CHECK_THAT(several.problems[0], Catch::StartsWith("REPLICA_SET: cannot choose a name for 2 replica sets"));
    for (auto [declared, by_env] : {std::pair{0, true}, {1, true}, {1, false}, {3, false}}) {
        Findings fine;
        check_replica_set_count(declared, by_env, true, fine);
        CHECK(fine.problems.empty());
    }
}

TEST_CASE("rule: a replica set's name is required, once", "[config][rules]") {
    ReplicaSetConfig unnamed = replica_set(5s, 30s);
    unnamed.name.clear();
    const Findings findings = check(unnamed);
    REQUIRE(findings.problems.size() == 1);
    CHECK_THAT(findings.problems[0], Catch::StartsWith("replica_sets[0].name: ReplicaSet cannot be empty"));
    // Not again when the missing replica_sets list was reported already.
    CHECK(check(unnamed, true).problems.empty());
}

TEST_CASE("rule: replica set names are unique", "[config][rules]") {
    Findings findings;
    std::set<std::string> seen;
    check_replica_set(replica_set(5s, 30s), "replica_sets[0].", false, seen, findings);
    CHECK(findings.problems.empty());
    check_replica_set(replica_set(5s, 30s), "replica_sets[1].", false, seen, findings);
    REQUIRE(findings.problems.size() == 1);
    CHECK(findings.problems[0] == "replica_sets[1].name: replica set \"main\" is declared twice");
}

TEST_CASE("rule: stale_worker_timeout must exceed heartbeat_interval, and is warned about under 3x",
          "[config][rules]") {
    const Findings equal = check(replica_set(10s, 10s));
    REQUIRE(equal.problems.size() == 1);
    CHECK(equal.problems[0] ==
          "replica_sets[0].stale_worker_timeout: StaleWorkerTimeout must be greater than HeartbeatInterval (10s <= "
          "10s)");
    const Findings close = check(replica_set(5s, 12s));
    CHECK(close.problems.empty());
    REQUIRE(close.warnings.size() == 1);
    CHECK_THAT(close.warnings[0],
               Catch::StartsWith("replica_sets[0].stale_worker_timeout: 12s is less than 3x heartbeat_interval (5s)"));
    const Findings three_times = check(replica_set(5s, 15s));
    CHECK(three_times.problems.empty());
    CHECK(three_times.warnings.empty());
    // A value out of its own range is reported by its value check, not again here.
    CHECK(check(replica_set(0s, 10s)).problems.empty());
}

TEST_CASE("rule: a replica set without projections is warned about", "[config][rules]") {
    ReplicaSetConfig rs = replica_set(5s, 30s);
    Findings with;
    check_has_projections(rs, "replica_sets[0].", with);
    CHECK(with.warnings.empty());
    rs.projections.clear();
    Findings without;
    check_has_projections(rs, "replica_sets[0].", without);
    CHECK(without.problems.empty());
    REQUIRE(without.warnings.size() == 1);
    CHECK(without.warnings[0] ==
          "replica_sets[0].projections: replica set \"main\" has no projections; its workers will only coordinate");
}

TEST_CASE("rule: a projection's name is required and unique in its replica set", "[config][rules]") {
    Findings findings;
    std::set<std::string> seen;
    check_projection(projection(""), "replica_sets[0].projections[0].", "main", seen, findings);
    check_projection(projection("p"), "replica_sets[0].projections[1].", "main", seen, findings);
    check_projection(projection("p"), "replica_sets[0].projections[2].", "main", seen, findings);
    REQUIRE(findings.problems.size() == 2);
    CHECK(findings.problems[0] == "replica_sets[0].projections[0].name: projection name cannot be empty");
    CHECK(findings.problems[1] ==
          "replica_sets[0].projections[2].name: projection \"p\" is listed twice in replica set \"main\"");
}

TEST_CASE("rule: on_error.max_backoff must not be less than initial_backoff", "[config][rules]") {
    Findings findings;
    check_on_error(OnErrorConfig{.initial_backoff = 2s, .max_backoff = 1s}, "replica_sets[0].projections[0].on_error.",
                   findings);
    REQUIRE(findings.problems.size() == 1);
    CHECK(findings.problems[0] ==
          "replica_sets[0].projections[0].on_error.max_backoff: MaxBackoff must not be less than InitialBackoff (1s < "
          "2s)");
    Findings equal;
    check_on_error(OnErrorConfig{.initial_backoff = 1s, .max_backoff = 1s}, "p.on_error.", equal);
    CHECK(equal.problems.empty());
}
