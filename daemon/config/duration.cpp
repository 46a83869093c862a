#include "config/duration.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

namespace orchestratord::config {
namespace {

struct Unit {
    std::string_view name;
    double nanoseconds;
};

constexpr Unit kUnits[] = {
    {"ns", 1.0}, {"us", 1e3}, {"\xC2\xB5s", 1e3}, {"\xCE\xBCs", 1e3},
    {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9},
};

DurationParse fail(std::string error) {
    DurationParse result;
    result.error = std::move(error);
    return result;
}

}  // namespace

DurationParse parse_duration(std::string_view text) {
    const std::string_view original = text;
    if (text.empty()) return fail("empty duration");
    bool negative = false;
    if (text.front() == '-' || text.front() == '+') {
        negative = text.front() == '-';
        text.remove_prefix(1);
    }
    if (text == "0") return DurationParse{true, Duration{0}, {}};
    if (text.empty()) return fail("no number after the sign");

    double total = 0;
    while (!text.empty()) {
        // The number: digits with an optional fraction.
        size_t i = 0;
        double number = 0;
        bool any_digit = false;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            number = number * 10 + (text[i] - '0');
            any_digit = true;
            ++i;
        }
        if (i < text.size() && text[i] == '.') {
            ++i;
            double scale = 0.1;
            while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
                number += (text[i] - '0') * scale;
                scale /= 10;
                any_digit = true;
                ++i;
            }
        }
        if (!any_digit) return fail("expected a number in \"" + std::string(original) + "\"");
        text.remove_prefix(i);

        // The unit: every character up to the next digit or dot, as Go reads it.
        size_t unit_end = 0;
        while (unit_end < text.size() && !(text[unit_end] >= '0' && text[unit_end] <= '9') && text[unit_end] != '.') {
            ++unit_end;
        }
        const std::string_view unit_text = text.substr(0, unit_end);
        const Unit* unit = nullptr;
        for (const auto& candidate : kUnits) {
            if (candidate.name == unit_text) unit = &candidate;
        }
        if (unit == nullptr) {
            if (unit_text.empty()) {
                return fail("missing unit in \"" + std::string(original) + "\" (use ns, us, ms, s, m or h, e.g. 5s)");
            }
            return fail("unknown unit \"" + std::string(unit_text) + "\" in \"" + std::string(original) +
                        "\" (use ns, us, ms, s, m or h)");
        }
        text.remove_prefix(unit->name.size());
        total += number * unit->nanoseconds;
        if (total > static_cast<double>(std::numeric_limits<int64_t>::max())) {
            return fail("duration \"" + std::string(original) + "\" is too large");
        }
    }
    const auto nanoseconds = static_cast<int64_t>(std::llround(total));
    return DurationParse{true, Duration{negative ? -nanoseconds : nanoseconds}, {}};
}

std::string format_duration(Duration value) {
    int64_t ns = value.count();
    if (ns == 0) return "0s";
    std::string sign;
    if (ns < 0) {
        sign = "-";
        ns = -ns;
    }
    // Below one second Go prints a single unit with a fraction.
    auto fraction = [](int64_t amount, int64_t per_unit) {
        std::string text = std::to_string(amount / per_unit);
        int64_t rest = amount % per_unit;
        if (rest != 0) {
            std::string digits = std::to_string(rest + per_unit).substr(1);
            while (!digits.empty() && digits.back() == '0') digits.pop_back();
            text += "." + digits;
        }
        return text;
    };
    if (ns < 1000) return sign + std::to_string(ns) + "ns";
    if (ns < 1000000) return sign + fraction(ns, 1000) + "us";
    if (ns < 1000000000) return sign + fraction(ns, 1000000) + "ms";

    std::string text = sign;
    const int64_t hours = ns / 3600000000000LL;
    ns %= 3600000000000LL;
    const int64_t minutes = ns / 60000000000LL;
    ns %= 60000000000LL;
    if (hours > 0) text += std::to_string(hours) + "h";
    if (hours > 0 || minutes > 0) text += std::to_string(minutes) + "m";
    text += fraction(ns, 1000000000) + "s";
    return text;
}

}  // namespace orchestratord::config
