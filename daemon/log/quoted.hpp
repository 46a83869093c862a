#pragma once
// Free text inside a log line's key=value context: `error={}` with
// log::quoted(e.what()) writes `error="..."` with `"` and `\` escaped and
// newlines, tabs and other control characters written as escapes, so the
// value stays on one line and ends where the reader expects. The JSON log
// format reads it back into the original text.
#include <string>
#include <string_view>

namespace orchestratord::log {

// The text in double quotes, escaped; trailing whitespace and newlines
// (libpq ends its messages with one) are dropped.
std::string quoted(std::string_view text);

}  // namespace orchestratord::log
