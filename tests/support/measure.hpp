#pragma once
// Small measurements the multi-process tests share: elapsed time and the
// number of lines a daemon or a projection has written to a file.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>

namespace orchestratord::test {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline int64_t lines_in(const std::string& file) {
    std::ifstream in(file);
    return std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
}

}  // namespace orchestratord::test
