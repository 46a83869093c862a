#pragma once
// The effective configuration of one orchestratord process, after defaults,
// presets, the YAML file and the environment have been merged and validated.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "config/duration.hpp"
#include "log/logging.hpp"

namespace orchestratord::config {

struct DatabaseConfig {
    std::string url;
    int64_t max_open_conns = 0;
    int64_t max_idle_conns = 0;
    Duration conn_max_lifetime{};
};

// Names of the pupsourcing event store objects; validated identifiers, always
// quoted when put into SQL.
struct EventStoreConfig {
    std::string schema;
    std::string events_table;
    std::string aggregate_heads_table;
    std::string checkpoints_table;
};

// The logging choices are log's own types: config chooses, log defines what
// can be chosen (and config depends on log, never the other way round).
using LogLevel = log::Level;
using LogFormat = log::Format;

struct LoggingConfig {
    LogLevel level = LogLevel::info;
    LogFormat format = LogFormat::text;
};

struct HttpConfig {
    std::string listen;  // host:port
    int64_t max_connections = 0;
    Duration client_timeout{};
    int64_t ready_max_lag = 0;  // events; 0: lag does not affect /readyz
    bool required = false;      // a busy listen address stops the start
};

struct PluginsConfig {
    std::string directory;
};

// What happens to an event after its last failed attempt.
enum class OnErrorPolicy { pause, dead_letter };

struct OnErrorConfig {
    OnErrorPolicy policy = OnErrorPolicy::pause;
    int64_t max_attempts = 0;
    Duration initial_backoff{};
    Duration max_backoff{};
    int64_t crash_limit = 0;  // crashes of the process on one event before the policy applies to it
};

struct ProjectionConfig {
    std::string name;               // projection name declared by a plugin
    std::string plugin;             // plugin name or file name that must declare it; empty = any
    std::string config_json;        // the free-form `config` mapping as a JSON object
    Duration slow_handler_after{};  // a handler call running longer is reported
    OnErrorConfig on_error;
};

struct ReplicaSetConfig {
    std::string name;
    std::string preset;  // empty when none was chosen
    Duration heartbeat_interval{};
    Duration stale_worker_timeout{};
    Duration coordination_timeout{};
    int64_t batch_size = 0;
    int64_t slices = 0;
    Duration poll_interval_max{};
    int64_t max_read_bytes = 0;  // payload bytes one read may fetch
    std::vector<ProjectionConfig> projections;
};

// How each enum value is spelt in the file, the environment and check-config's
// output, in declaration order (the value is the index).
inline constexpr std::string_view kLogLevelNames[] = {"trace", "debug", "info", "warn", "error"};
inline constexpr std::string_view kLogFormatNames[] = {"text", "json"};
inline constexpr std::string_view kOnErrorPolicyNames[] = {"pause", "dead-letter"};
constexpr std::span<const std::string_view> value_names(LogLevel) {
    return kLogLevelNames;
}
constexpr std::span<const std::string_view> value_names(LogFormat) {
    return kLogFormatNames;
}
constexpr std::span<const std::string_view> value_names(OnErrorPolicy) {
    return kOnErrorPolicyNames;
}

template <typename Enum>
requires std::is_enum_v<Enum>
constexpr std::string_view value_name(Enum value) {
    return value_names(Enum{})[static_cast<size_t>(value)];
}

// The value spelt `text`, or nothing when no value is spelt so.
template <typename Enum>
requires std::is_enum_v<Enum>
constexpr std::optional<Enum> parse_value(std::string_view text) {
    const auto names = value_names(Enum{});
    for (size_t i = 0; i < names.size(); ++i) {
        if (names[i] == text) return static_cast<Enum>(i);
    }
    return std::nullopt;
}

// Where an effective value came from, lowest precedence first.
enum class Source { default_value, preset, file, env };
const char* source_name(Source source);

// One effective value, for check-config and reload diffs. Secrets are masked.
struct Setting {
    std::string path;   // e.g. replica_sets[0].heartbeat_interval
    std::string value;  // printable, masked
    Source source = Source::default_value;
    std::string origin;  // the preset name, file path or variable name
    bool reloadable = false;
};

struct Config {
    std::string file;             // the YAML file read, empty when none
    std::string state_directory;  // crash breadcrumbs; crash isolation is off when it is not writable
    DatabaseConfig database;
    EventStoreConfig event_store;
    LoggingConfig logging;
    HttpConfig http;
    PluginsConfig plugins;
    std::vector<ReplicaSetConfig> replica_sets;

    std::vector<Setting> settings;      // every effective value, in declaration order
    std::vector<std::string> warnings;  // valid but questionable choices
};

}  // namespace orchestratord::config
