/*
 * JSON <-> commands, events and outcomes (see panther/command_json.h).
 * jansson builds and escapes the JSON; this file only decides the shape and
 * keeps bytes that are not UTF-8 from reaching jansson, which rejects them.
 */
#include "panther/command_json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* --- UTF-8 and hex --------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p (RFC 3629 table 3-7), or 0
 * when the byte at p does not start one. */
static size_t utf8_seq_len(const uint8_t *p, size_t avail) {
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

bool pn_command_json_utf8_valid(const void *ptr, size_t len) {
    const uint8_t *p = ptr;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len(p + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

/* The bytes with every invalid byte replaced by U+FFFD (EF BF BD). */
static json_t *string_lossy(const uint8_t *p, size_t len) {
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len(p + i, len - i);
        if (n) {
            memcpy(out + o, p + i, n);
            o += n;
            i += n;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    json_t *s = json_stringn(out, o);
    free(out);
    return s;
}

json_t *pn_command_json_hex(const void *ptr, size_t len) {
    static const char digits[] = "0123456789abcdef";
    if (!ptr)
        return json_null();
    if (len > (SIZE_MAX - 1) / 2)
        return NULL;
    const uint8_t *p = ptr;
    char *out = malloc(len * 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xF];
    }
    json_t *s = json_stringn(out, len * 2);
    free(out);
    return s;
}

static pn_err_t set_new(json_t *obj, const char *key, json_t *value) {
    /* json_object_set_new steals value even when it fails. */
    return value && json_object_set_new(obj, key, value) == 0 ? PN_ERR_OK
                                                              : PN_ERR_NOMEM;
}

pn_err_t pn_command_json_set_bytes(json_t *obj, const char *key,
                                   const void *ptr, size_t len) {
    if (!ptr)
        return set_new(obj, key, json_null());
    if (pn_command_json_utf8_valid(ptr, len))
        return set_new(obj, key, json_stringn(ptr, len));
    pn_err_t err = set_new(obj, key, string_lossy(ptr, len));
    if (err)
        return err;
    size_t klen = strlen(key);
    char *hex_key = malloc(klen + sizeof "Hex");
    if (!hex_key)
        return PN_ERR_NOMEM;
    memcpy(hex_key, key, klen);
    memcpy(hex_key + klen, "Hex", sizeof "Hex");
    err = set_new(obj, hex_key, pn_command_json_hex(ptr, len));
    free(hex_key);
    return err;
}

/* --- UUID ------------------------------------------------------------------ */

pn_err_t pn_command_json_uuid_v4(char out[PN_UUID_STR_SIZE], char *errstr,
                                 size_t errstr_size) {
    uint8_t b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pn_err_set(errstr, errstr_size, PN_ERR_IO,
                          "cannot open /dev/urandom: %s", strerror(errno));
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = read(fd, b + got, sizeof b - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int saved = n < 0 ? errno : EIO;
            close(fd);
            return pn_err_set(errstr, errstr_size, PN_ERR_IO,
                              "cannot read /dev/urandom: %s",
                              strerror(saved));
        }
        got += (size_t)n;
    }
    close(fd);
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    snprintf(out, PN_UUID_STR_SIZE,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
             b[10], b[11], b[12], b[13], b[14], b[15]);
    return PN_ERR_OK;
}

/* --- JSON -> command --------------------------------------------------------- */

static const struct {
    const char *full;
    const char *shortname;
} type_names[PN_CMD__COUNT] = {
    [PN_CMD_UPDATE] = {"UpdateInventory", "update"},
    [PN_CMD_RESERVE] = {"ReserveInventory", "reserve"},
    [PN_CMD_CANCEL] = {"CancelReservation", "cancel"},
    [PN_CMD_SHIP] = {"ShipOrder", "ship"},
};

static const char *const known_fields[] = {
    "type", "id", "orderId", "skuId", "fulfillmentNodeId", "quantity", "by",
    "at"};

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction or exponent";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown value";
}

static pn_err_t bad(char *errstr, size_t errstr_size, const char *field,
                    const char *what, const json_t *got) {
    if (!got)
        return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                          "missing required field '%s'", field);
    return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                      "field '%s': expected %s, got %s", field, what,
                      json_kind(got));
}

/* Where a parsed command's strings come from before they are copied into
 * the command's own block. */
typedef struct str_src {
    const char *ptr;
    size_t len;
    bool present;
} str_src_t;

/* A string member: required ones must be strings; optional ones may also be
 * absent or null (present = false). */
static pn_err_t get_string(const json_t *obj, const char *field, bool required,
                           str_src_t *s, char *errstr, size_t errstr_size) {
    const json_t *v = json_object_get(obj, field);
    *s = (str_src_t){NULL, 0, false};
    if (json_is_string(v)) {
        *s = (str_src_t){json_string_value(v), json_string_length(v), true};
        return PN_ERR_OK;
    }
    if (!required && (!v || json_is_null(v)))
        return PN_ERR_OK;
    return bad(errstr, errstr_size, field,
               required ? "a string" : "a string or null", v);
}

static pn_err_t get_int(const json_t *obj, const char *field, bool required,
                        int64_t min, int64_t max, bool *present, int64_t *out,
                        char *errstr, size_t errstr_size) {
    const json_t *v = json_object_get(obj, field);
    *present = false;
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < min || n > max)
            return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                              "field '%s': %lld is out of range [%lld, %lld]",
                              field, (long long)n, (long long)min,
                              (long long)max);
        *present = true;
        *out = n;
        return PN_ERR_OK;
    }
    if (!required && (!v || json_is_null(v)))
        return PN_ERR_OK;
    return bad(errstr, errstr_size, field,
               required ? "an integer" : "an integer or null", v);
}

static pn_err_t parse_type(const json_t *obj, pn_command_type_t *type,
                           char *errstr, size_t errstr_size) {
    const json_t *v = json_object_get(obj, "type");
    if (!json_is_string(v))
        return bad(errstr, errstr_size, "type", "a string", v);
    const char *name = json_string_value(v);
    for (int t = 0; t < PN_CMD__COUNT; t++)
        if (!strcasecmp(name, type_names[t].full) ||
            !strcasecmp(name, type_names[t].shortname)) {
            *type = (pn_command_type_t)t;
            return PN_ERR_OK;
        }
    return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                      "field 'type': unknown command type '%.64s' (expected "
                      "UpdateInventory, ReserveInventory, CancelReservation, "
                      "ShipOrder or update, reserve, cancel, ship)",
                      name);
}

static pn_err_t check_members(const json_t *obj, char *errstr,
                              size_t errstr_size) {
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool known = false;
        for (size_t i = 0; i < sizeof known_fields / sizeof *known_fields; i++)
            known = known || !strcmp(key, known_fields[i]);
        if (!known)
            return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                              "unknown field '%.64s'", key);
    }
    return PN_ERR_OK;
}

/* Copies the strings into one block owned by cmd. */
static pn_err_t build_command(pn_command_t *cmd, str_src_t *const src[5],
                              pn_str_t *const dst[5]) {
    size_t total = 1;
    for (int i = 0; i < 5; i++)
        total += src[i]->len + 1;
    char *block = malloc(total);
    if (!block)
        return PN_ERR_NOMEM;
    size_t used = 0;
    for (int i = 0; i < 5; i++) {
        if (!src[i]->present) {
            *dst[i] = PN_STR_NULL;
            continue;
        }
        if (src[i]->len)
            memcpy(block + used, src[i]->ptr, src[i]->len);
        block[used + src[i]->len] = '\0';
        *dst[i] = (pn_str_t){block + used, src[i]->len};
        used += src[i]->len + 1;
    }
    cmd->storage = block;
    return PN_ERR_OK;
}

static pn_err_t parse_fields(const json_t *obj,
                             const pn_command_json_defaults_t *defaults,
                             pn_command_t *c, char *errstr,
                             size_t errstr_size) {
    str_src_t id, order, sku, node, by;
    bool has_at, has_q;
    int64_t at = 0, q = 0;
    char uuid[PN_UUID_STR_SIZE];
    bool needs_order = c->type != PN_CMD_UPDATE;
    bool needs_q = c->type == PN_CMD_UPDATE || c->type == PN_CMD_RESERVE;
    pn_err_t err = get_string(obj, "id", false, &id, errstr, errstr_size);
    if (!err)
        err = get_string(obj, "orderId", needs_order, &order, errstr,
                         errstr_size);
    if (!err && !needs_order && order.present)
        err = pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                         "field 'orderId': UpdateInventory has no orderId");
    if (!err)
        err = get_string(obj, "skuId", true, &sku, errstr, errstr_size);
    if (!err)
        err = get_string(obj, "fulfillmentNodeId", true, &node, errstr,
                         errstr_size);
    if (!err)
        err = get_int(obj, "quantity", needs_q, INT32_MIN, INT32_MAX, &has_q,
                      &q, errstr, errstr_size);
    if (!err)
        err = get_string(obj, "by", false, &by, errstr, errstr_size);
    if (!err)
        err = get_int(obj, "at", false, INT64_MIN, INT64_MAX, &has_at, &at,
                      errstr, errstr_size);
    if (!err && !id.present) {
        err = pn_command_json_uuid_v4(uuid, errstr, errstr_size);
        id = (str_src_t){uuid, PN_UUID_STR_SIZE - 1, true};
    }
    if (err)
        return err;
    if (!by.present) {
        const char *d = defaults && defaults->by ? defaults->by
                                                 : PN_COMMAND_JSON_DEFAULT_BY;
        by = (str_src_t){d, strlen(d), true};
    }
    c->has_quantity = has_q;
    c->quantity = (int32_t)q;
    c->at_ms = has_at ? at : defaults ? defaults->at_ms : 0;
    str_src_t *const src[5] = {&id, &order, &sku, &node, &by};
    pn_str_t *const dst[5] = {&c->id, &c->order_id, &c->sku_id, &c->node_id,
                              &c->by};
    if (build_command(c, src, dst))
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    return PN_ERR_OK;
}

pn_err_t pn_command_json_parse_value(const json_t *obj,
                                     const pn_command_json_defaults_t *defaults,
                                     pn_command_t *cmd, char *errstr,
                                     size_t errstr_size) {
    memset(cmd, 0, sizeof *cmd);
    if (!json_is_object(obj))
        return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                          "expected a JSON object, got %s",
                          obj ? json_kind(obj) : "nothing");
    pn_command_t c = {0};
    pn_err_t err = check_members(obj, errstr, errstr_size);
    if (!err)
        err = parse_type(obj, &c.type, errstr, errstr_size);
    if (!err)
        err = parse_fields(obj, defaults, &c, errstr, errstr_size);
    if (!err)
        *cmd = c;
    return err;
}

pn_err_t pn_command_json_parse(const char *text, size_t len,
                               const pn_command_json_defaults_t *defaults,
                               pn_command_t *cmd, char *errstr,
                               size_t errstr_size) {
    memset(cmd, 0, sizeof *cmd);
    json_error_t jerr;
    json_t *root = json_loadb(text, len,
                              JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
                                  JSON_DECODE_ANY,
                              &jerr);
    if (!root)
        return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                          "not valid JSON: %s (column %d)", jerr.text,
                          jerr.column);
    pn_err_t err = pn_command_json_parse_value(root, defaults, cmd, errstr,
                                               errstr_size);
    json_decref(root);
    return err;
}

pn_err_t pn_command_json_record_key(const pn_command_t *cmd, pn_buf_t *out) {
    char key[PN_STREAM_KEY_MAX];
    size_t n = pn_stream_key(cmd->sku_id, cmd->node_id, key, sizeof key);
    pn_buf_reset(out);
    if (n)
        return pn_buf_append(out, key, n);
    pn_err_t err = pn_buf_append(out, cmd->sku_id.ptr, cmd->sku_id.len);
    if (!err)
        err = pn_buf_append_byte(out, PN_STREAM_KEY_SEP);
    if (!err)
        err = pn_buf_append(out, cmd->node_id.ptr, cmd->node_id.len);
    return err;
}

/* --- records -> JSON ---------------------------------------------------------- */

static pn_err_t set_str(json_t *obj, const char *key, pn_str_t s) {
    /* A present but empty view may have a NULL pointer. */
    return pn_command_json_set_bytes(obj, key, s.ptr ? s.ptr : "", s.len);
}

/* Returns obj, or NULL (and drops obj) when err says a step failed. */
static json_t *finish(json_t *obj, pn_err_t err) {
    if (err) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

json_t *pn_command_json_command(const pn_command_t *cmd) {
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    const char *type = (unsigned)cmd->type < PN_CMD__COUNT
                           ? type_names[cmd->type].full
                           : "Unknown";
    pn_err_t err = set_new(obj, "type", json_string(type));
    if (!err)
        err = set_str(obj, "id", cmd->id);
    if (!err && cmd->type != PN_CMD_UPDATE)
        err = set_str(obj, "orderId", cmd->order_id);
    if (!err)
        err = set_str(obj, "skuId", cmd->sku_id);
    if (!err)
        err = set_str(obj, "fulfillmentNodeId", cmd->node_id);
    if (!err)
        err = set_new(obj, "quantity",
                      cmd->has_quantity ? json_integer(cmd->quantity)
                                        : json_null());
    if (!err)
        err = set_str(obj, "by", cmd->by);
    if (!err)
        err = set_new(obj, "at", json_integer(cmd->at_ms));
    return finish(obj, err);
}

json_t *pn_command_json_event(const pn_event_t *ev) {
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    pn_err_t err = set_str(obj, "skuId", ev->sku_id);
    if (!err)
        err = set_str(obj, "fulfillmentNodeId", ev->node_id);
    if (!err)
        err = set_new(obj, "version", json_integer(ev->version));
    if (!err)
        err = set_str(obj, "commandId", ev->command_id);
    if (!err)
        err = set_str(obj, "by", ev->by);
    if (!err)
        err = set_new(obj, "at", json_integer(ev->at_ms));
    if (!err)
        err = set_new(obj, "type", json_string(pn_event_type_name(ev->type)));
    if (!err && ev->type != PN_EVT_UPDATED)
        err = set_str(obj, "orderId", ev->order_id);
    if (!err)
        err = set_new(obj, "quantity", json_integer(ev->quantity));
    if (!err && ev->type == PN_EVT_UPDATED)
        err = set_new(obj, "previousQuantity",
                      json_integer(ev->previous_quantity));
    return finish(obj, err);
}

json_t *pn_command_json_outcome(const pn_outcome_record_t *rec) {
    const pn_outcome_t *o = &rec->outcome;
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    pn_err_t err = set_str(obj, "commandId", rec->command_id);
    if (!err)
        err = set_new(obj, "commandType",
                      json_string(pn_command_type_name(o->command_type)));
    if (!err)
        err = rec->order_id.ptr ? set_str(obj, "orderId", rec->order_id)
                                : set_new(obj, "orderId", json_null());
    if (!err)
        err = set_str(obj, "skuId", rec->sku_id);
    if (!err)
        err = set_str(obj, "fulfillmentNodeId", rec->node_id);
    if (!err)
        err = set_new(obj, "status", json_string(pn_status_name(o->status)));
    if (!err)
        err = set_new(obj, "reason",
                      o->reason >= 0 && o->reason < PN_REASON__COUNT
                          ? json_string(pn_reason_name(o->reason))
                          : json_null());
    if (!err)
        err = set_new(obj, "duplicate", json_boolean(o->duplicate));
    if (!err)
        err = set_new(obj, "version", json_integer(o->version));
    if (!err)
        err = set_new(obj, "onHand", json_integer(o->on_hand));
    if (!err)
        err = set_new(obj, "reserved", json_integer(o->reserved));
    if (!err)
        err = set_new(obj, "available", json_integer(o->available));
    if (!err)
        err = set_new(obj, "at", json_integer(rec->at_ms));
    return finish(obj, err);
}
