#include "log/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "log/formatters.hpp"

namespace orchestratord::log {
namespace {

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
    logger->set_formatter(make_formatter(format));
    logger->set_level(spdlog_level(level));
    logger->flush_on(spdlog::level::trace);
}

}  // namespace orchestratord::log
