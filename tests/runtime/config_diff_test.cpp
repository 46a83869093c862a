// What a reload does with a new configuration: reloadable keys apply now,
// every other change waits for a restart and keeps its running value.
#include <catch2/catch.hpp>

#include "config/loader.hpp"
#include "runtime/config_diff.hpp"
#include "support/temp_dir.hpp"

using namespace orchestratord;
using runtime::KeyChange;

namespace {

config::Setting setting(const std::string& path, const std::string& value, bool reloadable) {
    config::Setting s;
    s.path = path;
    s.value = value;
    s.reloadable = reloadable;
    return s;
}

config::Config running_config() {
    config::Config config;
    config.logging = {config::LogLevel::info, config::LogFormat::text};
    config.plugins.directory = "/plugins";
    config.database.url = "postgres://db/old";
    config.replica_sets.push_back({});
    config.replica_sets.back().name = "main";
    config.replica_sets.back().batch_size = 100;
    config.settings = {setting("database.url", "postgres://db/old", false), setting("logging.level", "info", true),
                       setting("logging.format", "text", true), setting("plugins.directory", "/plugins", true),
                       setting("replica_sets[0].batch_size", "100", false)};
    return config;
}

config::Setting& find(config::Config& config, const std::string& path) {
    for (auto& s : config.settings) {
        if (s.path == path) return s;
    }
    throw std::logic_error("no setting " + path);
}

}  // namespace

TEST_CASE("an unchanged configuration changes nothing", "[reload]") {
    const auto running = running_config();
    const auto diff = runtime::diff_config(running, running_config());
    CHECK(diff.changes.empty());
    CHECK(diff.next.settings.size() == running.settings.size());
    CHECK(diff.next.logging.level == config::LogLevel::info);
}

TEST_CASE("a changed reloadable key applies now", "[reload]") {
    auto fresh = running_config();
    fresh.logging.level = config::LogLevel::debug;
    find(fresh, "logging.level").value = "debug";
    fresh.plugins.directory = "/other";
    find(fresh, "plugins.directory").value = "/other";

    auto diff = runtime::diff_config(running_config(), fresh);
    REQUIRE(diff.changes.size() == 2);
    CHECK(diff.changes[0].path == "logging.level");
    CHECK(diff.changes[0].from == std::optional<std::string>("info"));
    CHECK(diff.changes[0].to == std::optional<std::string>("debug"));
    CHECK(diff.changes[0].applied == KeyChange::Applied::now);
    CHECK(diff.changes[1].path == "plugins.directory");
    CHECK(diff.changes[1].applied == KeyChange::Applied::now);
    // The process runs with the new values.
    CHECK(diff.next.logging.level == config::LogLevel::debug);
    CHECK(diff.next.plugins.directory == "/other");
    CHECK(find(diff.next, "logging.level").value == "debug");
}

TEST_CASE("a changed key that is not reloadable waits for a restart and keeps its running value", "[reload]") {
    auto fresh = running_config();
    fresh.database.url = "postgres://db/new";
    find(fresh, "database.url").value = "postgres://db/new";
    fresh.replica_sets.back().batch_size = 500;
    find(fresh, "replica_sets[0].batch_size").value = "500";

    auto diff = runtime::diff_config(running_config(), fresh);
    REQUIRE(diff.changes.size() == 2);
    for (const auto& change : diff.changes) CHECK(change.applied == KeyChange::Applied::after_restart);
    CHECK(diff.changes[0].path == "database.url");
    CHECK(diff.changes[0].to == std::optional<std::string>("postgres://db/new"));
    CHECK(diff.next.database.url == "postgres://db/old");
    CHECK(diff.next.replica_sets.back().batch_size == 100);
    CHECK(find(diff.next, "database.url").value == "postgres://db/old");
    CHECK(find(diff.next, "replica_sets[0].batch_size").value == "100");
}

TEST_CASE("a key that appears or disappears waits for a restart", "[reload]") {
    auto fresh = running_config();
    fresh.settings.erase(fresh.settings.begin());  // database.url
    fresh.settings.push_back(setting("replica_sets[1].name", "second", false));
    // Even a reloadable key that was not there before is not applied.
    fresh.settings.push_back(setting("logging.extra", "x", true));

    auto diff = runtime::diff_config(running_config(), fresh);
    REQUIRE(diff.changes.size() == 3);
    // The new configuration's keys in its order, then the removed ones.
    CHECK(diff.changes[0].path == "replica_sets[1].name");
    CHECK_FALSE(diff.changes[0].from.has_value());
    CHECK(diff.changes[0].applied == KeyChange::Applied::after_restart);
    CHECK(diff.changes[1].path == "logging.extra");
    CHECK(diff.changes[1].applied == KeyChange::Applied::after_restart);
    CHECK(diff.changes[2].path == "database.url");
    CHECK(diff.changes[2].from == std::optional<std::string>("postgres://db/old"));
    CHECK_FALSE(diff.changes[2].to.has_value());
    CHECK(diff.changes[2].applied == KeyChange::Applied::after_restart);
    // The running process keeps what it has.
    CHECK(diff.next.settings.size() == running_config().settings.size());
    CHECK(find(diff.next, "database.url").value == "postgres://db/old");
}

TEST_CASE("the key table decides what a reload applies", "[reload]") {
    test::TempDir dir;
    auto load = [&](const std::string& level, int batch_size) {
        config::LoadOptions options;
        options.file =
            dir.write("orchestratord.yaml",
                      "database:\n  url: postgres://db/events\nlogging:\n  level: " + level +
                          "\nreplica_sets:\n  - name: main\n    batch_size: " + std::to_string(batch_size) + "\n");
        return config::load_config(options);
    };
    const auto running = load("info", 100);
    const auto diff = runtime::diff_config(running, load("debug", 200));
    REQUIRE(diff.changes.size() == 2);
    CHECK(diff.changes[0].path == "logging.level");
    CHECK(diff.changes[0].applied == KeyChange::Applied::now);
    CHECK(diff.changes[1].path == "replica_sets[0].batch_size");
    CHECK(diff.changes[1].applied == KeyChange::Applied::after_restart);
    CHECK(diff.next.logging.level == config::LogLevel::debug);
    CHECK(diff.next.replica_sets.at(0).batch_size == 100);
}
