#include "cli/check_config.hpp"

#include <iostream>
#include <string>
#include <vector>

#include "cli/config_or_error.hpp"
#include "config/key_reference.hpp"
#include "pg/blocking_connection.hpp"
#include "pg/conninfo.hpp"
#include "plugins/plugin_catalog.hpp"
#include "runtime/projection_set.hpp"
#include "store/event_store_check.hpp"
#include "store/migrations.hpp"

namespace orchestratord::cli {
namespace {

// Loads the plugins and makes each configured projection, as the daemon does
// at start; every refusal and every projection that cannot be made is a problem.
std::vector<std::string> plugin_problems(const config::Config& config) {
    const plugins::PluginScan scan = plugins::scan_plugins(config.plugins.directory);
    std::vector<std::string> problems;
    if (scan.directory_error) return {*scan.directory_error};
    for (const auto& refused : scan.refused)
        problems.push_back("plugin " + refused.file + " refused: " + refused.reason);
    const runtime::ProjectionSet projections = runtime::build_projection_set(config, scan);
    problems.insert(problems.end(), projections.problems.begin(), projections.problems.end());
    if (problems.empty()) {
        std::cerr << "plugins: " << scan.plugins.size() << " loaded from " << config.plugins.directory
                  << "; every configured projection has its plugin\n";
    }
    return problems;
}

// Connects as the daemon would and checks what it needs before it starts.
std::vector<std::string> database_problems(const config::Config& config) {
    try {
        pg::BlockingConnection connection(config.database.url);
        std::vector<std::string> problems = store::event_store_problems(connection, config.event_store);
        const std::vector<int> pending = store::pending_migrations(connection, config.event_store);
        if (!pending.empty()) {
            std::string versions;
            for (int version : pending) {
                if (!versions.empty()) versions += ',';
                versions += std::to_string(version);
            }
            problems.push_back("schema " + config.event_store.schema + " lacks orchestratord's migrations " + versions +
                               ": run orchestratord migrate");
        }
        if (problems.empty()) {
            std::cerr << "database: connected to " << pg::mask_conninfo(config.database.url)
                      << "; the events table and orchestratord's tables are ready\n";
        }
        return problems;
    } catch (const std::exception& e) {
        return {e.what()};
    }
}

}  // namespace

int check_config(const config::LoadOptions& options, const CheckConfigOptions& check) {
    if (check.keys_only) {
        std::cout << config::describe_keys_markdown();
        return 0;
    }
    const auto loaded = config_or_error(options);
    if (!loaded) return 1;
    const config::Config& config = *loaded;
    std::cout << "# effective configuration"
              << (config.file.empty() ? " (no config file; environment and defaults)" : " from " + config.file) << "\n"
              << config::format_settings(config);
    for (const auto& warning : config.warnings) std::cerr << "warning: " << warning << "\n";

    // Without running anything: the directory the daemon loads plugins from.
    std::vector<std::string> problems;
    if (auto unsafe = plugins::unsafe_permissions(config.plugins.directory, true)) {
        problems.push_back("plugins.directory: " + config.plugins.directory + " " + *unsafe);
    } else if (check.plugins) {
        for (auto& problem : plugin_problems(config)) problems.push_back(std::move(problem));
    }
    if (check.connect) {
        for (auto& problem : database_problems(config)) problems.push_back(std::move(problem));
    }
    if (!problems.empty()) {
        std::cerr << "the configuration cannot run:\n";
        for (const auto& problem : problems) std::cerr << "  " << problem << "\n";
        return 1;
    }
    std::cerr << "configuration is valid"
              << (check.plugins || check.connect ? ""
                                                 : " (check-config --plugins --connect also loads the plugins and "
                                                   "connects to the database)")
              << "\n";
    return 0;
}

}  // namespace orchestratord::cli
