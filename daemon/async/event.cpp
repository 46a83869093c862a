#include "async/event.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace orchestratord::async {
namespace asio = boost::asio;

Event::Event(const asio::any_io_executor& executor) : timer_(executor, asio::steady_timer::time_point::max()) {}

void Event::set() {
    set_ = true;
    timer_.cancel();
}

void Event::reset() {
    set_ = false;
}

asio::awaitable<void> Event::wait() {
    if (set_) co_return;
    // Woken by the cancel in set() or in the timer's destructor; either way
    // the wait is over, and nothing of *this is read after it.
    boost::system::error_code ignored;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

}  // namespace orchestratord::async
