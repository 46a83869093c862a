#pragma once
// A flag that coroutines on the event loop can wait for: wait() returns once
// set() has been called (at once when it already was), reset() arms it again.
// Used where one coroutine must wait for another's result or for a free slot;
// everything runs on one event loop thread, so no locking.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace orchestratord::async {

class Event {
public:
    explicit Event(const boost::asio::any_io_executor& executor);
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    // Wakes every waiter; until reset(), later waits return at once.
    void set();
    void reset();
    bool is_set() const { return set_; }
    // Returns when set() is called, or when the event is destroyed (then the
    // waiter must not touch it again: the owner decides which comes first).
    boost::asio::awaitable<void> wait();

private:
    // A timer that never expires on its own: cancelling it wakes its waiters.
    boost::asio::steady_timer timer_;
    bool set_ = false;
};

}  // namespace orchestratord::async
