#include "plugins/plugin_catalog.hpp"

#include <fcntl.h>
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
#include <mutex>
#include <regex>

#include "plugins/elf_completeness.hpp"
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

namespace {

// What identifies the bytes of a file without reading them: an in-place
// write changes size, mtime or (always, and not settable) ctime; a rename
// into place changes the inode.
struct FileIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;

    explicit FileIdentity(const struct stat& info)
        : device(info.st_dev),
          inode(info.st_ino),
          size(info.st_size),
          mtime_ns(int64_t{info.st_mtim.tv_sec} * 1000000000 + info.st_mtim.tv_nsec),
          ctime_ns(int64_t{info.st_ctim.tv_sec} * 1000000000 + info.st_ctim.tv_nsec) {}
    bool operator==(const FileIdentity&) const = default;
};

// Libraries this process loaded, by the file they were copied from. A rescan
// of an unchanged file must give back the same loaded code (a fresh copy would
// be new code to the daemon, and every running projection would be restarted
// with a new instance at each SIGHUP).
struct LoadedCopies {
    std::mutex mutex;
    std::vector<std::pair<FileIdentity, std::weak_ptr<boost::dll::shared_library>>> entries;
};
LoadedCopies& loaded_copies() {
    static LoadedCopies copies;
    return copies;
}

class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

std::string errno_text() {
    return std::strerror(errno);
}

// Copies all of `from` (read from offset 0, whatever its file position) to `to`.
std::optional<std::string> copy_bytes(int from, int to) {
    std::vector<char> buffer(1 << 16);
    for (off_t offset = 0;;) {
        const ssize_t got = ::pread(from, buffer.data(), buffer.size(), offset);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return "cannot be read: " + errno_text();
        if (got == 0) return std::nullopt;
        for (ssize_t written = 0; written < got;) {
            const ssize_t put = ::write(to, buffer.data() + written, static_cast<size_t>(got - written));
            if (put < 0 && errno == EINTR) continue;
            if (put < 0) return "cannot be copied for loading: " + errno_text();
            written += put;
        }
        offset += got;
    }
}

struct OpenedLibrary {
    std::shared_ptr<boost::dll::shared_library> library;
    std::string refusal;
};

// Loads a private copy of the plugin file open on `fd` (already checked).
//
// Why a copy: a shared object is mapped from its file, so writing new bytes
// into that file (cp over it, a build writing its output in place) changes
// the code of the running daemon, which then crashes at the next call into
// it. The copy lives in a directory made for this load (mkdtemp: mode 0700,
// unpredictable name) under TMPDIR, only until dlopen has mapped it; its
// name is never used twice in this process, so dlopen (which hands back an
// already loaded object when the name matches) always loads it anew.
OpenedLibrary open_copy(const std::string& path, int fd, const FileIdentity& identity) {
    static std::atomic<uint64_t> loads{0};
    // rtld_now: an unresolved symbol fails here, with its name, instead of
    // crashing the daemon in the middle of a batch later.
    const auto mode = boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local;
    std::error_code ec;
    const fs::path temp = fs::temp_directory_path(ec);
    std::string private_dir = (temp / "orchestratord-plugin-XXXXXX").string();
    if (ec || ::mkdtemp(private_dir.data()) == nullptr) {
        const std::string where = ec ? std::string("$TMPDIR") : temp.string();
        return {nullptr, "cannot be loaded: cannot make a private directory for its copy in " + where + ": " +
                             (ec ? ec.message() : errno_text())};
    }
    const fs::path copy = fs::path(private_dir) / (std::to_string(++loads) + "-" + fs::path(path).filename().string());
    OpenedLibrary opened;
    {
        FileDescriptor out(::open(copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (out.get() < 0) {
            opened.refusal = "cannot be copied for loading to " + copy.string() + ": " + errno_text();
        } else if (auto failed = copy_bytes(fd, out.get())) {
            opened.refusal = *failed;
        }
    }
    // The copy must be of the file as checked: a file being written while
    // it was copied could be torn.
    struct stat after {};
    if (opened.refusal.empty() && (::fstat(fd, &after) != 0 || !(FileIdentity(after) == identity))) {
        opened.refusal = "changed while it was being loaded; install plugins by renaming them into place";
    }
    if (opened.refusal.empty()) {
        if (auto missing = incomplete_elf(fd)) opened.refusal = *missing;
    }
    if (opened.refusal.empty()) {
        try {
            opened.library = std::make_shared<boost::dll::shared_library>(copy, mode);
        } catch (const std::exception& e) {
            std::string failure = e.what();
            // Name the operator's file, not the private copy.
            for (size_t at = failure.find(copy.string()); at != std::string::npos; at = failure.find(copy.string())) {
                failure.replace(at, copy.string().size(), path);
            }
            opened.refusal = "cannot be loaded: " + failure;
            if (failure.find("failed to map segment") != std::string::npos) {
                opened.refusal += " (its private copy is loaded from " + temp.string() +
                                  ", which must not be mounted noexec; set TMPDIR to another directory)";
            }
        }
    }
    fs::remove(copy, ec);
    fs::remove(private_dir, ec);
    return opened;
}

OpenedLibrary open_library(const std::string& path, int fd, const FileIdentity& identity) {
    auto& copies = loaded_copies();
    std::lock_guard lock(copies.mutex);
    std::erase_if(copies.entries, [](const auto& entry) { return entry.second.expired(); });
    for (const auto& [loaded_from, library] : copies.entries) {
        if (loaded_from == identity) {
            if (auto alive = library.lock()) return {alive, {}};
        }
    }
    OpenedLibrary opened = open_copy(path, fd, identity);
    if (opened.library) copies.entries.emplace_back(identity, opened.library);
    return opened;
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
        outcome.refusal = "cannot be opened: " + errno_text();
        return outcome;
    }
    if (auto unsafe = unsafe_status(info, false)) {
        outcome.refusal = *unsafe;
        return outcome;
    }
    OpenedLibrary opened = open_library(path, fd.get(), FileIdentity(info));
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
