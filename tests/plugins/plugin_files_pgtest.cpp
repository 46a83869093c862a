// Plugin files changing under a real daemon: overwritten in place while it
// runs, and two files declaring the same projection (at start and on SIGHUP).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "support/event_store_fixture.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Writes `from`'s bytes into `target`'s existing inode, as `cp from target`
// does, and checks that it really was the same inode.
void overwrite_in_place(const std::string& target, const std::string& from) {
    struct stat before {};
    REQUIRE(::stat(target.c_str(), &before) == 0);
    {
        std::ofstream out(target, std::ios::binary | std::ios::trunc);
        out << read_file(from);
        REQUIRE(out.good());
    }
    struct stat after {};
    REQUIRE(::stat(target.c_str(), &after) == 0);
    REQUIRE(after.st_ino == before.st_ino);
}

// Copies under a temporary name, then renames into place, as documented.
void install(const std::string& from, const TempDir& plugins, const std::string& name) {
    fs::copy_file(from, plugins.file("." + name + ".new"));
    fs::rename(plugins.file("." + name + ".new"), plugins.file(name));
}

int64_t recorded_by_v2(EventStoreFixture& store) {
    return store.scalar("SELECT count(*) FROM " + store.schema() + ".recorded WHERE metadata = 'v2'");
}

const std::string kRecorderV1 = FIXTURE_PLUGIN_DIR "/recorder.so";
const std::string kRecorderV2 = FIXTURE_PLUGIN_DIR "-v2/recorder.so";  // records metadata 'v2'

}  // namespace

TEST_CASE("a plugin file overwritten in place under a running daemon changes nothing until SIGHUP",
          "[plugins][reload]") {
    EventStoreFixture store("plugin_overwrite");
    TempDir plugins;
    fs::copy_file(kRecorderV1, plugins.file("recorder.so"));
    auto daemon = store.start_daemon(store.config_file(store.recorder(), 20), "daemon.log",
                                     {{"ORCHESTRATORD_PLUGINS_DIRECTORY", plugins.path()}});
    store.append_each(100, 25);
    INFO(daemon->output());
    REQUIRE(store.wait_until([&] { return store.recorded() == 100; }, 30s));

    // Another plugin's bytes (smaller, declaring other projections) written
    // into the loaded file. With the file mapped directly, the next batch
    // crashed the daemon.
    overwrite_in_place(plugins.file("recorder.so"), FIXTURE_PLUGIN_DIR "/noop.so");
    store.append_each(100, 25);
    CHECK(store.wait_until([&] { return store.recorded() == 200; }, 30s));
    CHECK_FALSE(daemon->wait(0ms));

    // The new recorder version written in place: still the loaded code until SIGHUP...
    overwrite_in_place(plugins.file("recorder.so"), kRecorderV2);
    store.append_each(50, 25);
    REQUIRE(store.wait_until([&] { return store.recorded() == 250; }, 30s));
    CHECK(recorded_by_v2(store) == 0);

    // ...which loads the file as it is now, and switches at a batch boundary.
    daemon->signal(SIGHUP);
    REQUIRE(daemon->wait_for_output("now runs the new plugin version", 15s));
    // The same path before and after: the line tells the versions apart.
    CHECK_THAT(daemon->output(), Catch::Contains("plugin=\"recorder 0.0.2\" was=\"recorder 0.0.1\""));
    store.append_each(50, 25);
    REQUIRE(store.wait_until([&] { return store.recorded() == 300; }, 30s));
    CHECK(store.scalar("SELECT count(*) FROM " + store.schema() +
                       ".recorded WHERE global_position > 250 AND metadata = 'v2'") == 50);
    CHECK(recorded_by_v2(store) == 50);
    CHECK(store.scalar("SELECT count(DISTINCT global_position) FROM " + store.schema() + ".recorded") == 300);
    stop_gracefully(*daemon);
}

TEST_CASE("two plugin files declaring a configured projection stop startup unless the plugin key picks one",
          "[plugins]") {
    EventStoreFixture store("plugin_ambiguous_start");
    TempDir plugins;
    fs::copy_file(kRecorderV1, plugins.file("recorder.so"));
    fs::copy_file(kRecorderV2, plugins.file("recorder-new.so"));  // sorts first: it used to win silently
    const std::map<std::string, std::optional<std::string>> env{{"ORCHESTRATORD_PLUGINS_DIRECTORY", plugins.path()}};

    // (Before ambiguity was refused, the daemon started and this timed out.)
    const auto refused = run_command({ORCHESTRATORD_BIN, "--config", store.config_file(store.recorder())}, env, 15s);
    INFO(refused.output);
    CHECK(refused.status.exited);
    CHECK(refused.status.code == 1);
    CHECK_THAT(refused.output,
               Catch::Contains("cannot start: replica set \"test\": projection \"recorder\" is "
                               "declared by both " +
                               plugins.file("recorder-new.so") + " and " + plugins.file("recorder.so")));

    // Pinned by file name: that file is used, and the daemon starts.
    const std::string pinned =
        "      - name: recorder\n        plugin: recorder.so\n        config: {table: " + store.schema() +
        ".recorded}\n";
    auto daemon = store.start_daemon(store.config_file(pinned, 100, "pinned.yaml"), "pinned.log", env);
    store.append_each(50, 25);
    INFO(daemon->output());
    REQUIRE(store.wait_until([&] { return store.recorded() == 50; }, 30s));
    CHECK(recorded_by_v2(store) == 0);
    stop_gracefully(*daemon);
}

TEST_CASE("SIGHUP refuses to swap a projection that a second file now declares, naming both files",
          "[plugins][reload]") {
    EventStoreFixture store("plugin_ambiguous_reload");
    TempDir plugins;
    fs::copy_file(kRecorderV1, plugins.file("recorder.so"));
    auto daemon = store.start_daemon(store.config_file(store.recorder(), 20), "daemon.log",
                                     {{"ORCHESTRATORD_PLUGINS_DIRECTORY", plugins.path()}});
    store.append_each(50, 25);
    INFO(daemon->output());
    REQUIRE(store.wait_until([&] { return store.recorded() == 50; }, 30s));

    install(kRecorderV2, plugins, "recorder-new.so");
    daemon->signal(SIGHUP);
    REQUIRE(daemon->wait_for_output("reload done", 15s));
    CHECK_THAT(daemon->output(),
               Catch::Contains("reload refused: replica set \"test\": projection \"recorder\" is "
                               "declared by both " +
                               plugins.file("recorder-new.so") + " and " + plugins.file("recorder.so")));
    CHECK_THAT(daemon->output(), !Catch::Contains("switches to plugin"));
    store.append_each(50, 25);
    REQUIRE(store.wait_until([&] { return store.recorded() == 100; }, 30s));
    CHECK(recorded_by_v2(store) == 0);

    // Once the ambiguity is gone, the next SIGHUP swaps as usual.
    fs::remove(plugins.file("recorder.so"));
    daemon->signal(SIGHUP);
    REQUIRE(daemon->wait_for_output("now runs the new plugin version", 15s));
    store.append_each(50, 25);
    REQUIRE(store.wait_until([&] { return store.recorded() == 150; }, 30s));
    CHECK(recorded_by_v2(store) == 50);
    stop_gracefully(*daemon);
}
