#include "log/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace orchestratord::log {
namespace {

// One JSON object per line; the message is escaped by nlohmann::json, which
// a pattern string could not do.
class JsonFormatter : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const auto since_epoch = msg.time.time_since_epoch();
        const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count();
        const std::time_t seconds = std::chrono::system_clock::to_time_t(msg.time);
        std::tm utc{};
        gmtime_r(&seconds, &utc);
        char stamp[32];
        std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
        char millis_text[8];
        std::snprintf(millis_text, sizeof millis_text, ".%03dZ", static_cast<int>(millis % 1000));
        const auto level = spdlog::level::to_string_view(msg.level);
        nlohmann::json line = nlohmann::json::object();
        line["ts"] = std::string(stamp) + millis_text;
        line["level"] = std::string(level.data(), level.size());
        line["msg"] = std::string(msg.payload.data(), msg.payload.size());
        line["pid"] = static_cast<int64_t>(::getpid());
        const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        dest.append(text.data(), text.data() + text.size());
        dest.push_back('\n');
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

spdlog::level::level_enum spdlog_level(Level level) {
    switch (level) {
        case Level::trace:
            return spdlog::level::trace;
        case Level::debug:
            return spdlog::level::debug;
        case Level::info:
            return spdlog::level::info;
        case Level::warn:
            return spdlog::level::warn;
        case Level::error:
            return spdlog::level::err;
    }
    return spdlog::level::info;
}

}  // namespace

void configure(Level level, Format format) {
    auto logger = spdlog::default_logger();
    if (logger == nullptr || logger->name() != "orchestratord") {
        logger = std::make_shared<spdlog::logger>("orchestratord", std::make_shared<spdlog::sinks::stderr_sink_mt>());
        spdlog::set_default_logger(logger);
    }
    if (format == Format::json) {
        logger->set_formatter(std::make_unique<JsonFormatter>());
    } else {
        logger->set_formatter(std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ %-5l %v",
                                                                          spdlog::pattern_time_type::utc));
    }
    logger->set_level(spdlog_level(level));
    logger->flush_on(spdlog::level::trace);
}

}  // namespace orchestratord::log
