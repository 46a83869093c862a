#pragma once
// Names orchestratord derives from the configured schema and table names (the
// NOTIFY channels, the trigger and its function) must fit PostgreSQL's name
// limit of 63 bytes (NAMEDATALEN - 1). A longer identifier is silently
// truncated, so two long names can end up as one; a longer channel name makes
// pg_notify() fail, and a trigger that calls it would fail every INSERT.
#include <cstddef>
#include <string>

namespace orchestratord::store {

inline constexpr size_t kMaxNameBytes = 63;

// `full` itself when it fits in kMaxNameBytes. Otherwise a readable prefix of
// it, '_' and 8 hex digits of a hash of the whole of `full`, 63 bytes in all,
// so two long names that share their first 63 bytes still differ.
//
// The result must never change between versions: the NOTIFY trigger installed
// by `migrate` keeps the channel name it was created with, and the daemon
// LISTENs on the name it derives at start.
std::string fit_name(const std::string& full);

}  // namespace orchestratord::store
