// The HTTP endpoints under hostile clients, against a real daemon with a low
// descriptor limit: a flood of idle connections must neither spin the daemon
// nor take the descriptors its projections need, failed accepts pause, and
// idle or trickling clients are cut off after http.client_timeout.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "support/event_store_fixture.hpp"
#include "support/http_get.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

// Seconds of CPU (user + system) the process has used so far.
double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Fields after the command name (which may hold spaces) start at field 3;
    // utime and stime are fields 14 and 15.
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string field;
    long long utime = 0;
    long long stime = 0;
    for (int number = 3; number <= 15 && fields >> field; ++number) {
        if (number == 14) utime = std::stoll(field);
        if (number == 15) stime = std::stoll(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

int open_descriptors(pid_t pid) {
    int count = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        ++count;
    }
    return count;
}

// TCP connections to 127.0.0.1:port that never send anything. The kernel
// completes the handshake from the listen backlog, accepted or not.
class IdleClients {
public:
    IdleClients(int port, int count, std::chrono::milliseconds timeout) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<uint16_t>(port));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (int i = 0; i < count && std::chrono::steady_clock::now() < deadline; ++i) {
            const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) break;
            fds_.push_back(fd);
            if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 &&
                errno != EINPROGRESS) {
                continue;
            }
            pollfd writable{fd, POLLOUT, 0};
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            int error = 0;
            socklen_t size = sizeof error;
            if (::poll(&writable, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) == 1 &&
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0 && error == 0) {
                ++connected_;
            }
        }
    }
    ~IdleClients() { close_all(); }
    IdleClients(const IdleClients&) = delete;
    IdleClients& operator=(const IdleClients&) = delete;

    int connected() const { return connected_; }
    void close_all() {
        for (int fd : fds_) ::close(fd);
        fds_.clear();
    }

private:
    std::vector<int> fds_;
    int connected_ = 0;
};

// GET with a deadline for the whole exchange (connect included); nullopt when
// it did not complete in time or failed.
std::optional<HttpAnswer> http_get_within(int port, const std::string& target, std::chrono::milliseconds timeout) {
    namespace bhttp = boost::beast::http;
    boost::asio::io_context io;
    boost::beast::tcp_stream stream(io);
    bhttp::request<bhttp::empty_body> request(bhttp::verb::get, target, 11);
    request.set(bhttp::field::host, "127.0.0.1");
    boost::beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> response;
    bool done = false;
    stream.expires_after(timeout);
    stream.async_connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
        [&](boost::beast::error_code ec) {
            if (ec) return;
            bhttp::async_write(stream, request, [&](boost::beast::error_code ec, size_t) {
                if (ec) return;
                bhttp::async_read(stream, buffer, response, [&](boost::beast::error_code ec, size_t) { done = !ec; });
            });
        });
    io.run_for(timeout + 1s);
    if (!done) return std::nullopt;
    return HttpAnswer{static_cast<int>(response.result_int()), std::string(response[bhttp::field::content_type]),
                      response.body()};
}

// A blocking connection to 127.0.0.1:port; -1 on failure.
int connect_to(int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Waits up to `timeout` for the peer to close `fd` (EOF or reset).
bool closed_by_peer(int fd, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd readable{fd, POLLIN | POLLRDHUP, 0};
        if (::poll(&readable, 1, static_cast<int>(left.count())) != 1) continue;
        char byte = 0;
        const auto got = ::recv(fd, &byte, 1, MSG_DONTWAIT);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
    }
}

int count_of(const std::string& text, const std::string& what) {
    int count = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
    return count;
}

// A daemon of `store` running the recorder, with RLIMIT_NOFILE = `max_open_files`.
std::unique_ptr<ChildProcess> start_limited_daemon(EventStoreFixture& store, unsigned max_open_files,
                                                   std::map<std::string, std::optional<std::string>> env) {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{ORCHESTRATORD_BIN, "--config", store.config_file(store.recorder(), 10)}, env,
        store.dir().file("daemon.log"), max_open_files);
}

constexpr unsigned kMaxOpenFiles = 256;
constexpr int kFlood = 400;  // more connections than the daemon may hold descriptors

}  // namespace

TEST_CASE("a flood of idle connections beyond the descriptor limit neither spins the daemon nor stops its projections",
          "[http][limits]") {
    EventStoreFixture store("http_flood");
    auto daemon = start_limited_daemon(store, kMaxOpenFiles, {{"ORCHESTRATORD_HTTP_CLIENT_TIMEOUT", "1s"}});
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    const int port = logged_http_port(daemon->output());
    REQUIRE(port > 0);
    store.append_each(50, 10);
    REQUIRE(store.wait_until([&] { return store.recorded() == 50; }, 15s));
    const int baseline = open_descriptors(daemon->pid());
    INFO("descriptors before the flood: " << baseline);

    IdleClients flood(port, kFlood, 10s);
    REQUIRE(flood.connected() == kFlood);
    // The daemon takes what it takes of the flood within a few seconds.
    int most = 0;
    store.wait_until(
        [&] {
            most = std::max(most, open_descriptors(daemon->pid()));
            return most >= baseline + 64;
        },
        5s);

    // A couple of seconds under the flood: little CPU, a bounded number of
    // descriptors, and events still handled.
    const double cpu_before = cpu_seconds(daemon->pid());
    const auto measured_from = std::chrono::steady_clock::now();
    store.append_each(100, 10);
    bool handled = false;
    while (std::chrono::steady_clock::now() - measured_from < 2s) {
        most = std::max(most, open_descriptors(daemon->pid()));
        handled = handled || store.recorded() == 150;
        std::this_thread::sleep_for(50ms);
    }
    const double cpu = cpu_seconds(daemon->pid()) - cpu_before;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - measured_from).count();
    INFO(daemon->output());
    CHECK(cpu < 0.1 * wall);
    CHECK(most <= baseline + 64 + 8);  // 64 HTTP connections, a few database connections at most
    CHECK((handled || store.wait_until([&] { return store.recorded() == 150; }, 15s)));
    CHECK(daemon->output().find("Too many open files") == std::string::npos);
    CHECK(count_of(daemon->output(), "http connection limit reached") >= 1);

    // With the flood still connected: idle connections time out after 1 s,
    // 64 at a time, so /healthz (queued behind ~400 of them) is answered.
    const auto health = http_get_within(port, "/healthz", 30s);
    REQUIRE(health);
    CHECK(health->status == 200);
    CHECK(health->body == "ok\n");
    stop_gracefully(*daemon);
}

TEST_CASE("http.max_connections above the descriptor limit: failed accepts pause instead of spinning",
          "[http][limits]") {
    EventStoreFixture store("http_emfile");
    auto daemon = start_limited_daemon(
        store, kMaxOpenFiles,
        {{"ORCHESTRATORD_HTTP_CLIENT_TIMEOUT", "1s"}, {"ORCHESTRATORD_HTTP_MAX_CONNECTIONS", "10000"}});
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    const int port = logged_http_port(daemon->output());
    REQUIRE(port > 0);

    IdleClients flood(port, kFlood, 10s);
    REQUIRE(flood.connected() == kFlood);
    // Every descriptor the daemon may have is taken: accept fails with EMFILE.
    REQUIRE(store.wait_until([&] { return open_descriptors(daemon->pid()) >= static_cast<int>(kMaxOpenFiles); }, 5s));

    const double cpu_before = cpu_seconds(daemon->pid());
    const auto measured_from = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(2s);  // the measurement window, not a synchronisation
    const double cpu = cpu_seconds(daemon->pid()) - cpu_before;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - measured_from).count();
    const std::string log = daemon->output();
    INFO(log);
    CHECK(cpu < 0.1 * wall);
    // Once per run of failures (each client_timeout frees descriptors, and the
    // backlog takes them again), not once per failed accept.
    const int warned = count_of(log, "http accept failed, pausing new connections error=\"Too many open files\"");
    CHECK(warned >= 1);
    CHECK(warned <= 10);

    // When the flood goes away the daemon serves again and handles events.
    flood.close_all();
    const auto health = http_get_within(port, "/healthz", 15s);
    REQUIRE(health);
    CHECK(health->status == 200);
    CHECK_THAT(daemon->output(), Catch::Contains("http accepting connections again"));
    store.append_each(20, 5);
    CHECK(store.wait_until([&] { return store.recorded() == 20; }, 30s));
    stop_gracefully(*daemon);
}

TEST_CASE("an idle or trickling HTTP client is disconnected after http.client_timeout", "[http][limits]") {
    EventStoreFixture store("http_idle");
    auto daemon = start_limited_daemon(store, kMaxOpenFiles, {{"ORCHESTRATORD_HTTP_CLIENT_TIMEOUT", "1s"}});
    REQUIRE(daemon->wait_for_output("ready;", 15s));
    const int port = logged_http_port(daemon->output());
    REQUIRE(port > 0);

    SECTION("a client that connects and sends nothing") {
        const int fd = connect_to(port);
        REQUIRE(fd >= 0);
        const auto connected_at = std::chrono::steady_clock::now();
        CHECK(closed_by_peer(fd, 5s));
        const auto took = std::chrono::steady_clock::now() - connected_at;
        CHECK(took >= 900ms);
        CHECK(took < 3s);
        ::close(fd);
    }
    SECTION("a client that sends its request a byte every 200 ms") {
        const int fd = connect_to(port);
        REQUIRE(fd >= 0);
        const auto connected_at = std::chrono::steady_clock::now();
        // 41 bytes at 5 per second would take 8 s; the server allows 1 s.
        const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        bool closed = false;
        for (size_t i = 0; i < request.size() && !closed; ++i) {
            if (::send(fd, &request[i], 1, MSG_NOSIGNAL) != 1) break;
            closed = closed_by_peer(fd, 200ms);
        }
        closed = closed || closed_by_peer(fd, 1s);
        const auto took = std::chrono::steady_clock::now() - connected_at;
        CHECK(closed);
        CHECK(took < 3s);
        ::close(fd);
    }
    // The endpoints still answer a well-behaved client.
    const auto health = http_get_within(port, "/healthz", 5s);
    REQUIRE(health);
    CHECK(health->status == 200);
    stop_gracefully(*daemon);
}
