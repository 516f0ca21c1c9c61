/*
 * The snapshotter's read API, on the HTTP server's threads:
 *
 *   GET /v1/inventory/{sku}/{node}  -> one stream
 *   GET /v1/inventory/{sku}         -> {"skuId": ..., "nodes": [...]}
 *
 * A stream renders as {"skuId","fulfillmentNodeId","onHand","reserved",
 * "available","version","reservations":[{"orderId","quantity"}],
 * "updatedAt"} (updatedAt in epoch milliseconds, like every `at` of
 * Panther's JSON; null if unknown). Status codes: 200; 400 for a
 * malformed path (bad escape, encoded NUL, invalid UTF-8, empty segment,
 * extra segments, an id with '|' or over 256 bytes); 404 for a stream or
 * SKU with no snapshot here; 503 when the stream's partition is not
 * assigned to this process (another snapshotter has it, or none yet).
 * Errors are {"error": "..."}.
 *
 * Threading: reads go through the store's concurrent readers, which share
 * nothing with the loop's writes; the assignment is read from atomics.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "panther/partition.h"
#include "snapshotter_internal.h"

#define JSON_TYPE "application/json"
/* Nodes of one SKU in one answer; past it the answer is 500 (a SKU stocked
 * in more nodes than that needs paging, which the API does not have). */
#define MAX_NODES 10000

static void reply_error(pn_http_response_t *resp, int status, const char *msg) {
    resp->status = status;
    resp->content_type = JSON_TYPE;
    pn_buf_reset(&resp->body);
    json_t *obj = json_pack("{s:s}", "error", msg);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    if (!text || pn_buf_appendf(&resp->body, "%s\n", text) != PN_ERR_OK)
        pn_buf_reset(&resp->body);
    free(text);
    json_decref(obj);
}

/* Takes obj (NULL: out of memory). */
static void reply_json(pn_http_response_t *resp, json_t *obj) {
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) {
        reply_error(resp, 500, "cannot render the answer");
        return;
    }
    resp->status = 200;
    resp->content_type = JSON_TYPE;
    if (pn_buf_append(&resp->body, text, strlen(text)) != PN_ERR_OK ||
        pn_buf_append_byte(&resp->body, '\n') != PN_ERR_OK)
        reply_error(resp, 500, "answer too large");
    free(text);
}

/* --- rendering --------------------------------------------------------------- */

static json_t *reservations_json(const pn_state_t *state) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < state->n_reservations; i++) {
        const pn_reservation_t *r = &state->reservations[i];
        json_t *o = json_object();
        json_t *id = json_stringn(r->order_id, r->order_id_len);
        if (!o || !id || json_object_set_new(o, "orderId", id) ||
            json_object_set_new(o, "quantity", json_integer(r->quantity)) ||
            json_array_append_new(arr, o)) {
            if (!o)
                json_decref(id);
            json_decref(o);
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* NULL when out of memory or when an id is not UTF-8 (cannot happen for
 * ids that came through the codec). */
static json_t *stream_json(pn_str_t key, size_t sku_len, const pn_state_t *state,
                           int64_t at_ms) {
    json_t *res = reservations_json(state);
    json_t *sku = json_stringn(key.ptr, sku_len);
    json_t *node = json_stringn(key.ptr + sku_len + 1, key.len - sku_len - 1);
    json_t *obj = NULL;
    if (res && sku && node)
        obj = json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:o, s:o}",
                        "skuId", sku, "fulfillmentNodeId", node,
                        "onHand", (json_int_t)state->on_hand,
                        "reserved", (json_int_t)state->reserved,
                        "available", (json_int_t)pn_state_available(state),
                        "version", (json_int_t)state->version,
                        "reservations", res,
                        "updatedAt", at_ms == PN_STORE_NO_TIME
                                         ? json_null()
                                         : json_integer(at_ms));
    else {
        json_decref(res);
        json_decref(sku);
        json_decref(node);
    }
    return obj; /* json_pack's "o" took (or on failure freed) the parts */
}

/* --- paths --------------------------------------------------------------------- */

typedef struct ids {
    char sku[PN_ID_MAX_BYTES + 1];
    size_t sku_len;
    char node[PN_ID_MAX_BYTES + 1];
    size_t node_len;
    bool has_node;
} ids_t;

/* Decodes one segment into an id; NULL or why not. */
static const char *decode_id(const char *seg, size_t len, char *out,
                             size_t *out_len) {
    if (len == 0)
        return "empty path segment";
    pn_err_t err = pn_http_decode_segment(seg, len, out, PN_ID_MAX_BYTES + 1,
                                          out_len);
    if (err == PN_ERR_TOO_LARGE)
        return "id longer than 256 bytes";
    if (err)
        return "malformed path segment (bad escape, %00 or invalid UTF-8)";
    if (memchr(out, PN_STREAM_KEY_SEP, *out_len))
        return "ids must not contain '|'";
    return NULL;
}

/* Splits "{sku}" or "{sku}/{node}" (what follows the prefix). */
static const char *parse_ids(const char *rest, ids_t *ids) {
    const char *slash = strchr(rest, '/');
    size_t sku_len = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *why = decode_id(rest, sku_len, ids->sku, &ids->sku_len);
    ids->has_node = slash != NULL;
    if (why || !slash)
        return why;
    const char *node = slash + 1;
    if (strchr(node, '/'))
        return "too many path segments";
    return decode_id(node, strlen(node), ids->node, &ids->node_len);
}

static bool owns_key(const pn_snapshotter_t *s, pn_str_t key) {
    int32_t p = pn_partition_for_key(key.ptr, key.len, s->n_partitions);
    return atomic_load(&s->owned[p]) != 0;
}

/* --- handlers ------------------------------------------------------------------ */

static void get_stream(pn_snapshotter_t *s, const ids_t *ids,
                       pn_http_response_t *resp) {
    char key_buf[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key((pn_str_t){ids->sku, ids->sku_len},
                                   (pn_str_t){ids->node, ids->node_len},
                                   key_buf, sizeof key_buf);
    pn_str_t key = {key_buf, key_len};
    if (!owns_key(s, key)) {
        reply_error(resp, 503, "the partition of this stream is not assigned "
                               "to this snapshotter");
        return;
    }
    pn_state_t state;
    pn_state_init(&state);
    int64_t at_ms;
    pn_snapshot_status_t status;
    pn_err_t err = pn_store_read_snapshot(s->store, key, &state, &at_ms, &status);
    if (err)
        reply_error(resp, 500, pn_err_str(err));
    else if (status == PN_SNAPSHOT_NONE)
        reply_error(resp, 404, "unknown stream");
    else if (status == PN_SNAPSHOT_STALE)
        reply_error(resp, 503, "snapshot of another fold format; rebuild the "
                               "snapshotter's store");
    else
        reply_json(resp, stream_json(key, ids->sku_len, &state, at_ms));
    pn_state_clear(&state);
}

typedef struct node_acc {
    const pn_snapshotter_t *s;
    size_t sku_len;
    json_t *nodes; /* array */
    size_t seen_unowned;
} node_acc_t;

static pn_err_t add_node(void *opaque, pn_str_t key, const pn_state_t *state,
                         int64_t at_ms) {
    node_acc_t *acc = opaque;
    if (!owns_key(acc->s, key)) {
        acc->seen_unowned++;
        return PN_ERR_OK;
    }
    if (json_array_size(acc->nodes) >= MAX_NODES)
        return PN_ERR_TOO_LARGE;
    json_t *obj = stream_json(key, acc->sku_len, state, at_ms);
    if (!obj || json_array_append_new(acc->nodes, obj))
        return PN_ERR_NOMEM;
    return PN_ERR_OK;
}

static int by_node(const void *a, const void *b) {
    const char *x = json_string_value(
        json_object_get(*(json_t *const *)a, "fulfillmentNodeId"));
    const char *y = json_string_value(
        json_object_get(*(json_t *const *)b, "fulfillmentNodeId"));
    return strcmp(x ? x : "", y ? y : "");
}

/* Sorts the nodes by id (the scan gives them by key length first). */
static json_t *sorted(json_t *nodes) {
    size_t n = json_array_size(nodes);
    json_t **items = malloc((n ? n : 1) * sizeof *items);
    json_t *out = json_array();
    if (!items || !out) {
        free(items);
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(nodes, i);
    qsort(items, n, sizeof *items, by_node);
    for (size_t i = 0; i < n; i++)
        json_array_append(out, items[i]);
    free(items);
    return out;
}

static bool owns_any(const pn_snapshotter_t *s) {
    for (int32_t p = 0; p < s->n_partitions; p++)
        if (atomic_load(&s->owned[p]))
            return true;
    return false;
}

static void get_sku(pn_snapshotter_t *s, const ids_t *ids,
                    pn_http_response_t *resp) {
    if (!owns_any(s)) {
        reply_error(resp, 503, "no partitions are assigned to this snapshotter");
        return;
    }
    char prefix[PN_ID_MAX_BYTES + 2];
    memcpy(prefix, ids->sku, ids->sku_len);
    prefix[ids->sku_len] = PN_STREAM_KEY_SEP;
    node_acc_t acc = {s, ids->sku_len, json_array(), 0};
    pn_err_t err = acc.nodes ? pn_store_scan_snapshots(
                                   s->store, (pn_str_t){prefix, ids->sku_len + 1},
                                   add_node, &acc)
                             : PN_ERR_NOMEM;
    if (err) {
        reply_error(resp, 500, err == PN_ERR_TOO_LARGE
                                   ? "too many nodes for one answer"
                                   : pn_err_str(err));
    } else if (json_array_size(acc.nodes) == 0) {
        reply_error(resp, acc.seen_unowned ? 503 : 404,
                    acc.seen_unowned ? "the partitions of this SKU's streams "
                                       "are not assigned to this snapshotter"
                                     : "unknown sku");
    } else {
        json_t *nodes = sorted(acc.nodes);
        json_t *sku = json_stringn(ids->sku, ids->sku_len);
        reply_json(resp, nodes && sku ? json_pack("{s:o, s:o}", "skuId", sku,
                                                  "nodes", nodes)
                                      : NULL);
        if (!nodes || !sku) {
            json_decref(nodes);
            json_decref(sku);
        }
    }
    json_decref(acc.nodes);
}

void pn_snapshotter__read_api(void *opaque, const char *path,
                              pn_http_response_t *resp) {
    pn_snapshotter_t *s = opaque;
    ids_t ids;
    const char *why = parse_ids(path + strlen(PN_SNAPSHOTTER_API_PREFIX), &ids);
    if (why)
        reply_error(resp, 400, why);
    else if (ids.has_node)
        get_stream(s, &ids, resp);
    else
        get_sku(s, &ids, resp);
}
