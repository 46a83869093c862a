#pragma once
// What a cluster member must change in its SliceOwnership so that it matches
// the database: the subtlest decision of the cluster, kept a pure function of
// its two inputs so that every branch is unit-tested (tests/cluster/).
#include <cstdint>
#include <map>
#include <vector>

#include "cluster/cluster_tables.hpp"
#include "cluster/slice_ownership.hpp"

namespace orchestratord::cluster {

struct ReconcilePlan {
    // Held here (offered or withdrawn) but no longer ours at that epoch in
    // the database: taken away, drop at once.
    std::vector<int32_t> forget;
    // Offered here but assigned elsewhere: stop at the next batch boundary,
    // release once drained.
    std::vector<int32_t> withdraw;
    // Ours and assigned here but not offered (after a self-fence that ended
    // before anyone took them): offer again at their epoch.
    std::map<int32_t, int64_t> adopt;
    // Ours in the database, assigned elsewhere and not in use here (after a
    // self-fence): release at once (offer, then withdraw, at their epoch).
    std::map<int32_t, int64_t> release;
    // Some free slice is assigned here and this worker may work: acquire.
    bool acquire = false;
};

class SliceReconciler {
public:
    // `db`: this worker's slices as read in one snapshot (ClusterTables::
    // read_worker_slices). Reads the ownership's offered and withdrawn slices
    // and whether it may commit; changes nothing.
    static ReconcilePlan plan(const std::vector<SliceRow>& db, const SliceOwnership& ownership);
};

}  // namespace orchestratord::cluster
