#pragma once
// A fake systemd notification socket: the daemon under test sends its
// READY=1 / RELOADING=1 / STOPPING=1 datagrams here (NOTIFY_SOCKET=path()).
#include <chrono>
#include <optional>
#include <string>

namespace orchestratord::test {

class NotifySocket {
public:
    explicit NotifySocket(const std::string& path);
    ~NotifySocket();
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    const std::string& path() const { return path_; }
    // The next datagram, or nullopt when none arrives within `timeout`.
    std::optional<std::string> receive(std::chrono::milliseconds timeout);
    // Receives datagrams until one contains `text`; false on timeout.
    bool wait_for(const std::string& text, std::chrono::milliseconds timeout);

private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace orchestratord::test
