#pragma once
// Reads a log line written as a sentence with key=value context back into
// its parts, for the JSON log format: `projection progress replica_set=a
// lag=12 error="no \"x\""` is the sentence `projection progress` and the
// fields replica_set, lag and error. A value is a bare token up to the next
// space or a double-quoted string as log::quoted writes it.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestratord::log {

struct LineFields {
    // The sentence, followed by any words between or after the fields that
    // are not fields themselves: no text of the line is ever dropped.
    std::string message;
    std::vector<std::pair<std::string, std::string>> fields;  // in line order, values unescaped
};

// Never throws for any input. A token that only looks like a field (a quote
// that does not close, a key already taken, one of the reserved keys ts,
// level, msg or pid) stays in the message as it was written.
LineFields split_fields(std::string_view line);

}  // namespace orchestratord::log
