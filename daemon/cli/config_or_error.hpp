#pragma once
// Loads the configuration for a subcommand, or prints every problem found
// (stderr) so the subcommand can exit 1.
#include <iostream>
#include <optional>

#include "config/loader.hpp"

namespace orchestratord::cli {

inline std::optional<config::Config> config_or_error(const config::LoadOptions& options) {
    try {
        return config::load_config(options);
    } catch (const config::ConfigError& e) {
        std::cerr << e.what() << "\n";
        return std::nullopt;
    }
}

}  // namespace orchestratord::cli
