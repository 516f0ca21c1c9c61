/*
 * The demo's order flow and its prediction (see demo_flow.h).
 *
 * Every command is encoded, decoded back and run through pn_domain_decide
 * and pn_domain_evolve against the predicted state of its stream, exactly
 * as a worker will run it; the flow uses the prediction to behave like a
 * shop (it ships what was actually reserved, restocks what runs low). The
 * per-stream order of the records is the order the workers execute them
 * in: one stream lives on one partition, the producer is idempotent, and
 * the misrouted commands are the flow's last, so their forwarded copies
 * still come last on their home partitions.
 */
#include "demo_flow.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "panther/codec.h"
#include "panther/partition.h"

#define MAX_LINES 3
#define RESEND_RING 32 /* resends pick among the last this many commands */
#define N_MISROUTED 2
#define N_UNDECODABLE 2
#define STEP_MS 1000 /* command time between two records */
#define RESTOCK_TARGET 20 /* replenishment brings available to 20..39 */

typedef struct order {
    uint32_t no;
    int node;
    int n_lines;
    int skus[MAX_LINES];
} order_t;

typedef struct gen {
    const pn_demo_flow_options_t *o;
    pn_demo_flow_t *flow;
    pn_codec_t *codec;
    uint64_t rng;
    double *sku_cdf; /* demand: SKU popularity falls off like Zipf's law */
    order_t *orders; /* open orders, oldest first */
    size_t n_orders, cap_orders;
    uint32_t next_order;
    size_t ring[RESEND_RING]; /* record indexes of recent commands */
    size_t n_ring;
    int64_t at_ms;
    long budget; /* commands the main loop may still emit */
    pn_buf_t scratch;
    char *errstr;
    size_t errstr_size;
} gen_t;

/* --- randomness (splitmix64: small, fast, the same on every platform) ----- */

static uint64_t rnd(gen_t *g) {
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int below(gen_t *g, int n) { return (int)(rnd(g) % (uint64_t)n); }

static bool chance(gen_t *g, int percent) { return below(g, 100) < percent; }

static int pick_sku(gen_t *g) {
    double u = (double)(rnd(g) >> 11) / 9007199254740992.0;
    int lo = 0, hi = g->o->skus - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (g->sku_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static pn_err_t make_cdf(gen_t *g) {
    g->sku_cdf = malloc((size_t)g->o->skus * sizeof *g->sku_cdf);
    if (!g->sku_cdf)
        return PN_ERR_NOMEM;
    double sum = 0;
    for (int i = 0; i < g->o->skus; i++)
        sum += 1.0 / pow(i + 1, 0.8);
    double acc = 0;
    for (int i = 0; i < g->o->skus; i++) {
        acc += 1.0 / pow(i + 1, 0.8) / sum;
        g->sku_cdf[i] = acc;
    }
    g->sku_cdf[g->o->skus - 1] = 1.0;
    return PN_ERR_OK;
}

/* A version 4 UUID from the flow's generator, so a seed gives the same
 * ids every time. */
static void uuid(gen_t *g, char out[37]) {
    uint8_t b[16];
    uint64_t hi = rnd(g), lo = rnd(g);
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(hi >> (8 * i));
        b[8 + i] = (uint8_t)(lo >> (8 * i));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

static void sku_name(int sku, char *buf, size_t size) {
    snprintf(buf, size, "SKU-%d", 1001 + sku);
}

static void node_name(int node, char *buf, size_t size) {
    snprintf(buf, size, "DC-%02d", node + 1);
}

static void order_name(uint32_t no, char *buf, size_t size) {
    snprintf(buf, size, "ord-%06" PRIu32, no);
}

/* --- the prediction ------------------------------------------------------- */

static pn_err_t stream_state(pn_demo_flow_t *f, const char *key, size_t len,
                             pn_state_t **statep) {
    pn_map_entry_t *e = pn_map_find(&f->streams, key, len);
    if (e) {
        *statep = e->value;
        return PN_ERR_OK;
    }
    pn_state_t *state = malloc(sizeof *state);
    if (!state)
        return PN_ERR_NOMEM;
    pn_state_init(state);
    pn_err_t err = pn_map_insert(&f->streams, key, len, state, NULL);
    if (err)
        free(state);
    else
        *statep = state;
    return err;
}

void pn_demo_count_outcome(pn_demo_counts_t *c, const pn_outcome_t *o) {
    if (o->duplicate)
        c->duplicates++;
    else if (o->status == PN_STATUS_ACCEPTED)
        c->accepted[o->command_type]++;
    else {
        c->rejected[o->command_type]++;
        if (o->reason >= 0 && o->reason < PN_REASON__COUNT)
            c->reasons[o->reason]++;
    }
}

/* decide + evolve, as the engine does: the stream's state and the outcome
 * its id already had, if any. */
static pn_err_t predict(pn_demo_flow_t *f, const pn_command_t *cmd,
                        pn_outcome_t *out) {
    char key[PN_STREAM_KEY_MAX + PN_ID_MAX_BYTES + 1];
    size_t len = pn_stream_key(cmd->sku_id, cmd->node_id, key, PN_STREAM_KEY_MAX);
    pn_state_t empty, *state = &empty;
    pn_state_init(&empty);
    const pn_outcome_t *prior = NULL;
    size_t seen_len = 0;
    pn_err_t err = PN_ERR_OK;
    if (len && (err = stream_state(f, key, len, &state)))
        return err;
    if (len && cmd->id.len > 0 && cmd->id.len <= PN_ID_MAX_BYTES) {
        key[len] = '\0';
        memcpy(key + len + 1, cmd->id.ptr, cmd->id.len);
        seen_len = len + 1 + cmd->id.len;
        pn_map_entry_t *e = pn_map_find(&f->seen, key, seen_len);
        prior = e ? e->value : NULL;
    }
    pn_decision_t d;
    pn_domain_decide(state, cmd, prior, &d);
    if (d.has_event) {
        if ((err = pn_domain_evolve(state, &d.event)))
            return err;
        f->expected.events++;
    }
    if (seen_len && !prior) {
        pn_outcome_t *kept = malloc(sizeof *kept);
        if (!kept)
            return PN_ERR_NOMEM;
        *kept = d.outcome;
        if ((err = pn_map_insert(&f->seen, key, seen_len, kept, NULL))) {
            free(kept);
            return err;
        }
    }
    pn_demo_count_outcome(&f->expected, &d.outcome);
    *out = d.outcome;
    return PN_ERR_OK;
}

/* --- records -------------------------------------------------------------- */

static pn_err_t push_record(pn_demo_flow_t *f, const pn_demo_record_t *r) {
    if (f->n_records == f->cap_records) {
        size_t cap = f->cap_records ? f->cap_records * 2 : 1024;
        pn_demo_record_t *grown = realloc(f->records, cap * sizeof *grown);
        if (!grown)
            return PN_ERR_NOMEM;
        f->records = grown;
        f->cap_records = cap;
    }
    f->records[f->n_records++] = *r;
    f->sent.records++;
    return PN_ERR_OK;
}

/* Decodes a record of the flow and predicts its outcome, so the
 * prediction sees exactly the bytes a worker will see. */
static pn_err_t replay(gen_t *g, const pn_demo_record_t *r,
                       pn_outcome_t *out) {
    pn_demo_flow_t *f = g->flow;
    pn_command_t cmd;
    char why[256] = "";
    pn_err_t err = pn_codec_decode_command(g->codec, f->bytes.data + r->value_off,
                                           r->value_len, &cmd, why, sizeof why);
    if (err)
        return pn_err_set(g->errstr, g->errstr_size, err,
                          "order flow: a command does not decode: %s", why);
    err = predict(f, &cmd, out);
    if (!err) {
        f->sent.commands++;
        f->sent.by_type[cmd.type]++;
    }
    pn_command_release(&cmd);
    return err;
}

/* Encodes and appends one command, keyed `sku|node` as given. */
static pn_err_t emit(gen_t *g, const pn_command_t *cmd, int32_t partition,
                     bool resendable, pn_outcome_t *out) {
    pn_demo_flow_t *f = g->flow;
    pn_demo_record_t r = {.partition = partition, .key_off = f->bytes.len};
    pn_err_t err = pn_buf_appendf(&f->bytes, "%.*s|%.*s", (int)cmd->sku_id.len,
                                  cmd->sku_id.ptr, (int)cmd->node_id.len,
                                  cmd->node_id.ptr);
    r.key_len = f->bytes.len - r.key_off;
    r.value_off = f->bytes.len;
    if (!err)
        err = pn_codec_encode_command(g->codec, cmd, PN_FRAMING_PLAIN, 0,
                                      &f->bytes);
    r.value_len = f->bytes.len - r.value_off;
    if (!err)
        err = push_record(f, &r);
    if (!err)
        err = replay(g, &r, out);
    if (err)
        return err;
    if (resendable)
        g->ring[g->n_ring++ % RESEND_RING] = f->n_records - 1;
    g->budget--;
    g->at_ms += STEP_MS;
    return PN_ERR_OK;
}

typedef struct spec {
    pn_command_type_t type;
    const char *order; /* NULL for UPDATE */
    const char *sku, *node;
    bool has_q;
    int32_t q;
    const char *by;
} spec_t;

static pn_err_t send_spec(gen_t *g, const spec_t *s, int32_t partition,
                          bool resendable, pn_outcome_t *out) {
    char id[37];
    uuid(g, id);
    pn_command_t cmd = {
        .type = s->type,
        .id = pn_str_c(id),
        .order_id = s->order ? pn_str_c(s->order) : PN_STR_NULL,
        .sku_id = pn_str_c(s->sku),
        .node_id = pn_str_c(s->node),
        .by = pn_str_c(s->by),
        .has_quantity = s->has_q,
        .quantity = s->q,
        .at_ms = g->at_ms,
    };
    pn_outcome_t ignored;
    return emit(g, &cmd, partition, resendable, out ? out : &ignored);
}

/* The common case: a command on stream (sku, node), routed by its key. */
static pn_err_t send_cmd(gen_t *g, pn_command_type_t type, const char *order,
                     int sku, int node, bool has_q, int32_t q, const char *by,
                     pn_outcome_t *out) {
    char sku_s[32], node_s[32];
    sku_name(sku, sku_s, sizeof sku_s);
    node_name(node, node_s, sizeof node_s);
    spec_t s = {type, order, sku_s, node_s, has_q, q, by};
    return send_spec(g, &s, -1, true, out);
}

/* --- what the shop does --------------------------------------------------- */

static const pn_state_t *state_of(gen_t *g, int sku, int node) {
    char sku_s[32], node_s[32], key[PN_STREAM_KEY_MAX];
    sku_name(sku, sku_s, sizeof sku_s);
    node_name(node, node_s, sizeof node_s);
    size_t len = pn_stream_key(pn_str_c(sku_s), pn_str_c(node_s), key, sizeof key);
    return pn_demo_flow_state(g->flow, key, len);
}

static int64_t held(gen_t *g, const order_t *o, int line) {
    char name[32];
    order_name(o->no, name, sizeof name);
    const pn_state_t *s = state_of(g, o->skus[line], o->node);
    return s ? pn_state_held(s, pn_str_c(name)) : 0;
}

static pn_err_t keep_order(gen_t *g, const order_t *o) {
    if (g->n_orders == g->cap_orders) {
        size_t cap = g->cap_orders ? g->cap_orders * 2 : 256;
        order_t *grown = realloc(g->orders, cap * sizeof *grown);
        if (!grown)
            return PN_ERR_NOMEM;
        g->orders = grown;
        g->cap_orders = cap;
    }
    g->orders[g->n_orders++] = *o;
    return PN_ERR_OK;
}

static void drop_order(gen_t *g, size_t i) {
    memmove(&g->orders[i], &g->orders[i + 1],
            (g->n_orders - i - 1) * sizeof *g->orders);
    g->n_orders--;
}

static void drop_line(order_t *o, int line) {
    memmove(&o->skus[line], &o->skus[line + 1],
            (size_t)(o->n_lines - line - 1) * sizeof o->skus[0]);
    o->n_lines--;
}

/* The nodes' initial counts, most popular items first; a few start
 * nearly sold out. At most half the flow goes to them: with more streams
 * than that, the rest start empty. */
static pn_err_t initial_stock(gen_t *g) {
    long n = g->budget / 2;
    for (int sku = 0; sku < g->o->skus; sku++)
        for (int node = 0; node < g->o->nodes && n-- > 0; node++) {
            int32_t q = chance(g, 10) ? below(g, 4) : 10 + below(g, 50);
            pn_err_t err = send_cmd(g, PN_CMD_UPDATE, NULL, sku, node, true, q,
                                    "stock-sync", NULL);
            if (err)
                return err;
        }
    return PN_ERR_OK;
}

/* Checkout: one to three lines at one node; lines the node cannot cover
 * are rejected (INSUFFICIENT_INVENTORY) and the rest goes on. */
static pn_err_t place_order(gen_t *g) {
    order_t o = {.no = ++g->next_order, .node = below(g, g->o->nodes)};
    int r = below(g, 10);
    int want = r < 6 ? 1 : r < 9 ? 2 : 3;
    char name[32];
    order_name(o.no, name, sizeof name);
    g->flow->sent.orders++;
    int taken[MAX_LINES], n_taken = 0;
    for (int i = 0; i < want && g->budget > 0; i++) {
        int sku = pick_sku(g);
        bool dup = false;
        for (int j = 0; j < n_taken; j++)
            dup |= taken[j] == sku;
        if (dup)
            continue;
        taken[n_taken++] = sku;
        int32_t q = chance(g, 10) ? 4 + below(g, 6) : 1 + below(g, 3);
        pn_outcome_t out;
        pn_err_t err = send_cmd(g, PN_CMD_RESERVE, name, sku, o.node, true, q,
                            "checkout", &out);
        if (err)
            return err;
        if (out.status == PN_STATUS_ACCEPTED)
            o.skus[o.n_lines++] = sku;
    }
    return o.n_lines ? keep_order(g, &o) : PN_ERR_OK;
}

/* The warehouse ships an older order, now and then only part of a line. */
static pn_err_t ship_order(gen_t *g) {
    if (!g->n_orders)
        return place_order(g);
    size_t span = g->n_orders < 8 ? g->n_orders : g->n_orders / 2;
    size_t i = (size_t)below(g, (int)span);
    order_t *o = &g->orders[i];
    char name[32];
    order_name(o->no, name, sizeof name);
    for (int line = 0; line < o->n_lines && g->budget > 0;) {
        int64_t h = held(g, o, line);
        bool partial = h >= 2 && chance(g, 12);
        int32_t q = partial ? 1 + below(g, (int)h - 1) : 0;
        pn_err_t err = h ? send_cmd(g, PN_CMD_SHIP, name, o->skus[line], o->node,
                                partial, q, "warehouse", NULL)
                         : PN_ERR_OK;
        if (err)
            return err;
        if (partial)
            line++;
        else
            drop_line(o, line);
    }
    if (!o->n_lines)
        drop_order(g, i);
    return PN_ERR_OK;
}

/* A customer cancels an order, or lowers the quantity of one line. */
static pn_err_t cancel_order(gen_t *g) {
    if (!g->n_orders)
        return place_order(g);
    size_t i = (size_t)below(g, (int)g->n_orders);
    order_t *o = &g->orders[i];
    char name[32];
    order_name(o->no, name, sizeof name);
    int line = below(g, o->n_lines);
    int64_t h = held(g, o, line);
    if (h >= 2 && chance(g, 30))
        return send_cmd(g, PN_CMD_CANCEL, name, o->skus[line], o->node, true,
                    1 + below(g, (int)h - 1), "customer-service", NULL);
    while (o->n_lines && g->budget > 0) {
        pn_err_t err = send_cmd(g, PN_CMD_CANCEL, name, o->skus[0], o->node, false,
                            0, "customer-service", NULL);
        if (err)
            return err;
        drop_line(o, 0);
    }
    if (!o->n_lines)
        drop_order(g, i);
    return PN_ERR_OK;
}

/* Replenishment, order-up-to: the lowest of a few in-demand items is
 * brought back to a target level and the node reports its new count. An
 * item already above its target gets a cycle count instead. */
static pn_err_t cycle_count_of(gen_t *g, int sku, int node);

static pn_err_t restock(gen_t *g) {
    int best_sku = 0, best_node = 0;
    int64_t best = INT64_MAX;
    for (int i = 0; i < 3; i++) {
        int sku = pick_sku(g), node = below(g, g->o->nodes);
        const pn_state_t *s = state_of(g, sku, node);
        int64_t avail = s ? pn_state_available(s) : 0;
        if (avail < best) {
            best = avail;
            best_sku = sku;
            best_node = node;
        }
    }
    int64_t target = RESTOCK_TARGET + below(g, RESTOCK_TARGET);
    if (best >= target)
        return cycle_count_of(g, best_sku, best_node);
    const pn_state_t *s = state_of(g, best_sku, best_node);
    int64_t on_hand = s ? s->on_hand : 0;
    return send_cmd(g, PN_CMD_UPDATE, NULL, best_sku, best_node, true,
                    (int32_t)(on_hand + target - best), "receiving", NULL);
}

/* A cycle count finds a little shrinkage, or confirms the count (an
 * accepted command with no event). */
static pn_err_t cycle_count_of(gen_t *g, int sku, int node) {
    const pn_state_t *s = state_of(g, sku, node);
    int64_t q = (s ? s->on_hand : 0) - below(g, 4);
    return send_cmd(g, PN_CMD_UPDATE, NULL, sku, node, true,
                    (int32_t)(q < 0 ? 0 : q), "cycle-count", NULL);
}

static pn_err_t cycle_count(gen_t *g) {
    return cycle_count_of(g, below(g, g->o->skus), below(g, g->o->nodes));
}

/* A client retries: the same record again, same id (a duplicate). */
static pn_err_t resend(gen_t *g) {
    if (!g->n_ring)
        return place_order(g);
    size_t n = g->n_ring < RESEND_RING ? g->n_ring : RESEND_RING;
    pn_demo_record_t r = g->flow->records[g->ring[below(g, (int)n)]];
    pn_outcome_t out;
    pn_err_t err = push_record(g->flow, &r);
    if (!err)
        err = replay(g, &r, &out);
    if (err)
        return err;
    g->flow->sent.resent++;
    g->budget--;
    g->at_ms += STEP_MS;
    return PN_ERR_OK;
}

/* Commands the domain must reject, one kind at a time. */
static pn_err_t mistake(gen_t *g) {
    char sku_s[32], node_s[32], name[32], bad_sku[64];
    int sku = pick_sku(g), node = below(g, g->o->nodes);
    sku_name(sku, sku_s, sizeof sku_s);
    node_name(node, node_s, sizeof node_s);
    g->flow->sent.mistakes++;
    int kind = below(g, 5);
    if (kind == 1 && g->n_orders) { /* ship more than was reserved */
        const order_t *o = &g->orders[below(g, (int)g->n_orders)];
        order_name(o->no, name, sizeof name);
        return send_cmd(g, PN_CMD_SHIP, name, o->skus[0], o->node, true,
                    (int32_t)held(g, o, 0) + 1 + below(g, 3), "warehouse",
                    NULL);
    }
    spec_t s = {PN_CMD_CANCEL, "ord-000000", sku_s, node_s, false, 0,
                "customer-service"}; /* an order that does not exist */
    if (kind == 2) { /* an emptied cart line */
        order_name(++g->next_order, name, sizeof name);
        s = (spec_t){PN_CMD_RESERVE, name, sku_s, node_s, true, 0, "checkout"};
    } else if (kind == 3) { /* a scanner glitch */
        s = (spec_t){PN_CMD_UPDATE, NULL, sku_s, node_s, true,
                     -1 - below(g, 5), "cycle-count"};
    } else if (kind == 4) { /* the stream key pasted into skuId */
        snprintf(bad_sku, sizeof bad_sku, "%s|%s", sku_s, node_s);
        order_name(++g->next_order, name, sizeof name);
        s = (spec_t){PN_CMD_RESERVE, name, bad_sku, node_s, true, 1, "checkout"};
    }
    return send_spec(g, &s, -1, false, NULL);
}

/* A legacy producer with the wrong partitioner: the next partition. */
static pn_err_t misrouted(gen_t *g) {
    int sku = pick_sku(g), node = below(g, g->o->nodes);
    char sku_s[32], node_s[32], key[PN_STREAM_KEY_MAX];
    sku_name(sku, sku_s, sizeof sku_s);
    node_name(node, node_s, sizeof node_s);
    size_t len = pn_stream_key(pn_str_c(sku_s), pn_str_c(node_s), key, sizeof key);
    int32_t p = (pn_partition_for_key(key, len, g->o->partitions) + 1) %
                g->o->partitions;
    const pn_state_t *st = state_of(g, sku, node);
    spec_t s = {PN_CMD_UPDATE, NULL, sku_s, node_s, true,
                (int32_t)((st ? st->on_hand : 0) + 10), "legacy-erp"};
    g->flow->sent.misrouted++;
    return send_spec(g, &s, p, false, NULL);
}

/* Records no decoder can read: JSON sent to the Avro topic, and a record
 * cut short. Both must end up as dead letters. */
static bool decodes(gen_t *g, const pn_buf_t *value) {
    pn_command_t cmd;
    if (pn_codec_decode_command(g->codec, value->data, value->len, &cmd, NULL,
                                0) != PN_ERR_OK)
        return false;
    pn_command_release(&cmd);
    return true;
}

static pn_err_t undecodable(gen_t *g, int which) {
    pn_demo_flow_t *f = g->flow;
    pn_buf_t *v = &g->scratch;
    pn_buf_reset(v);
    pn_err_t err = PN_ERR_OK;
    if (which == 0) {
        err = pn_buf_appendf(v, "{\"type\":\"ReserveInventory\",\"skuId\":"
                                "\"SKU-1001\",\"fulfillmentNodeId\":\"DC-01\","
                                "\"quantity\":2}");
    } else {
        const pn_demo_record_t *last = &f->records[f->n_records - 1];
        err = pn_buf_append(v, f->bytes.data + last->value_off,
                            last->value_len / 2);
        if (!err && decodes(g, v))
            v->len = 1; /* no command fits in one byte */
    }
    if (!err && decodes(g, v))
        return pn_err_set(g->errstr, g->errstr_size, PN_ERR_INTERNAL,
                          "order flow: a garbage record decodes");
    pn_demo_record_t r = {.partition = -1, .key_off = f->bytes.len};
    if (!err)
        err = pn_buf_appendf(&f->bytes, "SKU-1001|DC-01");
    r.key_len = f->bytes.len - r.key_off;
    r.value_off = f->bytes.len;
    if (!err)
        err = pn_buf_append(&f->bytes, v->data, v->len);
    r.value_len = v->len;
    if (!err)
        err = push_record(f, &r);
    if (!err)
        f->sent.undecodable++;
    return err;
}

/* One business event; the shares are per mille. */
static pn_err_t step(gen_t *g) {
    int r = below(g, 1000);
    if (r < 400)
        return place_order(g);
    if (r < 740)
        return ship_order(g);
    if (r < 820)
        return cancel_order(g);
    if (r < 900)
        return restock(g);
    if (r < 940)
        return cycle_count(g);
    if (r < 970)
        return resend(g);
    return mistake(g);
}

static pn_err_t run(gen_t *g) {
    const pn_demo_flow_options_t *o = g->o;
    int n_misrouted = o->partitions > 1 && o->commands > N_MISROUTED * 4
                          ? N_MISROUTED
                          : 0;
    g->budget = o->commands - n_misrouted;
    pn_err_t err = initial_stock(g);
    long main_budget = g->budget, garbage_at[N_UNDECODABLE];
    int garbage = 0;
    for (int i = 0; i < N_UNDECODABLE; i++)
        garbage_at[i] = main_budget - main_budget * (i + 1) / (N_UNDECODABLE + 1);
    while (!err && g->budget > 0) {
        err = step(g);
        while (!err && garbage < N_UNDECODABLE && g->budget <= garbage_at[garbage])
            err = undecodable(g, garbage++);
    }
    for (int i = 0; !err && i < n_misrouted; i++) {
        g->budget = 1;
        err = misrouted(g);
    }
    return err;
}

pn_err_t pn_demo_flow_build(const pn_demo_flow_options_t *o,
                            pn_demo_flow_t *f, char *errstr,
                            size_t errstr_size) {
    memset(f, 0, sizeof *f);
    pn_buf_init(&f->bytes, (size_t)1 << 31);
    pn_map_init(&f->streams);
    pn_map_init(&f->seen);
    if (o->commands < 1 || o->skus < 1 || o->nodes < 1 || o->partitions < 1)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "order flow: commands, skus, nodes and partitions "
                          "must be positive");
    gen_t g = {.o = o, .flow = f, .rng = o->seed, .at_ms = o->start_ms,
               .errstr = errstr, .errstr_size = errstr_size};
    pn_buf_init(&g.scratch, PN_CODEC_DEFAULT_MAX_RECORD_BYTES);
    pn_codec_config_t cc = {0};
    pn_err_t err = pn_codec_new(&cc, &g.codec, errstr, errstr_size);
    if (!err)
        err = make_cdf(&g);
    if (!err)
        err = run(&g);
    if (err == PN_ERR_NOMEM)
        pn_err_set(errstr, errstr_size, err, "order flow: out of memory");
    pn_codec_free(g.codec);
    pn_buf_free(&g.scratch);
    free(g.sku_cdf);
    free(g.orders);
    return err;
}

const pn_state_t *pn_demo_flow_state(const pn_demo_flow_t *f, const char *key,
                                     size_t len) {
    pn_map_entry_t *e = len ? pn_map_find(&f->streams, key, len) : NULL;
    return e ? e->value : NULL;
}

static void free_state(void *value) {
    pn_state_clear(value);
    free(value);
}

void pn_demo_flow_free(pn_demo_flow_t *f) {
    if (!f)
        return;
    pn_buf_free(&f->bytes);
    free(f->records);
    pn_map_free(&f->streams, free_state);
    pn_map_free(&f->seen, free);
    memset(f, 0, sizeof *f);
}
