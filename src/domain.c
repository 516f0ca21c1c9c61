/*
 * decide and evolve: the table of DESIGN.md section 4, and the stream state
 * they work on. Pure: no clock, no I/O, no randomness.
 */
#include "panther/domain.h"

#include <stdlib.h>
#include <string.h>

/* --- strings and names -------------------------------------------------- */

pn_str_t pn_str_c(const char *s) {
    return s ? (pn_str_t){s, strlen(s)} : PN_STR_NULL;
}

bool pn_str_eq(pn_str_t a, pn_str_t b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

int pn_str_cmp(pn_str_t a, pn_str_t b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

const char *pn_command_type_name(pn_command_type_t type) {
    static const char *const names[] = {"UPDATE", "RESERVE", "CANCEL", "SHIP"};
    return (unsigned)type < PN_CMD__COUNT ? names[type] : "UNKNOWN";
}

const char *pn_status_name(pn_status_t status) {
    return status == PN_STATUS_ACCEPTED ? "ACCEPTED" : "REJECTED";
}

const char *pn_reason_name(pn_reason_t reason) {
    static const char *const names[] = {
        "INSUFFICIENT_INVENTORY", "NO_RESERVATION", "EXCEEDS_RESERVATION",
        "INVALID_QUANTITY", "INVALID_COMMAND"};
    return reason >= 0 && reason < PN_REASON__COUNT ? names[reason] : "";
}

const char *pn_event_type_name(pn_event_type_t type) {
    static const char *const names[] = {"InventoryUpdated", "InventoryReserved",
                                        "ReservationCancelled",
                                        "LineItemShipped"};
    return (unsigned)type < PN_EVT__COUNT ? names[type] : "Unknown";
}

void pn_command_release(pn_command_t *cmd) {
    if (!cmd)
        return;
    free(cmd->storage);
    memset(cmd, 0, sizeof *cmd);
}

void pn_event_release(pn_event_t *ev) {
    if (!ev)
        return;
    free(ev->storage);
    memset(ev, 0, sizeof *ev);
}

/* --- state -------------------------------------------------------------- */

void pn_state_init(pn_state_t *state) { memset(state, 0, sizeof *state); }

void pn_state_clear(pn_state_t *state) {
    if (!state)
        return;
    for (size_t i = 0; i < state->n_reservations; i++)
        free(state->reservations[i].order_id);
    free(state->reservations);
    pn_state_init(state);
}

pn_err_t pn_state_copy(pn_state_t *dst, const pn_state_t *src) {
    pn_state_t copy;
    pn_state_init(&copy);
    if (src->n_reservations) {
        copy.reservations = calloc(src->n_reservations, sizeof *copy.reservations);
        if (!copy.reservations)
            return PN_ERR_NOMEM;
        copy.cap_reservations = src->n_reservations;
    }
    for (size_t i = 0; i < src->n_reservations; i++) {
        const pn_reservation_t *r = &src->reservations[i];
        char *id = malloc(r->order_id_len + 1);
        if (!id) {
            pn_state_clear(&copy);
            return PN_ERR_NOMEM;
        }
        memcpy(id, r->order_id, r->order_id_len + 1);
        copy.reservations[i] = (pn_reservation_t){id, r->order_id_len, r->quantity};
        copy.n_reservations++;
    }
    copy.version = src->version;
    copy.on_hand = src->on_hand;
    copy.reserved = src->reserved;
    pn_state_clear(dst);
    *dst = copy;
    return PN_ERR_OK;
}

bool pn_state_eq(const pn_state_t *a, const pn_state_t *b) {
    if (a->version != b->version || a->on_hand != b->on_hand ||
        a->reserved != b->reserved || a->n_reservations != b->n_reservations)
        return false;
    for (size_t i = 0; i < a->n_reservations; i++) {
        const pn_reservation_t *x = &a->reservations[i], *y = &b->reservations[i];
        if (x->quantity != y->quantity ||
            !pn_str_eq((pn_str_t){x->order_id, x->order_id_len},
                       (pn_str_t){y->order_id, y->order_id_len}))
            return false;
    }
    return true;
}

/* Binary search; returns the index of order_id or where it would go. */
static size_t find_reservation(const pn_state_t *state, pn_str_t order_id,
                               bool *found) {
    size_t lo = 0, hi = state->n_reservations;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const pn_reservation_t *r = &state->reservations[mid];
        int c = pn_str_cmp((pn_str_t){r->order_id, r->order_id_len}, order_id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int64_t pn_state_held(const pn_state_t *state, pn_str_t order_id) {
    bool found;
    size_t i = find_reservation(state, order_id, &found);
    return found ? state->reservations[i].quantity : 0;
}

static pn_err_t insert_reservation(pn_state_t *state, size_t at,
                                   pn_str_t order_id, int64_t quantity) {
    if (state->n_reservations == state->cap_reservations) {
        size_t cap = state->cap_reservations ? state->cap_reservations * 2 : 4;
        pn_reservation_t *grown =
            realloc(state->reservations, cap * sizeof *grown);
        if (!grown)
            return PN_ERR_NOMEM;
        state->reservations = grown;
        state->cap_reservations = cap;
    }
    char *id = malloc(order_id.len + 1);
    if (!id)
        return PN_ERR_NOMEM;
    memcpy(id, order_id.ptr, order_id.len);
    id[order_id.len] = '\0';
    memmove(&state->reservations[at + 1], &state->reservations[at],
            (state->n_reservations - at) * sizeof *state->reservations);
    state->reservations[at] = (pn_reservation_t){id, order_id.len, quantity};
    state->n_reservations++;
    return PN_ERR_OK;
}

pn_err_t pn_state_adjust_reservation(pn_state_t *state, pn_str_t order_id,
                                     int64_t delta) {
    bool found;
    size_t i = find_reservation(state, order_id, &found);
    int64_t held = found ? state->reservations[i].quantity : 0;
    if (held + delta < 0)
        return PN_ERR_INVALID_ARG;
    if (delta == 0)
        return PN_ERR_OK;
    if (!found) {
        pn_err_t err = insert_reservation(state, i, order_id, delta);
        if (err)
            return err;
    } else if (held + delta == 0) {
        free(state->reservations[i].order_id);
        memmove(&state->reservations[i], &state->reservations[i + 1],
                (state->n_reservations - i - 1) * sizeof *state->reservations);
        state->n_reservations--;
    } else {
        state->reservations[i].quantity = held + delta;
    }
    state->reserved += delta;
    return PN_ERR_OK;
}

/* --- validation ----------------------------------------------------------- */

static bool id_ok(pn_str_t id) {
    return id.ptr && id.len > 0 && id.len <= PN_ID_MAX_BYTES;
}

static bool stream_id_ok(pn_str_t id) {
    return id_ok(id) && !memchr(id.ptr, PN_STREAM_KEY_SEP, id.len);
}

bool pn_stream_ids_valid(pn_str_t sku_id, pn_str_t node_id) {
    return stream_id_ok(sku_id) && stream_id_ok(node_id);
}

bool pn_command_is_valid(const pn_command_t *cmd) {
    if ((unsigned)cmd->type >= PN_CMD__COUNT || !id_ok(cmd->id) ||
        !pn_stream_ids_valid(cmd->sku_id, cmd->node_id))
        return false;
    if (cmd->type != PN_CMD_UPDATE && !id_ok(cmd->order_id))
        return false;
    /* UPDATE and RESERVE carry a mandatory int; only the decoder could
     * leave it out, and then the command is not one of ours. */
    if ((cmd->type == PN_CMD_UPDATE || cmd->type == PN_CMD_RESERVE) &&
        !cmd->has_quantity)
        return false;
    return true;
}

size_t pn_stream_key(pn_str_t sku_id, pn_str_t node_id, char *buf,
                     size_t buf_size) {
    if (!pn_stream_ids_valid(sku_id, node_id))
        return 0;
    size_t len = sku_id.len + 1 + node_id.len;
    if (len + 1 > buf_size)
        return 0;
    memcpy(buf, sku_id.ptr, sku_id.len);
    buf[sku_id.len] = PN_STREAM_KEY_SEP;
    memcpy(buf + sku_id.len + 1, node_id.ptr, node_id.len);
    buf[len] = '\0';
    return len;
}

/* --- decide --------------------------------------------------------------- */

static void fill_numbers(pn_outcome_t *o, int64_t version, int64_t on_hand,
                         int64_t reserved) {
    o->version = version;
    o->on_hand = on_hand;
    o->reserved = reserved;
    o->available = on_hand - reserved;
}

static void reject(const pn_state_t *state, pn_reason_t reason,
                   pn_decision_t *out) {
    out->outcome.status = PN_STATUS_REJECTED;
    out->outcome.reason = reason;
    fill_numbers(&out->outcome, state->version, state->on_hand, state->reserved);
}

/* Accepts and emits one event of the given type; the outcome numbers are
 * those evolve will produce, computed without touching the state. */
static void emit(const pn_state_t *state, const pn_command_t *cmd,
                 pn_event_type_t type, int32_t quantity, pn_decision_t *out) {
    pn_event_t *ev = &out->event;
    out->has_event = true;
    ev->type = type;
    ev->sku_id = cmd->sku_id;
    ev->node_id = cmd->node_id;
    ev->version = state->version + 1;
    ev->command_id = cmd->id;
    ev->by = cmd->by;
    ev->at_ms = cmd->at_ms;
    ev->order_id = type == PN_EVT_UPDATED ? PN_STR_NULL : cmd->order_id;
    ev->quantity = quantity;
    ev->previous_quantity = type == PN_EVT_UPDATED ? state->on_hand : 0;

    int64_t on_hand = state->on_hand, reserved = state->reserved;
    switch (type) {
    case PN_EVT_UPDATED:
        on_hand = quantity;
        break;
    case PN_EVT_RESERVED:
        reserved += quantity;
        break;
    case PN_EVT_CANCELLED:
        reserved -= quantity;
        break;
    case PN_EVT_SHIPPED:
        reserved -= quantity;
        on_hand = on_hand > quantity ? on_hand - quantity : 0;
        break;
    default:
        break;
    }
    out->outcome.status = PN_STATUS_ACCEPTED;
    out->outcome.reason = PN_REASON_NONE;
    fill_numbers(&out->outcome, ev->version, on_hand, reserved);
}

static void decide_update(const pn_state_t *state, const pn_command_t *cmd,
                          pn_decision_t *out) {
    if (cmd->quantity < 0) {
        reject(state, PN_REASON_INVALID_QUANTITY, out);
    } else if (cmd->quantity == state->on_hand) {
        /* Accepted, but nothing changed, so nothing to record. */
        out->outcome.status = PN_STATUS_ACCEPTED;
        out->outcome.reason = PN_REASON_NONE;
        fill_numbers(&out->outcome, state->version, state->on_hand,
                     state->reserved);
    } else {
        emit(state, cmd, PN_EVT_UPDATED, cmd->quantity, out);
    }
}

static void decide_reserve(const pn_state_t *state, const pn_command_t *cmd,
                           pn_decision_t *out) {
    if (cmd->quantity <= 0)
        reject(state, PN_REASON_INVALID_QUANTITY, out);
    else if (pn_state_available(state) < cmd->quantity)
        reject(state, PN_REASON_INSUFFICIENT_INVENTORY, out);
    else
        emit(state, cmd, PN_EVT_RESERVED, cmd->quantity, out);
}

/* Cancel and ship share their checks: the order must hold something, and an
 * explicit quantity must be positive and within what it holds. */
static void decide_release(const pn_state_t *state, const pn_command_t *cmd,
                           pn_event_type_t type, pn_decision_t *out) {
    int64_t held = pn_state_held(state, cmd->order_id);
    if (held == 0)
        reject(state, PN_REASON_NO_RESERVATION, out);
    else if (cmd->has_quantity && cmd->quantity <= 0)
        reject(state, PN_REASON_INVALID_QUANTITY, out);
    else if (cmd->has_quantity && cmd->quantity > held)
        reject(state, PN_REASON_EXCEEDS_RESERVATION, out);
    else
        /* held <= INT32_MAX: every reserve added at most available, and
         * available never exceeds an int on-hand count. */
        emit(state, cmd, type, cmd->has_quantity ? cmd->quantity : (int32_t)held,
             out);
}

void pn_domain_decide(const pn_state_t *state, const pn_command_t *cmd,
                      const pn_outcome_t *prior, pn_decision_t *out) {
    memset(out, 0, sizeof *out);
    out->outcome.command_type = cmd->type;
    if (prior) {
        out->outcome = *prior;
        out->outcome.duplicate = true;
        return;
    }
    if (!pn_command_is_valid(cmd)) {
        reject(state, PN_REASON_INVALID_COMMAND, out);
        return;
    }
    switch (cmd->type) {
    case PN_CMD_UPDATE:
        decide_update(state, cmd, out);
        break;
    case PN_CMD_RESERVE:
        decide_reserve(state, cmd, out);
        break;
    case PN_CMD_CANCEL:
        decide_release(state, cmd, PN_EVT_CANCELLED, out);
        break;
    case PN_CMD_SHIP:
        decide_release(state, cmd, PN_EVT_SHIPPED, out);
        break;
    default:
        reject(state, PN_REASON_INVALID_COMMAND, out);
        break;
    }
}

/* --- evolve --------------------------------------------------------------- */

pn_err_t pn_domain_evolve(pn_state_t *state, const pn_event_t *ev) {
    if (ev->version != state->version + 1 || ev->quantity < 0)
        return PN_ERR_INVALID_ARG;
    pn_err_t err = PN_ERR_OK;
    switch (ev->type) {
    case PN_EVT_UPDATED:
        state->on_hand = ev->quantity;
        break;
    case PN_EVT_RESERVED:
        err = pn_state_adjust_reservation(state, ev->order_id, ev->quantity);
        break;
    case PN_EVT_CANCELLED:
        err = pn_state_adjust_reservation(state, ev->order_id, -(int64_t)ev->quantity);
        break;
    case PN_EVT_SHIPPED:
        err = pn_state_adjust_reservation(state, ev->order_id, -(int64_t)ev->quantity);
        if (!err)
            state->on_hand = state->on_hand > ev->quantity
                                 ? state->on_hand - ev->quantity
                                 : 0;
        break;
    default:
        return PN_ERR_INVALID_ARG;
    }
    if (err)
        return err;
    state->version = ev->version;
    return PN_ERR_OK;
}
