#pragma once
// Where one projection stands in each slice of its replica set, as its runner
// sees it: the position every event of the slice has been handled up to, the
// checkpoint last written for it, and which slices this worker owns now.
// A pure value type (no I/O): the runner loads it from the checkpoints and
// asks it what to write.
//
// A read is final for every owned slice (the reader filtered them all), so
// handling it moves each owned slice, not only those with events in it.
// Positions only move forward; slices this worker does not own keep what was
// last written for them, so a checkpoint write never moves another owner's
// slice.
#include <cstdint>
#include <optional>
#include <vector>

namespace orchestratord::runtime {

class SlicePositions {
public:
    SlicePositions() = default;
    // The stored checkpoints (one per slice): handled and written up to there,
    // owning no slice yet.
    explicit SlicePositions(std::vector<int64_t> stored);

    // The owned slices (sorted) change; positions stay as they are.
    void set_owned(std::vector<int32_t> slices) { owned_ = std::move(slices); }
    // `slices` start again from `stored` (one per slice): another worker may
    // have moved them while we did not own them.
    void adopt(const std::vector<int32_t>& slices, const std::vector<int64_t>& stored);

    // Moves every owned slice to at least `position`; true when one moved.
    bool advance(int64_t position);
    // The positions advance(position) would leave, without moving.
    std::vector<int64_t> advanced(int64_t position) const;

    // The checkpoints to write after handling everything up to `position`:
    // every owned slice there (never backwards), the others as last written.
    std::vector<int64_t> checkpoints_at(int64_t position) const;
    // The checkpoints that bring `slices` up to their handled positions, or
    // nullopt when none of them is ahead of what was written.
    std::optional<std::vector<int64_t>> unwritten(const std::vector<int32_t>& slices) const;
    // `checkpoints` were written: what is recorded as written never moves back.
    void written(const std::vector<int64_t>& checkpoints);

    // The lowest handled position of the owned slices; `none` when there are none.
    int64_t lowest_owned(int64_t none) const;
    // The lowest handled position of any slice.
    int64_t lowest() const;

    const std::vector<int64_t>& positions() const { return positions_; }
    const std::vector<int64_t>& written() const { return written_; }
    const std::vector<int32_t>& owned() const { return owned_; }
    int32_t slice_count() const { return static_cast<int32_t>(positions_.size()); }

private:
    std::vector<int64_t> positions_;  // handled up to here, per slice
    std::vector<int64_t> written_;    // last checkpoint written, per slice
    std::vector<int32_t> owned_;      // sorted
};

}  // namespace orchestratord::runtime
