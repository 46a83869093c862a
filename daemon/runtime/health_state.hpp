#pragma once
// The daemon's health as the HTTP endpoints report it (http/health_probe.hpp).
// Nothing here queries the database or blocks: every answer comes from what
// the cluster members and the runners already know on the event loop.
//   live   the loop turns (a timer stamps each turn) and no worker has been
//          self-fenced for longer than its stale_worker_timeout;
//   ready  plugins loaded, every worker registered, its heartbeat working,
//          not fenced, its replica set settled (no slices moving), every
//          projection started and, with http.ready_max_lag, not lagging more.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cluster/cluster_member.hpp"
#include "config/config.hpp"
#include "http/health_probe.hpp"
#include "runtime/projection_runner.hpp"

namespace orchestratord::runtime {

class HealthState : public http::HealthProbe {
public:
    using Members = std::vector<std::unique_ptr<cluster::ClusterMember>>;
    using Runners = std::vector<std::unique_ptr<ProjectionRunner>>;

    // Reads the daemon's configuration, members and runners when asked: they
    // must outlive this object.
    HealthState(boost::asio::io_context& io, const config::Config& config, const Members& members,
                const Runners& runners);

    // Stamps the loop's turns until stop().
    boost::asio::awaitable<void> watch_loop();
    void stop();
    // Every configured projection has its plugin instance and runner.
    void plugins_loaded() { plugins_loaded_ = true; }

    http::Verdict live() const override;
    http::Verdict ready() const override;
    std::string status_json() const override;

private:
    const config::Config& config_;
    const Members& members_;
    const Runners& runners_;
    boost::asio::steady_timer tick_timer_;
    std::chrono::steady_clock::time_point last_turn_ = std::chrono::steady_clock::now();
    bool plugins_loaded_ = false;
    bool stopping_ = false;
};

}  // namespace orchestratord::runtime
