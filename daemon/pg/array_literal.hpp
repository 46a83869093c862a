#pragma once
// PostgreSQL array literals ("{1,2,3}", "{\"a\",\"b\"}") for passing lists as
// one text parameter (cast in SQL: $1::int8[], $2::text[]), never spliced into
// the statement.
#include <string>
#include <vector>

namespace orchestratord::pg {

template <typename Number>
std::string number_array(const std::vector<Number>& items) {
    std::string out = "{";
    for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ',';
        out += std::to_string(items[i]);
    }
    out += '}';
    return out;
}

// Every element quoted and escaped.
inline std::string text_array(const std::vector<std::string>& items) {
    std::string out = "{";
    for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ',';
        out += '"';
        for (char c : items[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    out += '}';
    return out;
}

}  // namespace orchestratord::pg
