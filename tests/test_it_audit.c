/* The audit against topics written by hand: a short run of one stream,
 * played through the pure domain core as a worker would and written to the
 * real broker's topics, once faithfully and then with one fault put in each
 * time. The audit must pass the faithful run and name every fault. */
#include <stdlib.h>
#include <string.h>

#include "it_support.h"
#include "panther/buf.h"
#include "panther/kafka.h"
#include "panther/partition.h"
#include "pn_test.h"

const int pn_test_needs_broker = 1;

typedef enum fault {
    FAITHFUL,
    SWAPPED,         /* a worker ran the first two commands the other way */
    LOST_OUTCOME,    /* the third command's outcome is missing */
    REPEATED_EVENT,  /* the first event is written twice */
    WRONG_NUMBERS,   /* the fourth outcome reports one more on hand */
    TWO_OUTCOMES,    /* the second command is answered twice */
} fault_t;

#define SKU "SKU-A"
#define NODE "DC-1"
#define N_COMMANDS 5

static pn_command_t command(size_t i) {
    switch (i) {
    case 0:
        return pn_it_cmd(PN_CMD_UPDATE, "u1", NULL, SKU, NODE, true, -1);
    case 1:
        return pn_it_cmd(PN_CMD_UPDATE, "u2", NULL, SKU, NODE, true, 10);
    case 2:
        return pn_it_cmd(PN_CMD_RESERVE, "r1", "o1", SKU, NODE, true, 4);
    case 3:
        return pn_it_cmd(PN_CMD_RESERVE, "r2", "o2", SKU, NODE, true, 20);
    default:
        return pn_it_cmd(PN_CMD_SHIP, "s1", "o1", SKU, NODE, true, 4);
    }
}

static void write_record(pn_it_t *it, const char *topic, int32_t partition,
                         pn_str_t key, const pn_buf_t *value,
                         const char *const *headers) {
    pn_it_produce(it, topic, partition, key, value->data, value->len, headers);
}

/* Writes the commands, then their events and outcomes as a worker that
 * runs them in `order` would, with `fault` put in; audits the topics. */
static void play(fault_t fault, pn_audit_report_t *report) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "audit", 3, 3));
    char key_chars[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(pn_str_c(SKU), pn_str_c(NODE), key_chars,
                                   sizeof key_chars);
    pn_str_t key = {key_chars, key_len};
    int32_t partition = pn_partition_for_key(key_chars, key_len, 3);

    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    int64_t offsets[N_COMMANDS];
    for (size_t i = 0; i < N_COMMANDS; i++) {
        pn_command_t cmd = command(i);
        pn_buf_reset(&buf);
        PN_REQUIRE(pn_codec_encode_command(it.codec, &cmd, PN_FRAMING_PLAIN, 0,
                                           &buf) == PN_ERR_OK);
        offsets[i] = pn_it_produce(&it, it.commands, partition, key, buf.data,
                                   buf.len, NULL);
    }

    size_t order[N_COMMANDS] = {0, 1, 2, 3, 4};
    if (fault == SWAPPED) {
        order[0] = 1;
        order[1] = 0;
    }
    pn_state_t state;
    pn_state_init(&state);
    for (size_t k = 0; k < N_COMMANDS; k++) {
        size_t i = order[k];
        pn_command_t cmd = command(i);
        pn_decision_t d;
        pn_domain_decide(&state, &cmd, NULL, &d);
        if (d.has_event) {
            pn_buf_reset(&buf);
            PN_REQUIRE(pn_codec_encode_event(it.codec, &d.event, &buf) ==
                       PN_ERR_OK);
            int copies = fault == REPEATED_EVENT && d.event.version == 1 ? 2 : 1;
            for (int c = 0; c < copies; c++)
                write_record(&it, it.events, partition, key, &buf, NULL);
            PN_REQUIRE(pn_domain_evolve(&state, &d.event) == PN_ERR_OK);
        }
        if (fault == LOST_OUTCOME && i == 2)
            continue;
        if (fault == WRONG_NUMBERS && i == 3) {
            d.outcome.on_hand++;
            d.outcome.available++;
        }
        pn_buf_reset(&buf);
        PN_REQUIRE(pn_codec_encode_outcome(it.codec, &cmd, &d.outcome, &buf) ==
                   PN_ERR_OK);
        char p_text[16], off_text[24];
        snprintf(p_text, sizeof p_text, "%d", (int)partition);
        snprintf(off_text, sizeof off_text, "%lld", (long long)offsets[i]);
        const char *headers[] = {PN_HEADER_SOURCE_PARTITION, p_text,
                                 PN_HEADER_SOURCE_OFFSET, off_text, NULL};
        int copies = fault == TWO_OUTCOMES && i == 1 ? 2 : 1;
        for (int c = 0; c < copies; c++)
            write_record(&it, it.outcomes, partition, key, &buf, headers);
    }
    pn_state_clear(&state);
    pn_buf_free(&buf);
    pn_it_audit(&it, 0, report); /* no worker: nothing to wait for */
    pn_it_cleanup(&it);
}

/* Whether the report's details hold every needle (NULL-terminated). */
static bool details_say(const pn_audit_report_t *r, const char *const *needles) {
    const char *text = (const char *)r->details.data;
    for (size_t i = 0; needles[i]; i++)
        if (!text || !memmem(text, r->details.len, needles[i], strlen(needles[i])))
            return false;
    return true;
}

static void expect_one_violation(fault_t fault, const char *const *needles) {
    pn_audit_report_t r;
    play(fault, &r);
    PN_ASSERT_EQ_INT(r.violations, 1);
    PN_ASSERT_(details_say(&r, needles), CU_FALSE, "details: %.*s",
               (int)r.details.len, (const char *)r.details.data);
    pn_audit_report_free(&r);
}

static void test_faithful_run_passes(void) {
    pn_audit_report_t r;
    play(FAITHFUL, &r);
    PN_ASSERT_EQ_INT(r.violations, 0);
    PN_ASSERT_EQ_INT(r.command_records, N_COMMANDS);
    PN_ASSERT_EQ_INT(r.outcomes, N_COMMANDS);
    PN_ASSERT_EQ_INT(r.accepted, 3);
    PN_ASSERT_EQ_INT(r.rejected, 2);
    PN_ASSERT_EQ_INT(r.events, 3);
    PN_ASSERT_EQ_INT(r.streams, 1);
    pn_audit_report_free(&r);
}

/* The numbers of u1's outcome agree with the events (version 1, 10 on
 * hand): only the order of the commands gives the worker away. */
static void test_commands_run_out_of_order(void) {
    expect_one_violation(SWAPPED, (const char *[]){"u2", "made version 1", "u1", "out of order", NULL});
}

static void test_lost_outcome(void) {
    expect_one_violation(LOST_OUTCOME, (const char *[]){"0 outcomes", NULL});
}

static void test_repeated_event(void) {
    expect_one_violation(REPEATED_EVENT, (const char *[]){"repeat", NULL});
}

static void test_wrong_numbers(void) {
    expect_one_violation(WRONG_NUMBERS, (const char *[]){"r2", "says", NULL});
}

static void test_two_outcomes(void) {
    pn_audit_report_t r;
    play(TWO_OUTCOMES, &r);
    /* The record has two outcomes, and u2 two non-duplicate ones. */
    PN_ASSERT_EQ_INT(r.violations, 2);
    PN_ASSERT(details_say(&r, (const char *[]){"2 outcomes", "more than one",
                                               NULL}));
    pn_audit_report_free(&r);
}

static const pn_test_case_t cases[] = {
    {"a faithful run passes", test_faithful_run_passes},
    {"commands run out of order", test_commands_run_out_of_order},
    {"a lost outcome", test_lost_outcome},
    {"a repeated event", test_repeated_event},
    {"an outcome with wrong numbers", test_wrong_numbers},
    {"a command answered twice", test_two_outcomes},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"audit", cases}, {NULL, NULL}};
