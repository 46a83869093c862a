// PostgreSQL restarted under three workers: every worker reconnects, keeps or
// regains its slices, and nothing is lost or applied twice. Runs alone
// (RUN_SERIAL): restarting the server cuts every test's connections.
#include <catch2/catch.hpp>

#include "cluster/cluster_harness.hpp"
#include "support/pg_restart.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

TEST_CASE("three workers survive a PostgreSQL restart without losing or repeating events", "[cluster][pg-restart]") {
    auto cluster = std::make_unique<ClusterHarness>("cluster_restart");
    cluster->store().append_each(1000, 40);
    auto appender = std::make_unique<Appender>(cluster->schema());
    for (int w = 0; w < 3; ++w) cluster->start(w);
    REQUIRE(cluster->wait_converged(3));

    restart_postgres();
    // The fixture's connection was cut too; the harness's queries below need a new one.
    cluster->store().db() = orchestratord::pg::BlockingConnection(pg_url());

    REQUIRE(cluster->wait_converged(3, 30s));
    appender->stop();
    cluster->check_delivery();
    for (int w = 0; w < 3; ++w) {
        INFO(cluster->worker(w).output());
        CHECK_THAT(cluster->worker(w).output(), Catch::Contains("heartbeat failed"));
    }
    cluster->check_never_owned_twice();
    for (int w = 0; w < 3; ++w) cluster->stop(w);
}
