#include "runtime/config_diff.hpp"
#include "log/quoted.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

namespace orchestratord::runtime {

ConfigDiff diff_config(const config::Config& running, const config::Config& fresh) {
    ConfigDiff diff;
    std::map<std::string, const config::Setting*> before;
    for (const auto& setting : running.settings) before[setting.path] = &setting;
    for (const auto& setting : fresh.settings) {
        const auto found = before.find(setting.path);
        if (found == before.end()) {
            // A key that appears (e.g. a new replica set's) is not applied to
            // the running process.
            diff.changes.push_back({setting.path, std::nullopt, setting.value, KeyChange::Applied::after_restart});
            continue;
        }
        if (found->second->value == setting.value) continue;
        diff.changes.push_back({setting.path, found->second->value, setting.value,
                                setting.reloadable ? KeyChange::Applied::now : KeyChange::Applied::after_restart});
    }
    for (const auto& [path, setting] : before) {
        const bool still_there = std::any_of(fresh.settings.begin(), fresh.settings.end(),
                                             [&](const config::Setting& s) { return s.path == path; });
        if (!still_there)
            diff.changes.push_back({path, setting->value, std::nullopt, KeyChange::Applied::after_restart});
    }

    // The reloadable sections are taken whole; every other value keeps its
    // running value until a restart.
    diff.next = running;
    diff.next.logging = fresh.logging;
    diff.next.plugins = fresh.plugins;
    for (auto& setting : diff.next.settings) {
        for (const auto& updated : fresh.settings) {
            if (updated.path == setting.path && updated.reloadable) setting = updated;
        }
    }
    return diff;
}

void log_config_diff(const ConfigDiff& diff) {
    for (const auto& change : diff.changes) {
        if (!change.to) {
            spdlog::warn("config removed key={} applied=after-restart", change.path);
        } else if (change.applied == KeyChange::Applied::now) {
            spdlog::info("config changed key={} from={} to={} applied=now", change.path, log::quoted(*change.from),
                         log::quoted(*change.to));
        } else {
            spdlog::warn("config changed key={} from={} to={} applied=after-restart", change.path,
                         log::quoted(change.from.value_or("(unset)")), log::quoted(*change.to));
        }
    }
    if (diff.changes.empty()) spdlog::info("config unchanged");
}

}  // namespace orchestratord::runtime
