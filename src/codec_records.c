/*
 * Panther's own records, always plain Avro binary: InventoryEvent (the
 * change feed), CommandOutcome (the replies) and InventorySnapshot. Decoded
 * strings are copied into one block owned by the decoded struct.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

/* --- InventoryEvent --------------------------------------------------------- */

enum {
    EV_SKU, EV_NODE, EV_VERSION, EV_COMMAND_ID, EV_BY, EV_AT, EV_BRANCH,
    EV_QUANTITY, EV_PREVIOUS, EV_ORDER, EV__SLOTS
};

static const pn_codec_binding_t event_bindings[] = {
    {"skuId", EV_SKU, PN_CODEC_CLASS_STR},
    {"fulfillmentNodeId", EV_NODE, PN_CODEC_CLASS_STR},
    {"version", EV_VERSION, PN_CODEC_CLASS_LONG},
    {"commandId", EV_COMMAND_ID, PN_CODEC_CLASS_STR},
    {"by", EV_BY, PN_CODEC_CLASS_STR},
    {"at", EV_AT, PN_CODEC_CLASS_LONG},
    {"event", EV_BRANCH, PN_CODEC_CLASS_RECORDS},
    {"quantity", EV_QUANTITY, PN_CODEC_CLASS_INT},
    {"previousQuantity", EV_PREVIOUS, PN_CODEC_CLASS_LONG},
    {"orderId", EV_ORDER, PN_CODEC_CLASS_STR}};

pn_err_t pn_codec_encode_event(pn_codec_t *codec, const pn_event_t *ev,
                               pn_buf_t *out) {
    if (!codec || !ev || !out || (unsigned)ev->type >= PN_EVT__COUNT)
        return PN_ERR_INVALID_ARG;
    pn_codec_slot_t v[EV__SLOTS] = {
        [EV_SKU] = {.str = ev->sku_id},
        [EV_NODE] = {.str = ev->node_id},
        [EV_VERSION] = {.num = ev->version},
        [EV_COMMAND_ID] = {.str = ev->command_id},
        [EV_BY] = {.str = ev->by},
        [EV_AT] = {.num = ev->at_ms},
        [EV_BRANCH] = {.num = codec->event.types[ev->type].branch},
        [EV_QUANTITY] = {.num = ev->quantity},
        [EV_PREVIOUS] = {.num = ev->previous_quantity},
        [EV_ORDER] = {.str = ev->order_id}};
    return pn_codec__encode_slots(codec, PN_SCHEMA_INVENTORY_EVENT, v, NULL, 0,
                                  out);
}


/* The event type of a DomainEvent branch, or PN_EVT__COUNT. */
static pn_event_type_t event_type_of(const pn_codec_t *codec, int branch) {
    for (int t = 0; t < PN_EVT__COUNT; t++)
        if (codec->event.types[t].branch == branch)
            return (pn_event_type_t)t;
    return PN_EVT__COUNT;
}

/* Copies the decoded strings into one block owned by the event, which
 * then becomes *ev. */
static pn_err_t finish_event(pn_event_t *e, pn_str_t sku, pn_str_t node,
                             pn_str_t command_id, pn_str_t by, pn_str_t order,
                             pn_event_t *ev, char *errstr,
                             size_t errstr_size) {
    pn_codec_strs_t strs = {.n = 0};
    pn_codec__strs_add(&strs, &e->sku_id, sku);
    pn_codec__strs_add(&strs, &e->node_id, node);
    pn_codec__strs_add(&strs, &e->command_id, command_id);
    pn_codec__strs_add(&strs, &e->by, by);
    pn_codec__strs_add(&strs, &e->order_id, order);
    if (pn_codec__strs_commit(&strs, &e->storage))
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "InventoryEvent: out of memory");
    *ev = *e;
    return PN_ERR_OK;
}

/* The event in the slots read. Only the fields of its branch count. */
static pn_err_t extract_event_slots(pn_codec_t *codec,
                                    const pn_codec_slot_t *v, pn_event_t *ev,
                                    char *errstr, size_t errstr_size) {
    pn_event_t e = {.type = event_type_of(codec, (int)v[EV_BRANCH].num),
                    .version = v[EV_VERSION].num,
                    .at_ms = v[EV_AT].num,
                    .quantity = (int32_t)v[EV_QUANTITY].num};
    if (e.type == PN_EVT__COUNT)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "InventoryEvent: reading decoded fields: no such "
                          "event type");
    if (codec->event.types[e.type].previous_quantity >= 0)
        e.previous_quantity = v[EV_PREVIOUS].num;
    pn_str_t order = codec->event.types[e.type].order_id >= 0
                         ? v[EV_ORDER].str
                         : PN_STR_NULL;
    return finish_event(&e, v[EV_SKU].str, v[EV_NODE].str,
                        v[EV_COMMAND_ID].str, v[EV_BY].str, order, ev,
                        errstr, errstr_size);
}

pn_err_t pn_codec_decode_event(pn_codec_t *codec, const void *data,
                               size_t len, pn_event_t *ev, char *errstr,
                               size_t errstr_size) {
    if (ev)
        memset(ev, 0, sizeof *ev);
    if (!codec || !ev)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "decode event: missing argument");
    pn_codec_slot_t v[EV__SLOTS] = {{.num = 0}};
    pn_err_t err = pn_codec__read_plain(codec, PN_SCHEMA_INVENTORY_EVENT,
                                        data, len, v, errstr, errstr_size);
    return err ? err : extract_event_slots(codec, v, ev, errstr, errstr_size);
}

/* --- CommandOutcome ------------------------------------------------------- */

void pn_outcome_record_release(pn_outcome_record_t *rec) {
    if (!rec)
        return;
    free(rec->storage);
    memset(rec, 0, sizeof *rec);
}

static bool outcome_valid(const pn_outcome_t *o) {
    return (unsigned)o->command_type < PN_CMD__COUNT &&
           (o->status == PN_STATUS_ACCEPTED ||
            o->status == PN_STATUS_REJECTED) &&
           o->reason >= PN_REASON_NONE && o->reason < PN_REASON__COUNT;
}

enum {
    OUT_COMMAND_ID, OUT_TYPE, OUT_ORDER, OUT_SKU, OUT_NODE, OUT_STATUS,
    OUT_REASON, OUT_DUPLICATE, OUT_VERSION, OUT_ON_HAND, OUT_RESERVED,
    OUT_AVAILABLE, OUT_AT, OUT__SLOTS
};

static const pn_codec_binding_t outcome_bindings[] = {
    {"commandId", OUT_COMMAND_ID, PN_CODEC_CLASS_STR},
    {"commandType", OUT_TYPE, PN_CODEC_CLASS_ENUM},
    {"orderId", OUT_ORDER, PN_CODEC_CLASS_STR},
    {"skuId", OUT_SKU, PN_CODEC_CLASS_STR},
    {"fulfillmentNodeId", OUT_NODE, PN_CODEC_CLASS_STR},
    {"status", OUT_STATUS, PN_CODEC_CLASS_ENUM},
    {"reason", OUT_REASON, PN_CODEC_CLASS_ENUM},
    {"duplicate", OUT_DUPLICATE, PN_CODEC_CLASS_BOOL},
    {"version", OUT_VERSION, PN_CODEC_CLASS_LONG},
    {"onHand", OUT_ON_HAND, PN_CODEC_CLASS_LONG},
    {"reserved", OUT_RESERVED, PN_CODEC_CLASS_LONG},
    {"available", OUT_AVAILABLE, PN_CODEC_CLASS_LONG},
    {"at", OUT_AT, PN_CODEC_CLASS_LONG}};

bool pn_codec__plan_records(pn_codec_t *codec) {
    return pn_codec__plan_compile(
               &codec->plans[PN_SCHEMA_INVENTORY_EVENT],
               codec->recs[PN_SCHEMA_INVENTORY_EVENT].schema, event_bindings,
               sizeof event_bindings / sizeof *event_bindings, EV__SLOTS,
               PN_CODEC_NO_SLOT) &&
           pn_codec__plan_compile(
        &codec->plans[PN_SCHEMA_COMMAND_OUTCOME],
        codec->recs[PN_SCHEMA_COMMAND_OUTCOME].schema, outcome_bindings,
        sizeof outcome_bindings / sizeof *outcome_bindings, OUT__SLOTS,
        PN_CODEC_NO_SLOT);
}

pn_err_t pn_codec_encode_outcome_record(pn_codec_t *codec,
                                        const pn_outcome_record_t *rec,
                                        pn_buf_t *out) {
    if (!codec || !rec || !out || !outcome_valid(&rec->outcome))
        return PN_ERR_INVALID_ARG;
    const pn_codec_outcome_layout_t *l = &codec->outcome;
    const pn_outcome_t *o = &rec->outcome;
    bool no_reason = o->reason == PN_REASON_NONE;
    pn_codec_slot_t v[OUT__SLOTS] = {
        [OUT_COMMAND_ID] = {.str = rec->command_id},
        [OUT_TYPE] = {.num = l->type_symbol[o->command_type]},
        [OUT_ORDER] = {.str = rec->order_id},
        [OUT_SKU] = {.str = rec->sku_id},
        [OUT_NODE] = {.str = rec->node_id},
        [OUT_STATUS] = {.num = l->status_symbol[o->status]},
        [OUT_REASON] = {.num = no_reason ? -1 : l->reason_symbol[o->reason],
                        .null = no_reason},
        [OUT_DUPLICATE] = {.num = o->duplicate},
        [OUT_VERSION] = {.num = o->version},
        [OUT_ON_HAND] = {.num = o->on_hand},
        [OUT_RESERVED] = {.num = o->reserved},
        [OUT_AVAILABLE] = {.num = o->available},
        [OUT_AT] = {.num = rec->at_ms}};
    return pn_codec__encode_slots(codec, PN_SCHEMA_COMMAND_OUTCOME, v, NULL, 0,
                                  out);
}


pn_err_t pn_codec_encode_outcome(pn_codec_t *codec, const pn_command_t *cmd,
                                 const pn_outcome_t *outcome, pn_buf_t *out) {
    if (!cmd || !outcome)
        return PN_ERR_INVALID_ARG;
    pn_outcome_record_t rec = {
        .outcome = *outcome,
        .command_id = cmd->id,
        .order_id = cmd->type == PN_CMD_UPDATE ? PN_STR_NULL : cmd->order_id,
        .sku_id = cmd->sku_id,
        .node_id = cmd->node_id,
        .at_ms = cmd->at_ms};
    return pn_codec_encode_outcome_record(codec, &rec, out);
}

/* Maps an Avro enum symbol index back through table (n entries); -1 if
 * no entry has it. */
static int unsymbol(const int *table, int n, int symbol_index) {
    for (int i = 0; i < n; i++)
        if (table[i] == symbol_index)
            return i;
    return -1;
}

/* The outcome's enums from their symbol indexes (reason_sym -1 for
 * null); EINVAL for a symbol Panther has no value of. */
static int outcome_enums(const pn_codec_outcome_layout_t *l, int type_sym,
                         int status_sym, int reason_sym, pn_outcome_t *o) {
    int type = unsymbol(l->type_symbol, PN_CMD__COUNT, type_sym);
    int status = unsymbol(l->status_symbol, 2, status_sym);
    int reason = reason_sym < 0 ? PN_REASON_NONE
                                : unsymbol(l->reason_symbol,
                                           PN_REASON__COUNT, reason_sym);
    if (type < 0 || status < 0 || (reason_sym >= 0 && reason < 0))
        return EINVAL;
    o->command_type = (pn_command_type_t)type;
    o->status = (pn_status_t)status;
    o->reason = (pn_reason_t)reason;
    return 0;
}

/* Copies the decoded strings into one block owned by the record, which
 * then becomes *rec. */
static pn_err_t finish_outcome(pn_outcome_record_t *r, pn_str_t command_id,
                               pn_str_t order, pn_str_t sku, pn_str_t node,
                               pn_outcome_record_t *rec, char *errstr,
                               size_t errstr_size) {
    pn_codec_strs_t strs = {.n = 0};
    pn_codec__strs_add(&strs, &r->command_id, command_id);
    pn_codec__strs_add(&strs, &r->order_id, order);
    pn_codec__strs_add(&strs, &r->sku_id, sku);
    pn_codec__strs_add(&strs, &r->node_id, node);
    if (pn_codec__strs_commit(&strs, &r->storage))
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "CommandOutcome: out of memory");
    *rec = *r;
    return PN_ERR_OK;
}

/* The outcome in the slots read. */
static pn_err_t extract_outcome_slots(pn_codec_t *codec,
                                      const pn_codec_slot_t *v,
                                      pn_outcome_record_t *rec, char *errstr,
                                      size_t errstr_size) {
    pn_outcome_record_t r = {.at_ms = v[OUT_AT].num};
    pn_outcome_t *o = &r.outcome;
    int reason_sym = v[OUT_REASON].null ? -1 : (int)v[OUT_REASON].num;
    if (outcome_enums(&codec->outcome, (int)v[OUT_TYPE].num,
                      (int)v[OUT_STATUS].num, reason_sym, o))
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "CommandOutcome: reading decoded fields: an enum "
                          "symbol Panther does not know");
    o->duplicate = v[OUT_DUPLICATE].num != 0;
    o->version = v[OUT_VERSION].num;
    o->on_hand = v[OUT_ON_HAND].num;
    o->reserved = v[OUT_RESERVED].num;
    o->available = v[OUT_AVAILABLE].num;
    return finish_outcome(&r, v[OUT_COMMAND_ID].str, v[OUT_ORDER].str,
                          v[OUT_SKU].str, v[OUT_NODE].str, rec, errstr,
                          errstr_size);
}

pn_err_t pn_codec_decode_outcome(pn_codec_t *codec, const void *data,
                                 size_t len, pn_outcome_record_t *rec,
                                 char *errstr, size_t errstr_size) {
    if (rec)
        memset(rec, 0, sizeof *rec);
    if (!codec || !rec)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "decode outcome: missing argument");
    pn_codec_slot_t v[OUT__SLOTS] = {{.num = 0}};
    pn_err_t err = pn_codec__read_plain(codec, PN_SCHEMA_COMMAND_OUTCOME,
                                        data, len, v, errstr, errstr_size);
    return err ? err
               : extract_outcome_slots(codec, v, rec, errstr, errstr_size);
}

/* --- InventorySnapshot ---------------------------------------------------- */

static int fill_reservations(pn_codec_t *codec, avro_value_t *v,
                             const pn_state_t *state) {
    const pn_codec_snapshot_layout_t *l = &codec->snapshot;
    avro_value_t arr, item;
    int rc = avro_value_get_by_index(v, (size_t)l->reservations, &arr, NULL);
    if (!rc)
        rc = avro_value_reset(&arr);
    for (size_t i = 0; !rc && i < state->n_reservations; i++) {
        const pn_reservation_t *r = &state->reservations[i];
        rc = avro_value_append(&arr, &item, NULL);
        if (!rc)
            rc = pn_codec__set_str(codec, &item, l->item_order_id,
                                   (pn_str_t){r->order_id, r->order_id_len});
        if (!rc)
            rc = pn_codec__set_long(&item, l->item_quantity, r->quantity);
    }
    return rc;
}

static int fill_snapshot(pn_codec_t *codec, pn_str_t sku_id, pn_str_t node_id,
                         const pn_state_t *state, int64_t updated_at_ms) {
    const pn_codec_snapshot_layout_t *l = &codec->snapshot;
    avro_value_t *v = &codec->recs[PN_SCHEMA_INVENTORY_SNAPSHOT].value;
    int rc = pn_codec__set_str(codec, v, l->sku_id, sku_id);
    if (!rc)
        rc = pn_codec__set_str(codec, v, l->node_id, node_id);
    if (!rc)
        rc = pn_codec__set_long(v, l->version, state->version);
    if (!rc)
        rc = pn_codec__set_long(v, l->on_hand, state->on_hand);
    if (!rc)
        rc = pn_codec__set_long(v, l->reserved, state->reserved);
    if (!rc)
        rc = pn_codec__set_long(v, l->available, pn_state_available(state));
    if (!rc)
        rc = fill_reservations(codec, v, state);
    if (!rc)
        rc = pn_codec__set_long(v, l->updated_at, updated_at_ms);
    return rc;
}

pn_err_t pn_codec_encode_snapshot(pn_codec_t *codec, pn_str_t sku_id,
                                  pn_str_t node_id, const pn_state_t *state,
                                  int64_t updated_at_ms, pn_buf_t *out) {
    if (!codec || !state || !out)
        return PN_ERR_INVALID_ARG;
    int rc = fill_snapshot(codec, sku_id, node_id, state, updated_at_ms);
    if (rc)
        return pn_codec__errno(rc);
    return pn_codec__write(
        codec, &codec->recs[PN_SCHEMA_INVENTORY_SNAPSHOT].value, NULL, 0, out);
}

/* Rebuilds the reservation table through the domain's own helper, refusing
 * entries that no state could hold. */
static pn_err_t extract_reservations(pn_codec_t *codec, avro_value_t *v,
                                     pn_state_t *state, char *errstr,
                                     size_t errstr_size) {
    const pn_codec_snapshot_layout_t *l = &codec->snapshot;
    avro_value_t arr, item;
    size_t n = 0;
    int rc = avro_value_get_by_index(v, (size_t)l->reservations, &arr, NULL);
    if (!rc)
        rc = avro_value_get_size(&arr, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        pn_str_t order;
        int64_t q = 0;
        rc = avro_value_get_by_index(&arr, i, &item, NULL);
        if (!rc)
            rc = pn_codec__get_str(&item, l->item_order_id, &order);
        if (!rc)
            rc = pn_codec__get_long(&item, l->item_quantity, &q);
        if (rc)
            break;
        if (q <= 0 || pn_state_held(state, order) != 0 ||
            state->reserved > INT64_MAX - q)
            return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                              "InventorySnapshot: reservation %zu (order "
                              "\"%.*s\", quantity %lld) is invalid or repeated",
                              i, (int)(order.len > 64 ? 64 : order.len),
                              order.ptr, (long long)q);
        pn_err_t err = pn_state_adjust_reservation(state, order, q);
        if (err)
            return pn_err_set(errstr, errstr_size, err,
                              "InventorySnapshot: rebuilding reservations");
    }
    if (rc)
        return pn_codec__avro_fail(errstr, errstr_size, pn_codec__errno(rc),
                                   "InventorySnapshot: reading reservations");
    return PN_ERR_OK;
}

/* The scalar fields, checked against each other and the reservations. */
static pn_err_t extract_snapshot_numbers(pn_codec_t *codec, avro_value_t *v,
                                         pn_state_t *state,
                                         int64_t *updated_at_ms, char *errstr,
                                         size_t errstr_size) {
    const pn_codec_snapshot_layout_t *l = &codec->snapshot;
    int64_t version = 0, on_hand = 0, reserved = 0, available = 0, at = 0;
    int rc = pn_codec__get_long(v, l->version, &version);
    if (!rc)
        rc = pn_codec__get_long(v, l->on_hand, &on_hand);
    if (!rc)
        rc = pn_codec__get_long(v, l->reserved, &reserved);
    if (!rc)
        rc = pn_codec__get_long(v, l->available, &available);
    if (!rc)
        rc = pn_codec__get_long(v, l->updated_at, &at);
    if (rc)
        return pn_codec__avro_fail(errstr, errstr_size, pn_codec__errno(rc),
                                   "InventorySnapshot: reading fields");
    int64_t expected_available;
    if (version < 0 || on_hand < 0 || reserved != state->reserved ||
        __builtin_sub_overflow(on_hand, reserved, &expected_available) ||
        available != expected_available)
        return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                          "InventorySnapshot: inconsistent numbers (version "
                          "%lld, onHand %lld, reserved %lld but reservations "
                          "sum to %lld, available %lld)",
                          (long long)version, (long long)on_hand,
                          (long long)reserved, (long long)state->reserved,
                          (long long)available);
    state->version = version;
    state->on_hand = on_hand;
    if (updated_at_ms)
        *updated_at_ms = at;
    return PN_ERR_OK;
}

static pn_err_t copy_id(avro_value_t *v, int idx, char **dst) {
    pn_str_t s;
    if (!dst)
        return PN_ERR_OK;
    if (pn_codec__get_str(v, idx, &s))
        return PN_ERR_INTERNAL;
    *dst = malloc(s.len + 1);
    if (!*dst)
        return PN_ERR_NOMEM;
    memcpy(*dst, s.ptr, s.len);
    (*dst)[s.len] = '\0';
    return PN_ERR_OK;
}

pn_err_t pn_codec_decode_snapshot(pn_codec_t *codec, const void *data,
                                  size_t len, pn_state_t *state,
                                  char **sku_id, char **node_id,
                                  int64_t *updated_at_ms, char *errstr,
                                  size_t errstr_size) {
    if (sku_id)
        *sku_id = NULL;
    if (node_id)
        *node_id = NULL;
    if (!codec || !state)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "decode snapshot: missing argument");
    pn_state_clear(state);
    avro_value_t *v = &codec->recs[PN_SCHEMA_INVENTORY_SNAPSHOT].value;
    pn_err_t err = pn_codec__read_plain(codec, PN_SCHEMA_INVENTORY_SNAPSHOT,
                                        data, len, NULL, errstr,
                                        errstr_size);
    if (err || (err = extract_reservations(codec, v, state, errstr,
                                           errstr_size)) ||
        (err = extract_snapshot_numbers(codec, v, state, updated_at_ms,
                                        errstr, errstr_size)))
        goto fail;
    if ((err = copy_id(v, codec->snapshot.sku_id, sku_id)) ||
        (err = copy_id(v, codec->snapshot.node_id, node_id))) {
        pn_err_set(errstr, errstr_size, err, "InventorySnapshot: copying ids");
        goto fail;
    }
    return PN_ERR_OK;
fail:
    pn_state_clear(state);
    if (sku_id) {
        free(*sku_id);
        *sku_id = NULL;
    }
    if (node_id) {
        free(*node_id);
        *node_id = NULL;
    }
    return err;
}
