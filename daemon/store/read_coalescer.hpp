#pragma once
// Lets projections that stand at the same place share one read. Runners that
// ask for the identical read (same slices, checkpoints, scope and limit) get
// the same batch: the first one runs the statement, the others wait for it,
// and the result is kept briefly for runners woken a moment later. A batch is
// shared only with callers whose need arose before the read started
// (`not_before`: their last wake-up, their own previous read), so a runner
// woken by NOTIFY always gets a read that can see the new events. Within that
// rule reuse is always correct: a final batch stays final.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "store/gap_safe_reader.hpp"

namespace orchestratord::store {

class ReadCoalescer {
public:
    explicit ReadCoalescer(boost::asio::io_context& io, std::chrono::milliseconds keep = std::chrono::milliseconds(50));

    // The batch for `request`, read on `connection` unless an identical read
    // is running or has just finished.
    boost::asio::awaitable<std::shared_ptr<const EventBatch>> read(GapSafeReader& reader,
                                                                   pg::AsyncConnection& connection,
                                                                   const ReadRequest& request,
                                                                   std::chrono::steady_clock::time_point not_before);

    // How many reads ran against the database, and how many were shared.
    int64_t reads() const { return reads_; }
    int64_t shared() const { return shared_; }

private:
    struct Entry;
    static std::string key_of(const ReadRequest& request);

    boost::asio::io_context& io_;
    std::chrono::milliseconds keep_;
    std::map<std::string, std::shared_ptr<Entry>> entries_;
    int64_t reads_ = 0;
    int64_t shared_ = 0;
};

}  // namespace orchestratord::store
