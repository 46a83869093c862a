#include "runtime/plugin_reload.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <string>

#include "plugins/plugin_library.hpp"
#include "plugins/projection_instance.hpp"
#include "runtime/projection_runner.hpp"
#include "runtime/projection_set.hpp"

namespace orchestratord::runtime {
namespace {

// Logs every plugin that is new, changed or gone; true when there is one.
bool log_plugin_changes(const plugins::PluginScan& before, const plugins::PluginScan& after) {
    std::map<std::string, std::string> old_versions;  // plugin name -> version@file
    for (const auto& plugin : before.plugins) old_versions[plugin.name] = plugin.version + "@" + plugin.file;
    bool changed = false;
    for (const auto& plugin : after.plugins) {
        auto found = old_versions.find(plugin.name);
        if (found == old_versions.end()) {
            spdlog::info("new plugin plugin={} version={} file={}", plugin.name, plugin.version, plugin.file);
            changed = true;
        } else if (found->second != plugin.version + "@" + plugin.file) {
            spdlog::info("plugin changed plugin={} was={} now={}@{}", plugin.name, found->second, plugin.version,
                         plugin.file);
            changed = true;
        }
        old_versions.erase(plugin.name);
    }
    for (const auto& [name, where] : old_versions) {
        spdlog::warn("plugin gone plugin={} was={}", name, where);
        changed = true;
    }
    return changed;
}

// Says which configured projections the new scan no longer provides, without
// creating instances that would only be thrown away.
void log_missing_projections(const config::Config& config, const plugins::PluginScan& scan) {
    for (const auto& replica_set : config.replica_sets) {
        for (const auto& projection : replica_set.projections) {
            if (scan.find(projection.name, projection.plugin) != nullptr) continue;
            if (auto ambiguity = scan.ambiguity(projection.name, projection.plugin)) {
                spdlog::error("reload refused: replica set \"{}\": {}; the running version continues", replica_set.name,
                              *ambiguity);
            } else {
                spdlog::error(
                    "reload: replica set \"{}\": projection \"{}\" is no longer declared by any plugin in {}; "
                    "the running instance continues until a restart",
                    replica_set.name, projection.name, scan.directory);
            }
        }
    }
}

}  // namespace

void PluginReload::rescan(const config::Config& config, const std::vector<std::unique_ptr<ProjectionRunner>>& runners) {
    plugins::PluginScan fresh = plugins::scan_plugins(config.plugins.directory);
    log_plugin_scan(fresh);
    const bool changed = log_plugin_changes(scan_, fresh);
    log_missing_projections(config, fresh);
    for (const auto& runner : runners) {
        const std::string& name = runner->name();
        const plugins::LoadedPlugin* plugin = fresh.find(name, runner->projection().plugin);
        if (plugin == nullptr || plugin->library->same_code_as(runner->instance().library())) continue;
        try {
            auto next = std::make_unique<plugins::ProjectionInstance>(*plugin, name, runner->projection().config_json,
                                                                      runner->replica_set());
            runner->replace_instance(std::move(next), declared_scope(*plugin, name));
            runner->report_plugin(plugin->name, plugin->version);
            spdlog::info(
                "reload: replica set \"{}\": projection \"{}\" switches to plugin {} version {} at its next "
                "batch boundary",
                runner->replica_set(), name, plugin->name, plugin->version);
        } catch (const std::exception& e) {
            spdlog::error(
                "reload: replica set \"{}\": the new version of projection \"{}\" refused to start, "
                "the running one continues: {}",
                runner->replica_set(), name, e.what());
        }
    }
    if (changed) spdlog::info("projections added to or removed from the configuration take effect after a restart");
    scan_ = std::move(fresh);
}

}  // namespace orchestratord::runtime
