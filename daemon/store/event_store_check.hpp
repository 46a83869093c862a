#pragma once
// Checks, before the daemon reads anything, that the events table is the
// pupsourcing table it expects and that its sequence hands out positions in
// commit-compatible order (CACHE 1), which the gap-safe reader relies on.
#include <string>
#include <vector>

#include "config/config.hpp"

namespace orchestratord::pg {
class BlockingConnection;
}

namespace orchestratord::store {

// Every problem found, each a sentence saying what to do; empty when the table is usable.
std::vector<std::string> event_store_problems(pg::BlockingConnection& connection,
                                              const config::EventStoreConfig& store);

}  // namespace orchestratord::store
