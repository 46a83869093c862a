#pragma once
// Polling the health endpoints of a daemon under test.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "support/http_get.hpp"

namespace orchestratord::test {

// One GET; nullopt when the daemon does not answer (not listening yet, gone).
inline std::optional<HttpAnswer> try_get(int port, const std::string& target) {
    try {
        return http_get(port, target);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// Polls `target` every 20 ms until an answer satisfies `wanted`; the last
// answer (matching or not) is left in `last` for the failure message.
inline bool wait_for_answer(int port, const std::string& target, const std::function<bool(const HttpAnswer&)>& wanted,
                            std::chrono::milliseconds timeout, HttpAnswer& last) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (auto answer = try_get(port, target)) {
            last = *answer;
            if (wanted(last)) return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

inline std::function<bool(const HttpAnswer&)> answers(int status, const std::string& body_part = "") {
    return [status, body_part](const HttpAnswer& answer) {
        return answer.status == status && answer.body.find(body_part) != std::string::npos;
    };
}

}  // namespace orchestratord::test
