// Where a projection stands per slice: positions move forward for owned
// slices only, and the checkpoints written never move a slice backwards or
// touch a slice this worker does not own.
#include <catch2/catch.hpp>

#include "runtime/slice_positions.hpp"

using orchestratord::runtime::SlicePositions;
using Positions = std::vector<int64_t>;

TEST_CASE("advancing moves the owned slices only, and never backwards", "[runtime][positions]") {
    SlicePositions positions(Positions{10, 20, 30, 40});
    positions.set_owned({1, 2});

    CHECK(positions.advance(25));
    CHECK(positions.positions() == Positions{10, 25, 30, 40});  // slice 2 was already past 25
    CHECK_FALSE(positions.advance(25));                         // nothing moved the second time
    CHECK(positions.advanced(35) == Positions{10, 35, 35, 40});
    CHECK(positions.positions() == Positions{10, 25, 30, 40});  // advanced() only looks
    CHECK(positions.written() == Positions{10, 20, 30, 40});    // handling is not writing
}

TEST_CASE("the checkpoints after a batch move every owned slice, keep the others as written", "[runtime][positions]") {
    SlicePositions positions(Positions{10, 20, 30, 40});
    positions.set_owned({0, 3});
    positions.advance(50);  // slice 0 and 3 handled up to 50, not yet written

    // Slice 1 and 2 belong to other workers: what we last wrote for them stays.
    CHECK(positions.checkpoints_at(45) == Positions{45, 20, 30, 45});
    // A lower checkpoint never moves a written slice back.
    positions.written(Positions{45, 20, 30, 45});
    CHECK(positions.checkpoints_at(5) == Positions{45, 20, 30, 45});
    positions.written(Positions{0, 0, 0, 0});
    CHECK(positions.written() == Positions{45, 20, 30, 45});
}

TEST_CASE("unwritten positions are offered only for slices ahead of their checkpoint", "[runtime][positions]") {
    SlicePositions positions(Positions{10, 20, 30});
    positions.set_owned({0, 1, 2});
    CHECK_FALSE(positions.unwritten({0, 1, 2}).has_value());  // nothing moved yet

    positions.advance(25);  // slice 0 and 1 moved, slice 2 did not
    CHECK_FALSE(positions.unwritten({2}).has_value());
    // Only the slices asked for (e.g. those being left) are brought up.
    CHECK(positions.unwritten({0}) == Positions{25, 20, 30});
    CHECK(positions.unwritten({0, 1, 2}) == Positions{25, 25, 30});
    positions.written(*positions.unwritten({0, 1, 2}));
    CHECK_FALSE(positions.unwritten({0, 1, 2}).has_value());
}

TEST_CASE("adopted slices start from the stored checkpoints, handled and written", "[runtime][positions]") {
    SlicePositions positions(Positions{10, 20, 30});
    positions.set_owned({0});
    positions.advance(15);
    // Slice 2 comes in; another worker moved it to 70 meanwhile.
    positions.adopt({2}, Positions{11, 21, 70});
    positions.set_owned({0, 2});
    CHECK(positions.positions() == Positions{15, 20, 70});
    CHECK(positions.written() == Positions{10, 20, 70});
    CHECK(positions.lowest_owned(INT64_MAX) == 15);
    CHECK(positions.lowest() == 15);
    CHECK(SlicePositions(Positions{10, 20, 30}).lowest_owned(99) == 99);  // owning nothing
    CHECK_THROWS_WITH(positions.adopt({1}, Positions{1, 2}), "stored checkpoints cover 2 slices, not 3");
}
