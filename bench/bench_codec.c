/*
 * panther bench codec: the cost of the records the engine decodes and
 * encodes for every command (a command in; an event and an outcome out),
 * through the codec's direct plans, against Avro C's generic values in the
 * same run as the baseline. The two paths alternate round by round, so a
 * machine that speeds up or slows down during the run moves both.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_util.h"
#include "clock.h"
#include "codec_internal.h"

enum { OP_DECODE_COMMAND, OP_ENCODE_EVENT, OP_ENCODE_OUTCOME,
       OP_DECODE_EVENT, OP_ENCODE_COMMAND, OP__COUNT };

static const char *const op_names[OP__COUNT] = {
    "decode_command", "encode_event", "encode_outcome", "decode_event",
    "encode_command"};

typedef struct options {
    uint64_t records;
    uint64_t rounds;
    uint64_t seed;
    bool json;
} options_t;

/* The records of the run, each encoded once by the plans: the input of the
 * decoders, and (decoded) the values the encoders write. */
typedef struct corpus {
    size_t n;
    pn_buf_t commands; /* concatenated, plain framing */
    pn_buf_t events;
    size_t *command_at; /* n + 1 offsets */
    size_t *event_at;
    pn_command_t *decoded; /* owned, released at the end */
    pn_event_t *as_events; /* views into decoded */
} corpus_t;

static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A command as an order system sends them: ids of usual lengths, a
 * quarter of each type. */
static pn_err_t add_command(pn_codec_t *codec, uint64_t *rng, uint64_t i,
                            pn_buf_t *out) {
    char id[64], order[32], sku[32], node[32];
    uint64_t r = next_rand(rng);
    snprintf(id, sizeof id, "%08llx-4b1a-4c55-9d3e-%012llx",
             (unsigned long long)(r >> 32), (unsigned long long)i);
    snprintf(order, sizeof order, "order-%llu", (unsigned long long)(r % 1000000));
    snprintf(sku, sizeof sku, "sku-%06llu", (unsigned long long)(r % 100000));
    snprintf(node, sizeof node, "node-%02llu", (unsigned long long)(r % 16));
    pn_command_t c = {.type = (pn_command_type_t)(i % PN_CMD__COUNT),
                      .id = pn_str_c(id),
                      .order_id = pn_str_c(order),
                      .sku_id = pn_str_c(sku),
                      .node_id = pn_str_c(node),
                      .by = pn_str_c("order-service"),
                      .has_quantity = true,
                      .quantity = (int32_t)(1 + r % 5),
                      .at_ms = 1764000000000 + (int64_t)i};
    if (c.type == PN_CMD_UPDATE)
        c.order_id = PN_STR_NULL;
    return pn_codec_encode_command(codec, &c, PN_FRAMING_PLAIN, 0, out);
}

static pn_event_t event_of(const pn_command_t *c, int64_t version) {
    static const pn_event_type_t types[PN_CMD__COUNT] = {
        [PN_CMD_UPDATE] = PN_EVT_UPDATED, [PN_CMD_RESERVE] = PN_EVT_RESERVED,
        [PN_CMD_CANCEL] = PN_EVT_CANCELLED, [PN_CMD_SHIP] = PN_EVT_SHIPPED};
    return (pn_event_t){.type = types[c->type],
                        .sku_id = c->sku_id,
                        .node_id = c->node_id,
                        .version = version,
                        .command_id = c->id,
                        .by = c->by,
                        .at_ms = c->at_ms,
                        .order_id = c->order_id,
                        .quantity = c->quantity,
                        .previous_quantity = 40};
}

static pn_err_t corpus_build(pn_codec_t *codec, const options_t *o,
                             corpus_t *k) {
    k->n = o->records;
    pn_buf_init(&k->commands, SIZE_MAX);
    pn_buf_init(&k->events, SIZE_MAX);
    k->command_at = calloc(k->n + 1, sizeof *k->command_at);
    k->event_at = calloc(k->n + 1, sizeof *k->event_at);
    k->decoded = calloc(k->n, sizeof *k->decoded);
    k->as_events = calloc(k->n, sizeof *k->as_events);
    if (!k->command_at || !k->event_at || !k->decoded || !k->as_events)
        return PN_ERR_NOMEM;
    uint64_t rng = o->seed;
    for (size_t i = 0; i < k->n; i++) {
        pn_err_t err = add_command(codec, &rng, i, &k->commands);
        if (!err)
            err = pn_codec_decode_command(
                codec, k->commands.data + k->command_at[i],
                k->commands.len - k->command_at[i], &k->decoded[i], NULL, 0);
        if (err)
            return err;
        k->command_at[i + 1] = k->commands.len;
        k->as_events[i] = event_of(&k->decoded[i], (int64_t)(i + 1));
        err = pn_codec_encode_event(codec, &k->as_events[i], &k->events);
        if (err)
            return err;
        k->event_at[i + 1] = k->events.len;
    }
    return PN_ERR_OK;
}

static void corpus_free(corpus_t *k) {
    for (size_t i = 0; k->decoded && i < k->n; i++)
        pn_command_release(&k->decoded[i]);
    free(k->decoded);
    free(k->as_events);
    free(k->command_at);
    free(k->event_at);
    pn_buf_free(&k->commands);
    pn_buf_free(&k->events);
}

/* One pass of one operation over the whole corpus; seconds, or < 0 when a
 * record failed (which the corpus rules out). */
static double run_op(pn_codec_t *codec, const corpus_t *k, int op,
                     pn_buf_t *out) {
    pn_err_t err = PN_ERR_OK;
    double t0 = pn_mono_s();
    for (size_t i = 0; i < k->n && !err; i++) {
        pn_buf_reset(out);
        switch (op) {
        case OP_DECODE_COMMAND: {
            pn_command_t c;
            err = pn_codec_decode_command(
                codec, k->commands.data + k->command_at[i],
                k->command_at[i + 1] - k->command_at[i], &c, NULL, 0);
            pn_command_release(&c);
            break;
        }
        case OP_ENCODE_EVENT:
            err = pn_codec_encode_event(codec, &k->as_events[i], out);
            break;
        case OP_ENCODE_OUTCOME: {
            pn_outcome_t outcome = {.command_type = k->decoded[i].type,
                                    .status = PN_STATUS_ACCEPTED,
                                    .version = (int64_t)i + 1,
                                    .on_hand = 40,
                                    .reserved = 7,
                                    .available = 33};
            err = pn_codec_encode_outcome(codec, &k->decoded[i], &outcome, out);
            break;
        }
        case OP_DECODE_EVENT: {
            pn_event_t e;
            err = pn_codec_decode_event(codec,
                                        k->events.data + k->event_at[i],
                                        k->event_at[i + 1] - k->event_at[i],
                                        &e, NULL, 0);
            pn_event_release(&e);
            break;
        }
        case OP_ENCODE_COMMAND:
            err = pn_codec_encode_command(codec, &k->decoded[i],
                                          PN_FRAMING_PLAIN, 0, out);
            break;
        }
    }
    double t = pn_mono_s() - t0;
    return err ? -1 : t;
}

static int parse_args(int argc, char **argv, options_t *o) {
    static const struct option longopts[] = {
        {"records", required_argument, NULL, 'n'},
        {"rounds", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 'x'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        uint64_t *dst = c == 'n' ? &o->records : c == 'r' ? &o->rounds
                        : c == 'x' ? &o->seed : NULL;
        if (dst && (!pn_bench_parse_u64(optarg, dst) || *dst == 0)) {
            fprintf(stderr, "panther bench codec: --%s needs a whole number "
                            "above 0, not '%s'\n",
                    longopts[c == 'n' ? 0 : c == 'r' ? 1 : 2].name, optarg);
            return 2;
        }
        if (c == 'j')
            o->json = true;
        if (c == 'h' || c == '?') {
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: panther bench codec [--records N] [--rounds K] "
                    "[--seed X] [--json]\n"
                    "  --records N  records per pass (default 200000)\n"
                    "  --rounds K   passes of each path, alternating "
                    "(default 5; the median is reported)\n"
                    "  --seed X     generator seed (default 1)\n"
                    "  --json       print one JSON object\n");
            return c == 'h' ? -1 : 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "panther bench codec: unexpected argument '%s'\n",
                argv[optind]);
        return 2;
    }
    return 0;
}

int pn_bench_codec_main(int argc, char **argv) {
    options_t o = {.records = 200000, .rounds = 5, .seed = 1};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    char errstr[512] = "";
    pn_codec_t *codec = NULL;
    corpus_t k = {.n = 0};
    double *ns = calloc(2 * OP__COUNT * o.rounds, sizeof *ns);
    pn_buf_t out;
    pn_buf_init(&out, 1 << 20);
    pn_err_t err = ns ? pn_codec_new(NULL, &codec, errstr, sizeof errstr)
                      : PN_ERR_NOMEM;
    if (!err && !pn_codec__plan(codec, PN_SCHEMA_COMMAND)) {
        snprintf(errstr, sizeof errstr, "the codec has no plans to measure");
        err = PN_ERR_INTERNAL;
    }
    if (!err)
        err = corpus_build(codec, &o, &k);
    /* ns[(path * OP__COUNT + op) * rounds + round]; path 0 = plans. */
    for (uint64_t round = 0; !err && round < o.rounds; round++) {
        for (int path = 0; path < 2 && !err; path++) {
            pn_codec__use_plans(codec, path == 0);
            for (int op = 0; op < OP__COUNT && !err; op++) {
                double s = run_op(codec, &k, op, &out);
                if (s < 0)
                    err = PN_ERR_INTERNAL;
                ns[(path * OP__COUNT + op) * o.rounds + round] =
                    s * 1e9 / (double)k.n;
            }
        }
        if (!o.json)
            fprintf(stderr, "round %llu of %llu done\n",
                    (unsigned long long)round + 1,
                    (unsigned long long)o.rounds);
    }
    if (err) {
        fprintf(stderr, "panther bench codec: %s%s%s\n", pn_err_name(err),
                errstr[0] ? ": " : "", errstr);
    } else {
        if (o.json)
            printf("{\"bench\":\"codec\",\"records\":%llu,\"rounds\":%llu",
                   (unsigned long long)o.records,
                   (unsigned long long)o.rounds);
        else
            printf("%-16s %12s %12s %8s\n", "ns per record", "plans",
                   "Avro C", "speedup");
        for (int op = 0; op < OP__COUNT; op++) {
            double plan = pn_bench_percentile(ns + op * o.rounds, o.rounds,
                                              0.5);
            double generic = pn_bench_percentile(
                ns + (OP__COUNT + op) * o.rounds, o.rounds, 0.5);
            if (o.json)
                printf(",\"%s_ns\":%.1f,\"%s_generic_ns\":%.1f,"
                       "\"%s_speedup\":%.2f",
                       op_names[op], plan, op_names[op], generic,
                       op_names[op], generic / plan);
            else
                printf("%-16s %12.1f %12.1f %8.2f\n", op_names[op], plan,
                       generic, generic / plan);
        }
        if (o.json)
            printf("}\n");
    }
    corpus_free(&k);
    pn_buf_free(&out);
    pn_codec_free(codec);
    free(ns);
    return err ? 1 : 0;
}
