/* The JSON views of commands, events and outcomes (panther/command_json.h):
 * JSON -> command -> Avro -> command -> JSON round trips, the errors that
 * name the field, defaults, and bytes that are not UTF-8. */
#include <stdlib.h>

#include "panther/codec.h"
#include "panther/command_json.h"
#include "pn_test.h"

#define ERRSZ 512

static pn_codec_t *new_codec(void) {
    pn_codec_t *codec = NULL;
    char errstr[ERRSZ] = "";
    pn_err_t err = pn_codec_new(NULL, &codec, errstr, sizeof errstr);
    PN_ASSERT_(err == PN_ERR_OK, CU_TRUE, "pn_codec_new: %s (%s)",
               pn_err_name(err), errstr);
    return codec;
}

static const pn_command_json_defaults_t defaults = {.by = NULL,
                                                    .at_ms = 1700000000000};

static pn_err_t parse(const char *text, pn_command_t *cmd, char *errstr) {
    errstr[0] = '\0';
    return pn_command_json_parse(text, strlen(text), &defaults, cmd, errstr,
                                 ERRSZ);
}

/* Asserts that text is rejected with a message containing want. */
#define ASSERT_BAD(text, want)                                               \
    do {                                                                     \
        pn_command_t c_;                                                     \
        char e_[ERRSZ];                                                      \
        pn_err_t r_ = parse((text), &c_, e_);                                \
        PN_ASSERT_(r_ == PN_ERR_MALFORMED && strstr(e_, (want)) != NULL,     \
                   CU_FALSE, "%s: got %s \"%s\", want \"%s\"", (text),       \
                   pn_err_name(r_), e_, (want));                             \
        PN_ASSERT(c_.storage == NULL && c_.id.ptr == NULL);                  \
        pn_command_release(&c_);                                             \
    } while (0)

/* Asserts that obj, dumped, equals the JSON text want (member order too). */
#define ASSERT_JSON(obj, want)                                               \
    do {                                                                     \
        json_t *o_ = (obj);                                                  \
        char *s_ =                                                           \
            o_ ? json_dumps(o_, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;      \
        PN_ASSERT_EQ_STR(s_, (want));                                        \
        free(s_);                                                            \
        json_decref(o_);                                                     \
    } while (0)

/* --- round trips ------------------------------------------------------------ */

static const char *const canonical[] = {
    "{\"type\":\"UpdateInventory\",\"id\":\"c-1\",\"skuId\":\"sku-1\","
    "\"fulfillmentNodeId\":\"dc-1\",\"quantity\":10,\"by\":\"node\","
    "\"at\":1767225600000}",
    "{\"type\":\"ReserveInventory\",\"id\":\"c-2\",\"orderId\":\"o-1\","
    "\"skuId\":\"sku-1\",\"fulfillmentNodeId\":\"dc-1\",\"quantity\":3,"
    "\"by\":\"checkout\",\"at\":1767225600001}",
    "{\"type\":\"CancelReservation\",\"id\":\"c-3\",\"orderId\":\"o-1\","
    "\"skuId\":\"sku-1\",\"fulfillmentNodeId\":\"dc-1\",\"quantity\":1,"
    "\"by\":\"checkout\",\"at\":-5}",
    "{\"type\":\"CancelReservation\",\"id\":\"c-4\",\"orderId\":\"o-1\","
    "\"skuId\":\"sku-1\",\"fulfillmentNodeId\":\"dc-1\",\"quantity\":null,"
    "\"by\":\"checkout\",\"at\":0}",
    "{\"type\":\"ShipOrder\",\"id\":\"c-5\",\"orderId\":\"o-1\","
    "\"skuId\":\"sku-1\",\"fulfillmentNodeId\":\"dc-1\",\"quantity\":2,"
    "\"by\":\"wms\",\"at\":9223372036854775807}",
    "{\"type\":\"ShipOrder\",\"id\":\"c-6\",\"orderId\":\"o-\xc3\xa9\\u0000\","
    "\"skuId\":\"\xe6\x97\xa5\xe6\x9c\xac\",\"fulfillmentNodeId\":\"\","
    "\"quantity\":null,\"by\":\"wms\",\"at\":-9223372036854775808}",
    "{\"type\":\"ReserveInventory\",\"id\":\"\",\"orderId\":\"o\","
    "\"skuId\":\"a|b\",\"fulfillmentNodeId\":\"dc\",\"quantity\":-2147483648,"
    "\"by\":\"\",\"at\":1}",
};

static void test_round_trip_every_type_and_framing(void) {
    pn_codec_t *codec = new_codec();
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    static const pn_framing_t framings[] = {
        PN_FRAMING_PLAIN, PN_FRAMING_CONFLUENT, PN_FRAMING_SINGLE_OBJECT};
    for (size_t i = 0; i < sizeof canonical / sizeof *canonical; i++) {
        for (size_t f = 0; f < 3; f++) {
            pn_command_t cmd, back;
            char errstr[ERRSZ];
            PN_REQUIRE_OK(parse(canonical[i], &cmd, errstr));
            pn_buf_reset(&buf);
            PN_REQUIRE_OK(pn_codec_encode_command(codec, &cmd, framings[f],
                                                  0, &buf));
            /* Confluent id 0 is unknown to a codec without a registry:
             * the bytes after the header are what a reader resolves, so
             * decode the body and check the header separately. */
            size_t skip = framings[f] == PN_FRAMING_CONFLUENT ? 5 : 0;
            if (skip)
                PN_ASSERT(buf.data[0] == 0 && pn_be32_read(buf.data + 1) == 0);
            pn_err_t err = pn_codec_decode_command(
                codec, buf.data + skip, buf.len - skip, &back, errstr, ERRSZ);
            PN_ASSERT_(err == PN_ERR_OK, CU_TRUE, "decode %s: %s",
                       canonical[i], errstr);
            ASSERT_JSON(pn_command_json_command(&back), canonical[i]);
            pn_command_release(&back);
            pn_command_release(&cmd);
        }
    }
    pn_buf_free(&buf);
    pn_codec_free(codec);
}

static void test_parse_fields(void) {
    pn_command_t cmd;
    char errstr[ERRSZ];
    PN_REQUIRE_OK(parse(canonical[1], &cmd, errstr));
    PN_ASSERT_EQ_INT(cmd.type, PN_CMD_RESERVE);
    PN_ASSERT_EQ_PNSTR(cmd.id, "c-2");
    PN_ASSERT_EQ_PNSTR(cmd.order_id, "o-1");
    PN_ASSERT_EQ_PNSTR(cmd.sku_id, "sku-1");
    PN_ASSERT_EQ_PNSTR(cmd.node_id, "dc-1");
    PN_ASSERT_EQ_PNSTR(cmd.by, "checkout");
    PN_ASSERT(cmd.has_quantity);
    PN_ASSERT_EQ_INT(cmd.quantity, 3);
    PN_ASSERT_EQ_INT(cmd.at_ms, 1767225600001);
    PN_ASSERT(pn_command_is_valid(&cmd));
    pn_command_release(&cmd);

    /* "\u0000" inside a string is kept, length and all. */
    PN_REQUIRE_OK(parse(canonical[5], &cmd, errstr));
    PN_ASSERT_EQ_INT(cmd.order_id.len, 5);
    PN_ASSERT(memcmp(cmd.order_id.ptr, "o-\xc3\xa9\0", 5) == 0);
    PN_ASSERT_EQ_INT(cmd.node_id.len, 0);
    PN_ASSERT(!cmd.has_quantity);
    pn_command_release(&cmd);
}

static void test_short_type_names(void) {
    static const struct {
        const char *name;
        pn_command_type_t type;
    } v[] = {{"update", PN_CMD_UPDATE},   {"reserve", PN_CMD_RESERVE},
             {"cancel", PN_CMD_CANCEL},   {"ship", PN_CMD_SHIP},
             {"UPDATE", PN_CMD_UPDATE},   {"shiporder", PN_CMD_SHIP},
             {"Reserve", PN_CMD_RESERVE}, {"cancelReservation", PN_CMD_CANCEL}};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"type\":\"%s\",\"orderId\":\"o\",\"skuId\":\"s\","
                 "\"fulfillmentNodeId\":\"n\",\"quantity\":1}",
                 v[i].name);
        if (v[i].type == PN_CMD_UPDATE) /* update has no orderId */
            snprintf(text, sizeof text,
                     "{\"type\":\"%s\",\"skuId\":\"s\","
                     "\"fulfillmentNodeId\":\"n\",\"quantity\":1}",
                     v[i].name);
        pn_command_t cmd;
        char errstr[ERRSZ];
        pn_err_t err = parse(text, &cmd, errstr);
        PN_ASSERT_(err == PN_ERR_OK, CU_FALSE, "%s: %s", text, errstr);
        PN_ASSERT_EQ_INT(cmd.type, v[i].type);
        pn_command_release(&cmd);
    }
}

static void test_null_and_absent_quantity(void) {
    static const char *const texts[] = {
        "{\"type\":\"cancel\",\"orderId\":\"o\",\"skuId\":\"s\","
        "\"fulfillmentNodeId\":\"n\",\"quantity\":null}",
        "{\"type\":\"ship\",\"orderId\":\"o\",\"skuId\":\"s\","
        "\"fulfillmentNodeId\":\"n\"}"};
    for (size_t i = 0; i < 2; i++) {
        pn_command_t cmd;
        char errstr[ERRSZ];
        PN_REQUIRE_OK(parse(texts[i], &cmd, errstr));
        PN_ASSERT(!cmd.has_quantity);
        json_t *j = pn_command_json_command(&cmd);
        PN_ASSERT(j && json_is_null(json_object_get(j, "quantity")));
        json_decref(j);
        pn_command_release(&cmd);
    }
    ASSERT_BAD("{\"type\":\"update\",\"skuId\":\"s\",\"fulfillmentNodeId\":"
               "\"n\",\"quantity\":null}",
               "field 'quantity': expected an integer, got null");
    ASSERT_BAD("{\"type\":\"reserve\",\"orderId\":\"o\",\"skuId\":\"s\","
               "\"fulfillmentNodeId\":\"n\"}",
               "missing required field 'quantity'");
}

static bool is_uuid_v4(pn_str_t s) {
    if (s.len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s.ptr[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return s.ptr[14] == '4' && strchr("89ab", s.ptr[19]) != NULL;
}

static void test_defaults(void) {
    const char *text = "{\"type\":\"reserve\",\"orderId\":\"o\",\"skuId\":\"s\","
                       "\"fulfillmentNodeId\":\"n\",\"quantity\":1}";
    pn_command_t a, b;
    char errstr[ERRSZ];
    PN_REQUIRE_OK(parse(text, &a, errstr));
    PN_REQUIRE_OK(parse(text, &b, errstr));
    PN_ASSERT(is_uuid_v4(a.id));
    PN_ASSERT(is_uuid_v4(b.id));
    PN_ASSERT(!pn_str_eq(a.id, b.id));
    PN_ASSERT_EQ_PNSTR(a.by, PN_COMMAND_JSON_DEFAULT_BY);
    PN_ASSERT_EQ_PNSTR(a.by, "panther-produce");
    PN_ASSERT_EQ_INT(a.at_ms, defaults.at_ms);
    pn_command_release(&a);
    pn_command_release(&b);

    /* null means "use the default" for the optional members. */
    const char *nulls = "{\"type\":\"update\",\"id\":null,\"orderId\":null,"
                        "\"skuId\":\"s\",\"fulfillmentNodeId\":\"n\","
                        "\"quantity\":0,\"by\":null,\"at\":null}";
    pn_command_json_defaults_t mine = {.by = "tester", .at_ms = 42};
    PN_REQUIRE_OK(pn_command_json_parse(nulls, strlen(nulls), &mine, &a,
                                        errstr, ERRSZ));
    PN_ASSERT(is_uuid_v4(a.id));
    PN_ASSERT_EQ_PNSTR(a.by, "tester");
    PN_ASSERT_EQ_INT(a.at_ms, 42);
    PN_ASSERT(a.order_id.ptr == NULL);
    pn_command_release(&a);

    char uuid[PN_UUID_STR_SIZE];
    PN_REQUIRE_OK(pn_command_json_uuid_v4(uuid, errstr, ERRSZ));
    PN_ASSERT(is_uuid_v4(pn_str_c(uuid)));
}

static void test_errors_name_the_field(void) {
    ASSERT_BAD("{\"type\":\"reserve\",\"orderId\":\"o\",\"fulfillmentNodeId\":"
               "\"n\",\"quantity\":1}",
               "missing required field 'skuId'");
    ASSERT_BAD("{\"type\":\"reserve\",\"orderId\":\"o\",\"skuId\":\"s\","
               "\"quantity\":1}",
               "missing required field 'fulfillmentNodeId'");
    ASSERT_BAD("{\"type\":\"ship\",\"skuId\":\"s\",\"fulfillmentNodeId\":\"n\"}",
               "missing required field 'orderId'");
    ASSERT_BAD("{\"skuId\":\"s\",\"fulfillmentNodeId\":\"n\",\"quantity\":1}",
               "missing required field 'type'");
    ASSERT_BAD("{\"type\":\"update\",\"skuId\":\"s\",\"fulfillmentNodeId\":"
               "\"n\",\"quantity\":1,\"colour\":\"red\"}",
               "unknown field 'colour'");
    ASSERT_BAD("{\"type\":\"update\",\"orderId\":\"o\",\"skuId\":\"s\","
               "\"fulfillmentNodeId\":\"n\",\"quantity\":1}",
               "field 'orderId'");
    ASSERT_BAD("{\"type\":\"update\",\"skuId\":\"s\",\"fulfillmentNodeId\":"
               "\"n\",\"quantity\":\"5\"}",
               "field 'quantity': expected an integer, got a string");
    ASSERT_BAD("{\"type\":\"cancel\",\"orderId\":\"o\",\"skuId\":\"s\","
               "\"fulfillmentNodeId\":\"n\",\"quantity\":1.5}",
               "field 'quantity': expected an integer or null");
    ASSERT_BAD("{\"type\":\"update\",\"skuId\":\"s\",\"fulfillmentNodeId\":"
               "\"n\",\"quantity\":2147483648}",
               "field 'quantity': 2147483648 is out of range");
    ASSERT_BAD("{\"type\":\"update\",\"skuId\":\"s\",\"fulfillmentNodeId\":"
               "\"n\",\"quantity\":1,\"at\":\"now\"}",
               "field 'at': expected an integer or null, got a string");
    ASSERT_BAD("{\"type\":\"update\",\"skuId\":7,\"fulfillmentNodeId\":"
               "\"n\",\"quantity\":1}",
               "field 'skuId': expected a string, got an integer");
    ASSERT_BAD("{\"type\":\"update\",\"skuId\":\"s\",\"fulfillmentNodeId\":"
               "null,\"quantity\":1}",
               "field 'fulfillmentNodeId': expected a string, got null");
    ASSERT_BAD("{\"type\":\"update\",\"id\":[],\"skuId\":\"s\","
               "\"fulfillmentNodeId\":\"n\",\"quantity\":1}",
               "field 'id': expected a string or null, got an array");
    ASSERT_BAD("{\"type\":\"update\",\"by\":true,\"skuId\":\"s\","
               "\"fulfillmentNodeId\":\"n\",\"quantity\":1}",
               "field 'by'");
    ASSERT_BAD("{\"type\":\"frobnicate\",\"skuId\":\"s\","
               "\"fulfillmentNodeId\":\"n\",\"quantity\":1}",
               "field 'type': unknown command type 'frobnicate'");
    ASSERT_BAD("{\"type\":3,\"skuId\":\"s\"}", "field 'type'");
    ASSERT_BAD("{\"type\":\"update\",\"type\":\"ship\"}", "not valid JSON");
    ASSERT_BAD("{\"type\":\"update\"", "not valid JSON");
    ASSERT_BAD("{} trailing", "not valid JSON");
    ASSERT_BAD("", "not valid JSON");
    ASSERT_BAD("[1,2]", "expected a JSON object, got an array");
    ASSERT_BAD("\"update\"", "expected a JSON object");
}

static void test_record_key(void) {
    pn_buf_t key;
    pn_buf_init(&key, 4096);
    pn_command_t cmd;
    char errstr[ERRSZ];
    PN_REQUIRE_OK(parse(canonical[1], &cmd, errstr));
    PN_REQUIRE_OK(pn_command_json_record_key(&cmd, &key));
    PN_ASSERT(key.len == 10 && !memcmp(key.data, "sku-1|dc-1", 10));
    pn_command_release(&cmd);
    /* Invalid ids: no canonical key, but the raw text, deterministically. */
    PN_REQUIRE_OK(parse(canonical[6], &cmd, errstr));
    PN_REQUIRE_OK(pn_command_json_record_key(&cmd, &key));
    PN_ASSERT(key.len == 6 && !memcmp(key.data, "a|b|dc", 6));
    pn_command_release(&cmd);
    PN_REQUIRE_OK(parse(canonical[5], &cmd, errstr)); /* empty node id */
    PN_REQUIRE_OK(pn_command_json_record_key(&cmd, &key));
    PN_ASSERT(key.len == 7 && !memcmp(key.data, "\xe6\x97\xa5\xe6\x9c\xac|", 7));
    pn_command_release(&cmd);
    pn_buf_free(&key);
}

/* --- events and outcomes ----------------------------------------------------- */

static void test_event_json(void) {
    pn_codec_t *codec = new_codec();
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    pn_event_t upd = {.type = PN_EVT_UPDATED,
                      .sku_id = pn_str_c("sku-1"),
                      .node_id = pn_str_c("dc-1"),
                      .version = 1,
                      .command_id = pn_str_c("c-1"),
                      .by = pn_str_c("node"),
                      .at_ms = 1000,
                      .quantity = 10,
                      .previous_quantity = 0};
    pn_event_t res = {.type = PN_EVT_RESERVED,
                      .sku_id = pn_str_c("sku-1"),
                      .node_id = pn_str_c("dc-1"),
                      .version = 2,
                      .command_id = pn_str_c("c-2"),
                      .by = pn_str_c("checkout"),
                      .at_ms = 2000,
                      .order_id = pn_str_c("o-1"),
                      .quantity = 3};
    static const char *const want[] = {
        "{\"skuId\":\"sku-1\",\"fulfillmentNodeId\":\"dc-1\",\"version\":1,"
        "\"commandId\":\"c-1\",\"by\":\"node\",\"at\":1000,"
        "\"type\":\"InventoryUpdated\",\"quantity\":10,"
        "\"previousQuantity\":0}",
        "{\"skuId\":\"sku-1\",\"fulfillmentNodeId\":\"dc-1\",\"version\":2,"
        "\"commandId\":\"c-2\",\"by\":\"checkout\",\"at\":2000,"
        "\"type\":\"InventoryReserved\",\"orderId\":\"o-1\",\"quantity\":3}"};
    const pn_event_t *evs[] = {&upd, &res};
    for (int i = 0; i < 2; i++) {
        ASSERT_JSON(pn_command_json_event(evs[i]), want[i]);
        /* And through Avro, as `panther consume events` sees it. */
        pn_event_t back;
        char errstr[ERRSZ];
        pn_buf_reset(&buf);
        PN_REQUIRE_OK(pn_codec_encode_event(codec, evs[i], &buf));
        PN_REQUIRE_OK(pn_codec_decode_event(codec, buf.data, buf.len, &back,
                                            errstr, ERRSZ));
        ASSERT_JSON(pn_command_json_event(&back), want[i]);
        pn_event_release(&back);
    }
    pn_event_t can = res;
    can.type = PN_EVT_CANCELLED;
    json_t *j = pn_command_json_event(&can);
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(j, "type")),
                     "ReservationCancelled");
    json_decref(j);
    can.type = PN_EVT_SHIPPED;
    j = pn_command_json_event(&can);
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(j, "type")),
                     "LineItemShipped");
    PN_ASSERT(json_object_get(j, "previousQuantity") == NULL);
    json_decref(j);
    pn_buf_free(&buf);
    pn_codec_free(codec);
}

static void test_outcome_json(void) {
    pn_codec_t *codec = new_codec();
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    pn_outcome_record_t acc = {
        .outcome = {.command_type = PN_CMD_UPDATE,
                    .status = PN_STATUS_ACCEPTED,
                    .reason = PN_REASON_NONE,
                    .duplicate = false,
                    .version = 1,
                    .on_hand = 10,
                    .reserved = 0,
                    .available = 10},
        .command_id = pn_str_c("c-1"),
        .order_id = PN_STR_NULL,
        .sku_id = pn_str_c("sku-1"),
        .node_id = pn_str_c("dc-1"),
        .at_ms = 1000};
    pn_outcome_record_t rej = {
        .outcome = {.command_type = PN_CMD_RESERVE,
                    .status = PN_STATUS_REJECTED,
                    .reason = PN_REASON_INSUFFICIENT_INVENTORY,
                    .duplicate = true,
                    .version = 1,
                    .on_hand = 10,
                    .reserved = 4,
                    .available = -4},
        .command_id = pn_str_c("c-2"),
        .order_id = pn_str_c("o-1"),
        .sku_id = pn_str_c("sku-1"),
        .node_id = pn_str_c("dc-1"),
        .at_ms = 2000};
    static const char *const want[] = {
        "{\"commandId\":\"c-1\",\"commandType\":\"UPDATE\",\"orderId\":null,"
        "\"skuId\":\"sku-1\",\"fulfillmentNodeId\":\"dc-1\","
        "\"status\":\"ACCEPTED\",\"reason\":null,\"duplicate\":false,"
        "\"version\":1,\"onHand\":10,\"reserved\":0,\"available\":10,"
        "\"at\":1000}",
        "{\"commandId\":\"c-2\",\"commandType\":\"RESERVE\",\"orderId\":"
        "\"o-1\",\"skuId\":\"sku-1\",\"fulfillmentNodeId\":\"dc-1\","
        "\"status\":\"REJECTED\",\"reason\":\"INSUFFICIENT_INVENTORY\","
        "\"duplicate\":true,\"version\":1,\"onHand\":10,\"reserved\":4,"
        "\"available\":-4,\"at\":2000}"};
    const pn_outcome_record_t *recs[] = {&acc, &rej};
    for (int i = 0; i < 2; i++) {
        ASSERT_JSON(pn_command_json_outcome(recs[i]), want[i]);
        pn_outcome_record_t back;
        char errstr[ERRSZ];
        pn_buf_reset(&buf);
        PN_REQUIRE_OK(pn_codec_encode_outcome_record(codec, recs[i], &buf));
        PN_REQUIRE_OK(pn_codec_decode_outcome(codec, buf.data, buf.len, &back,
                                              errstr, ERRSZ));
        ASSERT_JSON(pn_command_json_outcome(&back), want[i]);
        pn_outcome_record_release(&back);
    }
    pn_buf_free(&buf);
    pn_codec_free(codec);
}

/* --- bytes that are not UTF-8 ---------------------------------------------- */

static void test_utf8_validation(void) {
    static const struct {
        const char *bytes;
        size_t len;
        bool valid;
    } v[] = {
        {"", 0, true},
        {"plain ascii", 11, true},
        {"\0nul", 4, true},
        {"\xc3\xa9", 2, true},             /* é */
        {"\xe6\x97\xa5", 3, true},         /* 日 */
        {"\xf0\x9f\x90\x86", 4, true},     /* U+1F406 */
        {"\xf4\x8f\xbf\xbf", 4, true},     /* U+10FFFF */
        {"\xc3", 1, false},                /* truncated */
        {"\xc0\xaf", 2, false},            /* overlong '/' */
        {"\xe0\x80\xaf", 3, false},        /* overlong */
        {"\xed\xa0\x80", 3, false},        /* surrogate D800 */
        {"\xf4\x90\x80\x80", 4, false},    /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4, false},
        {"\xff", 1, false},
        {"\x80", 1, false},                /* lone continuation */
        {"a\xe6\x97", 3, false},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        PN_ASSERT_(pn_command_json_utf8_valid(v[i].bytes, v[i].len) ==
                       v[i].valid,
                   CU_FALSE, "case %zu", i);
}

static void test_set_bytes(void) {
    json_t *obj = json_object();
    PN_REQUIRE_OK(pn_command_json_set_bytes(obj, "ok", "caf\xc3\xa9", 5));
    PN_REQUIRE_OK(pn_command_json_set_bytes(obj, "bad", "a\xff" "b\xc3", 4));
    PN_REQUIRE_OK(pn_command_json_set_bytes(obj, "nul", "x\0y", 3));
    PN_REQUIRE_OK(pn_command_json_set_bytes(obj, "none", NULL, 0));
    ASSERT_JSON(obj, "{\"ok\":\"caf\xc3\xa9\",\"bad\":\"a\xef\xbf\xbd"
                     "b\xef\xbf\xbd\",\"badHex\":\"61ff62c3\","
                     "\"nul\":\"x\\u0000y\",\"none\":null}");
    ASSERT_JSON(pn_command_json_hex("\x00\x01\xab", 3), "\"0001ab\"");
}

/* A command in memory may carry any bytes (the codec refuses to decode
 * strings that are not UTF-8, so on the wire this only happens to keys and
 * headers); its JSON must still be valid and lossless. */
static void test_command_with_invalid_utf8(void) {
    pn_command_t cmd = {.type = PN_CMD_SHIP,
                        .id = {"id\xfe", 3},
                        .order_id = pn_str_c("o"),
                        .sku_id = {"s\x80", 2},
                        .node_id = pn_str_c("n"),
                        .by = pn_str_c("b"),
                        .has_quantity = false,
                        .at_ms = 7};
    json_t *j = pn_command_json_command(&cmd);
    PN_REQUIRE(j != NULL);
    char *text = json_dumps(j, JSON_COMPACT);
    PN_REQUIRE(text != NULL);
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(j, "id")),
                     "id\xef\xbf\xbd");
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(j, "idHex")),
                     "6964fe");
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(j, "skuIdHex")),
                     "7380");
    PN_ASSERT(json_object_get(j, "orderIdHex") == NULL);
    json_error_t jerr;
    json_t *again = json_loads(text, 0, &jerr);
    PN_ASSERT(again != NULL && json_equal(again, j));
    json_decref(again);
    free(text);
    json_decref(j);

    /* Such a record does not decode: consume prints it as an error. */
    pn_codec_t *codec = new_codec();
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    PN_REQUIRE_OK(pn_codec_encode_command(codec, &cmd, PN_FRAMING_PLAIN, 0,
                                          &buf));
    pn_command_t back;
    char errstr[ERRSZ];
    PN_ASSERT_EQ_INT(pn_codec_decode_command(codec, buf.data, buf.len, &back,
                                             errstr, ERRSZ),
                     PN_ERR_MALFORMED);
    pn_buf_free(&buf);
    pn_codec_free(codec);
}

static const pn_test_case_t json_to_command_cases[] = {
    {"round trip of every type through every framing",
     test_round_trip_every_type_and_framing},
    {"fields are parsed", test_parse_fields},
    {"short and case-insensitive type names", test_short_type_names},
    {"null and absent quantity", test_null_and_absent_quantity},
    {"defaults for id, by and at", test_defaults},
    {"errors name the field", test_errors_name_the_field},
    {"record key", test_record_key},
    {NULL, NULL}};

static const pn_test_case_t records_cases[] = {
    {"event JSON", test_event_json},
    {"outcome JSON", test_outcome_json},
    {NULL, NULL}};

static const pn_test_case_t bytes_cases[] = {
    {"UTF-8 validation", test_utf8_validation},
    {"set_bytes replaces and adds hex", test_set_bytes},
    {"command with invalid UTF-8", test_command_with_invalid_utf8},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {
    {"json_to_command", json_to_command_cases},
    {"records", records_cases},
    {"bytes", bytes_cases},
    {NULL, NULL}};
