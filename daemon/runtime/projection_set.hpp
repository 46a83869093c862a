#pragma once
// The projection instances a configuration asks for, made from the plugins
// found in the plugins directory: one instance per (replica set, projection).
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "plugins/plugin_catalog.hpp"
#include "plugins/projection_instance.hpp"
#include "store/gap_safe_reader.hpp"

namespace orchestratord::runtime {

struct ProjectionSet {
    std::vector<std::unique_ptr<plugins::ProjectionInstance>> instances;
    std::vector<std::string> problems;  // configured projections that could not be made, one sentence each
};

ProjectionSet build_projection_set(const config::Config& config, const plugins::PluginScan& scan);

// The scope a plugin declares for `projection` (empty lists: everything).
store::Scope declared_scope(const plugins::LoadedPlugin& plugin, const std::string& projection);

// Logs the outcome of a plugin scan: one line per plugin loaded, one error per file refused.
void log_plugin_scan(const plugins::PluginScan& scan);

}  // namespace orchestratord::runtime
