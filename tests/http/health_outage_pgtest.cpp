// /healthz and /readyz through a database outage longer than
// stale_worker_timeout. Runs alone (RUN_SERIAL): it stops the shared server.
#include <catch2/catch.hpp>

#include "http/health_support.hpp"
#include "support/event_store_fixture.hpp"
#include "support/pg_restart.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

TEST_CASE("healthz is 503 through a database outage longer than the stale timeout and 200 after",
          "[http][health][pg-restart]") {
    auto store = std::make_unique<EventStoreFixture>("health_outage");
    auto daemon = store->start_daemon(store->config_file(store->recorder()), "daemon.log",
                                      {{"HEARTBEAT_INTERVAL", "200ms"},
                                       {"STALE_WORKER_TIMEOUT", "1s"},
                                       {"COORDINATION_TIMEOUT", "3s"},
                                       {"NOTIFY_SOCKET", std::nullopt}});
    REQUIRE(daemon->wait_for_output("http endpoints listening", 15s));
    const int port = logged_http_port(daemon->output());
    REQUIRE(port > 0);
    INFO(daemon->output());
    HttpAnswer last;
    REQUIRE(wait_for_answer(port, "/readyz", answers(200), 15s, last));
    REQUIRE(http_get(port, "/healthz").status == 200);

    // The last heartbeat before the outage went out at most 200 ms before this.
    const auto stopping_at = std::chrono::steady_clock::now();
    stop_postgres();
    // No REQUIRE until the server is back: the tests after this one need it.
    HttpAnswer not_ready;
    const bool unreachable = wait_for_answer(port, "/readyz", answers(503, "database unreachable"), 10s, not_ready);
    // Self-fenced 800 ms (stale_worker_timeout - heartbeat_interval) after
    // that heartbeat, unhealthy once fenced for longer than 1 s
    // (stale_worker_timeout): not before 1.6 s from here.
    HttpAnswer unhealthy;
    const bool fenced = wait_for_answer(port, "/healthz", answers(503), 15s, unhealthy);
    const auto fenced_after = std::chrono::steady_clock::now() - stopping_at;
    resume_postgres();

    INFO(not_ready.body);
    CHECK(unreachable);
    CHECK(not_ready.body == "replica set test: database unreachable (heartbeats failing)\n");
    INFO(unhealthy.body);
    REQUIRE(fenced);
    CHECK(fenced_after > 1500ms);
    CHECK_THAT(unhealthy.body, Catch::StartsWith("replica set test: self-fenced for "));
    CHECK_THAT(unhealthy.body, Catch::Contains("longer than stale_worker_timeout 1.0s"));

    REQUIRE(wait_for_answer(port, "/healthz", answers(200, "ok"), 30s, last));
    REQUIRE(wait_for_answer(port, "/readyz", answers(200, "ok"), 30s, last));
    stop_gracefully(*daemon);
    // The fixture's connection was cut: drop the schema over a new one.
    store->db() = orchestratord::pg::BlockingConnection(pg_url());
    store.reset();
}
