#pragma once
// What check-config prints: the key reference (`--keys`, the end of
// docs/configuration.md) from the table of sections, and the effective values
// of a loaded configuration with their sources.
#include <string>

#include "config/config.hpp"

namespace orchestratord::config {

// Every key as a Markdown table per section (key, type, default, variable,
// reloadable, description), then the presets.
std::string describe_keys_markdown();

// check-config's listing: one "path = value  # source" line per effective value.
std::string format_settings(const Config& config);

}  // namespace orchestratord::config
