#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace orchestratord::config {

// Thrown when the configuration is invalid; carries every problem found, each
// naming the key path (or environment variable) and the offending value.
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<std::string> problems);
    const std::vector<std::string>& problems() const { return problems_; }

private:
    std::vector<std::string> problems_;
};

// What the checks found while a configuration is built: problems make it
// invalid (ConfigError lists them all at the end), warnings do not.
struct Findings {
    std::vector<std::string> problems;
    std::vector<std::string> warnings;
};

}  // namespace orchestratord::config
