#pragma once
// `orchestratord status`: what the database says about every replica set of
// the configuration, as a text table or JSON.
#include <string>

#include "config/config.hpp"

namespace orchestratord::cli {

// Returns the process exit code; prints to stdout (errors to stderr).
int print_status(const config::Config& config, bool json);

}  // namespace orchestratord::cli
