#include "http/http_server.hpp"
#include "log/quoted.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>

namespace orchestratord::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr const char* kPaths = "/metrics,/healthz,/readyz,/status";

void text(bhttp::response<bhttp::string_body>& response, bhttp::status status, std::string body) {
    response.result(status);
    response.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    response.body() = std::move(body);
}

// 200 "ok", or 503 with the reason, so a probe's log shows why.
void verdict(bhttp::response<bhttp::string_body>& response, const Verdict& verdict) {
    if (verdict.ok) {
        text(response, bhttp::status::ok, "ok\n");
    } else {
        text(response, bhttp::status::service_unavailable, verdict.reason + "\n");
    }
}

bhttp::response<bhttp::string_body> answer(const bhttp::request<bhttp::string_body>& request,
                                           const metrics::Metrics& metrics, const HealthProbe* probe) {
    bhttp::response<bhttp::string_body> response;
    response.version(request.version());
    response.set(bhttp::field::server, "orchestratord");
    const std::string target(request.target());
    if (request.method() != bhttp::verb::get && request.method() != bhttp::verb::head) {
        text(response, bhttp::status::method_not_allowed, "only GET and HEAD\n");
        response.set(bhttp::field::allow, "GET, HEAD");
    } else if (target == "/metrics") {
        response.result(bhttp::status::ok);
        response.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        response.body() = metrics.render();
    } else if (probe == nullptr && (target == "/healthz" || target == "/readyz" || target == "/status")) {
        // Only before the daemon has wired its state in: nothing is known yet.
        text(response, bhttp::status::service_unavailable, "starting\n");
    } else if (target == "/healthz") {
        verdict(response, probe->live());
    } else if (target == "/readyz") {
        verdict(response, probe->ready());
    } else if (target == "/status") {
        response.result(bhttp::status::ok);
        response.set(bhttp::field::content_type, "application/json");
        response.body() = probe->status_json() + "\n";
    } else {
        text(response, bhttp::status::not_found, std::string("not found; try ") + kPaths + "\n");
    }
    response.prepare_payload();
    if (request.method() == bhttp::verb::head) response.body().clear();
    return response;
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, const metrics::Metrics& metrics)
    : io_(io), metrics_(metrics), acceptor_(io), slot_freed_(io.get_executor()), accept_retry_(io) {}

void HttpServer::start(const config::HttpConfig& config) {
    const std::string& listen = config.listen;
    max_connections_ = config.max_connections;
    client_timeout_ = config.client_timeout;
    // The config loader checked the form "host:port" (IPv6 hosts in brackets).
    const auto colon = listen.rfind(':');
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    const std::string port = listen.substr(colon + 1);
    boost::system::error_code ec;
    tcp::resolver resolver(io_);
    const auto endpoints = resolver.resolve(host, port, tcp::resolver::passive, ec);
    if (ec || endpoints.empty()) {
        throw std::runtime_error("http.listen " + listen + ": cannot resolve the address: " + ec.message());
    }
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        acceptor_.close();
        throw std::runtime_error("http.listen " + listen + ": cannot listen there: " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    spdlog::info("http endpoints listening address={}:{} paths={} max_connections={} client_timeout={}ms",
                 endpoint.address().to_string(), port_, kPaths, max_connections_,
                 std::chrono::duration_cast<std::chrono::milliseconds>(client_timeout_).count());
    asio::co_spawn(io_, accept_loop(), asio::detached);
}

void HttpServer::stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    slot_freed_.set();
    accept_retry_.cancel();
}

asio::awaitable<void> HttpServer::accept_loop() {
    constexpr std::chrono::milliseconds kFirstRetry{100};
    constexpr std::chrono::milliseconds kLongestRetry{1000};
    std::chrono::milliseconds retry = kFirstRetry;
    bool accept_failing = false;  // logged once per run of failures
    bool at_cap = false;          // logged once until the connections fall to half the cap
    while (acceptor_.is_open()) {
        boost::system::error_code ec;
        if (open_connections_ >= max_connections_) {
            // Accepting and closing at once would spin and answer no one:
            // leave further clients in the listen backlog (they cost the
            // daemon no descriptor) until a connection ends.
            if (!at_cap) {
                spdlog::warn("http connection limit reached, new clients wait until one closes max_connections={}",
                             max_connections_);
                at_cap = true;
            }
            slot_freed_.reset();
            co_await slot_freed_.wait();
            continue;
        }
        if (at_cap && open_connections_ <= max_connections_ / 2) at_cap = false;

        tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
        if (ec == asio::error::connection_aborted) continue;  // the client gave up before we accepted
        if (ec) {
            // EMFILE, ENFILE, ENOBUFS, ENOMEM: retrying at once fails again
            // and burns a core. Pause so that whatever holds the descriptors
            // (or the daemon's own database connections) can get on.
            if (!accept_failing) {
                spdlog::warn(
                    "http accept failed, pausing new connections error={} open_connections={} "
                    "retry_in={}ms",
                    log::quoted(ec.message()), open_connections_, retry.count());
                accept_failing = true;
            }
            accept_retry_.expires_after(retry);
            co_await accept_retry_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            retry = std::min(retry * 2, kLongestRetry);
            continue;
        }
        if (accept_failing) {
            spdlog::info("http accepting connections again open_connections={}", open_connections_);
            accept_failing = false;
            retry = kFirstRetry;
        }
        ++open_connections_;
        asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
}

void HttpServer::connection_ended() {
    --open_connections_;
    slot_freed_.set();
}

asio::awaitable<void> HttpServer::serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    try {
        for (;;) {
            boost::system::error_code ec;
            bhttp::request<bhttp::string_body> request;
            // One deadline for the whole request: an idle client and one
            // trickling a byte at a time are both cut off.
            stream.expires_after(client_timeout_);
            co_await bhttp::async_read(stream, buffer, request, asio::redirect_error(asio::use_awaitable, ec));
            if (ec) break;  // closed, timed out or not HTTP: nothing to answer
            auto response = answer(request, metrics_, probe_);
            response.keep_alive(request.keep_alive());
            stream.expires_after(client_timeout_);  // a client that does not read its answer
            co_await bhttp::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
            if (ec || !response.keep_alive()) break;
        }
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    } catch (const std::exception& e) {
        spdlog::warn("http request failed error={}", log::quoted(e.what()));
    }
    stream.close();
    // Called here rather than from a guard's destructor: when the daemon
    // stops, the io_context destroys unfinished coroutines after this server
    // is gone, and a guard would then touch freed memory.
    connection_ended();
}

}  // namespace orchestratord::http
