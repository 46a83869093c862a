#pragma once
// The effective configuration of one orchestratord process, after defaults,
// presets, the YAML file and the environment have been merged and validated.
#include <cstdint>
#include <string>
#include <vector>

#include "config/duration.hpp"

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

struct LoggingConfig {
    std::string level;   // trace|debug|info|warn|error
    std::string format;  // text|json
};

struct HttpConfig {
    std::string listen;  // host:port
    int64_t max_connections = 0;
    Duration client_timeout{};
};

struct PluginsConfig {
    std::string directory;
};

enum class OnErrorPolicy { pause, dead_letter };

struct OnErrorConfig {
    std::string policy;  // "pause" or "dead-letter"
    int64_t max_attempts = 0;
    Duration initial_backoff{};
    Duration max_backoff{};
    int64_t crash_limit = 0;  // crashes of the process on one event before the policy applies to it

    OnErrorPolicy kind() const { return policy == "dead-letter" ? OnErrorPolicy::dead_letter : OnErrorPolicy::pause; }
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
