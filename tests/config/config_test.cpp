#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "config/key_reference.hpp"
#include "config/loader.hpp"
#include "support/temp_dir.hpp"

using namespace orchestratord::config;
using orchestratord::test::TempDir;
using namespace std::chrono_literals;

namespace {

constexpr const char* kMinimal = R"(
database:
  url: postgres://app:s3cret@db.example:5432/events
replica_sets:
  - name: main
)";

Config load(const std::string& yaml, Environment env = {}) {
    TempDir dir;
    LoadOptions options;
    options.file = dir.write("orchestratord.yaml", yaml);
    options.env = std::move(env);
    return load_config(options);
}

// The problems a load reports, joined; empty when it succeeds.
std::string problems(const std::string& yaml, Environment env = {}) {
    try {
        load(yaml, std::move(env));
    } catch (const ConfigError& e) {
        std::string all;
        for (const auto& problem : e.problems()) all += problem + "\n";
        return all;
    }
    return "";
}

const Setting& setting(const Config& config, const std::string& path) {
    for (const auto& s : config.settings) {
        if (s.path == path) return s;
    }
    FAIL("no setting " << path);
    throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("every default applies when the file only names the database and replica set", "[config]") {
    const Config config = load(kMinimal);
    CHECK(config.database.max_open_conns == 25);
    CHECK(config.database.max_idle_conns == 5);
    CHECK(config.database.conn_max_lifetime == 1h);
    CHECK(config.event_store.schema == "public");
    CHECK(config.event_store.events_table == "events");
    CHECK(config.event_store.aggregate_heads_table == "aggregate_heads");
    CHECK(config.event_store.checkpoints_table == "projection_checkpoints");
    CHECK(config.logging.level == LogLevel::info);
    CHECK(config.logging.format == LogFormat::text);
    CHECK(config.http.listen == "127.0.0.1:9090");
    CHECK(config.http.max_connections == 64);
    CHECK(config.http.client_timeout == 10s);
    CHECK(config.plugins.directory == "/usr/lib/orchestratord/plugins");
    REQUIRE(config.replica_sets.size() == 1);
    const auto& rs = config.replica_sets[0];
    CHECK(rs.name == "main");
    CHECK(rs.preset.empty());
    CHECK(rs.heartbeat_interval == 5s);
    CHECK(rs.stale_worker_timeout == 30s);
    CHECK(rs.coordination_timeout == 60s);
    CHECK(rs.batch_size == 100);
    CHECK(rs.slices == 64);
    CHECK(rs.poll_interval_max == 1s);
    CHECK(setting(config, "replica_sets[0].batch_size").source == Source::default_value);
    CHECK(setting(config, "database.url").source == Source::file);
}

TEST_CASE("the four seed presets carry the seed's exact values", "[config][preset]") {
    struct Expected {
        const char* name;
        std::chrono::seconds heartbeat, stale, coordination;
        int64_t batch;
    };
    for (const auto& expected :
         {Expected{"development", 2s, 10s, 30s, 50}, Expected{"standard-production", 5s, 30s, 60s, 100},
          Expected{"high-throughput", 10s, 45s, 90s, 1000}, Expected{"stable-few-workers", 15s, 90s, 120s, 200}}) {
        INFO(expected.name);
        const Config config = load(std::string(kMinimal) + "    preset: " + expected.name + "\n");
        const auto& rs = config.replica_sets[0];
        CHECK(rs.preset == expected.name);
        CHECK(rs.heartbeat_interval == expected.heartbeat);
        CHECK(rs.stale_worker_timeout == expected.stale);
        CHECK(rs.coordination_timeout == expected.coordination);
        CHECK(rs.batch_size == expected.batch);
        CHECK(setting(config, "replica_sets[0].heartbeat_interval").source == Source::preset);
        CHECK(setting(config, "replica_sets[0].heartbeat_interval").origin == expected.name);
    }
    CHECK_THAT(problems(std::string(kMinimal) + "    preset: turbo\n"),
               Catch::Contains("replica_sets[0].preset: must be one of development,standard-production,high-throughput,"
                               "stable-few-workers (got \"turbo\")"));
}

TEST_CASE("precedence is default < preset < file < environment", "[config][precedence]") {
    const std::string base = std::string(kMinimal) + "    preset: development\n";
    // Preset over default.
    CHECK(load(base).replica_sets[0].heartbeat_interval == 2s);
    // File over preset.
    const std::string with_file = base + "    heartbeat_interval: 3s\n";
    CHECK(load(with_file).replica_sets[0].heartbeat_interval == 3s);
    CHECK(setting(load(with_file), "replica_sets[0].heartbeat_interval").source == Source::file);
    // Environment over file.
    const Config from_env = load(with_file, {{"HEARTBEAT_INTERVAL", "4s"}});
    CHECK(from_env.replica_sets[0].heartbeat_interval == 4s);
    CHECK(setting(from_env, "replica_sets[0].heartbeat_interval").source == Source::env);
    CHECK(setting(from_env, "replica_sets[0].heartbeat_interval").origin == "HEARTBEAT_INTERVAL");
    // The preset fills only what the file leaves out.
    CHECK(load(with_file).replica_sets[0].stale_worker_timeout == 10s);
    // The environment can choose the preset too.
    CHECK(load(kMinimal, {{"ORCHESTRATORD_PRESET", "high-throughput"}}).replica_sets[0].batch_size == 1000);
}

TEST_CASE("seed environment variables override every replica set", "[config][env]") {
    const Config config = load(kMinimal, {{"DATABASE_URL", "postgres://other@h/db"},
                                          {"REPLICA_SET", "from-env"},
                                          {"HEARTBEAT_INTERVAL", "500ms"},
                                          {"STALE_WORKER_TIMEOUT", "1m30s"},
                                          {"COORDINATION_TIMEOUT", "2m"},
                                          {"BATCH_SIZE", "250"}});
    CHECK(config.database.url == "postgres://other@h/db");
    const auto& rs = config.replica_sets[0];
    CHECK(rs.name == "from-env");
    CHECK(rs.heartbeat_interval == 500ms);
    CHECK(rs.stale_worker_timeout == 90s);
    CHECK(rs.coordination_timeout == 120s);
    CHECK(rs.batch_size == 250);
}

TEST_CASE("ORCHESTRATORD_* variables set the other keys", "[config][env]") {
    const Config config = load(kMinimal, {{"ORCHESTRATORD_LOGGING_LEVEL", "debug"},
                                          {"ORCHESTRATORD_LOGGING_FORMAT", "json"},
                                          {"ORCHESTRATORD_HTTP_LISTEN", "0.0.0.0:9100"},
                                          {"ORCHESTRATORD_PLUGINS_DIRECTORY", "/opt/plugins"},
                                          {"ORCHESTRATORD_DATABASE_MAX_OPEN_CONNS", "10"},
                                          {"ORCHESTRATORD_EVENT_STORE_SCHEMA", "es"},
                                          {"ORCHESTRATORD_SLICES", "128"}});
    CHECK(config.logging.level == LogLevel::debug);
    CHECK(config.logging.format == LogFormat::json);
    CHECK(config.http.listen == "0.0.0.0:9100");
    CHECK(config.plugins.directory == "/opt/plugins");
    CHECK(config.database.max_open_conns == 10);
    CHECK(config.event_store.schema == "es");
    CHECK(config.replica_sets[0].slices == 128);
}

TEST_CASE("the configuration can come from the environment alone", "[config][env]") {
    LoadOptions options = resolve_load_options("", {{"DATABASE_URL", "postgres://h/db"}, {"REPLICA_SET", "solo"}});
    CHECK(options.file == "/etc/orchestratord/orchestratord.yaml");
    CHECK_FALSE(options.file_required);
    options.file = "/nonexistent/orchestratord.yaml";  // as on a machine without the default file
    const Config config = load_config(options);
    CHECK(config.file.empty());
    REQUIRE(config.replica_sets.size() == 1);
    CHECK(config.replica_sets[0].name == "solo");
}

TEST_CASE("the config file is chosen by --config, then ORCHESTRATORD_CONFIG", "[config]") {
    CHECK(resolve_load_options("/a.yaml", {{"ORCHESTRATORD_CONFIG", "/b.yaml"}}).file == "/a.yaml");
    CHECK(resolve_load_options("", {{"ORCHESTRATORD_CONFIG", "/b.yaml"}}).file == "/b.yaml");
    CHECK(resolve_load_options("", {{"ORCHESTRATORD_CONFIG", "/b.yaml"}}).file_required);
    LoadOptions options;
    options.file = "/nonexistent/orchestratord.yaml";
    try {
        load_config(options);
        FAIL("a missing --config file must be an error");
    } catch (const ConfigError& e) {
        CHECK_THAT(e.what(), Catch::Contains("/nonexistent/orchestratord.yaml: does not exist"));
    }
}

TEST_CASE("validation uses the seed's wording, prefixed with the key path", "[config][validation]") {
    CHECK_THAT(problems("replica_sets:\n  - name: main\n"),
               Catch::Contains("database.url: database url cannot be empty"));
    CHECK_THAT(problems("database: {url: 'postgres://h/db'}\nreplica_sets:\n  - heartbeat_interval: 1s\n"),
               Catch::Contains("replica_sets[0].name: ReplicaSet cannot be empty"));
    CHECK_THAT(problems("database: {url: 'postgres://h/db'}\n"), Catch::Contains("ReplicaSet cannot be empty"));
    CHECK_THAT(problems(std::string(kMinimal) + "    heartbeat_interval: 0s\n"),
               Catch::Contains("replica_sets[0].heartbeat_interval: HeartbeatInterval must be positive (got \"0s\")"));
    CHECK_THAT(problems(std::string(kMinimal) + "    heartbeat_interval: 10s\n    stale_worker_timeout: 10s\n"),
               Catch::Contains("replica_sets[0].stale_worker_timeout: StaleWorkerTimeout must be greater than "
                               "HeartbeatInterval (10s <= 10s)"));
    CHECK_THAT(problems(std::string(kMinimal) + "    batch_size: 0\n"),
               Catch::Contains("replica_sets[0].batch_size: BatchSize must be positive (got \"0\")"));
    CHECK_THAT(problems(std::string(kMinimal) + "    coordination_timeout: 0s\n"),
               Catch::Contains("replica_sets[0].coordination_timeout: CoordinationTimeout must be positive"));
    CHECK_THAT(problems(std::string(kMinimal) + "    slices: 0\n"), Catch::Contains("replica_sets[0].slices: Slices"));
    CHECK_THAT(problems("database: {url: 'postgres://h/db', max_open_conns: 2, max_idle_conns: 3}\n"
                        "replica_sets: [{name: main}]\n"),
               Catch::Contains("database.max_idle_conns: MaxIdleConns must not exceed MaxOpenConns (3 > 2)"));
}

TEST_CASE("every problem is reported at once", "[config][validation]") {
    const std::string all = problems(std::string(kMinimal) + "    heartbeat_interval: 0s\n    batch_size: -1\n",
                                     {{"COORDINATION_TIMEOUT", "soon"}});
    CHECK_THAT(all, Catch::Contains("HeartbeatInterval must be positive"));
    CHECK_THAT(all, Catch::Contains("BatchSize must be positive"));
    CHECK_THAT(all, Catch::Contains("COORDINATION_TIMEOUT"));
}

TEST_CASE("a stale timeout under 3x the heartbeat is valid but warned about", "[config][validation]") {
    auto stale_warnings = [](const Config& config) {
        std::vector<std::string> found;
        for (const auto& warning : config.warnings) {
            if (warning.find("stale_worker_timeout") != std::string::npos) found.push_back(warning);
        }
        return found;
    };
    const Config config = load(std::string(kMinimal) + "    heartbeat_interval: 5s\n    stale_worker_timeout: 12s\n");
    const auto warnings = stale_warnings(config);
    REQUIRE(warnings.size() == 1);
    CHECK_THAT(warnings[0],
               Catch::Contains("replica_sets[0].stale_worker_timeout: 12s is less than 3x heartbeat_interval (5s)"));
    CHECK(stale_warnings(load(std::string(kMinimal) + "    heartbeat_interval: 5s\n    stale_worker_timeout: 15s\n"))
              .empty());
}

TEST_CASE("malformed environment values name the variable and the value", "[config][env]") {
    CHECK_THAT(problems(kMinimal, {{"HEARTBEAT_INTERVAL", "5"}}),
               Catch::Contains("HEARTBEAT_INTERVAL (replica_sets[0].heartbeat_interval): invalid duration: missing "
                               "unit in \"5\""));
    CHECK_THAT(problems(kMinimal, {{"STALE_WORKER_TIMEOUT", "-30s"}}),
               Catch::Contains("STALE_WORKER_TIMEOUT (replica_sets[0].stale_worker_timeout): StaleWorkerTimeout must "
                               "be positive: negative durations are not allowed (got \"-30s\")"));
    CHECK_THAT(problems(kMinimal, {{"BATCH_SIZE", "ten"}}),
               Catch::Contains("BATCH_SIZE (replica_sets[0].batch_size): expected an integer (got \"ten\")"));
    CHECK_THAT(problems(kMinimal, {{"BATCH_SIZE", "12abc"}}), Catch::Contains("BATCH_SIZE"));
    CHECK_THAT(problems(kMinimal, {{"REPLICA_SET", "Not_Valid"}}),
               Catch::Contains("REPLICA_SET (replica_sets[0].name): ReplicaSet must be"));
    CHECK_THAT(problems(kMinimal, {{"ORCHESTRATORD_LOGGING_LEVEL", "loud"}}),
               Catch::Contains("ORCHESTRATORD_LOGGING_LEVEL (logging.level): must be one of"));
    CHECK_THAT(problems(kMinimal, {{"ORCHESTRATORD_HEARTBEAT", "5s"}}),
               Catch::Contains("ORCHESTRATORD_HEARTBEAT: unknown environment variable"));
    // libpq's reason without the part of the URL it quotes (which could be a piece of the password).
    CHECK_THAT(problems(kMinimal, {{"DATABASE_URL", "postgres://u:pw@h/db?colour=red"}}),
               Catch::Contains("DATABASE_URL (database.url): invalid connection string: invalid URI query parameter "
                               "(got \"(a postgres URL libpq cannot parse, not shown)\")"));
}

TEST_CASE("unknown keys are errors naming their path", "[config][validation]") {
    CHECK_THAT(problems(std::string(kMinimal) + "datbase: {}\n"), Catch::Contains("datbase: unknown key at line"));
    CHECK_THAT(problems(std::string(kMinimal) + "    heartbeat_intervall: 5s\n"),
               Catch::Contains("replica_sets[0].heartbeat_intervall: unknown key"));
    CHECK_THAT(problems("database:\n  url: postgres://h/db\n  pool_size: 3\nreplica_sets: [{name: a}]\n"),
               Catch::Contains("database.pool_size: unknown key"));
    CHECK_THAT(problems(std::string(kMinimal) + "    projections:\n      - name: p\n        colour: red\n"),
               Catch::Contains("replica_sets[0].projections[0].colour: unknown key"));
    CHECK_THAT(problems(std::string(kMinimal) + "    projections:\n      - name: p\n        on_error: {retries: 3}\n"),
               Catch::Contains("replica_sets[0].projections[0].on_error.retries: unknown key"));
}

TEST_CASE("wrong types are errors naming their path", "[config][validation]") {
    CHECK_THAT(problems(std::string(kMinimal) + "    heartbeat_interval: [1s, 2s]\n"),
               Catch::Contains("replica_sets[0].heartbeat_interval: expected a single value, got a list"));
    CHECK_THAT(problems(std::string(kMinimal) + "    batch_size: lots\n"),
               Catch::Contains("replica_sets[0].batch_size: expected an integer (got \"lots\")"));
    CHECK_THAT(problems(std::string(kMinimal) + "    batch_size: 1.5\n"), Catch::Contains("expected an integer"));
    CHECK_THAT(problems(std::string(kMinimal) + "logging: verbose\n"), Catch::Contains("logging: expected a mapping"));
    CHECK_THAT(problems("database: {url: 'postgres://h/db'}\nreplica_sets: {name: main}\n"),
               Catch::Contains("replica_sets: expected a list"));
    CHECK_THAT(problems(std::string(kMinimal) + "    heartbeat_interval:\n"),
               Catch::Contains("replica_sets[0].heartbeat_interval: has no value"));
    CHECK_THAT(problems(std::string(kMinimal) + "http: {listen: 'localhost'}\n"),
               Catch::Contains("http.listen: expected host:port"));
    CHECK_THAT(problems(std::string(kMinimal) + "http: {listen: 'localhost:70000'}\n"),
               Catch::Contains("http.listen: port must be between 0 and 65535"));
    CHECK_THAT(problems(std::string(kMinimal) + "http: {max_connections: 0}\n"),
               Catch::Contains("http.max_connections: must be between 1 and 10000 (got \"0\")"));
    CHECK_THAT(problems(std::string(kMinimal) + "http: {client_timeout: 10ms}\n"),
               Catch::Contains("http.client_timeout: must be between 100ms and 1h (got \"10ms\")"));
}

TEST_CASE("SQL identifiers are validated, never passed through raw", "[config][validation]") {
    CHECK_THAT(problems(std::string(kMinimal) + "event_store: {schema: 'public; DROP TABLE events'}\n"),
               Catch::Contains("event_store.schema: invalid identifier"));
    CHECK_THAT(problems(std::string(kMinimal) + "event_store: {events_table: '\"events\"'}\n"),
               Catch::Contains("event_store.events_table: invalid identifier"));
    CHECK_THAT(problems(std::string(kMinimal) + "event_store: {events_table: 1events}\n"),
               Catch::Contains("event_store.events_table: invalid identifier"));
    CHECK_THAT(problems(std::string(kMinimal) + "event_store: {schema: pg_events}\n"),
               Catch::Contains("event_store.schema: names starting with pg_ are reserved by PostgreSQL"));
    CHECK(
        load(std::string(kMinimal) + "event_store: {schema: es_1, events_table: Events}\n").event_store.events_table ==
        "Events");
}

TEST_CASE("replica set names must be URL-safe and unique", "[config][validation]") {
    CHECK_THAT(problems("database: {url: 'postgres://h/db'}\nreplica_sets: [{name: Orders}]\n"),
               Catch::Contains("replica_sets[0].name: ReplicaSet must be 1 to 63 lowercase letters"));
    CHECK_THAT(problems("database: {url: 'postgres://h/db'}\nreplica_sets: [{name: 'a b'}]\n"),
               Catch::Contains("ReplicaSet must be"));
    CHECK_THAT(problems("database: {url: 'postgres://h/db'}\nreplica_sets: [{name: a}, {name: a}]\n"),
               Catch::Contains("replica_sets[1].name: replica set \"a\" is declared twice"));
    CHECK_THAT(
        problems("database: {url: 'postgres://h/db'}\nreplica_sets: [{name: a}, {name: b}]\n", {{"REPLICA_SET", "c"}}),
        Catch::Contains("REPLICA_SET: cannot choose a name for 2 replica sets"));
}

TEST_CASE("several replica sets each carry their own projections and settings", "[config]") {
    const Config config = load(R"(
database: {url: 'postgres://h/db'}
replica_sets:
  - name: orders
    preset: high-throughput
    projections:
      - name: order_totals
        plugin: shop
        config:
          currency: EUR
          precision: 2
          ratio: 0.5
          enabled: true
          quoted: "42"
          nothing: ~
          tags: [a, b]
        on_error: dead-letter
      - name: audit
        on_error:
          policy: pause
          max_attempts: 3
          initial_backoff: 100ms
          max_backoff: 5s
  - name: users
    batch_size: 20
)");
    REQUIRE(config.replica_sets.size() == 2);
    const auto& orders = config.replica_sets[0];
    CHECK(orders.batch_size == 1000);
    REQUIRE(orders.projections.size() == 2);
    const auto& totals = orders.projections[0];
    CHECK(totals.name == "order_totals");
    CHECK(totals.plugin == "shop");
    const auto json = nlohmann::json::parse(totals.config_json);
    CHECK(json["currency"] == "EUR");
    CHECK(json["precision"] == 2);
    CHECK(json["ratio"] == 0.5);
    CHECK(json["enabled"] == true);
    CHECK(json["quoted"] == "42");
    CHECK(json["nothing"].is_null());
    CHECK(json["tags"] == nlohmann::json::array({"a", "b"}));
    CHECK(totals.on_error.policy == OnErrorPolicy::dead_letter);
    CHECK(totals.on_error.max_attempts == 5);
    const auto& audit = orders.projections[1];
    CHECK(audit.config_json == "{}");
    CHECK(audit.on_error.policy == OnErrorPolicy::pause);
    CHECK(audit.on_error.max_attempts == 3);
    CHECK(audit.on_error.initial_backoff == 100ms);
    CHECK(audit.on_error.max_backoff == 5s);
    const auto& users = config.replica_sets[1];
    CHECK(users.batch_size == 20);
    CHECK(users.heartbeat_interval == 5s);
    CHECK(users.projections.empty());
}

TEST_CASE("projection entries are validated", "[config][validation]") {
    const std::string base = std::string(kMinimal) + "    projections:\n";
    CHECK_THAT(problems(base + "      - plugin: x\n"),
               Catch::Contains("replica_sets[0].projections[0].name: projection name cannot be empty"));
    CHECK_THAT(problems(base + "      - name: p\n      - name: p\n"),
               Catch::Contains("replica_sets[0].projections[1].name: projection \"p\" is listed twice"));
    CHECK_THAT(problems(base + "      - name: p\n        on_error: explode\n"),
               Catch::Contains("replica_sets[0].projections[0].on_error.policy: must be one of pause,dead-letter"));
    CHECK_THAT(problems(base + "      - name: p\n        config: [1, 2]\n"),
               Catch::Contains("replica_sets[0].projections[0].config: expected a mapping"));
    CHECK_THAT(problems(base + "      - name: 'bad name!'\n"),
               Catch::Contains("replica_sets[0].projections[0].name: invalid projection name"));
    CHECK_THAT(problems(base + "      - just-a-string\n"),
               Catch::Contains("replica_sets[0].projections[0]: expected a mapping"));
}

TEST_CASE("the database password is masked in every output", "[config][secrets]") {
    const Config config = load(kMinimal);
    CHECK(config.database.url == "postgres://app:s3cret@db.example:5432/events");  // the real value is kept
    const std::string listing = format_settings(config);
    CHECK_THAT(listing, Catch::Contains("postgres://app:****@db.example:5432/events"));
    CHECK_THAT(listing, !Catch::Contains("s3cret"));

    // In error messages too, for URL and key=value forms.
    const std::string bad_port = problems(kMinimal, {{"DATABASE_URL", "postgres://app:s3cret@h/db?bogus=1"}});
    CHECK_THAT(bad_port, Catch::Contains("DATABASE_URL"));
    CHECK_THAT(bad_port, !Catch::Contains("s3cret"));
    // A string libpq cannot parse is not shown at all: the password could be anywhere in it.
    const std::string bad_keyword = problems(kMinimal, {{"DATABASE_URL", "host=h password='s3 cret' bogus=1"}});
    CHECK_THAT(bad_keyword, Catch::Contains("invalid connection string: invalid connection option (got \"(a "
                                            "connection string libpq cannot parse, not shown)\")"));
    CHECK_THAT(bad_keyword, !Catch::Contains("s3 cret"));
    const Config query_form = load(kMinimal, {{"DATABASE_URL", "postgres://h/db?user=a&password=s3cret"}});
    CHECK_THAT(format_settings(query_form), !Catch::Contains("s3cret"));
}

TEST_CASE("check-config lists every value with its source", "[config]") {
    const Config config =
        load(std::string(kMinimal) + "    preset: development\n    batch_size: 75\n", {{"HEARTBEAT_INTERVAL", "1s"}});
    const std::string listing = format_settings(config);
    CHECK_THAT(listing,
               Catch::Matches("(.|\n)*replica_sets\\[0\\]\\.heartbeat_interval = 1s +# env HEARTBEAT_INTERVAL(.|\n)*"));
    CHECK_THAT(listing,
               Catch::Matches("(.|\n)*replica_sets\\[0\\]\\.stale_worker_timeout = 10s +# preset development(.|\n)*"));
    CHECK_THAT(listing, Catch::Matches("(.|\n)*replica_sets\\[0\\]\\.batch_size = 75 +# file (.|\n)*"));
    CHECK_THAT(listing, Catch::Matches("(.|\n)*database\\.max_open_conns = 25 +# default(.|\n)*"));
}

TEST_CASE("invalid YAML is reported with its line", "[config][validation]") {
    CHECK_THAT(problems("database: {url: 'x'\nreplica_sets: [\n"), Catch::Contains("invalid YAML at line"));
    CHECK_THAT(problems("- just\n- a list\n"), Catch::Contains("expected a mapping at the top level"));
}

TEST_CASE("the key reference is generated from the key tables", "[config]") {
    const std::string markdown = describe_keys_markdown();
    CHECK_THAT(markdown, Catch::Contains("| `heartbeat_interval` | duration | `5s` | `HEARTBEAT_INTERVAL` |"));
    CHECK_THAT(markdown, Catch::Contains("| `database.url` |"));
    CHECK_THAT(markdown, Catch::Contains("| `high-throughput` | 10s | 45s | 90s | 1000 |"));
}

TEST_CASE("docs/configuration.md carries the current key reference", "[config][docs]") {
    const std::string doc = orchestratord::test::read_file(ORCHESTRATORD_SOURCE_DIR "/docs/configuration.md");
    const std::string keys = describe_keys_markdown();
    INFO("regenerate the end of docs/configuration.md with `orchestratord check-config --keys`");
    REQUIRE(doc.size() >= keys.size());
    CHECK(doc.substr(doc.size() - keys.size()) == keys);
}

TEST_CASE("the annotated example config/orchestratord.yaml is valid", "[config][docs]") {
    LoadOptions options;
    options.file = ORCHESTRATORD_SOURCE_DIR "/config/orchestratord.yaml";
    const Config config = load_config(options);
    REQUIRE(config.replica_sets.size() == 1);
    CHECK(config.replica_sets[0].projections.size() == 2);
    CHECK(config.warnings.empty());
}

TEST_CASE("state_directory defaults to $STATE_DIRECTORY, else /var/lib/orchestratord, and the file wins",
          "[config][state-directory]") {
    CHECK(load(kMinimal).state_directory == "/var/lib/orchestratord");
    CHECK(load(kMinimal, {{"STATE_DIRECTORY", "/var/lib/orchestratord-b"}}).state_directory ==
          "/var/lib/orchestratord-b");
    CHECK(load(std::string("state_directory: /srv/crumbs\n") + kMinimal,
               {{"STATE_DIRECTORY", "/var/lib/orchestratord-b"}})
              .state_directory == "/srv/crumbs");
    CHECK_THAT(format_settings(load(kMinimal, {{"STATE_DIRECTORY", "/x"}})),
               Catch::Contains("# default $STATE_DIRECTORY"));
}

TEST_CASE("on_error.crash_limit defaults to 3 and is range-checked", "[config][validation]") {
    const auto config = load(std::string(kMinimal) + "    projections:\n      - name: p\n");
    CHECK(config.replica_sets[0].projections[0].on_error.crash_limit == 3);
    CHECK_THAT(
        problems(std::string(kMinimal) + "    projections:\n      - name: p\n        on_error: {crash_limit: 0}\n"),
        Catch::Contains("replica_sets[0].projections[0].on_error.crash_limit: CrashLimit must be between 1 and "
                        "1000 (got \"0\")"));
}

TEST_CASE("http.required defaults to true under systemd and to false otherwise", "[config][http]") {
    CHECK_FALSE(load(kMinimal).http.required);
    const Config under_systemd = load(kMinimal, {{"NOTIFY_SOCKET", "/run/systemd/notify"}});
    CHECK(under_systemd.http.required);
    CHECK(setting(under_systemd, "http.required").origin == "$NOTIFY_SOCKET");
    // Said in the file, it holds under systemd too.
    CHECK_FALSE(load(std::string(kMinimal) + "http: {required: false}\n", {{"NOTIFY_SOCKET", "/run/systemd/notify"}})
                    .http.required);
    CHECK(load(kMinimal, {{"ORCHESTRATORD_HTTP_REQUIRED", "true"}}).http.required);
    CHECK(load(kMinimal).http.ready_max_lag == 0);
    CHECK(load(std::string(kMinimal) + "http: {ready_max_lag: 500}\n").http.ready_max_lag == 500);
}

TEST_CASE("a bad http.required or http.ready_max_lag is refused naming the key", "[config][http]") {
    CHECK_THAT(problems(std::string(kMinimal) + "http: {required: yes}\n"),
               Catch::Contains("http.required: must be true or false (got \"yes\")"));
    CHECK_THAT(problems(kMinimal, {{"ORCHESTRATORD_HTTP_REQUIRED", "1"}}),
               Catch::Contains("ORCHESTRATORD_HTTP_REQUIRED (http.required): must be true or false (got \"1\")"));
    CHECK_THAT(problems(std::string(kMinimal) + "http: {ready_max_lag: -1}\n"),
               Catch::Contains("http.ready_max_lag: must not be negative (got \"-1\")"));
}
