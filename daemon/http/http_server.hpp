#pragma once
// The operator's HTTP endpoints (Boost.Beast, on the daemon's event loop):
//   GET /metrics  Prometheus text format
//   GET /healthz  200 "ok" while the event loop runs (it answers the request)
// Requests are small and answered at once; a connection idle for 10 s is closed.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <string>

#include "metrics/metrics.hpp"

namespace orchestratord::http {

class HttpServer {
public:
    HttpServer(boost::asio::io_context& io, const metrics::Metrics& metrics);

    // Listens on `listen` ("host:port"; port 0 picks a free one) and serves
    // until stop(). Throws std::runtime_error naming the address when it
    // cannot listen there.
    void start(const std::string& listen);
    void stop();
    // The bound port (useful with port 0).
    uint16_t port() const { return port_; }

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

    boost::asio::io_context& io_;
    const metrics::Metrics& metrics_;
    boost::asio::ip::tcp::acceptor acceptor_;
    uint16_t port_ = 0;
};

}  // namespace orchestratord::http
