#include "config/cross_key_rules.hpp"

namespace orchestratord::config {

KeyOrigins::KeyOrigins(const std::vector<Setting>& settings) {
    for (const auto& setting : settings) {
        if (setting.source == Source::env) variables_[setting.path] = setting.origin;
    }
}

std::string KeyOrigins::label(const std::string& path) const {
    const auto found = variables_.find(path);
    return found == variables_.end() ? path : found->second + " (" + path + ")";
}

std::string KeyOrigins::note(const std::string& path) const {
    const auto found = variables_.find(path);
    return found == variables_.end() ? std::string() : "; " + found->second + " sets " + path;
}

void check_database(const DatabaseConfig& database, bool url_required, Findings& findings, const KeyOrigins& origins) {
    if (database.url.empty() && url_required) {
        findings.problems.push_back(
            "database.url: database url cannot be empty (set database.url in the file or DATABASE_URL)");
    }
    if (database.max_idle_conns > database.max_open_conns) {
        findings.problems.push_back(
            origins.label("database.max_idle_conns") + ": MaxIdleConns must not exceed MaxOpenConns (" +
            std::to_string(database.max_idle_conns) + " > " + std::to_string(database.max_open_conns) +
            origins.note("database.max_open_conns") + ")");
    }
}

void check_replica_set_count(size_t declared, bool named_by_env, bool required, Findings& findings) {
    if (named_by_env && declared > 1) {
        findings.problems.push_back("REPLICA_SET: cannot choose a name for " + std::to_string(declared) +
                                    " replica sets; remove it or declare one replica set in the file");
    }
    if (declared == 0 && !named_by_env && required) {
        findings.problems.push_back(
            "replica_sets: ReplicaSet cannot be empty (declare replica_sets in the file or set REPLICA_SET)");
    }
}

void check_replica_set(const ReplicaSetConfig& replica_set, const std::string& prefix, bool name_reported,
                       std::set<std::string>& seen, Findings& findings, const KeyOrigins& origins) {
    if (replica_set.name.empty() && !name_reported) {
        findings.problems.push_back(prefix +
                                    "name: ReplicaSet cannot be empty (set it in the file or with REPLICA_SET)");
    }
    if (!replica_set.name.empty() && !seen.insert(replica_set.name).second) {
        findings.problems.push_back(prefix + "name: replica set \"" + replica_set.name + "\" is declared twice");
    }
    const Duration stale = replica_set.stale_worker_timeout;
    const Duration heartbeat = replica_set.heartbeat_interval;
    // Out-of-range values were reported by their own checks already.
    if (stale.count() <= 0 || heartbeat.count() <= 0) return;
    if (stale <= heartbeat) {
        findings.problems.push_back(origins.label(prefix + "stale_worker_timeout") +
                                    ": StaleWorkerTimeout must be greater than HeartbeatInterval (" +
                                    format_duration(stale) + " <= " + format_duration(heartbeat) +
                                    origins.note(prefix + "heartbeat_interval") + ")");
    } else if (stale < 3 * heartbeat) {
        findings.warnings.push_back(origins.label(prefix + "stale_worker_timeout") + ": " + format_duration(stale) +
                                    " is less than 3x heartbeat_interval (" + format_duration(heartbeat) +
                                    origins.note(prefix + "heartbeat_interval") +
                                    "); one delayed heartbeat could get a live worker removed");
    }
}

void check_has_projections(const ReplicaSetConfig& replica_set, const std::string& prefix, Findings& findings) {
    if (replica_set.projections.empty()) {
        findings.warnings.push_back(prefix + "projections: replica set \"" + replica_set.name +
                                    "\" has no projections; its workers will only coordinate");
    }
}

void check_projection(const ProjectionConfig& projection, const std::string& prefix,
                      const std::string& replica_set_name, std::set<std::string>& seen, Findings& findings) {
    if (projection.name.empty()) {
        findings.problems.push_back(prefix + "name: projection name cannot be empty");
    } else if (!seen.insert(projection.name).second) {
        findings.problems.push_back(prefix + "name: projection \"" + projection.name +
                                    "\" is listed twice in replica set \"" + replica_set_name + "\"");
    }
}

void check_on_error(const OnErrorConfig& on_error, const std::string& prefix, Findings& findings,
                    const KeyOrigins& origins) {
    if (on_error.max_backoff < on_error.initial_backoff) {
        findings.problems.push_back(
            origins.label(prefix + "max_backoff") + ": MaxBackoff must not be less than InitialBackoff (" +
            format_duration(on_error.max_backoff) + " < " + format_duration(on_error.initial_backoff) +
            origins.note(prefix + "initial_backoff") + ")");
    }
}

}  // namespace orchestratord::config
