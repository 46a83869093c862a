// Plugins are really unloaded and really replaced: a library stays mapped
// exactly as long as something made from it lives, and a new version loaded
// beside a running one brings its own code and descriptor. Both depend on how
// plugins are compiled (orchestratord::plugin_api's options), so the last test
// checks every built plugin for what would defeat them.
#include <catch2/catch.hpp>

#include <link.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "plugins/plugin_catalog.hpp"
#include "plugins/plugin_fixtures.hpp"
#include "plugins/plugin_library.hpp"
#include "plugins/projection_instance.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

using namespace orchestratord::plugins;
using orchestratord::test::install_plugin;
using orchestratord::test::make_event;
using orchestratord::test::read_file;
using orchestratord::test::run_command;
using orchestratord::test::TempDir;
namespace fs = std::filesystem;

namespace {

// Points TMPDIR at a directory of the test's own while it lives. The daemon
// loads the private copy of each plugin from under TMPDIR, so the objects
// mapped from there are exactly the plugins this test loaded.
class PrivateCopies {
public:
    PrivateCopies() {
        if (const char* previous = std::getenv("TMPDIR")) previous_ = previous;
        ::setenv("TMPDIR", dir_.path().c_str(), 1);
    }
    ~PrivateCopies() {
        if (previous_) {
            ::setenv("TMPDIR", previous_->c_str(), 1);
        } else {
            ::unsetenv("TMPDIR");
        }
    }
    PrivateCopies(const PrivateCopies&) = delete;
    PrivateCopies& operator=(const PrivateCopies&) = delete;

    // The shared objects loaded from a private copy made by this test and
    // still mapped in this process (as the dynamic loader lists them).
    std::vector<std::string> mapped() const {
        struct Search {
            std::string prefix;
            std::vector<std::string> found;
        } search{dir_.path() + "/orchestratord-plugin-", {}};
        ::dl_iterate_phdr(
            [](dl_phdr_info* info, size_t, void* data) {
                auto* into = static_cast<Search*>(data);
                const std::string name = info->dlpi_name != nullptr ? info->dlpi_name : "";
                if (name.starts_with(into->prefix)) into->found.push_back(name);
                return 0;
            },
            &search);
        return search.found;
    }

private:
    TempDir dir_;  // made before TMPDIR points at it
    std::optional<std::string> previous_;
};

std::string appending_to(const std::string& file) {
    return R"({"file":")" + file + R"("})";
}

// The symbols of a shared object's dynamic symbol table, as readelf lists them.
struct DynamicSymbol {
    std::string bind;     // GLOBAL, WEAK, UNIQUE, ...
    std::string section;  // UND when the object only refers to it
    std::string name;
};
std::vector<DynamicSymbol> dynamic_symbols(const std::string& file) {
    const auto listed = run_command({"/usr/bin/env", "readelf", "--dyn-syms", "--wide", file});
    INFO(listed.output);
    REQUIRE(listed.status.exited);
    REQUIRE(listed.status.code == 0);
    std::vector<DynamicSymbol> symbols;
    std::istringstream lines(listed.output);
    for (std::string line; std::getline(lines, line);) {
        // "   12: 0000000000001234    16 OBJECT  UNIQUE DEFAULT   14 name"
        std::istringstream fields(line);
        std::string number, value, size, type, vis;
        DynamicSymbol symbol;
        if (!(fields >> number >> value >> size >> type >> symbol.bind >> vis >> symbol.section)) continue;
        if (number.empty() || number.back() != ':') continue;
        fields >> symbol.name;
        symbols.push_back(symbol);
    }
    return symbols;
}

}  // namespace

TEST_CASE("the library stays loaded while a projection instance made from it lives", "[plugins]") {
    PrivateCopies copies;
    TempDir dir;
    install_plugin(dir, SAMPLE_PLUGIN_DIR, "event_counter.so");
    std::unique_ptr<ProjectionInstance> instance;
    {
        const PluginScan scan = scan_plugins(dir.path());
        REQUIRE(scan.plugins.size() == 1);
        REQUIRE(copies.mapped().size() == 1);
        instance = std::make_unique<ProjectionInstance>(scan.plugins[0], "event_counter", "{}", "test");
    }  // the scan, and its reference to the library, are gone here
    // Checked before calling in: calling into an unloaded library would crash.
    if (copies.mapped().size() != 1) {
        (void)instance.release();  // its destructor, too, would call into unmapped code
        FAIL("the library was unloaded while a projection instance made from it lives");
    }
    orch_event event = make_event(1, "Anything");
    CHECK(instance->handle_batch({&event}, nullptr).ok);
    CHECK(instance->reset(nullptr).ok);
    instance.reset();
    // The last user is gone, so the library is unmapped. A plugin with
    // STB_GNU_UNIQUE symbols would stay mapped until the process ends.
    CHECK(copies.mapped().empty());
}

TEST_CASE(
    "a new version renamed over a running plugin is loaded beside it and the old one unloads, with the "
    "projection class at namespace scope",
    "[plugins]") {
    PrivateCopies copies;
    TempDir dir;
    TempDir out;
    const std::string handled = out.file("handled");
    const std::string installed = install_plugin(dir, FIXTURE_PLUGIN_DIR, "order_totals.so", "shop.so");
    auto running_scan = std::make_unique<PluginScan>(scan_plugins(dir.path()));
    REQUIRE(running_scan->plugins.size() == 1);
    CHECK(running_scan->plugins[0].version == "1.0.0");
    auto running =
        std::make_unique<ProjectionInstance>(running_scan->plugins[0], "order_totals", appending_to(handled), "test");

    // Installed as docs/plugins.md says (a temporary name renamed into
    // place), then rescanned as SIGHUP does: while version 1 still runs.
    const std::string staged = install_plugin(dir, FIXTURE_PLUGIN_DIR "-v2", "order_totals.so", ".shop.so.new");
    fs::rename(staged, installed);
    const PluginScan fresh = scan_plugins(dir.path());
    REQUIRE(fresh.plugins.size() == 1);
    const LoadedPlugin& v2 = fresh.plugins[0];
    CHECK(v2.version == "2.0.0");
    REQUIRE(v2.projections.size() == 1);
    CHECK(v2.projections[0].event_types == std::vector<std::string>{"OrderPlaced", "OrderCancelled"});
    // What the daemon checks before it switches a projection to the new file.
    CHECK_FALSE(v2.library->same_code_as(running->library()));
    CHECK(copies.mapped().size() == 2);

    // Each instance runs its own version's code.
    auto next = std::make_unique<ProjectionInstance>(v2, "order_totals", appending_to(handled), "test");
    orch_event first = make_event(1, "OrderPlaced");
    orch_event second = make_event(2, "OrderPlaced");
    CHECK(running->handle_batch({&first}, nullptr).ok);
    CHECK(next->handle_batch({&second}, nullptr).ok);
    CHECK(read_file(handled) == "1.0.0 1\n2.0.0 2\n");

    // The switch: once version 1's instance and scan are gone, only version 2 stays mapped.
    running.reset();
    running_scan.reset();
    REQUIRE(copies.mapped().size() == 1);
    orch_event third = make_event(3, "OrderCancelled");
    CHECK(next->handle_batch({&third}, nullptr).ok);
    CHECK(read_file(handled) == "1.0.0 1\n2.0.0 2\n2.0.0 3\n");
}

TEST_CASE("no built plugin has STB_GNU_UNIQUE symbols, and each exports its entry function", "[plugins]") {
    // A UNIQUE symbol keeps its library mapped until the process ends and is
    // shared by every later library defining it, whatever RTLD_LOCAL says:
    // the daemon could neither unload nor replace such a plugin.
    std::vector<fs::path> plugins;
    for (const char* dir : {SAMPLE_PLUGIN_DIR, FIXTURE_PLUGIN_DIR, FIXTURE_PLUGIN_DIR "-v2"}) {
        for (const auto& entry : fs::directory_iterator(dir)) {
            if (entry.path().extension() == ".so") plugins.push_back(entry.path());
        }
    }
    // The samples and fixtures, not an empty directory.
    REQUIRE(plugins.size() >= 10);
    for (const auto& plugin : plugins) {
        INFO(plugin.string());
        std::vector<std::string> unique;
        bool exports_entry = false;
        for (const auto& symbol : dynamic_symbols(plugin)) {
            if (symbol.bind == "UNIQUE") unique.push_back(symbol.name);
            if (symbol.name == ORCH_PLUGIN_ENTRY_SYMBOL && symbol.bind == "GLOBAL" && symbol.section != "UND") {
                exports_entry = true;
            }
        }
        CHECK(unique == std::vector<std::string>{});
        // missing_entry.so is the fixture for a plugin without one.
        if (plugin.filename() != "missing_entry.so") CHECK(exports_entry);
    }
}
