#pragma once
// Builds the effective configuration: built-in default < preset < YAML file <
// environment, validated with pupsourcing-orchestrator's rules. Throws ConfigError listing
// every problem found, each naming the key path or variable and the value.
//
// The parts, each in its own file: the table of sections and keys
// (schema.hpp), key binding (key_binder.hpp), checks of one value
// (value_checks.hpp), rules between keys (cross_key_rules.hpp), the
// environment (environment.hpp) and check-config's output (key_reference.hpp).
// This file walks the YAML document and its lists.
#include <string>

#include "config/config.hpp"
#include "config/environment.hpp"
#include "config/errors.hpp"

namespace orchestratord::config {

struct LoadOptions {
    std::string file;           // YAML file; empty = none
    bool file_required = true;  // false for the default path: a missing file means "environment only"
    Environment env;            // the process environment (injected for tests)
    // false when only the event store settings matter (`migrate --print`
    // writes SQL and connects nowhere): database.url and the replica sets
    // may then be absent. Every value given is still checked.
    bool workers_required = true;
};

Config load_config(const LoadOptions& options);

// Resolves which file to read: --config, else ORCHESTRATORD_CONFIG, else the default path.
LoadOptions resolve_load_options(const std::string& cli_config_path, Environment env);

}  // namespace orchestratord::config
