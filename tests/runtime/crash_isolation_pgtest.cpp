// A plugin that crashes the whole process (SIGSEGV in its handler): every
// crash is logged with the events it was given, and the restarts a service
// manager makes pin the crash to one event, to which the on_error policy then
// applies, while the other projection of the process handles everything.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <utility>
#include <vector>

#include "support/event_store_fixture.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

constexpr int64_t kEvents = 20;
constexpr int64_t kCrashPosition = 7;
constexpr int kCrashLimit = 2;
constexpr int kMostStarts = 6;  // a crash on a batch, then kCrashLimit on the event, then the isolated start

// Crashing daemons would leave core files in the test's directory.
void no_core_files() {
    const rlimit none{0, 0};
    REQUIRE(::setrlimit(RLIMIT_CORE, &none) == 0);
}

// A crashed worker stays registered until it is found stale; a short
// timeout lets the restarted one take over its slices quickly.
std::map<std::string, std::optional<std::string>> restart_env(const std::string& state_directory) {
    std::map<std::string, std::optional<std::string>> env{{"HEARTBEAT_INTERVAL", "200ms"},
                                                          {"STALE_WORKER_TIMEOUT", "1s"}};
    if (!state_directory.empty()) env["STATE_DIRECTORY"] = state_directory;
    return env;
}

using Positions = std::pair<int64_t, int64_t>;

// The positions named by the line the fatal-signal handler wrote, if any.
std::optional<Positions> crash_line(const std::string& output) {
    static const std::regex line(
        "fatal signal SIGSEGV in projection handler replica_set=test projection=crasher first_position=([0-9]+) "
        "last_position=([0-9]+)");
    std::smatch match;
    if (!std::regex_search(output, match, line)) return std::nullopt;
    return Positions{std::stoll(match[1].str()), std::stoll(match[2].str())};
}

// The crasher (crashes at kCrashPosition) and the recorder in one daemon.
std::string projections(EventStoreFixture& store, const std::string& policy) {
    store.db().exec("CREATE TABLE " + store.schema() + ".crashed (LIKE " + store.schema() + ".recorded INCLUDING ALL)");
    return "      - name: crasher\n        config: {table: " + store.schema() +
           ".crashed, crash_position: " + std::to_string(kCrashPosition) + "}\n        on_error: {policy: " + policy +
           ", crash_limit: " + std::to_string(kCrashLimit) + "}\n" + store.recorder();
}

// Starts the daemon again after every crash, as systemd's Restart= does,
// until a start no longer crashes but shows `settled` (bounded). Returns the
// positions of each crash; `daemon` is the last, running, process.
std::vector<Positions> restart_until(EventStoreFixture& store, const std::string& config,
                                     const std::string& state_directory, const std::string& settled,
                                     std::unique_ptr<ChildProcess>& daemon) {
    std::vector<Positions> crashes;
    for (int start = 0; start < kMostStarts; ++start) {
        daemon = store.start_daemon(config, "start" + std::to_string(start) + ".log", restart_env(state_directory));
        REQUIRE(store.wait_until(
            [&] { return daemon->wait(0ms).has_value() || daemon->output().find(settled) != std::string::npos; }, 30s));
        const auto status = daemon->wait(0ms);
        const std::string output = daemon->output();
        INFO("start " << start << ":\n" << output);
        if (!status) return crashes;  // settled, still running
        CHECK_FALSE(status->exited);
        CHECK(status->code == SIGSEGV);
        const auto positions = crash_line(output);
        REQUIRE(positions);
        CHECK(positions->first <= kCrashPosition);
        CHECK(positions->second >= kCrashPosition);
        if (start > 0) CHECK_THAT(output, Catch::Contains("the process crashed in this projection's handler"));
        crashes.push_back(*positions);
    }
    FAIL("the crashing projection was not isolated after " << kMostStarts << " starts");
    return crashes;
}

// The crashes end with kCrashLimit crashes on the crashing event alone.
void check_pinned(const std::vector<Positions>& crashes) {
    REQUIRE(crashes.size() >= static_cast<size_t>(kCrashLimit));
    const Positions alone{kCrashPosition, kCrashPosition};
    for (size_t i = crashes.size() - kCrashLimit; i < crashes.size(); ++i) CHECK(crashes[i] == alone);
    CHECK(std::count(crashes.begin(), crashes.end(), alone) == kCrashLimit);
}

bool breadcrumb_left(const std::string& directory) {
    for (const auto& entry : std::filesystem::directory_iterator(directory)) {
        if (entry.path().filename().string().starts_with("crash-")) return true;
    }
    return false;
}

}  // namespace

TEST_CASE("a handler that crashes the process is logged, pinned to its event and paused, the others go on",
          "[crash][pause]") {
    no_core_files();
    EventStoreFixture store("crash_pause");
    store.append(kEvents, kEvents);
    TempDir state;
    const std::string config = store.config_file(projections(store, "pause"), 10);
    std::unique_ptr<ChildProcess> daemon;
    const auto crashes =
        restart_until(store, config, state.path(), "projection paused after repeated failures", daemon);
    check_pinned(crashes);
    INFO(daemon->output());
    // The recorder in the same process handled every event.
    REQUIRE(store.wait_until([&] { return store.recorded() == kEvents; }, 20s));
    stop_gracefully(*daemon);

    // The crasher holds just before the event: everything before it applied once.
    CHECK(store.lowest_checkpoint("crasher") == kCrashPosition - 1);
    CHECK(store.scalar("SELECT count(DISTINCT global_position) FROM " + store.schema() + ".crashed") ==
          kCrashPosition - 1);
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() + ".crashed") == kCrashPosition - 1);
    const auto state_row = store.db().exec("SELECT state, reason FROM " + store.schema() +
                                           ".orchestratord_projection_state WHERE projection = 'crasher'");
    REQUIRE(state_row.rows == 1);
    CHECK(state_row.at(0, 0) == "paused");
    CHECK_THAT(*state_row.at(0, 1), Catch::Contains("event at position 7"));
    CHECK_THAT(*state_row.at(0, 1), Catch::Contains("the handler crashed the process 2 times (SIGSEGV)"));
    const auto status = run_command({ORCHESTRATORD_BIN, "status", "--config", config});
    CHECK_THAT(status.output, Catch::Contains("paused: event at position 7"));
    CHECK_FALSE(breadcrumb_left(state.path()));
}

TEST_CASE("a handler that crashes the process is logged, pinned to its event and dead-lettered, it goes on",
          "[crash][dead-letter]") {
    no_core_files();
    EventStoreFixture store("crash_dead_letter");
    store.append(kEvents, kEvents);
    TempDir state;
    const std::string config = store.config_file(projections(store, "dead-letter"), 10);
    std::unique_ptr<ChildProcess> daemon;
    const auto crashes = restart_until(store, config, state.path(), "dead-lettered an event", daemon);
    check_pinned(crashes);
    INFO(daemon->output());
    // The crasher went on past the event; the recorder handled everything.
    REQUIRE(store.wait_until([&] { return store.lowest_checkpoint("crasher") == kEvents; }, 20s));
    REQUIRE(store.wait_until([&] { return store.recorded() == kEvents; }, 20s));
    stop_gracefully(*daemon);

    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() + ".crashed") == kEvents - 1);
    CHECK(store.scalar("SELECT count(DISTINCT global_position) FROM " + store.schema() + ".crashed") == kEvents - 1);
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() + ".crashed WHERE global_position = 7") == 0);
    const auto letter = store.db().exec("SELECT global_position, attempts, error FROM " + store.schema() +
                                        ".orchestratord_dead_letters WHERE projection = 'crasher'");
    REQUIRE(letter.rows == 1);
    CHECK(letter.at(0, 0) == "7");
    CHECK(letter.at(0, 1) == "2");
    CHECK(letter.at(0, 2) == "the handler crashed the process 2 times (SIGSEGV)");
    CHECK_FALSE(breadcrumb_left(state.path()));
}

TEST_CASE("without a writable state directory a crash is still logged, but not isolated", "[crash][off]") {
    no_core_files();
    EventStoreFixture store("crash_off");
    store.append(kEvents, kEvents);
    TempDir state;
    const std::string missing = state.file("missing");
    const std::string config =
        store.dir().write("off.yaml", "state_directory: '" + missing + "'\n" +
                                          read_file(store.config_file(projections(store, "dead-letter"), 10)));
    std::vector<Positions> crashes;
    for (int start = 0; start < 2; ++start) {
        auto daemon = store.start_daemon(config, "off" + std::to_string(start) + ".log", restart_env(""));
        const auto status = daemon->wait(30s);
        INFO(daemon->output());
        REQUIRE(status);
        CHECK_FALSE(status->exited);
        CHECK(status->code == SIGSEGV);
        CHECK_THAT(daemon->output(), Catch::Contains("state_directory " + missing + " cannot be used"));
        CHECK_THAT(daemon->output(), Catch::Contains("crash isolation is off"));
        const auto positions = crash_line(daemon->output());
        REQUIRE(positions);
        crashes.push_back(*positions);
    }
    // Nothing narrowed the second try down: the same batch crashed again.
    CHECK(crashes[0] == crashes[1]);
    CHECK(crashes[0].first < crashes[0].second);
    CHECK_FALSE(std::filesystem::exists(missing));
}

TEST_CASE("a fatal signal outside any handler call is logged in one line", "[crash][outside]") {
    no_core_files();
    EventStoreFixture store("crash_outside");
    TempDir state;
    auto daemon =
        store.start_daemon(store.config_file(store.recorder()), "daemon.log", {{"STATE_DIRECTORY", state.path()}});
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    daemon->signal(SIGSEGV);
    const auto status = daemon->wait(10s);
    INFO(daemon->output());
    REQUIRE(status);
    CHECK_FALSE(status->exited);
    CHECK(status->code == SIGSEGV);
    CHECK_THAT(daemon->output(), Catch::Contains("fatal signal SIGSEGV outside any projection handler"));
    CHECK_FALSE(breadcrumb_left(state.path()));
}
