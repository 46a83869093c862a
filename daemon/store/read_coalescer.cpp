#include "store/read_coalescer.hpp"

#include <exception>

#include "async/event.hpp"

namespace orchestratord::store {
namespace asio = boost::asio;

struct ReadCoalescer::Entry {
    std::shared_ptr<const EventBatch> batch;
    std::exception_ptr error;
    std::chrono::steady_clock::time_point started_at;
    std::chrono::steady_clock::time_point finished_at;
    async::Event finished;  // set when the read is done
    explicit Entry(asio::io_context& io) : finished(io.get_executor()) {}
};

ReadCoalescer::ReadCoalescer(asio::io_context& io, std::chrono::milliseconds keep) : io_(io), keep_(keep) {}

std::string ReadCoalescer::key_of(const ReadRequest& request) {
    // Everything that shapes the statement and its result.
    std::string key = std::to_string(request.slice_count) + "|" + std::to_string(request.limit) + "|" +
                      std::to_string(request.max_bytes) + "|";
    for (int32_t slice : request.owned_slices) {
        key += std::to_string(slice);
        key += ':';
        key += std::to_string(request.positions[static_cast<size_t>(slice)]);
        key += ',';
    }
    for (const auto* list :
         {&request.scope.aggregate_types, &request.scope.bounded_contexts, &request.scope.event_types}) {
        key += '|';
        for (const auto& item : *list) {
            key += item;
            key += '\x1f';
        }
    }
    return key;
}

asio::awaitable<std::shared_ptr<const EventBatch>> ReadCoalescer::read(
    GapSafeReader& reader, pg::AsyncConnection& connection, const ReadRequest& request,
    std::chrono::steady_clock::time_point not_before) {
    const std::string key = key_of(request);
    const auto now = std::chrono::steady_clock::now();
    // Forget results kept long enough.
    for (auto it = entries_.begin(); it != entries_.end();) {
        it =
            it->second->finished.is_set() && now - it->second->finished_at > keep_ ? entries_.erase(it) : std::next(it);
    }
    if (auto found = entries_.find(key); found != entries_.end() && found->second->started_at >= not_before) {
        const auto entry = found->second;
        ++shared_;
        co_await entry->finished.wait();
        if (entry->error) std::rethrow_exception(entry->error);
        co_return entry->batch;
    }
    auto entry = std::make_shared<Entry>(io_);
    entry->started_at = now;
    entries_[key] = entry;  // replaces an older entry; its waiters keep their own reference
    ++reads_;
    try {
        entry->batch = std::make_shared<const EventBatch>(co_await reader.read(connection, request));
    } catch (...) {
        entry->error = std::current_exception();
    }
    entry->finished_at = std::chrono::steady_clock::now();
    entry->finished.set();
    if (entry->error) {
        // A failed read is not kept: the next caller tries again.
        if (auto found = entries_.find(key); found != entries_.end() && found->second == entry) entries_.erase(found);
        std::rethrow_exception(entry->error);
    }
    co_return entry->batch;
}

}  // namespace orchestratord::store
