// /healthz, /readyz and /status of real daemons: what they say while a lone
// worker runs, while slices move to a joining worker whose peer is frozen,
// while a projection lags, and http.required with a busy address.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <nlohmann/json.hpp>

#include "http/health_support.hpp"
#include "support/event_store_fixture.hpp"
#include "support/stop_gracefully.hpp"

using namespace orchestratord::test;
using namespace std::chrono_literals;

namespace {

using Env = std::map<std::string, std::optional<std::string>>;

// Short cluster timings; not started by systemd.
Env timings(const std::string& stale = "1s") {
    return {{"HEARTBEAT_INTERVAL", "200ms"},
            {"STALE_WORKER_TIMEOUT", stale},
            {"COORDINATION_TIMEOUT", "6s"},
            {"NOTIFY_SOCKET", std::nullopt}};
}

int port_of(ChildProcess& daemon) {
    REQUIRE(daemon.wait_for_output("http endpoints listening", 15s));
    const int port = logged_http_port(daemon.output());
    REQUIRE(port > 0);
    return port;
}

nlohmann::json status_of(int port) {
    const auto answer = http_get(port, "/status");
    INFO(answer.body);
    REQUIRE(answer.status == 200);
    REQUIRE(answer.content_type == "application/json");
    return nlohmann::json::parse(answer.body);
}

// A listening socket on a free loopback port, held until destroyed.
class TakenPort {
public:
    TakenPort() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t size = sizeof address;
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) == 0);
        REQUIRE(::listen(fd_, 1) == 0);
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) == 0);
        port_ = ntohs(address.sin_port);
    }
    ~TakenPort() { ::close(fd_); }
    TakenPort(const TakenPort&) = delete;
    TakenPort& operator=(const TakenPort&) = delete;
    int port() const { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
};

}  // namespace

TEST_CASE("a lone worker is live and ready and its status names its slices and projections", "[http][health]") {
    EventStoreFixture store("health_lone");
    store.append_each(100, 20);
    auto daemon = store.start_daemon(store.config_file(store.recorder()), "daemon.log", timings());
    const int port = port_of(*daemon);
    INFO(daemon->output());

    HttpAnswer last;
    REQUIRE(wait_for_answer(port, "/readyz", answers(200, "ok"), 15s, last));
    const auto health = http_get(port, "/healthz");
    CHECK(health.status == 200);
    CHECK(health.body == "ok\n");
    REQUIRE(store.wait_until([&] { return store.recorded() == 100; }, 15s));

    // The checkpoint the runner holds reaches the head without the status asking the database.
    const int64_t head = store.head();
    nlohmann::json status;
    REQUIRE(store.wait_until(
        [&] {
            status = status_of(port);
            return status["replica_sets"][0]["projections"][0]["checkpoint"] == head;
        },
        15s));
    INFO(status.dump(2));
    CHECK(status["live"]["ok"] == true);
    CHECK(status["ready"]["ok"] == true);
    const auto& replica_set = status["replica_sets"][0];
    CHECK(replica_set["name"] == "test");
    CHECK_FALSE(replica_set["worker_id"].get<std::string>().empty());
    CHECK(replica_set["generation"].get<int64_t>() >= 1);
    CHECK(replica_set["database_reachable"] == true);
    CHECK(replica_set["owned_slices"].size() == 64);
    CHECK(replica_set["owned_slices"][63] == 63);
    const auto& projection = replica_set["projections"][0];
    CHECK(projection["name"] == "recorder");
    CHECK(projection["state"] == "running");
    CHECK(projection["slices"].size() == 64);
    CHECK(http_get(port, "/nothing-here").body == "not found; try /metrics,/healthz,/readyz,/status\n");
    CHECK_THAT(daemon->output(), Catch::Contains("paths=/metrics,/healthz,/readyz,/status"));
    stop_gracefully(*daemon);
}

TEST_CASE("readyz is 503 while slices move from a frozen peer and 200 once they have moved",
          "[http][health][cluster]") {
    EventStoreFixture store("health_moving");
    const std::string config = store.config_file(store.recorder());
    // Slow to be declared stale, so the slices wait for the frozen peer a while.
    auto frozen = store.start_daemon(config, "frozen.log", timings("3s"));
    const int frozen_port = port_of(*frozen);
    HttpAnswer last;
    REQUIRE(wait_for_answer(frozen_port, "/readyz", answers(200), 15s, last));
    frozen->signal(SIGSTOP);

    auto joining = store.start_daemon(config, "joining.log", timings("3s"));
    const int port = port_of(*joining);
    INFO(joining->output());
    // Half the slices are assigned to the joining worker but still owned by
    // the frozen one, which cannot release them.
    REQUIRE(wait_for_answer(port, "/readyz", answers(503, "coordinating: "), 15s, last));
    INFO(last.body);
    CHECK_THAT(last.body, Catch::StartsWith("replica set test: coordinating: "));
    CHECK(status_of(port)["replica_sets"][0]["owned_slices"].size() < 64);
    CHECK(http_get(port, "/healthz").status == 200);  // coordinating is no reason to restart

    // The frozen worker is removed as stale; every slice comes here.
    REQUIRE(wait_for_answer(port, "/readyz", answers(200, "ok"), 20s, last));
    CHECK(status_of(port)["replica_sets"][0]["owned_slices"].size() == 64);

    frozen->signal(SIGCONT);
    stop_gracefully(*frozen);
    stop_gracefully(*joining);
}

TEST_CASE("readyz is 503 while a projection lags more than http.ready_max_lag", "[http][health]") {
    EventStoreFixture store("health_lag");
    store.append_each(10000, 40);
    Env env = timings();
    env["ORCHESTRATORD_HTTP_READY_MAX_LAG"] = "100";
    // 1000 events per batch, each batch 3 s: far behind for half a minute.
    const std::string config = store.config_file(store.recorder("recorder", ", delay_ms: 3000"), 1000);
    auto daemon = store.start_daemon(config, "daemon.log", env);
    const int port = port_of(*daemon);
    HttpAnswer last;
    // The lag is known from the runner's first progress line, 5 s in (at the
    // first batch boundary after that).
    const bool lagging = wait_for_answer(port, "/readyz", answers(503, "more than http.ready_max_lag 100"), 20s, last);
    INFO(daemon->output());
    INFO(last.status << " " << last.body);
    REQUIRE(lagging);
    CHECK_THAT(last.body, Catch::StartsWith("projection recorder of replica set test: lags "));
    CHECK(status_of(port)["replica_sets"][0]["projections"][0]["lag"].get<int64_t>() > 100);
    CHECK(http_get(port, "/healthz").status == 200);
    stop_gracefully(*daemon);
}

TEST_CASE("with http.required a busy listen address stops the start with exit 1 naming it", "[http][health]") {
    EventStoreFixture store("health_required");
    TakenPort taken;
    const std::string address = "127.0.0.1:" + std::to_string(taken.port());
    const std::string config = store.config_file(store.recorder());

    SECTION("set in the environment") {
        Env env = timings();
        env["ORCHESTRATORD_HTTP_LISTEN"] = address;
        env["ORCHESTRATORD_HTTP_REQUIRED"] = "true";
        auto daemon = store.start_daemon(config, "required.log", env);
        const auto status = daemon->wait(15s);
        INFO(daemon->output());
        REQUIRE(status);
        CHECK(status->exited);
        CHECK(status->code == 1);
        CHECK_THAT(daemon->output(), Catch::Contains("http.listen " + address + ": cannot listen there"));
        CHECK_THAT(daemon->output(), Catch::Contains("http.required is true, so orchestratord does not start"));
    }
    SECTION("by default under systemd") {
        Env env = timings();
        env["ORCHESTRATORD_HTTP_LISTEN"] = address;
        env["NOTIFY_SOCKET"] = store.dir().file("no-such-notify-socket");
        auto daemon = store.start_daemon(config, "systemd.log", env);
        const auto status = daemon->wait(15s);
        INFO(daemon->output());
        REQUIRE(status);
        CHECK(status->code == 1);
        CHECK_THAT(daemon->output(), Catch::Contains("http.listen " + address + ": cannot listen there"));
    }
    SECTION("false keeps running without the endpoints") {
        Env env = timings();
        env["ORCHESTRATORD_HTTP_LISTEN"] = address;
        env["NOTIFY_SOCKET"] = store.dir().file("no-such-notify-socket");
        env["ORCHESTRATORD_HTTP_REQUIRED"] = "false";
        auto daemon = store.start_daemon(config, "optional.log", env);
        INFO(daemon->output());
        REQUIRE(daemon->wait_for_output("ready;", 15s));
        CHECK_THAT(daemon->output(), Catch::Contains("the HTTP endpoints are off (http.required is false)"));
        stop_gracefully(*daemon);
    }
}
