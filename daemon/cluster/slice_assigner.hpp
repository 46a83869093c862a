#pragma once
// Decides which live worker should own each slice in a new generation
// (docs/cluster.md, "Coordination"): balanced (every worker gets floor(S/W) or
// ceil(S/W) slices) and sticky (a worker keeps as many of its current slices
// as its quota allows, so as few slices as possible move). The result depends
// only on its inputs, so whichever worker coordinates computes the same thing.
#include <cstdint>
#include <string>
#include <vector>

namespace orchestratord::cluster {

// holders[s]: the worker slice s is with or heading to now (its target owner,
// else its owner; empty for none). members: the live workers. Returns the
// target owner of every slice (all empty when there are no members).
std::vector<std::string> assign_slices(const std::vector<std::string>& holders, std::vector<std::string> members);

}  // namespace orchestratord::cluster
