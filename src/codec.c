/*
 * Codec lifecycle and the plumbing shared by the record codecs: our four
 * schemas parsed once from pn_schema_json() with a reusable Avro C value
 * each, the field positions looked up by name (so the code never depends on
 * field order), field setters and getters, and plain Avro binary I/O through
 * one memory reader and one memory writer that are re-pointed per call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "avro_alloc.h"
#include "codec_internal.h"

static const char *const schema_names[PN_SCHEMA__COUNT] = {
    "Command", "InventoryEvent", "CommandOutcome", "InventorySnapshot"};

static const char *const command_records[PN_CMD__COUNT] = {
    "UpdateInventory", "ReserveInventory", "CancelReservation", "ShipOrder"};

pn_err_t pn_codec__avro_fail(char *errstr, size_t errstr_size, pn_err_t err,
                             const char *context) {
    return pn_err_set(errstr, errstr_size, err, "%s: %s", context,
                      avro_strerror());
}

pn_err_t pn_codec__errno(int rc) {
    switch (rc) {
    case 0:
        return PN_ERR_OK;
    case ENOMEM:
        return PN_ERR_NOMEM;
    case E2BIG:
        return PN_ERR_TOO_LARGE;
    case EINVAL:
        return PN_ERR_INVALID_ARG;
    default:
        return PN_ERR_INTERNAL;
    }
}

/* --- layouts ------------------------------------------------------------ */

typedef struct layout_ctx {
    char *errstr;
    size_t errstr_size;
    pn_err_t err;
} layout_ctx_t;

/* Index of a field by name; a missing required field fails the codec, since
 * it means schemas/ and this code disagree. Searched by hand because Avro
 * C's lookup writes its process-wide error buffer on a miss, and codecs are
 * created on several threads at once. */
static int field(layout_ctx_t *lc, avro_schema_t record, const char *name,
                 bool required) {
    int idx = -1;
    size_t n = is_avro_record(record) ? avro_schema_record_size(record) : 0;
    for (size_t i = 0; i < n && idx < 0; i++)
        if (strcmp(avro_schema_record_field_name(record, (int)i), name) == 0)
            idx = (int)i;
    if (idx < 0 && required && !lc->err)
        lc->err = pn_err_set(lc->errstr, lc->errstr_size, PN_ERR_INTERNAL,
                             "schema %s has no field \"%s\"",
                             avro_schema_name(record), name);
    return idx;
}

static avro_schema_t field_schema(avro_schema_t record, int idx) {
    return idx < 0 ? NULL : avro_schema_record_field_get_by_index(record, idx);
}

/* The branch of a union that is the named record or enum, or one of type. */
static int branch_of(layout_ctx_t *lc, avro_schema_t u, const char *name,
                     avro_type_t type) {
    size_t n = is_avro_union(u) ? avro_schema_union_size(u) : 0;
    for (size_t i = 0; i < n; i++) {
        avro_schema_t b = avro_schema_union_branch(u, (int)i);
        if (name ? is_avro_named_type(b) &&
                       strcmp(avro_schema_name(b), name) == 0
                 : avro_typeof(b) == type)
            return (int)i;
    }
    if (!lc->err)
        lc->err = pn_err_set(lc->errstr, lc->errstr_size, PN_ERR_INTERNAL,
                             "schema: no union branch %s",
                             name ? name : avro_schema_type_name(u));
    return -1;
}

static int symbol(layout_ctx_t *lc, avro_schema_t e, const char *name) {
    int idx = is_avro_enum(e) ? avro_schema_enum_get_by_name(e, name) : -1;
    if (idx < 0 && !lc->err)
        lc->err = pn_err_set(lc->errstr, lc->errstr_size, PN_ERR_INTERNAL,
                             "schema: no enum symbol %s", name);
    return idx;
}

static void layout_commands(pn_codec_t *codec, layout_ctx_t *lc) {
    avro_schema_t u = codec->recs[PN_SCHEMA_COMMAND].schema;
    size_t n = is_avro_union(u) ? avro_schema_union_size(u) : 0;
    codec->branch_type = calloc(n ? n : 1, sizeof *codec->branch_type);
    if (!codec->branch_type) {
        lc->err = PN_ERR_NOMEM;
        return;
    }
    codec->n_branch_types = n;
    for (size_t i = 0; i < n; i++)
        codec->branch_type[i] = PN_CMD__COUNT;
    for (int t = 0; t < PN_CMD__COUNT && !lc->err; t++) {
        pn_codec_cmd_layout_t *l = &codec->cmd[t];
        l->branch = branch_of(lc, u, command_records[t], AVRO_RECORD);
        if (l->branch < 0)
            return;
        codec->branch_type[l->branch] = (pn_command_type_t)t;
        avro_schema_t r = avro_schema_union_branch(u, l->branch);
        l->id = field(lc, r, "id", true);
        l->order_id = field(lc, r, "orderId", t != PN_CMD_UPDATE);
        l->sku_id = field(lc, r, "skuId", true);
        l->node_id = field(lc, r, "fulfillmentNodeId", true);
        l->quantity = field(lc, r, "quantity", true);
        l->by = field(lc, r, "by", true);
        l->at = field(lc, r, "at", true);
    }
}

static void layout_event(pn_codec_t *codec, layout_ctx_t *lc) {
    avro_schema_t r = codec->recs[PN_SCHEMA_INVENTORY_EVENT].schema;
    pn_codec_event_layout_t *l = &codec->event;
    l->sku_id = field(lc, r, "skuId", true);
    l->node_id = field(lc, r, "fulfillmentNodeId", true);
    l->version = field(lc, r, "version", true);
    l->command_id = field(lc, r, "commandId", true);
    l->by = field(lc, r, "by", true);
    l->at = field(lc, r, "at", true);
    l->event = field(lc, r, "event", true);
    avro_schema_t u = field_schema(r, l->event);
    for (int t = 0; t < PN_EVT__COUNT && !lc->err; t++) {
        int b = branch_of(lc, u, pn_event_type_name((pn_event_type_t)t),
                          AVRO_RECORD);
        if (b < 0)
            return;
        avro_schema_t er = avro_schema_union_branch(u, b);
        l->types[t].branch = b;
        l->types[t].quantity = field(lc, er, "quantity", true);
        l->types[t].order_id = field(lc, er, "orderId", t != PN_EVT_UPDATED);
        l->types[t].previous_quantity =
            field(lc, er, "previousQuantity", t == PN_EVT_UPDATED);
    }
}

static void layout_outcome_symbols(pn_codec_outcome_layout_t *l,
                                   avro_schema_t r, layout_ctx_t *lc) {
    avro_schema_t types = field_schema(r, l->command_type);
    avro_schema_t statuses = field_schema(r, l->status);
    avro_schema_t reasons = field_schema(r, l->reason);
    for (int t = 0; t < PN_CMD__COUNT; t++)
        l->type_symbol[t] =
            symbol(lc, types, pn_command_type_name((pn_command_type_t)t));
    l->status_symbol[PN_STATUS_ACCEPTED] =
        symbol(lc, statuses, pn_status_name(PN_STATUS_ACCEPTED));
    l->status_symbol[PN_STATUS_REJECTED] =
        symbol(lc, statuses, pn_status_name(PN_STATUS_REJECTED));
    int b = branch_of(lc, reasons, NULL, AVRO_ENUM);
    if (b < 0)
        return;
    for (int i = 0; i < PN_REASON__COUNT; i++)
        l->reason_symbol[i] = symbol(lc, avro_schema_union_branch(reasons, b),
                                     pn_reason_name((pn_reason_t)i));
}

static void layout_outcome(pn_codec_t *codec, layout_ctx_t *lc) {
    avro_schema_t r = codec->recs[PN_SCHEMA_COMMAND_OUTCOME].schema;
    pn_codec_outcome_layout_t *l = &codec->outcome;
    l->command_id = field(lc, r, "commandId", true);
    l->command_type = field(lc, r, "commandType", true);
    l->order_id = field(lc, r, "orderId", true);
    l->sku_id = field(lc, r, "skuId", true);
    l->node_id = field(lc, r, "fulfillmentNodeId", true);
    l->status = field(lc, r, "status", true);
    l->reason = field(lc, r, "reason", true);
    l->duplicate = field(lc, r, "duplicate", true);
    l->version = field(lc, r, "version", true);
    l->on_hand = field(lc, r, "onHand", true);
    l->reserved = field(lc, r, "reserved", true);
    l->available = field(lc, r, "available", true);
    l->at = field(lc, r, "at", true);
    if (!lc->err)
        layout_outcome_symbols(l, r, lc);
}

static void layout_snapshot(pn_codec_t *codec, layout_ctx_t *lc) {
    avro_schema_t r = codec->recs[PN_SCHEMA_INVENTORY_SNAPSHOT].schema;
    pn_codec_snapshot_layout_t *l = &codec->snapshot;
    l->sku_id = field(lc, r, "skuId", true);
    l->node_id = field(lc, r, "fulfillmentNodeId", true);
    l->version = field(lc, r, "version", true);
    l->on_hand = field(lc, r, "onHand", true);
    l->reserved = field(lc, r, "reserved", true);
    l->available = field(lc, r, "available", true);
    l->reservations = field(lc, r, "reservations", true);
    l->updated_at = field(lc, r, "updatedAt", true);
    avro_schema_t a = field_schema(r, l->reservations);
    avro_schema_t item = is_avro_array(a) ? avro_schema_array_items(a) : NULL;
    if (!is_avro_record(item)) {
        if (!lc->err)
            lc->err = pn_err_set(lc->errstr, lc->errstr_size, PN_ERR_INTERNAL,
                                 "schema: reservations is not an array of "
                                 "records");
        return;
    }
    l->item_order_id = field(lc, item, "orderId", true);
    l->item_quantity = field(lc, item, "quantity", true);
}

static pn_err_t init_layouts(pn_codec_t *codec, char *errstr,
                             size_t errstr_size) {
    layout_ctx_t lc = {errstr, errstr_size, PN_ERR_OK};
    layout_commands(codec, &lc);
    if (!lc.err)
        layout_event(codec, &lc);
    if (!lc.err)
        layout_outcome(codec, &lc);
    if (!lc.err)
        layout_snapshot(codec, &lc);
    return lc.err;
}

/* --- lifecycle ------------------------------------------------------------ */

static pn_err_t init_rec(pn_codec_rec_t *rec, pn_schema_id_t which,
                         char *errstr, size_t errstr_size) {
    const char *json = pn_schema_json(which);
    char context[96];
    snprintf(context, sizeof context, "parsing schemas/%s.avsc",
             schema_names[which]);
    if (avro_schema_from_json_length(json, strlen(json), &rec->schema))
        return pn_codec__avro_fail(errstr, errstr_size, PN_ERR_INTERNAL,
                                   context);
    rec->iface = avro_generic_class_from_schema(rec->schema);
    if (!rec->iface || avro_generic_value_new(rec->iface, &rec->value))
        return pn_codec__avro_fail(errstr, errstr_size, PN_ERR_NOMEM, context);
    return PN_ERR_OK;
}

static void free_rec(pn_codec_rec_t *rec) {
    if (rec->value.self)
        avro_value_decref(&rec->value);
    if (rec->iface)
        avro_value_iface_decref(rec->iface);
    if (rec->schema)
        avro_schema_decref(rec->schema);
}

static pn_err_t init_io(pn_codec_t *codec, char *errstr, size_t errstr_size) {
    static const char empty[1];
    codec->reader = avro_reader_memory(empty, 0);
    codec->writer = avro_writer_memory(empty, 0);
    if (!codec->reader || !codec->writer)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "codec: out of memory");
    return pn_schema_fingerprint(pn_schema_json(PN_SCHEMA_COMMAND),
                                 &codec->command_fp, NULL, errstr,
                                 errstr_size);
}

pn_err_t pn_codec_new(const pn_codec_config_t *conf, pn_codec_t **codecp,
                      char *errstr, size_t errstr_size) {
    if (!codecp)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "codec: no output handle");
    *codecp = NULL;
    if (conf && conf->max_record_bytes > PN_CODEC_LIMIT_MAX_RECORD_BYTES)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "codec: a record limit of %zu bytes is over the "
                          "largest allowed, %zu",
                          conf->max_record_bytes,
                          (size_t)PN_CODEC_LIMIT_MAX_RECORD_BYTES);
    pn_avro_alloc_install();
    pn_codec_t *codec = calloc(1, sizeof *codec);
    if (!codec)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "codec: out of memory");
    codec->max_record_bytes = conf && conf->max_record_bytes
                                  ? conf->max_record_bytes
                                  : PN_CODEC_DEFAULT_MAX_RECORD_BYTES;
    codec->lookup = conf ? conf->lookup : NULL;
    codec->lookup_opaque = conf ? conf->lookup_opaque : NULL;
    pn_buf_init(&codec->scratch, codec->max_record_bytes + 1);
    pn_err_t err = PN_ERR_OK;
    for (int i = 0; i < PN_SCHEMA__COUNT && !err; i++)
        err = init_rec(&codec->recs[i], (pn_schema_id_t)i, errstr,
                       errstr_size);
    if (err || (err = init_layouts(codec, errstr, errstr_size)) ||
        (err = init_io(codec, errstr, errstr_size)) ||
        (err = pn_codec__writers_init(codec, errstr, errstr_size)))
        goto fail;
    if (!pn_codec__plan_records(codec) || !pn_codec__plan_command(codec)) {
        err = pn_err_set(errstr, errstr_size, PN_ERR_INTERNAL,
                         "codec: a schema in schemas/ has a field or type "
                         "that the codec's plans do not map "
                         "(src/codec_direct.c)");
        goto fail;
    }
    codec->use_plans = true;
    *codecp = codec;
    return PN_ERR_OK;
fail:
    pn_codec_free(codec);
    return err;
}

void pn_codec_free(pn_codec_t *codec) {
    if (!codec)
        return;
    pn_codec__writers_free(codec); /* resolvers point at our values */
    for (int i = 0; i < PN_SCHEMA__COUNT; i++) {
        free_rec(&codec->recs[i]);
        pn_codec__plan_free(&codec->plans[i]);
    }
    if (codec->reader)
        avro_reader_free(codec->reader);
    if (codec->writer)
        avro_writer_free(codec->writer);
    pn_buf_free(&codec->scratch);
    free(codec->branch_type);
    free(codec);
}

void pn_codec__use_plans(pn_codec_t *codec, bool on) {
    codec->use_plans = on;
}

/* --- plain binary I/O ----------------------------------------------------- */

pn_err_t pn_codec__read_value(pn_codec_t *codec, avro_value_t *target,
                              const uint8_t *data, size_t len, pn_err_t fail,
                              char *errstr, size_t errstr_size) {
    avro_reader_memory_set_source(codec->reader, (const char *)data,
                                  (int64_t)len);
    int rc = avro_value_read(codec->reader, target);
    if (rc == ENOMEM)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "decoding: out of memory");
    if (rc)
        return pn_codec__avro_fail(errstr, errstr_size, fail,
                                   "Avro C could not read the validated "
                                   "record");
    return PN_ERR_OK;
}

pn_err_t pn_codec__read_plain(pn_codec_t *codec, pn_schema_id_t which,
                              const void *data, size_t len,
                              pn_codec_slot_t *slots, char *errstr,
                              size_t errstr_size) {
    const char *name = schema_names[which];
    if (len > codec->max_record_bytes)
        return pn_err_set(errstr, errstr_size, PN_ERR_TOO_LARGE,
                          "%s of %zu bytes exceeds the limit of %zu bytes",
                          name, len, codec->max_record_bytes);
    if (len == 0)
        return pn_err_set(errstr, errstr_size, PN_ERR_TRUNCATED,
                          "%s: empty input", name);
    if (!data)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "%s: no input", name);
    pn_codec_rec_t *rec = &codec->recs[which];
    const pn_codec_plan_t *plan = slots ? pn_codec__plan(codec, which) : NULL;
    if (plan)
        return pn_codec__plan_decode(plan, data, len, slots)
                   ? PN_ERR_OK
                   : pn_codec__plan_refused(rec->schema, data, len, 0, name,
                                            errstr, errstr_size);
    char why[256];
    pn_err_t err = pn_codec__scan(rec->schema, data, len, 0, NULL, why,
                                  sizeof why);
    if (err)
        return pn_err_set(errstr, errstr_size, err, "%s: %s", name, why);
    err = pn_codec__read_value(codec, &rec->value, data, len, PN_ERR_INTERNAL,
                               errstr, errstr_size);
    int rc = err || !slots ? 0
                           : pn_codec__plan_from_value(&codec->plans[which],
                                                       &rec->value, slots);
    return rc ? pn_codec__avro_fail(errstr, errstr_size, pn_codec__errno(rc),
                                    name)
              : err;
}

/* One pass over the value when it fits in the room the buffer already has
 * (the common case: the buffers are reused), instead of sizing it first
 * and writing it second. The room is capped by both limits, so a value
 * that does not fit takes the sizing path, which reports them; the bytes
 * written are the same either way. */
static bool write_in_place(pn_codec_t *codec, avro_value_t *value,
                           const uint8_t *prefix, size_t prefix_len,
                           pn_buf_t *out) {
    size_t room = out->cap - out->len;
    if (out->max - out->len < room)
        room = out->max - out->len;
    if (!out->data || room <= prefix_len ||
        prefix_len > codec->max_record_bytes)
        return false;
    room -= prefix_len;
    if (room > codec->max_record_bytes - prefix_len)
        room = codec->max_record_bytes - prefix_len;
    uint8_t *dst = out->data + out->len;
    avro_writer_memory_set_dest(codec->writer, (const char *)dst + prefix_len,
                                (int64_t)room);
    if (avro_value_write(codec->writer, value))
        return false; /* ENOSPC, most likely: size it and retry */
    if (prefix_len)
        memcpy(dst, prefix, prefix_len);
    out->len += prefix_len + (size_t)avro_writer_tell(codec->writer);
    return true;
}

pn_err_t pn_codec__open_record(const pn_codec_t *codec, const uint8_t *prefix,
                               size_t prefix_len, size_t body_size,
                               pn_buf_t *out, uint8_t **body) {
    if (prefix_len > codec->max_record_bytes ||
        body_size > codec->max_record_bytes - prefix_len)
        return PN_ERR_TOO_LARGE;
    pn_err_t err = pn_buf_reserve(out, prefix_len + body_size);
    if (err)
        return err;
    uint8_t *dst = out->data + out->len;
    if (prefix_len)
        memcpy(dst, prefix, prefix_len);
    *body = dst + prefix_len;
    return PN_ERR_OK;
}

pn_err_t pn_codec__encode_slots(pn_codec_t *codec, pn_schema_id_t which,
                                const pn_codec_slot_t *slots,
                                const uint8_t *prefix, size_t prefix_len,
                                pn_buf_t *out) {
    const pn_codec_plan_t *plan = pn_codec__plan(codec, which);
    if (plan)
        return pn_codec__plan_encode(codec, plan, slots, prefix, prefix_len,
                                     out);
    avro_value_t *value = &codec->recs[which].value;
    int rc = pn_codec__plan_to_value(codec, &codec->plans[which], slots, value);
    return rc ? pn_codec__errno(rc)
              : pn_codec__write(codec, value, prefix, prefix_len, out);
}

pn_err_t pn_codec__write(pn_codec_t *codec, avro_value_t *value,
                         const uint8_t *prefix, size_t prefix_len,
                         pn_buf_t *out) {
    if (write_in_place(codec, value, prefix, prefix_len, out))
        return PN_ERR_OK;
    size_t size;
    if (avro_value_sizeof(value, &size))
        return PN_ERR_INTERNAL;
    uint8_t *body;
    pn_err_t err = pn_codec__open_record(codec, prefix, prefix_len, size, out,
                                         &body);
    if (err)
        return err;
    avro_writer_memory_set_dest(codec->writer, (const char *)body,
                                (int64_t)size);
    if (avro_value_write(codec->writer, value) ||
        avro_writer_tell(codec->writer) != (int64_t)size)
        return PN_ERR_INTERNAL;
    out->len += prefix_len + size;
    return PN_ERR_OK;
}

/* --- field setters -------------------------------------------------------- */

/* Avro C copies size bytes including a NUL, so views are copied to a
 * NUL-terminated scratch buffer first (reused across calls). */
int pn_codec__set_string(pn_codec_t *codec, avro_value_t *f, pn_str_t s) {
    if (s.len && !s.ptr)
        return EINVAL;
    pn_buf_reset(&codec->scratch);
    pn_err_t err = pn_buf_reserve(&codec->scratch, s.len + 1);
    if (err)
        return err == PN_ERR_NOMEM ? ENOMEM : E2BIG;
    if (s.len)
        memcpy(codec->scratch.data, s.ptr, s.len);
    codec->scratch.data[s.len] = '\0';
    return avro_value_set_string_len(f, (const char *)codec->scratch.data,
                                     s.len + 1);
}

int pn_codec__set_str(pn_codec_t *codec, avro_value_t *rec, int idx,
                      pn_str_t s) {
    avro_value_t f;
    int rc = avro_value_get_by_index(rec, (size_t)idx, &f, NULL);
    return rc ? rc : pn_codec__set_string(codec, &f, s);
}

int pn_codec__set_long(avro_value_t *rec, int idx, int64_t v) {
    avro_value_t f;
    int rc = avro_value_get_by_index(rec, (size_t)idx, &f, NULL);
    return rc ? rc : avro_value_set_long(&f, v);
}

/* --- field getters -------------------------------------------------------- */

int pn_codec__get_string(avro_value_t *f, pn_str_t *s) {
    const char *p = NULL;
    size_t size = 0; /* Avro C counts the NUL terminator */
    int rc = avro_value_get_string(f, &p, &size);
    *s = rc ? PN_STR_NULL : (pn_str_t){p ? p : "", size ? size - 1 : 0};
    return rc;
}

int pn_codec__get_str(avro_value_t *rec, int idx, pn_str_t *s) {
    avro_value_t f;
    int rc = avro_value_get_by_index(rec, (size_t)idx, &f, NULL);
    return rc ? rc : pn_codec__get_string(&f, s);
}

int pn_codec__get_long(avro_value_t *rec, int idx, int64_t *v) {
    avro_value_t f;
    int rc = avro_value_get_by_index(rec, (size_t)idx, &f, NULL);
    return rc ? rc : avro_value_get_long(&f, v);
}

/* --- string blocks -------------------------------------------------------- */

void pn_codec__strs_add(pn_codec_strs_t *strs, pn_str_t *dst, pn_str_t src) {
    if (strs->n < sizeof strs->dst / sizeof *strs->dst) {
        strs->dst[strs->n] = dst;
        strs->src[strs->n] = src;
        strs->n++;
    }
}

pn_err_t pn_codec__strs_commit(pn_codec_strs_t *strs, void **storage) {
    size_t total = 1;
    for (size_t i = 0; i < strs->n; i++)
        if (strs->src[i].ptr)
            total += strs->src[i].len + 1;
    char *block = malloc(total);
    if (!block)
        return PN_ERR_NOMEM;
    char *p = block;
    for (size_t i = 0; i < strs->n; i++) {
        pn_str_t src = strs->src[i];
        if (!src.ptr) {
            *strs->dst[i] = PN_STR_NULL;
            continue;
        }
        if (src.len)
            memcpy(p, src.ptr, src.len);
        p[src.len] = '\0';
        *strs->dst[i] = (pn_str_t){p, src.len};
        p += src.len + 1;
    }
    *storage = block;
    return PN_ERR_OK;
}
