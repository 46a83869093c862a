#pragma once
// Rules between keys, and the presence of required keys, checked on a bound
// section: every rule that needs more than one value lives here (one value on
// its own is value_checks.hpp's). Each rule adds to `findings` a problem or a
// warning naming the key path; `prefix` is the section's path, e.g.
// "replica_sets[0].".
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/errors.hpp"

namespace orchestratord::config {

// The keys the environment set, so that a rule's message names the variable
// an operator set and not only the key: a rule between keys is often broken
// by one variable meeting a value from the file.
class KeyOrigins {
public:
    KeyOrigins() = default;  // nothing set by the environment
    explicit KeyOrigins(const std::vector<Setting>& settings);
    // "path", or "VARIABLE (path)" when the environment set it (the form
    // the errors of a single value use).
    std::string label(const std::string& path) const;
    // "; VARIABLE sets path" when the environment set `path`, else "".
    std::string note(const std::string& path) const;

private:
    std::map<std::string, std::string> variables_;  // key path -> variable
};

// database.url is required (unless `url_required` is false);
// max_idle_conns must not exceed max_open_conns.
void check_database(const DatabaseConfig& database, bool url_required, Findings& findings,
                    const KeyOrigins& origins = {});

// replica_sets must declare at least one replica set unless REPLICA_SET
// names the only one (or `required` is false), and REPLICA_SET cannot name
// several.
void check_replica_set_count(size_t declared, bool named_by_env, bool required, Findings& findings);

// A replica set's name is required (unless the missing list was reported
// already) and unique (`seen` holds the names before it); its stale worker
// timeout must exceed the heartbeat interval, and is warned about under 3x.
void check_replica_set(const ReplicaSetConfig& replica_set, const std::string& prefix, bool name_reported,
                       std::set<std::string>& seen, Findings& findings, const KeyOrigins& origins = {});

// A replica set without projections only coordinates: valid, but warned about.
void check_has_projections(const ReplicaSetConfig& replica_set, const std::string& prefix, Findings& findings);

// A projection's name is required and unique within its replica set.
void check_projection(const ProjectionConfig& projection, const std::string& prefix,
                      const std::string& replica_set_name, std::set<std::string>& seen, Findings& findings);

// max_backoff must not be less than initial_backoff.
void check_on_error(const OnErrorConfig& on_error, const std::string& prefix, Findings& findings,
                    const KeyOrigins& origins = {});

}  // namespace orchestratord::config
