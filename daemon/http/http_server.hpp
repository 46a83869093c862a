#pragma once
// The operator's HTTP endpoints (Boost.Beast, on the daemon's event loop):
//   GET /metrics  Prometheus text format
//   GET /healthz  200 "ok" while the process does its job, else 503 and why
//   GET /readyz   200 "ok" while the worker works on what it owns, else 503 and why
//   GET /status   this worker's view as JSON
// What the health endpoints say comes from a HealthProbe (health_probe.hpp).
// Requests are small and answered at once. The endpoints must never starve
// the daemon of file descriptors or CPU, whatever clients do:
// - at most http.max_connections are open; further clients wait in the
//   kernel's listen backlog, costing the daemon nothing, until one closes;
// - a client that sends no complete request (or idles between requests), or
//   does not read its answer, within http.client_timeout is disconnected;
// - a failing accept (EMFILE, ENFILE, ...) pauses accepting (100 ms doubling
//   to 1 s) instead of retrying at once, and is logged once per episode.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <string>

#include "async/event.hpp"
#include "config/config.hpp"
#include "http/health_probe.hpp"
#include "metrics/metrics.hpp"

namespace orchestratord::http {

class HttpServer {
public:
    HttpServer(boost::asio::io_context& io, const metrics::Metrics& metrics);

    // Listens on config.listen ("host:port"; port 0 picks a free one) and
    // serves until stop(). Throws std::runtime_error naming the address when
    // it cannot listen there.
    void start(const config::HttpConfig& config);
    void stop();
    // The daemon's health; until set, the health endpoints answer 503 "starting".
    void set_probe(const HealthProbe* probe) { probe_ = probe; }
    // The bound port (useful with port 0).
    uint16_t port() const { return port_; }

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
    void connection_ended();

    boost::asio::io_context& io_;
    const metrics::Metrics& metrics_;
    const HealthProbe* probe_ = nullptr;
    boost::asio::ip::tcp::acceptor acceptor_;
    // Woken (cancelled) when a connection ends while the loop waits at the cap.
    async::Event slot_freed_;  // a connection ended (or stop()): the accept loop may go on
    // The pause after a failed accept.
    boost::asio::steady_timer accept_retry_;
    int64_t max_connections_ = 1;
    std::chrono::nanoseconds client_timeout_{};
    int64_t open_connections_ = 0;
    uint16_t port_ = 0;
};

}  // namespace orchestratord::http
