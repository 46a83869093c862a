#pragma once
// The key tables: every configuration key with its type, default, environment
// variable, range and description, grouped in one table of sections. The
// loader, check-config and the generated key reference in
// docs/configuration.md all read these tables, so a key is declared exactly
// once.
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "config/config.hpp"

namespace orchestratord::config {

enum class KeyType {
    text,              // free text
    conninfo,          // libpq URL or key=value string; secret, masked when printed
    identifier,        // SQL identifier, validated and always quoted
    schema_name,       // an identifier PostgreSQL does not reserve (pg_*)
    replica_set_name,  // lowercase letters, digits, hyphens
    projection_name,   // letters, digits, '_', '-', '.'
    integer,
    duration,        // Go-style duration
    choice,          // one of KeySpec::choices
    listen_address,  // host:port
    boolean,         // true or false
    path,            // a filesystem path
};

const char* key_type_name(KeyType type);

// Where a key's value goes in its section. Enum fields are choices spelt by
// value_names(); the other choices (presets) list theirs in KeySpec::choices.
template <typename Section>
using Field = std::variant<std::string Section::*, int64_t Section::*, Duration Section::*, bool Section::*,
                           LogLevel Section::*, LogFormat Section::*, OnErrorPolicy Section::*>;

template <typename Section>
struct KeySpec {
    std::string_view name;
    KeyType type;
    std::string_view default_value = {};  // text form, parsed like a file value
    std::string_view env = {};            // environment variable that overrides it, if any
    std::string_view description;
    bool reloadable = false;
    Field<Section> field;
    std::string_view choices = {};                      // "a|b|c" for a KeyType::choice text field
    int64_t min = std::numeric_limits<int64_t>::min();  // integers, or nanoseconds for durations
    int64_t max = std::numeric_limits<int64_t>::max();
    std::string_view range_error = {};  // pupsourcing-orchestrator's wording when out of range
    std::string_view default_env = {};  // a variable whose value, when set, is the default instead
    // A variable whose presence (any value) makes default_when_env_value the
    // default instead, e.g. NOTIFY_SOCKET: started by systemd.
    std::string_view default_when_env = {};
    std::string_view default_when_env_value = {};
};

// The values a KeyType::choice key accepts, in the order the docs list them.
template <typename Section>
std::vector<std::string_view> choices_of(const KeySpec<Section>& spec) {
    return std::visit(
        [&]<typename Value>(Value Section::*) {
            std::vector<std::string_view> names;
            if constexpr (std::is_enum_v<Value>) {
                const auto spelt = value_names(Value{});
                names.assign(spelt.begin(), spelt.end());
            } else {
                std::string_view rest = spec.choices;
                while (!rest.empty()) {
                    const size_t bar = rest.find('|');
                    names.push_back(rest.substr(0, bar));
                    rest.remove_prefix(bar == std::string_view::npos ? rest.size() : bar + 1);
                }
            }
            return names;
        },
        spec.field);
}

// One section of orchestratord.yaml: where it sits and its keys.
template <typename Section>
struct SectionSpec {
    std::string_view title;        // its heading in the key reference, e.g. "replica_sets[].projections[]"
    std::string_view key = {};     // its key in the enclosing section; empty for the top level
    std::string_view parent = {};  // the enclosing section's title; empty for the top level
    std::string_view prefix = {};  // put before its key names in paths and in the key reference
    std::span<const KeySpec<Section>> keys;
    Section Config::*in_config = nullptr;  // a mapping under the top level: where its values go
    std::string_view free_form_key = {};   // a key whose value is free-form YAML (a projection's config)
};

// Every section, in the order of the file and of the key reference. The
// loader binds from it, the environment check collects its variables and the
// key reference prints it, so a section is added here and nowhere else.
using Sections = std::tuple<SectionSpec<Config>, SectionSpec<DatabaseConfig>, SectionSpec<EventStoreConfig>,
                            SectionSpec<LoggingConfig>, SectionSpec<HttpConfig>, SectionSpec<PluginsConfig>,
                            SectionSpec<ReplicaSetConfig>, SectionSpec<ProjectionConfig>, SectionSpec<OnErrorConfig>>;
const Sections& sections();

template <typename Section>
const SectionSpec<Section>& section() {
    return std::get<SectionSpec<Section>>(sections());
}

template <typename Visit>
void for_each_section(Visit&& visit) {
    std::apply([&](const auto&... each) { (visit(each), ...); }, sections());
}

// The keys a section's mapping may hold besides its own: its nested sections
// and its free-form key, in table order.
std::vector<std::string_view> nested_keys(std::string_view title);

// The variable that names the configuration file.
inline constexpr std::string_view kConfigFileEnv = "ORCHESTRATORD_CONFIG";
inline constexpr std::string_view kDefaultConfigFile = "/etc/orchestratord/orchestratord.yaml";

}  // namespace orchestratord::config
