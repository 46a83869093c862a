#include "cluster/slice_reconciler.hpp"

namespace orchestratord::cluster {

ReconcilePlan SliceReconciler::plan(const std::vector<SliceRow>& db, const SliceOwnership& ownership) {
    ReconcilePlan plan;
    std::map<int32_t, const SliceRow*> mine;  // owned by this worker in the database
    for (const auto& row : db) {
        if (row.owned) {
            mine[row.slice] = &row;
        } else {
            plan.acquire = true;  // free and assigned here
        }
    }
    auto still_ours = [&](int32_t slice, int64_t epoch) {
        auto found = mine.find(slice);
        return found != mine.end() && found->second->epoch == epoch;
    };
    // What is still held here once the slices taken away are forgotten.
    auto offered = ownership.offered_slices();
    auto withdrawn = ownership.withdrawn_slices();
    for (const auto& [slice, epoch] : ownership.offered_slices()) {
        if (!still_ours(slice, epoch)) plan.forget.push_back(slice);
    }
    for (const auto& [slice, withdrawal] : ownership.withdrawn_slices()) {
        if (!still_ours(slice, withdrawal.epoch)) plan.forget.push_back(slice);
    }
    for (int32_t slice : plan.forget) {
        offered.erase(slice);
        withdrawn.erase(slice);
    }
    const bool may_work = ownership.may_commit();
    for (const auto& [slice, row] : mine) {
        const bool is_offered = offered.count(slice) > 0;
        if (!row->assigned_here && is_offered) {
            plan.withdraw.push_back(slice);
        } else if (row->assigned_here && may_work && !is_offered) {
            plan.adopt[slice] = row->epoch;
        } else if (!row->assigned_here && withdrawn.count(slice) == 0 && !is_offered) {
            plan.release[slice] = row->epoch;
        }
    }
    plan.acquire = plan.acquire && may_work;
    return plan;
}

}  // namespace orchestratord::cluster
