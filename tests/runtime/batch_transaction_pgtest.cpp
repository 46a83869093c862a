// The batch transaction when its connection is lost under the plugin: a real
// daemon, its batch connection ended by the server while a plugin statement
// runs.
#include <catch2/catch.hpp>

#include "support/event_store_fixture.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

TEST_CASE("a batch connection ended under a plugin statement is a database error and not the handler's failure",
          "[event-path][batch-transaction]") {
    EventStoreFixture store("batch_conn_lost");
    // The recorder's INSERT of position 5 waits (once: a sequence is not
    // rolled back) so the test can end that session mid-statement.
    store.db().exec("CREATE SEQUENCE " + store.schema() + ".slept");
    store.db().exec("CREATE FUNCTION " + store.schema() +
                    ".hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.global_position = 5 AND nextval('" +
                    store.schema() + ".slept') = 1 THEN PERFORM pg_sleep(20); END IF; RETURN NEW; END $$");
    store.db().exec("CREATE TRIGGER hold BEFORE INSERT ON " + store.schema() +
                    ".recorded FOR EACH ROW EXECUTE FUNCTION " + store.schema() + ".hold()");
    auto daemon = store.start_daemon(store.config_file(store.recorder(), 10));
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    store.append(10, 10);
    const std::string held =
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE 'INSERT INTO " +
        store.schema() + ".recorded%'";
    REQUIRE(store.wait_until([&] { return store.scalar(held) == 1; }, 15s));
    store.db().exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query "
        "LIKE 'INSERT INTO " +
        store.schema() + ".recorded%'");

    REQUIRE(store.wait_until([&] { return store.recorded() == 10; }, 20s));
    stop_gracefully(*daemon);
    CHECK(store.scalar("SELECT count(DISTINCT global_position) FROM " + store.schema() + ".recorded") == 10);
    CHECK(store.lowest_checkpoint() == 10);
    const std::string output = daemon->output();
    INFO(output);
    // The plugin reported its statement's failure as its own error; the
    // lost connection is what happened: reconnect, no try of the batch
    // counted against the plugin (no back-off, no split into single events).
    CHECK_THAT(output, Catch::Contains("database error, reconnecting"));
    CHECK_THAT(output, !Catch::Contains("projection failed to handle a batch"));
}

TEST_CASE("a plugin's own COMMIT is refused: nothing of its batch commits without the checkpoints",
          "[event-path][batch-transaction]") {
    EventStoreFixture store("batch_own_commit");
    // The recorder sends COMMIT after its inserts, then the batch fails: with
    // the COMMIT let through, its rows would be committed without the
    // checkpoints, and delivered (and recorded) again on the retry.
    const std::string projection = "      - name: recorder\n        config: {table: " + store.schema() +
                                   ".recorded, statement_after: COMMIT}\n        on_error: {policy: pause, "
                                   "max_attempts: 2, initial_backoff: 10ms}\n";
    auto daemon = store.start_daemon(store.config_file(projection, 10));
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    store.append(10, 10);
    REQUIRE(daemon->wait_for_output("projection paused", 20s));
    INFO(daemon->output());
    CHECK_THAT(daemon->output(), Catch::Contains("COMMIT is refused in the batch transaction"));
    CHECK(store.recorded() == 0);
    CHECK(store.lowest_checkpoint() == 0);
    stop_gracefully(*daemon);
}
