#pragma once
// What this process may work on in one replica set, shared by the cluster
// member (which acquires and releases slices in the database) and the
// projection runners (which read and commit for them). Everything runs on the
// event loop, so there is no locking.
//
// Runners take a view at each batch boundary (enter) and say when they have
// switched to it (acknowledge). A slice the member wants to release is first
// withdrawn from the view; it is released in the database only once no runner
// can still commit for it ("drained"): every runner has acknowledged a view
// without it, or is between batches (leave). That keeps a handoff from
// repeating events of the at-least-once projections; fencing in the database
// keeps it safe even when this waiting is cut short.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace orchestratord::cluster {

struct OwnershipView {
    int64_t version = 0;
    std::string owner;                  // this worker's id in the replica set; empty before registration
    std::vector<int32_t> slices;        // sorted
    std::map<int32_t, int64_t> epochs;  // slice -> ownership epoch
    int64_t lease = 0;                  // this worker's checkpoint lease, for the fencing check
    int32_t slice_count = 0;            // the replica set's stored slice count; 0 before registration
};

class SliceOwnership {
public:
    using Listener = std::function<void()>;

    // --- member side ---
    void set_owner(const std::string& owner);
    // The replica set's stored slice count (it wins over the configuration),
    // known once the member has registered the replica set.
    void set_slice_count(int32_t slice_count);
    void set_generation(int64_t generation) { generation_ = generation; }
    // The lease on this worker's checkpoint rows (revoked when a slice was
    // taken from it without its cooperation). set_owner() starts at 0.
    void set_lease(int64_t lease);
    void offer(int32_t slice, int64_t epoch);  // acquired: runners may start on it
    void withdraw(int32_t slice);              // to be released once drained
    void forget(int32_t slice);                // released or taken away: gone at once
    void forget_all();
    bool offered(int32_t slice) const { return offered_.count(slice) > 0; }
    bool withdrawn(int32_t slice) const { return withdrawn_.count(slice) > 0; }
    const std::map<int32_t, int64_t>& offered_slices() const { return offered_; }
    struct Withdrawal {
        int64_t epoch = 0;  // the ownership epoch it was held at
        int64_t since = 0;  // the first view version without it
    };
    const std::map<int32_t, Withdrawal>& withdrawn_slices() const { return withdrawn_; }
    // Withdrawn slices no runner can still commit for, with their epochs.
    std::map<int32_t, int64_t> drained() const;
    // Self-fencing: after this moment nothing may be committed.
    void set_commit_deadline(std::chrono::steady_clock::time_point deadline) { commit_deadline_ = deadline; }
    // Runners are told through this when the view changes.
    void on_view_change(Listener listener) { on_view_change_ = std::move(listener); }
    // The member is told through this when a runner reaches a boundary.
    void on_boundary(Listener listener) { on_boundary_ = std::move(listener); }

    // --- runner side ---
    int attach();  // a runner's slot
    OwnershipView enter(int slot);
    void acknowledge(int slot, int64_t version);
    void leave(int slot);
    // Slices found taken away by the fencing check.
    void lost(const std::vector<int32_t>& slices);
    bool may_commit() const { return std::chrono::steady_clock::now() < commit_deadline_; }
    std::chrono::steady_clock::time_point commit_deadline() const { return commit_deadline_; }
    int64_t version() const { return version_; }
    // For log lines: who this worker is and which generation it follows.
    const std::string& owner() const { return owner_; }
    int64_t generation() const { return generation_; }
    int32_t slice_count() const { return slice_count_; }
    // "replica_set=<name> worker=<id or -> generation=<n>": the context of
    // the cluster's log lines.
    std::string log_context(const std::string& replica_set) const;

private:
    struct Slot {
        int64_t acknowledged = -1;
        bool busy = false;
    };
    void changed();

    std::string owner_;
    int64_t lease_ = 0;
    std::map<int32_t, int64_t> offered_;
    std::map<int32_t, Withdrawal> withdrawn_;
    std::vector<Slot> slots_;
    int64_t version_ = 0;
    int64_t generation_ = -1;  // the one copy of the generation this worker follows
    int32_t slice_count_ = 0;
    std::chrono::steady_clock::time_point commit_deadline_ = std::chrono::steady_clock::time_point::max();
    Listener on_view_change_;
    Listener on_boundary_;
};

}  // namespace orchestratord::cluster
