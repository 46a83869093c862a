#include "pg/result.hpp"

#include <endian.h>
#include <libpq-fe.h>

#include <cstring>
#include <string>
#include <utility>

namespace orchestratord::pg {
namespace {
const PGresult* as_pg(void* result) {
    return static_cast<const PGresult*>(result);
}
}  // namespace

Result::Result(void* pg_result) : result_(pg_result) {}
Result::~Result() {
    if (result_ != nullptr) PQclear(static_cast<PGresult*>(result_));
}
Result::Result(Result&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
Result& Result::operator=(Result&& other) noexcept {
    if (this != &other) {
        if (result_ != nullptr) PQclear(static_cast<PGresult*>(result_));
        result_ = std::exchange(other.result_, nullptr);
    }
    return *this;
}

int Result::rows() const {
    return result_ != nullptr ? PQntuples(as_pg(result_)) : 0;
}
int Result::columns() const {
    return result_ != nullptr ? PQnfields(as_pg(result_)) : 0;
}
bool Result::is_null(int row, int column) const {
    return PQgetisnull(as_pg(result_), row, column) != 0;
}
const char* Result::data(int row, int column) const {
    return PQgetvalue(as_pg(result_), row, column);
}
int Result::length(int row, int column) const {
    return PQgetlength(as_pg(result_), row, column);
}

int64_t Result::int8(int row, int column) const {
    uint64_t raw = 0;
    std::memcpy(&raw, data(row, column), sizeof raw);
    return static_cast<int64_t>(be64toh(raw));
}

int32_t Result::int4(int row, int column) const {
    uint32_t raw = 0;
    std::memcpy(&raw, data(row, column), sizeof raw);
    return static_cast<int32_t>(be32toh(raw));
}

int64_t Result::affected() const {
    const char* text = result_ != nullptr ? PQcmdTuples(static_cast<PGresult*>(result_)) : nullptr;
    return text != nullptr && *text != '\0' ? std::stoll(text) : 0;
}

}  // namespace orchestratord::pg
