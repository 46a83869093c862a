// The awaitable event: waiters wake on set(), a set event lets waits through
// at once, reset() arms it again, and destroying it ends a pending wait.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <memory>

#include "async/event.hpp"

using orchestratord::async::Event;
namespace asio = boost::asio;

namespace {

// Starts a coroutine that waits for `event` and counts its wake-up.
void spawn_waiter(asio::io_context& io, Event& event, int& woken) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await event.wait();
            ++woken;
        },
        asio::detached);
}

// Runs whatever is ready now. restart(): a loop that ran out of work stops,
// and a stopped loop runs nothing until restarted.
void run_ready(asio::io_context& io) {
    io.restart();
    io.poll();
}

}  // namespace

TEST_CASE("waiters sleep until the event is set, then all wake", "[async][event]") {
    asio::io_context io;
    Event event(io.get_executor());
    int woken = 0;
    spawn_waiter(io, event, woken);
    spawn_waiter(io, event, woken);
    // Nothing else to run: both waiters are parked on the event.
    run_ready(io);
    CHECK(woken == 0);
    CHECK_FALSE(event.is_set());
    event.set();
    run_ready(io);
    CHECK(woken == 2);
    CHECK(event.is_set());
}

TEST_CASE("a wait on an event already set returns at once, and reset arms it again", "[async][event]") {
    asio::io_context io;
    Event event(io.get_executor());
    event.set();
    int woken = 0;
    spawn_waiter(io, event, woken);
    run_ready(io);
    CHECK(woken == 1);
    event.reset();
    CHECK_FALSE(event.is_set());
    spawn_waiter(io, event, woken);
    run_ready(io);
    CHECK(woken == 1);
    event.set();
    run_ready(io);
    CHECK(woken == 2);
}

TEST_CASE("destroying an event ends a pending wait", "[async][event]") {
    asio::io_context io;
    auto event = std::make_unique<Event>(io.get_executor());
    int woken = 0;
    spawn_waiter(io, *event, woken);
    run_ready(io);
    CHECK(woken == 0);
    event.reset();
    run_ready(io);
    CHECK(woken == 1);
    CHECK(io.stopped());  // nothing left waiting: poll() ran out of work
}
