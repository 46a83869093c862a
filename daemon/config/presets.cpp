#include "config/presets.hpp"

#include <array>

namespace orchestratord::config {
namespace {

// pupsourcing-orchestrator's presets, with its exact values.
constexpr PresetValue kDevelopment[] = {{"heartbeat_interval", "2s"},
                                        {"stale_worker_timeout", "10s"},
                                        {"coordination_timeout", "30s"},
                                        {"batch_size", "50"}};
constexpr PresetValue kStandardProduction[] = {{"heartbeat_interval", "5s"},
                                               {"stale_worker_timeout", "30s"},
                                               {"coordination_timeout", "60s"},
                                               {"batch_size", "100"}};
constexpr PresetValue kHighThroughput[] = {{"heartbeat_interval", "10s"},
                                           {"stale_worker_timeout", "45s"},
                                           {"coordination_timeout", "90s"},
                                           {"batch_size", "1000"}};
constexpr PresetValue kStableFewWorkers[] = {{"heartbeat_interval", "15s"},
                                             {"stale_worker_timeout", "90s"},
                                             {"coordination_timeout", "120s"},
                                             {"batch_size", "200"}};

const std::array kPresets = {
    Preset{"development", kDevelopment},
    Preset{"standard-production", kStandardProduction},
    Preset{"high-throughput", kHighThroughput},
    Preset{"stable-few-workers", kStableFewWorkers},
};

}  // namespace

std::span<const Preset> presets() {
    return kPresets;
}

const Preset* find_preset(std::string_view name) {
    for (const auto& preset : kPresets) {
        if (preset.name == name) return &preset;
    }
    return nullptr;
}

}  // namespace orchestratord::config
