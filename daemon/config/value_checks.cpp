#include "config/value_checks.hpp"

#include <charconv>
#include <regex>

#include "pg/conninfo.hpp"

namespace orchestratord::config {

Rejection check_text(KeyType type, const std::string& text) {
    static const std::regex identifier(R"([A-Za-z_][A-Za-z0-9_]{0,62})");
    static const std::regex replica_set(R"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)");
    static const std::regex projection(R"([A-Za-z0-9_][A-Za-z0-9_.-]{0,99})");
    static const std::regex listen(R"((\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5}))");
    switch (type) {
        case KeyType::text:
        case KeyType::path:
        case KeyType::choice:
        case KeyType::integer:
        case KeyType::duration:
        case KeyType::boolean:
            return std::nullopt;
        case KeyType::conninfo:
            if (text.empty()) return std::nullopt;  // required: reported by the cross-key rules
            if (auto error = pg::conninfo_error(text)) return "invalid connection string: " + *error;
            return std::nullopt;
        case KeyType::identifier:
        case KeyType::schema_name:
            if (!std::regex_match(text, identifier)) {
                return "invalid identifier: use 1 to 63 letters, digits or underscores, not starting with a digit";
            }
            if (type == KeyType::schema_name && text.starts_with("pg_")) {
                return "names starting with pg_ are reserved by PostgreSQL";
            }
            return std::nullopt;
        case KeyType::replica_set_name:
            if (text.empty()) return std::nullopt;  // required: reported as "ReplicaSet cannot be empty"
            if (!std::regex_match(text, replica_set)) {
                return "ReplicaSet must be 1 to 63 lowercase letters, digits or hyphens, starting and ending "
                       "with a letter or digit";
            }
            return std::nullopt;
        case KeyType::projection_name:
            if (text.empty()) return std::nullopt;  // required: reported by the cross-key rules
            if (!std::regex_match(text, projection)) {
                return "invalid projection name: use 1 to 100 letters, digits, '_', '-' or '.'";
            }
            return std::nullopt;
        case KeyType::listen_address: {
            std::smatch match;
            if (!std::regex_match(text, match, listen)) return "expected host:port, e.g. 127.0.0.1:9090";
            const int port = std::stoi(match[2].str());
            if (port > 65535) return "port must be between 0 and 65535 (0: any free port)";
            return std::nullopt;
        }
    }
    return std::nullopt;
}

Checked<bool> check_boolean(const std::string& text) {
    if (text == "true") return {true};
    if (text == "false") return {false};
    return {false, "must be true or false"};
}

Rejection check_choice(std::string_view text, std::span<const std::string_view> choices, bool optional) {
    if (text.empty() && optional) return std::nullopt;
    for (const auto& choice : choices) {
        if (choice == text) return std::nullopt;
    }
    std::string allowed;
    for (const auto& choice : choices) {
        if (!allowed.empty()) allowed += ',';
        allowed += choice;
    }
    return "must be one of " + allowed;
}

namespace {

// The reference's wording covers values below the minimum ("BatchSize must
// be positive"); above the maximum it would mislead, so give the range,
// with the key's name taken from that wording.
std::string above_maximum(const Range& range, const std::string& min, const std::string& max) {
    if (range.error.find("between") != std::string_view::npos) return std::string(range.error);
    const size_t must = range.error.find("must");
    const std::string name(must == std::string_view::npos ? std::string_view() : range.error.substr(0, must));
    return name + "must be between " + min + " and " + max;
}

}  // namespace

Checked<int64_t> check_integer(const std::string& text, const Range& range) {
    Checked<int64_t> checked;
    const char* begin = text.data();
    const char* end = begin + text.size();
    auto [ptr, ec] = std::from_chars(begin, end, checked.value);
    const bool whole = !text.empty() && ptr == end;
    if (whole && ec == std::errc::result_out_of_range) {
        // More digits than any integer holds: out of range, not malformed.
        checked.rejection = text.starts_with('-')
                                ? std::string(range.error)
                                : above_maximum(range, std::to_string(range.min), std::to_string(range.max));
    } else if (!whole || ec != std::errc()) {
        checked.rejection = "expected an integer";
    } else if (checked.value < range.min) {
        checked.rejection = std::string(range.error);
    } else if (checked.value > range.max) {
        checked.rejection = above_maximum(range, std::to_string(range.min), std::to_string(range.max));
    }
    return checked;
}

Checked<Duration> check_duration(const std::string& text, const Range& range, std::string& printable) {
    const DurationParse parsed = parse_duration(text);
    Checked<Duration> checked{.value = parsed.value};
    if (!parsed.ok) {
        checked.rejection = "invalid duration: " + parsed.error;
    } else if (parsed.value.count() < 0 && range.min >= 0) {
        checked.rejection = std::string(range.error) + ": negative durations are not allowed";
    } else if (parsed.value.count() < range.min) {
        checked.rejection = std::string(range.error);
    } else if (parsed.value.count() > range.max) {
        checked.rejection =
            above_maximum(range, format_duration(Duration(range.min)), format_duration(Duration(range.max)));
    } else {
        printable = format_duration(parsed.value);
    }
    return checked;
}

}  // namespace orchestratord::config
