#include "runtime/slice_positions.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace orchestratord::runtime {

SlicePositions::SlicePositions(std::vector<int64_t> stored) : positions_(std::move(stored)) {
    written_ = positions_;
}

void SlicePositions::adopt(const std::vector<int32_t>& slices, const std::vector<int64_t>& stored) {
    if (stored.size() != positions_.size()) {
        throw std::invalid_argument("stored checkpoints cover " + std::to_string(stored.size()) + " slices, not " +
                                    std::to_string(positions_.size()));
    }
    for (int32_t s : slices) {
        const auto index = static_cast<size_t>(s);
        positions_[index] = written_[index] = stored[index];
    }
}

bool SlicePositions::advance(int64_t position) {
    bool moved = false;
    for (int32_t s : owned_) {
        auto& p = positions_[static_cast<size_t>(s)];
        if (position > p) {
            p = position;
            moved = true;
        }
    }
    return moved;
}

std::vector<int64_t> SlicePositions::advanced(int64_t position) const {
    SlicePositions copy = *this;
    copy.advance(position);
    return copy.positions_;
}

std::vector<int64_t> SlicePositions::checkpoints_at(int64_t position) const {
    std::vector<int64_t> next = written_;
    for (int32_t s : owned_) {
        auto& p = next[static_cast<size_t>(s)];
        p = std::max(p, position);
    }
    return next;
}

std::optional<std::vector<int64_t>> SlicePositions::unwritten(const std::vector<int32_t>& slices) const {
    std::vector<int64_t> next = written_;
    bool behind = false;
    for (int32_t s : slices) {
        const auto index = static_cast<size_t>(s);
        if (positions_[index] > next[index]) {
            next[index] = positions_[index];
            behind = true;
        }
    }
    if (!behind) return std::nullopt;
    return next;
}

void SlicePositions::written(const std::vector<int64_t>& checkpoints) {
    for (size_t s = 0; s < written_.size() && s < checkpoints.size(); ++s) {
        written_[s] = std::max(written_[s], checkpoints[s]);
    }
}

int64_t SlicePositions::lowest_owned(int64_t none) const {
    int64_t lowest = none;
    for (int32_t s : owned_) lowest = std::min(lowest, positions_[static_cast<size_t>(s)]);
    return lowest;
}

int64_t SlicePositions::lowest() const {
    return positions_.empty() ? 0 : *std::min_element(positions_.begin(), positions_.end());
}

}  // namespace orchestratord::runtime
