// The in-process view: a withdrawn slice is released only when no runner can
// still commit for it.
#include <catch2/catch.hpp>

#include "cluster/slice_ownership.hpp"

using orchestratord::cluster::SliceOwnership;

TEST_CASE("a withdrawn slice is drained once every busy runner has switched to a view without it",
          "[cluster][ownership]") {
    SliceOwnership ownership;
    int view_changes = 0;
    int boundaries = 0;
    ownership.on_view_change([&] { ++view_changes; });
    ownership.on_boundary([&] { ++boundaries; });
    ownership.set_owner("me");
    const int first = ownership.attach();
    const int second = ownership.attach();
    ownership.offer(3, 7);
    ownership.offer(5, 2);

    auto view = ownership.enter(first);
    CHECK(view.slices == std::vector<int32_t>{3, 5});
    CHECK(view.epochs.at(3) == 7);
    ownership.acknowledge(first, view.version);
    ownership.enter(second);  // busy with the old view
    ownership.acknowledge(second, view.version);

    const int before = view_changes;
    ownership.withdraw(3);
    CHECK(view_changes == before + 1);
    CHECK(ownership.drained().empty());  // both runners may still commit for slice 3

    const auto next = ownership.enter(first);
    CHECK(next.slices == std::vector<int32_t>{5});
    ownership.acknowledge(first, next.version);
    CHECK(ownership.drained().empty());  // the second runner is still in its batch
    ownership.leave(second);             // ... and now between batches
    CHECK(ownership.drained() == std::map<int32_t, int64_t>{{3, 7}});
    CHECK(boundaries > 0);
    ownership.forget(3);
    CHECK(ownership.drained().empty());
}

TEST_CASE("lost slices leave the view at once and commits stop after the self-fencing deadline",
          "[cluster][ownership]") {
    SliceOwnership ownership;
    ownership.set_owner("me");
    const int runner = ownership.attach();
    ownership.offer(1, 1);
    ownership.offer(2, 1);
    ownership.lost({1});
    CHECK(ownership.enter(runner).slices == std::vector<int32_t>{2});
    CHECK(ownership.may_commit());
    ownership.set_commit_deadline(std::chrono::steady_clock::now() - std::chrono::milliseconds(1));
    CHECK_FALSE(ownership.may_commit());
}
