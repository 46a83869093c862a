#pragma once
// Checks of one value on its own: the syntax its key's type asks for and the
// key's range. Every per-key rule lives here; rules between keys live in
// cross_key_rules.hpp. Each check returns the reason a value is rejected, in
// pupsourcing-orchestrator's wording, without the key path (the caller names the input).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/duration.hpp"
#include "config/schema.hpp"

namespace orchestratord::config {

using Rejection = std::optional<std::string>;

// A key's allowed range: integers, or nanoseconds for durations.
struct Range {
    int64_t min = std::numeric_limits<int64_t>::min();
    int64_t max = std::numeric_limits<int64_t>::max();
    std::string_view error;  // pupsourcing-orchestrator's wording when out of range
};

template <typename Section>
Range range_of(const KeySpec<Section>& spec) {
    return {.min = spec.min, .max = spec.max, .error = spec.range_error};
}

// Text keys: identifiers, names, host:port, connection strings. Empty values
// of required keys pass here; cross_key_rules reports them once.
Rejection check_text(KeyType type, const std::string& text);

// One of `choices`; an empty value passes when the key is optional.
Rejection check_choice(std::string_view text, std::span<const std::string_view> choices, bool optional);

template <typename Value>
struct Checked {
    Value value{};
    Rejection rejection = std::nullopt;
};

// true or false (YAML's other spellings are not accepted: one way to say it).
Checked<bool> check_boolean(const std::string& text);

Checked<int64_t> check_integer(const std::string& text, const Range& range);

// `printable` gets the canonical form ("90s" becomes "1m30s") when the value is accepted.
Checked<Duration> check_duration(const std::string& text, const Range& range, std::string& printable);

}  // namespace orchestratord::config
