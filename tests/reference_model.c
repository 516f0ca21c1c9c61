/*
 * Reference model of DESIGN.md section 4; see reference_model.h. Written
 * from the design text alone: the rules below are quoted from it.
 */
#include "reference_model.h"

#include <string.h>

/* "Ids are non-empty, at most 256 bytes" */
static bool id_ok(pn_str_t s) {
    return s.len >= 1 && s.len <= PN_ID_MAX_BYTES && s.ptr != NULL;
}

/* "... and must not contain `|`" (skuId and fulfillmentNodeId only) */
static bool stream_id_ok(pn_str_t s) {
    if (!id_ok(s))
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] == '|')
            return false;
    return true;
}

static bool same(const char *a, size_t a_len, pn_str_t b) {
    return a_len == b.len && (b.len == 0 || memcmp(a, b.ptr, b.len) == 0);
}

static bool has_order(pn_command_type_t type) {
    return type != PN_CMD_UPDATE;
}

void pn_ref_reset(pn_ref_t *ref) { ref->n_streams = 0; }

const pn_ref_stream_t *pn_ref_find(const pn_ref_t *ref, pn_str_t sku_id,
                                   pn_str_t node_id) {
    for (size_t i = 0; i < ref->n_streams; i++) {
        const pn_ref_stream_t *s = &ref->streams[i];
        if (same(s->sku, s->sku_len, sku_id) &&
            same(s->node, s->node_len, node_id))
            return s;
    }
    return NULL;
}

int64_t pn_ref_reserved(const pn_ref_stream_t *stream) {
    int64_t sum = 0;
    if (!stream)
        return 0;
    for (size_t i = 0; i < stream->n_orders; i++)
        sum += stream->orders[i].quantity;
    return sum;
}

int64_t pn_ref_held(const pn_ref_stream_t *stream, pn_str_t order_id) {
    if (!stream)
        return 0;
    for (size_t i = 0; i < stream->n_orders; i++)
        if (same(stream->orders[i].id, stream->orders[i].len, order_id))
            return stream->orders[i].quantity;
    return 0;
}

static pn_ref_stream_t *find_or_add(pn_ref_t *ref, const pn_command_t *cmd) {
    pn_ref_stream_t *s =
        (pn_ref_stream_t *)pn_ref_find(ref, cmd->sku_id, cmd->node_id);
    if (s)
        return s;
    if (ref->n_streams == PN_REF_MAX_STREAMS)
        return NULL;
    s = &ref->streams[ref->n_streams++];
    memcpy(s->sku, cmd->sku_id.ptr, cmd->sku_id.len);
    s->sku_len = cmd->sku_id.len;
    memcpy(s->node, cmd->node_id.ptr, cmd->node_id.len);
    s->node_len = cmd->node_id.len;
    s->version = 0;
    s->on_hand = 0;
    s->n_orders = 0;
    s->n_seen = 0;
    return s;
}

/* reservations[order] += delta, dropping the entry at 0. */
static bool add_held(pn_ref_stream_t *s, pn_str_t order_id, int64_t delta) {
    for (size_t i = 0; i < s->n_orders; i++) {
        if (!same(s->orders[i].id, s->orders[i].len, order_id))
            continue;
        s->orders[i].quantity += delta;
        if (s->orders[i].quantity == 0)
            s->orders[i] = s->orders[--s->n_orders];
        return true;
    }
    if (s->n_orders == PN_REF_MAX_ORDERS)
        return false;
    pn_ref_order_t *o = &s->orders[s->n_orders++];
    memcpy(o->id, order_id.ptr, order_id.len);
    o->len = order_id.len;
    o->quantity = delta;
    return true;
}

static void reject(pn_ref_result_t *res, pn_reason_t reason) {
    res->status = PN_STATUS_REJECTED;
    res->reason = reason;
}

static void emit(pn_ref_result_t *res, const pn_ref_stream_t *s,
                 pn_event_type_t type, int64_t quantity) {
    res->has_event = true;
    res->event_type = type;
    res->event_version = s->version + 1;
    res->event_quantity = quantity;
}

/* The section 4 table, one row per command; fills status/reason/event. */
static void decide_row(const pn_ref_stream_t *s, const pn_command_t *cmd,
                       pn_ref_result_t *res) {
    int64_t q = cmd->quantity;
    int64_t available = s->on_hand - pn_ref_reserved(s);
    int64_t held = 0;
    switch (cmd->type) {
    case PN_CMD_UPDATE:
        if (q < 0)
            reject(res, PN_REASON_INVALID_QUANTITY);
        else if (q != s->on_hand) {
            emit(res, s, PN_EVT_UPDATED, q);
            res->event_previous_quantity = s->on_hand;
        }
        return;
    case PN_CMD_RESERVE:
        if (q <= 0)
            reject(res, PN_REASON_INVALID_QUANTITY);
        else if (available < q)
            reject(res, PN_REASON_INSUFFICIENT_INVENTORY);
        else
            emit(res, s, PN_EVT_RESERVED, q);
        return;
    case PN_CMD_CANCEL:
    case PN_CMD_SHIP:
        held = pn_ref_held(s, cmd->order_id);
        if (held == 0)
            reject(res, PN_REASON_NO_RESERVATION);
        else if (cmd->has_quantity && q <= 0)
            reject(res, PN_REASON_INVALID_QUANTITY);
        else if (cmd->has_quantity && q > held)
            reject(res, PN_REASON_EXCEEDS_RESERVATION);
        else
            emit(res, s,
                 cmd->type == PN_CMD_CANCEL ? PN_EVT_CANCELLED
                                            : PN_EVT_SHIPPED,
                 cmd->has_quantity ? q : held);
        return;
    default:
        reject(res, PN_REASON_INVALID_COMMAND);
        return;
    }
}

static bool evolve(pn_ref_stream_t *s, const pn_command_t *cmd,
                   const pn_ref_result_t *res) {
    int64_t q = res->event_quantity;
    switch (res->event_type) {
    case PN_EVT_UPDATED:
        s->on_hand = q;
        break;
    case PN_EVT_RESERVED:
        if (!add_held(s, cmd->order_id, q))
            return false;
        break;
    case PN_EVT_CANCELLED:
        if (!add_held(s, cmd->order_id, -q))
            return false;
        break;
    case PN_EVT_SHIPPED:
        if (!add_held(s, cmd->order_id, -q))
            return false;
        s->on_hand = s->on_hand - q < 0 ? 0 : s->on_hand - q;
        break;
    default:
        return false;
    }
    s->version++;
    return true;
}

static void set_numbers(pn_ref_result_t *res, const pn_ref_stream_t *s) {
    res->version = s->version;
    res->on_hand = s->on_hand;
    res->reserved = pn_ref_reserved(s);
    res->available = res->on_hand - res->reserved;
}

bool pn_ref_execute(pn_ref_t *ref, const pn_command_t *cmd,
                    pn_ref_result_t *res) {
    pn_ref_result_t r;
    memset(&r, 0, sizeof r);
    r.command_type = cmd->type;
    r.status = PN_STATUS_ACCEPTED;
    r.reason = PN_REASON_NONE;

    /* No stream at all: judged against the zero state, nothing recorded. */
    if (!stream_id_ok(cmd->sku_id) || !stream_id_ok(cmd->node_id)) {
        reject(&r, PN_REASON_INVALID_COMMAND);
        *res = r;
        return true;
    }
    pn_ref_stream_t *s = find_or_add(ref, cmd);
    if (!s)
        return false;

    /* The engine's index: only commands with a usable id are recorded. */
    bool recordable = id_ok(cmd->id);
    if (recordable) {
        for (size_t i = 0; i < s->n_seen; i++) {
            if (same(s->seen[i].id, s->seen[i].len, cmd->id)) {
                /* "emits no events; its original outcome is published
                 * again with duplicate = true" */
                *res = s->seen[i].result;
                res->duplicate = true;
                res->has_event = false;
                return true;
            }
        }
    }

    if (!recordable || (has_order(cmd->type) && !id_ok(cmd->order_id)))
        reject(&r, PN_REASON_INVALID_COMMAND);
    else
        decide_row(s, cmd, &r);
    if (r.has_event && !evolve(s, cmd, &r))
        return false;
    set_numbers(&r, s);

    if (recordable) {
        if (s->n_seen == PN_REF_MAX_SEEN)
            return false;
        pn_ref_seen_t *seen = &s->seen[s->n_seen++];
        memcpy(seen->id, cmd->id.ptr, cmd->id.len);
        seen->len = cmd->id.len;
        seen->result = r;
    }
    *res = r;
    return true;
}
