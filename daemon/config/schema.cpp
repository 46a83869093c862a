#include "config/schema.hpp"

#include <array>

namespace orchestratord::config {
namespace {

constexpr int64_t kSecond = 1000000000LL;

using C = Config;
const std::array kTopLevelKeys = {
    KeySpec<C>{.name = "state_directory",
               .type = KeyType::path,
               .default_value = "/var/lib/orchestratord",
               .description = "where the process leaves a breadcrumb when a projection handler crashes it, so the next "
                              "start can isolate the event; not writable: crash isolation is off (systemd's "
                              "StateDirectory= sets $STATE_DIRECTORY)",
               .field = &C::state_directory,
               .default_env = "STATE_DIRECTORY"},
};

using D = DatabaseConfig;
const std::array kDatabaseKeys = {
    KeySpec<D>{.name = "url",
               .type = KeyType::conninfo,
               .env = "DATABASE_URL",
               .description = "PostgreSQL connection string (URL or key=value); required",
               .field = &D::url},
    KeySpec<D>{.name = "max_open_conns",
               .type = KeyType::integer,
               .default_value = "25",
               .env = "ORCHESTRATORD_DATABASE_MAX_OPEN_CONNS",
               .description = "most connections the process opens: one per replica set and the listener, the rest "
                              "shared by projections",
               .field = &D::max_open_conns,
               .min = 1,
               .max = 10000,
               .range_error = "MaxOpenConns must be positive"},
    KeySpec<D>{.name = "max_idle_conns",
               .type = KeyType::integer,
               .default_value = "5",
               .env = "ORCHESTRATORD_DATABASE_MAX_IDLE_CONNS",
               .description = "most unused projection connections kept open (extra ones close after 1s unused)",
               .field = &D::max_idle_conns,
               .min = 0,
               .max = 10000,
               .range_error = "MaxIdleConns must not be negative"},
    KeySpec<D>{.name = "conn_max_lifetime",
               .type = KeyType::duration,
               .default_value = "1h",
               .env = "ORCHESTRATORD_DATABASE_CONN_MAX_LIFETIME",
               .description = "a projection connection older than this is replaced when returned to the pool",
               .field = &D::conn_max_lifetime,
               .min = kSecond,
               .range_error = "ConnMaxLifetime must be at least 1s"},
};

using E = EventStoreConfig;
const std::array kEventStoreKeys = {
    KeySpec<E>{.name = "schema",
               .type = KeyType::schema_name,
               .default_value = "public",
               .env = "ORCHESTRATORD_EVENT_STORE_SCHEMA",
               .description = "schema of the event store tables and of orchestratord's own tables",
               .field = &E::schema},
    KeySpec<E>{.name = "events_table",
               .type = KeyType::identifier,
               .default_value = "events",
               .env = "ORCHESTRATORD_EVENT_STORE_EVENTS_TABLE",
               .description = "the pupsourcing events table",
               .field = &E::events_table},
    KeySpec<E>{.name = "aggregate_heads_table",
               .type = KeyType::identifier,
               .default_value = "aggregate_heads",
               .env = "ORCHESTRATORD_EVENT_STORE_AGGREGATE_HEADS_TABLE",
               .description = "the pupsourcing aggregate heads table",
               .field = &E::aggregate_heads_table},
    KeySpec<E>{.name = "checkpoints_table",
               .type = KeyType::identifier,
               .default_value = "projection_checkpoints",
               .env = "ORCHESTRATORD_EVENT_STORE_CHECKPOINTS_TABLE",
               .description = "the pupsourcing checkpoints table (read by import-checkpoints)",
               .field = &E::checkpoints_table},
};

using L = LoggingConfig;
const std::array kLoggingKeys = {
    KeySpec<L>{.name = "level",
               .type = KeyType::choice,
               .default_value = "info",
               .env = "ORCHESTRATORD_LOGGING_LEVEL",
               .description = "least severe level written",
               .reloadable = true,
               .field = &L::level},
    KeySpec<L>{.name = "format",
               .type = KeyType::choice,
               .default_value = "text",
               .env = "ORCHESTRATORD_LOGGING_FORMAT",
               .description = "text (key=value lines) or json (one object per line)",
               .reloadable = true,
               .field = &L::format},
};

using H = HttpConfig;
const std::array kHttpKeys = {
    KeySpec<H>{.name = "listen",
               .type = KeyType::listen_address,
               .default_value = "127.0.0.1:9090",
               .env = "ORCHESTRATORD_HTTP_LISTEN",
               .description = "address of /metrics, /healthz, /readyz and /status (port 0: any free port, logged at "
                              "start)",
               .field = &H::listen},
    KeySpec<H>{.name = "max_connections",
               .type = KeyType::integer,
               .default_value = "64",
               .env = "ORCHESTRATORD_HTTP_MAX_CONNECTIONS",
               .description = "most HTTP connections open at once; further clients wait in the listen backlog",
               .field = &H::max_connections,
               .min = 1,
               .max = 10000,
               .range_error = "must be between 1 and 10000"},
    KeySpec<H>{.name = "client_timeout",
               .type = KeyType::duration,
               .default_value = "10s",
               .env = "ORCHESTRATORD_HTTP_CLIENT_TIMEOUT",
               .description = "an HTTP client that takes longer to send a request (or idles between requests), or "
                              "to read the answer, is disconnected",
               .field = &H::client_timeout,
               .min = kSecond / 10,
               .max = 3600 * kSecond,
               .range_error = "must be between 100ms and 1h"},
    KeySpec<H>{.name = "ready_max_lag",
               .type = KeyType::integer,
               .default_value = "0",
               .env = "ORCHESTRATORD_HTTP_READY_MAX_LAG",
               .description = "/readyz answers 503 while a projection is more events than this behind the head (as "
                              "its runner last saw it, every few seconds); 0: lag does not affect readiness",
               .field = &H::ready_max_lag,
               .min = 0,
               .range_error = "must not be negative"},
    KeySpec<H>{.name = "required",
               .type = KeyType::boolean,
               .default_value = "false",
               .env = "ORCHESTRATORD_HTTP_REQUIRED",
               .description = "when http.listen is busy at start, exit 1 naming the address (true) or log it and run "
                              "without the endpoints (false)",
               .field = &H::required,
               .default_when_env = "NOTIFY_SOCKET",
               .default_when_env_value = "true"},
};

using P = PluginsConfig;
const std::array kPluginsKeys = {
    KeySpec<P>{.name = "directory",
               .type = KeyType::path,
               .default_value = "/usr/lib/orchestratord/plugins",
               .env = "ORCHESTRATORD_PLUGINS_DIRECTORY",
               .description = "directory scanned for projection plugins (*.so); rescanned on SIGHUP",
               .reloadable = true,
               .field = &P::directory},
};

using R = ReplicaSetConfig;
const std::array kReplicaSetKeys = {
    KeySpec<R>{.name = "name",
               .type = KeyType::replica_set_name,
               .env = "REPLICA_SET",
               .description = "replica set name; every daemon naming it joins one cluster (required)",
               .field = &R::name},
    KeySpec<R>{.name = "preset",
               .type = KeyType::choice,
               .env = "ORCHESTRATORD_PRESET",
               .description = "named set of replica-set values applied under the file's values",
               .field = &R::preset,
               .choices = "development|standard-production|high-throughput|stable-few-workers"},
    KeySpec<R>{.name = "heartbeat_interval",
               .type = KeyType::duration,
               .default_value = "5s",
               .env = "HEARTBEAT_INTERVAL",
               .description = "how often a worker proves it is alive",
               .field = &R::heartbeat_interval,
               .min = 1,
               .range_error = "HeartbeatInterval must be positive"},
    KeySpec<R>{.name = "stale_worker_timeout",
               .type = KeyType::duration,
               .default_value = "30s",
               .env = "STALE_WORKER_TIMEOUT",
               .description = "a worker silent this long is removed and its slices move",
               .field = &R::stale_worker_timeout,
               .min = 1,
               .range_error = "StaleWorkerTimeout must be positive"},
    KeySpec<R>{.name = "coordination_timeout",
               .type = KeyType::duration,
               .default_value = "60s",
               .env = "COORDINATION_TIMEOUT",
               .description = "longest wait for a slice's previous owner to release it",
               .field = &R::coordination_timeout,
               .min = 1,
               .range_error = "CoordinationTimeout must be positive"},
    KeySpec<R>{.name = "batch_size",
               .type = KeyType::integer,
               .default_value = "100",
               .env = "BATCH_SIZE",
               .description = "events read and handled per batch",
               .field = &R::batch_size,
               .min = 1,
               .max = 1000000,
               .range_error = "BatchSize must be positive"},
    KeySpec<R>{.name = "slices",
               .type = KeyType::integer,
               .default_value = "64",
               .env = "ORCHESTRATORD_SLICES",
               .description = "virtual partitions of the stream; fixed when the replica set is first created",
               .field = &R::slices,
               .min = 1,
               .max = 16384,
               .range_error = "Slices must be between 1 and 16384"},
    KeySpec<R>{.name = "poll_interval_max",
               .type = KeyType::duration,
               .default_value = "1s",
               .env = "ORCHESTRATORD_POLL_INTERVAL_MAX",
               .description = "longest pause between reads while idle without NOTIFY",
               .field = &R::poll_interval_max,
               .min = 1,
               .range_error = "PollIntervalMax must be positive"},
    KeySpec<R>{.name = "max_read_bytes",
               .type = KeyType::integer,
               .default_value = "67108864",
               .env = "ORCHESTRATORD_MAX_READ_BYTES",
               .description = "most payload bytes one read fetches (64 MiB; a single larger event is still read, "
                              "alone); bounds memory with large events together with batch_size",
               .field = &R::max_read_bytes,
               .min = 1,
               .range_error = "MaxReadBytes must be positive"},
};

using J = ProjectionConfig;
const std::array kProjectionKeys = {
    KeySpec<J>{.name = "name",
               .type = KeyType::projection_name,
               .description = "projection name declared by a plugin (required)",
               .field = &J::name},
    KeySpec<J>{.name = "plugin",
               .type = KeyType::text,
               .description = "plugin name or file name (shop.so) that must declare the projection (optional; picks "
                              "one file when several declare it)",
               .field = &J::plugin},
    KeySpec<J>{.name = "slow_handler_after",
               .type = KeyType::duration,
               .default_value = "30s",
               .description = "a handler call running longer is reported (log line and metric), again every period; "
                              "0 = never",
               .field = &J::slow_handler_after,
               .min = 0,
               .range_error = "SlowHandlerAfter must not be negative"},
};

using O = OnErrorConfig;
const std::array kOnErrorKeys = {
    KeySpec<O>{.name = "policy",
               .type = KeyType::choice,
               .default_value = "pause",
               .description = "after the last attempt: pause the projection at the event, or dead-letter it and go on",
               .field = &O::policy},
    KeySpec<O>{.name = "max_attempts",
               .type = KeyType::integer,
               .default_value = "5",
               .description = "attempts before the policy applies",
               .field = &O::max_attempts,
               .min = 1,
               .max = 1000,
               .range_error = "MaxAttempts must be between 1 and 1000"},
    KeySpec<O>{.name = "initial_backoff",
               .type = KeyType::duration,
               .default_value = "1s",
               .description = "wait after the first failure (doubles each time)",
               .field = &O::initial_backoff,
               .min = 0,
               .range_error = "InitialBackoff must not be negative"},
    KeySpec<O>{.name = "max_backoff",
               .type = KeyType::duration,
               .default_value = "1m",
               .description = "longest wait between attempts",
               .field = &O::max_backoff,
               .min = 0,
               .range_error = "MaxBackoff must not be negative"},
    KeySpec<O>{.name = "crash_limit",
               .type = KeyType::integer,
               .default_value = "3",
               .description = "crashes of the process in the handler on one event, after which the policy applies to "
                              "that event without calling the handler again (needs a writable state_directory)",
               .field = &O::crash_limit,
               .min = 1,
               .max = 1000,
               .range_error = "CrashLimit must be between 1 and 1000"},
};

const Sections kSections{
    SectionSpec<Config>{.title = "top level", .keys = kTopLevelKeys},
    SectionSpec<DatabaseConfig>{.title = "database",
                                .key = "database",
                                .parent = "top level",
                                .prefix = "database.",
                                .keys = kDatabaseKeys,
                                .in_config = &Config::database},
    SectionSpec<EventStoreConfig>{.title = "event_store",
                                  .key = "event_store",
                                  .parent = "top level",
                                  .prefix = "event_store.",
                                  .keys = kEventStoreKeys,
                                  .in_config = &Config::event_store},
    SectionSpec<LoggingConfig>{.title = "logging",
                               .key = "logging",
                               .parent = "top level",
                               .prefix = "logging.",
                               .keys = kLoggingKeys,
                               .in_config = &Config::logging},
    SectionSpec<HttpConfig>{.title = "http",
                            .key = "http",
                            .parent = "top level",
                            .prefix = "http.",
                            .keys = kHttpKeys,
                            .in_config = &Config::http},
    SectionSpec<PluginsConfig>{.title = "plugins",
                               .key = "plugins",
                               .parent = "top level",
                               .prefix = "plugins.",
                               .keys = kPluginsKeys,
                               .in_config = &Config::plugins},
    // The lists' entries are bound by the loader, one per entry, with the
    // entry's path ("replica_sets[0].") as prefix.
    SectionSpec<ReplicaSetConfig>{
        .title = "replica_sets[]", .key = "replica_sets", .parent = "top level", .keys = kReplicaSetKeys},
    SectionSpec<ProjectionConfig>{.title = "replica_sets[].projections[]",
                                  .key = "projections",
                                  .parent = "replica_sets[]",
                                  .keys = kProjectionKeys,
                                  .free_form_key = "config"},
    SectionSpec<OnErrorConfig>{.title = "replica_sets[].projections[].on_error",
                               .key = "on_error",
                               .parent = "replica_sets[].projections[]",
                               .keys = kOnErrorKeys},
};

}  // namespace

const char* key_type_name(KeyType type) {
    switch (type) {
        case KeyType::text:
            return "string";
        case KeyType::conninfo:
            return "connection string (secret)";
        case KeyType::identifier:
        case KeyType::schema_name:
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
        case KeyType::boolean:
            return "boolean";
        case KeyType::path:
            return "path";
    }
    return "?";
}

const Sections& sections() {
    return kSections;
}

std::vector<std::string_view> nested_keys(std::string_view title) {
    std::vector<std::string_view> keys;
    for_each_section([&](const auto& section) {
        if (section.title == title && !section.free_form_key.empty()) keys.push_back(section.free_form_key);
    });
    for_each_section([&](const auto& section) {
        if (section.parent == title) keys.push_back(section.key);
    });
    return keys;
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
