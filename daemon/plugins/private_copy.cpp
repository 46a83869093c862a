#include "plugins/private_copy.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "plugins/elf_completeness.hpp"
#include "plugins/file_descriptor.hpp"

namespace orchestratord::plugins {
namespace fs = std::filesystem;

namespace {

std::string errno_text() {
    return std::strerror(errno);
}

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

}  // namespace

OpenedLibrary load_private_copy(const std::string& path, int fd, const struct stat& info) {
    const FileIdentity identity(info);
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

}  // namespace orchestratord::plugins
