#include "cluster/slice_assigner.hpp"

#include <algorithm>
#include <map>

namespace orchestratord::cluster {

std::vector<std::string> assign_slices(const std::vector<std::string>& holders, std::vector<std::string> members) {
    std::vector<std::string> targets(holders.size());
    if (members.empty()) return targets;
    std::sort(members.begin(), members.end());
    members.erase(std::unique(members.begin(), members.end()), members.end());

    std::map<std::string, size_t> holding;
    for (const auto& member : members) holding[member] = 0;
    for (const auto& holder : holders) {
        if (auto found = holding.find(holder); found != holding.end()) ++found->second;
    }
    // The workers holding the most get the larger quotas: fewer slices move.
    // Ties go by id so every coordinator picks the same workers.
    std::vector<std::string> order = members;
    std::stable_sort(order.begin(), order.end(),
                     [&](const std::string& a, const std::string& b) { return holding[a] > holding[b]; });
    const size_t base = holders.size() / members.size();
    const size_t extra = holders.size() % members.size();
    std::map<std::string, size_t> room;
    for (size_t i = 0; i < order.size(); ++i) room[order[i]] = base + (i < extra ? 1 : 0);

    // Keep what fits the quota, lowest slices first; the rest is handed out.
    std::vector<size_t> unplaced;
    for (size_t slice = 0; slice < holders.size(); ++slice) {
        auto found = room.find(holders[slice]);
        if (found != room.end() && found->second > 0) {
            targets[slice] = holders[slice];
            --found->second;
        } else {
            unplaced.push_back(slice);
        }
    }
    size_t next = 0;
    for (const auto& member : order) {
        for (size_t& left = room[member]; left > 0 && next < unplaced.size(); --left) {
            targets[unplaced[next++]] = member;
        }
    }
    return targets;
}

}  // namespace orchestratord::cluster
