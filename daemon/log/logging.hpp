#pragma once
// Process-wide logging on spdlog. Lines read as sentences with key=value
// context; `format` picks text lines or one JSON object per line (for journald
// or log shippers). Logs go to stderr, which systemd sends to the journal.
#include <string>

namespace orchestratord::log {

// Installs the default logger. Safe to call again on reload to change level or format.
void configure(const std::string& level, const std::string& format);

}  // namespace orchestratord::log
