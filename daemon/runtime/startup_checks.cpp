#include "runtime/startup_checks.hpp"

#include <spdlog/spdlog.h>

#include "pg/blocking_connection.hpp"
#include "pg/conninfo.hpp"
#include "runtime/crash_breadcrumb.hpp"
#include "store/event_store_check.hpp"
#include "store/status_queries.hpp"

namespace orchestratord::runtime {
namespace {

// A crash in a handler is logged with the events it was given, and leaves a
// breadcrumb for the next start. Returns the state directory, empty when
// crash isolation is off.
std::string start_crash_isolation(const config::Config& config) {
    std::string problem;
    if (install_crash_handler(config.state_directory, problem)) {
        spdlog::info("crash isolation is on state_directory={}", config.state_directory);
        return config.state_directory;
    }
    spdlog::warn(
        "{}; crash isolation is off: a projection handler that crashes the process is logged, but the next start "
        "calls it on the same events again",
        problem);
    return {};
}

// Fails fast and clearly when PostgreSQL cannot be reached: the operator sees
// the masked URL and libpq's reason in one line. Returns whether the NOTIFY
// trigger is installed; nullopt when the daemon cannot start.
std::optional<bool> check_database(const config::Config& config) {
    try {
        pg::BlockingConnection connection(config.database.url);
        const auto who = store::connected_as(connection);
        spdlog::info("connected to PostgreSQL server_version={} database={} user={} url={}",
                     connection.server_version(), who.database, who.user, pg::mask_conninfo(config.database.url));
        const auto problems = store::event_store_problems(connection, config.event_store);
        for (const auto& problem : problems) spdlog::critical("cannot start: {}", problem);
        if (!problems.empty()) return std::nullopt;
        const bool notify = store::notify_trigger_installed(connection, config.event_store);
        spdlog::info("{} events_table={}.{}",
                     notify ? "new events wake the workers through NOTIFY"
                            : "no NOTIFY trigger (orchestratord migrate --with-notify-trigger); polling while idle",
                     config.event_store.schema, config.event_store.events_table);
        return notify;
    } catch (const std::exception& e) {
        spdlog::critical("cannot start: {}", e.what());
        return std::nullopt;
    }
}

}  // namespace

std::optional<StartupChecked> run_startup_checks(const config::Config& config) {
    StartupChecked checked;
    checked.state_directory = start_crash_isolation(config);
    const auto notify = check_database(config);
    if (!notify) return std::nullopt;
    checked.notify_available = *notify;

    checked.scan = plugins::scan_plugins(config.plugins.directory);
    log_plugin_scan(checked.scan);
    checked.projections = build_projection_set(config, checked.scan);
    if (!checked.projections.problems.empty()) {
        for (const auto& problem : checked.projections.problems) spdlog::critical("cannot start: {}", problem);
        return std::nullopt;
    }
    return checked;
}

}  // namespace orchestratord::runtime
