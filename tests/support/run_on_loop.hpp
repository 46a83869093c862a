#pragma once
// Runs one coroutine to completion on a fresh Asio loop, rethrowing its failure.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <functional>

namespace orchestratord::test {

inline void run_on_loop(const std::function<boost::asio::awaitable<void>(boost::asio::io_context&)>& body) {
    boost::asio::io_context io;
    std::exception_ptr failure;
    boost::asio::co_spawn(io, body(io), [&](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure) std::rethrow_exception(failure);
}

}  // namespace orchestratord::test
