/*
 * orchestratord plugin ABI.
 *
 * A plugin is a shared object exporting one C function, ORCH_PLUGIN_ENTRY_SYMBOL,
 * that returns a pointer to a static orch_plugin_desc. The host reads the
 * descriptor's first three fields (struct_size, abi_major, abi_minor) before
 * anything else and refuses the plugin when the major version differs or the
 * minor version is newer than the host's (the model is PostgreSQL's module magic).
 *
 * Rules that keep the ABI stable:
 *  - only C types cross the boundary; no exception may escape a plugin
 *    (the C++ SDK in projection.hpp catches them and returns ORCH_ERROR);
 *  - every struct starts with struct_size so either side can tell which fields
 *    the other knows;
 *  - new fields and optional callbacks are appended at the end of a struct and
 *    may be NULL; appending bumps the minor version, anything else the major.
 *
 * Plugin authors normally use the C++ SDK (projection.hpp) instead of this file.
 */
#ifndef ORCHESTRATORD_PLUGIN_ABI_H
#define ORCHESTRATORD_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ORCH_PLUGIN_ABI_MAJOR 1
#define ORCH_PLUGIN_ABI_MINOR 0

/* Name of the one function a plugin exports. */
#define ORCH_PLUGIN_ENTRY_SYMBOL "orchestratord_plugin_entry"

#if defined(__GNUC__)
#define ORCH_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define ORCH_PLUGIN_EXPORT
#endif

/* Status codes returned by plugin callbacks. */
#define ORCH_OK 0
#define ORCH_ERROR 1

/* Projection modes. */
#define ORCH_MODE_AT_LEAST_ONCE 0 /* checkpoint commits after handle_batch succeeds */
#define ORCH_MODE_TRANSACTIONAL 1 /* handle_batch's SQL commits with the checkpoint */

/* Log levels for orch_host_api.log. */
#define ORCH_LOG_DEBUG 0
#define ORCH_LOG_INFO 1
#define ORCH_LOG_WARN 2
#define ORCH_LOG_ERROR 3

/*
 * One event of the pupsourcing event store, every column of the events table.
 * Text columns are NUL-terminated UTF-8; nullable columns are NULL when the
 * value is SQL NULL. Pointers stay valid only during the callback.
 */
typedef struct orch_event {
    size_t struct_size;
    int64_t global_position;
    const char* bounded_context;
    const char* aggregate_type;
    const char* aggregate_id;
    int64_t aggregate_version;
    const char* event_id; /* canonical UUID text, 36 characters */
    const char* event_type;
    int32_t event_version;
    const uint8_t* payload; /* raw bytes, any encoding */
    size_t payload_size;
    const char* trace_id;       /* NULL when absent */
    const char* correlation_id; /* NULL when absent */
    const char* causation_id;   /* NULL when absent */
    const char* metadata;       /* JSON text, NULL when absent */
    int64_t created_at_us;      /* microseconds since the Unix epoch, UTC */
} orch_event;

/* Opaque handles owned by the host. */
typedef struct orch_tx orch_tx;
typedef struct orch_result orch_result;

/* A batch of events for one projection, in global_position order. */
typedef struct orch_batch {
    size_t struct_size;
    const orch_event* const* events; /* array of count pointers */
    size_t count;
    /* The batch transaction in transactional mode, NULL in at-least-once mode. */
    orch_tx* tx;
} orch_batch;

/*
 * Services the host offers to a projection instance. host_ctx is the value
 * passed to create(); hand it back on every call that takes it.
 */
typedef struct orch_host_api {
    size_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;

    /* Writes one log line attributed to the projection. */
    void (*log)(void* host_ctx, int32_t level, const char* message);

    /*
     * Runs one parameterised statement ($1..$n) on the batch transaction.
     * values[i] is the text form of parameter i+1, or NULL for SQL NULL.
     * Returns a result to free with result_free, or NULL on error; the error
     * text is then available from tx_error until the next call on tx. After an
     * error the transaction is aborted: return ORCH_ERROR from the callback.
     */
    orch_result* (*tx_exec)(orch_tx* tx, const char* sql, int32_t n_values, const char* const* values);
    const char* (*tx_error)(orch_tx* tx);

    int64_t (*result_rows)(const orch_result* result);
    int32_t (*result_columns)(const orch_result* result);
    /* Text value of a cell, or NULL for SQL NULL; valid until result_free. */
    const char* (*result_value)(const orch_result* result, int64_t row, int32_t column);
    /* Rows affected by INSERT/UPDATE/DELETE, 0 otherwise. */
    int64_t (*result_affected)(const orch_result* result);
    void (*result_free)(orch_result* result);
} orch_host_api;

/*
 * Callbacks return ORCH_OK or ORCH_ERROR; on ORCH_ERROR they write a
 * NUL-terminated message of at most error_size bytes into error.
 */
typedef struct orch_projection_desc {
    size_t struct_size;
    const char* name; /* unique across every loaded plugin */
    int32_t mode;     /* ORCH_MODE_* */

    /*
     * Optional scope, each a NULL-terminated list (or NULL for "all"). The host
     * pushes it into the SQL filter so the projection never sees other events.
     */
    const char* const* aggregate_types;
    const char* const* bounded_contexts;
    const char* const* event_types;

    /* Required: makes one instance from the projection's config (JSON object text). */
    int32_t (*create)(const orch_host_api* host, void* host_ctx, const char* config_json, void** instance, char* error,
                      size_t error_size);
    /* Required: handles one batch. */
    int32_t (*handle_batch)(void* instance, const orch_batch* batch, char* error, size_t error_size);
    /* Required: frees an instance. Must not fail. */
    void (*destroy)(void* instance);
    /*
     * Optional (may be NULL): drops the projection's read model before a rebuild.
     * tx is the reset transaction in transactional mode, NULL otherwise.
     */
    int32_t (*reset)(void* instance, orch_tx* tx, char* error, size_t error_size);
} orch_projection_desc;

typedef struct orch_plugin_desc {
    /* These three fields are read first, and stay first in every ABI version. */
    size_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;

    const char* plugin_name;
    const char* plugin_version;
    size_t projection_count;
    const orch_projection_desc* const* projections;
} orch_plugin_desc;

/* The entry function every plugin exports under ORCH_PLUGIN_ENTRY_SYMBOL. */
typedef const orch_plugin_desc* (*orch_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* ORCHESTRATORD_PLUGIN_ABI_H */
