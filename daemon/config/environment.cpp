#include "config/environment.hpp"

#include <string_view>

#include "config/schema.hpp"

extern char** environ;

namespace orchestratord::config {

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

std::set<std::string> known_variables() {
    std::set<std::string> names{std::string(kConfigFileEnv)};
    for_each_section([&](const auto& section) {
        for (const auto& spec : section.keys) {
            if (!spec.env.empty()) names.insert(std::string(spec.env));
        }
    });
    return names;
}

void check_variable_names(const Environment& env, Findings& findings) {
    const auto known = known_variables();
    for (const auto& [name, value] : env) {
        if (name.starts_with("ORCHESTRATORD_") && !known.contains(name)) {
            findings.problems.push_back(name +
                                        ": unknown environment variable (see docs/configuration.md for the list)");
        }
    }
}

}  // namespace orchestratord::config
