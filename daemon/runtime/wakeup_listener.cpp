#include "runtime/wakeup_listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "pg/async_connection.hpp"
#include "store/migrations.hpp"

namespace orchestratord::runtime {
namespace asio = boost::asio;

struct WakeupListener::Connection {
    pg::AsyncConnection pg;
    explicit Connection(asio::io_context& io) : pg(io) {}
};

WakeupListener::WakeupListener(asio::io_context& io, std::string conninfo, std::string channel,
                               std::function<void()> wake_all)
    : io_(io),
      conninfo_(std::move(conninfo)),
      channel_(std::move(channel)),
      wake_all_(std::move(wake_all)),
      connection_(std::make_shared<Connection>(io)) {}

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
            co_await keep->pg.connect(conninfo_, "orchestratord listener");
            co_await keep->pg.exec("LISTEN " + store::quote_identifier(channel_), pg::Params{},
                                   "listen for new events");
            spdlog::debug("listening for new events channel={}", channel_);
            backoff = std::chrono::milliseconds(100);
            wake_all_();  // anything appended while we were not listening
            for (;;) {
                co_await keep->pg.next_notification();
                wake_all_();
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
