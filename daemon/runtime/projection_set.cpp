#include "runtime/projection_set.hpp"
#include "log/quoted.hpp"

#include <spdlog/spdlog.h>

namespace orchestratord::runtime {

ProjectionSet build_projection_set(const config::Config& config, const plugins::PluginScan& scan) {
    ProjectionSet set;
    for (const auto& replica_set : config.replica_sets) {
        for (const auto& projection : replica_set.projections) {
            const plugins::LoadedPlugin* plugin = scan.find(projection.name, projection.plugin);
            if (plugin == nullptr) {
                if (auto ambiguity = scan.ambiguity(projection.name, projection.plugin)) {
                    set.problems.push_back("replica set \"" + replica_set.name + "\": " + *ambiguity);
                    continue;
                }
                set.problems.push_back("replica set \"" + replica_set.name + "\": projection \"" + projection.name +
                                       "\"" +
                                       (projection.plugin.empty() ? "" : " of plugin \"" + projection.plugin + "\"") +
                                       " is not declared by any plugin loaded from " + scan.directory);
                continue;
            }
            try {
                set.instances.push_back(std::make_unique<plugins::ProjectionInstance>(
                    *plugin, projection.name, projection.config_json, replica_set.name));
            } catch (const std::exception& e) {
                set.problems.push_back("replica set \"" + replica_set.name + "\": " + e.what());
            }
        }
    }
    return set;
}

store::Scope declared_scope(const plugins::LoadedPlugin& plugin, const std::string& projection) {
    for (const auto& declared : plugin.projections) {
        if (declared.name == projection)
            return {declared.aggregate_types, declared.bounded_contexts, declared.event_types};
    }
    return {};
}

void log_plugin_scan(const plugins::PluginScan& scan) {
    if (scan.directory_error) {
        spdlog::error("refusing the plugins directory: {}", *scan.directory_error);
        return;
    }
    for (const auto& plugin : scan.plugins) {
        std::string names;
        for (const auto& projection : plugin.projections) {
            if (!names.empty()) names += ',';
            names += projection.name;
        }
        spdlog::info("loaded plugin plugin={} version={} abi={}.{} projections={} file={}", plugin.name, plugin.version,
                     plugin.abi_major, plugin.abi_minor, names, plugin.file);
    }
    for (const auto& refused : scan.refused) {
        spdlog::error("refused plugin file={} reason={}", refused.file, log::quoted(refused.reason));
    }
    for (const auto& file : scan.skipped) spdlog::debug("ignoring a file that is not a *.so plugin file={}", file);
}

}  // namespace orchestratord::runtime
