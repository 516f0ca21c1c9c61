/*
 * panther consume: prints the records of one of Panther's topics as JSON
 * lines on stdout. It assigns every partition itself (no group membership,
 * no offset commits), so it never disturbs the workers and can run any
 * number of times. A client tool for people and tests.
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
#include "panther/schema_registry.h"
#include "clock.h"

enum {
    OPT_TOPIC = 2000,
    OPT_FROM_END,
    OPT_EXIT_AT_END,
    OPT_COUNT,
    OPT_TIMEOUT_MS,
    OPT_SCHEMA_ID,
};

typedef enum { KIND_EVENTS, KIND_OUTCOMES, KIND_DLT, KIND_COMMANDS } kind_t;

static const struct {
    const char *name;
    const char *topic_key;
} kinds[] = {
    [KIND_EVENTS] = {"events", "topics.events"},
    [KIND_OUTCOMES] = {"outcomes", "topics.outcomes"},
    [KIND_DLT] = {"dlt", "topics.dead.letters"},
    [KIND_COMMANDS] = {"commands", "topics.commands"},
};

typedef struct consume_opts {
    kind_t kind;
    const char *topic; /* NULL: the configured topic of kind */
    bool from_end;
    bool exit_at_end;
    int64_t count;      /* -1: no limit */
    int64_t timeout_ms; /* -1: none */
    int64_t schema_id;  /* -1: none */
} consume_opts_t;

typedef struct consumer {
    const consume_opts_t *opts;
    const char *topic;
    rd_kafka_t *rk;
    pn_codec_t *codec;
    pn_schema_registry_t *registry; /* commands with schema.registry.url */
    int32_t n_partitions;
    bool *at_end; /* per partition: EOF seen and nothing since */
    int32_t n_at_end;
    uint64_t printed;
} consumer_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out) {
    fprintf(out,
        "usage: panther consume events|outcomes|dlt|commands [options]\n"
        "Prints the records of a Panther topic, one JSON object per line, read\n"
        "read_committed from every partition (no consumer group, no commits).\n\n"
        "Every line has \"topic\", \"partition\", \"offset\" and \"key\", then:\n"
        "  events    skuId, fulfillmentNodeId, version, commandId, by, at, type\n"
        "            (InventoryUpdated, InventoryReserved, ...) and the payload\n"
        "            fields\n"
        "  outcomes  every CommandOutcome field (enums as strings, reason null\n"
        "            when accepted), and sourcePartition/sourceOffset: the\n"
        "            command record answered (its panther.source.* headers)\n"
        "  dlt       valueHex (the record value in hex) and headers\n"
        "  commands  the decoded command in `panther produce`'s format, or\n"
        "            error, errorMessage and valueHex when it does not decode;\n"
        "            headers when the record has any\n"
        "A record that cannot be decoded gets error/errorMessage/valueHex.\n"
        "Strings that are not valid UTF-8 have U+FFFD for each bad byte plus a\n"
        "\"<field>Hex\" member with the exact bytes; a header value that is not\n"
        "UTF-8 prints as {\"hex\": \"...\"}; repeated header names give arrays.\n\n"
        "Options:\n"
        "  --topic TOPIC       read TOPIC instead of the configured one\n"
        "                      (topics.events, topics.outcomes,\n"
        "                      topics.dead.letters, topics.commands)\n"
        "  --from-end          start at the end instead of the beginning\n"
        "  --exit-at-end       stop once every partition has reached its end\n"
        "  --count N           stop after N records\n"
        "  --timeout-ms N      stop after N ms; exit 1 if --count or\n"
        "                      --exit-at-end was not satisfied by then\n"
        "  --schema-id N       commands: read Confluent schema id N as\n"
        "                      Panther's Command schema\n"
        "Commands: other Confluent schema ids are looked up in the Schema\n"
        "Registry at schema.registry.url when it is set.\n"
        PN_CLI_CONFIG_USAGE
        "Exit: 0 done; 1 Kafka or output failure, or timed out; 2 usage or\n"
        "configuration error.\n");
}

/* --- options ----------------------------------------------------------------- */

static bool consume_option(consume_opts_t *o, int c, const char *arg) {
    const char *what = NULL;
    switch (c) {
    case OPT_TOPIC:
        o->topic = arg;
        break;
    case OPT_FROM_END:
        o->from_end = true;
        break;
    case OPT_EXIT_AT_END:
        o->exit_at_end = true;
        break;
    case OPT_COUNT:
        if (!pn_cli_parse_i64(arg, 0, INT64_MAX, &o->count))
            what = "--count must be an integer >= 0";
        break;
    case OPT_TIMEOUT_MS:
        if (!pn_cli_parse_i64(arg, 0, INT64_MAX / 2, &o->timeout_ms))
            what = "--timeout-ms must be an integer >= 0";
        break;
    case OPT_SCHEMA_ID:
        if (!pn_cli_parse_i64(arg, 0, INT32_MAX, &o->schema_id))
            what = "--schema-id must be an integer in [0, 2147483647]";
        break;
    default:
        what = "unknown option";
    }
    if (what)
        fprintf(stderr, "panther consume: %s (got '%s')\n", what,
                arg ? arg : "");
    return what == NULL;
}

static bool parse_kind(const char *name, kind_t *kind) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(name, kinds[i].name)) {
            *kind = (kind_t)i;
            return true;
        }
    return false;
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, consume_opts_t *o,
                      pn_cli_config_args_t *args) {
    static const struct option longopts[] = {
        PN_CLI_CONFIG_OPTIONS,
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"from-end", no_argument, NULL, OPT_FROM_END},
        {"exit-at-end", no_argument, NULL, OPT_EXIT_AT_END},
        {"count", required_argument, NULL, OPT_COUNT},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
        {"schema-id", required_argument, NULL, OPT_SCHEMA_ID},
        {NULL, 0, NULL, 0}};
    bool usage_error = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        if (!pn_cli_config_option(args, c, optarg, &usage_error) &&
            !consume_option(o, c, optarg))
            usage_error = true;
    if (args->help && !usage_error) {
        usage(stdout);
        return PN_EXIT_OK;
    }
    if (!usage_error && optind != argc - 1) {
        fprintf(stderr, "panther consume: expected one topic kind: events, "
                        "outcomes, dlt or commands\n");
        usage_error = true;
    } else if (!usage_error && !parse_kind(argv[optind], &o->kind)) {
        fprintf(stderr, "panther consume: unknown topic kind '%s' (expected "
                        "events, outcomes, dlt or commands)\n",
                argv[optind]);
        usage_error = true;
    } else if (!usage_error && o->schema_id >= 0 && o->kind != KIND_COMMANDS) {
        fprintf(stderr, "panther consume: --schema-id only applies to "
                        "commands\n");
        usage_error = true;
    }
    if (usage_error) {
        fprintf(stderr, "Try 'panther consume --help'.\n");
        return PN_EXIT_USAGE;
    }
    return -1;
}

/* --- records -> JSON --------------------------------------------------------- */

static pn_err_t set_new(json_t *obj, const char *key, json_t *value) {
    return value && json_object_set_new(obj, key, value) == 0 ? PN_ERR_OK
                                                              : PN_ERR_NOMEM;
}

/* A header value: a string if UTF-8, {"hex": ...} if not, null if absent. */
static json_t *header_value(const void *v, size_t len) {
    if (!v)
        return json_null();
    if (pn_command_json_utf8_valid(v, len))
        return json_stringn(v, len);
    json_t *hex = pn_command_json_hex(v, len);
    return hex ? json_pack("{s:o}", "hex", hex) : NULL;
}

/* Adds name: value, turning a repeated name into an array of its values. */
static pn_err_t header_add(json_t *h, const char *name, json_t *value) {
    if (!value)
        return PN_ERR_NOMEM;
    json_t *old = json_object_get(h, name);
    if (!old)
        return set_new(h, name, value);
    if (json_is_array(old))
        return json_array_append_new(old, value) ? PN_ERR_NOMEM : PN_ERR_OK;
    json_t *arr = json_array();
    if (!arr || json_array_append(arr, old) ||
        json_array_append_new(arr, value)) {
        json_decref(arr);
        return PN_ERR_NOMEM;
    }
    return set_new(h, name, arr);
}

static pn_err_t add_headers(json_t *obj, const rd_kafka_message_t *m,
                            bool always) {
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) || !hdrs)
        return always ? set_new(obj, "headers", json_object()) : PN_ERR_OK;
    json_t *h = json_object();
    pn_err_t err = h ? PN_ERR_OK : PN_ERR_NOMEM;
    const char *name;
    const void *v;
    size_t len;
    for (size_t i = 0;
         !err && !rd_kafka_header_get_all(hdrs, i, &name, &v, &len); i++) {
        size_t nlen = strlen(name);
        if (pn_command_json_utf8_valid(name, nlen)) {
            err = header_add(h, name, header_value(v, len));
            continue;
        }
        json_t *hex = pn_command_json_hex(name, nlen);
        char *key = hex ? malloc(json_string_length(hex) + 5) : NULL;
        if (key) {
            memcpy(key, "hex:", 4);
            memcpy(key + 4, json_string_value(hex),
                   json_string_length(hex) + 1);
            err = header_add(h, key, header_value(v, len));
        } else {
            err = PN_ERR_NOMEM;
        }
        free(key);
        json_decref(hex);
    }
    if (err) {
        json_decref(h);
        return err;
    }
    return set_new(obj, "headers", h);
}

static pn_err_t add_source(json_t *obj, const rd_kafka_message_t *m) {
    int64_t v;
    pn_err_t err = PN_ERR_OK;
    if (pn_kafka_header_int(m, PN_HEADER_SOURCE_PARTITION, &v))
        err = set_new(obj, "sourcePartition", json_integer(v));
    if (!err && pn_kafka_header_int(m, PN_HEADER_SOURCE_OFFSET, &v))
        err = set_new(obj, "sourceOffset", json_integer(v));
    return err;
}

/* Merges the decoded record, or error/errorMessage/valueHex. */
static pn_err_t add_decoded(json_t *obj, const rd_kafka_message_t *m,
                            json_t *decoded, pn_err_t derr, const char *why) {
    if (!derr) {
        if (!decoded)
            return PN_ERR_NOMEM;
        int rc = json_object_update(obj, decoded);
        json_decref(decoded);
        return rc ? PN_ERR_NOMEM : PN_ERR_OK;
    }
    pn_err_t err = set_new(obj, "error", json_string(pn_err_name(derr)));
    if (!err)
        err = pn_command_json_set_bytes(obj, "errorMessage", why, strlen(why));
    if (!err)
        err = set_new(obj, "valueHex", pn_command_json_hex(m->payload, m->len));
    return err;
}

static json_t *decode_into_json(consumer_t *c, const rd_kafka_message_t *m,
                                pn_err_t *derr, char *why, size_t why_size) {
    json_t *decoded = NULL;
    *derr = PN_ERR_OK;
    if (!m->payload) {
        *derr = pn_err_set(why, why_size, PN_ERR_MALFORMED,
                           "record has no value");
        return NULL;
    }
    if (c->opts->kind == KIND_EVENTS) {
        pn_event_t ev;
        *derr = pn_codec_decode_event(c->codec, m->payload, m->len, &ev, why,
                                      why_size);
        decoded = *derr ? NULL : pn_command_json_event(&ev);
        pn_event_release(&ev);
    } else if (c->opts->kind == KIND_OUTCOMES) {
        pn_outcome_record_t rec;
        *derr = pn_codec_decode_outcome(c->codec, m->payload, m->len, &rec,
                                        why, why_size);
        decoded = *derr ? NULL : pn_command_json_outcome(&rec);
        pn_outcome_record_release(&rec);
    } else {
        pn_command_t cmd;
        *derr = pn_codec_decode_command(c->codec, m->payload, m->len, &cmd,
                                        why, why_size);
        decoded = *derr ? NULL : pn_command_json_command(&cmd);
        pn_command_release(&cmd);
    }
    return decoded;
}

static json_t *record_json(consumer_t *c, const rd_kafka_message_t *m) {
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    pn_err_t err = set_new(obj, "topic", json_string(c->topic));
    if (!err)
        err = set_new(obj, "partition", json_integer(m->partition));
    if (!err)
        err = set_new(obj, "offset", json_integer(m->offset));
    if (!err)
        err = pn_command_json_set_bytes(obj, "key", m->key, m->key_len);
    if (!err && c->opts->kind == KIND_DLT) {
        err = set_new(obj, "valueHex", pn_command_json_hex(m->payload, m->len));
        if (!err)
            err = add_headers(obj, m, true);
    } else if (!err) {
        char why[512] = "";
        pn_err_t derr;
        json_t *decoded = decode_into_json(c, m, &derr, why, sizeof why);
        err = add_decoded(obj, m, decoded, derr, why);
        if (!err && c->opts->kind == KIND_COMMANDS)
            err = add_headers(obj, m, false);
        else if (!err)
            err = add_source(obj, m);
    }
    if (err) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* --- Kafka ------------------------------------------------------------------- */

/* The one Confluent id --schema-id names is Panther's own Command schema;
 * the schema registry, when configured, knows the others. */
static pn_err_t lookup_schema(void *opaque, int32_t schema_id,
                              char **schema_json, char *errstr,
                              size_t errstr_size) {
    const consumer_t *c = opaque;
    const consume_opts_t *o = c->opts;
    *schema_json = NULL;
    if (schema_id != o->schema_id && c->registry)
        return pn_schema_registry_lookup(c->registry, schema_id, schema_json,
                                         errstr, errstr_size);
    if (schema_id != o->schema_id)
        return pn_err_set(errstr, errstr_size, PN_ERR_UNKNOWN_SCHEMA,
                          "only id %" PRId64 " is known (--schema-id)",
                          o->schema_id);
    *schema_json = strdup(pn_schema_json(PN_SCHEMA_COMMAND));
    return *schema_json ? PN_ERR_OK
                        : pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                                     "out of memory");
}

static pn_err_t consumer_conf(const consumer_t *c, const pn_config_t *cfg,
                              rd_kafka_conf_t **conf, char *errstr,
                              size_t errstr_size) {
    /* librdkafka's assign() needs a group id, though no group is joined and
     * nothing is committed; a unique one keeps runs apart. */
    char uuid[PN_UUID_STR_SIZE], group[64];
    pn_err_t err = pn_command_json_uuid_v4(uuid, errstr, errstr_size);
    if (err)
        return err;
    snprintf(group, sizeof group, "panther-consume-%s", uuid);
    static const pn_kafka_prop_t defaults[] = {
        {"client.id", "panther-consume"}};
    const pn_kafka_prop_t fixed[] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", c->opts->from_end ? "latest" : "earliest"}};
    pn_cli_kafka_props_t kp;
    err = pn_cli_kafka_props_load(cfg, &kp);
    if (err)
        err = pn_err_set(errstr, errstr_size, err, "out of memory");
    else
        err = pn_kafka_conf_new(defaults, 1, kp.props, kp.n, fixed,
                                sizeof fixed / sizeof fixed[0], conf, errstr,
                                errstr_size);
    pn_cli_kafka_props_free(&kp);
    return err;
}

static pn_err_t consumer_open(consumer_t *c, const pn_config_t *cfg,
                              char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf = NULL;
    pn_err_t err = consumer_conf(c, cfg, &conf, errstr, errstr_size);
    if (err)
        return err;
    char why[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "cannot create the consumer: %s", why);
    }
    err = pn_kafka_partition_count(c->rk, c->topic, 15000, &c->n_partitions,
                                   errstr, errstr_size);
    if (err)
        return err;
    c->at_end = calloc((size_t)c->n_partitions, sizeof *c->at_end);
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(c->n_partitions);
    if (!c->at_end || !parts) {
        rd_kafka_topic_partition_list_destroy(parts);
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    }
    for (int32_t p = 0; p < c->n_partitions; p++)
        rd_kafka_topic_partition_list_add(parts, c->topic, p)->offset =
            c->opts->from_end ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t rerr = rd_kafka_assign(c->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (rerr)
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "cannot assign the partitions of '%s': %s",
                          c->topic, rd_kafka_err2str(rerr));
    return PN_ERR_OK;
}

static void consumer_close(consumer_t *c) {
    if (c->rk) {
        rd_kafka_consumer_close(c->rk);
        pn_kafka_destroy(c->rk, "consumer", PN_KAFKA_DESTROY_TIMEOUT_MS);
    }
    pn_codec_free(c->codec);
    pn_schema_registry_free(c->registry);
    free(c->at_end);
}

/* --- the loop ----------------------------------------------------------------- */

static void set_at_end(consumer_t *c, int32_t partition, bool at_end) {
    if (partition < 0 || partition >= c->n_partitions ||
        c->at_end[partition] == at_end)
        return;
    c->at_end[partition] = at_end;
    c->n_at_end += at_end ? 1 : -1;
}

static bool print_record(consumer_t *c, const rd_kafka_message_t *m) {
    json_t *obj = record_json(c, m);
    if (!obj) {
        pn_log_kv(PN_LOG_ERROR, "out of memory printing a record",
                  PN_LOG_TPO(c->topic, m->partition, m->offset));
        return false;
    }
    int rc = json_dumpf(obj, stdout, JSON_COMPACT);
    json_decref(obj);
    if (rc || putchar('\n') == EOF) {
        pn_log_kv(PN_LOG_ERROR, "cannot write to stdout",
                  PN_LOG_STR("detail", strerror(errno)));
        return false;
    }
    c->printed++;
    return true;
}

/* One poll result; returns false when the loop must stop with a failure. */
static bool handle(consumer_t *c, rd_kafka_message_t *m) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        set_at_end(c, m->partition, true);
        return true;
    }
    if (m->err) {
        pn_log_kv(PN_LOG_ERROR, "consume error", PN_LOG_STR("topic", c->topic),
                  PN_LOG_INT("partition", m->partition),
                  PN_LOG_STR("detail", rd_kafka_message_errstr(m)));
        char fatal[512];
        return !rd_kafka_fatal_error(c->rk, fatal, sizeof fatal);
    }
    set_at_end(c, m->partition, false);
    return print_record(c, m);
}

static bool finished(const consumer_t *c) {
    const consume_opts_t *o = c->opts;
    return (o->count >= 0 && c->printed >= (uint64_t)o->count) ||
           (o->exit_at_end && c->n_at_end == c->n_partitions);
}

static int consume_loop(consumer_t *c) {
    const consume_opts_t *o = c->opts;
    int64_t deadline = o->timeout_ms >= 0 ? pn_mono_ms() + o->timeout_ms : -1;
    while (!stop_requested && !finished(c)) {
        int64_t left = deadline >= 0 ? deadline - pn_mono_ms() : 100;
        if (left <= 0) {
            bool owed = o->count >= 0 || o->exit_at_end;
            if (owed)
                pn_log_kv(PN_LOG_ERROR, "timed out",
                          PN_LOG_STR("topic", c->topic),
                          PN_LOG_UINT("records", c->printed),
                          PN_LOG_INT("partitions_at_end", c->n_at_end),
                          PN_LOG_INT("partitions", c->n_partitions));
            return owed ? PN_EXIT_FAILURE : PN_EXIT_OK;
        }
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(c->rk, left < 100 ? (int)left : 100);
        if (!m) {
            fflush(stdout);
            continue;
        }
        bool ok = handle(c, m);
        rd_kafka_message_destroy(m);
        if (!ok)
            return PN_EXIT_FAILURE;
    }
    return PN_EXIT_OK;
}

static int run(consumer_t *c, const pn_config_t *cfg) {
    char err[1024] = "";
    const char *url = pn_config_get_str(cfg, "schema.registry.url");
    pn_err_t e = PN_ERR_OK;
    if (c->opts->kind == KIND_COMMANDS && url[0]) {
        pn_schema_registry_options_t ro = {
            .url = url,
            .basic_auth =
                pn_config_get_str(cfg, "schema.registry.basic.auth.user.info")};
        e = pn_schema_registry_new(&ro, &c->registry, err, sizeof err);
    }
    pn_codec_config_t cc = {
        .max_record_bytes =
            (size_t)pn_config_get_bytes(cfg, "codec.max.record.bytes"),
        .lookup = c->opts->schema_id >= 0 || c->registry ? lookup_schema
                                                         : NULL,
        .lookup_opaque = c};
    if (!e)
        e = pn_codec_new(&cc, &c->codec, err, sizeof err);
    if (!e)
        e = consumer_open(c, cfg, err, sizeof err);
    if (e) {
        fprintf(stderr, "panther consume: %s\n", err[0] ? err : pn_err_str(e));
        return e == PN_ERR_CONFIG ? PN_EXIT_USAGE : PN_EXIT_FAILURE;
    }
    int rc = consume_loop(c);
    if (fflush(stdout) == EOF && rc == PN_EXIT_OK) {
        pn_log_kv(PN_LOG_ERROR, "cannot write to stdout",
                  PN_LOG_STR("detail", strerror(errno)));
        rc = PN_EXIT_FAILURE;
    }
    pn_log_kv(PN_LOG_DEBUG, "consume finished", PN_LOG_STR("topic", c->topic),
              PN_LOG_UINT("records", c->printed));
    return rc;
}

int pn_cli_consume(int argc, char **argv) {
    consume_opts_t o = {.count = -1, .timeout_ms = -1, .schema_id = -1};
    pn_cli_config_args_t args = {0};
    int rc = parse_args(argc, argv, &o, &args);
    if (rc >= 0)
        return rc;
    pn_config_t *cfg;
    bool done;
    rc = pn_cli_config_build("consume", &args, &cfg, &done);
    if (done)
        return rc;
    consumer_t c = {
        .opts = &o,
        .topic = o.topic ? o.topic
                         : pn_config_get_str(cfg, kinds[o.kind].topic_key)};
    stop_requested = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = run(&c, cfg);
    consumer_close(&c);
    pn_config_destroy(cfg);
    return rc;
}
