#pragma once
// Connection strings: validated with libpq's own parser and masked before they
// are printed anywhere (logs, check-config, error messages). Neither the
// password nor, for a string libpq cannot parse, any part of the input is ever
// shown: a malformed URL may hold the password anywhere.
#include <optional>
#include <string>

namespace orchestratord::pg {

// Why libpq cannot parse the connection string, or nullopt when it can. The
// reason quotes no part of the input (libpq's own message would).
std::optional<std::string> conninfo_error(const std::string& conninfo);

// The connection string rebuilt from libpq's parse of it, in the same form
// (URL or key=value), with every secret option (the password) as "****". A
// string libpq cannot parse is shown as a summary naming only its form.
std::string mask_conninfo(const std::string& conninfo);

// A libpq message about connecting with `conninfo` (a failed connection, an
// unparseable string) with whatever may be the password, or a piece of it,
// replaced by "****". A password written unencoded in a URL ("@" or "/" in
// it) is split by libpq into host, port or database names, which its
// messages quote.
std::string scrub_conninfo_secrets(const std::string& message, const std::string& conninfo);

}  // namespace orchestratord::pg
