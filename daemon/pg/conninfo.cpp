#include "pg/conninfo.hpp"

#include <libpq-fe.h>

#include <regex>

namespace orchestratord::pg {

std::optional<std::string> conninfo_error(const std::string& conninfo) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
    if (options == nullptr) {
        std::string message = error != nullptr ? error : "out of memory";
        PQfreemem(error);
        while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
        return message;
    }
    PQconninfoFree(options);
    return std::nullopt;
}

std::string mask_conninfo(const std::string& conninfo) {
    std::string masked = conninfo;
    const auto scheme = masked.find("://");
    if (scheme != std::string::npos) {
        // URI form: postgres://user:password@host/db?password=...
        const size_t authority = scheme + 3;
        size_t authority_end = masked.find_first_of("/?", authority);
        if (authority_end == std::string::npos) authority_end = masked.size();
        const size_t at = masked.rfind('@', authority_end);
        if (at != std::string::npos && at >= authority) {
            const size_t colon = masked.find(':', authority);
            if (colon != std::string::npos && colon < at) masked.replace(colon + 1, at - colon - 1, "****");
        }
        static const std::regex query_password(R"(([?&]password=)[^&]*)", std::regex::icase);
        return std::regex_replace(masked, query_password, "$1****");
    }
    // key=value form: the value may be quoted with backslash escapes.
    static const std::regex keyword_password(R"((password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+))", std::regex::icase);
    return std::regex_replace(masked, keyword_password, "$1****");
}

}  // namespace orchestratord::pg
