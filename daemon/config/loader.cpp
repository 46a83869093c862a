#include "config/loader.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "config/schema.hpp"
#include "pg/conninfo.hpp"

extern char** environ;

namespace orchestratord::config {

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error([&] {
          std::string text = "invalid configuration:";
          for (const auto& problem : problems) text += "\n  " + problem;
          return text;
      }()),
      problems_(std::move(problems)) {}

namespace {

// A candidate value for one key and where it came from.
struct Candidate {
    std::string text;
    Source source = Source::default_value;
    std::string origin;  // variable name, preset name or file path
};

// Collects problems and settings while the configuration is built.
class Builder {
public:
    Builder(const LoadOptions& options, Config& config) : options_(options), config_(config) {}

    void problem(std::string text) { problems_.push_back(std::move(text)); }
    bool has_problems() const { return !problems_.empty(); }
    std::vector<std::string> take_problems() { return std::move(problems_); }
    const Environment& env() const { return options_.env; }
    Config& config() { return config_; }

    // Binds every key of one section. `node` is the section's YAML mapping
    // (possibly undefined); `preset` supplies preset values for replica sets.
    template <typename Section>
    void bind(const YAML::Node& node, const std::string& prefix, std::span<const KeySpec<Section>> keys, Section& out,
              const Preset* preset, std::initializer_list<std::string_view> nested = {}) {
        reject_unknown_keys(node, prefix, keys, nested);
        for (const auto& spec : keys) {
            const std::string path = prefix + std::string(spec.name);
            Candidate candidate = resolve(node, path, spec, preset);
            assign(path, spec, candidate, out);
        }
    }

    template <typename Section>
    void reject_unknown_keys(const YAML::Node& node, const std::string& prefix, std::span<const KeySpec<Section>> keys,
                             std::initializer_list<std::string_view> nested) {
        if (!node.IsDefined() || node.IsNull()) return;
        if (!node.IsMap()) {
            problem(trim_dot(prefix) + ": expected a mapping" + where_in_file(node));
            return;
        }
        for (const auto& entry : node) {
            const std::string key = entry.first.as<std::string>();
            bool known = false;
            for (const auto& spec : keys) known = known || spec.name == key;
            for (const auto& name : nested) known = known || name == key;
            if (!known) {
                std::string allowed;
                for (const auto& spec : keys) {
                    if (!allowed.empty()) allowed += ", ";
                    allowed += spec.name;
                }
                for (const auto& name : nested) allowed += ", " + std::string(name);
                problem(prefix + key + ": unknown key" + where_in_file(entry.first) + " (allowed: " + allowed + ")");
            }
        }
    }

    static std::string where_in_file(const YAML::Node& node) {
        const auto mark = node.Mark();
        if (mark.is_null()) return "";
        return " at line " + std::to_string(mark.line + 1);
    }

    static std::string trim_dot(std::string text) {
        if (!text.empty() && text.back() == '.') text.pop_back();
        return text;
    }

private:
    template <typename Section>
    Candidate resolve(const YAML::Node& node, const std::string& path, const KeySpec<Section>& spec,
                      const Preset* preset) {
        if (!spec.env.empty()) {
            auto found = options_.env.find(std::string(spec.env));
            if (found != options_.env.end()) return {found->second, Source::env, std::string(spec.env)};
        }
        if (node.IsDefined() && node.IsMap()) {
            const YAML::Node value = node[std::string(spec.name)];
            if (value.IsDefined()) {
                if (value.IsScalar()) return {value.Scalar(), Source::file, options_.file};
                if (value.IsNull()) {
                    problem(path + ": has no value" + where_in_file(value));
                } else {
                    problem(path + ": expected a single value, got a " + (value.IsMap() ? "mapping" : "list") +
                            where_in_file(value));
                }
            }
        }
        if (preset != nullptr) {
            for (const auto& value : preset->values) {
                if (value.key == spec.name) {
                    return {std::string(value.value), Source::preset, std::string(preset->name)};
                }
            }
        }
        if (!spec.default_env.empty()) {
            auto found = options_.env.find(std::string(spec.default_env));
            if (found != options_.env.end() && !found->second.empty()) {
                return {found->second, Source::default_value, "$" + std::string(spec.default_env)};
            }
        }
        return {std::string(spec.default_value), Source::default_value, ""};
    }

    // Names the input in an error: the variable for environment values, the
    // key path otherwise, so the operator knows exactly what to fix.
    static std::string subject(const std::string& path, const Candidate& candidate) {
        switch (candidate.source) {
            case Source::env:
                return candidate.origin + " (" + path + ")";
            case Source::preset:
                return path + " (preset " + candidate.origin + ")";
            default:
                return path;
        }
    }

    template <typename Section>
    void assign(const std::string& path, const KeySpec<Section>& spec, const Candidate& candidate, Section& out) {
        const bool secret = spec.type == KeyType::conninfo;
        const std::string shown = secret ? pg::mask_conninfo(candidate.text) : candidate.text;
        auto fail = [&](const std::string& why) {
            problem(subject(path, candidate) + ": " + why + " (got \"" + shown + "\")");
        };
        std::string printable = shown;

        if (auto* field = std::get_if<std::string Section::*>(&spec.field)) {
            if (auto error = check_text(spec, candidate.text)) fail(*error);
            out.*(*field) = candidate.text;
        } else if (auto* field = std::get_if<int64_t Section::*>(&spec.field)) {
            int64_t number = 0;
            const char* begin = candidate.text.data();
            const char* end = begin + candidate.text.size();
            auto [ptr, ec] = std::from_chars(begin, end, number);
            if (candidate.text.empty() || ec != std::errc() || ptr != end) {
                fail("expected an integer");
            } else if (number < spec.min || number > spec.max) {
                fail(std::string(spec.range_error));
            }
            out.*(*field) = number;
        } else if (auto* field = std::get_if<Duration Section::*>(&spec.field)) {
            DurationParse parsed = parse_duration(candidate.text);
            if (!parsed.ok) {
                fail("invalid duration: " + parsed.error);
            } else if (parsed.value.count() < 0 && spec.min >= 0) {
                fail(std::string(spec.range_error) + ": negative durations are not allowed");
            } else if (parsed.value.count() < spec.min || parsed.value.count() > spec.max) {
                fail(std::string(spec.range_error));
            } else {
                printable = format_duration(parsed.value);
            }
            out.*(*field) = parsed.value;
        }
        config_.settings.push_back(Setting{path, printable, candidate.source, candidate.origin, spec.reloadable});
    }

    template <typename Section>
    std::optional<std::string> check_text(const KeySpec<Section>& spec, const std::string& text) {
        static const std::regex identifier(R"([A-Za-z_][A-Za-z0-9_]{0,62})");
        static const std::regex replica_set(R"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)");
        static const std::regex projection(R"([A-Za-z0-9_][A-Za-z0-9_.-]{0,99})");
        static const std::regex listen(R"((\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5}))");
        switch (spec.type) {
            case KeyType::text:
            case KeyType::path:
                return std::nullopt;
            case KeyType::conninfo:
                if (text.empty()) return std::nullopt;  // reported once, by the cross-key checks
                if (auto error = pg::conninfo_error(text)) return "invalid connection string: " + *error;
                return std::nullopt;
            case KeyType::identifier:
                if (!std::regex_match(text, identifier)) {
                    return "invalid identifier: use 1 to 63 letters, digits or underscores, not starting with a digit";
                }
                return std::nullopt;
            case KeyType::replica_set_name:
                if (text.empty()) return std::nullopt;  // reported as "ReplicaSet cannot be empty"
                if (!std::regex_match(text, replica_set)) {
                    return "ReplicaSet must be 1 to 63 lowercase letters, digits or hyphens, starting and ending "
                           "with a letter or digit";
                }
                return std::nullopt;
            case KeyType::projection_name:
                if (text.empty()) return std::nullopt;  // reported by the projection checks
                if (!std::regex_match(text, projection)) {
                    return "invalid projection name: use 1 to 100 letters, digits, '_', '-' or '.'";
                }
                return std::nullopt;
            case KeyType::choice: {
                if (text.empty() && spec.default_value.empty()) return std::nullopt;  // optional choice
                std::string_view choices = spec.choices;
                while (!choices.empty()) {
                    const size_t bar = choices.find('|');
                    if (choices.substr(0, bar) == text) return std::nullopt;
                    if (bar == std::string_view::npos) break;
                    choices.remove_prefix(bar + 1);
                }
                std::string allowed(spec.choices);
                for (auto& c : allowed) c = c == '|' ? ',' : c;
                return "must be one of " + allowed;
            }
            case KeyType::listen_address: {
                std::smatch match;
                if (!std::regex_match(text, match, listen)) return "expected host:port, e.g. 127.0.0.1:9090";
                const int port = std::stoi(match[2].str());
                if (port > 65535) return "port must be between 0 and 65535 (0: any free port)";
                return std::nullopt;
            }
            case KeyType::integer:
            case KeyType::duration:
                return std::nullopt;
        }
        return std::nullopt;
    }

    const LoadOptions& options_;
    Config& config_;
    std::vector<std::string> problems_;
};

// YAML gives every scalar as text; a projection's config becomes JSON with the
// types a reader would expect: quoted scalars stay strings, plain ones become
// booleans, null, integers or floats when they read as such.
nlohmann::json yaml_to_json(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
            return nullptr;
        case YAML::NodeType::Sequence: {
            nlohmann::json array = nlohmann::json::array();
            for (const auto& item : node) array.push_back(yaml_to_json(item));
            return array;
        }
        case YAML::NodeType::Map: {
            nlohmann::json object = nlohmann::json::object();
            for (const auto& entry : node) object[entry.first.as<std::string>()] = yaml_to_json(entry.second);
            return object;
        }
        case YAML::NodeType::Scalar: {
            const std::string& text = node.Scalar();
            if (node.Tag() == "!") return text;  // quoted in the file
            if (text == "true" || text == "True" || text == "TRUE") return true;
            if (text == "false" || text == "False" || text == "FALSE") return false;
            if (text == "~" || text == "null" || text == "Null" || text == "NULL") return nullptr;
            int64_t integer = 0;
            auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), integer);
            if (!text.empty() && ec == std::errc() && ptr == text.data() + text.size()) return integer;
            static const std::regex floating(R"([-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?)");
            if (std::regex_match(text, floating)) return std::stod(text);
            return text;
        }
    }
    return nullptr;
}

YAML::Node read_file(const LoadOptions& options) {
    if (options.file.empty()) return YAML::Node();
    std::error_code ec;
    if (!std::filesystem::exists(options.file, ec)) {
        if (!options.file_required) return YAML::Node();
        throw ConfigError({"config file " + options.file + ": does not exist"});
    }
    try {
        YAML::Node root = YAML::LoadFile(options.file);
        if (root.IsNull()) return YAML::Node();  // an empty file
        if (!root.IsMap()) throw ConfigError({"config file " + options.file + ": expected a mapping at the top level"});
        return root;
    } catch (const YAML::BadFile&) {
        throw ConfigError({"config file " + options.file + ": cannot be read"});
    } catch (const YAML::Exception& e) {
        throw ConfigError({"config file " + options.file + ": invalid YAML at line " + std::to_string(e.mark.line + 1) +
                           ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg});
    }
}

// Every variable the configuration reads, so a misspelt ORCHESTRATORD_* name
// is an error instead of being silently ignored.
std::set<std::string> known_variables() {
    std::set<std::string> names{std::string(kConfigFileEnv)};
    auto add = [&](auto keys) {
        for (const auto& spec : keys) {
            if (!spec.env.empty()) names.insert(std::string(spec.env));
        }
    };
    add(database_keys());
    add(event_store_keys());
    add(logging_keys());
    add(http_keys());
    add(plugins_keys());
    add(replica_set_keys());
    return names;
}

void bind_projection(Builder& builder, const YAML::Node& node, const std::string& prefix, ProjectionConfig& out) {
    if (!node.IsMap()) {
        builder.problem(Builder::trim_dot(prefix) + ": expected a mapping with at least `name`" +
                        Builder::where_in_file(node));
        return;
    }
    builder.bind(node, prefix, projection_keys(), out, nullptr, {"config", "on_error"});
    if (out.name.empty()) builder.problem(prefix + "name: projection name cannot be empty");

    const YAML::Node config = node["config"];
    if (config.IsDefined() && !config.IsNull() && !config.IsMap()) {
        builder.problem(prefix + "config: expected a mapping" + Builder::where_in_file(config));
    }
    out.config_json = config.IsDefined() && config.IsMap() ? yaml_to_json(config).dump() : "{}";
    builder.config().settings.push_back(Setting{prefix + "config", out.config_json,
                                                config.IsDefined() ? Source::file : Source::default_value, "", false});

    // on_error is either a policy name or a mapping of the policy's keys.
    YAML::Node on_error = node["on_error"];
    if (on_error.IsDefined() && on_error.IsScalar()) {
        YAML::Node expanded(YAML::NodeType::Map);
        expanded["policy"] = on_error;
        on_error = expanded;
    }
    builder.bind(on_error, prefix + "on_error.", on_error_keys(), out.on_error, nullptr);
    if (out.on_error.max_backoff < out.on_error.initial_backoff) {
        builder.problem(prefix + "on_error.max_backoff: MaxBackoff must not be less than InitialBackoff (" +
                        format_duration(out.on_error.max_backoff) + " < " +
                        format_duration(out.on_error.initial_backoff) + ")");
    }
}

void bind_replica_set(Builder& builder, const YAML::Node& node, const std::string& prefix, ReplicaSetConfig& out,
                      bool name_reported) {
    // The preset is resolved first: its values sit between defaults and the file.
    const Preset* preset = nullptr;
    std::string preset_name;
    if (auto env = builder.env().find("ORCHESTRATORD_PRESET"); env != builder.env().end()) {
        preset_name = env->second;
    } else if (node.IsMap() && node["preset"].IsDefined() && node["preset"].IsScalar()) {
        preset_name = node["preset"].Scalar();
    }
    if (!preset_name.empty()) preset = find_preset(preset_name);  // unknown names are reported by bind()

    builder.bind(node, prefix, replica_set_keys(), out, preset, {"projections"});
    if (out.name.empty() && !name_reported) {
        builder.problem(prefix + "name: ReplicaSet cannot be empty (set it in the file or with REPLICA_SET)");
    }
    if (out.stale_worker_timeout.count() > 0 && out.heartbeat_interval.count() > 0) {
        if (out.stale_worker_timeout <= out.heartbeat_interval) {
            builder.problem(
                prefix + "stale_worker_timeout: StaleWorkerTimeout must be greater than HeartbeatInterval (" +
                format_duration(out.stale_worker_timeout) + " <= " + format_duration(out.heartbeat_interval) + ")");
        } else if (out.stale_worker_timeout < 3 * out.heartbeat_interval) {
            builder.config().warnings.push_back(
                prefix + "stale_worker_timeout: " + format_duration(out.stale_worker_timeout) +
                " is less than 3x heartbeat_interval (" + format_duration(out.heartbeat_interval) +
                "); one delayed heartbeat could get a live worker removed");
        }
    }

    const YAML::Node projections = node.IsMap() ? node["projections"] : YAML::Node();
    if (projections.IsDefined() && !projections.IsNull() && !projections.IsSequence()) {
        builder.problem(prefix + "projections: expected a list" + Builder::where_in_file(projections));
        return;
    }
    std::set<std::string> seen;
    if (projections.IsDefined() && projections.IsSequence()) {
        for (size_t i = 0; i < projections.size(); ++i) {
            const std::string item = prefix + "projections[" + std::to_string(i) + "].";
            ProjectionConfig projection;
            bind_projection(builder, projections[i], item, projection);
            if (!projection.name.empty() && !seen.insert(projection.name).second) {
                builder.problem(item + "name: projection \"" + projection.name +
                                "\" is listed twice in replica set \"" + out.name + "\"");
            }
            out.projections.push_back(std::move(projection));
        }
    }
    if (out.projections.empty()) {
        builder.config().warnings.push_back(prefix + "projections: replica set \"" + out.name +
                                            "\" has no projections; its workers will only coordinate");
    }
}

}  // namespace

Config load_config(const LoadOptions& options) {
    Config config;
    config.file = options.file;
    const YAML::Node root = read_file(options);
    if (!root.IsDefined() || root.IsNull()) config.file.clear();
    Builder builder(options, config);

    // Unknown ORCHESTRATORD_* variables are errors, like unknown keys.
    const auto known = known_variables();
    for (const auto& [name, value] : options.env) {
        if (name.starts_with("ORCHESTRATORD_") && !known.contains(name)) {
            builder.problem(name + ": unknown environment variable (see docs/configuration.md for the list)");
        }
    }

    const YAML::Node none;
    auto section = [&](const char* name) { return root.IsDefined() && root.IsMap() ? root[name] : none; };
    // The top level: its own keys, and the sections bound below.
    builder.bind(root.IsDefined() && root.IsMap() ? root : none, "", top_level_keys(), config, nullptr,
                 {"database", "event_store", "logging", "http", "plugins", "replica_sets"});

    builder.bind(section("database"), "database.", database_keys(), config.database, nullptr);
    builder.bind(section("event_store"), "event_store.", event_store_keys(), config.event_store, nullptr);
    builder.bind(section("logging"), "logging.", logging_keys(), config.logging, nullptr);
    builder.bind(section("http"), "http.", http_keys(), config.http, nullptr);
    builder.bind(section("plugins"), "plugins.", plugins_keys(), config.plugins, nullptr);

    if (config.event_store.schema.starts_with("pg_")) {
        builder.problem("event_store.schema: names starting with pg_ are reserved by PostgreSQL (got \"" +
                        config.event_store.schema + "\")");
    }
    if (config.database.url.empty()) {
        builder.problem("database.url: database url cannot be empty (set database.url in the file or DATABASE_URL)");
    }
    if (config.database.max_idle_conns > config.database.max_open_conns) {
        builder.problem("database.max_idle_conns: MaxIdleConns must not exceed MaxOpenConns (" +
                        std::to_string(config.database.max_idle_conns) + " > " +
                        std::to_string(config.database.max_open_conns) + ")");
    }

    // Replica sets: the file's list; REPLICA_SET names (or creates) the only one.
    YAML::Node replica_sets = section("replica_sets");
    if (replica_sets.IsDefined() && !replica_sets.IsNull() && !replica_sets.IsSequence()) {
        builder.problem("replica_sets: expected a list" + Builder::where_in_file(replica_sets));
        replica_sets = YAML::Node();
    }
    size_t count = replica_sets.IsDefined() && replica_sets.IsSequence() ? replica_sets.size() : 0;
    const bool env_names_one = options.env.contains("REPLICA_SET");
    if (env_names_one && count > 1) {
        builder.problem("REPLICA_SET: cannot choose a name for " + std::to_string(count) +
                        " replica sets; remove it or declare one replica set in the file");
    }
    const bool no_replica_sets = count == 0 && !env_names_one;
    if (count == 0) {
        if (!env_names_one) {
            builder.problem(
                "replica_sets: ReplicaSet cannot be empty (declare replica_sets in the file or set REPLICA_SET)");
        }
        count = 1;  // environment only: one replica set named by REPLICA_SET
    }
    std::set<std::string> names;
    for (size_t i = 0; i < count; ++i) {
        const std::string prefix = "replica_sets[" + std::to_string(i) + "].";
        const YAML::Node node =
            replica_sets.IsDefined() && replica_sets.IsSequence() ? replica_sets[i] : YAML::Node(YAML::NodeType::Map);
        if (!node.IsMap()) {
            builder.problem(Builder::trim_dot(prefix) + ": expected a mapping" + Builder::where_in_file(node));
            continue;
        }
        ReplicaSetConfig replica_set;
        bind_replica_set(builder, node, prefix, replica_set, no_replica_sets);
        if (!replica_set.name.empty() && !names.insert(replica_set.name).second) {
            builder.problem(prefix + "name: replica set \"" + replica_set.name + "\" is declared twice");
        }
        config.replica_sets.push_back(std::move(replica_set));
    }

    if (builder.has_problems()) throw ConfigError(builder.take_problems());
    return config;
}

Environment process_environment() {
    Environment env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        std::string_view text(*entry);
        const size_t equals = text.find('=');
        if (equals == std::string_view::npos) continue;
        env.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
    }
    return env;
}

LoadOptions resolve_load_options(const std::string& cli_config_path, Environment env) {
    LoadOptions options;
    if (!cli_config_path.empty()) {
        options.file = cli_config_path;
    } else if (auto found = env.find(std::string(kConfigFileEnv)); found != env.end() && !found->second.empty()) {
        options.file = found->second;
    } else {
        options.file = std::string(kDefaultConfigFile);
        options.file_required = false;
    }
    options.env = std::move(env);
    return options;
}

std::string describe_keys_markdown() {
    std::ostringstream out;
    auto table = [&](const std::string& title, const std::string& prefix, auto keys) {
        out << "### " << title << "\n\n";
        out << "| key | type | default | environment | reloadable | description |\n";
        out << "|---|---|---|---|---|---|\n";
        for (const auto& spec : keys) {
            std::string fallback = spec.default_value.empty() ? "—" : "`" + std::string(spec.default_value) + "`";
            if (!spec.default_env.empty())
                fallback = "`$" + std::string(spec.default_env) + "` if set, else " + fallback;
            std::string type = key_type_name(spec.type);
            if (spec.type == KeyType::choice) {
                std::string choices(spec.choices);
                for (auto& c : choices) c = c == '|' ? ',' : c;
                type = "one of " + choices;
            }
            for (auto& c : type) c = c == '|' ? '/' : c;
            out << "| `" << prefix << spec.name << "` | " << type << " | " << fallback << " | "
                << (spec.env.empty() ? "—" : "`" + std::string(spec.env) + "`") << " | "
                << (spec.reloadable ? "yes" : "no") << " | " << spec.description << " |\n";
        }
        out << "\n";
    };
    table("top level", "", top_level_keys());
    table("database", "database.", database_keys());
    table("event_store", "event_store.", event_store_keys());
    table("logging", "logging.", logging_keys());
    table("http", "http.", http_keys());
    table("plugins", "plugins.", plugins_keys());
    table("replica_sets[]", "", replica_set_keys());
    table("replica_sets[].projections[]", "", projection_keys());
    table("replica_sets[].projections[].on_error", "", on_error_keys());
    out << "### presets\n\n| preset | heartbeat_interval | stale_worker_timeout | coordination_timeout | batch_size |\n"
        << "|---|---|---|---|---|\n";
    for (const auto& preset : presets()) {
        out << "| `" << preset.name << "`";
        for (const auto& value : preset.values) out << " | " << value.value;
        out << " |\n";
    }
    return out.str();
}

std::string format_settings(const Config& config) {
    size_t width = 0;
    for (const auto& setting : config.settings) width = std::max(width, setting.path.size() + setting.value.size() + 3);
    std::ostringstream out;
    for (const auto& setting : config.settings) {
        std::string line = setting.path + " = " + (setting.value.empty() ? "\"\"" : setting.value);
        line.resize(std::max(line.size(), width), ' ');
        out << line << "  # " << source_name(setting.source);
        if (!setting.origin.empty()) out << " " << setting.origin;
        out << "\n";
    }
    return out.str();
}

}  // namespace orchestratord::config
