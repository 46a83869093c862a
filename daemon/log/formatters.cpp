#include "log/formatters.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "log/line_fields.hpp"

namespace orchestratord::log {
namespace {

// 2026-05-04T10:00:00.123Z, in UTC.
void append_timestamp(std::chrono::system_clock::time_point time, spdlog::memory_buf_t& dest) {
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count() % 1000;
    const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char stamp[40];
    const size_t length = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    const int tail = std::snprintf(stamp + length, sizeof stamp - length, ".%03dZ", static_cast<int>(millis));
    dest.append(stamp, stamp + length + static_cast<size_t>(tail));
}

std::string_view payload_of(const spdlog::details::log_msg& msg) {
    return {msg.payload.data(), msg.payload.size()};
}

// A bare value that reads as a number becomes one: digits with an optional
// sign, and a decimal point with digits on both sides. Anything else (ids
// with leading zeros, 1/3, 100ms, 1e5) stays a string.
nlohmann::ordered_json field_value(const std::string& value) {
    size_t digits_from = !value.empty() && value[0] == '-' ? 1 : 0;
    const size_t point = value.find('.');
    const std::string_view whole = std::string_view(value).substr(digits_from, point - digits_from);
    const auto all_digits = [](std::string_view text) {
        return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
    };
    if (!all_digits(whole) || (whole.size() > 1 && whole[0] == '0')) return value;
    const char* first = value.data();
    const char* last = value.data() + value.size();
    if (point == std::string::npos) {
        int64_t number = 0;
        const auto [end, error] = std::from_chars(first, last, number);
        if (error == std::errc{} && end == last) return number;
        return value;
    }
    if (!all_digits(std::string_view(value).substr(point + 1))) return value;
    double number = 0;
    const auto [end, error] = std::from_chars(first, last, number);
    if (error == std::errc{} && end == last) return number;
    return value;
}

class TextFormatter : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        append_timestamp(msg.time, dest);
        dest.push_back(' ');
        const auto level = level_name(msg.level);
        dest.append(level.data(), level.data() + level.size());
        for (size_t pad = level.size(); pad < 5; ++pad) dest.push_back(' ');
        dest.push_back(' ');
        // One entry, one line: a multi-line text logged as it came (libpq's
        // messages have a line per detail) is joined with " | ".
        std::string_view payload = payload_of(msg);
        while (!payload.empty() && (payload.back() == '\n' || payload.back() == '\r')) payload.remove_suffix(1);
        for (size_t i = 0; i < payload.size(); ++i) {
            const char c = payload[i];
            if (c == '\r' && i + 1 < payload.size() && payload[i + 1] == '\n') continue;
            if (c == '\n' || c == '\r') {
                dest.append(std::string_view(" | "));
            } else {
                dest.push_back(c);
            }
        }
        dest.push_back('\n');
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<TextFormatter>(); }
};

// One JSON object per line; nlohmann::json escapes what a pattern could not.
class JsonFormatter : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        spdlog::memory_buf_t stamp;
        append_timestamp(msg.time, stamp);
        auto parts = split_fields(payload_of(msg));
        nlohmann::ordered_json line = nlohmann::ordered_json::object();
        line["ts"] = std::string(stamp.data(), stamp.size());
        line["level"] = std::string(level_name(msg.level));
        line["msg"] = std::move(parts.message);
        line["pid"] = static_cast<int64_t>(::getpid());
        for (auto& [key, value] : parts.fields) line[key] = field_value(value);
        const std::string text = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
        dest.append(text.data(), text.data() + text.size());
        dest.push_back('\n');
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

std::string_view level_name(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::trace:
            return "trace";
        case spdlog::level::debug:
            return "debug";
        case spdlog::level::info:
            return "info";
        case spdlog::level::warn:
            return "warn";
        case spdlog::level::err:
        case spdlog::level::critical:
            return "error";
        default:
            return "info";
    }
}

std::unique_ptr<spdlog::formatter> make_formatter(Format format) {
    if (format == Format::json) return std::make_unique<JsonFormatter>();
    return std::make_unique<TextFormatter>();
}

}  // namespace orchestratord::log
