#include "plugins/plugin_catalog.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>

#include "plugins/file_descriptor.hpp"
#include "plugins/plugin_library.hpp"
#include "plugins/private_copy.hpp"

namespace orchestratord::plugins {
namespace fs = std::filesystem;

const char* mode_name(ProjectionMode mode) {
    return mode == ProjectionMode::transactional ? "transactional" : "at-least-once";
}

const orch_projection_desc* PluginLibrary::projection(const std::string& name) const {
    for (size_t i = 0; i < descriptor_->projection_count; ++i) {
        const orch_projection_desc* projection = descriptor_->projections[i];
        if (projection != nullptr && projection->name != nullptr && name == projection->name) return projection;
    }
    return nullptr;
}

namespace {

// Whether the projection's `plugin:` key picks this file: it names either the
// plugin (its declared name) or the file (its name in the plugins directory).
bool pinned_by(const LoadedPlugin& loaded, const std::string& plugin) {
    return plugin.empty() || loaded.name == plugin || fs::path(loaded.file).filename() == plugin;
}

std::vector<const LoadedPlugin*> declaring(const PluginScan& scan, const std::string& projection,
                                           const std::string& plugin) {
    std::vector<const LoadedPlugin*> found;
    for (const auto& loaded : scan.plugins) {
        if (!pinned_by(loaded, plugin)) continue;
        for (const auto& declared : loaded.projections) {
            if (declared.name == projection) {
                found.push_back(&loaded);
                break;
            }
        }
    }
    return found;
}

std::string list_files(const std::vector<std::string>& files) {
    std::string text;
    for (size_t i = 0; i < files.size(); ++i) {
        if (i > 0) text += i + 1 == files.size() ? " and " : ", ";
        text += files[i];
    }
    return text;
}

}  // namespace

const LoadedPlugin* PluginScan::find(const std::string& projection, const std::string& plugin) const {
    const auto found = declaring(*this, projection, plugin);
    // Two files declaring one projection are refused rather than resolved by
    // name order: a leftover x-old.so must never silently win over x.so.
    return found.size() == 1 ? found.front() : nullptr;
}

std::optional<std::string> PluginScan::ambiguity(const std::string& projection, const std::string& plugin) const {
    const auto found = declaring(*this, projection, plugin);
    if (found.size() < 2) return std::nullopt;
    std::vector<std::string> files;
    for (const auto* loaded : found) files.push_back(loaded->file);
    return "projection \"" + projection + "\"" + (plugin.empty() ? "" : " of plugin \"" + plugin + "\"") +
           " is declared by " + (files.size() == 2 ? "both " : "each of ") + list_files(files) +
           "; remove all but one of them, or pin one with the projection's plugin: key (its file name, e.g. plugin: " +
           fs::path(files.back()).filename().string() + ")";
}

std::vector<std::pair<std::string, std::vector<std::string>>> PluginScan::declared_more_than_once() const {
    std::map<std::string, std::vector<std::string>> files_by_projection;
    for (const auto& loaded : plugins) {
        for (const auto& declared : loaded.projections) files_by_projection[declared.name].push_back(loaded.file);
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> several;
    for (auto& [projection, files] : files_by_projection) {
        if (files.size() > 1) several.emplace_back(projection, std::move(files));
    }
    return several;
}

namespace {

std::optional<std::string> unsafe_status(const struct stat& info, bool expect_directory) {
    if (expect_directory && !S_ISDIR(info.st_mode)) return std::string("is not a directory");
    if (!expect_directory && !S_ISREG(info.st_mode)) return std::string("is not a regular file");
    const uid_t me = ::geteuid();
    if (info.st_uid != 0 && info.st_uid != me) {
        return "is owned by uid " + std::to_string(info.st_uid) + ", neither root nor the daemon's user (uid " +
               std::to_string(me) + ")";
    }
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
        return std::string("is writable by ") + ((info.st_mode & S_IWOTH) != 0 ? "everyone" : "its group") + " (mode " +
               mode + "); run chmod go-w on it";
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string> unsafe_permissions(const std::string& path, bool expect_directory) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) return std::string("cannot stat: ") + std::strerror(errno);
    return unsafe_status(info, expect_directory);
}

namespace {

const std::regex& name_pattern() {
    static const std::regex pattern(R"([A-Za-z0-9_][A-Za-z0-9_.-]{0,99})");
    return pattern;
}

std::vector<std::string> c_list(const char* const* list) {
    std::vector<std::string> items;
    for (; list != nullptr && *list != nullptr; ++list) items.emplace_back(*list);
    return items;
}

// Checks the descriptor the way PostgreSQL checks module magic: size and ABI
// version first, then every field this host will read.
std::optional<std::string> check_descriptor(const orch_plugin_desc* desc) {
    if (desc == nullptr) return "its entry function returned no descriptor";
    constexpr size_t header = offsetof(orch_plugin_desc, abi_minor) + sizeof(uint32_t);
    if (desc->struct_size < header) {
        return "its descriptor is too small (" + std::to_string(desc->struct_size) +
               " bytes); not an orchestratord plugin?";
    }
    const std::string plugin_abi = std::to_string(desc->abi_major) + "." + std::to_string(desc->abi_minor);
    const std::string host_abi = std::to_string(ORCH_PLUGIN_ABI_MAJOR) + "." + std::to_string(ORCH_PLUGIN_ABI_MINOR);
    if (desc->abi_major != ORCH_PLUGIN_ABI_MAJOR) {
        return "it was built for plugin ABI " + plugin_abi + " but this orchestratord provides ABI " + host_abi +
               "; rebuild it against this orchestratord's plugin-api";
    }
    if (desc->abi_minor > ORCH_PLUGIN_ABI_MINOR) {
        return "it needs plugin ABI " + plugin_abi + " but this orchestratord provides only ABI " + host_abi +
               "; upgrade orchestratord";
    }
    if (desc->struct_size < sizeof(orch_plugin_desc)) {
        return "its descriptor is " + std::to_string(desc->struct_size) + " bytes, ABI " + plugin_abi + " needs " +
               std::to_string(sizeof(orch_plugin_desc));
    }
    if (desc->plugin_name == nullptr || !std::regex_match(desc->plugin_name, name_pattern())) {
        return "its plugin name is missing or invalid (use letters, digits, '_', '-', '.')";
    }
    if (desc->projection_count == 0 || desc->projections == nullptr) return "it declares no projections";
    for (size_t i = 0; i < desc->projection_count; ++i) {
        const orch_projection_desc* projection = desc->projections[i];
        const std::string which = "projection #" + std::to_string(i + 1);
        if (projection == nullptr) return which + " is NULL";
        if (projection->struct_size < sizeof(orch_projection_desc)) {
            return which + " has a descriptor of " + std::to_string(projection->struct_size) + " bytes, expected " +
                   std::to_string(sizeof(orch_projection_desc));
        }
        if (projection->name == nullptr || !std::regex_match(projection->name, name_pattern())) {
            return which + " has a missing or invalid name (use letters, digits, '_', '-', '.')";
        }
        const std::string named = std::string("projection \"") + projection->name + "\"";
        if (projection->mode != ORCH_MODE_AT_LEAST_ONCE && projection->mode != ORCH_MODE_TRANSACTIONAL) {
            return named + " has unknown mode " + std::to_string(projection->mode);
        }
        if (projection->create == nullptr) return named + " has no create callback";
        if (projection->handle_batch == nullptr) return named + " has no handle_batch callback";
        if (projection->destroy == nullptr) return named + " has no destroy callback";
        for (size_t j = 0; j < i; ++j) {
            if (std::strcmp(desc->projections[j]->name, projection->name) == 0) {
                return named + " is declared twice";
            }
        }
    }
    return std::nullopt;
}

}  // namespace

LoadOutcome load_plugin_file(const std::string& path) {
    LoadOutcome outcome;
    // Opened once: the checks below and the copy that is loaded are of this
    // one file, whatever is renamed over the path meanwhile. O_NONBLOCK: a
    // FIFO must not hang the scan (it is refused as not a regular file).
    const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    struct stat info {};
    if (fd.get() < 0 || ::fstat(fd.get(), &info) != 0) {
        outcome.refusal = std::string("cannot be opened: ") + std::strerror(errno);
        return outcome;
    }
    if (auto unsafe = unsafe_status(info, false)) {
        outcome.refusal = *unsafe;
        return outcome;
    }
    OpenedLibrary opened = load_private_copy(path, fd.get(), info);
    if (!opened.library) {
        outcome.refusal = opened.refusal;
        return outcome;
    }
    const std::shared_ptr<boost::dll::shared_library> library = std::move(opened.library);
    if (!library->has(ORCH_PLUGIN_ENTRY_SYMBOL)) {
        outcome.refusal = std::string("has no entry function ") + ORCH_PLUGIN_ENTRY_SYMBOL +
                          " (export it with ORCHESTRATORD_PLUGIN(...))";
        return outcome;
    }
    const orch_plugin_desc* desc = nullptr;
    try {
        desc = library->get<const orch_plugin_desc*()>(ORCH_PLUGIN_ENTRY_SYMBOL)();
    } catch (const std::exception& e) {
        outcome.refusal = std::string("its entry function threw: ") + e.what();
        return outcome;
    } catch (...) {
        outcome.refusal = "its entry function threw an unknown exception";
        return outcome;
    }
    if (auto problem = check_descriptor(desc)) {
        outcome.refusal = *problem;
        return outcome;
    }

    LoadedPlugin plugin;
    plugin.file = path;
    plugin.name = desc->plugin_name;
    plugin.version = desc->plugin_version != nullptr ? desc->plugin_version : "";
    plugin.abi_major = desc->abi_major;
    plugin.abi_minor = desc->abi_minor;
    for (size_t i = 0; i < desc->projection_count; ++i) {
        const orch_projection_desc* projection = desc->projections[i];
        DeclaredProjection declared;
        declared.name = projection->name;
        declared.mode =
            projection->mode == ORCH_MODE_TRANSACTIONAL ? ProjectionMode::transactional : ProjectionMode::at_least_once;
        declared.aggregate_types = c_list(projection->aggregate_types);
        declared.bounded_contexts = c_list(projection->bounded_contexts);
        declared.event_types = c_list(projection->event_types);
        declared.has_reset = projection->reset != nullptr;
        plugin.projections.push_back(std::move(declared));
    }
    plugin.library = std::make_shared<PluginLibrary>(path, library, desc);
    outcome.plugin = std::move(plugin);
    return outcome;
}

PluginScan scan_plugins(const std::string& directory) {
    PluginScan scan;
    scan.directory = directory;
    if (auto unsafe = unsafe_permissions(directory, true)) {
        scan.directory_error = "plugins directory " + directory + " " + *unsafe;
        return scan;
    }
    std::vector<fs::path> entries;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(directory, ec)) entries.push_back(entry.path());
    if (ec) {
        scan.directory_error = "plugins directory " + directory + " cannot be listed: " + ec.message();
        return scan;
    }
    std::sort(entries.begin(), entries.end());

    for (const auto& path : entries) {
        const std::string file = path.string();
        if (fs::is_directory(path, ec)) {
            scan.refused.push_back({file, "is a directory; plugins must be *.so files directly in " + directory});
            continue;
        }
        // README, x.so.bak, .x.so.new being copied in: not meant to be loaded.
        if (path.extension() != ".so") {
            scan.skipped.push_back(file);
            continue;
        }
        LoadOutcome outcome = load_plugin_file(file);
        if (!outcome.plugin) {
            scan.refused.push_back({file, outcome.refusal});
            continue;
        }
        scan.plugins.push_back(std::move(*outcome.plugin));
    }
    return scan;
}

}  // namespace orchestratord::plugins
