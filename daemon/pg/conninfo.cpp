#include "pg/conninfo.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

namespace orchestratord::pg {
namespace {

constexpr const char* kMask = "****";

// libpq reads a string as a URL only with one of these exact prefixes.
std::string url_scheme(const std::string& conninfo) {
    for (const char* scheme : {"postgresql://", "postgres://"}) {
        if (conninfo.starts_with(scheme)) return scheme;
    }
    return "";
}

struct Option {
    std::string keyword;
    std::string value;
    bool secret = false;
};

struct Parsed {
    std::vector<Option> options;       // only the options the string sets, in libpq's order
    std::optional<std::string> error;  // libpq's message, which may quote the input
};

Parsed parse(const std::string& conninfo) {
    Parsed parsed;
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
    if (options == nullptr) {
        parsed.error = error != nullptr ? error : "out of memory";
        PQfreemem(error);
        return parsed;
    }
    for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
        if (option->val == nullptr) continue;
        // libpq marks the options it never displays (password, sslpassword) with '*'.
        const bool secret = option->dispchar != nullptr && std::strchr(option->dispchar, '*') != nullptr;
        parsed.options.push_back({option->keyword, option->val, secret});
    }
    PQconninfoFree(options);
    return parsed;
}

// libpq's parse errors quote the offending part of the input, which may be the
// password: keep the words before the first quote. Translated messages may use
// other quotation marks, so any non-ASCII byte ends the reason too.
std::string safe_parse_error(const std::string& message) {
    if (message.starts_with("missing \"=\" after")) return "missing \"=\" after a keyword";
    if (message.starts_with("end of string reached when looking for matching \"]\"")) {
        return "unterminated IPv6 address (no closing \"]\")";
    }
    size_t end = 0;
    while (end < message.size()) {
        const unsigned char c = static_cast<unsigned char>(message[end]);
        if (c == '"' || c == '\'' || c >= 0x80 || c == '\n') break;
        ++end;
    }
    std::string reason = message.substr(0, end);
    while (!reason.empty() && (reason.back() == ' ' || reason.back() == ':')) reason.pop_back();
    return reason.empty() ? "libpq cannot parse it" : reason;
}

std::string percent_encoded(const std::string& text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        }
    }
    return out;
}

// Decodes what libpq would decode; a malformed sequence is kept as it is.
std::string percent_decoded(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
            out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

std::vector<std::string> split(const std::string& text, const char* separators) {
    std::vector<std::string> pieces;
    size_t start = 0;
    for (;;) {
        const size_t end = text.find_first_of(separators, start);
        pieces.push_back(text.substr(start, end - start));
        if (end == std::string::npos) return pieces;
        start = end + 1;
    }
}

// Every text that may be the password or a piece of it, in the forms a
// message could show it (as written, decoded, encoded); longest first.
std::vector<std::string> secret_fragments(const std::string& conninfo, const Parsed& parsed) {
    std::vector<std::string> raw;
    for (const auto& option : parsed.options) {
        if (option.secret) raw.push_back(option.value);
    }
    if (const std::string scheme = url_scheme(conninfo); !scheme.empty()) {
        // "scheme://user:password@host": libpq ends the user information at
        // the first '@' or '/', so a password with an unencoded '@' or '/'
        // spills into the host, port or database name. Everything between the
        // first ':' and the last '@' may be the password.
        const size_t at = conninfo.rfind('@');
        const size_t colon = conninfo.find(':', scheme.size());
        if (at != std::string::npos && colon != std::string::npos && colon < at) {
            const std::string written = conninfo.substr(colon + 1, at - colon - 1);
            raw.push_back(written);
            if (written.find_first_of("@/") != std::string::npos) {
                for (auto& piece : split(written, "@/")) raw.push_back(std::move(piece));
            }
        }
    }
    std::vector<std::string> fragments;
    for (const auto& text : raw) {
        for (auto form : {text, percent_decoded(text), percent_encoded(text)}) {
            if (!form.empty()) fragments.push_back(std::move(form));
        }
    }
    std::sort(fragments.begin(), fragments.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    fragments.erase(std::unique(fragments.begin(), fragments.end()), fragments.end());
    return fragments;
}

bool is_word_byte(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// Replaces every occurrence of each fragment with "****". A fragment shorter
// than 4 bytes is replaced only where it stands as a whole word, so a short
// piece ("ab") does not mangle every word that contains it.
std::string scrubbed(std::string text, const std::vector<std::string>& fragments) {
    for (const auto& fragment : fragments) {
        size_t pos = 0;
        while ((pos = text.find(fragment, pos)) != std::string::npos) {
            const size_t end = pos + fragment.size();
            const bool whole_word =
                (pos == 0 || !is_word_byte(text[pos - 1])) && (end == text.size() || !is_word_byte(text[end]));
            if (fragment.size() < 4 && !whole_word) {
                ++pos;
                continue;
            }
            text.replace(pos, fragment.size(), kMask);
            pos += std::strlen(kMask);
        }
    }
    return text;
}

std::string as_keywords(const std::vector<Option>& options) {
    std::string out;
    for (const auto& option : options) {
        if (!out.empty()) out += ' ';
        out += option.keyword + "=";
        if (option.secret) {
            out += kMask;
        } else if (option.value.empty() || option.value.find_first_of(" '\\") != std::string::npos) {
            out += '\'';
            for (char c : option.value) {
                if (c == '\'' || c == '\\') out += '\\';
                out += c;
            }
            out += '\'';
        } else {
            out += option.value;
        }
    }
    return out;
}

std::string as_url(const std::string& scheme, const std::vector<Option>& options) {
    std::string user;
    bool password = false;
    std::string hosts;
    std::string ports;
    std::string dbname;
    std::string query;
    auto add_query = [&](const std::string& keyword, const std::string& value) {
        query += (query.empty() ? "?" : "&") + keyword + "=" + value;
    };
    for (const auto& option : options) {
        if (option.keyword == "password") {
            password = true;
        } else if (option.secret) {
            add_query(option.keyword, kMask);
        } else if (option.keyword == "user") {
            user = option.value;
        } else if (option.keyword == "host") {
            hosts = option.value;
        } else if (option.keyword == "port") {
            ports = option.value;
        } else if (option.keyword == "dbname") {
            dbname = option.value;
        } else {
            add_query(option.keyword, percent_encoded(option.value));
        }
    }
    std::string url = scheme;
    if (!user.empty() || password) url += percent_encoded(user) + (password ? std::string(":") + kMask : "") + "@";
    // host and port are comma-separated lists, paired in the URL when they match.
    const auto host_list = split(hosts, ",");
    const auto port_list = split(ports, ",");
    const bool paired = host_list.size() == port_list.size();
    for (size_t i = 0; i < host_list.size(); ++i) {
        if (i > 0) url += ',';
        const std::string& host = host_list[i];
        if (host.find(':') != std::string::npos) {  // IPv6
            url.append("[").append(host).append("]");
        } else {
            url.append(percent_encoded(host));
        }
        if (paired && !port_list[i].empty()) url.append(":").append(percent_encoded(port_list[i]));
    }
    if (!paired) add_query("port", percent_encoded(ports));
    if (!dbname.empty()) url.append("/").append(percent_encoded(dbname));
    return url + query;
}

}  // namespace

namespace {

// libpq parses "host:notaport" and fails only when it connects ("invalid
// integer value"): a port, or each of a multi-host list, must be a number.
std::optional<std::string> port_error(const std::vector<Option>& options) {
    for (const auto& option : options) {
        if (option.keyword != "port") continue;
        std::string_view ports = option.value;
        while (true) {
            const size_t comma = ports.find(',');
            const std::string_view port = ports.substr(0, comma);
            int number = 0;
            const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
            // Empty means the default port, as in libpq.
            if (!port.empty() &&
                (ec != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535)) {
                // Not quoted: a password written unencoded can land in the port.
                return "invalid port: expected a number from 1 to 65535";
            }
            if (comma == std::string_view::npos) break;
            ports.remove_prefix(comma + 1);
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string> conninfo_error(const std::string& conninfo) {
    const Parsed parsed = parse(conninfo);
    if (parsed.error) return safe_parse_error(*parsed.error);
    return port_error(parsed.options);
}

std::string mask_conninfo(const std::string& conninfo) {
    const Parsed parsed = parse(conninfo);
    const std::string scheme = url_scheme(conninfo);
    if (parsed.error) {
        return scheme.empty() ? "(a connection string libpq cannot parse, not shown)"
                              : "(a " + scheme.substr(0, scheme.size() - 3) + " URL libpq cannot parse, not shown)";
    }
    const std::string rebuilt = scheme.empty() ? as_keywords(parsed.options) : as_url(scheme, parsed.options);
    // A password written unencoded may have landed in another option.
    return scrubbed(rebuilt, secret_fragments(conninfo, parsed));
}

std::string scrub_conninfo_secrets(const std::string& message, const std::string& conninfo) {
    const Parsed parsed = parse(conninfo);
    // libpq failed on the string itself: its message is the parse error.
    if (parsed.error) return "invalid connection string: " + safe_parse_error(*parsed.error);
    return scrubbed(message, secret_fragments(conninfo, parsed));
}

}  // namespace orchestratord::pg
