#include "cluster/slice_ownership.hpp"

namespace orchestratord::cluster {

void SliceOwnership::changed() {
    ++version_;
    if (on_view_change_) on_view_change_();
}

void SliceOwnership::set_owner(const std::string& owner) {
    if (owner == owner_) return;
    owner_ = owner;
    lease_ = 0;
    offered_.clear();
    withdrawn_.clear();
    changed();
}

void SliceOwnership::set_slice_count(int32_t slice_count) {
    if (slice_count == slice_count_) return;
    slice_count_ = slice_count;
    changed();
}

std::string SliceOwnership::log_context(const std::string& replica_set) const {
    return "replica_set=" + replica_set + " worker=" + (owner_.empty() ? "-" : owner_) +
           " generation=" + std::to_string(generation_);
}

void SliceOwnership::set_lease(int64_t lease) {
    if (lease == lease_) return;
    lease_ = lease;
    changed();
}

void SliceOwnership::offer(int32_t slice, int64_t epoch) {
    withdrawn_.erase(slice);
    offered_[slice] = epoch;
    changed();
}

void SliceOwnership::withdraw(int32_t slice) {
    auto found = offered_.find(slice);
    if (found == offered_.end()) return;
    const int64_t epoch = found->second;
    offered_.erase(found);
    changed();
    withdrawn_[slice] = {epoch, version_};
}

void SliceOwnership::forget(int32_t slice) {
    const bool was_offered = offered_.erase(slice) > 0;
    withdrawn_.erase(slice);
    if (was_offered) changed();
}

void SliceOwnership::forget_all() {
    const bool any = !offered_.empty();
    offered_.clear();
    withdrawn_.clear();
    if (any) changed();
}

std::map<int32_t, int64_t> SliceOwnership::drained() const {
    std::map<int32_t, int64_t> ready;
    for (const auto& [slice, withdrawal] : withdrawn_) {
        bool safe = true;
        for (const auto& slot : slots_) {
            if (slot.busy && slot.acknowledged < withdrawal.since) safe = false;
        }
        if (safe) ready[slice] = withdrawal.epoch;
    }
    return ready;
}

int SliceOwnership::attach() {
    slots_.emplace_back();
    return static_cast<int>(slots_.size() - 1);
}

OwnershipView SliceOwnership::enter(int slot) {
    slots_[static_cast<size_t>(slot)].busy = true;
    OwnershipView view;
    view.version = version_;
    view.owner = owner_;
    view.lease = lease_;
    view.slice_count = slice_count_;
    view.epochs = offered_;
    view.slices.reserve(offered_.size());
    for (const auto& [slice, epoch] : offered_) view.slices.push_back(slice);
    return view;
}

void SliceOwnership::acknowledge(int slot, int64_t version) {
    slots_[static_cast<size_t>(slot)].acknowledged = version;
    if (!withdrawn_.empty() && on_boundary_) on_boundary_();
}

void SliceOwnership::leave(int slot) {
    auto& entry = slots_[static_cast<size_t>(slot)];
    if (!entry.busy) return;
    entry.busy = false;
    if (!withdrawn_.empty() && on_boundary_) on_boundary_();
}

void SliceOwnership::lost(const std::vector<int32_t>& slices) {
    for (int32_t slice : slices) forget(slice);
    // The member re-reads the database: the slice may come back at a new epoch.
    if (on_boundary_) on_boundary_();
}

}  // namespace orchestratord::cluster
