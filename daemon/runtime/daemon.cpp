#include "runtime/daemon.hpp"

#include <orchestratord/plugin_abi.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "cluster/cluster_member.hpp"
#include "http/http_server.hpp"
#include "log/logging.hpp"
#include "log/quoted.hpp"
#include "metrics/metrics.hpp"
#include "pg/connection_pool.hpp"
#include "runtime/config_diff.hpp"
#include "runtime/health_state.hpp"
#include "runtime/metrics_sampler.hpp"
#include "runtime/plugin_reload.hpp"
#include "runtime/projection_pool.hpp"
#include "runtime/projection_runner.hpp"
#include "runtime/projection_set.hpp"
#include "runtime/running_count.hpp"
#include "runtime/startup_checks.hpp"
#include "runtime/wakeup_listener.hpp"
#include "store/pg_names.hpp"
#include "store/read_coalescer.hpp"
#include "systemd/service_notifier.hpp"

namespace orchestratord::runtime {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

std::string random_tag() {
    std::random_device random;
    std::string tag;
    for (int i = 0; i < 3; ++i) tag += fmt::format("{:08x}", random());
    return tag;
}

// The event loop, with the step of its destructor that destroys every
// handler (and coroutine frame) still pending made callable on its own: the
// daemon runs it while everything those frames point to is still alive.
class EventLoop : public asio::io_context {
public:
    using asio::io_context::shutdown;
};

// After a drain that timed out, how long the cluster members get to release
// their slices and unregister before the process ends anyway.
constexpr auto kLeaveBound = std::chrono::seconds(5);

std::string describe(const config::Config& config, size_t projections) {
    return "running: " + std::to_string(config.replica_sets.size()) + " replica set(s), " +
           std::to_string(projections) + " projection(s)";
}

// The process, from the start-up checks to the last destructor.
//
// Members are declared in the order they are made, so they are destroyed in
// reverse: runners (which join their idle handler threads and destroy their
// plugin instances) first, then what they use (listener, pool, cluster
// members, the shared read, metrics), the plugin libraries, and the event
// loop last. No destructor runs before shut_down() has destroyed every
// pending coroutine frame, so no frame outlives what it points to.
class Daemon {
public:
    Daemon(config::LoadOptions options, config::Config config)
        : options_(std::move(options)), config_(std::move(config)) {}

    int run() {
        for (const auto& warning : config_.warnings) spdlog::warn("configuration warning: {}", warning);
        spdlog::info("starting orchestratord pid={} config={} replica_sets={} session_tag={}", ::getpid(),
                     log::quoted(config_.file.empty() ? "(environment only)" : config_.file),
                     config_.replica_sets.size(), session_tag_);
        auto checked = run_startup_checks(config_);
        if (!checked) return kExitStartupFailed;
        state_directory_ = checked->state_directory;
        notify_available_ = checked->notify_available;
        plugins_.emplace(std::move(checked->scan));

        if (!start_http()) return kExitStartupFailed;  // before anything runs on the loop
        asio::co_spawn(io_, handle_signals(), asio::detached);
        metrics_.set_build_info(ORCHESTRATORD_VERSION,
                                std::to_string(ORCH_PLUGIN_ABI_MAJOR) + "." + std::to_string(ORCH_PLUGIN_ABI_MINOR));
        start_members();
        start_runners(std::move(checked->projections));
        health_.plugins_loaded();
        asio::co_spawn(io_, health_.watch_loop(), asio::detached);
        if (auto period = notifier_.watchdog_period()) asio::co_spawn(io_, ping_watchdog(*period), asio::detached);

        // Log first, then tell systemd: whoever waits for READY=1 finds the line.
        const std::string status = describe(config_, runners_.size());
        spdlog::info("ready; {}", status);
        notifier_.ready(status);
        io_.run();
        return shut_down();
    }

private:
    // Completion of a long-running coroutine: an exception escaping it is a
    // bug worth a critical line; either way `then` does the bookkeeping.
    static auto when_ended(const char* what, std::function<void()> then) {
        return [what, then = std::move(then)](std::exception_ptr error) {
            if (error) {
                try {
                    std::rethrow_exception(error);
                } catch (const std::exception& e) {
                    spdlog::critical("{} ended unexpectedly: {}", what, e.what());
                }
            }
            then();
        };
    }

    // One cluster member per replica set: each is an independent cluster.
    void start_members() {
        for (const auto& replica_set : config_.replica_sets) {
            cluster::MemberSettings settings{config_.database.url,  config_.event_store, replica_set,
                                             ORCHESTRATORD_VERSION, session_tag_,        &metrics_};
            auto& member = members_.emplace_back(std::make_unique<cluster::ClusterMember>(io_, settings));
            members_running_.started();
            asio::co_spawn(io_, member->run(), when_ended("a cluster member", [this] { members_running_.ended(); }));
        }
    }

    cluster::ClusterMember& member_of(const std::string& replica_set) {
        for (auto& member : members_) {
            if (member->replica_set() == replica_set) return *member;
        }
        throw std::logic_error("no cluster member for replica set " + replica_set);
    }

    // One runner per configured projection, all on this loop; handlers run on
    // the handler threads.
    void start_runners(ProjectionSet projections) {
        pool_ = std::make_unique<pg::ConnectionPool>(io_, projection_pool_settings(config_, session_tag_));
        WakeupListener::Channels channels;
        channels[store::events_channel(config_.event_store)] = [this] {
            for (auto& runner : runners_) runner->wake();
        };
        channels[cluster::cluster_channel(config_.event_store)] = [this] {
            for (auto& member : members_) member->coordination_changed();
            for (auto& runner : runners_) runner->state_may_have_changed();
        };
        listener_ = std::make_unique<WakeupListener>(
            io_, config_.database.url, cluster::session_name(session_tag_, "listener"), std::move(channels));
        asio::co_spawn(io_, listener_->run(), asio::detached);
        for (auto& instance : projections.instances) {
            RunnerSettings settings;
            settings.pool = pool_.get();
            settings.event_store = config_.event_store;
            settings.notify_available = notify_available_;
            settings.coalescer = &coalescer_;
            settings.metrics = &metrics_;
            settings.projection_metrics = metrics_.projection(instance->replica_set(), instance->name());
            settings.state_directory = state_directory_;
            for (const auto& replica_set : config_.replica_sets) {
                if (replica_set.name != instance->replica_set()) continue;
                settings.replica_set = replica_set;
                for (const auto& projection : replica_set.projections) {
                    if (projection.name == instance->name()) settings.projection = projection;
                }
            }
            const auto* plugin = plugins_->scan().find(instance->name(), settings.projection.plugin);
            if (plugin != nullptr) settings.scope = declared_scope(*plugin, instance->name());
            settings.ownership = &member_of(instance->replica_set()).ownership();
            auto& runner =
                runners_.emplace_back(std::make_unique<ProjectionRunner>(io_, settings, std::move(instance)));
            if (plugin != nullptr) runner->report_plugin(plugin->name, plugin->version);
            runners_running_.started();
            asio::co_spawn(io_, runner->run(), when_ended("a projection runner", [this] { runners_running_.ended(); }));
        }
        sampler_ = std::make_unique<MetricsSampler>(io_, metrics_, *pool_, config_);
        asio::co_spawn(io_, sampler_->run(), asio::detached);
        // A changed slice assignment wakes the replica set's runners, so they
        // switch at their next batch boundary even when idle.
        for (auto& member : members_) {
            const std::string name = member->replica_set();
            member->ownership().on_view_change([this, name] {
                for (auto& runner : runners_) {
                    if (runner->replica_set() == name) runner->wake();
                }
            });
        }
    }

    // With http.required (the default under systemd) a busy port stops the
    // start: a supervisor probing /healthz would otherwise reach nothing, or
    // another process. Without it, monitoring is not worth refusing to run
    // for: the busy port is reported and the daemon works on without the
    // endpoints. False: the start is refused.
    bool start_http() {
        http_.set_probe(&health_);
        try {
            http_.start(config_.http);
        } catch (const std::exception& e) {
            if (config_.http.required) {
                spdlog::critical("{}; http.required is true, so orchestratord does not start", e.what());
                return false;
            }
            spdlog::error("{}; the HTTP endpoints are off (http.required is false), projections run as usual",
                          e.what());
        }
        return true;
    }

    // The shutdown order, in one place; a stop signal starts it. Each step
    // begins when the one before has finished or its time is up:
    //  1. accepting work: the NOTIFY listener stops waking anyone;
    //  2. runners: each finishes (or rolls back) its in-flight batch, writes
    //     its checkpoints and ends; bounded by the longest
    //     coordination_timeout, after which a handler that has not returned
    //     is reported (the fence in the database refuses its commit);
    //  3. cluster members, after the runners' last commits: each releases
    //     its slices and unregisters; bounded by that deadline plus
    //     kLeaveBound (kLeaveBound from now when the drain timed out);
    //  4. the loop: the HTTP endpoints close, the watchdog stops, run()
    //     returns, and shut_down() takes over.
    // A second stop signal skips all of it (handle_signals()).
    asio::awaitable<void> stop_in_order() {
        config::Duration bound{};
        for (const auto& replica_set : config_.replica_sets) bound = std::max(bound, replica_set.coordination_timeout);
        const auto deadline = Clock::now() + bound;

        if (listener_) listener_->stop();
        if (sampler_) sampler_->stop();

        for (auto& runner : runners_) runner->stop();
        const bool drained = co_await runners_running_.none_by(deadline);
        if (!drained) {
            for (const auto& runner : runners_) {
                if (runner->handler_busy()) {
                    spdlog::error("coordination timeout: a projection handler did not return in time {}",
                                  runner->handler_context());
                }
            }
            // The slices are released all the same: the fence in the
            // database refuses any commit of a batch still running.
            spdlog::error(
                "coordination timeout: projections did not finish their batches in time; releasing the slices and "
                "exiting anyway");
        }

        for (auto& member : members_) member->stop();
        if (!co_await members_running_.none_by(drained ? deadline + kLeaveBound : Clock::now() + kLeaveBound)) {
            spdlog::warn("cluster members did not leave in time; exiting anyway");
        }

        http_.stop();
        health_.stop();
        watchdog_.cancel();
        io_.stop();
    }

    // After the loop has stopped, in a fixed order: signals get their default
    // action back (a further SIGTERM ends the process at once), a handler
    // that never returned is left behind by exiting without destructors
    // (its plugin cannot be unloaded under it), every pending coroutine frame
    // is destroyed while what it points to still lives, and only then the
    // members are destroyed, in reverse order of construction (runners join
    // their idle handler threads and destroy their plugin instances before
    // the plugins are unloaded).
    int shut_down() {
        boost::system::error_code ignored;
        signals_.clear(ignored);
        for (const auto& runner : runners_) {
            if (runner->handler_busy()) {
                spdlog::error("exiting without waiting for a projection handler that did not return {}",
                              runner->handler_context());
                spdlog::default_logger()->flush();
                std::_Exit(kExitOk);
            }
        }
        io_.shutdown();
        spdlog::info("stopped");
        return kExitOk;
    }

    asio::awaitable<void> handle_signals() {
        for (;;) {
            const int signal = co_await signals_.async_wait(asio::use_awaitable);
            if (signal == SIGHUP) {
                reload();
                continue;
            }
            if (stopping_) {
                // A second SIGTERM/SIGINT means "now": skip the drain.
                spdlog::warn("got a second stop signal signal={}, exiting immediately", signal);
                spdlog::default_logger()->flush();
                std::_Exit(kExitStartupFailed);
            }
            stopping_ = true;
            spdlog::info("got a stop signal, stopping gracefully signal={}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
            notifier_.stopping();
            // Should the sequence fail, the loop stops all the same.
            asio::co_spawn(io_, stop_in_order(), when_ended("the shutdown", [this] { io_.stop(); }));
        }
    }

    asio::awaitable<void> ping_watchdog(std::chrono::microseconds period) {
        // Pinged from the same loop that does the work: a stuck loop stops the
        // pings and systemd restarts the service.
        for (;;) {
            notifier_.watchdog_ping();
            watchdog_.expires_after(period);
            boost::system::error_code ec;
            co_await watchdog_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
        }
    }

    // SIGHUP: re-read the configuration and rescan the plugins directory.
    // Reloadable keys take effect now; other changes are reported as needing
    // a restart. A broken new configuration leaves the running one in place.
    void reload() {
        notifier_.reloading();
        spdlog::info("got SIGHUP, re-reading config file={}", options_.file);
        config::Config fresh;
        try {
            fresh = config::load_config(options_);
        } catch (const config::ConfigError& e) {
            for (const auto& problem : e.problems()) spdlog::error("reload refused: {}", problem);
            spdlog::error("keeping the running configuration");
            spdlog::default_logger()->flush();
            notifier_.ready(describe(config_, runners_.size()));
            return;
        }
        for (const auto& warning : fresh.warnings) spdlog::warn("configuration warning: {}", warning);
        ConfigDiff diff = diff_config(config_, fresh);
        log_config_diff(diff);
        config_ = std::move(diff.next);
        log::configure(config_.logging.level, config_.logging.format);

        plugins_->rescan(config_, runners_);
        const std::string status = describe(config_, runners_.size());
        spdlog::info("reload done; {}", status);
        notifier_.ready(status);
    }

    config::LoadOptions options_;
    config::Config config_;
    // Names this process's sessions (application_name) so a coordinator can
    // end them if this worker is ever removed as stale.
    const std::string session_tag_ = random_tag();
    EventLoop io_;  // destroyed last; its pending frames are destroyed earlier, in shut_down()
    systemd::ServiceNotifier notifier_;
    asio::signal_set signals_{io_, SIGTERM, SIGINT, SIGHUP};
    asio::steady_timer watchdog_{io_};
    bool stopping_ = false;
    // From the start-up checks.
    std::string state_directory_;  // empty: crash isolation is off
    bool notify_available_ = false;
    std::optional<PluginReload> plugins_;  // the libraries outlive every instance made from them
    metrics::Metrics metrics_;
    http::HttpServer http_{io_, metrics_};
    store::ReadCoalescer coalescer_{io_};  // projections at the same place share one read
    std::vector<std::unique_ptr<cluster::ClusterMember>> members_;
    RunningCount members_running_{io_};
    std::unique_ptr<pg::ConnectionPool> pool_;  // the projections' connections
    std::unique_ptr<WakeupListener> listener_;
    std::unique_ptr<MetricsSampler> sampler_;
    std::vector<std::unique_ptr<ProjectionRunner>> runners_;
    RunningCount runners_running_{io_};
    // What /healthz, /readyz and /status say; http_ asks it only while
    // serving, and shut_down() ends every request before destructors run.
    HealthState health_{io_, config_, members_, runners_};
};

}  // namespace

int run_daemon(const config::LoadOptions& options) {
    config::Config config;
    try {
        config = config::load_config(options);
    } catch (const config::ConfigError& e) {
        log::configure(log::Level::info, log::Format::text);
        for (const auto& problem : e.problems()) spdlog::critical("invalid configuration: {}", problem);
        return kExitConfig;
    }
    log::configure(config.logging.level, config.logging.format);
    Daemon daemon(options, std::move(config));
    return daemon.run();
}

}  // namespace orchestratord::runtime
