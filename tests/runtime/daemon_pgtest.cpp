// The daemon as a real process against the throwaway PostgreSQL: readiness
// over a fake NOTIFY_SOCKET, graceful SIGTERM, SIGHUP reload, and clear
// startup failures.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "pg/blocking_connection.hpp"
#include "support/child_process.hpp"
#include "support/notify_socket.hpp"
#include "support/pg_env.hpp"
#include "support/temp_dir.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

std::string config_yaml(const std::string& level, int batch_size) {
    return "database:\n  url: " + pg_url() +
           "\n"
           "logging:\n  level: " +
           level +
           "\n"
           "plugins:\n  directory: " SAMPLE_PLUGIN_DIR
           "\n"
           // Any free port: the fake NOTIFY_SOCKET makes http.required true,
           // and a port another test's daemon holds would stop the start.
           "http:\n  listen: 127.0.0.1:0\n"
           "replica_sets:\n"
           "  - name: daemon-test\n"
           "    batch_size: " +
           std::to_string(batch_size) +
           "\n"
           "    projections:\n"
           "      - name: event_counter\n"
           "        config: {log_every: 10}\n";
}

// The daemon refuses to start without the event store: create it (migrate is
// idempotent and safe when several test processes run it at once).
void migrate(const std::string& config_file) {
    const auto result = run_command({ORCHESTRATORD_BIN, "migrate", "--config", config_file});
    INFO(result.output);
    REQUIRE(result.status.code == 0);
}

// A daemon started with its config file and a fake systemd socket.
struct RunningDaemon {
    TempDir dir;
    std::string config_file = dir.write("orchestratord.yaml", config_yaml("info", 100));
    NotifySocket notify{dir.file("notify.sock")};
    std::unique_ptr<ChildProcess> process;

    explicit RunningDaemon(std::map<std::string, std::optional<std::string>> env = {}) {
        migrate(config_file);
        env.emplace("NOTIFY_SOCKET", notify.path());
        env.emplace("DATABASE_URL", std::nullopt);
        env.emplace("REPLICA_SET", std::nullopt);
        process = std::make_unique<ChildProcess>(std::vector<std::string>{ORCHESTRATORD_BIN, "--config", config_file},
                                                 env, dir.file("daemon.log"));
    }
};

}  // namespace

TEST_CASE("the daemon reports READY to systemd and stops within a second on SIGTERM", "[daemon]") {
    RunningDaemon daemon;
    INFO(daemon.process->output());
    REQUIRE(daemon.notify.wait_for("READY=1", 15s));
    CHECK(daemon.process->wait_for_output("connected to PostgreSQL", 1s));
    CHECK_THAT(daemon.process->output(), Catch::Contains("loaded plugin plugin=event_counter"));

    const auto sent = std::chrono::steady_clock::now();
    daemon.process->signal(SIGTERM);
    const auto status = daemon.process->wait(5s);
    const auto took = std::chrono::steady_clock::now() - sent;
    REQUIRE(status);
    CHECK(status->exited);
    CHECK(status->code == 0);
    CHECK(took < 1s);
    CHECK(daemon.notify.wait_for("STOPPING=1", 1s));
    CHECK_THAT(daemon.process->output(), Catch::Contains("got a stop signal, stopping gracefully signal=SIGTERM"));
}

TEST_CASE("SIGINT stops the daemon gracefully too", "[daemon]") {
    RunningDaemon daemon;
    REQUIRE(daemon.notify.wait_for("READY=1", 15s));
    daemon.process->signal(SIGINT);
    const auto status = daemon.process->wait(5s);
    REQUIRE(status);
    CHECK(status->exited);
    CHECK(status->code == 0);
}

TEST_CASE("SIGHUP re-reads the configuration and says what changed", "[daemon][reload]") {
    RunningDaemon daemon;
    REQUIRE(daemon.notify.wait_for("READY=1", 15s));

    daemon.dir.write("orchestratord.yaml", config_yaml("debug", 500));
    daemon.process->signal(SIGHUP);
    REQUIRE(daemon.notify.wait_for("RELOADING=1", 5s));
    REQUIRE(daemon.notify.wait_for("READY=1", 5s));
    const std::string log = daemon.process->output();
    INFO(log);
    CHECK_THAT(log, Catch::Contains("got SIGHUP, re-reading config"));
    CHECK_THAT(log, Catch::Contains("config changed key=logging.level from=\"info\" to=\"debug\" applied=now"));
    CHECK_THAT(log, Catch::Contains(
                        "config changed key=replica_sets[0].batch_size from=\"100\" to=\"500\" applied=after-restart"));
    CHECK_THAT(log, Catch::Contains("reload done"));

    // A broken file is refused and the daemon keeps running on the old one.
    daemon.dir.write("orchestratord.yaml", "database: [unclosed\n");
    daemon.process->signal(SIGHUP);
    REQUIRE(daemon.notify.wait_for("READY=1", 5s));
    CHECK(daemon.process->wait_for_output("keeping the running configuration", 2s));
    CHECK_THAT(daemon.process->output(), Catch::Contains("reload refused: config file"));
    CHECK_FALSE(daemon.process->wait(0ms));

    daemon.process->signal(SIGTERM);
    const auto status = daemon.process->wait(5s);
    REQUIRE(status);
    CHECK(status->code == 0);
}

TEST_CASE("SIGHUP rescans the plugins directory and reports new and refused plugins", "[daemon][reload]") {
    TempDir plugins;
    std::filesystem::copy_file(SAMPLE_PLUGIN_DIR "/event_counter.so", plugins.file("event_counter.so"));
    RunningDaemon daemon(
        std::map<std::string, std::optional<std::string>>{{"ORCHESTRATORD_PLUGINS_DIRECTORY", plugins.path()}});
    REQUIRE(daemon.notify.wait_for("READY=1", 15s));

    // Drop a new plugin in (copy, then rename into place, as documented) and a broken one.
    std::filesystem::copy_file(SAMPLE_PLUGIN_DIR "/user_directory.so", plugins.file(".user_directory.so.tmp"));
    std::filesystem::rename(plugins.file(".user_directory.so.tmp"), plugins.file("user_directory.so"));
    std::filesystem::copy_file(FIXTURE_PLUGIN_DIR "/wrong_abi_major.so", plugins.file("wrong_abi_major.so"));
    daemon.process->signal(SIGHUP);
    REQUIRE(daemon.notify.wait_for("RELOADING=1", 5s));
    REQUIRE(daemon.notify.wait_for("READY=1", 5s));
    const std::string log = daemon.process->output();
    INFO(log);
    CHECK_THAT(log, Catch::Contains("new plugin plugin=user_directory version=1.0.0"));
    // event_counter.so did not change: its running instance is kept.
    CHECK_THAT(log, !Catch::Contains("switches to plugin"));
    CHECK_THAT(log, Catch::Contains("refused plugin file=" + plugins.file("wrong_abi_major.so")));
    CHECK_THAT(log, Catch::Contains("built for plugin ABI 99.0"));
    CHECK_THAT(log,
               Catch::Contains("projections added to or removed from the configuration take effect after a restart"));
    CHECK_FALSE(daemon.process->wait(0ms));  // still running

    // The running projection's plugin disappears: reported, and the instance keeps running.
    std::filesystem::remove(plugins.file("event_counter.so"));
    daemon.process->signal(SIGHUP);
    REQUIRE(daemon.notify.wait_for("RELOADING=1", 5s));
    REQUIRE(daemon.notify.wait_for("READY=1", 5s));
    CHECK_THAT(daemon.process->output(), Catch::Contains("plugin gone plugin=event_counter"));
    CHECK_THAT(daemon.process->output(),
               Catch::Contains("projection \"event_counter\" is no longer declared by any plugin"));
    CHECK_FALSE(daemon.process->wait(0ms));
}

TEST_CASE("logging.format json writes one JSON object per line", "[daemon][logging]") {
    RunningDaemon daemon(std::map<std::string, std::optional<std::string>>{{"ORCHESTRATORD_LOGGING_FORMAT", "json"}});
    REQUIRE(daemon.notify.wait_for("READY=1", 15s));
    daemon.process->signal(SIGTERM);
    REQUIRE(daemon.process->wait(5s));
    std::istringstream lines(daemon.process->output());
    std::string line;
    int parsed = 0;
    bool saw_ready = false;
    while (std::getline(lines, line)) {
        INFO(line);
        const auto object = nlohmann::json::parse(line);  // throws, failing the test, on a non-JSON line
        CHECK(object.contains("ts"));
        CHECK(object.contains("level"));
        saw_ready = saw_ready || object.at("msg").get<std::string>().starts_with("ready;");
        ++parsed;
    }
    CHECK(parsed >= 4);
    CHECK(saw_ready);
}

TEST_CASE("the watchdog is pinged from the event loop when systemd asks for it", "[daemon][watchdog]") {
    RunningDaemon daemon(std::map<std::string, std::optional<std::string>>{{"WATCHDOG_USEC", "200000"}});
    REQUIRE(daemon.notify.wait_for("READY=1", 15s));
    // Half the watchdog period: at least three pings within a second.
    int pings = 0;
    const auto until = std::chrono::steady_clock::now() + 1s;
    while (std::chrono::steady_clock::now() < until) {
        if (auto message = daemon.notify.receive(200ms); message && message->find("WATCHDOG=1") != std::string::npos) {
            ++pings;
        }
    }
    CHECK(pings >= 3);
}

TEST_CASE("an unreachable database is a clear startup error with the password masked", "[daemon]") {
    TempDir dir;
    const std::string file = dir.write("orchestratord.yaml", config_yaml("info", 100));
    const auto result =
        run_command({ORCHESTRATORD_BIN, "--config", file},
                    {{"DATABASE_URL", "postgresql://app:hunter2@127.0.0.1:1/nowhere?connect_timeout=2"}});
    INFO(result.output);
    CHECK(result.status.exited);
    CHECK(result.status.code == 1);
    CHECK_THAT(result.output,
               Catch::Contains("cannot start: connect to PostgreSQL at postgresql://app:****@127.0.0.1:1"));
    CHECK_THAT(result.output, !Catch::Contains("hunter2"));
}

TEST_CASE("an invalid configuration exits with EX_CONFIG and names the problem", "[daemon]") {
    const auto result = run_command({ORCHESTRATORD_BIN}, {{"DATABASE_URL", pg_url()},
                                                          {"REPLICA_SET", "bad"},
                                                          {"ORCHESTRATORD_CONFIG", std::nullopt},
                                                          {"BATCH_SIZE", "0"}});
    INFO(result.output);
    CHECK(result.status.code == 78);
    CHECK_THAT(result.output, Catch::Contains("BATCH_SIZE (replica_sets[0].batch_size): BatchSize must be positive"));
}

TEST_CASE("a configured projection that no plugin declares stops startup with its name", "[daemon]") {
    TempDir dir;
    const std::string file = dir.write("orchestratord.yaml", "database: {url: '" + pg_url() +
                                                                 "'}\nplugins: {directory: " SAMPLE_PLUGIN_DIR
                                                                 "}\nreplica_sets:\n  - name: missing\n"
                                                                 "    projections: [{name: no_such_projection}]\n");
    migrate(file);
    const auto result = run_command({ORCHESTRATORD_BIN, "--config", file});
    INFO(result.output);
    CHECK(result.status.code == 1);
    CHECK_THAT(result.output, Catch::Contains("projection \"no_such_projection\" is not declared by any plugin"));
}

TEST_CASE("check-config checks the plugins directory always, the plugins and the database on request", "[cli]") {
    TempDir dir;
    const std::string schema = "check_config_" + std::to_string(::getpid());
    const auto yaml = [&](const std::string& plugins, const std::string& projection) {
        return "database: {url: '" + pg_url() + "'}\nevent_store: {schema: " + schema +
               "}\nplugins: {directory: " + plugins +
               "}\nreplica_sets:\n  - name: check\n    projections: [{name: " + projection + "}]\n";
    };
    const std::string good = dir.write("good.yaml", yaml(SAMPLE_PLUGIN_DIR, "event_counter"));
    const auto offline = run_command({ORCHESTRATORD_BIN, "check-config", "--config", good});
    INFO(offline.output);
    CHECK(offline.status.code == 0);

    // A missing plugins directory is found without loading anything.
    const std::string missing = dir.write("missing.yaml", yaml(dir.file("no-plugins"), "event_counter"));
    const auto no_directory = run_command({ORCHESTRATORD_BIN, "check-config", "--config", missing});
    INFO(no_directory.output);
    CHECK(no_directory.status.code == 1);
    CHECK_THAT(no_directory.output, Catch::Contains("plugins.directory: " + dir.file("no-plugins")));

    // A projection no plugin declares: found by --plugins only.
    const std::string unknown = dir.write("unknown.yaml", yaml(SAMPLE_PLUGIN_DIR, "no_such_projection"));
    CHECK(run_command({ORCHESTRATORD_BIN, "check-config", "--config", unknown}).status.code == 0);
    const auto loaded = run_command({ORCHESTRATORD_BIN, "check-config", "--plugins", "--config", unknown});
    INFO(loaded.output);
    CHECK(loaded.status.code == 1);
    CHECK_THAT(loaded.output, Catch::Contains("projection \"no_such_projection\" is not declared by any plugin"));
    CHECK(run_command({ORCHESTRATORD_BIN, "check-config", "--plugins", "--config", good}).status.code == 0);

    // --connect: a schema never migrated, then migrated.
    const auto unmigrated = run_command({ORCHESTRATORD_BIN, "check-config", "--connect", "--config", good});
    INFO(unmigrated.output);
    CHECK(unmigrated.status.code == 1);
    CHECK_THAT(unmigrated.output,
               Catch::Contains("lacks orchestratord's migrations 1,2,3,4,5: run orchestratord migrate"));
    migrate(good);
    const auto connected = run_command({ORCHESTRATORD_BIN, "check-config", "--connect", "--config", good});
    INFO(connected.output);
    CHECK(connected.status.code == 0);
    CHECK_THAT(connected.output, Catch::Contains("the events table and orchestratord's tables are ready"));

    // A port that is not a number is refused offline.
    const auto bad_port = run_command({ORCHESTRATORD_BIN, "check-config", "--config", good},
                                      {{"DATABASE_URL", "postgres://app@127.0.0.1:notaport/db"}});
    CHECK(bad_port.status.code == 1);
    CHECK_THAT(bad_port.output,
               Catch::Contains("DATABASE_URL (database.url): invalid connection string: invalid port"));
    orchestratord::pg::BlockingConnection(pg_url()).exec("DROP SCHEMA " + schema + " CASCADE");
}

TEST_CASE("check-config prints the effective configuration and fails on errors", "[cli]") {
    TempDir dir;
    const std::string file = dir.write("orchestratord.yaml", config_yaml("info", 100));
    const auto ok = run_command({ORCHESTRATORD_BIN, "check-config", "--config", file}, {{"BATCH_SIZE", "42"}});
    INFO(ok.output);
    CHECK(ok.status.code == 0);
    CHECK_THAT(ok.output, Catch::Contains("replica_sets[0].batch_size = 42"));
    CHECK_THAT(ok.output, Catch::Contains("# env BATCH_SIZE"));
    CHECK_THAT(ok.output, Catch::Contains("configuration is valid"));

    const auto bad = run_command({ORCHESTRATORD_BIN, "check-config", "--config", file}, {{"BATCH_SIZE", "x"}});
    CHECK(bad.status.code == 1);
    CHECK_THAT(bad.output, Catch::Contains("BATCH_SIZE (replica_sets[0].batch_size): expected an integer (got \"x\")"));

    const auto usage = run_command({ORCHESTRATORD_BIN, "--no-such-flag"});
    CHECK(usage.status.code != 0);
    CHECK_THAT(usage.output, Catch::Contains("--no-such-flag"));
}

TEST_CASE("plugins list shows every plugin, projection and refusal", "[cli]") {
    const auto listed = run_command({ORCHESTRATORD_BIN, "plugins", "list", "--directory", SAMPLE_PLUGIN_DIR});
    INFO(listed.output);
    CHECK(listed.status.code == 0);
    CHECK_THAT(listed.output, Catch::Contains("event_counter 1.0.0 (ABI 1.0)"));
    CHECK_THAT(listed.output, Catch::Contains("projection user_directory mode=transactional aggregate_types=User"));

    const auto refused = run_command({ORCHESTRATORD_BIN, "plugins", "list", "--directory", FIXTURE_PLUGIN_DIR});
    CHECK(refused.status.code == 1);
    CHECK_THAT(refused.output, Catch::Contains("refused " FIXTURE_PLUGIN_DIR "/wrong_abi_major.so"));
}
