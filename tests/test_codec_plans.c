/*
 * The codec's direct plans (src/codec_direct.c) against Avro C's generic
 * path: for random records of every kind, both write the same bytes, read
 * the same values and fail the same way. Then the compiler on schemas of
 * its own: what it accepts, what it refuses, and the bytes of the cases
 * our schemas do not have.
 */
#include <string.h>

#include "codec_internal.h"
#include "codec_same.h"
#include "pn_test.h"

#define ERRSZ 512
#define RECORDS 3000

static pn_codec_t *new_codec(size_t max_record_bytes) {
    pn_codec_t *codec = NULL;
    char errstr[ERRSZ] = "";
    pn_codec_config_t conf = {.max_record_bytes = max_record_bytes};
    pn_err_t err = pn_codec_new(&conf, &codec, errstr, sizeof errstr);
    PN_ASSERT_(err == PN_ERR_OK, CU_TRUE, "pn_codec_new: %s (%.200s)",
               pn_err_name(err), errstr);
    return codec;
}

/* --- random values -------------------------------------------------------- */

/* One draw per statement: C leaves the order of two calls in one
 * expression open, and a seed must give the same records on every build. */

#define TEXT_MAX 20000

typedef struct gen {
    uint64_t rng;
    char text[8][TEXT_MAX]; /* backing for the strings of one record */
    int used;
} gen_t;

static uint64_t below(gen_t *g, uint64_t n) { return pn_test_rand(&g->rng) % n; }

/* A string of 0 to 90 bytes, now and then of up to 20,000 (a length of
 * three varint bytes): ASCII with NUL, two-, three- and four-byte UTF-8. */
static pn_str_t gen_str(gen_t *g) {
    char *t = g->text[g->used++ % 8];
    size_t want;
    switch (below(g, 40)) {
    case 0:
        want = below(g, TEXT_MAX - 4);
        break;
    case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9:
        want = below(g, 3);
        break;
    default:
        want = below(g, 88);
    }
    size_t len = 0;
    while (len < want) {
        switch (below(g, 8)) {
        case 0:
            memcpy(t + len, "\xc3\xa9", 2);
            len += 2;
            break;
        case 1:
            memcpy(t + len, "\xe2\x82\xac", 3);
            len += 3;
            break;
        case 2:
            memcpy(t + len, "\xf0\x9f\x90\x86", 4); /* U+1F406 */
            len += 4;
            break;
        case 3:
            t[len++] = '\0';
            break;
        default:
            t[len++] = (char)(' ' + below(g, 95));
        }
    }
    return (pn_str_t){t, len};
}

/* Longs across every varint width, both signs and the extremes. */
static int64_t gen_long(gen_t *g) {
    switch (below(g, 5)) {
    case 0:
        return below(g, 2) ? INT64_MAX : INT64_MIN;
    case 1:
        return (int64_t)below(g, 200) - 100;
    default: {
        uint64_t bits = pn_test_rand(&g->rng);
        int64_t v = (int64_t)(bits >> below(g, 64));
        return below(g, 2) ? v : (int64_t)(0 - (uint64_t)v); /* no UB */
    }
    }
}

static int32_t gen_int(gen_t *g) {
    switch (below(g, 3)) {
    case 0:
        return below(g, 2) ? INT32_MAX : INT32_MIN;
    default: {
        int32_t bits = (int32_t)(uint32_t)pn_test_rand(&g->rng);
        return bits >> below(g, 32);
    }
    }
}

static pn_command_t gen_command(gen_t *g) {
    pn_command_t c = {.type = (pn_command_type_t)below(g, PN_CMD__COUNT)};
    c.id = gen_str(g);
    c.sku_id = gen_str(g);
    c.node_id = gen_str(g);
    c.by = gen_str(g);
    c.order_id = c.type == PN_CMD_UPDATE ? PN_STR_NULL : gen_str(g);
    /* Cancel and ship may leave the quantity out; the others may not. */
    bool optional = c.type == PN_CMD_CANCEL || c.type == PN_CMD_SHIP;
    c.has_quantity = !optional || below(g, 2);
    c.quantity = c.has_quantity ? gen_int(g) : 0;
    c.at_ms = gen_long(g);
    /* A plain UpdateInventory with an empty id reads as Confluent framing
     * (codec_command.c): give it one. */
    if (c.type == PN_CMD_UPDATE && c.id.len == 0)
        c.id = pn_str_c("u");
    return c;
}

static pn_event_t gen_event(gen_t *g) {
    pn_event_t e = {.type = (pn_event_type_t)below(g, PN_EVT__COUNT)};
    e.sku_id = gen_str(g);
    e.node_id = gen_str(g);
    e.version = gen_long(g);
    e.command_id = gen_str(g);
    e.by = gen_str(g);
    e.at_ms = gen_long(g);
    e.order_id = e.type == PN_EVT_UPDATED ? PN_STR_NULL : gen_str(g);
    e.quantity = gen_int(g);
    e.previous_quantity = e.type == PN_EVT_UPDATED ? gen_long(g) : 0;
    return e;
}

static pn_outcome_record_t gen_outcome(gen_t *g) {
    pn_outcome_record_t r = {.storage = NULL}; /* then field by field, so
                                                  a seed gives one record */
    r.command_id = gen_str(g);
    r.order_id = below(g, 3) ? gen_str(g) : PN_STR_NULL;
    r.sku_id = gen_str(g);
    r.node_id = gen_str(g);
    r.at_ms = gen_long(g);
    pn_outcome_t *o = &r.outcome;
    o->command_type = (pn_command_type_t)below(g, PN_CMD__COUNT);
    o->status = below(g, 2) ? PN_STATUS_ACCEPTED : PN_STATUS_REJECTED;
    o->reason = o->status == PN_STATUS_ACCEPTED
                    ? PN_REASON_NONE
                    : (pn_reason_t)below(g, PN_REASON__COUNT);
    o->duplicate = below(g, 2);
    o->version = gen_long(g);
    o->on_hand = gen_long(g);
    o->reserved = gen_long(g);
    o->available = gen_long(g);
    return r;
}

/* --- both paths ----------------------------------------------------------- */

/* Encodes with the plans, then with Avro C's generic path, from the same
 * codec, and requires the same result; out keeps the planned bytes. */
typedef pn_err_t (*encode_fn)(pn_codec_t *codec, const void *record,
                              pn_buf_t *out);

static pn_err_t encode_command(pn_codec_t *codec, const void *record,
                               pn_buf_t *out) {
    return pn_codec_encode_command(codec, record, PN_FRAMING_PLAIN, 0, out);
}

static pn_err_t encode_confluent(pn_codec_t *codec, const void *record,
                                 pn_buf_t *out) {
    return pn_codec_encode_command(codec, record, PN_FRAMING_CONFLUENT, 7,
                                   out);
}

static pn_err_t encode_single_object(pn_codec_t *codec, const void *record,
                                     pn_buf_t *out) {
    return pn_codec_encode_command(codec, record, PN_FRAMING_SINGLE_OBJECT,
                                   0, out);
}

static const encode_fn command_framings[] = {
    encode_command, encode_confluent, encode_single_object};

static pn_err_t encode_event(pn_codec_t *codec, const void *record,
                             pn_buf_t *out) {
    return pn_codec_encode_event(codec, record, out);
}

static pn_err_t encode_outcome(pn_codec_t *codec, const void *record,
                               pn_buf_t *out) {
    return pn_codec_encode_outcome_record(codec, record, out);
}

static unsigned encodings; /* every other one gives Avro C room at once */

static pn_err_t encode_both(pn_codec_t *codec, encode_fn encode,
                            const void *record, pn_buf_t *planned) {
    pn_buf_t generic;
    size_t start = planned->len; /* the bytes before are not ours */
    pn_buf_init(&generic, planned->max - start);
    /* Room up front takes Avro C's one-pass write, none its sizing pass. */
    if (encodings++ % 2 && generic.max >= 64)
        PN_REQUIRE(pn_buf_reserve(&generic, generic.max < 65536
                                                ? generic.max
                                                : 65536) == PN_ERR_OK);
    pn_codec__use_plans(codec, true);
    pn_err_t err = encode(codec, record, planned);
    pn_codec__use_plans(codec, false);
    pn_err_t generic_err = encode(codec, record, &generic);
    pn_codec__use_plans(codec, true);
    PN_ASSERT_EQ_INT(err, generic_err);
    size_t added = planned->len - start;
    PN_ASSERT_EQ_INT(added, generic.len);
    if (added == generic.len && added)
        PN_ASSERT(memcmp(planned->data + start, generic.data, added) == 0);
    pn_buf_free(&generic);
    return err;
}

/* Decodes with the plan and with Avro C, and requires the same outcome. */
static void decode_both(pn_codec_t *codec, const uint8_t *data, size_t len,
                        const pn_command_t *expected) {
    char errstr[ERRSZ] = "", generic_errstr[ERRSZ] = "";
    pn_command_t planned, generic;
    pn_err_t err = pn_codec_decode_command(codec, data, len, &planned, errstr,
                                           ERRSZ);
    pn_codec__use_plans(codec, false);
    pn_err_t generic_err = pn_codec_decode_command(codec, data, len, &generic,
                                                   generic_errstr, ERRSZ);
    pn_codec__use_plans(codec, true);
    PN_ASSERT_EQ_INT(err, generic_err);
    if (!err && !generic_err)
        PN_ASSERT(pn_same_command(&planned, &generic));
    if (expected) {
        PN_ASSERT_EQ_INT(err, PN_ERR_OK);
        PN_ASSERT(!err && pn_same_command(&planned, expected));
    }
    pn_command_release(&planned);
    pn_command_release(&generic);
}

/* --- the cases ------------------------------------------------------------ */

static void test_plans_compiled(void) {
    pn_codec_t *codec = new_codec(0);
    PN_ASSERT(pn_codec__plan(codec, PN_SCHEMA_COMMAND) != NULL);
    PN_ASSERT(pn_codec__plan(codec, PN_SCHEMA_INVENTORY_EVENT) != NULL);
    PN_ASSERT(pn_codec__plan(codec, PN_SCHEMA_COMMAND_OUTCOME) != NULL);
    pn_codec__use_plans(codec, false);
    PN_ASSERT(pn_codec__plan(codec, PN_SCHEMA_COMMAND) == NULL);
    pn_codec_free(codec);
}

static void test_commands_both_paths(void) {
    pn_codec_t *codec = new_codec(0);
    gen_t g = {.rng = 0x5eed01};
    pn_buf_t out;
    pn_buf_init(&out, 1 << 20);
    for (int i = 0; i < RECORDS; i++) {
        pn_command_t c = gen_command(&g);
        size_t framing = below(&g, 3);
        pn_buf_reset(&out);
        PN_REQUIRE(encode_both(codec, command_framings[framing], &c, &out) ==
                   PN_ERR_OK);
        /* Confluent ids need a registry; the other two decode alone. */
        if (framing != 1)
            decode_both(codec, out.data, out.len, &c);
    }
    pn_buf_free(&out);
    pn_codec_free(codec);
}

/* A copy of data with one byte changed, and a prefix of it: the decoders
 * of both paths must answer both alike. */
static void damage_both(gen_t *g, pn_codec_t *codec, const pn_buf_t *good,
                        void (*both)(pn_codec_t *, const uint8_t *, size_t)) {
    static uint8_t damaged[8 * TEXT_MAX];
    PN_REQUIRE(good->len <= sizeof damaged);
    memcpy(damaged, good->data, good->len);
    size_t at = below(g, good->len);
    damaged[at] ^= (uint8_t)(1 + below(g, 255));
    both(codec, damaged, good->len);
    both(codec, good->data, below(g, good->len));
}

static void command_damaged_both(pn_codec_t *codec, const uint8_t *data,
                                 size_t len) {
    decode_both(codec, data, len, NULL);
}

/* Every byte string both decoders see, valid or not, gets the same
 * answer. */
static void test_command_damage_both_paths(void) {
    pn_codec_t *codec = new_codec(0);
    gen_t g = {.rng = 0x5eed02};
    pn_buf_t out;
    pn_buf_init(&out, 1 << 20);
    for (int i = 0; i < RECORDS; i++) {
        pn_command_t c = gen_command(&g);
        pn_buf_reset(&out);
        PN_REQUIRE(pn_codec_encode_command(codec, &c, PN_FRAMING_PLAIN, 0,
                                           &out) == PN_ERR_OK);
        damage_both(&g, codec, &out, command_damaged_both);
    }
    pn_buf_free(&out);
    pn_codec_free(codec);
}

static void event_decode_both(pn_codec_t *codec, const uint8_t *data,
                              size_t len, const pn_event_t *expected) {
    char errstr[ERRSZ] = "";
    pn_event_t planned, generic;
    pn_err_t err = pn_codec_decode_event(codec, data, len, &planned, errstr,
                                         ERRSZ);
    pn_codec__use_plans(codec, false);
    pn_err_t generic_err = pn_codec_decode_event(codec, data, len, &generic,
                                                 errstr, ERRSZ);
    pn_codec__use_plans(codec, true);
    PN_ASSERT_EQ_INT(err, generic_err);
    if (!err && !generic_err)
        PN_ASSERT(pn_same_event(&planned, &generic));
    if (expected)
        PN_ASSERT(!err && pn_same_event(&planned, expected));
    pn_event_release(&planned);
    pn_event_release(&generic);
}

static void outcome_decode_both(pn_codec_t *codec, const uint8_t *data,
                                size_t len,
                                const pn_outcome_record_t *expected) {
    char errstr[ERRSZ] = "";
    pn_outcome_record_t planned, generic;
    pn_err_t err = pn_codec_decode_outcome(codec, data, len, &planned, errstr,
                                           ERRSZ);
    pn_codec__use_plans(codec, false);
    pn_err_t generic_err = pn_codec_decode_outcome(codec, data, len, &generic,
                                                   errstr, ERRSZ);
    pn_codec__use_plans(codec, true);
    PN_ASSERT_EQ_INT(err, generic_err);
    if (!err && !generic_err)
        PN_ASSERT(pn_same_outcome(&planned, &generic));
    if (expected)
        PN_ASSERT(!err && pn_same_outcome(&planned, expected));
    pn_outcome_record_release(&planned);
    pn_outcome_record_release(&generic);
}

static void event_damaged_both(pn_codec_t *codec, const uint8_t *data,
                               size_t len) {
    event_decode_both(codec, data, len, NULL);
}

static void outcome_damaged_both(pn_codec_t *codec, const uint8_t *data,
                                 size_t len) {
    outcome_decode_both(codec, data, len, NULL);
}

static void test_events_both_paths(void) {
    pn_codec_t *codec = new_codec(0);
    gen_t g = {.rng = 0x5eed03};
    pn_buf_t out;
    pn_buf_init(&out, 1 << 20);
    for (int i = 0; i < RECORDS; i++) {
        pn_event_t e = gen_event(&g);
        pn_buf_reset(&out);
        PN_REQUIRE(encode_both(codec, encode_event, &e, &out) == PN_ERR_OK);
        event_decode_both(codec, out.data, out.len, &e);
        damage_both(&g, codec, &out, event_damaged_both);
    }
    pn_buf_free(&out);
    pn_codec_free(codec);
}

static void test_outcomes_both_paths(void) {
    pn_codec_t *codec = new_codec(0);
    gen_t g = {.rng = 0x5eed04};
    pn_buf_t out;
    pn_buf_init(&out, 1 << 20);
    for (int i = 0; i < RECORDS; i++) {
        pn_outcome_record_t r = gen_outcome(&g);
        pn_buf_reset(&out);
        PN_REQUIRE(encode_both(codec, encode_outcome, &r, &out) == PN_ERR_OK);
        outcome_decode_both(codec, out.data, out.len, &r);
        damage_both(&g, codec, &out, outcome_damaged_both);
    }
    pn_buf_free(&out);
    pn_codec_free(codec);
}

/* Refusals match too: a null where the schema has none, a view with a
 * length and no bytes, a record over the codec's limit or over the
 * buffer's; and a refused record leaves the buffer as it was. */
static void test_refusals_both_paths(void) {
    pn_codec_t *codec = new_codec(200);
    gen_t g = {.rng = 0x5eed05};
    pn_buf_t out;
    pn_buf_init(&out, 1 << 20);
    PN_REQUIRE(pn_buf_append(&out, "kept", 4) == PN_ERR_OK);

    pn_command_t c = gen_command(&g);
    c.type = PN_CMD_RESERVE;
    c.order_id = pn_str_c("o");
    c.has_quantity = false; /* ReserveInventory's quantity is an int */
    PN_ASSERT_EQ_INT(encode_both(codec, encode_command, &c, &out),
                     PN_ERR_INVALID_ARG);
    c.has_quantity = true;
    c.by = (pn_str_t){NULL, 3};
    PN_ASSERT_EQ_INT(encode_both(codec, encode_command, &c, &out),
                     PN_ERR_INVALID_ARG);
    c.by = pn_str_c("b");
    char big[300];
    memset(big, 'x', sizeof big);
    c.sku_id = (pn_str_t){big, 190}; /* the record passes 200 bytes */
    PN_ASSERT_EQ_INT(encode_both(codec, encode_command, &c, &out),
                     PN_ERR_TOO_LARGE);
    PN_ASSERT_EQ_INT(out.len, 4);

    pn_codec_free(codec);
    codec = new_codec(0);
    pn_buf_t small;
    pn_buf_init(&small, 40); /* the buffer's own bound */
    pn_event_t e = gen_event(&g);
    e.sku_id = (pn_str_t){big, 60};
    PN_ASSERT_EQ_INT(encode_both(codec, encode_event, &e, &small),
                     PN_ERR_TOO_LARGE);
    PN_ASSERT_EQ_INT(small.len, 0);
    pn_buf_free(&small);

    /* An optional string with a length and no bytes is not a null. */
    pn_outcome_record_t r = gen_outcome(&g);
    r.order_id = (pn_str_t){NULL, 3};
    PN_ASSERT_EQ_INT(encode_both(codec, encode_outcome, &r, &out),
                     PN_ERR_INVALID_ARG);
    pn_buf_free(&out);
    pn_codec_free(codec);
}

/* Two faults in one record: the first field at fault decides, on both
 * paths (an id past the limit comes before a missing quantity). */
static void test_first_fault_decides(void) {
    pn_codec_t *codec = new_codec(200);
    pn_buf_t out;
    pn_buf_init(&out, 1 << 20);
    char big[250];
    memset(big, 'i', sizeof big);
    pn_command_t c = {.type = PN_CMD_RESERVE,
                      .id = {big, sizeof big},
                      .order_id = pn_str_c("o"),
                      .sku_id = pn_str_c("s"),
                      .node_id = pn_str_c("n"),
                      .by = pn_str_c("b"),
                      .has_quantity = false};
    PN_ASSERT_EQ_INT(encode_both(codec, encode_command, &c, &out),
                     PN_ERR_TOO_LARGE);
    c.id = pn_str_c("i");
    c.by = (pn_str_t){big, sizeof big}; /* now the quantity comes first */
    PN_ASSERT_EQ_INT(encode_both(codec, encode_command, &c, &out),
                     PN_ERR_INVALID_ARG);
    pn_buf_free(&out);
    pn_codec_free(codec);
}

/* A record exactly at the codec's limit is written, one byte over is
 * not, the framing's header counted in; a limit below the header takes
 * nothing. The same on both paths. */
static void test_limit_edges(void) {
    gen_t g = {.rng = 0x5eed06};
    pn_command_t c = gen_command(&g);
    pn_buf_t out;
    pn_buf_init(&out, 1 << 20);
    pn_codec_t *codec = new_codec(0);
    PN_REQUIRE(pn_codec_encode_command(codec, &c, PN_FRAMING_PLAIN, 0, &out) ==
               PN_ERR_OK);
    size_t body = out.len;
    pn_codec_free(codec);
    static const size_t header[3] = {0, 5, 10};
    for (size_t f = 0; f < 3; f++) {
        for (size_t over = 0; over < 2; over++) {
            codec = new_codec(body + header[f] - over);
            pn_buf_reset(&out);
            PN_ASSERT_EQ_INT(encode_both(codec, command_framings[f], &c, &out),
                             over ? PN_ERR_TOO_LARGE : PN_ERR_OK);
            PN_ASSERT_EQ_INT(out.len, over ? 0 : body + header[f]);
            pn_codec_free(codec);
        }
        if (header[f] == 0)
            continue;
        codec = new_codec(header[f] - 1);
        pn_buf_reset(&out);
        PN_ASSERT_EQ_INT(encode_both(codec, command_framings[f], &c, &out),
                         PN_ERR_TOO_LARGE);
        PN_ASSERT_EQ_INT(out.len, 0);
        pn_codec_free(codec);
    }
    pn_buf_free(&out);
    pn_codec_t *none = NULL;
    char errstr[ERRSZ] = "";
    pn_codec_config_t conf = {.max_record_bytes = SIZE_MAX};
    PN_ASSERT_EQ_INT(pn_codec_new(&conf, &none, errstr, ERRSZ),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT(none == NULL && strstr(errstr, "record limit") != NULL);
}

/* CommandOutcome's bytes, written out by hand from the schema: an oracle
 * that owes nothing to either path. */
static void test_outcome_golden_bytes(void) {
    pn_codec_t *codec = new_codec(0);
    pn_outcome_record_t r = {.command_id = pn_str_c("c1"),
                             .order_id = pn_str_c("o"),
                             .sku_id = pn_str_c("s"),
                             .node_id = pn_str_c("n"),
                             .at_ms = 1000};
    r.outcome = (pn_outcome_t){.command_type = PN_CMD_RESERVE,
                               .status = PN_STATUS_REJECTED,
                               .reason = PN_REASON_INSUFFICIENT_INVENTORY,
                               .duplicate = true,
                               .version = 3,
                               .on_hand = -1,
                               .reserved = 64,
                               .available = 0};
    static const uint8_t expected[] = {
        0x04, 'c', '1',   /* commandId */
        0x02,             /* commandType RESERVE (1) */
        0x02, 0x02, 'o',  /* orderId: branch 1, "o" */
        0x02, 's',        /* skuId */
        0x02, 'n',        /* fulfillmentNodeId */
        0x02,             /* status REJECTED (1) */
        0x02, 0x00,       /* reason: branch 1, INSUFFICIENT_INVENTORY (0) */
        0x01,             /* duplicate */
        0x06,             /* version 3 */
        0x01,             /* onHand -1 */
        0x80, 0x01,       /* reserved 64 */
        0x00,             /* available 0 */
        0xd0, 0x0f};      /* at 1000 */
    pn_buf_t out;
    pn_buf_init(&out, 256);
    PN_REQUIRE(encode_both(codec, encode_outcome, &r, &out) == PN_ERR_OK);
    PN_ASSERT_EQ_INT(out.len, sizeof expected);
    PN_ASSERT(out.len == sizeof expected &&
              memcmp(out.data, expected, sizeof expected) == 0);
    outcome_decode_both(codec, expected, sizeof expected, &r);
    pn_buf_free(&out);
    pn_codec_free(codec);
}

/* --- the compiler on schemas of its own ----------------------------------- */

enum { S_A, S_B, S_C, S_BRANCH, S__COUNT };

static avro_schema_t parse(const char *json) {
    avro_schema_t s = NULL;
    PN_REQUIRE(avro_schema_from_json_length(json, strlen(json), &s) == 0);
    return s;
}

static bool compiles(const char *json, const pn_codec_binding_t *b, size_t n,
                     pn_codec_plan_t *plan) {
    avro_schema_t s = parse(json);
    bool ok = pn_codec__plan_compile(plan, s, b, n, S__COUNT, S_BRANCH);
    avro_schema_decref(s);
    return ok;
}

static void test_compiler_refuses(void) {
    static const pn_codec_binding_t str_a[] = {{"a", S_A, PN_CODEC_CLASS_STR}};
    pn_codec_plan_t plan;
    /* A field nothing binds: the generic path would write its default. */
    PN_ASSERT(!compiles("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"a\",\"type\":\"string\"},"
                        "{\"name\":\"z\",\"type\":\"long\"}]}",
                        str_a, 1, &plan));
    PN_ASSERT(plan.steps == NULL && plan.n == 0);
    /* A type of another class than the binding's. */
    PN_ASSERT(!compiles("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"a\",\"type\":\"long\"}]}",
                        str_a, 1, &plan));
    /* Unions other than [null, X]. */
    PN_ASSERT(!compiles("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"a\",\"type\":[\"null\",\"string\","
                        "\"long\"]}]}",
                        str_a, 1, &plan));
    PN_ASSERT(!compiles("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"a\",\"type\":[\"long\",\"string\"]}]}",
                        str_a, 1, &plan));
    /* Types it has no step for. */
    PN_ASSERT(!compiles("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"a\",\"type\":{\"type\":\"array\","
                        "\"items\":\"string\"}}]}",
                        str_a, 1, &plan));
    PN_ASSERT(!compiles("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"a\",\"type\":\"bytes\"}]}",
                        str_a, 1, &plan));
    /* A slot past the caller's array, or one bound twice on a path. */
    static const pn_codec_binding_t far[] = {{"a", S__COUNT, PN_CODEC_CLASS_STR}};
    PN_ASSERT(!compiles("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"a\",\"type\":\"string\"}]}",
                        far, 1, &plan));
    static const pn_codec_binding_t twice[] = {
        {"a", S_A, PN_CODEC_CLASS_STR}, {"b", S_A, PN_CODEC_CLASS_STR}};
    PN_ASSERT(!compiles("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"a\",\"type\":\"string\"},"
                        "{\"name\":\"b\",\"type\":\"string\"}]}",
                        twice, 2, &plan));
    static const pn_codec_binding_t nested[] = {
        {"a", S_A, PN_CODEC_CLASS_STR}, {"u", S_BRANCH, PN_CODEC_CLASS_RECORDS}};
    PN_ASSERT(!compiles("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"a\",\"type\":\"string\"},"
                        "{\"name\":\"u\",\"type\":[{\"type\":\"record\","
                        "\"name\":\"In\",\"fields\":[{\"name\":\"a\","
                        "\"type\":\"string\"}]}]}]}",
                        nested, 2, &plan));
    /* Two branches may each use a slot: they are different paths. */
    PN_ASSERT(compiles("[{\"type\":\"record\",\"name\":\"X\",\"fields\":["
                       "{\"name\":\"a\",\"type\":\"string\"}]},"
                       "{\"type\":\"record\",\"name\":\"Y\",\"fields\":["
                       "{\"name\":\"a\",\"type\":\"string\"}]}]",
                       str_a, 1, &plan));
    pn_codec__plan_free(&plan);
    /* A union of records with a branch that is not one. */
    static const pn_codec_binding_t in_records[] = {
        {"a", S_A, PN_CODEC_CLASS_STR}};
    PN_ASSERT(!compiles("[{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"a\",\"type\":\"string\"}]},\"null\"]",
                        in_records, 1, &plan));
}

/* [X, null] puts the value first: its branch index is 0, null's is 1.
 * (And a boolean, which no command has, read back.) */
static void test_compiler_value_first_union(void) {
    static const pn_codec_binding_t b[] = {{"a", S_A, PN_CODEC_CLASS_STR},
                                           {"b", S_B, PN_CODEC_CLASS_INT},
                                           {"c", S_C, PN_CODEC_CLASS_BOOL}};
    pn_codec_plan_t plan;
    PN_REQUIRE(compiles("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"a\",\"type\":[\"string\",\"null\"]},"
                        "{\"name\":\"b\",\"type\":[\"int\",\"null\"]},"
                        "{\"name\":\"c\",\"type\":\"boolean\"}]}",
                        b, 3, &plan));
    pn_codec_t *codec = new_codec(0);
    pn_buf_t out;
    pn_buf_init(&out, 64);
    pn_codec_slot_t v[S__COUNT] = {[S_A] = {.str = pn_str_c("x")},
                                   [S_B] = {.null = true},
                                   [S_C] = {.num = 1}};
    PN_REQUIRE(pn_codec__plan_encode(codec, &plan, v, NULL, 0, &out) ==
               PN_ERR_OK);
    static const uint8_t expected[] = {0x00, 0x02, 'x', 0x02, 0x01};
    PN_ASSERT_EQ_INT(out.len, sizeof expected);
    PN_ASSERT(memcmp(out.data, expected, sizeof expected) == 0);
    pn_codec_slot_t back[S__COUNT] = {{.num = 0}};
    PN_ASSERT(pn_codec__plan_decode(&plan, out.data, out.len, back));
    PN_ASSERT(pn_str_eq(back[S_A].str, pn_str_c("x")) && back[S_B].null &&
              back[S_C].num == 1);
    /* Bytes left over mean the plan and the data disagree. */
    uint8_t longer[] = {0x00, 0x02, 'x', 0x02, 0x01, 0x00};
    PN_ASSERT(!pn_codec__plan_decode(&plan, longer, sizeof longer, back));
    pn_buf_free(&out);
    pn_codec_free(codec);
    pn_codec__plan_free(&plan);
    pn_codec__plan_free(&plan); /* twice is harmless */
    pn_codec__plan_free(NULL);
}

/* An enum's index must be one of its symbols, both ways. */
static void test_compiler_enum_range(void) {
    static const pn_codec_binding_t b[] = {{"e", S_A, PN_CODEC_CLASS_ENUM}};
    pn_codec_plan_t plan;
    PN_REQUIRE(compiles("{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                        "{\"name\":\"e\",\"type\":{\"type\":\"enum\","
                        "\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]}}]}",
                        b, 1, &plan));
    pn_codec_t *codec = new_codec(0);
    pn_buf_t out;
    pn_buf_init(&out, 64);
    pn_codec_slot_t v[S__COUNT] = {[S_A] = {.num = 1}};
    PN_ASSERT_EQ_INT(pn_codec__plan_encode(codec, &plan, v, NULL, 0, &out),
                     PN_ERR_OK);
    PN_ASSERT(out.len == 1 && out.data[0] == 0x02);
    v[S_A].num = 2;
    PN_ASSERT_EQ_INT(pn_codec__plan_encode(codec, &plan, v, NULL, 0, &out),
                     PN_ERR_INVALID_ARG);
    v[S_A].num = -1;
    PN_ASSERT_EQ_INT(pn_codec__plan_encode(codec, &plan, v, NULL, 0, &out),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(out.len, 1);
    static const uint8_t third[] = {0x04};
    PN_ASSERT(!pn_codec__plan_decode(&plan, third, 1, v));
    pn_buf_free(&out);
    pn_codec_free(codec);
    pn_codec__plan_free(&plan);
}

static const pn_test_case_t path_cases[] = {
    {"our schemas have plans", test_plans_compiled},
    {"commands: same bytes, same values", test_commands_both_paths},
    {"commands: damaged input, same answer", test_command_damage_both_paths},
    {"events: same bytes, same values, damaged input", test_events_both_paths},
    {"outcomes: same bytes, same values, damaged input",
     test_outcomes_both_paths},
    {"refusals: same errors, buffer kept", test_refusals_both_paths},
    {"two faults: the first decides", test_first_fault_decides},
    {"the record limit's edges, with each framing", test_limit_edges},
    {"outcome golden bytes", test_outcome_golden_bytes},
    {NULL, NULL}};

static const pn_test_case_t compiler_cases[] = {
    {"schemas it refuses", test_compiler_refuses},
    {"[X, null] unions", test_compiler_value_first_union},
    {"enum indexes in range", test_compiler_enum_range},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {
    {"plans and Avro C", path_cases},
    {"plan compiler", compiler_cases},
    {NULL, NULL}};
