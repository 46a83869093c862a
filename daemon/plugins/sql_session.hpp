#pragma once
// What a transactional projection's SQL runs on: the batch transaction. The
// plugins folder only knows this interface; the event path implements it on a
// PostgreSQL connection.
#include <string>

#include "pg/rows.hpp"

namespace orchestratord::plugins {

using SqlParams = pg::Params;
using SqlRows = pg::Rows;

class SqlSession {
public:
    virtual ~SqlSession() = default;
    // Runs one parameterised statement; throws std::runtime_error with the server's message.
    virtual SqlRows exec(const std::string& sql, const SqlParams& params) = 0;
};

}  // namespace orchestratord::plugins
