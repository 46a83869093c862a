#include "http/http_server.hpp"

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

bhttp::response<bhttp::string_body> answer(const bhttp::request<bhttp::string_body>& request,
                                           const metrics::Metrics& metrics) {
    bhttp::response<bhttp::string_body> response;
    response.version(request.version());
    response.set(bhttp::field::server, "orchestratord");
    const std::string target(request.target());
    if (request.method() != bhttp::verb::get && request.method() != bhttp::verb::head) {
        response.result(bhttp::status::method_not_allowed);
        response.set(bhttp::field::allow, "GET, HEAD");
        response.body() = "only GET and HEAD\n";
    } else if (target == "/metrics") {
        response.result(bhttp::status::ok);
        response.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        response.body() = metrics.render();
    } else if (target == "/healthz") {
        response.result(bhttp::status::ok);
        response.set(bhttp::field::content_type, "text/plain; charset=utf-8");
        response.body() = "ok\n";
    } else {
        response.result(bhttp::status::not_found);
        response.set(bhttp::field::content_type, "text/plain; charset=utf-8");
        response.body() = "not found; try /metrics or /healthz\n";
    }
    response.prepare_payload();
    if (request.method() == bhttp::verb::head) response.body().clear();
    return response;
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, const metrics::Metrics& metrics)
    : io_(io), metrics_(metrics), acceptor_(io) {}

void HttpServer::start(const std::string& listen) {
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
    spdlog::info("http endpoints listening address={}:{} paths=/metrics,/healthz", endpoint.address().to_string(),
                 port_);
    asio::co_spawn(io_, accept_loop(), asio::detached);
}

void HttpServer::stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
}

asio::awaitable<void> HttpServer::accept_loop() {
    while (acceptor_.is_open()) {
        boost::system::error_code ec;
        tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
        if (ec) continue;  // e.g. the client gave up before we accepted
        asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
}

asio::awaitable<void> HttpServer::serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
        boost::system::error_code ec;
        bhttp::request<bhttp::string_body> request;
        stream.expires_after(std::chrono::seconds(10));
        co_await bhttp::async_read(stream, buffer, request, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;  // closed, timed out or not HTTP: nothing to answer
        auto response = answer(request, metrics_);
        response.keep_alive(request.keep_alive());
        co_await bhttp::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
        if (ec || !response.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace orchestratord::http
