#pragma once
// What the daemon checks before its event loop runs, in this order: crash
// isolation (before any plugin code runs), the database (reachable, the
// events table usable, the NOTIFY trigger present or not), then the plugins
// (every configured projection is declared by exactly one plugin and its
// instance accepts its configuration). Each outcome is logged; a problem that
// prevents running is logged as critical, one line each.
#include <optional>
#include <string>

#include "config/config.hpp"
#include "plugins/plugin_catalog.hpp"
#include "runtime/projection_set.hpp"

namespace orchestratord::runtime {

struct StartupChecked {
    std::string state_directory;    // empty: crash isolation is off
    bool notify_available = false;  // new events wake the workers; otherwise they poll while idle
    plugins::PluginScan scan;
    ProjectionSet projections;  // one instance per configured projection, no problems
};

// nullopt when the daemon must not start.
std::optional<StartupChecked> run_startup_checks(const config::Config& config);

}  // namespace orchestratord::runtime
