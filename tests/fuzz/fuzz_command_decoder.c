/*
 * libFuzzer target for the decoders. Every input is a commands-topic value
 * (any framing; Confluent ids 1 and 2 and the evolved schema's fingerprint
 * are known), and is also fed to the event, outcome and snapshot decoders.
 * Beyond "no crash, no out-of-bounds read" (ASan, UBSan), it checks that
 * every failure is a typed decoding error with a message, that a decoded
 * command survives encode + decode unchanged, and that the codec's direct
 * plans and Avro C's generic path give the same answer for every input
 * (commands, events and outcomes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "codec_same.h"
#include "fuzz_schemas.h"
#include "panther/codec.h"

static pn_codec_t *codec;
static pn_codec_t *generic; /* the same codec with its plans turned off */
static pn_buf_t scratch, other_scratch;

static void fuzz_fail(const char *what, pn_err_t err, const char *errstr) {
    fprintf(stderr, "fuzz: %s: %s (%s)\n", what, pn_err_name(err), errstr);
    abort();
}

static void fuzz_init(void) {
    char errstr[512] = "";
    pn_codec_config_t conf = {.lookup = pn_fuzz_lookup};
    pn_err_t err = pn_codec_new(&conf, &codec, errstr, sizeof errstr);
    if (!err)
        err = pn_codec_register_writer_schema(codec, pn_fuzz_evolved_json,
                                              errstr, sizeof errstr);
    if (!err)
        err = pn_codec_new(&conf, &generic, errstr, sizeof errstr);
    if (!err)
        err = pn_codec_register_writer_schema(generic, pn_fuzz_evolved_json,
                                              errstr, sizeof errstr);
    if (err)
        fuzz_fail("setup", err, errstr);
    pn_codec__use_plans(generic, false);
    pn_buf_init(&scratch, 4u << 20);
    pn_buf_init(&other_scratch, 4u << 20);
}

/* A decoder may only fail with a decoding error and say why. */
static void check_failure(const char *what, pn_err_t err, const char *errstr) {
    bool typed = err == PN_ERR_TOO_LARGE || err == PN_ERR_TRUNCATED ||
                 err == PN_ERR_MALFORMED || err == PN_ERR_UNKNOWN_BRANCH ||
                 err == PN_ERR_UNKNOWN_SCHEMA ||
                 err == PN_ERR_INCOMPATIBLE_SCHEMA;
    if (!typed || !errstr[0])
        fuzz_fail(what, err, errstr);
}

/* Avro C's generic path reads the same input to the same result. */
static void check_generic(const uint8_t *data, size_t size, pn_err_t err,
                          const pn_command_t *cmd) {
    char errstr[512] = "";
    pn_command_t other;
    pn_err_t other_err = pn_codec_decode_command(generic, data, size, &other,
                                                 errstr, sizeof errstr);
    if (other_err != err || (!err && !pn_same_command(cmd, &other)))
        fuzz_fail("the plan and Avro C disagree", other_err, errstr);
    pn_command_release(&other);
}

/* Both codecs write a decoded command to the same bytes, in every
 * framing. */
static void check_encoders(const pn_command_t *cmd) {
    static const pn_framing_t framings[] = {
        PN_FRAMING_PLAIN, PN_FRAMING_CONFLUENT, PN_FRAMING_SINGLE_OBJECT};
    for (size_t i = 0; i < sizeof framings / sizeof *framings; i++) {
        pn_buf_reset(&scratch);
        pn_buf_reset(&other_scratch);
        pn_err_t err = pn_codec_encode_command(codec, cmd, framings[i], 3,
                                               &scratch);
        pn_err_t other_err = pn_codec_encode_command(generic, cmd, framings[i],
                                                     3, &other_scratch);
        if (err != other_err || scratch.len != other_scratch.len ||
            (scratch.len &&
             memcmp(scratch.data, other_scratch.data, scratch.len) != 0))
            fuzz_fail("the plan and Avro C encode differently", err, "");
    }
}

static void check_roundtrip(const pn_command_t *cmd) {
    char errstr[512] = "";
    pn_command_t again;
    check_encoders(cmd);
    /* Plain UpdateInventory with an empty id starts 0x00 0x00, which reads
     * as Confluent framing (documented in codec_command.c). */
    if (cmd->type == PN_CMD_UPDATE && cmd->id.len == 0)
        return;
    pn_buf_reset(&scratch);
    pn_err_t err = pn_codec_encode_command(codec, cmd, PN_FRAMING_PLAIN, 0,
                                           &scratch);
    if (err)
        fuzz_fail("re-encode", err, "");
    err = pn_codec_decode_command(codec, scratch.data, scratch.len, &again,
                                  errstr, sizeof errstr);
    if (err)
        fuzz_fail("re-decode", err, errstr);
    if (!err && !pn_same_command(&again, cmd))
        fuzz_fail("round trip changed the command", PN_ERR_OK, "");
    pn_command_release(&again);
}

static void fuzz_other_records(const uint8_t *data, size_t size) {
    char errstr[512] = "";
    pn_event_t ev;
    pn_err_t err = pn_codec_decode_event(codec, data, size, &ev, errstr,
                                         sizeof errstr);
    if (err)
        check_failure("event", err, errstr);
    pn_event_t other_ev;
    if (pn_codec_decode_event(generic, data, size, &other_ev, NULL, 0) != err ||
        (!err && !pn_same_event(&ev, &other_ev)))
        fuzz_fail("the plan and Avro C disagree on an event", err, "");
    pn_event_release(&other_ev);
    pn_event_release(&ev);
    pn_outcome_record_t rec, other_rec;
    errstr[0] = '\0';
    err = pn_codec_decode_outcome(codec, data, size, &rec, errstr,
                                  sizeof errstr);
    if (err)
        check_failure("outcome", err, errstr);
    if (pn_codec_decode_outcome(generic, data, size, &other_rec, NULL, 0) !=
            err ||
        (!err && !pn_same_outcome(&rec, &other_rec)))
        fuzz_fail("the plan and Avro C disagree on an outcome", err, "");
    pn_outcome_record_release(&other_rec);
    pn_outcome_record_release(&rec);
    pn_state_t state;
    pn_state_init(&state);
    errstr[0] = '\0';
    err = pn_codec_decode_snapshot(codec, data, size, &state, NULL, NULL,
                                   NULL, errstr, sizeof errstr);
    if (err)
        check_failure("snapshot", err, errstr);
    pn_state_clear(&state);
}

const char *__lsan_default_options(void);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Avro C's avro_generic_value_new puts each value 4 bytes after its
 * allocation (a refcount comes first), so pointers stored inside our
 * long-lived codec's values are misaligned and LeakSanitizer's default
 * aligned scan reports what they point to as leaked. */
const char *__lsan_default_options(void) { return "use_unaligned=1"; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!codec)
        fuzz_init();
    char errstr[512] = "";
    pn_command_t cmd;
    pn_err_t err = pn_codec_decode_command(codec, data, size, &cmd, errstr,
                                           sizeof errstr);
    if (err)
        check_failure("command", err, errstr);
    else
        check_roundtrip(&cmd);
    check_generic(data, size, err, &cmd);
    pn_command_release(&cmd);
    fuzz_other_records(data, size);
    return 0;
}
