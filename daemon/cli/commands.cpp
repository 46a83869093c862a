#include "cli/commands.hpp"

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/check_config.hpp"
#include "cli/config_or_error.hpp"
#include "cli/status_report.hpp"
#include "config/loader.hpp"
#include "pg/blocking_connection.hpp"
#include "plugins/plugin_catalog.hpp"
#include "runtime/daemon.hpp"
#include "store/event_store_check.hpp"
#include "store/migrations.hpp"
#include "store/pg_names.hpp"

namespace orchestratord::cli {
namespace {

int list_plugins(const config::LoadOptions& options, std::string directory, bool json) {
    if (directory.empty()) {
        try {
            directory = config::load_config(options).plugins.directory;
        } catch (const config::ConfigError& e) {
            std::cerr << e.what() << "\n(use --directory to list a plugins directory without a valid configuration)\n";
            return 1;
        }
    }
    const plugins::PluginScan scan = plugins::scan_plugins(directory);
    if (json) {
        nlohmann::json out{
            {"directory", directory}, {"plugins", nlohmann::json::array()}, {"refused", nlohmann::json::array()}};
        if (scan.directory_error) out["error"] = *scan.directory_error;
        for (const auto& plugin : scan.plugins) {
            nlohmann::json projections = nlohmann::json::array();
            for (const auto& p : plugin.projections) {
                projections.push_back({{"name", p.name},
                                       {"mode", plugins::mode_name(p.mode)},
                                       {"aggregate_types", p.aggregate_types},
                                       {"bounded_contexts", p.bounded_contexts},
                                       {"event_types", p.event_types},
                                       {"reset", p.has_reset}});
            }
            out["plugins"].push_back(
                {{"file", plugin.file},
                 {"name", plugin.name},
                 {"version", plugin.version},
                 {"abi", std::to_string(plugin.abi_major) + "." + std::to_string(plugin.abi_minor)},
                 {"projections", projections}});
        }
        for (const auto& refused : scan.refused)
            out["refused"].push_back({{"file", refused.file}, {"reason", refused.reason}});
        out["declared_more_than_once"] = nlohmann::json::array();
        for (const auto& [projection, files] : scan.declared_more_than_once())
            out["declared_more_than_once"].push_back({{"projection", projection}, {"files", files}});
        std::cout << out.dump(2) << "\n";
    } else {
        if (scan.directory_error) {
            std::cerr << *scan.directory_error << "\n";
            return 1;
        }
        std::cout << "plugins in " << directory << ":\n";
        if (scan.plugins.empty()) std::cout << "  (none)\n";
        for (const auto& plugin : scan.plugins) {
            std::cout << "  " << plugin.name << " " << plugin.version << " (ABI " << plugin.abi_major << "."
                      << plugin.abi_minor << ") " << plugin.file << "\n";
            for (const auto& p : plugin.projections) {
                std::cout << "    projection " << p.name << " mode=" << plugins::mode_name(p.mode);
                auto scope = [&](const char* label, const std::vector<std::string>& items) {
                    if (items.empty()) return;
                    std::cout << " " << label << "=";
                    for (size_t i = 0; i < items.size(); ++i) std::cout << (i ? "," : "") << items[i];
                };
                scope("aggregate_types", p.aggregate_types);
                scope("bounded_contexts", p.bounded_contexts);
                scope("event_types", p.event_types);
                std::cout << (p.has_reset ? " reset=yes" : "") << "\n";
            }
        }
        for (const auto& refused : scan.refused) {
            std::cout << "  refused " << refused.file << ": " << refused.reason << "\n";
        }
        // Not an error by itself: a projection's plugin: key may pick one.
        for (const auto& several : scan.declared_more_than_once()) {
            std::cout << "  ambiguous: " << *scan.ambiguity(several.first) << "\n";
        }
    }
    return scan.directory_error || !scan.refused.empty() ? 1 : 0;
}

// PostgreSQL refuses PREPARE TRANSACTION in a transaction that sent NOTIFY,
// and with the trigger every INSERT into the events table sends one. A server
// that allows prepared transactions suggests the application may use them.
void warn_about_two_phase_commit(pg::BlockingConnection& connection, const config::EventStoreConfig& store) {
    const auto rows =
        connection.exec("SELECT current_setting('max_prepared_transactions')", {}, "read max_prepared_transactions");
    const std::string allowed = rows.at(0, 0).value_or("0");
    if (allowed == "0") return;
    const std::string events = store::qualified(store, store.events_table);
    std::cerr << "warning: this server allows two-phase commit (max_prepared_transactions=" << allowed
              << "): with the NOTIFY trigger, PREPARE TRANSACTION fails in every transaction that inserts into "
              << events
              << " (\"cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY\"). If the "
                 "application prepares such transactions, remove the trigger (DROP TRIGGER "
              << store::quote_identifier(store::notify_trigger_name(store)) << " ON " << events
              << ";); orchestratord then polls for new events.\n";
}

int run_migrate(config::LoadOptions options, bool print_only, bool with_trigger) {
    // Printing the SQL connects nowhere and runs no worker.
    if (print_only) options.workers_required = false;
    const auto loaded = config_or_error(options);
    if (!loaded) return 1;
    const config::Config& config = *loaded;
    if (print_only) {
        std::cout << store::migration_script(config.event_store, with_trigger);
        return 0;
    }
    try {
        pg::BlockingConnection connection(config.database.url);
        const auto report = store::migrate(connection, config.event_store, with_trigger);
        if (report.applied.empty()) std::cout << "schema " << config.event_store.schema << " is up to date\n";
        for (const auto& applied : report.applied) std::cout << "applied " << applied << "\n";
        if (with_trigger) warn_about_two_phase_commit(connection, config.event_store);
        const auto problems = store::event_store_problems(connection, config.event_store);
        for (const auto& problem : problems) std::cerr << "error: " << problem << "\n";
        return problems.empty() ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "migrate failed: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"orchestratord: runs event-sourcing projections over a PostgreSQL event store", "orchestratord"};
    app.set_version_flag("--version", std::string(ORCHESTRATORD_VERSION));
    std::string config_path;
    app.add_option("-c,--config", config_path,
                   "configuration file (default: $ORCHESTRATORD_CONFIG, else /etc/orchestratord/orchestratord.yaml)");
    app.require_subcommand(0, 1);
    // `orchestratord check-config --config X` must work as well as `orchestratord --config X check-config`.
    app.fallthrough();

    app.add_subcommand("run", "run the daemon (the default)");
    auto* check = app.add_subcommand("check-config", "validate and print the effective configuration and its sources");
    CheckConfigOptions check_options;
    check->add_flag("--keys", check_options.keys_only, "print every configuration key as a Markdown table instead");
    check->add_flag("--plugins", check_options.plugins,
                    "also load the plugins and make every configured projection (runs plugin code)");
    check->add_flag("--connect", check_options.connect,
                    "also connect to PostgreSQL and check the events table and the migrations");

    auto* plugins_cmd = app.add_subcommand("plugins", "inspect the plugins directory");
    plugins_cmd->require_subcommand(1);
    auto* list = plugins_cmd->add_subcommand("list", "show every plugin and projection found, and every file refused");
    std::string directory;
    bool json = false;
    list->add_option("--directory", directory, "plugins directory (default: plugins.directory from the configuration)");
    list->add_flag("--json", json, "print JSON");

    auto* status = app.add_subcommand(
        "status", "show every replica set's workers and each projection's checkpoint, lag and state");
    bool status_json = false;
    status->add_flag("--json", status_json, "print JSON");

    auto* migrate = app.add_subcommand("migrate", "create the event store (when absent) and orchestratord's tables");
    bool print_only = false;
    bool with_trigger = false;
    migrate->add_flag("--print", print_only, "print the SQL instead of running it");
    migrate->add_flag("--with-notify-trigger", with_trigger,
                      "also install a statement-level NOTIFY trigger on the events table (faster wake-ups)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    const config::LoadOptions options = config::resolve_load_options(config_path, config::process_environment());
    if (check->parsed()) return check_config(options, check_options);
    if (list->parsed()) return list_plugins(options, directory, json);
    if (migrate->parsed()) return run_migrate(options, print_only, with_trigger);
    if (status->parsed()) {
        const auto loaded = config_or_error(options);
        return loaded ? print_status(*loaded, status_json) : 1;
    }
    return runtime::run_daemon(options);
}

}  // namespace orchestratord::cli
