#pragma once
// The quoted, schema-qualified names of orchestratord's own tables and of the
// events table, built once per process from the event store configuration.
// Every statement on these tables takes its names from here, so a renamed or
// added table is one edit.
#include <string>

#include "config/config.hpp"

namespace orchestratord::store {

struct TableNames {
    std::string events;             // the pupsourcing events table
    std::string replica_sets;       // orchestratord_replica_sets
    std::string workers;            // orchestratord_workers
    std::string generations;        // orchestratord_generations
    std::string slices;             // orchestratord_slices
    std::string slice_history;      // orchestratord_slice_history
    std::string progress;           // orchestratord_progress: one checkpoint row per writer
    std::string checkpoints;        // orchestratord_checkpoints: the per-slice view over progress
    std::string projection_state;   // orchestratord_projection_state
    std::string dead_letters;       // orchestratord_dead_letters
    std::string schema_migrations;  // orchestratord_schema_migrations: the migrations applied

    // The names for `store`, built on first use and kept for the rest of the
    // process (the event store settings do not change on reload). The
    // reference stays valid; tests that use several schemas get one set each.
    static const TableNames& of(const config::EventStoreConfig& store);
};

}  // namespace orchestratord::store
