#pragma once
// The environment variables the configuration reads. Which key each one sets
// is in the key tables (schema.hpp); this is the process side: reading the
// environment and refusing ORCHESTRATORD_* names no key declares.
#include <map>
#include <set>
#include <string>

#include "config/errors.hpp"

namespace orchestratord::config {

using Environment = std::map<std::string, std::string>;

// The current process environment as a map.
Environment process_environment();

// Every variable the configuration reads, from the table of sections.
std::set<std::string> known_variables();

// A misspelt ORCHESTRATORD_* name is an error, like an unknown key, instead
// of being silently ignored.
void check_variable_names(const Environment& env, Findings& findings);

}  // namespace orchestratord::config
