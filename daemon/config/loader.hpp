#pragma once
// Builds the effective configuration: built-in default < preset < YAML file <
// environment, validated with the seed's rules. Throws ConfigError listing
// every problem found, each naming the key path or variable and the value.
#include <map>
#include <string>

#include "config/config.hpp"
#include "config/errors.hpp"

namespace orchestratord::config {

using Environment = std::map<std::string, std::string>;

struct LoadOptions {
    std::string file;           // YAML file; empty = none
    bool file_required = true;  // false for the default path: a missing file means "environment only"
    Environment env;            // the process environment (injected for tests)
};

Config load_config(const LoadOptions& options);

// The current process environment as a map.
Environment process_environment();

// Resolves which file to read: --config, else ORCHESTRATORD_CONFIG, else the default path.
LoadOptions resolve_load_options(const std::string& cli_config_path, Environment env);

// Every key as a Markdown table (key, type, default, variable, reloadable, description).
std::string describe_keys_markdown();

// check-config's listing: one "path = value  (source)" line per effective value.
std::string format_settings(const Config& config);

}  // namespace orchestratord::config
