#include "config/key_reference.hpp"

#include <algorithm>
#include <sstream>

#include "config/presets.hpp"
#include "config/schema.hpp"

namespace orchestratord::config {
namespace {

template <typename Section>
void write_section(std::ostringstream& out, const SectionSpec<Section>& section) {
    out << "### " << section.title << "\n\n";
    out << "| key | type | default | environment | reloadable | description |\n";
    out << "|---|---|---|---|---|---|\n";
    for (const auto& spec : section.keys) {
        // Built by appending: GCC 12 misreports `"literal" + std::string` (-Wrestrict).
        std::string fallback;
        if (!spec.default_env.empty()) fallback.append("`$").append(spec.default_env).append("` if set, else ");
        if (!spec.default_when_env.empty()) {
            fallback.append("`").append(spec.default_when_env_value).append("` if `$");
            fallback.append(spec.default_when_env).append("` is set, else ");
        }
        if (spec.default_value.empty()) {
            fallback.append("—");
        } else {
            fallback.append("`").append(spec.default_value).append("`");
        }
        std::string type = key_type_name(spec.type);
        if (spec.type == KeyType::choice) {
            type = "one of ";
            for (const auto& choice : choices_of(spec)) {
                if (type.back() != ' ') type += ',';
                type += choice;
            }
        }
        // A '|' would end the Markdown cell.
        std::replace(type.begin(), type.end(), '|', '/');
        out << "| `" << section.prefix << spec.name << "` | " << type << " | " << fallback << " | "
            << (spec.env.empty() ? "—" : "`") << spec.env << (spec.env.empty() ? "" : "`") << " | "
            << (spec.reloadable ? "yes" : "no") << " | " << spec.description << " |\n";
    }
    out << "\n";
}

}  // namespace

std::string describe_keys_markdown() {
    std::ostringstream out;
    for_each_section([&](const auto& section) { write_section(out, section); });
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
