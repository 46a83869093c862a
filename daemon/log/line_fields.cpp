#include "log/line_fields.hpp"

#include <algorithm>
#include <array>
#include <optional>

namespace orchestratord::log {
namespace {

// Keys the JSON object sets itself; a field of that name stays in the message.
constexpr std::array<std::string_view, 4> kReservedKeys{"ts", "level", "msg", "pid"};

bool key_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool key_char(char c) {
    return key_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

struct Field {
    std::string key;
    std::string value;
    size_t end = 0;  // where the token ends in the line
};

// The quoted value starting at line[at] == '"', unescaped, and the position
// after its closing quote; none when it does not close before the end of
// the token (a space or the end of the line must follow the closing quote).
std::optional<std::pair<std::string, size_t>> quoted_value(std::string_view line, size_t at) {
    std::string value;
    for (size_t i = at + 1; i < line.size(); ++i) {
        const char c = line[i];
        if (c == '"') {
            if (i + 1 < line.size() && line[i + 1] != ' ') return std::nullopt;
            return std::make_pair(std::move(value), i + 1);
        }
        if (c != '\\') {
            value.push_back(c);
            continue;
        }
        if (++i == line.size()) return std::nullopt;
        switch (line[i]) {
            case 'n':
                value.push_back('\n');
                break;
            case 'r':
                value.push_back('\r');
                break;
            case 't':
                value.push_back('\t');
                break;
            case 'u': {
                // log::quoted writes control characters as \u00XX.
                if (i + 4 >= line.size()) return std::nullopt;
                int code = 0;
                for (size_t d = 1; d <= 4; ++d) {
                    const int digit = hex_digit(line[i + d]);
                    if (digit < 0) return std::nullopt;
                    code = code * 16 + digit;
                }
                if (code > 0x7f) return std::nullopt;
                value.push_back(static_cast<char>(code));
                i += 4;
                break;
            }
            default:  // \" and \\, and any other escaped character as itself
                value.push_back(line[i]);
        }
    }
    return std::nullopt;
}

// The key=value token starting at line[at], if it is one.
std::optional<Field> field_at(std::string_view line, size_t at) {
    if (!key_start(line[at])) return std::nullopt;
    size_t i = at + 1;
    while (i < line.size() && key_char(line[i])) ++i;
    if (i == line.size() || line[i] != '=') return std::nullopt;
    Field field;
    field.key = std::string(line.substr(at, i - at));
    const size_t value_at = i + 1;
    if (value_at < line.size() && line[value_at] == '"') {
        auto quoted = quoted_value(line, value_at);
        if (!quoted) return std::nullopt;
        field.value = std::move(quoted->first);
        field.end = quoted->second;
        return field;
    }
    const size_t space = line.find(' ', value_at);
    field.end = space == std::string_view::npos ? line.size() : space;
    field.value = std::string(line.substr(value_at, field.end - value_at));
    return field;
}

bool reserved(const std::string& key) {
    return std::find(kReservedKeys.begin(), kReservedKeys.end(), key) != kReservedKeys.end();
}

}  // namespace

LineFields split_fields(std::string_view line) {
    LineFields out;
    // Words are appended to the message with one space between runs, so a
    // sentence continued after the fields still reads as one.
    auto add_words = [&](std::string_view words) {
        while (!words.empty() && words.front() == ' ') words.remove_prefix(1);
        while (!words.empty() && words.back() == ' ') words.remove_suffix(1);
        if (words.empty()) return;
        if (!out.message.empty()) out.message.push_back(' ');
        out.message.append(words);
    };
    size_t words_from = 0;
    size_t at = 0;
    while (at < line.size()) {
        if (line[at] == ' ') {
            ++at;
            continue;
        }
        // A token starts here (line start or after a space).
        auto field = field_at(line, at);
        const bool taken = field && std::any_of(out.fields.begin(), out.fields.end(),
                                                [&](const auto& kept) { return kept.first == field->key; });
        if (field && !taken && !reserved(field->key)) {
            add_words(line.substr(words_from, at - words_from));
            out.fields.emplace_back(std::move(field->key), std::move(field->value));
            at = field->end;
            words_from = at;
            continue;
        }
        // Not a field: the word stays text. A quoted value that did not
        // parse is skipped to the next space like any other word.
        const size_t space = line.find(' ', at);
        at = space == std::string_view::npos ? line.size() : space;
    }
    if (out.fields.empty()) {
        out.message = std::string(line);  // exactly as written
        return out;
    }
    add_words(line.substr(words_from));
    return out;
}

}  // namespace orchestratord::log
