#pragma once
// Finds and loads projection plugins from the plugins directory. Every file is
// checked (ownership and permissions, as sshd's StrictModes does, then the ABI
// descriptor) before anything in it is trusted; a refused file is reported with
// the reason and never aborts the scan.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace orchestratord::plugins {

class PluginLibrary;  // keeps one shared object loaded; see plugin_library.hpp

enum class ProjectionMode { at_least_once, transactional };
const char* mode_name(ProjectionMode mode);

// What one plugin declares about one projection.
struct DeclaredProjection {
    std::string name;
    ProjectionMode mode = ProjectionMode::at_least_once;
    std::vector<std::string> aggregate_types;   // empty = all
    std::vector<std::string> bounded_contexts;  // empty = all
    std::vector<std::string> event_types;       // empty = all
    bool has_reset = false;
};

struct LoadedPlugin {
    std::string file;
    std::string name;
    std::string version;
    uint32_t abi_major = 0;
    uint32_t abi_minor = 0;
    std::vector<DeclaredProjection> projections;
    std::shared_ptr<PluginLibrary> library;
};

struct RefusedPlugin {
    std::string file;
    std::string reason;
};

struct PluginScan {
    std::string directory;
    std::optional<std::string> directory_error;  // the whole directory was refused
    std::vector<LoadedPlugin> plugins;
    std::vector<RefusedPlugin> refused;

    // The plugin declaring `projection` (and named `plugin`, when not empty).
    const LoadedPlugin* find(const std::string& projection, const std::string& plugin = "") const;
};

// Loads one file; returns the refusal reason when it cannot be used.
struct LoadOutcome {
    std::optional<LoadedPlugin> plugin;
    std::string refusal;
};
LoadOutcome load_plugin_file(const std::string& path);

// Loads every *.so in `directory`, in name order. Duplicate plugin or
// projection names refuse the later file.
PluginScan scan_plugins(const std::string& directory);

// Why a path may not be trusted (writable by others than owner/root, wrong owner), or nullopt.
std::optional<std::string> unsafe_permissions(const std::string& path, bool expect_directory);

}  // namespace orchestratord::plugins
