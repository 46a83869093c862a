#pragma once
// Helpers shared by the two libpq wrappers; internal to daemon/pg.
#include <libpq-fe.h>

#include <string>

namespace orchestratord::pg::detail {

// libpq's messages end with a newline; log lines and exceptions should not.
inline std::string trimmed(const char* text) {
    std::string message = text != nullptr ? text : "";
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return message;
}

// Keeps server notices (for example "relation already exists, skipping") out
// of stderr; they are not errors. Installed right after the connection is made.
inline void ignore_notice(void*, const PGresult*) {}

}  // namespace orchestratord::pg::detail
