#pragma once
// A blocking HTTP/1.1 GET against 127.0.0.1 for tests (Boost.Beast).
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <regex>
#include <string>

namespace orchestratord::test {

struct HttpAnswer {
    int status = 0;
    std::string content_type;
    std::string body;
};

inline HttpAnswer http_get(int port, const std::string& target) {
    namespace bhttp = boost::beast::http;
    boost::asio::io_context io;
    boost::beast::tcp_stream stream(io);
    stream.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    bhttp::request<bhttp::empty_body> request(bhttp::verb::get, target, 11);
    request.set(bhttp::field::host, "127.0.0.1");
    bhttp::write(stream, request);
    boost::beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> response;
    bhttp::read(stream, buffer, response);
    boost::beast::error_code ignored;
    stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    return {static_cast<int>(response.result_int()), std::string(response[bhttp::field::content_type]),
            response.body()};
}

// The port a daemon logged for its HTTP endpoints (0 when not found).
inline int logged_http_port(const std::string& output) {
    std::smatch match;
    static const std::regex line(R"(http endpoints listening address=[^ ]*:([0-9]+))");
    return std::regex_search(output, match, line) ? std::stoi(match[1].str()) : 0;
}

// The value of one sample line of a Prometheus text answer (-1 when absent).
inline double metric_value(const std::string& text, const std::string& sample_prefix) {
    const auto at = text.find("\n" + sample_prefix);
    if (at == std::string::npos) return -1;
    const auto space = text.find(' ', at + 1 + sample_prefix.size());
    return std::stod(text.substr(space + 1, text.find('\n', space) - space - 1));
}

}  // namespace orchestratord::test
