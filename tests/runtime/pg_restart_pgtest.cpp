// PostgreSQL restarted under a running worker: it reconnects and resumes, and
// a transactional projection still applies every event exactly once. Runs
// alone (RUN_SERIAL): restarting the server cuts every test's connections.
#include <catch2/catch.hpp>

#include <csignal>

#include "support/event_store_fixture.hpp"
#include "support/pg_restart.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

TEST_CASE("a worker survives a PostgreSQL restart without losing or repeating events", "[event-path][pg-restart]") {
    std::unique_ptr<EventStoreFixture> store = std::make_unique<EventStoreFixture>("server_restart");
    store->append_each(2000, 40);
    auto daemon = store->start_daemon(store->config_file(store->recorder(), 20));
    REQUIRE(store->wait_until([&] { return store->recorded() > 0; }, 15s));

    restart_postgres();

    // The fixture's own connection was cut too: use a new one.
    orchestratord::pg::BlockingConnection db(pg_url());
    const std::string schema = store->schema();
    const auto scalar = [&](const std::string& sql) { return std::stoll(*db.exec(sql).at(0, 0)); };
    db.exec("INSERT INTO " + schema +
            ".events (bounded_context, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, payload) "
            "SELECT 'test', 'Thing', 'after-' || g, 1, gen_random_uuid(), 'AfterRestart', '\\x00' FROM "
            "generate_series(1, 100) g");
    const int64_t head = scalar("SELECT max(global_position) FROM " + schema + ".events");
    REQUIRE(store->wait_until(
        [&] { return scalar("SELECT count(DISTINCT global_position) FROM " + schema + ".recorded") == head; }, 60s));
    INFO(daemon->output());
    CHECK_THAT(daemon->output(), Catch::Contains("reconnecting"));
    daemon->signal(SIGTERM);
    const auto status = daemon->wait(10s);
    REQUIRE(status);
    CHECK(status->code == 0);
    CHECK(scalar("SELECT count(*) FROM " + schema + ".recorded") == head);
    store.reset();  // drops the schema with a live connection
}
