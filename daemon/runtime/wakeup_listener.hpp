#pragma once
// LISTENs on the events channel (the optional NOTIFY trigger) with its own
// connection and wakes every idle runner when events are appended. A lost
// connection is re-established with backoff, and every runner is woken once
// then, because notifications sent while disconnected are lost.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <string>

namespace orchestratord::runtime {

class WakeupListener {
public:
    WakeupListener(boost::asio::io_context& io, std::string conninfo, std::string channel,
                   std::function<void()> wake_all);
    boost::asio::awaitable<void> run();
    void stop();

private:
    boost::asio::io_context& io_;
    std::string conninfo_;
    std::string channel_;
    std::function<void()> wake_all_;
    bool stopping_ = false;
    struct Connection;
    std::shared_ptr<Connection> connection_;
};

}  // namespace orchestratord::runtime
