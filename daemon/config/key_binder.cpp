#include "config/key_binder.hpp"

#include <yaml-cpp/yaml.h>

#include "config/value_checks.hpp"
#include "pg/conninfo.hpp"

namespace orchestratord::config {

// A candidate value for one key and where it came from.
struct KeyBinder::Candidate {
    std::string text;
    Source source = Source::default_value;
    std::string origin;  // variable name, preset name or file path
};

namespace {

// Names the input in an error: the variable for environment values, the key
// path otherwise, so the operator knows exactly what to fix.
std::string subject(const std::string& path, Source source, const std::string& origin) {
    switch (source) {
        case Source::env:
            return origin + " (" + path + ")";
        case Source::preset:
            return path + " (preset " + origin + ")";
        default:
            return path;
    }
}

}  // namespace

std::string where_in_file(const YAML::Node& node) {
    const auto mark = node.Mark();
    if (mark.is_null()) return "";
    return " at line " + std::to_string(mark.line + 1);
}

std::string trim_dot(std::string prefix) {
    if (!prefix.empty() && prefix.back() == '.') prefix.pop_back();
    return prefix;
}

template <typename Section>
void KeyBinder::bind(const YAML::Node& node, const std::string& prefix, const SectionSpec<Section>& section,
                     Section& out, const Preset* preset) {
    reject_unknown_keys(node, prefix, section);
    for (const auto& spec : section.keys) {
        const std::string path = prefix + std::string(spec.name);
        assign(path, spec, resolve(node, path, spec, preset), out);
    }
}

template <typename Section>
void KeyBinder::reject_unknown_keys(const YAML::Node& node, const std::string& prefix,
                                    const SectionSpec<Section>& section) {
    if (!node.IsDefined() || node.IsNull()) return;
    if (!node.IsMap()) {
        findings_.problems.push_back(trim_dot(prefix) + ": expected a mapping" + where_in_file(node));
        return;
    }
    const auto nested = nested_keys(section.title);
    for (const auto& entry : node) {
        const std::string key = entry.first.as<std::string>();
        bool known = false;
        for (const auto& spec : section.keys) known = known || spec.name == key;
        for (const auto& name : nested) known = known || name == key;
        if (known) continue;
        std::string allowed;
        for (const auto& spec : section.keys) {
            if (!allowed.empty()) allowed += ", ";
            allowed += spec.name;
        }
        for (const auto& name : nested) allowed += ", " + std::string(name);
        findings_.problems.push_back(prefix + key + ": unknown key" + where_in_file(entry.first) +
                                     " (allowed: " + allowed + ")");
    }
}

template <typename Section>
KeyBinder::Candidate KeyBinder::resolve(const YAML::Node& node, const std::string& path, const KeySpec<Section>& spec,
                                        const Preset* preset) {
    if (!spec.env.empty()) {
        auto found = env_.find(std::string(spec.env));
        if (found != env_.end()) return {found->second, Source::env, std::string(spec.env)};
    }
    if (node.IsDefined() && node.IsMap()) {
        const YAML::Node value = node[std::string(spec.name)];
        if (value.IsDefined()) {
            if (value.IsScalar()) return {value.Scalar(), Source::file, file_};
            if (value.IsNull()) {
                findings_.problems.push_back(path + ": has no value" + where_in_file(value));
            } else {
                findings_.problems.push_back(path + ": expected a single value, got a " +
                                             (value.IsMap() ? "mapping" : "list") + where_in_file(value));
            }
        }
    }
    if (preset != nullptr) {
        for (const auto& value : preset->values) {
            if (value.key == spec.name) return {std::string(value.value), Source::preset, std::string(preset->name)};
        }
    }
    if (!spec.default_env.empty()) {
        auto found = env_.find(std::string(spec.default_env));
        if (found != env_.end() && !found->second.empty()) {
            return {found->second, Source::default_value, "$" + std::string(spec.default_env)};
        }
    }
    if (!spec.default_when_env.empty() && env_.contains(std::string(spec.default_when_env))) {
        return {std::string(spec.default_when_env_value), Source::default_value,
                "$" + std::string(spec.default_when_env)};
    }
    return {std::string(spec.default_value), Source::default_value, ""};
}

template <typename Section>
void KeyBinder::assign(const std::string& path, const KeySpec<Section>& spec, const Candidate& candidate,
                       Section& out) {
    const bool secret = spec.type == KeyType::conninfo;
    const std::string shown = secret ? pg::mask_conninfo(candidate.text) : candidate.text;
    std::string printable = shown;
    const Range range = range_of(spec);
    Rejection rejection;
    std::visit(
        [&]<typename Value>(Value Section::*field) {
            if constexpr (std::is_same_v<Value, std::string>) {
                rejection = spec.type == KeyType::choice
                                ? check_choice(candidate.text, choices_of(spec), spec.default_value.empty())
                                : check_text(spec.type, candidate.text);
                out.*field = candidate.text;
            } else if constexpr (std::is_same_v<Value, int64_t>) {
                auto checked = check_integer(candidate.text, range);
                rejection = std::move(checked.rejection);
                out.*field = checked.value;
            } else if constexpr (std::is_same_v<Value, bool>) {
                auto checked = check_boolean(candidate.text);
                rejection = std::move(checked.rejection);
                out.*field = checked.value;
            } else if constexpr (std::is_same_v<Value, Duration>) {
                auto checked = check_duration(candidate.text, range, printable);
                rejection = std::move(checked.rejection);
                out.*field = checked.value;
            } else {
                static_assert(std::is_enum_v<Value>);
                rejection = check_choice(candidate.text, choices_of(spec), false);
                out.*field = parse_value<Value>(candidate.text).value_or(Value{});
            }
        },
        spec.field);
    if (rejection) {
        findings_.problems.push_back(subject(path, candidate.source, candidate.origin) + ": " + *rejection +
                                     " (got \"" + shown + "\")");
    }
    settings_.push_back(Setting{path, printable, candidate.source, candidate.origin, spec.reloadable});
}

// The sections bound through a KeyBinder: every one in the table.
template void KeyBinder::bind(const YAML::Node&, const std::string&, const SectionSpec<Config>&, Config&,
                              const Preset*);
template void KeyBinder::bind(const YAML::Node&, const std::string&, const SectionSpec<DatabaseConfig>&,
                              DatabaseConfig&, const Preset*);
template void KeyBinder::bind(const YAML::Node&, const std::string&, const SectionSpec<EventStoreConfig>&,
                              EventStoreConfig&, const Preset*);
template void KeyBinder::bind(const YAML::Node&, const std::string&, const SectionSpec<LoggingConfig>&, LoggingConfig&,
                              const Preset*);
template void KeyBinder::bind(const YAML::Node&, const std::string&, const SectionSpec<HttpConfig>&, HttpConfig&,
                              const Preset*);
template void KeyBinder::bind(const YAML::Node&, const std::string&, const SectionSpec<PluginsConfig>&, PluginsConfig&,
                              const Preset*);
template void KeyBinder::bind(const YAML::Node&, const std::string&, const SectionSpec<ReplicaSetConfig>&,
                              ReplicaSetConfig&, const Preset*);
template void KeyBinder::bind(const YAML::Node&, const std::string&, const SectionSpec<ProjectionConfig>&,
                              ProjectionConfig&, const Preset*);
template void KeyBinder::bind(const YAML::Node&, const std::string&, const SectionSpec<OnErrorConfig>&, OnErrorConfig&,
                              const Preset*);

}  // namespace orchestratord::config
