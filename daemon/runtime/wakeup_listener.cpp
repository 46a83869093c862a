#include "runtime/wakeup_listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "pg/async_connection.hpp"
#include "store/pg_names.hpp"

namespace orchestratord::runtime {
namespace asio = boost::asio;

struct WakeupListener::Connection {
    pg::AsyncConnection pg;
    explicit Connection(asio::io_context& io) : pg(io) {}
};

WakeupListener::WakeupListener(asio::io_context& io, std::string conninfo, std::string application_name,
                               Channels channels)
    : io_(io),
      conninfo_(std::move(conninfo)),
      application_name_(std::move(application_name)),
      channels_(std::move(channels)),
      connection_(std::make_shared<Connection>(io)) {}

void WakeupListener::call_all() {
    for (const auto& [channel, callback] : channels_) callback();
}

void WakeupListener::stop() {
    stopping_ = true;
    connection_->pg.close();  // cancels the pending wait
}

asio::awaitable<void> WakeupListener::run() {
    auto keep = connection_;
    std::chrono::milliseconds backoff(100);
    asio::steady_timer timer(io_);
    while (!stopping_) {
        try {
            co_await keep->pg.connect(conninfo_, application_name_);
            for (const auto& [channel, callback] : channels_) {
                co_await keep->pg.exec("LISTEN " + store::quote_identifier(channel), pg::Params{},
                                       "listen for notifications");
                spdlog::debug("listening for notifications channel={}", channel);
            }
            backoff = std::chrono::milliseconds(100);
            call_all();  // anything that happened while we were not listening
            for (;;) {
                const std::string channel = co_await keep->pg.next_notification();
                // PostgreSQL truncates long channel names: match by prefix.
                bool known = false;
                for (const auto& [name, callback] : channels_) {
                    if (name.compare(0, channel.size(), channel) == 0) {
                        callback();
                        known = true;
                    }
                }
                if (!known) call_all();
            }
        } catch (const std::exception& e) {
            if (stopping_) break;
            spdlog::warn("lost the NOTIFY connection, falling back to polling until it is back: {} retry_in={}ms",
                         e.what(), backoff.count());
        }
        keep->pg.close();
        timer.expires_after(backoff);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
}

}  // namespace orchestratord::runtime
