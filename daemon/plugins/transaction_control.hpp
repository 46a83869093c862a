#pragma once
// A transactional projection's statements run inside the batch transaction,
// which orchestratord commits together with the checkpoints and the fencing
// check. A statement that ends or restarts that transaction (COMMIT,
// ROLLBACK, BEGIN, PREPARE TRANSACTION...) would commit the plugin's writes
// without them, and break exactly-once: such statements are refused.
#include <optional>
#include <string>
#include <string_view>

namespace orchestratord::plugins {

// Why `sql` may not run in the batch transaction; nullopt when it may.
// Savepoints (SAVEPOINT, RELEASE, ROLLBACK TO) stay allowed.
std::optional<std::string> transaction_control_refusal(std::string_view sql);

}  // namespace orchestratord::plugins
