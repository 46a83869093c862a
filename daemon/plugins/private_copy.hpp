#pragma once
// Loads a plugin from a private copy of its file, so that the file in the
// plugins directory can be overwritten at any time without touching the code
// the daemon runs (a shared object is mapped from its file: new bytes written
// into it would change the running code under the daemon's feet).
#include <sys/stat.h>

#include <boost/dll/shared_library.hpp>
#include <memory>
#include <string>

namespace orchestratord::plugins {

struct OpenedLibrary {
    std::shared_ptr<boost::dll::shared_library> library;  // null when refused
    std::string refusal;                                  // why, as a sentence part naming no path
};

// Loads the plugin file open on `fd` (already checked; `info` is its fstat).
// A file unchanged since this process last loaded it gives back the library
// already loaded, so a rescan does not make unchanged code look new.
OpenedLibrary load_private_copy(const std::string& path, int fd, const struct stat& info);

}  // namespace orchestratord::plugins
