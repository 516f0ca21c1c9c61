/*
 * Writes the seed corpus of fuzz_command_decoder into a directory:
 * commands of every type in every framing (including the evolved writer
 * schema of fuzz_schemas.h), edge cases, and one event, outcome and
 * snapshot for the other decoders. Run once; the files are committed:
 *   ./build-fuzz/tests/fuzz_gen_corpus tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_schemas.h"
#include "panther/codec.h"

static const char *dir;

static void write_seed(const char *name, const void *data, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void check(pn_err_t err, const char *what) {
    if (err) {
        fprintf(stderr, "%s: %s\n", what, pn_err_name(err));
        exit(1);
    }
}

static pn_command_t command(pn_command_type_t type, bool has_q, int32_t q) {
    return (pn_command_t){.type = type,
                          .id = pn_str_c("0b6f2c1e-5d4a-4b3c-8a29-1f0e9d8c7b6a"),
                          .order_id = type == PN_CMD_UPDATE
                                          ? PN_STR_NULL
                                          : pn_str_c("order-42"),
                          .sku_id = pn_str_c("sku-100"),
                          .node_id = pn_str_c("dc-east"),
                          .by = pn_str_c("oms"),
                          .has_quantity = has_q,
                          .quantity = q,
                          .at_ms = 1717000000000};
}

static void seed_command(pn_codec_t *codec, const char *name,
                         const pn_command_t *cmd, pn_framing_t framing,
                         int32_t id, size_t cut) {
    pn_buf_t out;
    pn_buf_init(&out, 1 << 20);
    check(pn_codec_encode_command(codec, cmd, framing, id, &out), name);
    write_seed(name, out.data, out.len - cut);
    pn_buf_free(&out);
}

/* A ReserveInventory body under pn_fuzz_evolved_json, built by hand. */
static size_t evolved_reserve(uint8_t *p) {
    static const uint8_t body[] = {
        0x00,                               /* branch 0 */
        0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62, /* at */
        0x06, 'a',  'p',  'p',              /* channel */
        0x0a,                               /* quantity 5 */
        0x04, 's',  '1',  0x04, 'n', '1',   /* skuId, node */
        0x04, 'o',  '1',  0x04, 'c', '1',   /* orderId, id */
        0x02, 'u',                          /* by */
        0x02, 0x02, 'k',                    /* tags: 1 entry "k" */
        0x05, 0x1e,                         /* block of 3 (-3), 15 bytes */
        0x00, 0x04, 'a', 'b', 'c', 'd',     /* null, fixed F4 */
        0x02, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, /* double 1.0 */
        0x00, 0x00};                        /* end of array, of map */
    memcpy(p, body, sizeof body);
    return sizeof body;
}

static void seed_evolved(void) {
    uint8_t rec[256];
    uint64_t fp = 0;
    check(pn_schema_fingerprint(pn_fuzz_evolved_json, &fp, NULL, NULL, 0),
          "fingerprint");
    rec[0] = 0xc3;
    rec[1] = 0x01;
    for (int i = 0; i < 8; i++)
        rec[2 + i] = (uint8_t)(fp >> (8 * i));
    size_t n = evolved_reserve(rec + 10);
    write_seed("single_object_evolved_reserve", rec, 10 + n);
    rec[5] = 0x00;
    rec[6] = 0x00;
    rec[7] = 0x00;
    rec[8] = 0x00;
    rec[9] = PN_FUZZ_ID_EVOLVED;
    write_seed("confluent_evolved_reserve", rec + 5, 5 + n);
    static const uint8_t adjust[] = {0x00, 0x00, 0x00, 0x00, PN_FUZZ_ID_EVOLVED,
                                     0x02, 0x02, 'a',  0x01, 0x02};
    write_seed("confluent_evolved_unknown_branch", adjust, sizeof adjust);
}

static void seed_commands(pn_codec_t *codec) {
    pn_command_t c = command(PN_CMD_UPDATE, true, 250);
    seed_command(codec, "plain_update", &c, PN_FRAMING_PLAIN, 0, 0);
    c = command(PN_CMD_RESERVE, true, 3);
    seed_command(codec, "plain_reserve", &c, PN_FRAMING_PLAIN, 0, 0);
    seed_command(codec, "plain_reserve_truncated", &c, PN_FRAMING_PLAIN, 0, 4);
    seed_command(codec, "confluent_reserve", &c, PN_FRAMING_CONFLUENT,
                 PN_FUZZ_ID_OURS, 0);
    seed_command(codec, "confluent_unknown_id", &c, PN_FRAMING_CONFLUENT, 77, 0);
    c = command(PN_CMD_CANCEL, false, 0);
    seed_command(codec, "plain_cancel_all", &c, PN_FRAMING_PLAIN, 0, 0);
    seed_command(codec, "single_object_cancel_all", &c,
                 PN_FRAMING_SINGLE_OBJECT, 0, 0);
    c = command(PN_CMD_SHIP, true, -7);
    seed_command(codec, "single_object_ship", &c, PN_FRAMING_SINGLE_OBJECT, 0,
                 0);
    c = (pn_command_t){.type = PN_CMD_RESERVE, .order_id = pn_str_c(""),
                       .has_quantity = true, .quantity = INT32_MIN,
                       .at_ms = INT64_MAX};
    seed_command(codec, "plain_reserve_empty_extremes", &c, PN_FRAMING_PLAIN,
                 0, 0);
}

static void seed_records(pn_codec_t *codec) {
    pn_buf_t out;
    pn_buf_init(&out, 1 << 20);
    pn_event_t ev = {.type = PN_EVT_RESERVED, .sku_id = pn_str_c("sku-100"),
                     .node_id = pn_str_c("dc-east"), .version = 12,
                     .command_id = pn_str_c("c-9"), .by = pn_str_c("oms"),
                     .at_ms = 1717000000000, .order_id = pn_str_c("order-42"),
                     .quantity = 3};
    check(pn_codec_encode_event(codec, &ev, &out), "event");
    write_seed("event_reserved", out.data, out.len);
    pn_command_t c = command(PN_CMD_SHIP, false, 0);
    pn_outcome_t o = {.command_type = PN_CMD_SHIP,
                      .status = PN_STATUS_REJECTED,
                      .reason = PN_REASON_NO_RESERVATION, .version = 12,
                      .on_hand = 10, .reserved = 3, .available = 7};
    pn_buf_reset(&out);
    check(pn_codec_encode_outcome(codec, &c, &o, &out), "outcome");
    write_seed("outcome_rejected", out.data, out.len);
    pn_state_t st;
    pn_state_init(&st);
    st.version = 12;
    st.on_hand = 10;
    check(pn_state_adjust_reservation(&st, pn_str_c("order-1"), 2), "state");
    check(pn_state_adjust_reservation(&st, pn_str_c("order-2"), 1), "state");
    pn_buf_reset(&out);
    check(pn_codec_encode_snapshot(codec, pn_str_c("sku-100"),
                                   pn_str_c("dc-east"), &st, 1717000000000,
                                   &out),
          "snapshot");
    write_seed("snapshot_two_orders", out.data, out.len);
    pn_state_clear(&st);
    pn_buf_free(&out);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    pn_codec_t *codec = NULL;
    char errstr[512];
    check(pn_codec_new(NULL, &codec, errstr, sizeof errstr), errstr);
    seed_commands(codec);
    seed_evolved();
    seed_records(codec);
    pn_codec_free(codec);
    return 0;
}
