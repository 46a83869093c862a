#pragma once
// Plain results of one statement, copied out of libpq so no libpq type leaves
// the pg folder.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace orchestratord::pg {

using Params = std::vector<std::optional<std::string>>;  // text values; nullopt = SQL NULL

// Builds Params without a braced initializer list: GCC 12 miscompiles those
// inside coroutines ("array used as initializer"), so coroutines use this.
template <typename... Args>
Params make_params(Args&&... args) {
    Params params;
    params.reserve(sizeof...(Args));
    (params.emplace_back(std::forward<Args>(args)), ...);
    return params;
}

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
