#pragma once
// LISTENs with its own connection on the events channel (the optional NOTIFY
// trigger: wakes every idle runner when events are appended) and on the
// cluster channel (coordination changes: handoffs take milliseconds). A lost
// connection is re-established with backoff, and every callback runs once
// then, because notifications sent while disconnected are lost.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace orchestratord::runtime {

class WakeupListener {
public:
    using Channels = std::map<std::string, std::function<void()>>;  // channel -> what to do on NOTIFY
    WakeupListener(boost::asio::io_context& io, std::string conninfo, std::string application_name, Channels channels);
    boost::asio::awaitable<void> run();
    void stop();

private:
    boost::asio::io_context& io_;
    std::string conninfo_;
    std::string application_name_;
    Channels channels_;
    void call_all();
    bool stopping_ = false;
    struct Connection;
    std::shared_ptr<Connection> connection_;
};

}  // namespace orchestratord::runtime
