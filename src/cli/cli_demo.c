/* panther demo: the whole flow in this process, on librdkafka's mock
 * cluster, then a summary table and the audit (see panther/demo.h). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "panther/demo.h"
#include "panther/log.h"

#define MAX_ROWS 60 /* streams shown in the table; --json lists all */

static volatile sig_atomic_t demo_interrupted;

static void on_signal(int sig) {
    (void)sig;
    demo_interrupted = 1;
}

static const char *const type_names[PN_CMD__COUNT] = {
    "UpdateInventory", "ReserveInventory", "CancelReservation", "ShipOrder"};

static void usage(FILE *out) {
    fprintf(out,
            "usage: panther demo [options]\n"
            "Runs Panther end to end in this process, with no broker and no Java:\n"
            "librdkafka's in-process mock cluster (%d brokers), the topics, workers on\n"
            "threads, and an order flow with stock counts, multi-line orders,\n"
            "shipments, cancellations, deliveries, resent ids, mistakes and a few\n"
            "undecodable records. Then prints every stream's final state (folded from\n"
            "the events topic), the replies by outcome, and the audit.\n\n"
            "  --commands N     command records in the flow (default %d, max %d)\n"
            "  --skus N         SKUs (default %d, max %d)\n"
            "  --nodes N        fulfillment nodes (default %d, max %d);\n"
            "                   streams = skus x nodes (max %d)\n"
            "  --workers N      workers, each with its own thread and store\n"
            "                   (default %d, max %d)\n"
            "  --partitions N   partitions of every topic (default %d, max %d)\n"
            "  --seed N         the flow is a function of the seed (default %d)\n"
            "  --at-least-once  run the workers with processing.guarantee=at_least_once\n"
            "                   (default exactly_once)\n"
            "  --json           print the result as one JSON object on stdout\n"
            "  --quiet          no progress lines on stderr\n"
            "  --verbose        the workers' JSON logs from level info (default: errors)\n"
            "  --help           this text\n"
            "Exit status: 0 the audit passed and every stream matched the flow's\n"
            "prediction, 1 otherwise, 2 usage error.\n",
            PN_DEMO_MOCK_BROKERS, PN_DEMO_DEFAULT_COMMANDS, PN_DEMO_MAX_COMMANDS,
            PN_DEMO_DEFAULT_SKUS, PN_DEMO_MAX_SKUS, PN_DEMO_DEFAULT_NODES,
            PN_DEMO_MAX_NODES, PN_DEMO_MAX_STREAMS, PN_DEMO_DEFAULT_WORKERS,
            PN_DEMO_MAX_WORKERS, PN_DEMO_DEFAULT_PARTITIONS,
            PN_DEMO_MAX_PARTITIONS, PN_DEMO_DEFAULT_SEED);
}

/* --- flags ---------------------------------------------------------------- */

static bool parse_count(const char *flag, const char *s, int max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < 1 || v > max) {
        fprintf(stderr,
                "panther demo: --%s expects a whole number from 1 to %d, "
                "got '%s'\n",
                flag, max, s);
        return false;
    }
    *out = (int)v;
    return true;
}

static bool parse_seed(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || s[0] == '+') {
        fprintf(stderr,
                "panther demo: --seed expects a non-negative whole number, "
                "got '%s'\n",
                s);
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

typedef struct flags {
    pn_demo_options_t opts;
    bool json, quiet, verbose, help;
} flags_t;

enum {
    OPT_COMMANDS = 1,
    OPT_SKUS,
    OPT_NODES,
    OPT_WORKERS,
    OPT_PARTITIONS,
    OPT_SEED,
    OPT_ALO,
    OPT_JSON,
    OPT_QUIET,
    OPT_VERBOSE,
    OPT_HELP
};

static bool apply_flag(flags_t *f, int c, const char *arg) {
    pn_demo_options_t *o = &f->opts;
    switch (c) {
    case OPT_COMMANDS:
        return parse_count("commands", arg, PN_DEMO_MAX_COMMANDS, &o->commands);
    case OPT_SKUS:
        return parse_count("skus", arg, PN_DEMO_MAX_SKUS, &o->skus);
    case OPT_NODES:
        return parse_count("nodes", arg, PN_DEMO_MAX_NODES, &o->nodes);
    case OPT_WORKERS:
        return parse_count("workers", arg, PN_DEMO_MAX_WORKERS, &o->workers);
    case OPT_PARTITIONS:
        return parse_count("partitions", arg, PN_DEMO_MAX_PARTITIONS,
                           &o->partitions);
    case OPT_SEED:
        return (o->seed_set = parse_seed(arg, &o->seed));
    case OPT_ALO:
        return (o->at_least_once = true);
    case OPT_JSON:
        return (f->json = true);
    case OPT_QUIET:
        return (f->quiet = true);
    case OPT_VERBOSE:
        return (f->verbose = true);
    case OPT_HELP:
        return (f->help = true);
    default:
        return false;
    }
}

static bool parse_flags(int argc, char **argv, flags_t *f) {
    static const struct option longopts[] = {
        {"commands", required_argument, NULL, OPT_COMMANDS},
        {"skus", required_argument, NULL, OPT_SKUS},
        {"nodes", required_argument, NULL, OPT_NODES},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"partitions", required_argument, NULL, OPT_PARTITIONS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"at-least-once", no_argument, NULL, OPT_ALO},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0}};
    memset(f, 0, sizeof *f);
    bool ok = true;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c == ':')
            fprintf(stderr, "panther demo: %s needs a value\n", argv[optind - 1]);
        else if (c == '?')
            fprintf(stderr, "panther demo: unknown option '%s'\n",
                    argv[optind - 1]);
        ok &= apply_flag(f, c, optarg);
    }
    if (ok && optind < argc) {
        fprintf(stderr, "panther demo: unexpected argument '%s'\n", argv[optind]);
        ok = false;
    }
    char why[256];
    if (ok && !f->help &&
        pn_demo_options_check(&f->opts, why, sizeof why) != PN_ERR_OK) {
        fprintf(stderr, "panther demo: --skus/--nodes: %s\n", why);
        ok = false;
    }
    return ok;
}

/* --- progress on stderr --------------------------------------------------- */

typedef struct progress_out {
    bool tty;
    bool open_line;    /* a \r line is showing */
    const char *phase; /* of the last line */
} progress_out_t;

static void on_progress(void *opaque, const pn_demo_progress_t *p) {
    progress_out_t *po = opaque;
    /* Into a file or pipe: a line per phase, and each second of work. */
    bool same = po->phase && !strcmp(po->phase, p->phase);
    if (!po->tty && same && strcmp(p->phase, "running"))
        return;
    po->phase = p->phase;
    char line[256];
    if (!strcmp(p->phase, "starting"))
        snprintf(line, sizeof line, "starting the mock cluster and the workers");
    else if (!strcmp(p->phase, "joining"))
        snprintf(line, sizeof line, "the workers are joining the consumer group");
    else
        snprintf(line, sizeof line,
                 "%-8s %6" PRIu64 "/%" PRIu64 " records produced, %6" PRIu64
                 " answered",
                 p->phase, p->produced, p->records, p->answered);
    if (po->tty) {
        fprintf(stderr, "\r\033[K[%5.1fs] %s", p->seconds, line);
        po->open_line = true;
    } else {
        fprintf(stderr, "[%5.1fs] %s\n", p->seconds, line);
    }
    fflush(stderr);
}

static void end_progress(progress_out_t *po) {
    if (po->open_line)
        fprintf(stderr, "\r\033[K");
    po->open_line = false;
}

/* --- the summary as text -------------------------------------------------- */

static void print_header(const pn_demo_result_t *r, FILE *out) {
    const pn_demo_flow_stats_t *s = &r->sent;
    fprintf(out,
            "Panther demo: librdkafka %s mock cluster (%d brokers), %d "
            "partitions, %d workers, %s\n\n",
            rd_kafka_version_str(), PN_DEMO_MOCK_BROKERS, r->partitions,
            r->workers, r->exactly_once ? "exactly_once" : "at_least_once");
    fprintf(out,
            "Order flow (seed %" PRIu64 "): %" PRIu64 " records over %d SKUs x "
            "%d nodes\n"
            "  %" PRIu64 " orders: %" PRIu64 " reservations, %" PRIu64
            " shipments, %" PRIu64 " cancellations; %" PRIu64
            " stock counts and deliveries\n"
            "  on purpose: %" PRIu64 " resent ids, %" PRIu64
            " mistakes, %" PRIu64 " misrouted, %" PRIu64 " undecodable\n\n",
            r->seed, s->records, r->skus, r->nodes, s->orders,
            s->by_type[PN_CMD_RESERVE], s->by_type[PN_CMD_SHIP],
            s->by_type[PN_CMD_CANCEL], s->by_type[PN_CMD_UPDATE], s->resent,
            s->mistakes, s->misrouted, s->undecodable);
}

static void print_streams(const pn_demo_result_t *r, FILE *out) {
    int w_sku = 3, w_node = 4;
    for (size_t i = 0; i < r->n_streams; i++) {
        int a = (int)strlen(r->streams[i].sku_id);
        int b = (int)strlen(r->streams[i].node_id);
        w_sku = a > w_sku ? a : w_sku;
        w_node = b > w_node ? b : w_node;
    }
    fprintf(out, "Final state of %zu stream%s (folded from %s)\n",
            r->n_streams, r->n_streams == 1 ? "" : "s", PN_DEMO_TOPIC_EVENTS);
    fprintf(out, "  %-*s  %-*s  %8s  %8s  %9s  %11s  %7s\n", w_sku, "SKU",
            w_node, "NODE", "ON HAND", "RESERVED", "AVAILABLE", "OPEN ORDERS",
            "VERSION");
    int64_t on_hand = 0, reserved = 0, available = 0, version = 0;
    uint64_t orders = 0;
    for (size_t i = 0; i < r->n_streams; i++) {
        const pn_demo_stream_t *s = &r->streams[i];
        on_hand += s->on_hand;
        reserved += s->reserved;
        available += s->available;
        version += s->version;
        orders += s->open_orders;
        if (i < MAX_ROWS)
            fprintf(out,
                    "  %-*s  %-*s  %8" PRId64 "  %8" PRId64 "  %9" PRId64
                    "  %11zu  %7" PRId64 "\n",
                    w_sku, s->sku_id, w_node, s->node_id, s->on_hand,
                    s->reserved, s->available, s->open_orders, s->version);
    }
    if (r->n_streams > MAX_ROWS)
        fprintf(out, "  ... %zu more streams (--json lists them all)\n",
                r->n_streams - MAX_ROWS);
    fprintf(out,
            "  %-*s  %8" PRId64 "  %8" PRId64 "  %9" PRId64 "  %11" PRIu64
            "  %7" PRId64 "\n",
            w_sku + 2 + w_node, "total", on_hand, reserved, available, orders,
            version);
    fprintf(out, "  available = on hand - reserved; open orders hold a "
                 "reservation; version = the\n  stream's events\n\n");
}

static void print_outcomes(const pn_demo_result_t *r, FILE *out) {
    const pn_demo_counts_t *c = &r->counts;
    fprintf(out, "Replies (%s)\n  %-18s  %8s  %8s\n", PN_DEMO_TOPIC_OUTCOMES,
            "COMMAND", "ACCEPTED", "REJECTED");
    uint64_t acc = 0, rej = 0;
    for (int t = 0; t < PN_CMD__COUNT; t++) {
        fprintf(out, "  %-18s  %8" PRIu64 "  %8" PRIu64 "\n", type_names[t],
                c->accepted[t], c->rejected[t]);
        acc += c->accepted[t];
        rej += c->rejected[t];
    }
    fprintf(out, "  %-18s  %8" PRIu64 "  %8" PRIu64 "\n", "total", acc, rej);
    /* The reasons, wrapped under their label. */
    const int indent = 20, width = 78;
    int col = fprintf(out, "  rejected because: ");
    bool first = true;
    for (int i = 0; i < PN_REASON__COUNT; i++) {
        if (!c->reasons[i])
            continue;
        char item[64];
        int n = snprintf(item, sizeof item, "%" PRIu64 " %s", c->reasons[i],
                         pn_reason_name((pn_reason_t)i));
        if (!first && col + 2 + n > width)
            col = fprintf(out, ",\n%*s", indent, "") - 2;
        else if (!first)
            col += fprintf(out, ", ");
        col += fprintf(out, "%s", item);
        first = false;
    }
    fprintf(out, "%s\n", rej ? "" : "nothing");
    fprintf(out,
            "  duplicates: %" PRIu64 " (resent ids: answered again with "
            "duplicate=true, no event)\n"
            "  events: %" PRIu64 "\n"
            "  dead letters: %" PRIu64 " (in %s); misrouted and forwarded: %" PRIu64
            "\n\n",
            c->duplicates, c->events, r->audit.dead_letters,
            PN_DEMO_TOPIC_DEAD_LETTERS, r->audit.forwarded_copies);
}

/* The audit's own report, indented like the sections above. */
static void print_indented_audit(const pn_audit_report_t *a, FILE *out) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        pn_audit_report_print(a, out);
        return;
    }
    pn_audit_report_print(a, mem);
    fclose(mem);
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        fprintf(out, "  %.*s\n", nl ? (int)(nl - line) : (int)strlen(line),
                line);
    }
    free(text);
}

static void print_text(const pn_demo_result_t *r, FILE *out) {
    print_header(r, out);
    print_streams(r, out);
    print_outcomes(r, out);
    fprintf(out, "Audit (from the topics alone, read_committed)\n");
    print_indented_audit(&r->audit, out);
    if (r->rebalances_while_running)
        fprintf(out,
                "Warning: the consumer group rebalanced while the workers ran; "
                "the mock broker\nkeeps no transactional offsets, so the new "
                "owners replayed their partitions.\n");
    if (r->mismatches)
        fprintf(out,
                "PREDICTION MISMATCH: %" PRIu64 " streams or counts differ from "
                "what the order flow predicted\n",
                r->mismatches);
    else
        fprintf(out, "Prediction: every stream and count is what the order "
                     "flow predicted.\n");
    const pn_worker_stats_t *w = &r->worker_totals;
    double rate = r->answer_seconds > 0
                      ? (double)r->sent.records / r->answer_seconds
                      : 0;
    fprintf(out,
            "\nDone in %.1f s. The workers joined the consumer group in %.1f s "
            "(the mock\ncoordinator waits 3 s for members); then %" PRIu64
            " records were produced and\nanswered in %.1f s (%.0f/s), in %" PRIu64
            " %s, %" PRIu64 " aborted.\n",
            r->seconds, r->join_seconds, r->sent.records, r->answer_seconds,
            rate, w->commits, r->exactly_once ? "transactions" : "batches",
            w->aborts);
    if (r->exactly_once)
        fprintf(out,
                "Note: the mock broker runs the transactions but keeps no "
                "transactional offsets\nand hides no aborted records, so this "
                "run shows the flow; the guarantee under\ncrashes and "
                "rebalances is tested on a real broker (ctest -L integration).\n");
}

/* --- the summary as JSON -------------------------------------------------- */

static json_t *counts_json(const uint64_t *values, int n,
                           const char *(*name)(int)) {
    json_t *obj = json_object();
    for (int i = 0; obj && i < n; i++)
        json_object_set_new(obj, name(i), json_integer((json_int_t)values[i]));
    return obj;
}

static const char *type_name(int i) { return type_names[i]; }
static const char *reason_name(int i) { return pn_reason_name((pn_reason_t)i); }

static json_t *streams_json(const pn_demo_result_t *r) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < r->n_streams; i++) {
        const pn_demo_stream_t *s = &r->streams[i];
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "skuId",
                           s->sku_id, "fulfillmentNodeId", s->node_id, "onHand",
                           (json_int_t)s->on_hand, "reserved",
                           (json_int_t)s->reserved, "available",
                           (json_int_t)s->available, "openOrders",
                           (json_int_t)s->open_orders, "version",
                           (json_int_t)s->version));
    }
    return arr;
}

static json_t *audit_json(const pn_audit_report_t *a) {
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s#, s:b}",
        "commandRecords", (json_int_t)a->command_records, "undecodable",
        (json_int_t)a->undecodable, "misrouted", (json_int_t)a->misrouted,
        "forwardedCopies", (json_int_t)a->forwarded_copies, "outcomes",
        (json_int_t)a->outcomes, "duplicateOutcomes",
        (json_int_t)a->duplicate_outcomes, "deadLetters",
        (json_int_t)a->dead_letters, "events", (json_int_t)a->events, "streams",
        (json_int_t)a->streams, "violations", (json_int_t)a->violations,
        "details", a->details.data ? (const char *)a->details.data : "",
        (json_int_t)a->details.len, "passed", a->violations == 0);
}

static void print_json(const pn_demo_result_t *r, FILE *out) {
    const pn_demo_flow_stats_t *s = &r->sent;
    const pn_demo_counts_t *c = &r->counts;
    json_t *flow = json_pack(
        "{s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I}", "records",
        (json_int_t)s->records, "commands", (json_int_t)s->commands, "byType",
        counts_json(s->by_type, PN_CMD__COUNT, type_name), "orders",
        (json_int_t)s->orders, "resent", (json_int_t)s->resent, "mistakes",
        (json_int_t)s->mistakes, "misrouted", (json_int_t)s->misrouted,
        "undecodable", (json_int_t)s->undecodable);
    json_t *outcomes = json_pack(
        "{s:o, s:o, s:o, s:I, s:I}", "accepted",
        counts_json(c->accepted, PN_CMD__COUNT, type_name), "rejected",
        counts_json(c->rejected, PN_CMD__COUNT, type_name), "reasons",
        counts_json(c->reasons, PN_REASON__COUNT, reason_name), "duplicates",
        (json_int_t)c->duplicates, "events", (json_int_t)c->events);
    json_t *root = json_pack(
        "{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:I, s:o, s:o, s:o, s:o, s:I, "
        "s:I, s:f, s:f, s:f, s:I, s:I, s:b}",
        "librdkafka", rd_kafka_version_str(), "guarantee",
        r->exactly_once ? "exactly_once" : "at_least_once", "brokers",
        PN_DEMO_MOCK_BROKERS, "partitions", r->partitions, "workers",
        r->workers, "skus", r->skus, "nodes", r->nodes, "seed",
        (json_int_t)r->seed, "flow", flow, "streams", streams_json(r),
        "outcomes", outcomes, "audit", audit_json(&r->audit),
        "predictionMismatches", (json_int_t)r->mismatches,
        "rebalancesWhileRunning", (json_int_t)r->rebalances_while_running,
        "seconds",
        r->seconds, "joinSeconds", r->join_seconds, "answerSeconds",
        r->answer_seconds, "transactions",
        (json_int_t)r->worker_totals.commits, "aborts",
        (json_int_t)r->worker_totals.aborts, "passed", pn_demo_passed(r));
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (text)
        fprintf(out, "%s\n", text);
    else
        fprintf(stderr, "panther demo: out of memory\n");
    free(text);
    json_decref(root);
}

/* --- main ----------------------------------------------------------------- */

int pn_cli_demo(int argc, char **argv) {
    flags_t f;
    if (!parse_flags(argc, argv, &f)) {
        fprintf(stderr, "Try 'panther demo --help'.\n");
        return PN_EXIT_USAGE;
    }
    if (f.help) {
        usage(stdout);
        return PN_EXIT_OK;
    }
    /* Errors only, unless asked: the demo's own output is the summary,
     * and the dead letters it provokes on purpose would log warnings. */
    pn_log_set_level(f.verbose ? PN_LOG_INFO : PN_LOG_ERROR);
    progress_out_t po = {.tty = isatty(STDERR_FILENO)};
    if (!f.quiet) {
        f.opts.progress = on_progress;
        f.opts.progress_opaque = &po;
    }
    demo_interrupted = 0;
    f.opts.interrupted = &demo_interrupted;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    pn_demo_result_t r;
    char err[1024] = "";
    pn_err_t e = pn_demo_run(&f.opts, &r, err, sizeof err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    end_progress(&po);
    int rc = PN_EXIT_OK;
    if (e) {
        fprintf(stderr, "panther demo: %s\n", err[0] ? err : pn_err_str(e));
        rc = e == PN_ERR_INVALID_ARG ? PN_EXIT_USAGE : PN_EXIT_FAILURE;
    } else {
        if (f.json)
            print_json(&r, stdout);
        else
            print_text(&r, stdout);
        rc = pn_demo_passed(&r) ? PN_EXIT_OK : PN_EXIT_FAILURE;
    }
    pn_demo_result_free(&r);
    return rc;
}
