/*
 * Configuration: the settings table, the four sources, finalize, getters,
 * and the generators of the reference docs and of deploy/panther.properties.
 * The table below is the only place a setting is declared; everything else
 * (parsing, ranges, docs, the sample file) is derived from it, after
 * librdkafka's rd_kafka_properties[] and rd_kafka_conf_finalize().
 */
#include "panther/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define KIB ((int64_t)1 << 10)
#define MIB ((int64_t)1 << 20)
#define GIB ((int64_t)1 << 30)
#define TIB ((int64_t)1 << 40)
#define SEC ((int64_t)1000)
#define MINUTE (60 * SEC)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

/* Kafka's own limit on topic name length. */
#define TOPIC_MAX 249

#define KAFKA_PREFIX "kafka."
#define KAFKA_PREFIX_LEN (sizeof KAFKA_PREFIX - 1)
#define ENV_PREFIX "PANTHER_"
#define ENV_PREFIX_LEN (sizeof ENV_PREFIX - 1)
#define REDACTED "********"

typedef enum {
    T_STRING,
    T_INT,
    T_BOOL,
    T_ENUM,
    T_DURATION,
    T_SIZE
} prop_type_t;

static const char *const type_names[] = {
    "string", "int", "bool", "enum", "duration-ms", "size-bytes"};

enum {
    F_SECRET = 1 << 0,   /* printed as ******** */
    F_REQUIRED = 1 << 1, /* must not be empty */
};

typedef struct prop {
    const char *name;
    prop_type_t type;
    const char *def; /* in the syntax a user writes; parsed by pn_config_new */
    int64_t min, max;          /* T_INT, T_DURATION, T_SIZE */
    const char *const *values; /* T_ENUM, NULL-terminated */
    unsigned flags;
    /* Extra check of a non-empty value: NULL, or why the value is bad. */
    const char *(*check)(const char *value);
    const char *desc;
} prop_t;

static const char *check_topic(const char *value);
static const char *check_url(const char *value);

static const char *const guarantees[] = {"exactly_once", "at_least_once",
                                         NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error",
                                         NULL};

/* clang-format off */
static const prop_t props[] = {
    {.name = "topics.commands", .type = T_STRING,
     .def = "inventory.commands", .flags = F_REQUIRED, .check = check_topic,
     .desc = "Topic the workers consume commands from (Avro Command records "
             "keyed skuId|fulfillmentNodeId). It must have as many "
             "partitions as topics.events."},
    {.name = "topics.events", .type = T_STRING,
     .def = "inventory.events", .flags = F_REQUIRED, .check = check_topic,
     .desc = "Topic the workers publish events to: the change feed, same "
             "key and partition as the command."},
    {.name = "topics.outcomes", .type = T_STRING,
     .def = "inventory.outcomes", .flags = F_REQUIRED, .check = check_topic,
     .desc = "Topic of the replies, one CommandOutcome per command."},
    {.name = "topics.dead.letters", .type = T_STRING, .def = "",
     .check = check_topic,
     .desc = "Topic for command records that cannot be decoded, kept with "
             "their key, value and headers. Empty means the commands topic "
             "followed by \".DLT\" (inventory.commands.DLT by default)."},
    {.name = "topics.snapshots", .type = T_STRING,
     .def = "inventory.snapshots", .flags = F_REQUIRED, .check = check_topic,
     .desc = "Compacted topic the snapshotter writes stream snapshots to."},
    {.name = "group.id", .type = T_STRING, .def = "panther-worker",
     .flags = F_REQUIRED,
     .desc = "Consumer group of the workers on the commands topic."},
    {.name = "snapshotter.group.id", .type = T_STRING,
     .def = "panther-snapshotter", .flags = F_REQUIRED,
     .desc = "Consumer group of the snapshotters on the events topic."},
    {.name = "instance.id", .type = T_STRING, .def = "",
     .desc = "Identity of this process, the base of its transactional.id and "
             "group.instance.id (static membership). It must be unique per "
             "process and stable across its restarts, like a StatefulSet pod "
             "name. Empty means the host name."},
    {.name = "processing.guarantee", .type = T_ENUM, .def = "exactly_once",
     .values = guarantees,
     .desc = "exactly_once: one Kafka transaction per batch carries the "
             "events, outcomes, dead letters and consumer offsets. "
             "at_least_once: no transactions, offsets committed after the "
             "writes; a crash may repeat events. For comparison only."},
    {.name = "worker.commit.interval.ms", .type = T_DURATION, .def = "100",
     .min = 1, .max = MINUTE,
     .desc = "How often a worker commits: records are executed as they "
             "arrive into an open transaction, committed about this often "
             "(counted from the previous commit's start). Bounds latency."},
    {.name = "worker.batch.max.commands", .type = T_INT, .def = "5000",
     .min = 1, .max = 1000000,
     .desc = "Most commands in one batch; a full batch commits at once."},
    {.name = "codec.max.record.bytes", .type = T_SIZE, .def = "1MiB",
     .min = KIB, .max = 64 * MIB,
     .desc = "Largest record value Panther decodes or encodes; a larger "
             "command goes to the dead-letter topic."},
    {.name = "schema.registry.url", .type = T_STRING, .def = "",
     .check = check_url,
     .desc = "Base URL of a Confluent Schema Registry, used to resolve "
             "writer schemas of framed records. Empty disables the "
             "registry: only the built-in schemas are known."},
    {.name = "schema.registry.basic.auth.user.info", .type = T_STRING,
     .def = "", .flags = F_SECRET,
     .desc = "user:password for HTTP basic authentication at the Schema "
             "Registry. Empty sends no credentials."},
    {.name = "store.path", .type = T_STRING, .def = "./panther-data",
     .flags = F_REQUIRED,
     .desc = "Directory of the local RocksDB store. It is a cache of the "
             "events topic and is rebuilt from it when lost."},
    {.name = "snapshotter.store.path", .type = T_STRING,
     .def = "./panther-snapshotter-data", .flags = F_REQUIRED,
     .desc = "Directory of the snapshotter's RocksDB store (its snapshots "
             "and checkpoints, served by the read API). Like store.path it "
             "is a cache of the events topic: delete it and the "
             "snapshotter rebuilds it. Use one directory per process."},
    {.name = "store.block.cache.bytes", .type = T_SIZE, .def = "32MiB",
     .min = MIB, .max = TIB,
     .desc = "Size of the one RocksDB block cache shared by all column "
             "families."},
    {.name = "store.write.buffer.bytes", .type = T_SIZE, .def = "64MiB",
     .min = MIB, .max = TIB,
     .desc = "Budget for all RocksDB memtables together."},
    {.name = "store.state.cache.streams", .type = T_INT, .def = "100000",
     .min = 1, .max = 100000000,
     .desc = "Most stream states held in the in-process cache; the least "
             "recently used are loaded again from RocksDB."},
    {.name = "store.event.retention.ms", .type = T_DURATION, .def = "7d",
     .min = 0, .max = 3650 * DAY,
     .desc = "Events older than this that a local snapshot already covers "
             "may be deleted from RocksDB. 0 keeps them forever. A worker "
             "looks for such events in passes over its snapshots, a pass "
             "every hundredth of this (at least a second, at most an hour)."},
    {.name = "store.sync", .type = T_BOOL, .def = "false",
     .desc = "fsync every RocksDB write batch. Not needed for correctness: "
             "the store is rebuilt from the events topic after a crash."},
    {.name = "idempotency.window.ms", .type = T_DURATION, .def = "24h",
     .min = 0, .max = 365 * DAY,
     .desc = "A command id seen on its stream within this much command time "
             "is a duplicate: no new events, its outcome is published again "
             "with duplicate = true."},
    {.name = "idempotency.window.commands", .type = T_INT, .def = "10000",
     .min = 0, .max = 10000000,
     .desc = "The window also covers at least this many of the most recent "
             "commands of each partition, whatever their age."},
    {.name = "snapshotter.interval.ms", .type = T_DURATION, .def = "1000",
     .min = 1, .max = HOUR,
     .desc = "How often the snapshotter publishes the snapshots of the "
             "streams that changed and commits its offsets."},
    {.name = "http.bind", .type = T_STRING, .def = "127.0.0.1",
     .flags = F_REQUIRED,
     .desc = "Address the HTTP endpoint listens on (/metrics, /livez, "
             "/readyz, and the snapshotter's read API). 0.0.0.0 exposes it "
             "on every interface."},
    {.name = "http.port", .type = T_INT, .def = "0", .min = 0, .max = 65535,
     .desc = "Port of the worker's HTTP endpoint. 0 disables it."},
    {.name = "snapshotter.http.port", .type = T_INT, .def = "8080",
     .min = 0, .max = 65535,
     .desc = "Port of the snapshotter's HTTP endpoint (read API, metrics, "
             "health). 0 disables it."},
    {.name = "log.level", .type = T_ENUM, .def = "info",
     .values = log_levels,
     .desc = "Least severe level written to the JSON log on stderr; "
             "librdkafka's logs are filtered the same way."},
};
/* clang-format on */

#define PROP_COUNT (sizeof props / sizeof props[0])

/* kafka.* keys Panther sets itself: overriding them would break the
 * guarantees, so they are rejected with a pointer to the Panther key. */
static const struct {
    const char *name;
    const char *hint;
} kafka_managed[] = {
    {"group.id", "use 'group.id' or 'snapshotter.group.id'"},
    {"group.instance.id", "it is derived from 'instance.id'"},
    {"transactional.id", "it is derived from 'instance.id'"},
    {"enable.auto.commit", "offsets are committed by Panther"},
    {"isolation.level", "Panther always reads read_committed"},
    {"partitioner", "Panther always uses murmur2_random (DESIGN section 2)"},
};

typedef struct value {
    char *text; /* canonical text: the string, "true", "5000", "86400000" */
    int64_t num;  /* int, bool, enum index, ms or bytes */
    char *source; /* "default", "panther.properties:12", ... */
} value_t;

typedef struct kafka_kv {
    char *name; /* without the "kafka." prefix */
    char *value;
    char *source;
} kafka_kv_t;

struct pn_config_s {
    value_t values[PROP_COUNT];
    kafka_kv_t *kafka; /* in the order first set */
    size_t kafka_len, kafka_cap;
    bool final;
};

/* ---- checks ------------------------------------------------------------ */

static const char *check_topic(const char *value) {
    size_t len = strlen(value);
    if (len > TOPIC_MAX || !strcmp(value, ".") || !strcmp(value, ".."))
        return "is not a valid Kafka topic name";
    for (const char *p = value; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return "is not a valid Kafka topic name (letters, digits, '.', "
                   "'_' and '-' only)";
    return NULL;
}

static const char *check_url(const char *value) {
    /* A comma-separated list, as Schema Registry clients accept. */
    const char *p = value;
    for (;;) {
        while (*p == ' ')
            p++;
        if (strncmp(p, "http://", 7) && strncmp(p, "https://", 8))
            return "is not an http:// or https:// URL";
        p = strchr(p, ',');
        if (!p)
            return NULL;
        p++;
    }
}

/* ---- table lookup ------------------------------------------------------ */

static int find_prop(const char *key) {
    for (size_t i = 0; i < PROP_COUNT; i++)
        if (!strcmp(props[i].name, key))
            return (int)i;
    return -1;
}

static bool is_kafka_key(const char *key) {
    return !strncmp(key, KAFKA_PREFIX, KAFKA_PREFIX_LEN);
}

bool pn_config_is_key(const char *key) {
    return key && (is_kafka_key(key) || find_prop(key) >= 0);
}

/* Edit distance, for "did you mean"; keys longer than 63 are not compared. */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static pn_err_t unknown_key(const char *key, const char *source,
                            char *errstr, size_t errstr_size) {
    const char *best = NULL;
    size_t best_d = 4; /* suggest only close typos */
    for (size_t i = 0; i < PROP_COUNT; i++) {
        size_t d = edit_distance(key, props[i].name);
        if (d < best_d) {
            best_d = d;
            best = props[i].name;
        }
    }
    if (best)
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "%s: unknown key '%s' (did you mean '%s'?)", source,
                          key, best);
    return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                      "%s: unknown key '%s'", source, key);
}

/* ---- value parsing ----------------------------------------------------- */

typedef struct unit {
    const char *name;
    int64_t mult;
} unit_t;

static const unit_t duration_units[] = {
    {"", 1},        {"ms", 1},       {"s", SEC}, {"m", MINUTE},
    {"min", MINUTE}, {"h", HOUR},     {"d", DAY}, {NULL, 0}};
static const unit_t size_units[] = {{"", 1},        {"b", 1},
                                    {"kib", KIB},   {"mib", MIB},
                                    {"gib", GIB},   {"tib", TIB},
                                    {NULL, 0}};

typedef enum { NUM_OK, NUM_SYNTAX, NUM_RANGE } num_status_t;

/* A decimal integer, optionally followed by blanks and a unit of `units`
 * (case-insensitive); the whole of s must be used. */
static num_status_t parse_number(const char *s, const unit_t *units,
                                 int64_t *out) {
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (!isdigit((unsigned char)*d))
        return NUM_SYNTAX;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    bool overflow = errno == ERANGE;
    while (*end == ' ' || *end == '\t')
        end++;
    const unit_t *u = units;
    while (u->name && strcasecmp(u->name, end))
        u++;
    if (!u->name)
        return NUM_SYNTAX;
    if (overflow || v > INT64_MAX / u->mult || v < INT64_MIN / u->mult)
        return NUM_RANGE;
    *out = (int64_t)v * u->mult;
    return NUM_OK;
}

/* The largest unit that divides v exactly, in the syntax the parser reads:
 * "32MiB", "7d", "100". */
static const char *fmt_amount(prop_type_t type, int64_t v, char *buf,
                              size_t size) {
    static const unit_t dur[] = {{"d", DAY}, {"h", HOUR}, {"min", MINUTE},
                                 {"s", SEC}, {NULL, 0}};
    static const unit_t sz[] = {{"TiB", TIB}, {"GiB", GIB}, {"MiB", MIB},
                                {"KiB", KIB}, {NULL, 0}};
    const unit_t *u = type == T_DURATION ? dur : type == T_SIZE ? sz : NULL;
    for (; u && u->name; u++)
        if (v != 0 && v % u->mult == 0) {
            snprintf(buf, size, "%" PRId64 "%s", v / u->mult, u->name);
            return buf;
        }
    snprintf(buf, size, "%" PRId64, v);
    return buf;
}

static bool parse_bool(const char *s, bool *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return true;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return true;
        }
    }
    return false;
}

static pn_err_t parse_enum(const prop_t *p, const char *value,
                           const char *source, int64_t *num,
                           const char **text, char *errstr,
                           size_t errstr_size) {
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; p->values[i]; i++) {
        if (!strcasecmp(value, p->values[i])) {
            *num = i;
            *text = p->values[i];
            return PN_ERR_OK;
        }
        int n = snprintf(list + used, sizeof list - used, "%s%s",
                         i ? ", " : "", p->values[i]);
        if (n > 0 && (size_t)n < sizeof list - used)
            used += (size_t)n;
    }
    return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                      "%s: value '%s' for '%s' is not one of %s", source,
                      value, p->name, list);
}

static pn_err_t parse_amount(const prop_t *p, const char *value,
                             const char *source, int64_t *num,
                             char *errstr, size_t errstr_size) {
    static const char *const what[] = {
        [T_INT] = "an integer",
        [T_DURATION] = "a duration (milliseconds, or a number with ms, s, "
                       "min, h or d)",
        [T_SIZE] = "a size (bytes, or a number with KiB, MiB, GiB or TiB)"};
    static const unit_t none[] = {{"", 1}, {NULL, 0}};
    const unit_t *units = p->type == T_DURATION ? duration_units
                          : p->type == T_SIZE   ? size_units
                                                : none;
    char a[32], b[32];
    switch (parse_number(value, units, num)) {
    case NUM_OK:
        break;
    case NUM_SYNTAX:
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "%s: value '%s' for '%s' is not %s", source, value,
                          p->name, what[p->type]);
    case NUM_RANGE:
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "%s: value '%s' for '%s' is out of range (%s .. %s)",
                          source, value, p->name,
                          fmt_amount(p->type, p->min, a, sizeof a),
                          fmt_amount(p->type, p->max, b, sizeof b));
    }
    if (*num < p->min)
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "%s: %s is below the minimum %s for '%s'", source,
                          fmt_amount(p->type, *num, a, sizeof a),
                          fmt_amount(p->type, p->min, b, sizeof b), p->name);
    if (*num > p->max)
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "%s: %s is above the maximum %s for '%s'", source,
                          fmt_amount(p->type, *num, a, sizeof a),
                          fmt_amount(p->type, p->max, b, sizeof b), p->name);
    return PN_ERR_OK;
}

/* Validates value for p; on success *num is the typed value and *text the
 * canonical text (pointing at value, at the table, or at numbuf). */
static pn_err_t parse_value(const prop_t *p, const char *value,
                            const char *source, int64_t *num,
                            const char **text, char *numbuf,
                            size_t numbuf_size, char *errstr,
                            size_t errstr_size) {
    bool b;
    pn_err_t err;
    *num = 0;
    *text = value;
    switch (p->type) {
    case T_STRING: {
        if ((p->flags & F_REQUIRED) && !*value)
            return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                              "%s: '%s' must not be empty", source, p->name);
        const char *why = *value && p->check ? p->check(value) : NULL;
        if (why)
            return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                              "%s: value '%s' for '%s' %s", source,
                              (p->flags & F_SECRET) ? REDACTED : value,
                              p->name, why);
        return PN_ERR_OK;
    }
    case T_BOOL:
        if (!parse_bool(value, &b))
            return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                              "%s: value '%s' for '%s' is not a boolean "
                              "(true or false)",
                              source, value, p->name);
        *num = b;
        *text = b ? "true" : "false";
        return PN_ERR_OK;
    case T_ENUM:
        return parse_enum(p, value, source, num, text, errstr, errstr_size);
    case T_INT:
    case T_DURATION:
    case T_SIZE:
        err = parse_amount(p, value, source, num, errstr, errstr_size);
        if (err)
            return err;
        snprintf(numbuf, numbuf_size, "%" PRId64, *num);
        *text = numbuf;
        return PN_ERR_OK;
    }
    return pn_err_set(errstr, errstr_size, PN_ERR_INTERNAL,
                      "%s: '%s' has an unknown type", source, p->name);
}

/* ---- setting values ---------------------------------------------------- */

/* Replaces *text and *source with copies; on NOMEM nothing changes. */
static pn_err_t store_pair(char **text, char **source, const char *new_text,
                           const char *new_source) {
    char *t = strdup(new_text);
    char *s = strdup(new_source);
    if (!t || !s) {
        free(t);
        free(s);
        return PN_ERR_NOMEM;
    }
    free(*text);
    free(*source);
    *text = t;
    *source = s;
    return PN_ERR_OK;
}

static pn_err_t set_prop(pn_config_t *cfg, size_t i, const char *value,
                         const char *source, char *errstr,
                         size_t errstr_size) {
    int64_t num;
    const char *text;
    char numbuf[32];
    pn_err_t err = parse_value(&props[i], value, source, &num, &text, numbuf,
                               sizeof numbuf, errstr, errstr_size);
    if (err)
        return err;
    value_t *v = &cfg->values[i];
    err = store_pair(&v->text, &v->source, text, source);
    if (err)
        return pn_err_set(errstr, errstr_size, err, "%s: out of memory",
                          source);
    v->num = num;
    return PN_ERR_OK;
}

static pn_err_t set_kafka(pn_config_t *cfg, const char *key,
                          const char *value, const char *source,
                          char *errstr, size_t errstr_size) {
    const char *name = key + KAFKA_PREFIX_LEN;
    if (!*name)
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "%s: empty librdkafka property name in '%s'",
                          source, key);
    for (const char *p = name; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                              "%s: invalid character in key '%s'", source,
                              key);
    for (size_t i = 0; i < sizeof kafka_managed / sizeof kafka_managed[0];
         i++)
        if (!strcmp(name, kafka_managed[i].name))
            return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                              "%s: '%s' is managed by Panther: %s", source,
                              key, kafka_managed[i].hint);
    size_t i = 0;
    while (i < cfg->kafka_len && strcmp(cfg->kafka[i].name, name))
        i++;
    if (i == cfg->kafka_len) {
        if (cfg->kafka_len == cfg->kafka_cap) {
            size_t cap = cfg->kafka_cap ? 2 * cfg->kafka_cap : 16;
            kafka_kv_t *kv = realloc(cfg->kafka, cap * sizeof *kv);
            if (!kv)
                return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                                  "%s: out of memory", source);
            cfg->kafka = kv;
            cfg->kafka_cap = cap;
        }
        kafka_kv_t *kv = &cfg->kafka[i];
        *kv = (kafka_kv_t){strdup(name), NULL, NULL};
        if (!kv->name)
            return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                              "%s: out of memory", source);
        cfg->kafka_len++;
    }
    if (store_pair(&cfg->kafka[i].value, &cfg->kafka[i].source, value,
                   source))
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "%s: out of memory", source);
    return PN_ERR_OK;
}

pn_err_t pn_config_set(pn_config_t *cfg, const char *key, const char *value,
                       const char *source, char *errstr,
                       size_t errstr_size) {
    if (!source)
        source = "command line";
    if (!cfg || !key || !value)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "%s: missing key or value", source);
    if (cfg->final)
        return pn_err_set(errstr, errstr_size, PN_ERR_STATE,
                          "%s: the configuration is final; '%s' can no "
                          "longer be set",
                          source, key);
    if (is_kafka_key(key))
        return set_kafka(cfg, key, value, source, errstr, errstr_size);
    int i = find_prop(key);
    if (i < 0)
        return unknown_key(key, source, errstr, errstr_size);
    return set_prop(cfg, (size_t)i, value, source, errstr, errstr_size);
}

/* ---- construction ------------------------------------------------------ */

pn_config_t *pn_config_new(void) {
    pn_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    char errstr[PN_CONFIG_ERRSTR_SIZE];
    for (size_t i = 0; i < PROP_COUNT; i++) {
        if (set_prop(cfg, i, props[i].def, "default", errstr, sizeof errstr)) {
            /* A bad default is a bug in the table; the unit tests catch it. */
            fprintf(stderr, "pn_config_new: bad default: %s\n", errstr);
            pn_config_destroy(cfg);
            return NULL;
        }
    }
    return cfg;
}

void pn_config_destroy(pn_config_t *cfg) {
    if (!cfg)
        return;
    for (size_t i = 0; i < PROP_COUNT; i++) {
        free(cfg->values[i].text);
        free(cfg->values[i].source);
    }
    for (size_t i = 0; i < cfg->kafka_len; i++) {
        free(cfg->kafka[i].name);
        free(cfg->kafka[i].value);
        free(cfg->kafka[i].source);
    }
    free(cfg->kafka);
    free(cfg);
}

/* ---- sources ----------------------------------------------------------- */

/* Trims blanks (and the \r of CRLF files) at both ends, in place. */
static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Splits "key=value" in place at the first '='; NULL if there is none. */
static char *split_pair(char *line, char **key) {
    char *eq = strchr(line, '=');
    if (!eq)
        return NULL;
    *eq = '\0';
    *key = trim(line);
    return trim(eq + 1);
}

pn_err_t pn_config_set_pair(pn_config_t *cfg, const char *pair,
                            const char *source, char *errstr,
                            size_t errstr_size) {
    if (!source)
        source = "command line";
    if (!pair)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "%s: missing key=value", source);
    char *copy = strdup(pair);
    if (!copy)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "%s: out of memory", source);
    char *key;
    char *value = split_pair(copy, &key);
    pn_err_t err;
    if (!value)
        err = pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                         "%s: expected key=value, got no '='", source);
    else
        err = pn_config_set(cfg, key, value, source, errstr, errstr_size);
    free(copy);
    return err;
}

static pn_err_t load_line(pn_config_t *cfg, char *line, size_t len,
                          const char *source, char *errstr,
                          size_t errstr_size) {
    if (strlen(line) != len)
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "%s: line contains a NUL byte", source);
    char *s = trim(line);
    if (!*s || *s == '#' || *s == '!')
        return PN_ERR_OK;
    char *key;
    char *value = split_pair(s, &key);
    if (!value)
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "%s: expected key=value, got no '='", source);
    if (!*key)
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "%s: missing key before '='", source);
    return pn_config_set(cfg, key, value, source, errstr, errstr_size);
}

pn_err_t pn_config_load_file(pn_config_t *cfg, const char *path,
                             char *errstr, size_t errstr_size) {
    if (!cfg || !path)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "missing configuration or path");
    FILE *fp = fopen(path, "r");
    if (!fp)
        return pn_err_set(errstr, errstr_size, PN_ERR_IO,
                          "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned lineno = 0;
    pn_err_t err = PN_ERR_OK;
    while (!err && (len = getline(&line, &cap, fp)) >= 0) {
        char source[PN_CONFIG_ERRSTR_SIZE];
        snprintf(source, sizeof source, "%s:%u", path, ++lineno);
        char *start = line;
        /* A UTF-8 byte order mark, as some editors write. */
        if (lineno == 1 && len >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) {
            start += 3;
            len -= 3;
        }
        err = load_line(cfg, start, (size_t)len, source, errstr, errstr_size);
    }
    if (!err && ferror(fp))
        err = pn_err_set(errstr, errstr_size, PN_ERR_IO, "%s: read error: %s",
                         path, strerror(errno));
    free(line);
    fclose(fp);
    return err;
}

extern char **environ;

pn_err_t pn_config_load_env(pn_config_t *cfg, char *const *envp,
                            char *errstr, size_t errstr_size) {
    if (!cfg)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "missing configuration");
    if (!envp)
        envp = environ;
    for (; envp && *envp; envp++) {
        const char *var = *envp;
        const char *eq = strchr(var, '=');
        if (strncmp(var, ENV_PREFIX, ENV_PREFIX_LEN) || !eq)
            continue;
        size_t name_len = (size_t)(eq - var);
        char source[PN_CONFIG_ERRSTR_SIZE];
        snprintf(source, sizeof source, "environment %.*s", (int)name_len,
                 var);
        char *key = strndup(var + ENV_PREFIX_LEN, name_len - ENV_PREFIX_LEN);
        if (!key)
            return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                              "%s: out of memory", source);
        for (char *p = key; *p; p++)
            *p = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
        pn_err_t err =
            *key ? pn_config_set(cfg, key, eq + 1, source, errstr, errstr_size)
                 : pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                              "%s: no key after PANTHER_", source);
        free(key);
        if (err)
            return err;
    }
    return PN_ERR_OK;
}

/* ---- finalize ---------------------------------------------------------- */

static value_t *val(pn_config_t *cfg, const char *key) {
    return &cfg->values[find_prop(key)];
}

static pn_err_t derive(pn_config_t *cfg, const char *key, const char *text,
                       const char *source, char *errstr, size_t errstr_size) {
    int i = find_prop(key);
    char numbuf[32];
    int64_t num;
    const char *canon;
    pn_err_t err = parse_value(&props[i], text, source, &num, &canon, numbuf,
                               sizeof numbuf, errstr, errstr_size);
    if (err)
        return err;
    if (store_pair(&cfg->values[i].text, &cfg->values[i].source, canon,
                   source))
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "%s: out of memory", source);
    return PN_ERR_OK;
}

static pn_err_t derive_defaults(pn_config_t *cfg, char *errstr,
                                size_t errstr_size) {
    if (!*val(cfg, "topics.dead.letters")->text) {
        char dlt[TOPIC_MAX + 8];
        snprintf(dlt, sizeof dlt, "%s.DLT", val(cfg, "topics.commands")->text);
        pn_err_t err = derive(cfg, "topics.dead.letters", dlt,
                              "derived from topics.commands", errstr,
                              errstr_size);
        if (err)
            return err;
    }
    if (!*val(cfg, "instance.id")->text) {
        char host[256] = "";
        if (gethostname(host, sizeof host - 1) != 0 || !*host)
            return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                              "instance.id is empty and the host name is "
                              "unavailable; set instance.id");
        return derive(cfg, "instance.id", host, "derived from the host name",
                      errstr, errstr_size);
    }
    return PN_ERR_OK;
}

/* Two settings that must not hold the same value. */
static const kafka_kv_t *find_kafka(const pn_config_t *cfg, const char *key) {
    for (size_t i = 0; cfg && i < cfg->kafka_len; i++)
        if (!strcmp(cfg->kafka[i].name, key + KAFKA_PREFIX_LEN))
            return &cfg->kafka[i];
    return NULL;
}

/* The broker aborts a transaction open longer than transaction.timeout.ms,
 * so a worker whose commit interval reaches it would see every batch
 * fenced. Panther derives its default from the interval (worker.c); only
 * an explicit setting can be too short. */
static pn_err_t check_txn_timeout(pn_config_t *cfg, char *errstr,
                                  size_t errstr_size) {
    const kafka_kv_t *kv = find_kafka(cfg, "kafka.transaction.timeout.ms");
    if (!kv)
        return PN_ERR_OK;
    const value_t *interval = val(cfg, "worker.commit.interval.ms");
    char *end = NULL;
    errno = 0;
    long long timeout = strtoll(kv->value, &end, 10);
    if (errno || end == kv->value || *end || timeout < 2 * interval->num)
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "%s: 'kafka.transaction.timeout.ms' (%s) must be a "
                          "number of ms at least twice 'worker.commit.interval.ms' "
                          "(%s, %s), or every transaction would time out",
                          kv->source, kv->value, interval->text,
                          interval->source);
    return PN_ERR_OK;
}

static pn_err_t check_distinct(pn_config_t *cfg, const char *a,
                               const char *b, const char *what,
                               char *errstr, size_t errstr_size) {
    const value_t *va = val(cfg, a), *vb = val(cfg, b);
    if (strcmp(va->text, vb->text))
        return PN_ERR_OK;
    return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                      "'%s' (%s) and '%s' (%s) are both '%s'; %s", a,
                      va->source, b, vb->source, va->text, what);
}

pn_err_t pn_config_finalize(pn_config_t *cfg, char *errstr,
                            size_t errstr_size) {
    static const char *const topics[] = {
        "topics.commands", "topics.events", "topics.outcomes",
        "topics.dead.letters", "topics.snapshots"};
    if (!cfg)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "missing configuration");
    if (cfg->final)
        return PN_ERR_OK;
    pn_err_t err = derive_defaults(cfg, errstr, errstr_size);
    for (size_t i = 0; !err && i < PROP_COUNT; i++)
        if ((props[i].flags & F_REQUIRED) && !*cfg->values[i].text)
            err = pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                             "'%s' must not be empty", props[i].name);
    size_t n = sizeof topics / sizeof topics[0];
    for (size_t i = 0; !err && i < n; i++)
        for (size_t j = i + 1; !err && j < n; j++)
            err = check_distinct(cfg, topics[i], topics[j],
                                 "every topic must be a different one",
                                 errstr, errstr_size);
    if (!err)
        err = check_distinct(cfg, "group.id", "snapshotter.group.id",
                             "workers and snapshotters need their own "
                             "consumer groups",
                             errstr, errstr_size);
    if (!err)
        err = check_distinct(cfg, "store.path", "snapshotter.store.path",
                             "workers and snapshotters need their own "
                             "RocksDB directories",
                             errstr, errstr_size);
    if (!err && val(cfg, "idempotency.window.ms")->num == 0 &&
        val(cfg, "idempotency.window.commands")->num == 0)
        err = pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                         "'idempotency.window.ms' (%s) and "
                         "'idempotency.window.commands' (%s) are both 0; "
                         "duplicates would go undetected",
                         val(cfg, "idempotency.window.ms")->source,
                         val(cfg, "idempotency.window.commands")->source);
    if (!err)
        err = check_txn_timeout(cfg, errstr, errstr_size);
    if (!err)
        cfg->final = true;
    return err;
}

/* ---- getters ----------------------------------------------------------- */

/* A key the code asks for must be in the table with that type: anything
 * else is a programming error, reported and stopped like a failed assert. */
static const value_t *must_get(const pn_config_t *cfg, const char *key,
                               int type, const char *getter) {
    int i = key ? find_prop(key) : -1;
    if (!cfg || i < 0 || (type >= 0 && props[i].type != (prop_type_t)type)) {
        fprintf(stderr, "%s: '%s' is not a setting of that type (bug)\n",
                getter, key ? key : "(null)");
        abort();
    }
    return &cfg->values[i];
}

const char *pn_config_get_str(const pn_config_t *cfg, const char *key) {
    if (key && is_kafka_key(key)) {
        const kafka_kv_t *kv = find_kafka(cfg, key);
        return kv ? kv->value : NULL;
    }
    return must_get(cfg, key, -1, __func__)->text;
}

int64_t pn_config_get_int(const pn_config_t *cfg, const char *key) {
    return must_get(cfg, key, T_INT, __func__)->num;
}

bool pn_config_get_bool(const pn_config_t *cfg, const char *key) {
    return must_get(cfg, key, T_BOOL, __func__)->num != 0;
}

int64_t pn_config_get_ms(const pn_config_t *cfg, const char *key) {
    return must_get(cfg, key, T_DURATION, __func__)->num;
}

int64_t pn_config_get_bytes(const pn_config_t *cfg, const char *key) {
    return must_get(cfg, key, T_SIZE, __func__)->num;
}

int pn_config_get_enum(const pn_config_t *cfg, const char *key) {
    return (int)must_get(cfg, key, T_ENUM, __func__)->num;
}

const char *pn_config_source(const pn_config_t *cfg, const char *key) {
    if (key && is_kafka_key(key)) {
        const kafka_kv_t *kv = find_kafka(cfg, key);
        return kv ? kv->source : NULL;
    }
    return must_get(cfg, key, -1, __func__)->source;
}

pn_err_t pn_config_kafka_foreach(const pn_config_t *cfg,
                                 pn_config_kafka_fn fn, void *opaque) {
    if (!cfg || !fn)
        return PN_ERR_INVALID_ARG;
    for (size_t i = 0; i < cfg->kafka_len; i++) {
        const kafka_kv_t *kv = &cfg->kafka[i];
        pn_err_t err = fn(kv->name, kv->value, kv->source, opaque);
        if (err)
            return err;
    }
    return PN_ERR_OK;
}

/* ---- printing ---------------------------------------------------------- */

static bool kafka_secret(const char *name) {
    static const char *const words[] = {"password", "secret", "key", "token",
                                        "credential"};
    if (!strcmp(name, "sasl.oauthbearer.config"))
        return true;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(name, words[i]))
            return true;
    return false;
}

/* Writes v with the user:password part of any scheme://user:pw@host URL
 * replaced by ********. */
static void put_redacting_urls(const char *v, FILE *fp) {
    const char *p;
    while ((p = strstr(v, "://")) != NULL) {
        p += 3;
        size_t auth = strcspn(p, "/?#, ");
        const char *at = memchr(p, '@', auth);
        if (at) {
            fprintf(fp, "%.*s%s", (int)(p - v), v, REDACTED);
            v = at;
        } else {
            fprintf(fp, "%.*s", (int)(p - v), v);
            v = p;
        }
    }
    fputs(v, fp);
}

static void print_line(FILE *fp, const char *prefix, const char *key,
                       const char *value, const char *source, bool secret) {
    fprintf(fp, "%s%s=", prefix, key);
    if (secret && *value)
        fputs(REDACTED, fp);
    else
        put_redacting_urls(value, fp);
    fprintf(fp, " # %s\n", source);
}

pn_err_t pn_config_print(const pn_config_t *cfg, FILE *fp) {
    if (!cfg || !fp)
        return PN_ERR_INVALID_ARG;
    for (size_t i = 0; i < PROP_COUNT; i++)
        print_line(fp, "", props[i].name, cfg->values[i].text,
                   cfg->values[i].source, props[i].flags & F_SECRET);
    for (size_t i = 0; i < cfg->kafka_len; i++) {
        const kafka_kv_t *kv = &cfg->kafka[i];
        print_line(fp, KAFKA_PREFIX, kv->name, kv->value, kv->source,
                   kafka_secret(kv->name));
    }
    return ferror(fp) ? PN_ERR_IO : PN_ERR_OK;
}

/* ---- generated documentation ------------------------------------------ */

/* "1 .. 60000", "exactly_once, at_least_once", "" for free strings. */
static void fmt_range(const prop_t *p, const char *sep, char *buf,
                      size_t size) {
    char a[32], b[32];
    size_t used = 0;
    buf[0] = '\0';
    switch (p->type) {
    case T_INT:
    case T_DURATION:
    case T_SIZE:
        snprintf(buf, size, "%s .. %s", fmt_amount(p->type, p->min, a, sizeof a),
                 fmt_amount(p->type, p->max, b, sizeof b));
        break;
    case T_BOOL:
        snprintf(buf, size, "true%sfalse", sep);
        break;
    case T_ENUM:
        for (int i = 0; p->values[i] && used < size; i++) {
            int n = snprintf(buf + used, size - used, "%s%s", i ? sep : "",
                             p->values[i]);
            used += n > 0 ? (size_t)n : 0;
        }
        break;
    case T_STRING:
        break;
    }
}

static void md_escaped(const char *s, FILE *fp) {
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', fp);
        fputc(*s, fp);
    }
}

pn_err_t pn_config_write_markdown(FILE *fp) {
    if (!fp)
        return PN_ERR_INVALID_ARG;
    fputs("| Name | Type | Default | Range | Description |\n"
          "|---|---|---|---|---|\n",
          fp);
    for (size_t i = 0; i < PROP_COUNT; i++) {
        const prop_t *p = &props[i];
        char range[256];
        fmt_range(p, "`, `", range, sizeof range);
        fprintf(fp, "| `%s` | %s | ", p->name, type_names[p->type]);
        if (*p->def)
            fprintf(fp, "`%s`", p->def);
        else
            fputs("(empty)", fp);
        fputs(" | ", fp);
        if (*range)
            fprintf(fp, "`%s`", range);
        fputs(" | ", fp);
        md_escaped(p->desc, fp);
        if (p->flags & F_REQUIRED)
            fputs(" Must not be empty.", fp);
        if (p->flags & F_SECRET)
            fputs(" Secret: printed as `" REDACTED "`.", fp);
        fputs(" |\n", fp);
    }
    return ferror(fp) ? PN_ERR_IO : PN_ERR_OK;
}

/* Writes text as "# " comment lines of at most 78 columns. */
static void comment_wrapped(const char *text, FILE *fp) {
    const size_t width = 76;
    while (*text) {
        while (*text == ' ')
            text++;
        size_t len = strlen(text);
        size_t cut = len;
        if (len > width) {
            cut = width;
            while (cut > 0 && text[cut] != ' ')
                cut--;
            if (cut == 0) /* one long word: let it overflow */
                cut = strcspn(text, " ");
        }
        fprintf(fp, "# %.*s\n", (int)cut, text);
        text += cut;
    }
}

static const char sample_header[] =
    "# Panther configuration: every setting with its default.\n"
    "#\n"
    "# Generated from the settings table in src/config.c by\n"
    "# scripts/gen-config-docs; change the table, then regenerate (a unit\n"
    "# test fails while this file and the table disagree).\n"
    "#\n"
    "# Syntax: one key=value per line, split at the first '='. Whitespace\n"
    "# around key and value is trimmed; the value is taken literally (no\n"
    "# quotes, escapes or trailing comments). Lines whose first character is\n"
    "# '#' or '!' are comments. Unknown keys and bad values are errors that\n"
    "# name the file and line.\n"
    "#\n"
    "# Precedence, later wins: built-in defaults < this file < environment\n"
    "# variables PANTHER_<KEY> (upper case, '.' becomes '_', as in\n"
    "# PANTHER_WORKER_BATCH_MAX_COMMANDS or PANTHER_KAFKA_BOOTSTRAP_SERVERS)\n"
    "# < command-line flags.\n"
    "#\n"
    "# Durations are milliseconds, or a number with ms, s, min, h or d:\n"
    "# 24h. Sizes are bytes, or a number with KiB, MiB, GiB or TiB: 32MiB.\n"
    "# Booleans are true or false.\n"
    "#\n"
    "# Every line below is commented out, so this file changes nothing as it\n"
    "# is: uncomment a line to change that setting.\n";

static const char sample_kafka[] =
    "# ---- librdkafka ----\n"
    "#\n"
    "# Every key that starts with \"kafka.\" is passed to librdkafka with the\n"
    "# prefix removed, untouched and in file order; see librdkafka's\n"
    "# CONFIGURATION.md for the names. Printing the effective configuration\n"
    "# redacts any whose name contains password, secret, key, token or\n"
    "# credential. Panther sets group.id, group.instance.id, transactional.id,\n"
    "# enable.auto.commit, isolation.level and partitioner itself; setting\n"
    "# them here is an error.\n"
    "#\n"
    "#kafka.bootstrap.servers=localhost:9092\n"
    "#kafka.client.id=panther\n"
    "#\n"
    "# SASL over TLS, e.g. SCRAM (placeholders: never commit real secrets;\n"
    "# prefer PANTHER_KAFKA_SASL_PASSWORD in the environment):\n"
    "#kafka.security.protocol=SASL_SSL\n"
    "#kafka.sasl.mechanisms=SCRAM-SHA-512\n"
    "#kafka.sasl.username=panther\n"
    "#kafka.sasl.password=<secret>\n"
    "#kafka.ssl.ca.location=/etc/panther/tls/ca.pem\n"
    "#\n"
    "# Mutual TLS instead of SASL:\n"
    "#kafka.security.protocol=SSL\n"
    "#kafka.ssl.certificate.location=/etc/panther/tls/client.pem\n"
    "#kafka.ssl.key.location=/etc/panther/tls/client.key\n"
    "#kafka.ssl.key.password=<secret>\n"
    "#\n"
    "# Transaction and fetch tuning:\n"
    "#kafka.transaction.timeout.ms=60000\n"
    "#kafka.fetch.max.bytes=52428800\n";

pn_err_t pn_config_write_sample(FILE *fp) {
    if (!fp)
        return PN_ERR_INVALID_ARG;
    fputs(sample_header, fp);
    for (size_t i = 0; i < PROP_COUNT; i++) {
        const prop_t *p = &props[i];
        char range[256];
        fmt_range(p, ", ", range, sizeof range);
        fputc('\n', fp);
        comment_wrapped(p->desc, fp);
        fprintf(fp, "# Type: %s", type_names[p->type]);
        if (p->type == T_ENUM)
            fprintf(fp, ", one of %s", range);
        else if (p->type != T_BOOL && *range)
            fprintf(fp, ", %s", range);
        if (p->flags & F_REQUIRED)
            fputs(", must not be empty", fp);
        if (p->flags & F_SECRET)
            fputs(", secret (printed as " REDACTED ")", fp);
        fprintf(fp, ".\n#%s=%s\n", p->name, p->def);
    }
    fputc('\n', fp);
    fputs(sample_kafka, fp);
    return ferror(fp) ? PN_ERR_IO : PN_ERR_OK;
}
