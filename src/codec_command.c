/*
 * Commands: the three framings of a commands-topic value, decoding through
 * the writer schema (resolved to ours when it differs), and encoding.
 *
 * Telling framings apart: 0xC3 0x01 cannot start plain Avro of Command (it
 * is a negative union index), so it always means single-object. 0x00 is
 * both the Confluent magic byte and the plain encoding of union branch 0
 * (UpdateInventory). The second byte decides: as Confluent it is the top
 * byte of the schema id, and registries hand out ids far below 2^24, so
 * 0x00 0x00 is Confluent framing; as plain Avro it is the length of the
 * command id, so anything else is read as a plain UpdateInventory when the
 * bytes are one, and as Confluent framing only when they are not and the
 * registry knows the id. A Confluent record with an unknown id is
 * therefore never misread as a plain command (it is UNKNOWN_SCHEMA), and a
 * plain UpdateInventory costs no registry lookup; the price is that a plain
 * UpdateInventory with an empty id, which the domain would reject anyway,
 * is reported as an unknown schema.
 */
#include <string.h>

#include "codec_internal.h"

#define CONFLUENT_MAGIC 0x00
#define CONFLUENT_HEADER 5
#define SINGLE_OBJECT_MAGIC0 0xC3
#define SINGLE_OBJECT_MAGIC1 0x01
#define SINGLE_OBJECT_HEADER 10

/** Where the Avro body of a record starts and which schema wrote it. */
typedef struct body {
    pn_codec_writer_t *writer;
    size_t start;
    bool scanned; /* already validated (plain fallback) */
    int64_t top_branch;
    pn_codec_slot_t *slots; /* for our own schema's plan (the caller's) */
    bool decoded;           /* slots already hold it (plain fallback) */
} body_t;

static uint64_t le64_read(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void le64_write(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static pn_err_t frame_single_object(pn_codec_t *codec, const uint8_t *data,
                                    size_t len, body_t *body, char *errstr,
                                    size_t errstr_size) {
    if (len < SINGLE_OBJECT_HEADER)
        return pn_err_set(errstr, errstr_size, PN_ERR_TRUNCATED,
                          "command: single-object header needs %d bytes, "
                          "input has %zu",
                          SINGLE_OBJECT_HEADER, len);
    uint64_t fp = le64_read(data + 2);
    body->writer = pn_codec__writer_by_fp(codec, fp);
    body->start = SINGLE_OBJECT_HEADER;
    if (!body->writer)
        return pn_err_set(errstr, errstr_size, PN_ERR_UNKNOWN_SCHEMA,
                          "command: single-object schema fingerprint "
                          "%016llx is not a known Command schema",
                          (unsigned long long)fp);
    return PN_ERR_OK;
}

static pn_err_t frame_confluent(pn_codec_t *codec, const uint8_t *data,
                                size_t len, body_t *body, char *errstr,
                                size_t errstr_size) {
    if (len < CONFLUENT_HEADER)
        return pn_err_set(errstr, errstr_size, PN_ERR_TRUNCATED,
                          "command: Confluent header needs %d bytes, input "
                          "has %zu",
                          CONFLUENT_HEADER, len);
    char why[640] = "";
    int32_t id = (int32_t)pn_be32_read(data + 1);
    pn_err_t err = pn_codec__writer_by_id(codec, id, &body->writer, why,
                                          sizeof why);
    body->start = CONFLUENT_HEADER;
    if (err)
        return pn_err_set(errstr, errstr_size, err, "command: %s", why);
    return PN_ERR_OK;
}

/* 0x00 then a non-zero byte: a plain UpdateInventory, unless the bytes are
 * not one and the registry knows them as a Confluent id. */
static pn_err_t frame_plain_update(pn_codec_t *codec, const uint8_t *data,
                                   size_t len, body_t *body, char *errstr,
                                   size_t errstr_size) {
    char why[256] = "";
    pn_err_t err = PN_ERR_OK;
    avro_schema_t ours = codec->recs[PN_SCHEMA_COMMAND].schema;
    const pn_codec_plan_t *plan = pn_codec__plan(codec, PN_SCHEMA_COMMAND);
    bool plain = plan ? pn_codec__plan_decode(plan, data, len, body->slots)
                      : !(err = pn_codec__scan(ours, data, len, 0,
                                               &body->top_branch, why,
                                               sizeof why));
    if (plain) {
        body->writer = codec->writers[0];
        body->start = 0;
        body->scanned = !plan;
        body->decoded = plan != NULL;
        return PN_ERR_OK;
    }
    if (len >= CONFLUENT_HEADER) {
        char id_why[640] = "";
        pn_err_t id_err = pn_codec__writer_by_id(
            codec, (int32_t)pn_be32_read(data + 1), &body->writer, id_why,
            sizeof id_why);
        body->start = CONFLUENT_HEADER;
        if (!id_err)
            return PN_ERR_OK;
        if (id_err != PN_ERR_UNKNOWN_SCHEMA) /* e.g. registry down */
            return pn_err_set(errstr, errstr_size, id_err, "command: %s",
                              id_why);
    }
    if (plan)
        return pn_codec__plan_refused(ours, data, len, 0, "command", errstr,
                                      errstr_size);
    return pn_err_set(errstr, errstr_size, err, "command: %s", why);
}

static pn_err_t select_framing(pn_codec_t *codec, const uint8_t *data,
                               size_t len, body_t *body, char *errstr,
                               size_t errstr_size) {
    if (data[0] == SINGLE_OBJECT_MAGIC0 && len >= 2 &&
        data[1] == SINGLE_OBJECT_MAGIC1)
        return frame_single_object(codec, data, len, body, errstr,
                                   errstr_size);
    if (data[0] == CONFLUENT_MAGIC && len >= 2 && data[1] != 0)
        return frame_plain_update(codec, data, len, body, errstr,
                                  errstr_size);
    if (data[0] == CONFLUENT_MAGIC)
        return frame_confluent(codec, data, len, body, errstr, errstr_size);
    body->writer = codec->writers[0];
    return PN_ERR_OK;
}

/* Copies the decoded strings into one block owned by the command, which
 * then becomes *cmd. */
static pn_err_t finish_command(pn_command_t *c, pn_str_t id, pn_str_t order,
                               pn_str_t sku, pn_str_t node, pn_str_t by,
                               pn_command_t *cmd, char *errstr,
                               size_t errstr_size) {
    pn_codec_strs_t strs = {.n = 0};
    pn_codec__strs_add(&strs, &c->id, id);
    pn_codec__strs_add(&strs, &c->order_id, order);
    pn_codec__strs_add(&strs, &c->sku_id, sku);
    pn_codec__strs_add(&strs, &c->node_id, node);
    pn_codec__strs_add(&strs, &c->by, by);
    if (pn_codec__strs_commit(&strs, &c->storage))
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "command: out of memory");
    *cmd = *c;
    return PN_ERR_OK;
}

static pn_err_t no_known_branch(char *errstr, size_t errstr_size) {
    return pn_err_set(errstr, errstr_size, PN_ERR_INTERNAL,
                      "command: decoded union has no known branch");
}

/* --- the direct plan of our own Command schema ---------------------------- */

enum {
    CMD_BRANCH, CMD_ID, CMD_ORDER, CMD_SKU, CMD_NODE, CMD_QUANTITY, CMD_BY,
    CMD_AT, CMD__SLOTS
};

static const pn_codec_binding_t command_bindings[] = {
    {"id", CMD_ID, PN_CODEC_CLASS_STR},
    {"orderId", CMD_ORDER, PN_CODEC_CLASS_STR},
    {"skuId", CMD_SKU, PN_CODEC_CLASS_STR},
    {"fulfillmentNodeId", CMD_NODE, PN_CODEC_CLASS_STR},
    {"quantity", CMD_QUANTITY, PN_CODEC_CLASS_INT},
    {"by", CMD_BY, PN_CODEC_CLASS_STR},
    {"at", CMD_AT, PN_CODEC_CLASS_LONG}};

bool pn_codec__plan_command(pn_codec_t *codec) {
    return pn_codec__plan_compile(
        &codec->plans[PN_SCHEMA_COMMAND], codec->recs[PN_SCHEMA_COMMAND].schema,
        command_bindings, sizeof command_bindings / sizeof *command_bindings,
        CMD__SLOTS, CMD_BRANCH);
}

/* The command in the slots read. Only the fields of its branch count:
 * the other slots may hold what an earlier attempt read. */
static pn_err_t command_from_slots(pn_codec_t *codec, const pn_codec_slot_t *v,
                                   pn_command_t *cmd, char *errstr,
                                   size_t errstr_size) {
    int64_t d = v[CMD_BRANCH].num;
    if (d < 0 || (size_t)d >= codec->n_branch_types ||
        codec->branch_type[d] == PN_CMD__COUNT)
        return no_known_branch(errstr, errstr_size);
    pn_command_t c = {.type = codec->branch_type[d],
                      .has_quantity = !v[CMD_QUANTITY].null,
                      .quantity = (int32_t)v[CMD_QUANTITY].num,
                      .at_ms = v[CMD_AT].num};
    pn_str_t order = codec->cmd[c.type].order_id >= 0 ? v[CMD_ORDER].str
                                                      : PN_STR_NULL;
    return finish_command(&c, v[CMD_ID].str, order, v[CMD_SKU].str,
                          v[CMD_NODE].str, v[CMD_BY].str, cmd, errstr,
                          errstr_size);
}

static const char *branch_name(avro_schema_t u, int64_t idx) {
    avro_schema_t b = avro_schema_union_branch(u, (int)idx);
    return is_avro_named_type(b) ? avro_schema_name(b)
                                 : avro_schema_type_name(b);
}

/* Bytes of the (already validated) varint at p. */
static size_t varint_len(const uint8_t *p) {
    size_t n = 1;
    while (p[n - 1] & 0x80)
        n++;
    return n;
}

/* Reads a validated body written with a schema other than ours: the
 * branch's own resolver reads what follows the union index. */
static pn_err_t read_resolved(pn_codec_t *codec, const uint8_t *data,
                              size_t len, const body_t *body, char *errstr,
                              size_t errstr_size) {
    pn_codec_writer_t *w = body->writer;
    size_t idx = w->is_union ? (size_t)body->top_branch : 0;
    size_t start = body->start;
    pn_codec_branch_t *br = &w->branches[idx];
    if (br->err)
        return pn_err_set(errstr, errstr_size, br->err,
                          "command: writer's %s %lld (%s) %s",
                          w->is_union ? "union branch" : "record",
                          (long long)idx,
                          w->is_union ? branch_name(w->schema, (int64_t)idx)
                                      : avro_schema_type_name(w->schema),
                          br->err == PN_ERR_UNKNOWN_BRANCH
                              ? "is not a command Panther knows"
                              : "cannot be resolved to Panther's record");
    if (w->is_union)
        start += varint_len(data + start);
    return pn_codec__read_value(codec, &br->resolved, data + start,
                                len - start, PN_ERR_INCOMPATIBLE_SCHEMA,
                                errstr, errstr_size);
}

static pn_err_t decode_body(pn_codec_t *codec, const uint8_t *data,
                            size_t len, body_t *body, pn_command_t *cmd,
                            char *errstr, size_t errstr_size) {
    pn_codec_writer_t *w = body->writer;
    const pn_codec_plan_t *plan =
        w->ours ? pn_codec__plan(codec, PN_SCHEMA_COMMAND) : NULL;
    if (plan) {
        if (!body->decoded &&
            !pn_codec__plan_decode(plan, data + body->start, len - body->start,
                                   body->slots))
            return pn_codec__plan_refused(w->schema, data, len, body->start,
                                          "command", errstr, errstr_size);
        return command_from_slots(codec, body->slots, cmd, errstr,
                                  errstr_size);
    }
    char why[256];
    pn_err_t err;
    if (!body->scanned &&
        (err = pn_codec__scan(w->schema, data, len, body->start,
                              &body->top_branch, why, sizeof why)))
        return pn_err_set(errstr, errstr_size, err, "command: %s", why);
    if (w->ours)
        err = pn_codec__read_value(
            codec, &codec->recs[PN_SCHEMA_COMMAND].value, data + body->start,
            len - body->start, PN_ERR_INTERNAL, errstr, errstr_size);
    else
        err = read_resolved(codec, data, len, body, errstr, errstr_size);
    int rc = err ? 0
                 : pn_codec__plan_from_value(
                       &codec->plans[PN_SCHEMA_COMMAND],
                       &codec->recs[PN_SCHEMA_COMMAND].value, body->slots);
    if (rc)
        return pn_codec__avro_fail(errstr, errstr_size, pn_codec__errno(rc),
                                   "command: reading decoded fields");
    return err ? err
               : command_from_slots(codec, body->slots, cmd, errstr,
                                    errstr_size);
}

pn_err_t pn_codec_decode_command(pn_codec_t *codec, const void *data,
                                 size_t len, pn_command_t *cmd, char *errstr,
                                 size_t errstr_size) {
    if (cmd)
        memset(cmd, 0, sizeof *cmd);
    if (!codec || !cmd || (!data && len))
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "decode command: missing argument");
    if (len > codec->max_record_bytes)
        return pn_err_set(errstr, errstr_size, PN_ERR_TOO_LARGE,
                          "command of %zu bytes exceeds the limit of %zu "
                          "bytes",
                          len, codec->max_record_bytes);
    if (len == 0)
        return pn_err_set(errstr, errstr_size, PN_ERR_TRUNCATED,
                          "command: empty input");
    pn_codec_slot_t slots[CMD__SLOTS] = {{.num = 0}};
    body_t body = {.top_branch = -1, .slots = slots};
    pn_err_t err = select_framing(codec, data, len, &body, errstr,
                                  errstr_size);
    if (!err)
        err = decode_body(codec, data, len, &body, cmd, errstr, errstr_size);
    return err;
}

/* --- encoding ------------------------------------------------------------- */

static pn_err_t framing_prefix(pn_codec_t *codec, pn_framing_t framing,
                               int32_t schema_id, uint8_t *prefix,
                               size_t *prefix_len) {
    switch (framing) {
    case PN_FRAMING_PLAIN:
        *prefix_len = 0;
        return PN_ERR_OK;
    case PN_FRAMING_CONFLUENT:
        prefix[0] = CONFLUENT_MAGIC;
        pn_be32_write(prefix + 1, (uint32_t)schema_id);
        *prefix_len = CONFLUENT_HEADER;
        return PN_ERR_OK;
    case PN_FRAMING_SINGLE_OBJECT:
        prefix[0] = SINGLE_OBJECT_MAGIC0;
        prefix[1] = SINGLE_OBJECT_MAGIC1;
        le64_write(prefix + 2, codec->command_fp);
        *prefix_len = SINGLE_OBJECT_HEADER;
        return PN_ERR_OK;
    }
    return PN_ERR_INVALID_ARG;
}

pn_err_t pn_codec_encode_command(pn_codec_t *codec, const pn_command_t *cmd,
                                 pn_framing_t framing, int32_t schema_id,
                                 pn_buf_t *out) {
    if (!codec || !cmd || !out || (unsigned)cmd->type >= PN_CMD__COUNT)
        return PN_ERR_INVALID_ARG;
    uint8_t prefix[SINGLE_OBJECT_HEADER];
    size_t prefix_len;
    pn_err_t err = framing_prefix(codec, framing, schema_id, prefix,
                                  &prefix_len);
    if (err)
        return err;
    pn_codec_slot_t v[CMD__SLOTS] = {
        [CMD_BRANCH] = {.num = codec->cmd[cmd->type].branch},
        [CMD_ID] = {.str = cmd->id},
        [CMD_ORDER] = {.str = cmd->order_id},
        [CMD_SKU] = {.str = cmd->sku_id},
        [CMD_NODE] = {.str = cmd->node_id},
        [CMD_QUANTITY] = {.num = cmd->quantity, .null = !cmd->has_quantity},
        [CMD_BY] = {.str = cmd->by},
        [CMD_AT] = {.num = cmd->at_ms}};
    return pn_codec__encode_slots(codec, PN_SCHEMA_COMMAND, v, prefix,
                                  prefix_len, out);
}
