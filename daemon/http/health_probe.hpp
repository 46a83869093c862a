#pragma once
// What the HTTP endpoints ask the daemon about its health. The http folder
// may not look into the cluster or the runners, so the daemon hands the
// server an implementation of this narrow interface (runtime/health_state).
#include <string>

namespace orchestratord::http {

// An answer to "is it so?": when not, a one-line reason for the operator.
struct Verdict {
    bool ok = true;
    std::string reason;
};

class HealthProbe {
public:
    virtual ~HealthProbe() = default;
    // /healthz: the process does its job (the loop turns, the worker is not
    // fenced off for good); failing it is a reason to restart the process.
    virtual Verdict live() const = 0;
    // /readyz: the worker is part of its clusters and works on what it owns;
    // failing it is a reason to look, not to restart.
    virtual Verdict ready() const = 0;
    // /status: this worker's view as one JSON document.
    virtual std::string status_json() const = 0;
};

}  // namespace orchestratord::http
