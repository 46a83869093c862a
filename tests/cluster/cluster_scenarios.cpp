// The cluster with several real daemon processes (docs/cluster.md): every
// scenario appends events while it runs and ends by checking that
// the transactional projection applied every event exactly once in
// per-aggregate order and the at-least-once one missed none.
#include <catch2/catch.hpp>

#include <csignal>
#include <nlohmann/json.hpp>

#include "cluster/cluster_harness.hpp"
#include "support/measure.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

TEST_CASE("three workers started together agree on one assignment: 64 slices split 22/21/21",
          "[cluster][I5][convergence]") {
    ClusterHarness cluster("three_start");
    cluster.store().append_each(2000, 40);
    Appender appender(cluster.schema());
    for (int w = 0; w < 3; ++w) cluster.start(w);
    REQUIRE(cluster.wait_converged(3));
    CHECK(cluster.shares() == std::vector<int64_t>{22, 21, 21});
    // Three registrations make at most three generations: no storm.
    CHECK(cluster.generation() <= 3);

    // orchestratord status shows the same: generation, workers and their slices.
    const auto status = run_command({ORCHESTRATORD_BIN, "status", "--json", "--config", cluster.config(0)});
    INFO(status.output);
    REQUIRE(status.status.code == 0);
    const auto report = nlohmann::json::parse(status.output);
    const auto& replica_set = report["replica_sets"][0];
    CHECK(replica_set["generation"] == cluster.generation());
    CHECK(replica_set["slices_moving"] == 0);
    REQUIRE(replica_set["workers"].size() == 3);
    std::vector<int64_t> owned;
    for (const auto& worker : replica_set["workers"]) {
        owned.push_back(worker["slices_owned"]);
        CHECK(worker["slices"].size() == worker["slices_owned"].get<size_t>());
        CHECK(worker["heartbeat_age_s"].get<double>() < 1.0);
    }
    std::sort(owned.rbegin(), owned.rend());
    CHECK(owned == std::vector<int64_t>{22, 21, 21});
    CHECK(replica_set["projections"].size() == 2);
    const auto text = run_command({ORCHESTRATORD_BIN, "status", "--config", cluster.config(0)});
    CHECK_THAT(text.output, Catch::Contains("generation " + std::to_string(cluster.generation())));
    CHECK_THAT(text.output, Catch::Contains("22 slice(s)"));
    appender.stop();
    CHECK(cluster.check_delivery() == 0);
    for (int w = 0; w < 3; ++w) {
        INFO("worker " << w);
        CHECK(lines_in(cluster.file_of(w)) > 0);  // everybody did a share of the work
    }
    cluster.check_never_owned_twice();
    for (int w = 0; w < 3; ++w) cluster.stop(w);
}

TEST_CASE("scaling out 1-2-4 and in 4-2-1 moves only the slices it must, without replaying anything",
          "[cluster][I2][I3][rebalance]") {
    ClusterHarness cluster("scale");
    cluster.store().append_each(3000, 40);
    Appender appender(cluster.schema());
    cluster.start(0);
    REQUIRE(cluster.wait_converged(1));

    // Slices that keep their owner across a change must keep their epoch:
    // they were never released, so their processing never paused.
    auto step = [&](const std::function<void()>& change, int workers, int expected_moves) {
        const auto before = cluster.slices();
        change();
        REQUIRE(cluster.wait_converged(workers));
        const auto after = cluster.slices();
        int moved = 0;
        int kept_but_reacquired = 0;
        for (const auto& [slice, state] : after) {
            if (state.owner != before.at(slice).owner) {
                ++moved;
            } else if (state.epoch != before.at(slice).epoch) {
                ++kept_but_reacquired;
            }
        }
        INFO("to " << workers << " workers");
        CHECK(moved == expected_moves);
        CHECK(kept_but_reacquired == 0);
    };
    step([&] { cluster.start(1); }, 2, 32);
    step(
        [&] {
            cluster.start(2);
            cluster.start(3);
        },
        4, 32);
    step(
        [&] {
            cluster.stop(3);
            cluster.stop(2);
        },
        2, 32);
    step([&] { cluster.stop(1); }, 1, 32);
    appender.stop();
    // Graceful handoffs write the last checkpoints before releasing: nothing repeats.
    CHECK(cluster.check_delivery() == 0);
    cluster.check_never_owned_twice();
    cluster.stop(0);
}

TEST_CASE("a SIGKILLed worker's slices resume elsewhere within stale_worker_timeout + heartbeat_interval",
          "[cluster][I6][failover]") {
    ClusterHarness cluster("sigkill");
    cluster.store().append_each(1000, 40);
    Appender appender(cluster.schema());
    for (int w = 0; w < 3; ++w) cluster.start(w);
    REQUIRE(cluster.wait_converged(3));
    const auto killed_at = std::chrono::steady_clock::now();
    cluster.kill(1);
    REQUIRE(cluster.wait_converged(2));
    const double failover = seconds_since(killed_at);
    // The bound is the protocol's; the slack covers this test's polling.
    CHECK(failover < std::chrono::duration<double>(kStale + kHeartbeat).count() + 0.5);
    CHECK_THAT(cluster.worker(0).output() + cluster.worker(2).output(), Catch::Contains("removed a stale worker"));
    appender.stop();
    cluster.check_delivery();  // the killed worker may repeat its last at-least-once batch
    cluster.check_never_owned_twice();
    cluster.stop(0);
    cluster.stop(2);
}

TEST_CASE("a SIGSTOPped worker commits nothing after losing its slices, then rejoins", "[cluster][I1][I7][fencing]") {
    // Slow batches: the stop lands while a batch transaction is open.
    ClusterHarness cluster("sigstop", 30);
    cluster.store().append_each(1000, 40);
    Appender appender(cluster.schema());
    for (int w = 0; w < 3; ++w) cluster.start(w);
    REQUIRE(cluster.wait_converged(3));
    auto& stopped = cluster.worker(1);
    stopped.signal(SIGSTOP);
    // The others remove it and take its slices over.
    REQUIRE(cluster.wait_converged(2));
    stopped.signal(SIGCONT);
    // It notices, drops what it had (its late commits fail the fencing check)
    // and joins again as a new worker.
    const bool rejoined = stopped.wait_for_output("registering again", 15s);
    INFO(stopped.output());
    REQUIRE(rejoined);
    REQUIRE(cluster.wait_converged(3));
    appender.stop();
    cluster.check_delivery();  // exactly once: a late commit by the stopped worker would show as a duplicate
    cluster.check_never_owned_twice();
    for (int w = 0; w < 3; ++w) cluster.stop(w);
}

TEST_CASE("a SIGTERMed worker hands its slices over in about a second without repeating anything",
          "[cluster][I6][handoff]") {
    ClusterHarness cluster("sigterm");
    cluster.store().append_each(1000, 40);
    Appender appender(cluster.schema());
    for (int w = 0; w < 3; ++w) cluster.start(w);
    REQUIRE(cluster.wait_converged(3));
    REQUIRE(cluster.worker(1).wait_for_output("ready;", 15s));
    const auto stopped_at = std::chrono::steady_clock::now();
    cluster.worker(1).signal(SIGTERM);
    REQUIRE(cluster.wait_converged(2));
    const double handoff = seconds_since(stopped_at);
    CHECK(handoff < 1.5);
    CHECK_THAT(cluster.worker(1).output(), Catch::Contains("worker unregistered"));
    REQUIRE(cluster.worker(1).wait(10s));
    appender.stop();
    CHECK(cluster.check_delivery() == 0);
    cluster.check_never_owned_twice();
    cluster.stop(0);
    cluster.stop(2);
}

TEST_CASE("a batch retried after its slices were handed over during the back-off is not committed for them",
          "[cluster][I1][I2][retry]") {
    ClusterHarness cluster("retry_handoff");
    cluster.store().append_each(400, 40);
    // Worker 0's first transactional batch fails once; it then backs off 4 s,
    // long enough for worker 1 to join and take half of the slices.
    cluster.set_recorder(0, ", fail_batches: 1", "{initial_backoff: 4s, max_backoff: 4s, max_attempts: 5}");
    cluster.start(0);
    REQUIRE(cluster.worker(0).wait_for_output("failing batch 1 of 1 on purpose", 20s));
    cluster.start(1);
    REQUIRE(cluster.wait_converged(2));
    // Everything is handled only after worker 0 came back from its back-off
    // with the old batch in hand (its own slices' events are in it).
    REQUIRE(cluster.wait_all_handled());
    CHECK(cluster.check_delivery() == 0);
    cluster.check_never_owned_twice();
    cluster.stop(0);
    cluster.stop(1);
}

TEST_CASE("a projection paused by one worker's poison event stops on every worker, the others go on",
          "[cluster][poison]") {
    ClusterHarness cluster("pause_everywhere");
    cluster.store().append_each(200, 40);
    // The poison event is at position 300: whichever worker owns its slice pauses.
    for (int w = 0; w < 2; ++w) {
        cluster.set_recorder(w, ", fail_position: 300", "{policy: pause, max_attempts: 2, initial_backoff: 10ms}");
    }
    cluster.start(0);
    cluster.start(1);
    REQUIRE(cluster.wait_converged(2));
    cluster.store().append_each(200, 40);
    const std::string state = "SELECT count(*) FROM " + cluster.schema() +
                              ".orchestratord_projection_state WHERE projection = 'recorder' AND state = 'paused'";
    REQUIRE(cluster.store().wait_until([&] { return cluster.store().scalar(state) == 1; }, 30s));
    // Both workers have stopped the projection (the one that failed, and the
    // other one once it heard of it).
    REQUIRE(cluster.store().wait_until(
        [&] {
            return cluster.worker(0).output().find("projection is paused") != std::string::npos ||
                   cluster.worker(0).output().find("projection paused after repeated failures") != std::string::npos;
        },
        15s));
    REQUIRE(cluster.store().wait_until(
        [&] {
            return cluster.worker(1).output().find("projection is paused") != std::string::npos ||
                   cluster.worker(1).output().find("projection paused after repeated failures") != std::string::npos;
        },
        15s));
    const int64_t applied = cluster.recorded_distinct();
    // More events: the at-least-once projection handles them all on both
    // workers; the paused one applies none of them anywhere.
    cluster.store().append_each(200, 40);
    const int64_t total = cluster.events();
    REQUIRE(cluster.store().wait_until([&] { return static_cast<int64_t>(cluster.file_deliveries().size()) == total; },
                                       30s));
    CHECK(cluster.recorded_distinct() == applied);
    cluster.stop(0);
    cluster.stop(1);
}

TEST_CASE("a single worker restarted five times resumes from its checkpoints every time", "[cluster][I2][restart]") {
    ClusterHarness cluster("restart");
    cluster.store().append_each(1000, 40);
    Appender appender(cluster.schema());
    for (int round = 0; round < 5; ++round) {
        cluster.start(0);
        REQUIRE(cluster.wait_converged(1));
        const int64_t before = cluster.recorded_distinct();
        REQUIRE(cluster.store().wait_until([&] { return cluster.recorded_distinct() > before + 50; }, 15s));
        cluster.stop(0);
    }
    cluster.start(0);
    appender.stop();
    CHECK(cluster.check_delivery() == 0);  // a replay from the start would repeat thousands
    cluster.stop(0);
}

TEST_CASE("eight workers started together converge, and no slice is ever owned twice",
          "[cluster][I1][I5][convergence]") {
    ClusterHarness cluster("eight");
    cluster.store().append_each(1000, 40);
    Appender appender(cluster.schema());
    for (int w = 0; w < 8; ++w) cluster.start(w);
    // The clock measures the cluster, not how fast this machine spawns
    // processes: it starts once every worker is ready.
    for (int w = 0; w < 8; ++w) REQUIRE(cluster.worker(w).wait_for_output("ready;", 30s));
    const auto ready = std::chrono::steady_clock::now();
    REQUIRE(cluster.wait_converged(8));
    // coordination_timeout + heartbeat_interval, plus the registrations right after "ready" on a busy machine.
    CHECK(seconds_since(ready) < std::chrono::duration<double>(kCoordination + kHeartbeat).count() + 2);
    CHECK(cluster.shares() == std::vector<int64_t>(8, 8));
    // At most one generation per registration: no storm (the reference made 14 in 20 s for 3 workers).
    CHECK(cluster.generation() <= 8);
    appender.stop();
    cluster.check_delivery();
    cluster.check_never_owned_twice();
    for (int w = 0; w < 8; ++w) cluster.stop(w);
}

TEST_CASE("a worker that cannot heartbeat stops processing on its own, and resumes when it can again",
          "[cluster][I7][self-fencing]") {
    ClusterHarness cluster("selffence");
    cluster.store().append_each(1000, 40);
    Appender appender(cluster.schema());
    for (int w = 0; w < 2; ++w) cluster.start(w);
    REQUIRE(cluster.wait_converged(2));
    const std::string schema = cluster.schema();
    // The worker's current id (it registers again under a new one if the
    // others manage to remove it once the row is free again).
    auto current_id = [&] {
        return cluster.store()
            .db()
            .exec("SELECT id::text FROM " + schema + ".orchestratord_workers WHERE pid = $1",
                  {std::to_string(cluster.worker(0).pid())})
            .at(0, 0)
            .value_or("");
    };
    const std::string worker_id = current_id();
    REQUIRE_FALSE(worker_id.empty());
    // The newest recorded event in the slices the worker owns.
    auto its_events = [&](const std::string& id) {
        return "SELECT coalesce(max(r.id), 0) FROM " + schema + ".recorded r JOIN " + schema +
               ".orchestratord_slices s ON s.replica_set = 'test' AND s.slice = "
               "((hashtextextended(r.aggregate_id, 0) % 64 + 64) % 64)::int4 AND s.owner::text = '" +
               id + "'";
    };

    // Hold the worker's row: its heartbeats hang (the others end its sessions but cannot delete the row).
    orchestratord::pg::BlockingConnection blocker(pg_url());
    blocker.exec("BEGIN");
    blocker.exec("SELECT 1 FROM " + schema + ".orchestratord_workers WHERE id = $1 FOR UPDATE", {worker_id});
    REQUIRE(cluster.worker(0).wait_for_output("self-fencing", 10s));
    // Give an in-flight batch time to end, then nothing more may commit for its slices.
    std::this_thread::sleep_for(300ms);
    const int64_t last_before = cluster.store().scalar(its_events(worker_id));
    std::this_thread::sleep_for(700ms);
    CHECK(cluster.store().scalar(its_events(worker_id)) == last_before);

    blocker.exec("ROLLBACK");
    REQUIRE(cluster.worker(0).wait_for_output("heartbeat works again", 10s));
    REQUIRE(cluster.wait_converged(2));
    REQUIRE(cluster.store().wait_until([&] { return cluster.store().scalar(its_events(current_id())) > last_before; },
                                       10s));
    appender.stop();
    cluster.check_delivery();
    cluster.check_never_owned_twice();
    for (int w = 0; w < 2; ++w) cluster.stop(w);
}

TEST_CASE(
    "a slice its owner does not hand over within coordination_timeout is taken from it, and its late commit "
    "fails the fencing check",
    "[cluster][I1][coordination-timeout]") {
    ClusterHarness cluster("slow_handover");
    cluster.store().append_each(500, 40);
    Appender appender(cluster.schema(), 5, 50ms);
    // Worker 0's batches take longer than coordination_timeout (3s).
    cluster.set_delay(0, 4000);
    cluster.start(0);
    REQUIRE(cluster.wait_converged(1));
    REQUIRE(cluster.worker(0).wait_for_output("projection=recorder", 10s));
    cluster.start(1);
    REQUIRE(cluster.wait_converged(2, 15s));
    CHECK_THAT(cluster.worker(0).output() + cluster.worker(1).output(),
               Catch::Contains("coordination timeout: slice not released in time"));
    // The batch it was in covered the moved slices: committing it would apply
    // their events twice, so the fencing check rolls it back.
    REQUIRE(cluster.worker(0).wait_for_output("fencing check failed", 10s));
    cluster.stop(0);
    appender.stop();
    cluster.check_delivery();
    cluster.check_never_owned_twice();
    cluster.stop(1);
}

TEST_CASE("replica sets in one process are independent clusters and never share checkpoints",
          "[cluster][replica-sets]") {
    EventStoreFixture store("two_sets");
    const std::string schema = store.schema();
    store.db().exec("CREATE TABLE " + schema + ".recorded_beta (LIKE " + schema + ".recorded INCLUDING ALL)");
    store.append_each(1000, 40);
    auto replica_set = [&](const std::string& name, const std::string& table) {
        return "  - name: " + name +
               "\n    heartbeat_interval: 200ms\n    stale_worker_timeout: 1s\n    coordination_timeout: 3s\n"
               "    projections:\n      - name: recorder\n        config: {table: " +
               schema + "." + table + "}\n";
    };
    const std::string head = "database: {url: '" + pg_url() + "'}\nevent_store: {schema: " + schema +
                             "}\nplugins: {directory: " FIXTURE_PLUGIN_DIR "}\nreplica_sets:\n";
    const std::string both =
        store.dir().write("both.yaml", head + replica_set("alpha", "recorded") + replica_set("beta", "recorded_beta"));
    const std::string beta_only = store.dir().write("beta.yaml", head + replica_set("beta", "recorded_beta"));
    auto first = store.start_daemon(both, "both.log");
    auto second = store.start_daemon(beta_only, "beta.log");

    auto owners = [&](const std::string& set) {
        return store.scalar("SELECT count(DISTINCT owner) FROM " + schema +
                            ".orchestratord_slices WHERE owner = target_owner AND replica_set = '" + set + "'");
    };
    auto owned = [&](const std::string& set) {
        return store.scalar("SELECT count(*) FROM " + schema +
                            ".orchestratord_slices WHERE owner = target_owner AND replica_set = '" + set + "'");
    };
    // alpha: one worker with every slice; beta: two workers sharing them.
    REQUIRE(store.wait_until(
        [&] { return owners("alpha") == 1 && owned("alpha") == 64 && owners("beta") == 2 && owned("beta") == 64; },
        15s));
    const int64_t total = store.scalar("SELECT count(*) FROM " + schema + ".events");
    auto distinct_in = [&](const std::string& table) {
        return store.scalar("SELECT count(DISTINCT global_position) FROM " + schema + "." + table);
    };
    REQUIRE(store.wait_until([&] { return distinct_in("recorded") == total && distinct_in("recorded_beta") == total; },
                             30s));
    CHECK(store.scalar("SELECT count(*) FROM " + schema + ".recorded") == total);
    CHECK(store.scalar("SELECT count(*) FROM " + schema + ".recorded_beta") == total);
    for (auto* daemon : {first.get(), second.get()}) stop_gracefully(*daemon);
    // Same projection name, separate checkpoints (every slice written at the graceful stop).
    CHECK(store.scalar("SELECT count(*) FROM " + schema +
                       ".orchestratord_checkpoints WHERE projection = 'recorder' AND replica_set = 'alpha'") == 64);
    CHECK(store.scalar("SELECT count(*) FROM " + schema +
                       ".orchestratord_checkpoints WHERE projection = 'recorder' AND replica_set = 'beta'") == 64);
}

TEST_CASE("a stale worker frozen in the middle of a commit does not block the takeover of its slices",
          "[cluster][I6][frozen]") {
    ClusterHarness cluster("frozen_commit");
    cluster.store().append_each(500, 40);
    Appender appender(cluster.schema());
    for (int w = 0; w < 2; ++w) cluster.start(w);
    REQUIRE(cluster.wait_converged(2));
    const std::string schema = cluster.schema();
    const auto worker = cluster.store().db().exec(
        "SELECT id::text, session_tag FROM " + schema + ".orchestratord_workers WHERE pid = $1",
        {std::to_string(cluster.worker(1).pid())});
    REQUIRE(worker.rows == 1);
    REQUIRE(worker.at(0, 1).value_or("").size() > 0);
    const std::string id = *worker.at(0, 0);

    // A session of worker 1's process inside a batch commit: it holds its
    // slice rows FOR SHARE. Then the whole process freezes.
    orchestratord::pg::BlockingConnection frozen(pg_url());
    frozen.exec("SELECT set_config('application_name', $1, false)",
                {"orchestratord " + *worker.at(0, 1) + " projections"});
    frozen.exec("BEGIN");
    const auto locked = frozen.exec(
        "SELECT count(*) FROM (SELECT slice FROM " + schema + ".orchestratord_slices WHERE owner = $1 FOR SHARE) s",
        {id});
    REQUIRE(*locked.at(0, 0) == "32");
    cluster.worker(1).signal(SIGSTOP);

    // The survivor ends the frozen process's sessions and takes every slice.
    REQUIRE(cluster.wait_converged(1, 15s));
    CHECK_THAT(cluster.worker(0).output(), Catch::Contains("ended the database sessions of a stale worker"));
    CHECK_THROWS(frozen.exec("SELECT 1"));  // that session is gone, its transaction rolled back

    cluster.worker(1).signal(SIGCONT);
    REQUIRE(cluster.worker(1).wait_for_output("registering again", 15s));
    REQUIRE(cluster.wait_converged(2));
    appender.stop();
    cluster.check_delivery();
    cluster.check_never_owned_twice();
    for (int w = 0; w < 2; ++w) cluster.stop(w);
}
