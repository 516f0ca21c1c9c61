/*
 * Helper of check_fastavro.py: for each "KIND IN OUT" triple on the command
 * line (KIND c = command, e = event, o = outcome, s = snapshot), decodes IN
 * with the codec, prints the fields as one JSON line (strings as \u00XX per
 * byte, so any bytes survive), and writes the codec's own plain encoding of
 * the decoded record to OUT for fastavro to read back.
 */
#include <stdio.h>
#include <stdlib.h>

#include "panther/codec.h"

static pn_codec_t *codec;
static pn_buf_t out;

static void put_str(const char *key, pn_str_t s) {
    if (!s.ptr) {
        printf("\"%s\":null,", key);
        return;
    }
    printf("\"%s\":\"", key);
    for (size_t i = 0; i < s.len; i++)
        printf("\\u%04x", (unsigned char)s.ptr[i]);
    printf("\",");
}

static void put_int(const char *key, long long v) {
    printf("\"%s\":%lld,", key, v);
}

static pn_err_t command(const uint8_t *data, size_t len, char *errstr) {
    pn_command_t c;
    pn_err_t err = pn_codec_decode_command(codec, data, len, &c, errstr, 512);
    if (err)
        return err;
    put_int("type", c.type);
    put_str("id", c.id);
    put_str("orderId", c.order_id);
    put_str("skuId", c.sku_id);
    put_str("node", c.node_id);
    put_str("by", c.by);
    if (c.has_quantity)
        put_int("quantity", c.quantity);
    else
        printf("\"quantity\":null,");
    put_int("at", c.at_ms);
    err = pn_codec_encode_command(codec, &c, PN_FRAMING_PLAIN, 0, &out);
    pn_command_release(&c);
    return err;
}

static pn_err_t event(const uint8_t *data, size_t len, char *errstr) {
    pn_event_t e;
    pn_err_t err = pn_codec_decode_event(codec, data, len, &e, errstr, 512);
    if (err)
        return err;
    put_int("type", e.type);
    put_str("skuId", e.sku_id);
    put_str("node", e.node_id);
    put_str("commandId", e.command_id);
    put_str("by", e.by);
    put_str("orderId", e.order_id);
    put_int("version", e.version);
    put_int("at", e.at_ms);
    put_int("quantity", e.quantity);
    put_int("prev", e.previous_quantity);
    err = pn_codec_encode_event(codec, &e, &out);
    pn_event_release(&e);
    return err;
}

static pn_err_t outcome(const uint8_t *data, size_t len, char *errstr) {
    pn_outcome_record_t r;
    pn_err_t err = pn_codec_decode_outcome(codec, data, len, &r, errstr, 512);
    if (err)
        return err;
    put_str("commandId", r.command_id);
    put_str("orderId", r.order_id);
    put_str("skuId", r.sku_id);
    put_str("node", r.node_id);
    put_int("ct", r.outcome.command_type);
    put_int("st", r.outcome.status);
    put_int("reason", r.outcome.reason);
    put_int("dup", r.outcome.duplicate);
    put_int("v", r.outcome.version);
    put_int("oh", r.outcome.on_hand);
    put_int("res", r.outcome.reserved);
    put_int("av", r.outcome.available);
    put_int("at", r.at_ms);
    err = pn_codec_encode_outcome_record(codec, &r, &out);
    pn_outcome_record_release(&r);
    return err;
}

static pn_err_t snapshot(const uint8_t *data, size_t len, char *errstr) {
    pn_state_t s;
    char *sku = NULL, *node = NULL;
    int64_t at = 0;
    pn_state_init(&s);
    pn_err_t err = pn_codec_decode_snapshot(codec, data, len, &s, &sku, &node,
                                            &at, errstr, 512);
    if (!err) {
        put_str("skuId", pn_str_c(sku));
        put_str("node", pn_str_c(node));
        put_int("v", s.version);
        put_int("oh", s.on_hand);
        put_int("res", s.reserved);
        put_int("at", at);
        printf("\"r\":[");
        for (size_t i = 0; i < s.n_reservations; i++) {
            printf("%s{", i ? "," : "");
            put_str("o", (pn_str_t){s.reservations[i].order_id,
                                    s.reservations[i].order_id_len});
            printf("\"q\":%lld}", (long long)s.reservations[i].quantity);
        }
        printf("],");
        err = pn_codec_encode_snapshot(codec, pn_str_c(sku), pn_str_c(node),
                                       &s, at, &out);
    }
    free(sku);
    free(node);
    pn_state_clear(&s);
    return err;
}

static int one(char kind, const char *in, const char *out_path) {
    static uint8_t data[1 << 20];
    FILE *f = fopen(in, "rb");
    size_t len = f ? fread(data, 1, sizeof data, f) : 0;
    if (!f || fclose(f))
        return 1;
    char errstr[512] = "";
    pn_err_t err = PN_ERR_INVALID_ARG;
    pn_buf_reset(&out);
    printf("{");
    if (kind == 'c')
        err = command(data, len, errstr);
    else if (kind == 'e')
        err = event(data, len, errstr);
    else if (kind == 'o')
        err = outcome(data, len, errstr);
    else if (kind == 's')
        err = snapshot(data, len, errstr);
    printf("\"err\":\"%s\"}\n", pn_err_name(err));
    f = fopen(out_path, "wb");
    if (!f || fwrite(out.data, 1, out.len, f) != out.len || fclose(f))
        return 1;
    return 0;
}

int main(int argc, char **argv) {
    char errstr[512];
    if (argc % 3 != 1 ||
        pn_codec_new(NULL, &codec, errstr, sizeof errstr) != PN_ERR_OK) {
        fprintf(stderr, "usage: %s {KIND IN OUT}...\n", argv[0]);
        return 2;
    }
    pn_buf_init(&out, 1 << 21);
    int rc = 0;
    for (int i = 1; i < argc && !rc; i += 3)
        rc = one(argv[i][0], argv[i + 1], argv[i + 2]);
    pn_buf_free(&out);
    pn_codec_free(codec);
    return rc;
}
