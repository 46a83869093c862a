#pragma once
// The plugins the daemon runs with, and what a SIGHUP does to them: the
// plugins directory is scanned again, what changed is logged, and a running
// projection whose plugin now has different code gets a new instance, which
// takes over at its next batch boundary. Projections added to or removed from
// the configuration take effect after a restart.
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "plugins/plugin_catalog.hpp"

namespace orchestratord::runtime {

class ProjectionRunner;

class PluginReload {
public:
    explicit PluginReload(plugins::PluginScan scan) : scan_(std::move(scan)) {}

    const plugins::PluginScan& scan() const { return scan_; }

    // Rescans config.plugins.directory and hands changed plugins to `runners`.
    // A library of the previous scan is unloaded once no instance uses it.
    void rescan(const config::Config& config, const std::vector<std::unique_ptr<ProjectionRunner>>& runners);

private:
    plugins::PluginScan scan_;
};

}  // namespace orchestratord::runtime
