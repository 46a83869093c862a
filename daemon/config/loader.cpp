#include "config/loader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <charconv>
#include <filesystem>
#include <ios>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "config/cross_key_rules.hpp"
#include "config/key_binder.hpp"
#include "config/presets.hpp"
#include "config/schema.hpp"

namespace orchestratord::config {

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error([&] {
          std::string text = "invalid configuration:";
          for (const auto& problem : problems) text += "\n  " + problem;
          return text;
      }()),
      problems_(std::move(problems)) {}

namespace {

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

// Why `file` cannot be read, for the operator who must fix it: the system's
// reason, who we run as, and who may read the file.
std::string unreadable_reason(const std::string& file) {
    std::string reason;
    const int descriptor = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) {
        reason = std::strerror(errno);
    } else {
        ::close(descriptor);
        reason = "not a readable file";
    }
    struct stat info {};
    const bool known = ::stat(file.c_str(), &info) == 0;
    reason += " (running as uid " + std::to_string(::geteuid()) + ", gid " + std::to_string(::getegid());
    if (known) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
        reason += "; the file is owned by uid " + std::to_string(info.st_uid) + ", gid " + std::to_string(info.st_gid) +
                  ", mode " + mode;
    }
    return reason + ")";
}

YAML::Node read_file(const LoadOptions& options) {
    if (options.file.empty()) return YAML::Node();
    std::error_code ec;
    if (!std::filesystem::exists(options.file, ec)) {
        if (!options.file_required) return YAML::Node();
        throw ConfigError({"config file " + options.file + ": does not exist"});
    }
    if (std::filesystem::is_directory(options.file, ec)) {
        throw ConfigError({"config file " + options.file + ": is a directory, not a file"});
    }
    try {
        YAML::Node root = YAML::LoadFile(options.file);
        if (root.IsNull()) return YAML::Node();  // an empty file
        if (!root.IsMap()) throw ConfigError({"config file " + options.file + ": expected a mapping at the top level"});
        return root;
    } catch (const YAML::BadFile&) {
        throw ConfigError({"config file " + options.file + ": cannot be read: " + unreadable_reason(options.file)});
    } catch (const YAML::Exception& e) {
        throw ConfigError({"config file " + options.file + ": invalid YAML at line " + std::to_string(e.mark.line + 1) +
                           ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg});
    } catch (const std::ios_base::failure& e) {
        // A read that fails after the open (a device, an I/O error).
        throw ConfigError({"config file " + options.file + ": cannot be read: " + e.what()});
    }
}

void bind_projection(KeyBinder& binder, const YAML::Node& node, const std::string& prefix,
                     const std::string& replica_set_name, std::set<std::string>& seen, Config& config,
                     Findings& findings, ProjectionConfig& out) {
    if (!node.IsMap()) {
        findings.problems.push_back(trim_dot(prefix) + ": expected a mapping with at least `name`" +
                                    where_in_file(node));
        return;
    }
    binder.bind(node, prefix, section<ProjectionConfig>(), out);
    check_projection(out, prefix, replica_set_name, seen, findings);

    const YAML::Node free_form = node[std::string(section<ProjectionConfig>().free_form_key)];
    if (free_form.IsDefined() && !free_form.IsNull() && !free_form.IsMap()) {
        findings.problems.push_back(prefix + "config: expected a mapping" + where_in_file(free_form));
    }
    out.config_json = free_form.IsDefined() && free_form.IsMap() ? yaml_to_json(free_form).dump() : "{}";
    config.settings.push_back(Setting{prefix + "config", out.config_json,
                                      free_form.IsDefined() ? Source::file : Source::default_value, "", false});

    // on_error is either a policy name or a mapping of the policy's keys.
    YAML::Node on_error = node[std::string(section<OnErrorConfig>().key)];
    if (on_error.IsDefined() && on_error.IsScalar()) {
        YAML::Node expanded(YAML::NodeType::Map);
        expanded["policy"] = on_error;
        on_error = expanded;
    }
    binder.bind(on_error, prefix + "on_error.", section<OnErrorConfig>(), out.on_error);
    check_on_error(out.on_error, prefix + "on_error.", findings, KeyOrigins(config.settings));
}

void bind_replica_set(KeyBinder& binder, const YAML::Node& node, const std::string& prefix, bool name_reported,
                      std::set<std::string>& seen, const Environment& env, Config& config, Findings& findings,
                      ReplicaSetConfig& out) {
    // The preset is resolved first: its values sit between defaults and the file.
    std::string preset_name;
    if (auto found = env.find("ORCHESTRATORD_PRESET"); found != env.end()) {
        preset_name = found->second;
    } else if (node["preset"].IsDefined() && node["preset"].IsScalar()) {
        preset_name = node["preset"].Scalar();
    }
    // Unknown names are reported when the preset key itself is bound.
    const Preset* preset = preset_name.empty() ? nullptr : find_preset(preset_name);

    binder.bind(node, prefix, section<ReplicaSetConfig>(), out, preset);
    check_replica_set(out, prefix, name_reported, seen, findings, KeyOrigins(config.settings));

    const YAML::Node projections = node[std::string(section<ProjectionConfig>().key)];
    if (projections.IsDefined() && !projections.IsNull() && !projections.IsSequence()) {
        findings.problems.push_back(prefix + "projections: expected a list" + where_in_file(projections));
        return;
    }
    std::set<std::string> projection_names;
    if (projections.IsDefined() && projections.IsSequence()) {
        for (size_t i = 0; i < projections.size(); ++i) {
            ProjectionConfig projection;
            bind_projection(binder, projections[i], prefix + "projections[" + std::to_string(i) + "].", out.name,
                            projection_names, config, findings, projection);
            out.projections.push_back(std::move(projection));
        }
    }
    check_has_projections(out, prefix, findings);
}

}  // namespace

Config load_config(const LoadOptions& options) {
    Config config;
    config.file = options.file;
    const YAML::Node root = read_file(options);
    if (!root.IsDefined() || root.IsNull()) config.file.clear();
    Findings findings;
    KeyBinder binder(options.env, options.file, config.settings, findings);

    check_variable_names(options.env, findings);

    // The top level and the mappings under it, straight from the table.
    const bool has_root = root.IsDefined() && root.IsMap();
    const auto child = [&](std::string_view key) { return has_root ? root[std::string(key)] : YAML::Node(); };
    binder.bind(has_root ? root : YAML::Node(), "", section<Config>(), config);
    for_each_section([&](const auto& each) {
        if (each.in_config != nullptr)
            binder.bind(child(each.key), std::string(each.prefix), each, config.*each.in_config);
    });
    check_database(config.database, options.workers_required, findings, KeyOrigins(config.settings));

    // Replica sets: the file's list; REPLICA_SET names (or creates) the only one.
    YAML::Node replica_sets = child(section<ReplicaSetConfig>().key);
    if (replica_sets.IsDefined() && !replica_sets.IsNull() && !replica_sets.IsSequence()) {
        findings.problems.push_back("replica_sets: expected a list" + where_in_file(replica_sets));
        replica_sets = YAML::Node();
    }
    const size_t declared = replica_sets.IsDefined() && replica_sets.IsSequence() ? replica_sets.size() : 0;
    const bool named_by_env = options.env.contains("REPLICA_SET");
    check_replica_set_count(declared, named_by_env, options.workers_required, findings);
    const bool none_declared = declared == 0 && !named_by_env;  // reported once, not per entry
    // Environment only: the one REPLICA_SET names. None at all when none is needed.
    const size_t count = declared > 0 ? declared : (named_by_env || options.workers_required ? 1 : 0);
    // REPLICA_SET with several replica sets in the file was reported above;
    // it names each of them alike, which must not read as duplicates too.
    const bool one_name_for_several = named_by_env && declared > 1;
    std::set<std::string> names;
    for (size_t i = 0; i < count; ++i) {
        if (one_name_for_several) names.clear();
        const std::string prefix = "replica_sets[" + std::to_string(i) + "].";
        const YAML::Node node = declared > 0 ? replica_sets[i] : YAML::Node(YAML::NodeType::Map);
        if (!node.IsMap()) {
            findings.problems.push_back(trim_dot(prefix) + ": expected a mapping" + where_in_file(node));
            continue;
        }
        ReplicaSetConfig replica_set;
        bind_replica_set(binder, node, prefix, none_declared, names, options.env, config, findings, replica_set);
        config.replica_sets.push_back(std::move(replica_set));
    }

    if (!findings.problems.empty()) throw ConfigError(std::move(findings.problems));
    config.warnings = std::move(findings.warnings);
    return config;
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

}  // namespace orchestratord::config
