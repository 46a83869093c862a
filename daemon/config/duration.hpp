#pragma once
// Go-style durations ("250ms", "5s", "1m30s", "1h"), the format users of the
// pupsourcing library already write in their environment variables.
#include <chrono>
#include <string>
#include <string_view>

namespace orchestratord::config {

using Duration = std::chrono::nanoseconds;

struct DurationParse {
    bool ok = false;
    Duration value{};
    std::string error;  // why the text is not a duration, when !ok
};

// Parses a Go duration: an optional sign then one or more <number><unit>
// groups, units ns, us (or µs), ms, s, m, h; "0" alone is also accepted.
DurationParse parse_duration(std::string_view text);

// Formats like Go's time.Duration.String(): "1m30s", "500ms", "0s".
std::string format_duration(Duration value);

}  // namespace orchestratord::config
