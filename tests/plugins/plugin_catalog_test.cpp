#include <catch2/catch.hpp>

#include <orchestratord/plugin_abi.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "plugins/plugin_catalog.hpp"
#include "plugins/plugin_fixtures.hpp"
#include "plugins/plugin_library.hpp"
#include "plugins/projection_instance.hpp"
#include "support/temp_dir.hpp"

using namespace orchestratord::plugins;
using orchestratord::test::install_plugin;
using orchestratord::test::make_event;
using orchestratord::test::read_file;
using orchestratord::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string sample(const TempDir& dir, const std::string& file) {
    return install_plugin(dir, SAMPLE_PLUGIN_DIR, file);
}
std::string fixture(const TempDir& dir, const std::string& file) {
    return install_plugin(dir, FIXTURE_PLUGIN_DIR, file);
}

const RefusedPlugin* refusal(const PluginScan& scan, const std::string& file_name) {
    for (const auto& refused : scan.refused) {
        if (fs::path(refused.file).filename() == file_name) return &refused;
    }
    return nullptr;
}

}  // namespace

TEST_CASE("a good plugin loads with its projections, modes and scopes", "[plugins]") {
    TempDir dir;
    sample(dir, "event_counter.so");
    sample(dir, "user_directory.so");
    const PluginScan scan = scan_plugins(dir.path());
    CHECK_FALSE(scan.directory_error);
    CHECK(scan.refused.empty());
    REQUIRE(scan.plugins.size() == 2);
    const LoadedPlugin& counter = scan.plugins[0];
    CHECK(counter.name == "event_counter");
    CHECK(counter.version == "1.0.0");
    CHECK(counter.abi_major == ORCH_PLUGIN_ABI_MAJOR);
    REQUIRE(counter.projections.size() == 2);
    CHECK(counter.projections[0].name == "event_counter");
    CHECK(counter.projections[0].mode == ProjectionMode::at_least_once);
    CHECK(counter.projections[1].mode == ProjectionMode::transactional);
    const LoadedPlugin& users = scan.plugins[1];
    REQUIRE(users.projections.size() == 1);
    CHECK(users.projections[0].aggregate_types == std::vector<std::string>{"User"});
    CHECK(users.projections[0].event_types ==
          std::vector<std::string>{"UserRegistered", "UserEmailChanged", "UserDeleted"});
    CHECK(users.projections[0].bounded_contexts.empty());
    CHECK(scan.find("user_directory") == &users);
    CHECK(scan.find("user_directory", "event_counter") == nullptr);
}

TEST_CASE("a plugin built for another ABI major version is refused, naming both versions", "[plugins]") {
    TempDir dir;
    fixture(dir, "wrong_abi_major.so");
    const PluginScan scan = scan_plugins(dir.path());
    CHECK(scan.plugins.empty());
    const auto* refused = refusal(scan, "wrong_abi_major.so");
    REQUIRE(refused != nullptr);
    CHECK_THAT(refused->file, Catch::EndsWith("wrong_abi_major.so"));
    CHECK_THAT(refused->reason, Catch::Contains("built for plugin ABI 99.0 but this orchestratord provides ABI 1.0"));
}

TEST_CASE("a plugin needing a newer ABI minor version is refused", "[plugins]") {
    TempDir dir;
    fixture(dir, "newer_abi_minor.so");
    const PluginScan scan = scan_plugins(dir.path());
    const auto* refused = refusal(scan, "newer_abi_minor.so");
    REQUIRE(refused != nullptr);
    CHECK_THAT(refused->reason, Catch::Contains("needs plugin ABI 1.99 but this orchestratord provides only ABI 1.0"));
}

TEST_CASE("a shared object without the entry function is refused", "[plugins]") {
    TempDir dir;
    fixture(dir, "missing_entry.so");
    const PluginScan scan = scan_plugins(dir.path());
    const auto* refused = refusal(scan, "missing_entry.so");
    REQUIRE(refused != nullptr);
    CHECK_THAT(refused->reason, Catch::Contains("has no entry function orchestratord_plugin_entry"));
}

TEST_CASE("two files declaring one projection are ambiguous unless the plugin key picks one", "[plugins]") {
    TempDir dir;
    const std::string counter = sample(dir, "event_counter.so");
    const std::string impostor = fixture(dir, "duplicate_projection.so");  // also declares "event_counter"
    const PluginScan scan = scan_plugins(dir.path());
    CHECK(scan.refused.empty());
    REQUIRE(scan.plugins.size() == 2);

    // Neither file wins by name order.
    CHECK(scan.find("event_counter") == nullptr);
    const auto ambiguity = scan.ambiguity("event_counter");
    REQUIRE(ambiguity);
    CHECK_THAT(*ambiguity,
               Catch::Contains("projection \"event_counter\" is declared by both " + impostor + " and " + counter));
    CHECK_THAT(*ambiguity, Catch::Contains("plugin: key"));

    // Pinned by plugin name or by file name: that one, and no ambiguity.
    const LoadedPlugin* by_name = scan.find("event_counter", "event_counter");
    REQUIRE(by_name != nullptr);
    CHECK(by_name->file == counter);
    CHECK_FALSE(scan.ambiguity("event_counter", "event_counter"));
    const LoadedPlugin* by_file = scan.find("event_counter", "duplicate_projection.so");
    REQUIRE(by_file != nullptr);
    CHECK(by_file->file == impostor);

    // A projection only one of them declares is not affected.
    REQUIRE(scan.find("event_counter_table") != nullptr);
    CHECK(scan.find("event_counter_table")->file == counter);
    CHECK_FALSE(scan.ambiguity("event_counter_table"));

    const auto several = scan.declared_more_than_once();
    REQUIRE(several.size() == 1);
    CHECK(several[0].first == "event_counter");
    CHECK(several[0].second == std::vector<std::string>{impostor, counter});
}

TEST_CASE("a leftover old copy of a plugin is ambiguous even by plugin name, and its file name picks one",
          "[plugins]") {
    TempDir dir;
    const std::string current = fixture(dir, "recorder.so");
    const std::string leftover = dir.file("recorder-old.so");  // sorts first: it used to win silently
    fs::copy_file(current, leftover);
    const PluginScan scan = scan_plugins(dir.path());
    CHECK(scan.refused.empty());
    REQUIRE(scan.plugins.size() == 2);

    CHECK(scan.find("recorder") == nullptr);
    CHECK(scan.find("recorder", "recorder") == nullptr);  // both files are plugin "recorder"
    const auto ambiguity = scan.ambiguity("recorder", "recorder");
    REQUIRE(ambiguity);
    CHECK_THAT(*ambiguity, Catch::Contains("projection \"recorder\" of plugin \"recorder\" is declared by both " +
                                           leftover + " and " + current));

    const LoadedPlugin* pinned = scan.find("recorder", "recorder.so");
    REQUIRE(pinned != nullptr);
    CHECK(pinned->file == current);
    CHECK_FALSE(scan.ambiguity("recorder", "recorder.so"));
    CHECK(scan.find("recorder", "nope.so") == nullptr);
    CHECK_FALSE(scan.ambiguity("recorder", "nope.so"));
}

TEST_CASE("a loaded plugin keeps its code when its file is overwritten in place", "[plugins]") {
    TempDir dir;
    const std::string file = fixture(dir, "throwing.so");
    struct stat before {};
    REQUIRE(::stat(file.c_str(), &before) == 0);
    const PluginScan scan = scan_plugins(dir.path());
    REQUIRE(scan.plugins.size() == 1);
    ProjectionInstance instance(scan.plugins[0], "throwing", "{}", "test");

    // Another plugin's (smaller) bytes written into the same inode, as
    // `cp other.so throwing.so` does.
    {
        const std::string other = read_file(FIXTURE_PLUGIN_DIR "/duplicate_projection.so");
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out << other;
    }
    struct stat after {};
    REQUIRE(::stat(file.c_str(), &after) == 0);
    REQUIRE(after.st_ino == before.st_ino);

    // The instance still runs the code it was made from (with the file mapped
    // directly, this call crashed the process).
    orch_event good = make_event(1, "Fine");
    orch_event poison = make_event(2, "Poison");
    CHECK(instance.handle_batch({&good}, nullptr).ok);
    const CallResult failed = instance.handle_batch({&good, &poison}, nullptr);
    CHECK_FALSE(failed.ok);
    CHECK(failed.error == "cannot handle event at position 2");

    // A rescan sees the file's new contents; the running instance is unaffected.
    const PluginScan rescan = scan_plugins(dir.path());
    REQUIRE(rescan.plugins.size() == 1);
    CHECK(rescan.plugins[0].name == "duplicate_projection");
    CHECK(instance.handle_batch({&good, &poison}, nullptr).error == "cannot handle event at position 2");
}

TEST_CASE("rescanning an unchanged file gives back the code already loaded, a file renamed into place is loaded anew",
          "[plugins]") {
    TempDir dir;
    const std::string file = fixture(dir, "recorder.so");
    const PluginScan first = scan_plugins(dir.path());
    const PluginScan second = scan_plugins(dir.path());
    REQUIRE(first.plugins.size() == 1);
    REQUIRE(second.plugins.size() == 1);
    // Otherwise every SIGHUP would restart every running projection.
    CHECK(first.plugins[0].library->same_code_as(*second.plugins[0].library));

    // The same bytes renamed into place are a new file: loaded anew.
    fs::copy_file(FIXTURE_PLUGIN_DIR "/recorder.so", dir.file(".recorder.so.new"));
    fs::rename(dir.file(".recorder.so.new"), file);
    const PluginScan renamed = scan_plugins(dir.path());
    REQUIRE(renamed.plugins.size() == 1);
    CHECK_FALSE(renamed.plugins[0].library->same_code_as(*first.plugins[0].library));
}

TEST_CASE("plugin files writable by others are refused", "[plugins][security]") {
    TempDir dir;
    const std::string file = sample(dir, "event_counter.so");
    ::chmod(file.c_str(), 0757);
    auto scan = scan_plugins(dir.path());
    REQUIRE(refusal(scan, "event_counter.so") != nullptr);
    CHECK_THAT(refusal(scan, "event_counter.so")->reason, Catch::Contains("is writable by everyone (mode 0757)"));
    CHECK(scan.plugins.empty());

    ::chmod(file.c_str(), 0775);
    scan = scan_plugins(dir.path());
    REQUIRE(refusal(scan, "event_counter.so") != nullptr);
    CHECK_THAT(refusal(scan, "event_counter.so")->reason, Catch::Contains("writable by its group"));

    ::chmod(file.c_str(), 0755);
    CHECK(scan_plugins(dir.path()).plugins.size() == 1);
}

TEST_CASE("a plugins directory writable by others is refused as a whole", "[plugins][security]") {
    TempDir dir;
    sample(dir, "event_counter.so");
    ::chmod(dir.path().c_str(), 0777);
    const PluginScan scan = scan_plugins(dir.path());
    REQUIRE(scan.directory_error);
    CHECK_THAT(*scan.directory_error, Catch::Contains(dir.path()));
    CHECK_THAT(*scan.directory_error, Catch::Contains("writable by everyone"));
    CHECK(scan.plugins.empty());
    ::chmod(dir.path().c_str(), 0700);

    const PluginScan missing = scan_plugins(dir.file("nope"));
    REQUIRE(missing.directory_error);
    CHECK_THAT(*missing.directory_error, Catch::Contains("cannot stat"));
}

TEST_CASE("files that are not .so plugins are skipped, broken ones refused, and the rest still load", "[plugins]") {
    TempDir dir;
    sample(dir, "event_counter.so");
    dir.write("README", "not a plugin");
    fixture(dir, "noop.so");
    fs::rename(dir.file("noop.so"), dir.file("noop.so.bak"));  // a real plugin, but not named *.so
    dir.write("garbage.so", "this is not an ELF file");
    ::chmod(dir.file("garbage.so").c_str(), 0644);
    fs::create_directory(dir.file("nested"));
    const PluginScan scan = scan_plugins(dir.path());
    REQUIRE(scan.plugins.size() == 1);
    CHECK(scan.plugins[0].name == "event_counter");
    CHECK(refusal(scan, "README") == nullptr);
    CHECK(refusal(scan, "noop.so.bak") == nullptr);
    CHECK(scan.skipped == std::vector<std::string>{dir.file("README"), dir.file("noop.so.bak")});
    REQUIRE(refusal(scan, "garbage.so") != nullptr);
    CHECK_THAT(refusal(scan, "garbage.so")->reason, Catch::Contains("cannot be loaded"));
    REQUIRE(refusal(scan, "nested") != nullptr);
    CHECK_THAT(refusal(scan, "nested")->reason, Catch::Contains("is a directory"));
    CHECK(scan.refused.size() == 2);
}

TEST_CASE("an exception thrown by a handler becomes an error, not a crash", "[plugins]") {
    TempDir dir;
    fixture(dir, "throwing.so");
    const PluginScan scan = scan_plugins(dir.path());
    REQUIRE(scan.plugins.size() == 1);

    ProjectionInstance instance(scan.plugins[0], "throwing", "{}", "test");
    orch_event good = make_event(1, "Fine");
    orch_event poison = make_event(2, "Poison");
    CHECK(instance.handle_batch({&good}, nullptr).ok);
    const CallResult failed = instance.handle_batch({&good, &poison}, nullptr);
    CHECK_FALSE(failed.ok);
    CHECK(failed.error == "cannot handle event at position 2");
    // The instance is still usable afterwards.
    CHECK(instance.handle_batch({&good}, nullptr).ok);

    ProjectionInstance odd(scan.plugins[0], "throws_non_standard", "{}", "test");
    const CallResult odd_result = odd.handle_batch({&good}, nullptr);
    CHECK_FALSE(odd_result.ok);
    CHECK_THAT(odd_result.error, Catch::Contains("unknown exception"));
}

TEST_CASE("an exception thrown while creating a projection is reported with the plugin file", "[plugins]") {
    TempDir dir;
    fixture(dir, "throwing.so");
    const PluginScan scan = scan_plugins(dir.path());
    REQUIRE(scan.plugins.size() == 1);
    try {
        ProjectionInstance instance(scan.plugins[0], "throwing", R"({"fail_create":true})", "test");
        FAIL("create must fail");
    } catch (const std::runtime_error& e) {
        CHECK_THAT(e.what(), Catch::Contains("could not be created: refusing to start: fail_create is set"));
        CHECK_THAT(e.what(), Catch::Contains("throwing.so"));
    }
    CHECK_THROWS_WITH(ProjectionInstance(scan.plugins[0], "nonexistent", "{}", "test"),
                      Catch::Contains("does not declare projection \"nonexistent\""));
}

TEST_CASE("a projection's bad config is an error from create, naming the key", "[plugins]") {
    TempDir dir;
    sample(dir, "event_counter.so");
    const PluginScan scan = scan_plugins(dir.path());
    REQUIRE(scan.plugins.size() == 1);
    CHECK_THROWS_WITH(ProjectionInstance(scan.plugins[0], "event_counter", R"({"log_every":0})", "test"),
                      Catch::Contains("config.log_every must be positive"));
    CHECK_THROWS_WITH(ProjectionInstance(scan.plugins[0], "event_counter_table", R"({"table":"x; drop"})", "test"),
                      Catch::Contains("config.table"));
}

TEST_CASE("loading plugins leaves nothing behind in the temporary directory", "[plugins]") {
    // Each load copies the file into a private directory made for it
    // (mkdtemp) and removes both right after dlopen.
    TempDir dir;
    TempDir tmp;
    sample(dir, "event_counter.so");
    const char* previous = std::getenv("TMPDIR");
    const std::string saved = previous ? previous : "";
    ::setenv("TMPDIR", tmp.path().c_str(), 1);
    const PluginScan first = scan_plugins(dir.path());
    const PluginScan second = scan_plugins(dir.path());
    if (previous) {
        ::setenv("TMPDIR", saved.c_str(), 1);
    } else {
        ::unsetenv("TMPDIR");
    }
    CHECK(first.plugins.size() == 1);
    CHECK(second.plugins.size() == 1);
    CHECK(std::filesystem::is_empty(tmp.path()));
}

TEST_CASE("a plugin file cut short is refused with what is missing, and the scan goes on", "[plugins]") {
    TempDir dir;
    sample(dir, "event_counter.so");
    const std::string whole = read_file(FIXTURE_PLUGIN_DIR "/throwing.so");
    // Cut inside the program header table and inside the segments (which
    // take the first ~70 % of this file; section headers and symbols follow):
    // the loader would map each as it is and take a SIGBUS on the first page
    // past the end of the file.
    for (const size_t keep : {size_t{100}, whole.size() / 4, whole.size() / 2}) {
        INFO("kept " << keep << " of " << whole.size() << " bytes");
        {
            std::ofstream out(dir.path() + "/throwing.so", std::ios::binary | std::ios::trunc);
            out.write(whole.data(), static_cast<std::streamsize>(keep));
        }
        const PluginScan scan = scan_plugins(dir.path());
        const auto* refused = refusal(scan, "throwing.so");
        REQUIRE(refused != nullptr);
        CHECK_THAT(refused->reason,
                   Catch::Contains("is truncated") && Catch::Contains("of a " + std::to_string(keep) + "-byte file"));
        REQUIRE(scan.plugins.size() == 1);  // the complete plugin beside it loads
        CHECK(scan.plugins[0].name == "event_counter");
    }
}
