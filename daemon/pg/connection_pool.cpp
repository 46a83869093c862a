#include "pg/connection_pool.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace orchestratord::pg {
namespace asio = boost::asio;

constexpr auto kIdleGrace = std::chrono::seconds(1);

struct ConnectionPool::Pooled {
    AsyncConnection connection;
    std::chrono::steady_clock::time_point opened_at;
    std::chrono::steady_clock::time_point returned_at;
    explicit Pooled(asio::io_context& io) : connection(io), opened_at(std::chrono::steady_clock::now()) {}
};

// One borrower waiting for a connection to come back.
struct PoolWaiter {
    asio::steady_timer timer;
    bool woken = false;
    explicit PoolWaiter(asio::io_context& io) : timer(io, asio::steady_timer::time_point::max()) {}
};

ConnectionPool::Lease::Lease(ConnectionPool* pool, std::unique_ptr<Pooled> pooled)
    : pool_(pool), pooled_(std::move(pooled)) {}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), pooled_(std::move(other.pooled_)) {}

ConnectionPool::Lease& ConnectionPool::Lease::operator=(Lease&& other) noexcept {
    if (this != &other) {
        reset();
        pool_ = std::exchange(other.pool_, nullptr);
        pooled_ = std::move(other.pooled_);
    }
    return *this;
}

ConnectionPool::Lease::~Lease() {
    reset();
}

void ConnectionPool::Lease::reset() {
    if (pooled_ && pool_) pool_->give_back(std::move(pooled_));
    pooled_.reset();
    pool_ = nullptr;
}

AsyncConnection& ConnectionPool::Lease::connection() const {
    return pooled_->connection;
}

struct PoolTimer {
    asio::steady_timer timer;
    explicit PoolTimer(asio::io_context& io) : timer(io) {}
};

ConnectionPool::ConnectionPool(asio::io_context& io, PoolSettings settings)
    : io_(io), settings_(std::move(settings)), trim_timer_(std::make_unique<PoolTimer>(io)) {
    if (settings_.max_open == 0) settings_.max_open = 1;
}

ConnectionPool::~ConnectionPool() {
    trim_timer_->timer.cancel();
    for (auto& waiter : waiters_) waiter->timer.cancel();
}

// Closes idle connections beyond max_idle that have not been used for a
// moment; the least recently used go first (idle_ is used from the back).
void ConnectionPool::trim_surplus() {
    const auto now = std::chrono::steady_clock::now();
    while (idle_.size() > settings_.max_idle && now - idle_.front()->returned_at >= kIdleGrace) {
        if (settings_.debug_log) settings_.debug_log("closing an idle connection beyond max_idle_conns");
        idle_.front()->connection.close();
        idle_.erase(idle_.begin());
        --open_;
    }
}

void ConnectionPool::schedule_trim() {
    if (idle_.size() <= settings_.max_idle || trim_scheduled_) return;
    trim_scheduled_ = true;
    trim_timer_->timer.expires_after(kIdleGrace);
    trim_timer_->timer.async_wait([this](boost::system::error_code ec) {
        trim_scheduled_ = false;
        if (ec) return;
        trim_surplus();
        schedule_trim();
    });
}

std::unique_ptr<ConnectionPool::Pooled> ConnectionPool::take_idle() {
    while (!idle_.empty()) {
        auto pooled = std::move(idle_.back());
        idle_.pop_back();
        if (pooled->connection.ok()) return pooled;
        --open_;  // lost while idle (server restart): drop it
    }
    return nullptr;
}

asio::awaitable<ConnectionPool::Lease> ConnectionPool::open_new() {
    ++open_;
    auto pooled = std::make_unique<Pooled>(io_);
    try {
        co_await pooled->connection.connect(settings_.conninfo, settings_.application_name,
                                            settings_.statement_timeout_ms);
    } catch (...) {
        --open_;
        wake_one();  // someone waiting may try in our place
        throw;
    }
    co_return Lease(this, std::move(pooled));
}

asio::awaitable<ConnectionPool::Lease> ConnectionPool::acquire() {
    for (;;) {
        if (auto pooled = take_idle()) co_return Lease(this, std::move(pooled));
        if (open_ < settings_.max_open) co_return co_await open_new();
        auto waiter = std::make_shared<PoolWaiter>(io_);
        waiters_.push_back(waiter);
        boost::system::error_code ec;
        co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
}

asio::awaitable<std::optional<ConnectionPool::Lease>> ConnectionPool::try_acquire() {
    // Never ahead of someone already waiting.
    if (!waiters_.empty()) co_return std::nullopt;
    if (auto pooled = take_idle()) co_return Lease(this, std::move(pooled));
    if (open_ < settings_.max_open) co_return co_await open_new();
    co_return std::nullopt;
}

void ConnectionPool::give_back(std::unique_ptr<Pooled> pooled) {
    const bool expired = std::chrono::steady_clock::now() - pooled->opened_at > settings_.max_lifetime;
    // Kept when healthy and young enough; surplus idle ones are closed by
    // schedule_trim() once they stay unused.
    if (pooled->connection.ok() && !expired) {
        pooled->returned_at = std::chrono::steady_clock::now();
        idle_.push_back(std::move(pooled));
        schedule_trim();
    } else {
        if (expired && settings_.debug_log) {
            settings_.debug_log("recycling connections after conn_max_lifetime: closed one returned to the pool");
        }
        pooled->connection.close();
        pooled.reset();
        --open_;
    }
    wake_one();
}

void ConnectionPool::wake_one() {
    while (!waiters_.empty()) {
        auto waiter = waiters_.front();
        waiters_.pop_front();
        if (waiter->woken) continue;
        waiter->woken = true;
        waiter->timer.cancel();
        return;
    }
}

}  // namespace orchestratord::pg
