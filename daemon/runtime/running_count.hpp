#pragma once
// A count of running coroutines that can be awaited until it reaches zero.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>

namespace orchestratord::runtime {

// How many long-running coroutines of one kind (runners, cluster members)
// are still running, and a wait for the last one to end.
class RunningCount {
public:
    explicit RunningCount(boost::asio::io_context& io) : timer_(io) {}

    void started() { ++count_; }
    void ended() {
        if (--count_ == 0) timer_.cancel();
    }
    size_t count() const { return count_; }

    // True once none is running; false when `deadline` comes first.
    boost::asio::awaitable<bool> none_by(std::chrono::steady_clock::time_point deadline) {
        while (count_ > 0 && std::chrono::steady_clock::now() < deadline) {
            timer_.expires_at(deadline);
            boost::system::error_code ignored;  // cancelled by the last ended()
            co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
        }
        co_return count_ == 0;
    }

private:
    boost::asio::steady_timer timer_;
    size_t count_ = 0;
};

}  // namespace orchestratord::runtime
