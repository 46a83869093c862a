#pragma once
// A batch of events as read from PostgreSQL: the result rows stay in libpq's
// memory and the orch_event structs handed to plugins point into them.
#include <orchestratord/plugin_abi.h>

#include <cstdint>
#include <vector>

#include "pg/result.hpp"

namespace orchestratord::store {

struct EventBatch {
    pg::Result rows;                 // owns the memory every event points into
    std::vector<orch_event> events;  // in global_position order
    std::vector<int32_t> slices;     // slice of events[i]
    // Every event of the read's slices and scope with a position up to this
    // one is in this batch or was in an earlier one: checkpoints may move here.
    int64_t final_position = 0;

    std::vector<const orch_event*> pointers(size_t begin = 0, size_t end = SIZE_MAX) const {
        std::vector<const orch_event*> out;
        if (end > events.size()) end = events.size();
        for (size_t i = begin; i < end; ++i) out.push_back(&events[i]);
        return out;
    }
};

}  // namespace orchestratord::store
