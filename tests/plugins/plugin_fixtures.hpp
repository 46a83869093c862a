#pragma once
// What the plugin tests share: built plugins copied into a test's own
// directory, and events to hand them.
#include <orchestratord/plugin_abi.h>
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "support/temp_dir.hpp"

namespace orchestratord::test {

// Copies a built plugin into `dir` (mode 0755) under `as` (default: its own
// name): each test scans exactly the files it names.
inline std::string install_plugin(const TempDir& dir, const std::string& from_dir, const std::string& file,
                                  const std::string& as = "") {
    const std::string target = dir.file(as.empty() ? file : as);
    std::filesystem::copy_file(from_dir + "/" + file, target, std::filesystem::copy_options::overwrite_existing);
    ::chmod(target.c_str(), 0755);
    return target;
}

// An event of `type` at `position`; its strings are literals, so it stays valid.
inline orch_event make_event(int64_t position, const char* type) {
    static const uint8_t payload[] = {'{', '}'};
    orch_event event{};
    event.struct_size = sizeof(orch_event);
    event.global_position = position;
    event.bounded_context = "test";
    event.aggregate_type = "Thing";
    event.aggregate_id = "thing-1";
    event.aggregate_version = position;
    event.event_id = "00000000-0000-0000-0000-000000000001";
    event.event_type = type;
    event.event_version = 1;
    event.payload = payload;
    event.payload_size = sizeof payload;
    return event;
}

}  // namespace orchestratord::test
