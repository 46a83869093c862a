// SliceReconciler::plan, the member's decision after reading its slices: one
// test per branch of the plan, each with the case that must not take it.
#include <catch2/catch.hpp>

#include "cluster/slice_reconciler.hpp"

using namespace orchestratord::cluster;

namespace {

SliceRow owned(int32_t slice, int64_t epoch, bool assigned_here) {
    SliceRow row;
    row.slice = slice;
    row.owned = true;
    row.epoch = epoch;
    row.assigned_here = assigned_here;
    return row;
}

// Free in the database and assigned to this worker.
SliceRow free_for_us(int32_t slice, int64_t epoch) {
    SliceRow row;
    row.slice = slice;
    row.owned = false;
    row.epoch = epoch;
    row.assigned_here = true;
    return row;
}

// A worker that registered and may commit (its last heartbeat is recent).
SliceOwnership working() {
    SliceOwnership ownership;
    ownership.set_owner("me");
    return ownership;
}

// Self-fenced: the last committed heartbeat is too old.
void fence(SliceOwnership& ownership) {
    ownership.set_commit_deadline(std::chrono::steady_clock::now() - std::chrono::seconds(1));
}

bool nothing_to_do(const ReconcilePlan& plan) {
    return plan.forget.empty() && plan.withdraw.empty() && plan.adopt.empty() && plan.release.empty() && !plan.acquire;
}

}  // namespace

TEST_CASE("a slice held here and still ours at its epoch and assigned here needs nothing", "[cluster][reconcile]") {
    auto ownership = working();
    ownership.offer(1, 4);
    const auto plan = SliceReconciler::plan({owned(1, 4, true)}, ownership);
    CHECK(nothing_to_do(plan));
}

TEST_CASE("slices held here that the database no longer gives us at that epoch are forgotten", "[cluster][reconcile]") {
    auto ownership = working();
    ownership.offer(1, 4);  // gone from the database (freed as not handed over in time)
    ownership.offer(2, 4);  // ours again, but at a later epoch: someone held it in between
    ownership.offer(3, 4);  // untouched
    ownership.offer(6, 1);
    ownership.withdraw(6);  // withdrawn, then taken before we released it
    ownership.offer(7, 2);
    ownership.withdraw(7);  // withdrawn, still ours: waits to be drained, not forgotten
    const auto plan = SliceReconciler::plan({owned(2, 5, true), owned(3, 4, true), owned(7, 2, false)}, ownership);
    CHECK(plan.forget == std::vector<int32_t>{1, 2, 6});
    // Slice 2 is forgotten at epoch 4 and, being ours at epoch 5, adopted again.
    CHECK(plan.adopt == std::map<int32_t, int64_t>{{2, 5}});
    CHECK(plan.withdraw.empty());
    CHECK(plan.release.empty());  // slice 7 is already on its way out
}

TEST_CASE("a slice offered here but assigned elsewhere is withdrawn, not released at once", "[cluster][reconcile]") {
    auto ownership = working();
    ownership.offer(1, 3);
    ownership.offer(2, 3);
    const auto plan = SliceReconciler::plan({owned(1, 3, false), owned(2, 3, true)}, ownership);
    CHECK(plan.withdraw == std::vector<int32_t>{1});
    CHECK(plan.release.empty());
    CHECK(plan.forget.empty());
    CHECK(plan.adopt.empty());
}

TEST_CASE("a slice still ours and assigned here but not in use is adopted, only while this worker may work",
          "[cluster][reconcile]") {
    // After a self-fence that ended before anyone took the slice.
    auto ownership = working();
    const std::vector<SliceRow> db{owned(4, 9, true)};
    CHECK(SliceReconciler::plan(db, ownership).adopt == std::map<int32_t, int64_t>{{4, 9}});

    fence(ownership);
    const auto fenced = SliceReconciler::plan(db, ownership);
    CHECK(fenced.adopt.empty());
    CHECK(nothing_to_do(fenced));
}

TEST_CASE("a slice still ours, assigned elsewhere and not in use here is released at once", "[cluster][reconcile]") {
    // Also while self-fenced: giving a slice back needs no commit by runners.
    auto ownership = working();
    fence(ownership);
    const auto plan = SliceReconciler::plan({owned(5, 7, false)}, ownership);
    CHECK(plan.release == std::map<int32_t, int64_t>{{5, 7}});
    CHECK(plan.withdraw.empty());
    CHECK(plan.adopt.empty());

    // Withdrawn already: it is released once drained, not at once.
    auto withdrawing = working();
    withdrawing.offer(5, 7);
    withdrawing.withdraw(5);
    CHECK(nothing_to_do(SliceReconciler::plan({owned(5, 7, false)}, withdrawing)));
}

TEST_CASE("free slices assigned here are acquired only while this worker may work", "[cluster][reconcile]") {
    auto ownership = working();
    CHECK(SliceReconciler::plan({free_for_us(8, 2)}, ownership).acquire);
    CHECK_FALSE(SliceReconciler::plan({owned(8, 2, true)}, ownership).acquire);  // nothing free for us
    CHECK_FALSE(SliceReconciler::plan({}, ownership).acquire);
    const auto free_row_only = SliceReconciler::plan({free_for_us(8, 2)}, ownership);
    CHECK(free_row_only.adopt.empty());  // a free slice is acquired, never adopted
    CHECK(free_row_only.release.empty());

    fence(ownership);
    CHECK_FALSE(SliceReconciler::plan({free_for_us(8, 2)}, ownership).acquire);
}
