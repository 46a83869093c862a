#include "plugins/elf_completeness.hpp"

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace orchestratord::plugins {
namespace {

// Reads exactly `size` bytes at `offset`; false on a short read or an error.
bool read_at(int fd, void* into, size_t size, off_t offset) {
    auto* bytes = static_cast<char*>(into);
    while (size > 0) {
        const ssize_t got = ::pread(fd, bytes, size, offset);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        bytes += got;
        size -= static_cast<size_t>(got);
        offset += got;
    }
    return true;
}

std::string truncated(uint64_t needed, uint64_t size, const char* what) {
    return "is truncated: its " + std::string(what) + " ends at byte " + std::to_string(needed) + " of a " +
           std::to_string(size) + "-byte file (install plugins by renaming a complete file into place)";
}

}  // namespace

std::optional<std::string> incomplete_elf(int fd) {
    struct stat info {};
    if (::fstat(fd, &info) != 0) return std::nullopt;  // the loader reports what it cannot read
    const auto size = static_cast<uint64_t>(info.st_size);
    unsigned char ident[EI_NIDENT] = {};
    if (!read_at(fd, ident, sizeof ident, 0)) {
        // A file shorter than the identification: say so only if what is
        // there starts like ELF, otherwise dlopen's "invalid ELF header" fits.
        const size_t have = static_cast<size_t>(std::min<uint64_t>(size, SELFMAG));
        if (have > 0 && read_at(fd, ident, have, 0) && std::memcmp(ident, ELFMAG, have) == 0) {
            return truncated(sizeof(Elf64_Ehdr), size, "ELF header");
        }
        return std::nullopt;
    }
    if (std::memcmp(ident, ELFMAG, SELFMAG) != 0 || ident[EI_CLASS] != ELFCLASS64) return std::nullopt;
    Elf64_Ehdr header{};
    if (size < sizeof header || !read_at(fd, &header, sizeof header, 0)) {
        return truncated(sizeof header, size, "ELF header");
    }
    if (header.e_phentsize != sizeof(Elf64_Phdr)) return std::nullopt;  // malformed: dlopen says so
    const uint64_t table_end = header.e_phoff + header.e_phnum * uint64_t{sizeof(Elf64_Phdr)};
    if (table_end > size) return truncated(table_end, size, "program header table");
    std::vector<Elf64_Phdr> segments(header.e_phnum);
    if (!segments.empty() &&
        !read_at(fd, segments.data(), segments.size() * sizeof(Elf64_Phdr), static_cast<off_t>(header.e_phoff))) {
        return truncated(table_end, size, "program header table");
    }
    for (const auto& segment : segments) {
        const uint64_t end = segment.p_offset + segment.p_filesz;
        if (segment.p_filesz > 0 && end > size) return truncated(end, size, "segments");
    }
    return std::nullopt;
}

}  // namespace orchestratord::plugins
