#pragma once
// The key tables: every configuration key with its type, default, environment
// variable, range and description. The loader, check-config and the generated
// key reference in docs/configuration.md all read these tables, so a key is
// declared exactly once.
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <variant>

#include "config/config.hpp"

namespace orchestratord::config {

enum class KeyType {
    text,              // free text
    conninfo,          // libpq URL or key=value string; secret, masked when printed
    identifier,        // SQL identifier, validated and always quoted
    replica_set_name,  // lowercase letters, digits, hyphens
    projection_name,   // letters, digits, '_', '-', '.'
    integer,
    duration,        // Go-style duration
    choice,          // one of KeySpec::choices
    listen_address,  // host:port
    path,            // a filesystem path
};

const char* key_type_name(KeyType type);

template <typename Section>
using Field = std::variant<std::string Section::*, int64_t Section::*, Duration Section::*>;

template <typename Section>
struct KeySpec {
    std::string_view name;
    KeyType type;
    std::string_view default_value;  // text form, parsed like a file value
    std::string_view env;            // environment variable that overrides it, if any
    std::string_view description;
    bool reloadable;
    Field<Section> field;
    std::string_view choices = {};                      // "a|b|c" for KeyType::choice
    int64_t min = std::numeric_limits<int64_t>::min();  // integers, or nanoseconds for durations
    int64_t max = std::numeric_limits<int64_t>::max();
    std::string_view range_error = {};  // the seed's wording when out of range
    std::string_view default_env = {};  // a variable whose value, when set, is the default instead
};

// The keys at the top level of orchestratord.yaml that are not sections.
std::span<const KeySpec<Config>> top_level_keys();
// The top-level sections of orchestratord.yaml and their keys.
std::span<const KeySpec<DatabaseConfig>> database_keys();
std::span<const KeySpec<EventStoreConfig>> event_store_keys();
std::span<const KeySpec<LoggingConfig>> logging_keys();
std::span<const KeySpec<HttpConfig>> http_keys();
std::span<const KeySpec<PluginsConfig>> plugins_keys();
// Keys of each entry of `replica_sets`, of each entry of its `projections`,
// and of a projection's `on_error` mapping.
std::span<const KeySpec<ReplicaSetConfig>> replica_set_keys();
std::span<const KeySpec<ProjectionConfig>> projection_keys();
std::span<const KeySpec<OnErrorConfig>> on_error_keys();

// The seed's presets: named sets of replica-set values (text form).
struct PresetValue {
    std::string_view key;
    std::string_view value;
};
struct Preset {
    std::string_view name;
    std::span<const PresetValue> values;
};
std::span<const Preset> presets();
const Preset* find_preset(std::string_view name);

// The variable that names the configuration file.
inline constexpr std::string_view kConfigFileEnv = "ORCHESTRATORD_CONFIG";
inline constexpr std::string_view kDefaultConfigFile = "/etc/orchestratord/orchestratord.yaml";

}  // namespace orchestratord::config
