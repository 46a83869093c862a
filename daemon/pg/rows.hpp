#pragma once
// Plain results of one statement, copied out of libpq so no libpq type leaves
// the pg folder.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace orchestratord::pg {

using Params = std::vector<std::optional<std::string>>;  // text values; nullopt = SQL NULL

struct Rows {
    int64_t rows = 0;
    int32_t columns = 0;
    int64_t affected = 0;
    std::vector<std::optional<std::string>> cells;  // row-major, rows * columns

    const std::optional<std::string>& at(int64_t row, int32_t column) const {
        return cells[static_cast<size_t>(row * columns + column)];
    }
};

}  // namespace orchestratord::pg
