#pragma once
// Finds and loads projection plugins from the plugins directory. Every file is
// checked (ownership and permissions, as sshd's StrictModes does, then the ABI
// descriptor) before anything in it is trusted; a refused file is reported with
// the reason and never aborts the scan. The code that runs is a private copy of
// the checked file, so the file in the plugins directory may change at any time
// without changing the code under the running process.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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
    std::vector<std::string> skipped;  // files that are not *.so (README, x.so.bak): not plugins, ignored

    // The plugin declaring `projection`. `plugin`, when not empty, pins it: a
    // plugin name or a file name in the directory (as the projection's
    // `plugin:` key says). nullptr when no loaded plugin matches, and also
    // when several do: see ambiguity().
    const LoadedPlugin* find(const std::string& projection, const std::string& plugin = "") const;
    // When more than one loaded file declares `projection` (and matches
    // `plugin`): a sentence naming the projection and every such file.
    std::optional<std::string> ambiguity(const std::string& projection, const std::string& plugin = "") const;
    // Every projection declared by more than one file, with those files.
    std::vector<std::pair<std::string, std::vector<std::string>>> declared_more_than_once() const;
};

// Loads one file; returns the refusal reason when it cannot be used. The file
// is opened once; its permissions are checked on that descriptor, and what is
// loaded is a private copy of exactly those bytes (removed again right after
// dlopen, the mapping stays). A file unchanged since an earlier load that is
// still in use (same device, inode, size, mtime and ctime) shares that load.
struct LoadOutcome {
    std::optional<LoadedPlugin> plugin;
    std::string refusal;
};
LoadOutcome load_plugin_file(const std::string& path);

// Loads every *.so in `directory`, in name order. Other files are skipped.
// Several files declaring the same projection all load; which one a
// configured projection uses is decided by find() and ambiguity().
PluginScan scan_plugins(const std::string& directory);

// Why a path may not be trusted (writable by others than owner/root, wrong owner), or nullopt.
std::optional<std::string> unsafe_permissions(const std::string& path, bool expect_directory);

}  // namespace orchestratord::plugins
