#include "config/schema.hpp"

#include <array>

namespace orchestratord::config {
namespace {

constexpr int64_t kSecond = 1000000000LL;

using C = Config;
const std::array kTopLevelKeys = {
    KeySpec<C>{"state_directory",
               KeyType::path,
               "/var/lib/orchestratord",
               "",
               "where the process leaves a breadcrumb when a projection handler crashes it, so the next start can "
               "isolate the event; not writable: crash isolation is off (systemd's StateDirectory= sets "
               "$STATE_DIRECTORY)",
               false,
               &C::state_directory,
               {},
               std::numeric_limits<int64_t>::min(),
               std::numeric_limits<int64_t>::max(),
               {},
               "STATE_DIRECTORY"},
};

using D = DatabaseConfig;
const std::array kDatabaseKeys = {
    KeySpec<D>{"url", KeyType::conninfo, "", "DATABASE_URL",
               "PostgreSQL connection string (URL or key=value); required", false, &D::url},
    KeySpec<D>{
        "max_open_conns",
        KeyType::integer,
        "25",
        "ORCHESTRATORD_DATABASE_MAX_OPEN_CONNS",
        "most connections the process opens: one per replica set and the listener, the rest shared by projections",
        false,
        &D::max_open_conns,
        {},
        1,
        10000,
        "MaxOpenConns must be positive"},
    KeySpec<D>{"max_idle_conns",
               KeyType::integer,
               "5",
               "ORCHESTRATORD_DATABASE_MAX_IDLE_CONNS",
               "most unused projection connections kept open (extra ones close after 1s unused)",
               false,
               &D::max_idle_conns,
               {},
               0,
               10000,
               "MaxIdleConns must not be negative"},
    KeySpec<D>{"conn_max_lifetime",
               KeyType::duration,
               "1h",
               "ORCHESTRATORD_DATABASE_CONN_MAX_LIFETIME",
               "a projection connection older than this is replaced when returned to the pool",
               false,
               &D::conn_max_lifetime,
               {},
               kSecond,
               std::numeric_limits<int64_t>::max(),
               "ConnMaxLifetime must be at least 1s"},
};

using E = EventStoreConfig;
const std::array kEventStoreKeys = {
    KeySpec<E>{"schema", KeyType::identifier, "public", "ORCHESTRATORD_EVENT_STORE_SCHEMA",
               "schema of the event store tables and of orchestratord's own tables", false, &E::schema},
    KeySpec<E>{"events_table", KeyType::identifier, "events", "ORCHESTRATORD_EVENT_STORE_EVENTS_TABLE",
               "the pupsourcing events table", false, &E::events_table},
    KeySpec<E>{"aggregate_heads_table", KeyType::identifier, "aggregate_heads",
               "ORCHESTRATORD_EVENT_STORE_AGGREGATE_HEADS_TABLE", "the pupsourcing aggregate heads table", false,
               &E::aggregate_heads_table},
    KeySpec<E>{"checkpoints_table", KeyType::identifier, "projection_checkpoints",
               "ORCHESTRATORD_EVENT_STORE_CHECKPOINTS_TABLE",
               "the pupsourcing checkpoints table (read by import-checkpoints)", false, &E::checkpoints_table},
};

using L = LoggingConfig;
const std::array kLoggingKeys = {
    KeySpec<L>{"level", KeyType::choice, "info", "ORCHESTRATORD_LOGGING_LEVEL", "least severe level written", true,
               &L::level, "trace|debug|info|warn|error"},
    KeySpec<L>{"format", KeyType::choice, "text", "ORCHESTRATORD_LOGGING_FORMAT",
               "text (key=value lines) or json (one object per line)", true, &L::format, "text|json"},
};

using H = HttpConfig;
const std::array kHttpKeys = {
    KeySpec<H>{"listen", KeyType::listen_address, "127.0.0.1:9090", "ORCHESTRATORD_HTTP_LISTEN",
               "address of /metrics and /healthz (port 0: any free port, logged at start)", false, &H::listen},
    KeySpec<H>{"max_connections",
               KeyType::integer,
               "64",
               "ORCHESTRATORD_HTTP_MAX_CONNECTIONS",
               "most HTTP connections open at once; further clients wait in the listen backlog",
               false,
               &H::max_connections,
               {},
               1,
               10000,
               "must be between 1 and 10000"},
    KeySpec<H>{"client_timeout",
               KeyType::duration,
               "10s",
               "ORCHESTRATORD_HTTP_CLIENT_TIMEOUT",
               "an HTTP client that takes longer to send a request (or idles between requests), or to read the answer, "
               "is disconnected",
               false,
               &H::client_timeout,
               {},
               kSecond / 10,
               3600 * kSecond,
               "must be between 100ms and 1h"},
};

using P = PluginsConfig;
const std::array kPluginsKeys = {
    KeySpec<P>{"directory", KeyType::path, "/usr/lib/orchestratord/plugins", "ORCHESTRATORD_PLUGINS_DIRECTORY",
               "directory scanned for projection plugins (*.so); rescanned on SIGHUP", true, &P::directory},
};

using R = ReplicaSetConfig;
const std::array kReplicaSetKeys = {
    KeySpec<R>{"name", KeyType::replica_set_name, "", "REPLICA_SET",
               "replica set name; every daemon naming it joins one cluster (required)", false, &R::name},
    KeySpec<R>{"preset", KeyType::choice, "", "ORCHESTRATORD_PRESET", "seed preset applied under the file's values",
               false, &R::preset, "development|standard-production|high-throughput|stable-few-workers"},
    KeySpec<R>{"heartbeat_interval",
               KeyType::duration,
               "5s",
               "HEARTBEAT_INTERVAL",
               "how often a worker proves it is alive",
               false,
               &R::heartbeat_interval,
               {},
               1,
               std::numeric_limits<int64_t>::max(),
               "HeartbeatInterval must be positive"},
    KeySpec<R>{"stale_worker_timeout",
               KeyType::duration,
               "30s",
               "STALE_WORKER_TIMEOUT",
               "a worker silent this long is removed and its slices move",
               false,
               &R::stale_worker_timeout,
               {},
               1,
               std::numeric_limits<int64_t>::max(),
               "StaleWorkerTimeout must be positive"},
    KeySpec<R>{"coordination_timeout",
               KeyType::duration,
               "60s",
               "COORDINATION_TIMEOUT",
               "longest wait for a slice's previous owner to release it",
               false,
               &R::coordination_timeout,
               {},
               1,
               std::numeric_limits<int64_t>::max(),
               "CoordinationTimeout must be positive"},
    KeySpec<R>{"batch_size",
               KeyType::integer,
               "100",
               "BATCH_SIZE",
               "events read and handled per batch",
               false,
               &R::batch_size,
               {},
               1,
               1000000,
               "BatchSize must be positive"},
    KeySpec<R>{"slices",
               KeyType::integer,
               "64",
               "ORCHESTRATORD_SLICES",
               "virtual partitions of the stream; fixed when the replica set is first created",
               false,
               &R::slices,
               {},
               1,
               16384,
               "Slices must be between 1 and 16384"},
    KeySpec<R>{"poll_interval_max",
               KeyType::duration,
               "1s",
               "ORCHESTRATORD_POLL_INTERVAL_MAX",
               "longest pause between reads while idle without NOTIFY",
               false,
               &R::poll_interval_max,
               {},
               1,
               std::numeric_limits<int64_t>::max(),
               "PollIntervalMax must be positive"},
    KeySpec<R>{"max_read_bytes",
               KeyType::integer,
               "67108864",
               "ORCHESTRATORD_MAX_READ_BYTES",
               "most payload bytes one read fetches (64 MiB; a single larger event is still read, alone); bounds "
               "memory with large events together with batch_size",
               false,
               &R::max_read_bytes,
               {},
               1,
               std::numeric_limits<int64_t>::max(),
               "MaxReadBytes must be positive"},
};

using J = ProjectionConfig;
const std::array kProjectionKeys = {
    KeySpec<J>{"name", KeyType::projection_name, "", "", "projection name declared by a plugin (required)", false,
               &J::name},
    KeySpec<J>{"plugin", KeyType::text, "", "",
               "plugin name or file name (shop.so) that must declare the projection (optional; picks one file when "
               "several declare it)",
               false, &J::plugin},
    KeySpec<J>{"slow_handler_after",
               KeyType::duration,
               "30s",
               "",
               "a handler call running longer is reported (log line and metric), again every period; 0 = never",
               false,
               &J::slow_handler_after,
               {},
               0,
               std::numeric_limits<int64_t>::max(),
               "SlowHandlerAfter must not be negative"},
};

using O = OnErrorConfig;
const std::array kOnErrorKeys = {
    KeySpec<O>{"policy", KeyType::choice, "pause", "",
               "after the last attempt: pause the projection at the event, or dead-letter it and go on", false,
               &O::policy, "pause|dead-letter"},
    KeySpec<O>{"max_attempts",
               KeyType::integer,
               "5",
               "",
               "attempts before the policy applies",
               false,
               &O::max_attempts,
               {},
               1,
               1000,
               "MaxAttempts must be between 1 and 1000"},
    KeySpec<O>{"initial_backoff",
               KeyType::duration,
               "1s",
               "",
               "wait after the first failure (doubles each time)",
               false,
               &O::initial_backoff,
               {},
               0,
               std::numeric_limits<int64_t>::max(),
               "InitialBackoff must not be negative"},
    KeySpec<O>{"max_backoff",
               KeyType::duration,
               "1m",
               "",
               "longest wait between attempts",
               false,
               &O::max_backoff,
               {},
               0,
               std::numeric_limits<int64_t>::max(),
               "MaxBackoff must not be negative"},
    KeySpec<O>{"crash_limit",
               KeyType::integer,
               "3",
               "",
               "crashes of the process in the handler on one event, after which the policy applies to that event "
               "without calling the handler again (needs a writable state_directory)",
               false,
               &O::crash_limit,
               {},
               1,
               1000,
               "CrashLimit must be between 1 and 1000"},
};

// The seed's presets, with its exact values.
constexpr PresetValue kDevelopment[] = {{"heartbeat_interval", "2s"},
                                        {"stale_worker_timeout", "10s"},
                                        {"coordination_timeout", "30s"},
                                        {"batch_size", "50"}};
constexpr PresetValue kStandardProduction[] = {{"heartbeat_interval", "5s"},
                                               {"stale_worker_timeout", "30s"},
                                               {"coordination_timeout", "60s"},
                                               {"batch_size", "100"}};
constexpr PresetValue kHighThroughput[] = {{"heartbeat_interval", "10s"},
                                           {"stale_worker_timeout", "45s"},
                                           {"coordination_timeout", "90s"},
                                           {"batch_size", "1000"}};
constexpr PresetValue kStableFewWorkers[] = {{"heartbeat_interval", "15s"},
                                             {"stale_worker_timeout", "90s"},
                                             {"coordination_timeout", "120s"},
                                             {"batch_size", "200"}};

const std::array kPresets = {
    Preset{"development", kDevelopment},
    Preset{"standard-production", kStandardProduction},
    Preset{"high-throughput", kHighThroughput},
    Preset{"stable-few-workers", kStableFewWorkers},
};

}  // namespace

const char* key_type_name(KeyType type) {
    switch (type) {
        case KeyType::text:
            return "string";
        case KeyType::conninfo:
            return "connection string (secret)";
        case KeyType::identifier:
            return "SQL identifier";
        case KeyType::replica_set_name:
            return "name (a-z, 0-9, -)";
        case KeyType::projection_name:
            return "name";
        case KeyType::integer:
            return "integer";
        case KeyType::duration:
            return "duration";
        case KeyType::choice:
            return "choice";
        case KeyType::listen_address:
            return "host:port";
        case KeyType::path:
            return "path";
    }
    return "?";
}

std::span<const KeySpec<Config>> top_level_keys() {
    return kTopLevelKeys;
}
std::span<const KeySpec<DatabaseConfig>> database_keys() {
    return kDatabaseKeys;
}
std::span<const KeySpec<EventStoreConfig>> event_store_keys() {
    return kEventStoreKeys;
}
std::span<const KeySpec<LoggingConfig>> logging_keys() {
    return kLoggingKeys;
}
std::span<const KeySpec<HttpConfig>> http_keys() {
    return kHttpKeys;
}
std::span<const KeySpec<PluginsConfig>> plugins_keys() {
    return kPluginsKeys;
}
std::span<const KeySpec<ReplicaSetConfig>> replica_set_keys() {
    return kReplicaSetKeys;
}
std::span<const KeySpec<ProjectionConfig>> projection_keys() {
    return kProjectionKeys;
}
std::span<const KeySpec<OnErrorConfig>> on_error_keys() {
    return kOnErrorKeys;
}

std::span<const Preset> presets() {
    return kPresets;
}

const Preset* find_preset(std::string_view name) {
    for (const auto& preset : kPresets) {
        if (preset.name == name) return &preset;
    }
    return nullptr;
}

const char* source_name(Source source) {
    switch (source) {
        case Source::default_value:
            return "default";
        case Source::preset:
            return "preset";
        case Source::file:
            return "file";
        case Source::env:
            return "env";
    }
    return "?";
}

}  // namespace orchestratord::config
