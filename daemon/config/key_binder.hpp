#pragma once
// Key binding: takes each key of a section from the environment, the YAML
// file, a preset or its default (in that order of precedence), checks it
// with value_checks and stores it in the section's struct. Records every
// effective value as a Setting and every problem in the Findings, naming the
// key path (or the variable) and the value.
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/environment.hpp"
#include "config/errors.hpp"
#include "config/presets.hpp"
#include "config/schema.hpp"

namespace YAML {
class Node;
}

namespace orchestratord::config {

class KeyBinder {
public:
    // `file` names the YAML file in settings; `env` is the process environment.
    KeyBinder(const Environment& env, const std::string& file, std::vector<Setting>& settings, Findings& findings)
        : env_(env), file_(file), settings_(settings), findings_(findings) {}

    // Binds every key of `section` from `node`, the section's YAML mapping
    // (possibly undefined), into `out`; keys are named `prefix` + key.
    // `preset` supplies values between the defaults and the file.
    template <typename Section>
    void bind(const YAML::Node& node, const std::string& prefix, const SectionSpec<Section>& section, Section& out,
              const Preset* preset = nullptr);

private:
    struct Candidate;

    template <typename Section>
    void reject_unknown_keys(const YAML::Node& node, const std::string& prefix, const SectionSpec<Section>& section);
    template <typename Section>
    Candidate resolve(const YAML::Node& node, const std::string& path, const KeySpec<Section>& spec,
                      const Preset* preset);
    template <typename Section>
    void assign(const std::string& path, const KeySpec<Section>& spec, const Candidate& candidate, Section& out);

    const Environment& env_;
    const std::string& file_;
    std::vector<Setting>& settings_;
    Findings& findings_;
};

// " at line N" for a node read from the file, empty otherwise.
std::string where_in_file(const YAML::Node& node);
// "replica_sets[0]." -> "replica_sets[0]": a section's own path in errors.
std::string trim_dot(std::string prefix);

}  // namespace orchestratord::config
