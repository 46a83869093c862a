#include "plugins/plugin_catalog.hpp"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>

#include "plugins/plugin_library.hpp"

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

const LoadedPlugin* PluginScan::find(const std::string& projection, const std::string& plugin) const {
    for (const auto& loaded : plugins) {
        if (!plugin.empty() && loaded.name != plugin) continue;
        for (const auto& declared : loaded.projections) {
            if (declared.name == projection) return &loaded;
        }
    }
    return nullptr;
}

std::optional<std::string> unsafe_permissions(const std::string& path, bool expect_directory) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) return std::string("cannot stat: ") + std::strerror(errno);
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

namespace {

// dlopen() returns an already loaded object when the *name* matches, so a new
// version renamed into place under the same path would never be loaded while
// the old one is in use (and C++ libraries often stay mapped after dlclose).
// Each load therefore goes through a symbolic link with a name never used
// before, removed right after; glibc still shares an unchanged file (it also
// matches loaded objects by device and inode).
std::shared_ptr<boost::dll::shared_library> open_library(const std::string& path) {
    static std::atomic<uint64_t> loads{0};
    // rtld_now: an unresolved symbol fails here, with its name, instead of
    // crashing the daemon in the middle of a batch later.
    const auto mode = boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local;
    namespace fs = std::filesystem;
    std::error_code ec;
    // A private directory made for this load (mkdtemp: unpredictable name,
    // mode 0700), so nobody else can swap the link before dlopen follows it.
    std::string links = (fs::temp_directory_path(ec) / "orchestratord-plugin-XXXXXX").string();
    if (ec || ::mkdtemp(links.data()) == nullptr) {
        return std::make_shared<boost::dll::shared_library>(path, mode);  // no temp dir: plain load
    }
    // The counter keeps the name unique for the life of the process, even if
    // a directory name came back after an earlier one was removed.
    const fs::path link = fs::path(links) / (std::to_string(++loads) + "-" + fs::path(path).filename().string());
    fs::create_symlink(fs::absolute(path), link, ec);
    std::shared_ptr<boost::dll::shared_library> library;
    std::string failure;
    if (ec) {
        fs::remove(links, ec);
        return std::make_shared<boost::dll::shared_library>(path, mode);
    }
    try {
        library = std::make_shared<boost::dll::shared_library>(link, mode);
    } catch (const std::exception& e) {
        failure = e.what();
    }
    fs::remove(link, ec);
    fs::remove(links, ec);
    if (!failure.empty()) {
        // Name the operator's file, not the temporary link.
        for (size_t at = failure.find(link.string()); at != std::string::npos; at = failure.find(link.string())) {
            failure.replace(at, link.string().size(), path);
        }
        throw std::runtime_error(failure);
    }
    return library;
}

}  // namespace

LoadOutcome load_plugin_file(const std::string& path) {
    LoadOutcome outcome;
    if (auto unsafe = unsafe_permissions(path, false)) {
        outcome.refusal = *unsafe;
        return outcome;
    }
    std::shared_ptr<boost::dll::shared_library> library;
    try {
        library = open_library(path);
    } catch (const std::exception& e) {
        outcome.refusal = std::string("cannot be loaded: ") + e.what();
        return outcome;
    }
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

    std::map<std::string, std::string> projection_owner;  // projection name -> file
    std::map<std::string, std::string> plugin_owner;      // plugin name -> file
    for (const auto& path : entries) {
        const std::string file = path.string();
        if (fs::is_directory(path, ec)) {
            scan.refused.push_back({file, "is a directory; plugins must be *.so files directly in " + directory});
            continue;
        }
        if (path.extension() != ".so") {
            scan.refused.push_back({file, "is not a plugin (only *.so files are loaded)"});
            continue;
        }
        LoadOutcome outcome = load_plugin_file(file);
        if (!outcome.plugin) {
            scan.refused.push_back({file, outcome.refusal});
            continue;
        }
        LoadedPlugin& plugin = *outcome.plugin;
        std::optional<std::string> clash;
        if (auto found = plugin_owner.find(plugin.name); found != plugin_owner.end()) {
            clash = "its plugin name \"" + plugin.name + "\" is already used by " + found->second;
        }
        for (const auto& projection : plugin.projections) {
            if (clash) break;
            if (auto found = projection_owner.find(projection.name); found != projection_owner.end()) {
                clash = "its projection \"" + projection.name + "\" is already declared by " + found->second;
            }
        }
        if (clash) {
            scan.refused.push_back({file, *clash});
            continue;
        }
        plugin_owner[plugin.name] = file;
        for (const auto& projection : plugin.projections) projection_owner[projection.name] = file;
        scan.plugins.push_back(std::move(plugin));
    }
    return scan;
}

}  // namespace orchestratord::plugins
