#pragma once
#include <stdexcept>
#include <string>

namespace orchestratord::pg {

// A failed PostgreSQL operation: what we were doing, the SQLSTATE when the
// server sent one, and the server's message.
class Error : public std::runtime_error {
public:
    Error(std::string purpose, std::string sqlstate, std::string message)
        : std::runtime_error(purpose + ": " + message + (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")")),
          purpose_(std::move(purpose)),
          sqlstate_(std::move(sqlstate)) {}
    const std::string& purpose() const { return purpose_; }
    const std::string& sqlstate() const { return sqlstate_; }

private:
    std::string purpose_;
    std::string sqlstate_;
};

}  // namespace orchestratord::pg
