#pragma once
// The two line formats behind logging.format, as spdlog formatters (only
// logging.cpp and the tests include this header: it pulls in spdlog).
//
// text: `2026-05-04T10:00:00.123Z warn  sentence key=value ...`, one line per
//       entry: a newline inside the message is written as ` | `.
// json: one object per line: ts, level, msg (the sentence), pid, then every
//       key=value field of the line as its own key; integer and decimal
//       values are JSON numbers, the others strings.
//
// Both name the levels as the configuration does: trace, debug, info, warn,
// error (spdlog's critical is written as error).
#include <spdlog/formatter.h>

#include <memory>
#include <string_view>

#include "log/logging.hpp"

namespace orchestratord::log {

std::unique_ptr<spdlog::formatter> make_formatter(Format format);

// The configuration's name of an spdlog level.
std::string_view level_name(spdlog::level::level_enum level);

}  // namespace orchestratord::log
