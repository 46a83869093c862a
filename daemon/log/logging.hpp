#pragma once
// Process-wide logging on spdlog. Lines read as sentences with key=value
// context; `format` picks text lines or one JSON object per line (for journald
// or log shippers). Logs go to stderr, which systemd sends to the journal.
namespace orchestratord::log {

// The least severe level written.
enum class Level { trace, debug, info, warn, error };
// Text lines with key=value context, or one JSON object per line.
enum class Format { text, json };

// Installs the default logger. Safe to call again on reload to change level or format.
void configure(Level level, Format format);

}  // namespace orchestratord::log
