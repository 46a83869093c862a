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

}  // namespace orchestratord::config
