#pragma once
// A query result owned in place (no copy of the rows): the reader hands
// pointers into it straight to plugins. Wraps libpq's PGresult without
// exposing it; move-only, freed on destruction.
#include <cstdint>
#include <memory>
#include <string_view>

namespace orchestratord::pg {

class Result {
public:
    Result() = default;
    explicit Result(void* pg_result);  // takes ownership of a PGresult*
    ~Result();
    Result(Result&& other) noexcept;
    Result& operator=(Result&& other) noexcept;
    Result(const Result&) = delete;
    Result& operator=(const Result&) = delete;

    int rows() const;
    int columns() const;
    bool is_null(int row, int column) const;
    // Raw bytes of a cell; libpq NUL-terminates every value, binary ones included.
    const char* data(int row, int column) const;
    int length(int row, int column) const;
    std::string_view text(int row, int column) const {
        return {data(row, column), static_cast<size_t>(length(row, column))};
    }
    // Decoders for binary-format cells (network byte order).
    int64_t int8(int row, int column) const;
    int32_t int4(int row, int column) const;
    int64_t affected() const;

private:
    void* result_ = nullptr;
};

}  // namespace orchestratord::pg
