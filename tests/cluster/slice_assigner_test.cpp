// The assignment every coordinator computes: balanced, sticky, deterministic.
#include <catch2/catch.hpp>

#include <map>

#include "cluster/slice_assigner.hpp"

using orchestratord::cluster::assign_slices;

namespace {

std::map<std::string, int> shares(const std::vector<std::string>& targets) {
    std::map<std::string, int> out;
    for (const auto& target : targets) ++out[target];
    return out;
}

int moves(const std::vector<std::string>& before, const std::vector<std::string>& after) {
    int moved = 0;
    for (size_t i = 0; i < before.size(); ++i) moved += before[i] != after[i] ? 1 : 0;
    return moved;
}

}  // namespace

TEST_CASE("a fresh replica set is split evenly: 64 slices over 3 workers is 22/21/21", "[cluster][assignment]") {
    const auto targets = assign_slices(std::vector<std::string>(64), {"c", "a", "b"});
    const auto counts = shares(targets);
    REQUIRE(counts.size() == 3);
    std::vector<int> sizes;
    for (const auto& [worker, count] : counts) sizes.push_back(count);
    std::sort(sizes.rbegin(), sizes.rend());
    CHECK(sizes == std::vector<int>{22, 21, 21});
}

TEST_CASE("no members means no targets", "[cluster][assignment]") {
    CHECK(assign_slices(std::vector<std::string>(4, "gone"), {}) == std::vector<std::string>(4));
}

TEST_CASE("adding and removing workers moves only as many slices as balance needs", "[cluster][assignment]") {
    const auto one = assign_slices(std::vector<std::string>(64), {"a"});
    const auto two = assign_slices(one, {"a", "b"});
    CHECK(moves(one, two) == 32);
    const auto four = assign_slices(two, {"a", "b", "c", "d"});
    CHECK(moves(two, four) == 32);
    CHECK(shares(four) == std::map<std::string, int>{{"a", 16}, {"b", 16}, {"c", 16}, {"d", 16}});
    // The slices a worker keeps are slices it had.
    for (size_t i = 0; i < four.size(); ++i) {
        if (four[i] == "a" || four[i] == "b") CHECK(two[i] == four[i]);
    }
    const auto three = assign_slices(four, {"a", "c", "d"});  // b leaves: only its 16 move
    CHECK(moves(four, three) == 16);
    for (const auto& count : shares(three)) CHECK((count.second == 21 || count.second == 22));
}

TEST_CASE("holders that are no longer members are ignored, and the result is deterministic", "[cluster][assignment]") {
    const std::vector<std::string> holders{"a", "a", "dead", "dead", "dead", "dead", "dead", "dead", "dead", "dead"};
    const auto first = assign_slices(holders, {"b", "a"});
    const auto second = assign_slices(holders, {"a", "b"});
    CHECK(first == second);
    CHECK(first[0] == "a");
    CHECK(first[1] == "a");
    CHECK(shares(first) == std::map<std::string, int>{{"a", 5}, {"b", 5}});
}

TEST_CASE("the worker holding more keeps the larger quota", "[cluster][assignment]") {
    // 5 slices over 2 workers: b holds 3, so b keeps its 3 and nothing moves.
    const std::vector<std::string> holders{"a", "b", "b", "a", "b"};
    CHECK(assign_slices(holders, {"a", "b"}) == holders);
}
