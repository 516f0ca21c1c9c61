/*
 * An independent reference model of DESIGN.md section 4, written from the
 * design text only, for the property tests of the domain. It plays both the
 * domain (the decide/evolve table) and the engine's idempotency index: it
 * remembers, per stream, the first outcome of every command id it recorded
 * and replays it with duplicate = true.
 *
 * Deliberately simple: fixed arrays, linear search, plain int64 arithmetic,
 * unsorted reservations. It uses nothing from src/ except the types of
 * panther/domain.h, so a bug in the real code cannot hide in shared helpers.
 * Not thread-safe; one pn_ref_t per test thread.
 */
#ifndef PN_REFERENCE_MODEL_H
#define PN_REFERENCE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "panther/domain.h"

#define PN_REF_MAX_STREAMS 8
#define PN_REF_MAX_ORDERS 32
#define PN_REF_MAX_SEEN 64

/** What the model expects a command to give. */
typedef struct pn_ref_result {
    pn_command_type_t command_type;
    pn_status_t status;
    pn_reason_t reason; /* PN_REASON_NONE when accepted */
    bool duplicate;
    int64_t version; /* numbers after the command */
    int64_t on_hand;
    int64_t reserved;
    int64_t available;
    bool has_event;
    pn_event_type_t event_type;        /* when has_event */
    int64_t event_version;             /* when has_event */
    int64_t event_quantity;            /* when has_event */
    int64_t event_previous_quantity;   /* when has_event and UPDATED */
} pn_ref_result_t;

typedef struct pn_ref_order {
    char id[PN_ID_MAX_BYTES];
    size_t len;
    int64_t quantity; /* > 0 */
} pn_ref_order_t;

typedef struct pn_ref_seen {
    char id[PN_ID_MAX_BYTES];
    size_t len;
    pn_ref_result_t result; /* the first outcome, duplicate = false */
} pn_ref_seen_t;

typedef struct pn_ref_stream {
    char sku[PN_ID_MAX_BYTES];
    size_t sku_len;
    char node[PN_ID_MAX_BYTES];
    size_t node_len;
    int64_t version;
    int64_t on_hand;
    size_t n_orders;
    pn_ref_order_t orders[PN_REF_MAX_ORDERS]; /* unsorted */
    size_t n_seen;
    pn_ref_seen_t seen[PN_REF_MAX_SEEN];
} pn_ref_stream_t;

/** Every stream the model has seen. Large: allocate it on the heap. */
typedef struct pn_ref {
    size_t n_streams;
    pn_ref_stream_t streams[PN_REF_MAX_STREAMS];
} pn_ref_t;

/** Forgets every stream. */
void pn_ref_reset(pn_ref_t *ref);

/**
 * Executes one command the way engine + domain should: INVALID_COMMAND for
 * bad ids, then the idempotency index (only for a command whose id and
 * stream ids are valid), then the section 4 table, then evolve. A command
 * whose stream ids are invalid is judged against the zero state and
 * changes nothing. Returns false (and fills nothing) only when a fixed
 * capacity of the model is exceeded.
 */
bool pn_ref_execute(pn_ref_t *ref, const pn_command_t *cmd,
                    pn_ref_result_t *res);

/** The model's stream for sku/node, or NULL if no command created it. */
const pn_ref_stream_t *pn_ref_find(const pn_ref_t *ref, pn_str_t sku_id,
                                   pn_str_t node_id);

/** Σ reservations of the stream (0 for NULL). */
int64_t pn_ref_reserved(const pn_ref_stream_t *stream);

/** What order_id holds on the stream (0 for NULL or nothing). */
int64_t pn_ref_held(const pn_ref_stream_t *stream, pn_str_t order_id);

#endif
