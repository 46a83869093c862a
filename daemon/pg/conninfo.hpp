#pragma once
// Connection strings: validated with libpq's own parser and masked before they
// are printed anywhere (logs, check-config, error messages).
#include <optional>
#include <string>

namespace orchestratord::pg {

// Returns why libpq cannot parse the connection string, or nullopt when it can.
std::optional<std::string> conninfo_error(const std::string& conninfo);

// The connection string with any password replaced by "****".
std::string mask_conninfo(const std::string& conninfo);

}  // namespace orchestratord::pg
