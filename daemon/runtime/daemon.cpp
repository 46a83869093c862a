#include "runtime/daemon.hpp"

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
#include <map>
#include <random>

#include "cluster/cluster_member.hpp"
#include "http/http_server.hpp"
#include "log/logging.hpp"
#include "metrics/metrics.hpp"
#include "pg/blocking_connection.hpp"
#include "pg/connection_pool.hpp"
#include "pg/conninfo.hpp"
#include "plugins/plugin_catalog.hpp"
#include "plugins/plugin_library.hpp"
#include "runtime/crash_breadcrumb.hpp"
#include "runtime/projection_runner.hpp"
#include "runtime/projection_set.hpp"
#include "runtime/wakeup_listener.hpp"
#include "store/event_store_check.hpp"
#include "store/pg_names.hpp"
#include "systemd/service_notifier.hpp"

namespace orchestratord::runtime {
namespace asio = boost::asio;

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

class Daemon {
public:
    Daemon(config::LoadOptions options, config::Config config)
        : options_(std::move(options)), config_(std::move(config)), signals_(io_, SIGTERM, SIGINT, SIGHUP) {}

    int run() {
        for (const auto& warning : config_.warnings) spdlog::warn("configuration warning: {}", warning);
        spdlog::info("starting orchestratord pid={} config={} replica_sets={} session_tag={}", ::getpid(),
                     config_.file.empty() ? "(environment only)" : config_.file, config_.replica_sets.size(),
                     session_tag_);
        start_crash_handler();

        // Fail fast and clearly when PostgreSQL cannot be reached: the
        // operator sees the masked URL and libpq's reason in one line.
        try {
            pg::BlockingConnection connection(config_.database.url);
            const auto rows = connection.exec("SELECT current_database(), current_user", {}, "check the connection");
            spdlog::info("connected to PostgreSQL server_version={} database={} user={} url={}",
                         connection.server_version(), rows.at(0, 0).value_or(""), rows.at(0, 1).value_or(""),
                         pg::mask_conninfo(config_.database.url));
            const auto problems = store::event_store_problems(connection, config_.event_store);
            for (const auto& problem : problems) spdlog::critical("cannot start: {}", problem);
            if (!problems.empty()) return kExitStartupFailed;
            const auto trigger =
                connection.exec("SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2",
                                {store::qualified(config_.event_store, config_.event_store.events_table),
                                 store::notify_trigger_name(config_.event_store)},
                                "look for the NOTIFY trigger");
            notify_available_ = trigger.at(0, 0) != "0";
            spdlog::info("{} events_table={}.{}",
                         notify_available_
                             ? "new events wake the workers through NOTIFY"
                             : "no NOTIFY trigger (orchestratord migrate --with-notify-trigger); polling while idle",
                         config_.event_store.schema, config_.event_store.events_table);
        } catch (const std::exception& e) {
            spdlog::critical("cannot start: {}", e.what());
            return kExitStartupFailed;
        }

        scan_ = plugins::scan_plugins(config_.plugins.directory);
        log_plugin_scan(scan_);
        projections_ = build_projection_set(config_, scan_);
        if (!projections_.problems.empty()) {
            for (const auto& problem : projections_.problems) spdlog::critical("cannot start: {}", problem);
            return kExitStartupFailed;
        }

        asio::co_spawn(io_, handle_signals(), asio::detached);
        start_http();
        start_members();
        start_runners();
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

    // Before any plugin code runs: a crash in a handler is logged with the
    // events it was given, and leaves a breadcrumb for the next start.
    void start_crash_handler() {
        std::string problem;
        if (install_crash_handler(config_.state_directory, problem)) {
            state_directory_ = config_.state_directory;
            spdlog::info("crash isolation is on state_directory={}", state_directory_);
            return;
        }
        spdlog::warn(
            "{}; crash isolation is off: a projection handler that crashes the process is logged, but the next start "
            "calls it on the same events again",
            problem);
    }

    // One cluster member per replica set: each is an independent cluster.
    void start_members() {
        for (const auto& replica_set : config_.replica_sets) {
            cluster::MemberSettings settings{config_.database.url, config_.event_store, replica_set,
                                             ORCHESTRATORD_VERSION, session_tag_};
            auto& member = members_.emplace_back(std::make_unique<cluster::ClusterMember>(io_, settings));
            ++active_members_;
            asio::co_spawn(io_, member->run(), when_ended("a cluster member", [this] {
                               if (--active_members_ == 0 && stopping_) finish();
                           }));
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
    void start_runners() {
        // database.max_open_conns bounds every connection of the process: one
        // per replica set (heartbeats must never wait for a busy pool) and the
        // listener are set aside, the projections share the rest.
        const int64_t reserved = static_cast<int64_t>(members_.size()) + 1;
        int64_t for_projections = config_.database.max_open_conns - reserved;
        if (for_projections < 1) {
            spdlog::warn(
                "database.max_open_conns={} leaves no connection for projections after {} for cluster membership "
                "and the NOTIFY listener; using 1",
                config_.database.max_open_conns, reserved);
            for_projections = 1;
        }
        config::Duration statement_timeout = config_.replica_sets.front().coordination_timeout;
        for (const auto& replica_set : config_.replica_sets) {
            statement_timeout = std::min(statement_timeout, replica_set.coordination_timeout);
        }
        pg::PoolSettings pool;
        pool.conninfo = config_.database.url;
        pool.application_name = cluster::session_name(session_tag_, "projections");
        // No statement of a batch may outlive coordination_timeout: that is
        // how long a new owner waits for a slice at most, so a stuck statement
        // fails (and is retried) instead of holding the slice indefinitely.
        pool.statement_timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(statement_timeout).count();
        pool.max_open = static_cast<size_t>(for_projections);
        pool.max_idle = static_cast<size_t>(std::max<int64_t>(0, config_.database.max_idle_conns));
        pool.max_lifetime = config_.database.conn_max_lifetime;
        pool.debug_log = [](const std::string& what) { spdlog::debug("connection pool: {}", what); };
        pool_ = std::make_unique<pg::ConnectionPool>(io_, std::move(pool));
        spdlog::info("connection pool for projections max_open={} max_idle={} conn_max_lifetime={}s", for_projections,
                     config_.database.max_idle_conns,
                     std::chrono::duration_cast<std::chrono::seconds>(config_.database.conn_max_lifetime).count());
        if (listener_ == nullptr) {
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
        }
        for (auto& instance : projections_.instances) {
            RunnerSettings settings;
            settings.pool = pool_.get();
            settings.event_store = config_.event_store;
            settings.notify_available = notify_available_;
            settings.coalescer = &coalescer_;
            settings.metrics = &metrics_;
            settings.state_directory = state_directory_;
            for (const auto& replica_set : config_.replica_sets) {
                if (replica_set.name != instance->replica_set()) continue;
                settings.replica_set = replica_set;
                for (const auto& projection : replica_set.projections) {
                    if (projection.name == instance->name()) settings.projection = projection;
                }
            }
            if (const auto* plugin = scan_.find(instance->name(), settings.projection.plugin)) {
                settings.scope = declared_scope(*plugin, instance->name());
            }
            settings.ownership = &member_of(instance->replica_set()).ownership();
            auto& runner =
                runners_.emplace_back(std::make_unique<ProjectionRunner>(io_, settings, std::move(instance)));
            ++active_runners_;
            asio::co_spawn(io_, runner->run(), when_ended("a projection runner", [this] {
                               if (--active_runners_ == 0 && stopping_) stop_members();
                           }));
        }
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

    // After the runners' last commits: release the slices, leave the cluster.
    void stop_members() {
        if (members_stopping_) return;
        members_stopping_ = true;
        if (active_members_ == 0) {
            finish();
            return;
        }
        for (auto& member : members_) member->stop();
    }

    // SIGTERM: every runner finishes (or rolls back) its in-flight batch and
    // writes its checkpoints, then every member releases its slices and
    // unregisters; bounded by the longest coordination_timeout.
    void stop_runners() {
        if (listener_) listener_->stop();
        for (auto& runner : runners_) runner->stop();
        if (active_runners_ == 0) {
            stop_members();
        }
        config::Duration bound{};
        for (const auto& replica_set : config_.replica_sets) bound = std::max(bound, replica_set.coordination_timeout);
        drain_timer_.expires_after(bound);
        drain_timer_.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
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
            drain_timer_.expires_after(kLeaveBound);
            drain_timer_.async_wait([this](boost::system::error_code ec) {
                if (!ec) finish();
            });
            stop_members();
        });
    }

    // Monitoring is not worth refusing to run for: a busy port is reported
    // and the daemon works on without the endpoints.
    void start_http() {
        try {
            http_.start(config_.http);
        } catch (const std::exception& e) {
            spdlog::error("{}; /metrics and /healthz are off, projections run as usual", e.what());
        }
    }

    void finish() {
        http_.stop();
        drain_timer_.cancel();
        watchdog_.cancel();
        io_.stop();
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
            spdlog::info("got stop signal signal={}, stopping gracefully", signal == SIGTERM ? "SIGTERM" : "SIGINT");
            notifier_.stopping();
            stop_runners();
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

        std::map<std::string, const config::Setting*> before;
        for (const auto& setting : config_.settings) before[setting.path] = &setting;
        size_t changes = 0;
        for (const auto& setting : fresh.settings) {
            auto found = before.find(setting.path);
            const std::string old_value = found == before.end() ? "(unset)" : found->second->value;
            if (found != before.end() && old_value == setting.value) continue;
            ++changes;
            if (setting.reloadable && found != before.end()) {
                spdlog::info("config changed key={} from=\"{}\" to=\"{}\" applied=now", setting.path, old_value,
                             setting.value);
            } else {
                spdlog::warn("config changed key={} from=\"{}\" to=\"{}\" applied=after-restart", setting.path,
                             old_value, setting.value);
            }
        }
        for (const auto& [path, setting] : before) {
            const bool still_there = std::any_of(fresh.settings.begin(), fresh.settings.end(),
                                                 [&](const config::Setting& s) { return s.path == path; });
            if (!still_there) {
                ++changes;
                spdlog::warn("config removed key={} applied=after-restart", path);
            }
        }
        if (changes == 0) spdlog::info("config unchanged");

        log::configure(fresh.logging.level, fresh.logging.format);
        // The reloadable keys are applied; the rest keeps its running value
        // until restart so the process never runs half of a new cluster setup.
        config_.logging = fresh.logging;
        config_.plugins = fresh.plugins;
        for (auto& setting : config_.settings) {
            for (const auto& updated : fresh.settings) {
                if (updated.path == setting.path && updated.reloadable) setting = updated;
            }
        }

        rescan_plugins();
        const std::string status = describe(config_, runners_.size());
        spdlog::info("reload done; {}", status);
        notifier_.ready(status);
    }

    void rescan_plugins() {
        plugins::PluginScan fresh = plugins::scan_plugins(config_.plugins.directory);
        log_plugin_scan(fresh);
        std::map<std::string, std::string> old_versions;  // plugin name -> version@file
        for (const auto& plugin : scan_.plugins) old_versions[plugin.name] = plugin.version + "@" + plugin.file;
        bool changed = false;
        for (const auto& plugin : fresh.plugins) {
            auto found = old_versions.find(plugin.name);
            if (found == old_versions.end()) {
                spdlog::info("new plugin plugin={} version={} file={}", plugin.name, plugin.version, plugin.file);
                changed = true;
            } else if (found->second != plugin.version + "@" + plugin.file) {
                spdlog::info("plugin changed plugin={} was={} now={}@{}", plugin.name, found->second, plugin.version,
                             plugin.file);
                changed = true;
            }
            old_versions.erase(plugin.name);
        }
        for (const auto& [name, where] : old_versions) {
            spdlog::warn("plugin gone plugin={} was={}", name, where);
            changed = true;
        }
        // Say which configured projections the new scan no longer provides,
        // without creating instances that would only be thrown away.
        for (const auto& replica_set : config_.replica_sets) {
            for (const auto& projection : replica_set.projections) {
                if (fresh.find(projection.name, projection.plugin) != nullptr) continue;
                if (auto ambiguity = fresh.ambiguity(projection.name, projection.plugin)) {
                    spdlog::error("reload refused: replica set \"{}\": {}; the running version continues",
                                  replica_set.name, *ambiguity);
                } else {
                    spdlog::error(
                        "reload: replica set \"{}\": projection \"{}\" is no longer declared by any plugin in {}; "
                        "the running instance continues until a restart",
                        replica_set.name, projection.name, fresh.directory);
                }
            }
        }
        // A running projection whose plugin now has different code gets a new
        // instance, which takes over at its next batch boundary.
        for (auto& runner : runners_) {
            const std::string& name = runner->name();
            const plugins::LoadedPlugin* plugin = fresh.find(name, runner->projection().plugin);
            if (plugin == nullptr || plugin->library->same_code_as(runner->instance().library())) continue;
            try {
                auto next = std::make_unique<plugins::ProjectionInstance>(
                    *plugin, name, runner->projection().config_json, runner->replica_set());
                runner->replace_instance(std::move(next), declared_scope(*plugin, name));
                spdlog::info(
                    "reload: replica set \"{}\": projection \"{}\" switches to plugin {} version {} at its next "
                    "batch boundary",
                    runner->replica_set(), name, plugin->name, plugin->version);
            } catch (const std::exception& e) {
                spdlog::error(
                    "reload: replica set \"{}\": the new version of projection \"{}\" refused to start, "
                    "the running one continues: {}",
                    runner->replica_set(), name, e.what());
            }
        }
        if (changed) spdlog::info("projections added to or removed from the configuration take effect after a restart");
        scan_ = std::move(fresh);  // old libraries unload once no instance uses them
    }

    config::LoadOptions options_;
    config::Config config_;
    EventLoop io_;  // destroyed last; its pending frames are destroyed earlier, in shut_down()
    asio::signal_set signals_;
    asio::steady_timer watchdog_{io_};
    systemd::ServiceNotifier notifier_;
    plugins::PluginScan scan_;
    ProjectionSet projections_;
    std::unique_ptr<WakeupListener> listener_;
    store::ReadCoalescer coalescer_{io_};  // projections at the same place share one read
    metrics::Metrics metrics_;
    http::HttpServer http_{io_, metrics_};
    std::unique_ptr<pg::ConnectionPool> pool_;  // the projections' connections
    std::vector<std::unique_ptr<cluster::ClusterMember>> members_;
    size_t active_members_ = 0;
    std::vector<std::unique_ptr<ProjectionRunner>> runners_;
    size_t active_runners_ = 0;
    asio::steady_timer drain_timer_{io_};
    bool notify_available_ = false;
    std::string state_directory_;  // empty: crash isolation is off
    bool stopping_ = false;
    bool members_stopping_ = false;
    // Names this process's sessions (application_name) so a coordinator can
    // end them if this worker is ever removed as stale.
    std::string session_tag_ = random_tag();
};

}  // namespace

int run_daemon(const config::LoadOptions& options) {
    config::Config config;
    try {
        config = config::load_config(options);
    } catch (const config::ConfigError& e) {
        log::configure("info", "text");
        for (const auto& problem : e.problems()) spdlog::critical("invalid configuration: {}", problem);
        return kExitConfig;
    }
    log::configure(config.logging.level, config.logging.format);
    Daemon daemon(options, std::move(config));
    return daemon.run();
}

}  // namespace orchestratord::runtime
