#pragma once
// pupsourcing-orchestrator's presets: named sets of replica-set values that sit between the
// built-in defaults and the file.
#include <span>
#include <string_view>

namespace orchestratord::config {

// One preset value, in text form, parsed like a file value.
struct PresetValue {
    std::string_view key;
    std::string_view value;
};
struct Preset {
    std::string_view name;
    std::span<const PresetValue> values;
};
std::span<const Preset> presets();
const Preset* find_preset(std::string_view name);

}  // namespace orchestratord::config
