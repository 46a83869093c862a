#pragma once
// One live projection object made by a plugin for one replica set. It owns the
// plugin's instance pointer and a reference to the library, and destroys the
// instance before that reference goes, so code is never unloaded under it.
#include <memory>
#include <string>
#include <vector>

#include "plugins/plugin_catalog.hpp"
#include "plugins/sql_session.hpp"

struct orch_event;
struct orch_projection_desc;

namespace orchestratord::plugins {

// Outcome of a plugin callback: ok, or the plugin's error message.
struct CallResult {
    bool ok = true;
    std::string error;
};

class ProjectionInstance {
public:
    // Calls the plugin's create() with config_json; throws std::runtime_error
    // naming the projection and the plugin file when it fails.
    ProjectionInstance(const LoadedPlugin& plugin, const std::string& projection, const std::string& config_json,
                       const std::string& replica_set);
    ~ProjectionInstance();
    ProjectionInstance(const ProjectionInstance&) = delete;
    ProjectionInstance& operator=(const ProjectionInstance&) = delete;

    const std::string& name() const { return name_; }
    const std::string& replica_set() const { return replica_set_; }
    ProjectionMode mode() const { return mode_; }
    const std::string& plugin_file() const;
    const std::string& plugin_name() const { return plugin_name_; }
    const std::string& plugin_version() const { return plugin_version_; }
    const PluginLibrary& library() const { return *library_; }

    // Hands one batch to the plugin. `session` is the batch transaction in
    // transactional mode (required there) and ignored in at-least-once mode.
    CallResult handle_batch(const std::vector<const orch_event*>& events, SqlSession* session);
    // Calls the optional reset(); ok when the plugin has none.
    CallResult reset(SqlSession* session);

private:
    std::shared_ptr<PluginLibrary> library_;
    const orch_projection_desc* desc_;
    std::string name_;
    std::string replica_set_;
    std::string plugin_name_;
    std::string plugin_version_;
    ProjectionMode mode_;
    void* instance_ = nullptr;
    std::shared_ptr<void> host_context_;  // what the plugin's log calls point at
};

}  // namespace orchestratord::plugins
