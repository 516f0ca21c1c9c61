/*
 * panther produce: JSON lines (or hex lines) in, Avro commands out to the
 * commands topic, keyed and partitioned as DESIGN.md section 2 says. A
 * client tool for people and tests; the worker never runs this code.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_config.h"
#include "panther/codec.h"
#include "panther/command_json.h"
#include "panther/log.h"
#include "clock.h"

enum {
    OPT_INPUT = 2000,
    OPT_TOPIC,
    OPT_FRAMING,
    OPT_SCHEMA_ID,
    OPT_PARTITIONER,
    OPT_SKIP_BAD,
    OPT_RATE,
    OPT_COUNT,
    OPT_PROGRESS,
    OPT_RAW_HEX,
    OPT_KEY,
};

/* Failed deliveries logged one by one; later ones are only counted. */
#define LOGGED_FAILURES_MAX 20

typedef struct produce_opts {
    const char *input; /* NULL or "-": stdin */
    const char *topic; /* NULL: topics.commands */
    pn_framing_t framing;
    int64_t schema_id; /* -1: not given */
    bool default_partitioner;
    bool skip_bad;
    double rate; /* commands per second, 0 = unlimited */
    int64_t count; /* -1: all */
    bool progress;
    bool raw_hex;
    const char *key; /* --raw-hex only */
} produce_opts_t;

/* Counters shared with the delivery report callback, which runs inside
 * rd_kafka_poll/flush on this thread. */
typedef struct produce_stats {
    uint64_t sent;   /* handed to librdkafka */
    uint64_t acked;  /* delivered */
    uint64_t failed; /* delivery or produce call failed */
    uint64_t bad;    /* input lines skipped */
} produce_stats_t;

typedef struct producer {
    const produce_opts_t *opts;
    const char *topic;
    rd_kafka_t *rk;
    pn_codec_t *codec;
    produce_stats_t stats;
    uint64_t attempted; /* records counted against --count */
    int stop_rc;        /* exit code when the loop stopped early, or 0 */
    size_t max_line;
    pn_buf_t line, value, key;
    double next_progress; /* monotonic seconds */
    double started;
} producer_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out) {
    fprintf(out,
        "usage: panther produce [options] [< commands.jsonl]\n"
        "Publishes commands, one JSON object per input line, as Avro to the\n"
        "commands topic: key = the stream key skuId|fulfillmentNodeId,\n"
        "partition = murmur2(key) like Java's default partitioner.\n\n"
        "Line format (blank lines are skipped):\n"
        "  {\"type\": \"ReserveInventory\", \"id\": \"...\", \"orderId\": \"o-1\",\n"
        "   \"skuId\": \"sku-1\", \"fulfillmentNodeId\": \"dc-1\", \"quantity\": 2,\n"
        "   \"by\": \"checkout\", \"at\": 1767225600000}\n"
        "  type      UpdateInventory|ReserveInventory|CancelReservation|ShipOrder\n"
        "            or update|reserve|cancel|ship\n"
        "  orderId   required except for UpdateInventory (which has none)\n"
        "  quantity  integer; required for update and reserve; absent or null\n"
        "            for cancel and ship means all the order holds\n"
        "  id        default: a fresh UUID v4\n"
        "  by        default: \"panther-produce\"\n"
        "  at        milliseconds since the epoch; default: now\n"
        "  Other members, or members of the wrong type, make the line bad.\n\n"
        "Options:\n"
        "  --input FILE        read FILE instead of stdin ('-' = stdin)\n"
        "  --topic TOPIC       topic to write (default: setting topics.commands)\n"
        "  --framing F         plain (default), confluent or single-object\n"
        "  --schema-id N       Confluent schema id (required with --framing confluent)\n"
        "  --partitioner P     murmur2 (default) or default: librdkafka's\n"
        "                      consistent_random, which puts streams on the wrong\n"
        "                      partition (to test forwarding)\n"
        "  --rate N            at most N commands per second (0 = unlimited)\n"
        "  --count N           stop after N commands\n"
        "  --skip-bad          log and count bad lines and go on (default: stop\n"
        "                      at the first one and exit 2)\n"
        "  --progress          progress line every second (default when stderr is a TTY)\n"
        "  --raw-hex           each line is a record value in hex (whitespace\n"
        "                      ignored), sent as is; 'null' sends a record with no\n"
        "                      value. For testing dead letters.\n"
        "  --key TEXT          record key with --raw-hex (default: no key)\n"
        PN_CLI_CONFIG_USAGE
        "Exit: 0 all delivered; 1 a delivery or Kafka failure; 2 usage,\n"
        "configuration or a bad input line (without --skip-bad).\n");
}

/* --- options ----------------------------------------------------------------- */

static bool parse_rate(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 1e9)
        return false;
    *out = v;
    return true;
}

static bool parse_framing(const char *s, pn_framing_t *f) {
    if (!strcmp(s, "plain"))
        *f = PN_FRAMING_PLAIN;
    else if (!strcmp(s, "confluent"))
        *f = PN_FRAMING_CONFLUENT;
    else if (!strcmp(s, "single-object"))
        *f = PN_FRAMING_SINGLE_OBJECT;
    else
        return false;
    return true;
}

/* Returns false (after printing why) on a bad value. */
static bool produce_option(produce_opts_t *o, int c, const char *arg) {
    const char *what = NULL;
    switch (c) {
    case OPT_INPUT:
        o->input = arg;
        return true;
    case OPT_TOPIC:
        o->topic = arg;
        return true;
    case OPT_FRAMING:
        if (!parse_framing(arg, &o->framing))
            what = "--framing must be plain, confluent or single-object";
        break;
    case OPT_SCHEMA_ID:
        if (!pn_cli_parse_i64(arg, 0, INT32_MAX, &o->schema_id))
            what = "--schema-id must be an integer in [0, 2147483647]";
        break;
    case OPT_PARTITIONER:
        if (!strcmp(arg, "default") || !strcmp(arg, "murmur2"))
            o->default_partitioner = !strcmp(arg, "default");
        else
            what = "--partitioner must be murmur2 or default";
        break;
    case OPT_SKIP_BAD:
        o->skip_bad = true;
        return true;
    case OPT_RATE:
        if (!parse_rate(arg, &o->rate))
            what = "--rate must be a number of commands per second >= 0";
        break;
    case OPT_COUNT:
        if (!pn_cli_parse_i64(arg, 0, INT64_MAX, &o->count))
            what = "--count must be an integer >= 0";
        break;
    case OPT_PROGRESS:
        o->progress = true;
        return true;
    case OPT_RAW_HEX:
        o->raw_hex = true;
        return true;
    case OPT_KEY:
        o->key = arg;
        return true;
    default:
        what = "unknown option";
    }
    if (what)
        fprintf(stderr, "panther produce: %s (got '%s')\n", what,
                arg ? arg : "");
    return what == NULL;
}

/* Rules across flags. */
static bool produce_opts_check(const produce_opts_t *o) {
    const char *what = NULL;
    if (o->framing == PN_FRAMING_CONFLUENT && o->schema_id < 0)
        what = "--framing confluent needs --schema-id N";
    else if (o->framing != PN_FRAMING_CONFLUENT && o->schema_id >= 0)
        what = "--schema-id only applies to --framing confluent";
    else if (o->key && !o->raw_hex)
        what = "--key only applies to --raw-hex (commands are keyed by stream)";
    else if (o->raw_hex && o->framing != PN_FRAMING_PLAIN)
        what = "--framing does not apply to --raw-hex (values are sent as is)";
    if (what)
        fprintf(stderr, "panther produce: %s\n", what);
    return what == NULL;
}

/* --- input ------------------------------------------------------------------- */

/* Reads one line without its line ending. Returns 1 for a line, 0 at end of
 * input (or on a read error, reported via ferror). A line longer than the
 * limit is consumed to its end and reported with *too_long. */
static int read_line(FILE *in, pn_buf_t *line, bool *too_long) {
    int c;
    bool any = false;
    pn_buf_reset(line);
    *too_long = false;
    while ((c = getc_unlocked(in)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        if (!*too_long && pn_buf_append_byte(line, (uint8_t)c))
            *too_long = true;
    }
    if (line->len && line->data[line->len - 1] == '\r')
        line->len--;
    return any;
}

static bool is_blank(const pn_buf_t *line) {
    for (size_t i = 0; i < line->len; i++)
        if (line->data[i] != ' ' && line->data[i] != '\t')
            return false;
    return true;
}

static int hex_digit(uint8_t c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex text to bytes; *is_null for the word null. */
static pn_err_t parse_hex_line(const pn_buf_t *line, pn_buf_t *out,
                               bool *is_null, char *errstr,
                               size_t errstr_size) {
    pn_buf_reset(out);
    size_t a = 0, b = line->len;
    while (a < b && (line->data[a] == ' ' || line->data[a] == '\t'))
        a++;
    while (b > a && (line->data[b - 1] == ' ' || line->data[b - 1] == '\t'))
        b--;
    *is_null = b - a == 4 && !memcmp(line->data + a, "null", 4);
    if (*is_null)
        return PN_ERR_OK;
    int hi = -1;
    for (size_t i = a; i < b; i++) {
        uint8_t c = line->data[i];
        if (c == ' ' || c == '\t')
            continue;
        int d = hex_digit(c);
        if (d < 0)
            return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                              "column %zu: '%c' is not a hex digit", i + 1,
                              c >= 0x20 && c < 0x7f ? c : '?');
        if (hi < 0) {
            hi = d;
        } else {
            if (pn_buf_append_byte(out, (uint8_t)(hi << 4 | d)))
                return pn_err_set(errstr, errstr_size, PN_ERR_TOO_LARGE,
                                  "value is too large");
            hi = -1;
        }
    }
    if (hi >= 0)
        return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                          "odd number of hex digits");
    return PN_ERR_OK;
}

/* --- Kafka ------------------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
    (void)rk;
    producer_t *p = opaque;
    if (!m->err) {
        p->stats.acked++;
        return;
    }
    if (++p->stats.failed <= LOGGED_FAILURES_MAX)
        pn_log_kv(PN_LOG_ERROR, "delivery failed",
                  PN_LOG_STR("topic", p->topic),
                  PN_LOG_INT("line", (intptr_t)m->_private),
                  PN_LOG_STR("detail", rd_kafka_err2str(m->err)));
}

static pn_err_t producer_open(producer_t *p, const pn_config_t *cfg,
                              char *errstr, size_t errstr_size) {
    static const pn_kafka_prop_t defaults[] = {
        {"client.id", "panther-produce"}};
    const pn_kafka_prop_t fixed[] = {
        {"enable.idempotence", "true"},
        {"partitioner", p->opts->default_partitioner ? "consistent_random"
                                                     : "murmur2_random"}};
    pn_cli_kafka_props_t kp;
    rd_kafka_conf_t *conf = NULL;
    pn_err_t err = pn_cli_kafka_props_load(cfg, &kp);
    if (err) {
        pn_cli_kafka_props_free(&kp);
        return pn_err_set(errstr, errstr_size, err, "out of memory");
    }
    err = pn_kafka_conf_new(defaults, 1, kp.props, kp.n, fixed, 2, &conf,
                            errstr, errstr_size);
    pn_cli_kafka_props_free(&kp);
    if (err)
        return err;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, p);
    char why[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "cannot create the producer: %s", why);
    }
    int32_t n;
    return pn_kafka_partition_count(p->rk, p->topic, 15000, &n, errstr,
                                    errstr_size);
}

/* Hands one record to librdkafka, waiting while its queue is full. */
static void produce_record(producer_t *p, const void *key, size_t key_len,
                           const void *value, size_t len, long lineno) {
    rd_kafka_resp_err_t e;
    for (;;) {
        e = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(p->topic),
            RD_KAFKA_V_KEY((void *)key, key_len),
            RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE((void *)(intptr_t)lineno), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(p->rk, 100);
    }
    if (!e) {
        p->stats.sent++;
        return;
    }
    if (++p->stats.failed <= LOGGED_FAILURES_MAX)
        pn_log_kv(PN_LOG_ERROR, "produce failed", PN_LOG_STR("topic", p->topic),
                  PN_LOG_INT("line", lineno),
                  PN_LOG_STR("detail", rd_kafka_err2str(e)));
}

static void maybe_progress(producer_t *p, bool force) {
    if (!p->opts->progress && !force)
        return;
    double now = pn_mono_s();
    if (!force && now < p->next_progress)
        return;
    p->next_progress = now + 1.0;
    pn_log_kv(PN_LOG_INFO, "produce progress", PN_LOG_STR("topic", p->topic),
              PN_LOG_UINT("sent", p->stats.sent),
              PN_LOG_UINT("acked", p->stats.acked),
              PN_LOG_UINT("failed", p->stats.failed),
              PN_LOG_UINT("bad_lines", p->stats.bad));
}

/* Token bucket: waits (serving delivery reports) until a token is there. */
typedef struct bucket {
    double rate, burst, tokens, last;
} bucket_t;

static void bucket_take(bucket_t *b, producer_t *p) {
    if (b->rate <= 0)
        return;
    for (;;) {
        double now = pn_mono_s();
        b->tokens += (now - b->last) * b->rate;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last = now;
        if (b->tokens >= 1.0 || stop_requested) {
            b->tokens -= 1.0;
            return;
        }
        int wait_ms = (int)((1.0 - b->tokens) / b->rate * 1000.0) + 1;
        rd_kafka_poll(p->rk, wait_ms > 100 ? 100 : wait_ms);
        maybe_progress(p, false);
    }
}

/* --- the loop ----------------------------------------------------------------- */

/* Turns one line into a key and value. Returns PN_ERR_OK, or an error for a
 * bad line with the reason in errstr. *has_value false: no value (null). */
static pn_err_t encode_line(producer_t *p, bool *has_key, bool *has_value,
                            char *errstr, size_t errstr_size) {
    *has_key = false;
    *has_value = true;
    if (p->opts->raw_hex) {
        bool is_null;
        pn_err_t err = parse_hex_line(&p->line, &p->value, &is_null, errstr,
                                      errstr_size);
        *has_value = !is_null;
        *has_key = p->opts->key != NULL;
        return err;
    }
    pn_command_json_defaults_t d = {.by = NULL, .at_ms = pn_wall_ms()};
    pn_command_t cmd;
    pn_err_t err = pn_command_json_parse((const char *)p->line.data,
                                         p->line.len, &d, &cmd, errstr,
                                         errstr_size);
    if (err)
        return err;
    pn_buf_reset(&p->value);
    err = pn_codec_encode_command(p->codec, &cmd, p->opts->framing,
                                  (int32_t)p->opts->schema_id, &p->value);
    if (err)
        pn_err_set(errstr, errstr_size, err, "cannot encode the command: %s",
                   err == PN_ERR_TOO_LARGE
                       ? "larger than codec.max.record.bytes"
                       : pn_err_str(err));
    else if ((err = pn_command_json_record_key(&cmd, &p->key)))
        pn_err_set(errstr, errstr_size, err, "key too large");
    *has_key = true;
    pn_command_release(&cmd);
    return err;
}

/* Returns false to stop on a bad line. */
static bool handle_line(producer_t *p, long lineno, bool too_long) {
    char why[512] = "";
    bool has_key = false, has_value = false;
    pn_err_t err;
    if (too_long)
        err = pn_err_set(why, sizeof why, PN_ERR_TOO_LARGE,
                         "line is longer than %zu bytes", p->max_line);
    else
        err = encode_line(p, &has_key, &has_value, why, sizeof why);
    const char *input = p->opts->input ? p->opts->input : "stdin";
    if (err == PN_ERR_IO || err == PN_ERR_NOMEM) {
        fprintf(stderr, "panther produce: %s:%ld: %s\n", input, lineno, why);
        p->stop_rc = PN_EXIT_FAILURE;
        return false;
    }
    if (err) {
        p->stats.bad++;
        if (!p->opts->skip_bad) {
            fprintf(stderr, "panther produce: %s:%ld: %s\n", input, lineno,
                    why);
            p->stop_rc = PN_EXIT_USAGE;
            return false;
        }
        pn_log_kv(PN_LOG_WARN, "skipping bad input line",
                  PN_LOG_INT("line", lineno), PN_LOG_STR("detail", why));
        return true;
    }
    const void *key = NULL;
    size_t key_len = 0;
    if (has_key && p->opts->raw_hex) {
        key = p->opts->key;
        key_len = strlen(p->opts->key);
    } else if (has_key) {
        key = p->key.data ? (const void *)p->key.data : "";
        key_len = p->key.len;
    }
    p->attempted++;
    produce_record(p, key, key_len,
                   has_value ? (p->value.data ? (const void *)p->value.data
                                              : "")
                             : NULL,
                   has_value ? p->value.len : 0, lineno);
    return true;
}

/* Reads and sends until the end, --count, a signal or a bad line; sets
 * stop_rc when stopped by a bad line or a fatal error. */
static void produce_all(producer_t *p, FILE *in) {
    bucket_t bucket = {.rate = p->opts->rate,
                       .burst = p->opts->rate / 20 > 1 ? p->opts->rate / 20 : 1,
                       .tokens = 1,
                       .last = pn_mono_s()};
    long lineno = 0;
    bool too_long;
    char fatal[512];
    while (!stop_requested &&
           (p->opts->count < 0 ||
            p->attempted < (uint64_t)p->opts->count) &&
           read_line(in, &p->line, &too_long)) {
        lineno++;
        if (!too_long && is_blank(&p->line))
            continue;
        bucket_take(&bucket, p);
        if (!handle_line(p, lineno, too_long))
            return;
        rd_kafka_poll(p->rk, 0);
        maybe_progress(p, false);
        if (rd_kafka_fatal_error(p->rk, fatal, sizeof fatal)) {
            pn_log_kv(PN_LOG_ERROR, "producer failed",
                      PN_LOG_STR("detail", fatal));
            p->stop_rc = PN_EXIT_FAILURE;
            return;
        }
    }
    if (ferror(in) && !stop_requested) {
        fprintf(stderr, "panther produce: reading %s: %s\n",
                p->opts->input ? p->opts->input : "stdin", strerror(errno));
        p->stop_rc = PN_EXIT_FAILURE;
    }
}

/* Waits until every record is delivered or has failed. */
static void drain(producer_t *p) {
    while (rd_kafka_outq_len(p->rk) > 0) {
        rd_kafka_flush(p->rk, 1000);
        maybe_progress(p, false);
    }
}

static int run(producer_t *p, const pn_config_t *cfg, FILE *in) {
    char err[1024] = "";
    pn_codec_config_t cc = {
        .max_record_bytes =
            (size_t)pn_config_get_bytes(cfg, "codec.max.record.bytes")};
    p->max_line = cc.max_record_bytes * 8 + 4096;
    pn_buf_init(&p->line, p->max_line);
    pn_buf_init(&p->value, cc.max_record_bytes);
    pn_buf_init(&p->key, cc.max_record_bytes);
    pn_err_t e = pn_codec_new(&cc, &p->codec, err, sizeof err);
    if (!e)
        e = producer_open(p, cfg, err, sizeof err);
    if (e) {
        fprintf(stderr, "panther produce: %s\n", err[0] ? err : pn_err_str(e));
        return e == PN_ERR_CONFIG ? PN_EXIT_USAGE : PN_EXIT_FAILURE;
    }
    p->started = pn_mono_s();
    produce_all(p, in);
    drain(p);
    int rc = p->stop_rc ? p->stop_rc
             : p->stats.failed ? PN_EXIT_FAILURE
                               : PN_EXIT_OK;
    pn_log_kv(rc ? PN_LOG_ERROR : PN_LOG_INFO, "produce finished",
              PN_LOG_STR("topic", p->topic), PN_LOG_UINT("sent", p->stats.sent),
              PN_LOG_UINT("acked", p->stats.acked),
              PN_LOG_UINT("failed", p->stats.failed),
              PN_LOG_UINT("bad_lines", p->stats.bad),
              PN_LOG_DOUBLE("seconds", pn_mono_s() - p->started),
              PN_LOG_BOOL("interrupted", stop_requested != 0));
    return rc;
}

static void producer_close(producer_t *p) {
    if (p->rk)
        rd_kafka_destroy(p->rk);
    pn_codec_free(p->codec);
    pn_buf_free(&p->line);
    pn_buf_free(&p->value);
    pn_buf_free(&p->key);
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked read returns */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Parses argv; returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, produce_opts_t *o,
                      pn_cli_config_args_t *args) {
    static const struct option longopts[] = {
        PN_CLI_CONFIG_OPTIONS,
        {"input", required_argument, NULL, OPT_INPUT},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"framing", required_argument, NULL, OPT_FRAMING},
        {"schema-id", required_argument, NULL, OPT_SCHEMA_ID},
        {"partitioner", required_argument, NULL, OPT_PARTITIONER},
        {"skip-bad", no_argument, NULL, OPT_SKIP_BAD},
        {"rate", required_argument, NULL, OPT_RATE},
        {"count", required_argument, NULL, OPT_COUNT},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"raw-hex", no_argument, NULL, OPT_RAW_HEX},
        {"key", required_argument, NULL, OPT_KEY},
        {NULL, 0, NULL, 0}};
    bool usage_error = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        if (!pn_cli_config_option(args, c, optarg, &usage_error) &&
            !produce_option(o, c, optarg))
            usage_error = true;
    if (optind < argc) {
        fprintf(stderr, "panther produce: unexpected argument '%s'\n",
                argv[optind]);
        usage_error = true;
    }
    if (usage_error || (!args->help && !produce_opts_check(o))) {
        fprintf(stderr, "Try 'panther produce --help'.\n");
        return PN_EXIT_USAGE;
    }
    if (args->help) {
        usage(stdout);
        return PN_EXIT_OK;
    }
    return -1;
}

int pn_cli_produce(int argc, char **argv) {
    produce_opts_t o = {.framing = PN_FRAMING_PLAIN, .schema_id = -1,
                        .count = -1, .progress = isatty(STDERR_FILENO) == 1};
    pn_cli_config_args_t args = {0};
    int rc = parse_args(argc, argv, &o, &args);
    if (rc >= 0)
        return rc;
    pn_config_t *cfg;
    bool done;
    rc = pn_cli_config_build("produce", &args, &cfg, &done);
    if (done)
        return rc;
    FILE *in = stdin;
    if (o.input && strcmp(o.input, "-") && !(in = fopen(o.input, "r"))) {
        fprintf(stderr, "panther produce: cannot open '%s': %s\n", o.input,
                strerror(errno));
        pn_config_destroy(cfg);
        return PN_EXIT_USAGE;
    }
    producer_t p = {.opts = &o,
                    .topic = o.topic ? o.topic
                                     : pn_config_get_str(cfg, "topics.commands")};
    stop_requested = 0;
    install_signals();
    rc = run(&p, cfg, in);
    producer_close(&p);
    if (in != stdin)
        fclose(in);
    pn_config_destroy(cfg);
    return rc;
}
