/*
 * The pure domain core: commands, events, outcomes, stream state, and the two
 * functions of event sourcing, decide and evolve (DESIGN.md section 4).
 *
 * Nothing here does I/O, reads a clock or draws a random number. The only
 * allocation is the growth of a state's reservation table inside evolve and
 * the copies made by pn_state_copy; both report PN_ERR_NOMEM rather than
 * abort. Strings are length-delimited views (pn_str_t) that never own memory:
 * each struct that holds views says who owns the bytes.
 */
#ifndef PANTHER_DOMAIN_H
#define PANTHER_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "panther/err.h"

/** Largest id, skuId, fulfillmentNodeId or orderId a command may carry. */
#define PN_ID_MAX_BYTES 256

/** Separator of the canonical stream key `skuId|fulfillmentNodeId`. */
#define PN_STREAM_KEY_SEP '|'

/** Buffer size that holds any valid canonical stream key plus a NUL. */
#define PN_STREAM_KEY_MAX (2 * PN_ID_MAX_BYTES + 2)

/** A borrowed, length-delimited byte string; not NUL-terminated. */
typedef struct pn_str {
    const char *ptr;
    size_t len;
} pn_str_t;

#define PN_STR_NULL ((pn_str_t){NULL, 0})

/** A view of a NUL-terminated C string. */
pn_str_t pn_str_c(const char *s);

/** Byte-wise equality. */
bool pn_str_eq(pn_str_t a, pn_str_t b);

/** memcmp order, shorter first on a common prefix. */
int pn_str_cmp(pn_str_t a, pn_str_t b);

typedef enum {
    PN_CMD_UPDATE,
    PN_CMD_RESERVE,
    PN_CMD_CANCEL,
    PN_CMD_SHIP,
    PN_CMD__COUNT
} pn_command_type_t;

typedef enum { PN_STATUS_ACCEPTED, PN_STATUS_REJECTED } pn_status_t;

/* Order matches the Avro enum symbols of CommandOutcome.reason. */
typedef enum {
    PN_REASON_NONE = -1, /* Avro null: accepted */
    PN_REASON_INSUFFICIENT_INVENTORY = 0,
    PN_REASON_NO_RESERVATION,
    PN_REASON_EXCEEDS_RESERVATION,
    PN_REASON_INVALID_QUANTITY,
    PN_REASON_INVALID_COMMAND,
    PN_REASON__COUNT
} pn_reason_t;

typedef enum {
    PN_EVT_UPDATED,   /* InventoryUpdated */
    PN_EVT_RESERVED,  /* InventoryReserved */
    PN_EVT_CANCELLED, /* ReservationCancelled */
    PN_EVT_SHIPPED,   /* LineItemShipped */
    PN_EVT__COUNT
} pn_event_type_t;

/** Avro-style names: "UPDATE", "ACCEPTED", "NO_RESERVATION", ... */
const char *pn_command_type_name(pn_command_type_t type);
const char *pn_status_name(pn_status_t status);
const char *pn_reason_name(pn_reason_t reason); /* "" for NONE */
const char *pn_event_type_name(pn_event_type_t type); /* record name */

/**
 * A decoded command. The strings are views; whoever filled the struct owns
 * the bytes (the codec puts them in one block at `storage`, released with
 * pn_command_release()). order_id is PN_STR_NULL for UPDATE.
 */
typedef struct pn_command {
    pn_command_type_t type;
    pn_str_t id;
    pn_str_t order_id;
    pn_str_t sku_id;
    pn_str_t node_id;
    pn_str_t by;
    bool has_quantity; /* always true for UPDATE and RESERVE */
    int32_t quantity;
    int64_t at_ms; /* timestamp-millis */
    void *storage; /* owned block behind the views, or NULL */
} pn_command_t;

/** Frees cmd->storage and zeroes cmd. NULL-safe. */
void pn_command_release(pn_command_t *cmd);

/**
 * An event of one stream. Strings are views: for an event made by decide
 * they point into the command; for a decoded event, into the codec's block
 * at `storage` (release with pn_event_release()).
 */
typedef struct pn_event {
    pn_event_type_t type;
    pn_str_t sku_id;
    pn_str_t node_id;
    int64_t version; /* 1-based, contiguous per stream */
    pn_str_t command_id;
    pn_str_t by;
    int64_t at_ms;
    pn_str_t order_id;         /* all but UPDATED */
    int32_t quantity;          /* all types */
    int64_t previous_quantity; /* UPDATED only */
    void *storage;
} pn_event_t;

/** Frees ev->storage and zeroes ev. NULL-safe. */
void pn_event_release(pn_event_t *ev);

/**
 * What a command did. The numbers are the stream's state after the command.
 * Strings of the CommandOutcome record (commandId, orderId, skuId, node, at)
 * come from the command it answers.
 */
typedef struct pn_outcome {
    pn_command_type_t command_type;
    pn_status_t status;
    pn_reason_t reason; /* PN_REASON_NONE when accepted */
    bool duplicate;
    int64_t version;
    int64_t on_hand;
    int64_t reserved;
    int64_t available;
} pn_outcome_t;

typedef struct pn_reservation {
    char *order_id; /* owned, NUL-terminated copy */
    size_t order_id_len;
    int64_t quantity; /* > 0 */
} pn_reservation_t;

/**
 * The state of one stream: the fold of its events. Reservations are kept
 * sorted by order id so that iteration, encoding and equality are
 * deterministic. Owns its reservation table; free with pn_state_clear().
 */
typedef struct pn_state {
    int64_t version;
    int64_t on_hand;
    int64_t reserved; /* = sum of reservations[].quantity */
    size_t n_reservations;
    size_t cap_reservations;
    pn_reservation_t *reservations;
} pn_state_t;

/** The zero state: version 0, nothing on hand, no reservations. */
void pn_state_init(pn_state_t *state);

/** Frees what state owns and returns it to the zero state. NULL-safe. */
void pn_state_clear(pn_state_t *state);

/** Deep copy; dst must be initialised (its old content is freed). */
PN_MUST_CHECK pn_err_t pn_state_copy(pn_state_t *dst, const pn_state_t *src);

/** Deep equality of version, counts and reservations. */
bool pn_state_eq(const pn_state_t *a, const pn_state_t *b);

static inline int64_t pn_state_available(const pn_state_t *state) {
    return state->on_hand - state->reserved;
}

/** Quantity held by order_id, 0 when it holds nothing. */
int64_t pn_state_held(const pn_state_t *state, pn_str_t order_id);

/**
 * Adds (delta > 0) or removes (delta < 0) quantity for order_id, dropping
 * the entry when it reaches 0 and keeping `reserved` in step. Used by evolve
 * and by the snapshot decoder. PN_ERR_INVALID_ARG if the result would be
 * negative.
 */
PN_MUST_CHECK pn_err_t pn_state_adjust_reservation(pn_state_t *state,
                                                   pn_str_t order_id,
                                                   int64_t delta);

/** What decide returns: the outcome and at most one event. */
typedef struct pn_decision {
    pn_outcome_t outcome;
    bool has_event;
    pn_event_t event; /* views into the command given to decide */
} pn_decision_t;

/**
 * True when every id of the command is non-empty and at most
 * PN_ID_MAX_BYTES, and skuId / fulfillmentNodeId hold no '|'.
 */
bool pn_command_is_valid(const pn_command_t *cmd);

/** True when sku and node make a valid canonical stream key. */
bool pn_stream_ids_valid(pn_str_t sku_id, pn_str_t node_id);

/**
 * Writes `sku|node` into buf (NUL-terminated) and returns its length, or 0
 * if the ids are not valid or buf is too small.
 */
size_t pn_stream_key(pn_str_t sku_id, pn_str_t node_id, char *buf,
                     size_t buf_size);

/**
 * decide: the DESIGN.md section 4 table. `prior` is the outcome this
 * stream already gave to a command with the same id inside the idempotency
 * window, or NULL; when given, the decision is that outcome with
 * duplicate = true and no event. Pure; never fails.
 */
void pn_domain_decide(const pn_state_t *state, const pn_command_t *cmd,
                      const pn_outcome_t *prior, pn_decision_t *out);

/**
 * evolve: applies one event to the state. The event's version must be
 * state->version + 1 (PN_ERR_INVALID_ARG otherwise, state unchanged);
 * PN_ERR_NOMEM leaves the state unchanged too.
 */
PN_MUST_CHECK pn_err_t pn_domain_evolve(pn_state_t *state,
                                        const pn_event_t *event);

#endif
