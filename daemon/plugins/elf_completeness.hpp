#pragma once
// Whether a plugin file holds every byte its ELF headers say it has, checked
// before dlopen. A file cut short (a copy still being written, a full disk)
// is otherwise mapped as it is, and the dynamic loader's first touch of a
// page past the end of the file kills the process with SIGBUS: no error to
// report, no way to keep the running version.
#include <optional>
#include <string>

namespace orchestratord::plugins {

// nullopt when the file open on `fd` is not an ELF file (dlopen says why) or
// when its headers and every segment they describe lie within the file;
// otherwise what is missing, as a sentence part ("is truncated: ...").
std::optional<std::string> incomplete_elf(int fd);

}  // namespace orchestratord::plugins
