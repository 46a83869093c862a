#pragma once
// What a SIGHUP reload does with a new configuration, decided without side
// effects: which keys changed, which of them take effect now (the reloadable
// ones) and which only after a restart, and the configuration the process
// runs with afterwards. The running process never takes half of a new
// cluster setup: a key that is not reloadable keeps its running value.
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace orchestratord::runtime {

struct KeyChange {
    enum class Applied { now, after_restart };
    std::string path;                 // e.g. logging.level
    std::optional<std::string> from;  // nullopt: the key was not set before
    std::optional<std::string> to;    // nullopt: the key is gone
    Applied applied = Applied::after_restart;
};

struct ConfigDiff {
    // Keys of the new configuration whose value differs, in its order, then
    // the keys it no longer has, by path.
    std::vector<KeyChange> changes;
    // The running configuration with every reloadable change applied.
    config::Config next;
};

// A pure function of its arguments.
ConfigDiff diff_config(const config::Config& running, const config::Config& fresh);

// One line per change, or "config unchanged".
void log_config_diff(const ConfigDiff& diff);

}  // namespace orchestratord::runtime
