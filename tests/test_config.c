#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "panther/config.h"
#include "pn_test.h"

/* ---- helpers ----------------------------------------------------------- */

static char errstr[PN_CONFIG_ERRSTR_SIZE];

/* Hides a buffer's bound from GCC, whose -Wformat-truncation would flag
 * pn_test.h's 512-byte failure message for the long strings compared here
 * (a cut failure message is harmless). */
static inline const char *S(const char *p) {
    __asm__("" : "+r"(p));
    return p;
}

static pn_config_t *new_cfg(void) {
    pn_config_t *cfg = pn_config_new();
    PN_REQUIRE(cfg != NULL);
    errstr[0] = '\0';
    return cfg;
}

/* A file holding text in a fresh directory; *dir is freed by drop_file. */
static char *write_file(const char *name, const char *text, char **dir) {
    *dir = pn_test_tmpdir("config");
    PN_REQUIRE(*dir != NULL);
    size_t size = strlen(*dir) + strlen(name) + 2;
    char *path = malloc(size);
    PN_REQUIRE(path != NULL);
    snprintf(path, size, "%s/%s", *dir, name);
    FILE *fp = fopen(path, "w");
    PN_REQUIRE(fp != NULL);
    fputs(text, fp);
    fclose(fp);
    return path;
}

static void drop_file(char *path, char *dir) {
    pn_test_rmdir(dir);
    free(dir);
    free(path);
}

/* Loads text as a file named name; returns the result, message in errstr.
 * *pathp receives the path used (for the expected messages) if not NULL. */
static pn_err_t load_text(pn_config_t *cfg, const char *name,
                          const char *text, char *pathp, size_t path_size) {
    char *dir;
    char *path = write_file(name, text, &dir);
    if (pathp)
        snprintf(pathp, path_size, "%s", path);
    pn_err_t err = pn_config_load_file(cfg, path, errstr, sizeof errstr);
    drop_file(path, dir);
    return err;
}

/* The text fp wrote into a memstream, or NULL; caller frees. */
typedef pn_err_t (*writer_fn)(FILE *fp, const void *arg);

static char *capture(writer_fn fn, const void *arg) {
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    PN_REQUIRE(fp != NULL);
    pn_err_t err = fn(fp, arg);
    fclose(fp);
    PN_ASSERT_EQ_INT(err, PN_ERR_OK);
    return text;
}

static pn_err_t print_writer(FILE *fp, const void *cfg) {
    return pn_config_print(cfg, fp);
}
static pn_err_t markdown_writer(FILE *fp, const void *arg) {
    (void)arg;
    return pn_config_write_markdown(fp);
}
static pn_err_t sample_writer(FILE *fp, const void *arg) {
    (void)arg;
    return pn_config_write_sample(fp);
}

#define SET(cfg, k, v) pn_config_set((cfg), (k), (v), "test", errstr, sizeof errstr)

/* Expects a setting to fail with exactly `msg`. */
#define EXPECT_SET_ERROR(cfg, k, v, msg)                                     \
    do {                                                                     \
        PN_ASSERT_EQ_INT(SET(cfg, k, v), PN_ERR_CONFIG);                     \
        PN_ASSERT_EQ_STR(S(errstr), msg);                                       \
    } while (0)

/* ---- defaults and types ------------------------------------------------ */

static void test_defaults(void) {
    pn_config_t *cfg = new_cfg();
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "topics.commands"),
                     "inventory.commands");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "topics.events"),
                     "inventory.events");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "topics.outcomes"),
                     "inventory.outcomes");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "topics.snapshots"),
                     "inventory.snapshots");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "topics.dead.letters"), "");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "group.id"), "panther-worker");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "snapshotter.group.id"),
                     "panther-snapshotter");
    PN_ASSERT_EQ_INT(pn_config_get_enum(cfg, "processing.guarantee"), 0);
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "processing.guarantee"),
                     "exactly_once");
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "worker.commit.interval.ms"), 100);
    PN_ASSERT_EQ_INT(pn_config_get_int(cfg, "worker.batch.max.commands"),
                     5000);
    PN_ASSERT_EQ_INT(pn_config_get_bytes(cfg, "codec.max.record.bytes"),
                     1048576);
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "schema.registry.url"), "");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "store.path"), "./panther-data");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "snapshotter.store.path"),
                     "./panther-snapshotter-data");
    PN_ASSERT_EQ_INT(pn_config_get_bytes(cfg, "store.block.cache.bytes"),
                     32 << 20);
    PN_ASSERT_EQ_INT(pn_config_get_bytes(cfg, "store.write.buffer.bytes"),
                     64 << 20);
    PN_ASSERT_EQ_INT(pn_config_get_int(cfg, "store.state.cache.streams"),
                     100000);
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "store.event.retention.ms"),
                     7LL * 24 * 3600 * 1000);
    PN_ASSERT(!pn_config_get_bool(cfg, "store.sync"));
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "idempotency.window.ms"),
                     24LL * 3600 * 1000);
    PN_ASSERT_EQ_INT(pn_config_get_int(cfg, "idempotency.window.commands"),
                     10000);
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "snapshotter.interval.ms"), 1000);
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "http.bind"), "127.0.0.1");
    PN_ASSERT_EQ_INT(pn_config_get_int(cfg, "http.port"), 0);
    PN_ASSERT_EQ_INT(pn_config_get_int(cfg, "snapshotter.http.port"), 8080);
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "log.level"), "info");
    PN_ASSERT_EQ_INT(pn_config_get_enum(cfg, "log.level"), 1);
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "store.block.cache.bytes"),
                     "33554432");
    PN_ASSERT_EQ_STR(pn_config_source(cfg, "store.path"), "default");
    PN_ASSERT(pn_config_get_str(cfg, "kafka.bootstrap.servers") == NULL);
    pn_config_destroy(cfg);
    pn_config_destroy(NULL);
}

static void test_finalize_derives(void) {
    pn_config_t *cfg = new_cfg();
    PN_REQUIRE_OK(SET(cfg, "topics.commands", "orders.cmd"));
    PN_REQUIRE_OK(pn_config_finalize(cfg, errstr, sizeof errstr));
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "topics.dead.letters"),
                     "orders.cmd.DLT");
    PN_ASSERT_EQ_STR(pn_config_source(cfg, "topics.dead.letters"),
                     "derived from topics.commands");
    char host[256] = "";
    PN_REQUIRE(gethostname(host, sizeof host - 1) == 0);
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "instance.id"), host);
    /* Final: read-only, and finalize is idempotent. */
    PN_ASSERT_EQ_INT(SET(cfg, "group.id", "x"), PN_ERR_STATE);
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "group.id"), "panther-worker");
    PN_REQUIRE_OK(pn_config_finalize(cfg, errstr, sizeof errstr));
    pn_config_destroy(cfg);

    cfg = new_cfg();
    PN_REQUIRE_OK(SET(cfg, "topics.dead.letters", "dlq"));
    PN_REQUIRE_OK(SET(cfg, "instance.id", "worker-0"));
    PN_REQUIRE_OK(pn_config_finalize(cfg, errstr, sizeof errstr));
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "topics.dead.letters"), "dlq");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "instance.id"), "worker-0");
    PN_ASSERT_EQ_STR(pn_config_source(cfg, "instance.id"), "test");
    pn_config_destroy(cfg);
}

static void test_finalize_rules(void) {
    pn_config_t *cfg = new_cfg();
    PN_REQUIRE_OK(pn_config_set(cfg, "topics.events", "inventory.commands",
                                "f.properties:7", errstr, sizeof errstr));
    PN_ASSERT_EQ_INT(pn_config_finalize(cfg, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT_EQ_STR(S(errstr),
                     "'topics.commands' (default) and 'topics.events' "
                     "(f.properties:7) are both 'inventory.commands'; every "
                     "topic must be a different one");
    pn_config_destroy(cfg);

    /* The derived dead-letter topic takes part in the rule too. */
    cfg = new_cfg();
    PN_REQUIRE_OK(SET(cfg, "topics.snapshots", "inventory.commands.DLT"));
    PN_ASSERT_EQ_INT(pn_config_finalize(cfg, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT(strstr(errstr, "'topics.dead.letters' (derived from "
                             "topics.commands) and 'topics.snapshots'") != NULL);
    pn_config_destroy(cfg);

    cfg = new_cfg();
    PN_REQUIRE_OK(SET(cfg, "snapshotter.group.id", "panther-worker"));
    PN_ASSERT_EQ_INT(pn_config_finalize(cfg, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT(strstr(errstr, "need their own consumer groups") != NULL);
    pn_config_destroy(cfg);

    cfg = new_cfg();
    PN_REQUIRE_OK(SET(cfg, "snapshotter.store.path", "./panther-data"));
    PN_ASSERT_EQ_INT(pn_config_finalize(cfg, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT(strstr(errstr, "need their own RocksDB directories") != NULL);
    pn_config_destroy(cfg);

    cfg = new_cfg();
    PN_REQUIRE_OK(SET(cfg, "idempotency.window.ms", "0"));
    PN_REQUIRE_OK(pn_config_finalize(cfg, errstr, sizeof errstr));
    pn_config_destroy(cfg);
    cfg = new_cfg();
    PN_REQUIRE_OK(SET(cfg, "idempotency.window.ms", "0"));
    PN_REQUIRE_OK(SET(cfg, "idempotency.window.commands", "0"));
    PN_ASSERT_EQ_INT(pn_config_finalize(cfg, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT_EQ_STR(S(errstr), "'idempotency.window.ms' (test) and "
                             "'idempotency.window.commands' (test) are both "
                             "0; duplicates would go undetected");
    /* A failed finalize leaves the handle writable, so it can be fixed. */
    PN_REQUIRE_OK(SET(cfg, "idempotency.window.commands", "1"));
    PN_REQUIRE_OK(pn_config_finalize(cfg, errstr, sizeof errstr));
    pn_config_destroy(cfg);

    /* A transaction timeout the commit interval would reach. */
    cfg = new_cfg();
    PN_REQUIRE_OK(SET(cfg, "worker.commit.interval.ms", "5s"));
    PN_REQUIRE_OK(SET(cfg, "kafka.transaction.timeout.ms", "9999"));
    PN_ASSERT_EQ_INT(pn_config_finalize(cfg, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT_EQ_STR(S(errstr),
                     "test: 'kafka.transaction.timeout.ms' (9999) must be a "
                     "number of ms at least twice 'worker.commit.interval.ms' "
                     "(5000, test), or every transaction would time out");
    PN_REQUIRE_OK(SET(cfg, "kafka.transaction.timeout.ms", "10000"));
    PN_REQUIRE_OK(pn_config_finalize(cfg, errstr, sizeof errstr));
    pn_config_destroy(cfg);
}

static void test_value_syntax(void) {
    pn_config_t *cfg = new_cfg();
    PN_REQUIRE_OK(SET(cfg, "idempotency.window.ms", "36h"));
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "idempotency.window.ms"),
                     36LL * 3600 * 1000);
    PN_REQUIRE_OK(SET(cfg, "worker.commit.interval.ms", "2s"));
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "worker.commit.interval.ms"), 2000);
    PN_REQUIRE_OK(SET(cfg, "worker.commit.interval.ms", "250ms"));
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "worker.commit.interval.ms"), 250);
    PN_REQUIRE_OK(SET(cfg, "snapshotter.interval.ms", "5min"));
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "snapshotter.interval.ms"), 300000);
    PN_REQUIRE_OK(SET(cfg, "snapshotter.interval.ms", "1M"));
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "snapshotter.interval.ms"), 60000);
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "snapshotter.interval.ms"),
                     "60000");
    PN_REQUIRE_OK(SET(cfg, "store.event.retention.ms", "30d"));
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "store.event.retention.ms"),
                     30LL * 86400 * 1000);
    PN_REQUIRE_OK(SET(cfg, "store.block.cache.bytes", "2 GiB"));
    PN_ASSERT_EQ_INT(pn_config_get_bytes(cfg, "store.block.cache.bytes"),
                     2LL << 30);
    PN_REQUIRE_OK(SET(cfg, "codec.max.record.bytes", "512kib"));
    PN_ASSERT_EQ_INT(pn_config_get_bytes(cfg, "codec.max.record.bytes"),
                     512 * 1024);
    PN_REQUIRE_OK(SET(cfg, "codec.max.record.bytes", "4096"));
    PN_ASSERT_EQ_INT(pn_config_get_bytes(cfg, "codec.max.record.bytes"), 4096);
    static const char *const yes[] = {"true", "TRUE", "yes", "on", "1"};
    static const char *const no[] = {"false", "No", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        PN_REQUIRE_OK(SET(cfg, "store.sync", yes[i]));
        PN_ASSERT(pn_config_get_bool(cfg, "store.sync"));
        PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "store.sync"), "true");
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        PN_REQUIRE_OK(SET(cfg, "store.sync", no[i]));
        PN_ASSERT(!pn_config_get_bool(cfg, "store.sync"));
    }
    PN_REQUIRE_OK(SET(cfg, "processing.guarantee", "AT_LEAST_ONCE"));
    PN_ASSERT_EQ_INT(pn_config_get_enum(cfg, "processing.guarantee"), 1);
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "processing.guarantee"),
                     "at_least_once");
    PN_REQUIRE_OK(SET(cfg, "log.level", "debug"));
    PN_ASSERT_EQ_INT(pn_config_get_enum(cfg, "log.level"), 0);
    PN_REQUIRE_OK(SET(cfg, "schema.registry.url",
                      "http://a:8081, https://b:8081"));
    pn_config_destroy(cfg);
}

static void test_bad_values(void) {
    pn_config_t *cfg = new_cfg();
    EXPECT_SET_ERROR(cfg, "worker.batch.max.commands", "abc",
                     "test: value 'abc' for 'worker.batch.max.commands' is "
                     "not an integer");
    EXPECT_SET_ERROR(cfg, "worker.batch.max.commands", "12x",
                     "test: value '12x' for 'worker.batch.max.commands' is "
                     "not an integer");
    EXPECT_SET_ERROR(cfg, "worker.batch.max.commands", "",
                     "test: value '' for 'worker.batch.max.commands' is not "
                     "an integer");
    EXPECT_SET_ERROR(cfg, "worker.batch.max.commands", "0",
                     "test: 0 is below the minimum 1 for "
                     "'worker.batch.max.commands'");
    EXPECT_SET_ERROR(cfg, "worker.batch.max.commands", "1000001",
                     "test: 1000001 is above the maximum 1000000 for "
                     "'worker.batch.max.commands'");
    EXPECT_SET_ERROR(cfg, "worker.batch.max.commands",
                     "99999999999999999999",
                     "test: value '99999999999999999999' for "
                     "'worker.batch.max.commands' is out of range "
                     "(1 .. 1000000)");
    EXPECT_SET_ERROR(cfg, "http.port", "-1",
                     "test: -1 is below the minimum 0 for 'http.port'");
    EXPECT_SET_ERROR(cfg, "worker.commit.interval.ms", "0",
                     "test: 0 is below the minimum 1 for "
                     "'worker.commit.interval.ms'");
    EXPECT_SET_ERROR(cfg, "worker.commit.interval.ms", "2min",
                     "test: 2min is above the maximum 1min for "
                     "'worker.commit.interval.ms'");
    EXPECT_SET_ERROR(cfg, "worker.commit.interval.ms", "5x",
                     "test: value '5x' for 'worker.commit.interval.ms' is "
                     "not a duration (milliseconds, or a number with ms, s, "
                     "min, h or d)");
    EXPECT_SET_ERROR(cfg, "store.block.cache.bytes", "32MB",
                     "test: value '32MB' for 'store.block.cache.bytes' is "
                     "not a size (bytes, or a number with KiB, MiB, GiB or "
                     "TiB)");
    EXPECT_SET_ERROR(cfg, "store.block.cache.bytes", "512KiB",
                     "test: 512KiB is below the minimum 1MiB for "
                     "'store.block.cache.bytes'");
    EXPECT_SET_ERROR(cfg, "store.block.cache.bytes", "9999999999TiB",
                     "test: value '9999999999TiB' for "
                     "'store.block.cache.bytes' is out of range "
                     "(1MiB .. 1TiB)");
    EXPECT_SET_ERROR(cfg, "processing.guarantee", "exactly-once",
                     "test: value 'exactly-once' for 'processing.guarantee' "
                     "is not one of exactly_once, at_least_once");
    EXPECT_SET_ERROR(cfg, "log.level", "verbose",
                     "test: value 'verbose' for 'log.level' is not one of "
                     "debug, info, warn, error");
    EXPECT_SET_ERROR(cfg, "store.sync", "maybe",
                     "test: value 'maybe' for 'store.sync' is not a boolean "
                     "(true or false)");
    EXPECT_SET_ERROR(cfg, "topics.commands", "",
                     "test: 'topics.commands' must not be empty");
    EXPECT_SET_ERROR(cfg, "topics.events", "bad topic",
                     "test: value 'bad topic' for 'topics.events' is not a "
                     "valid Kafka topic name (letters, digits, '.', '_' and "
                     "'-' only)");
    EXPECT_SET_ERROR(cfg, "schema.registry.url", "registry:8081",
                     "test: value 'registry:8081' for 'schema.registry.url' "
                     "is not an http:// or https:// URL");
    /* A rejected value leaves the previous one in place. */
    PN_ASSERT_EQ_INT(pn_config_get_int(cfg, "worker.batch.max.commands"),
                     5000);
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "topics.events"),
                     "inventory.events");
    PN_ASSERT_EQ_STR(pn_config_source(cfg, "worker.batch.max.commands"),
                     "default");
    /* Unknown keys, with a suggestion when the typo is small. */
    EXPECT_SET_ERROR(cfg, "worker.batchsize", "1",
                     "test: unknown key 'worker.batchsize'");
    EXPECT_SET_ERROR(cfg, "worker.batch.max.comands", "1",
                     "test: unknown key 'worker.batch.max.comands' (did you "
                     "mean 'worker.batch.max.commands'?)");
    /* NULL source reads as the command line. */
    PN_ASSERT_EQ_INT(pn_config_set(cfg, "nope", "1", NULL, errstr,
                                   sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT_EQ_STR(S(errstr), "command line: unknown key 'nope'");
    pn_config_destroy(cfg);
}

/* ---- sources ----------------------------------------------------------- */

static void test_file_parsing(void) {
    pn_config_t *cfg = new_cfg();
    char path[4096];
    PN_REQUIRE_OK(load_text(cfg, "panther.properties",
                            "\xEF\xBB\xBF# a comment line\n"
                            "! another comment\n"
                            "\n"
                            "   \t\n"
                            "  topics.commands   =   cmds  \n"
                            "group.id=g1\r\n"
                            "   # indented comment = not a setting\n"
                            "schema.registry.url=http://r:8081/?a=b&c=d\n"
                            "store.path=/var/lib/panther # not a comment\n"
                            "kafka.sasl.jaas=a=b=c\n"
                            "group.id = g2\n"
                            "worker.batch.max.commands=10",
                            path, sizeof path));
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "topics.commands"), "cmds");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "group.id"), "g2");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "schema.registry.url"),
                     "http://r:8081/?a=b&c=d");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "store.path"),
                     "/var/lib/panther # not a comment");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "kafka.sasl.jaas"), "a=b=c");
    PN_ASSERT_EQ_INT(pn_config_get_int(cfg, "worker.batch.max.commands"), 10);
    char want[4200];
    snprintf(want, sizeof want, "%s:5", path);
    PN_ASSERT_EQ_STR(pn_config_source(cfg, "topics.commands"), S(want));
    snprintf(want, sizeof want, "%s:11", path);
    PN_ASSERT_EQ_STR(pn_config_source(cfg, "group.id"), S(want));
    snprintf(want, sizeof want, "%s:12", path);
    PN_ASSERT_EQ_STR(pn_config_source(cfg, "worker.batch.max.commands"), S(want));
    pn_config_destroy(cfg);
}

static void test_file_errors_name_line(void) {
    char path[4096], want[4600];
    pn_config_t *cfg = new_cfg();
    PN_ASSERT_EQ_INT(load_text(cfg, "panther.properties",
                               "# header\n"
                               "group.id=g\n"
                               "\n"
                               "worker.batchsize=10\n",
                               path, sizeof path),
                     PN_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:4: unknown key 'worker.batchsize'", path);
    PN_ASSERT_EQ_STR(S(errstr), S(want));
    pn_config_destroy(cfg);

    cfg = new_cfg();
    PN_ASSERT_EQ_INT(load_text(cfg, "p.properties",
                               "worker.batch.max.commands=abc\n", path,
                               sizeof path),
                     PN_ERR_CONFIG);
    snprintf(want, sizeof want,
             "%s:1: value 'abc' for 'worker.batch.max.commands' is not an "
             "integer",
             path);
    PN_ASSERT_EQ_STR(S(errstr), S(want));
    pn_config_destroy(cfg);

    cfg = new_cfg();
    PN_ASSERT_EQ_INT(load_text(cfg, "p.properties",
                               "\n\nstore.sync\n", path, sizeof path),
                     PN_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:3: expected key=value, got no '='", path);
    PN_ASSERT_EQ_STR(S(errstr), S(want));
    pn_config_destroy(cfg);

    cfg = new_cfg();
    PN_ASSERT_EQ_INT(load_text(cfg, "p.properties", " = 5\n", path,
                               sizeof path),
                     PN_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:1: missing key before '='", path);
    PN_ASSERT_EQ_STR(S(errstr), S(want));
    pn_config_destroy(cfg);

    cfg = new_cfg();
    PN_ASSERT_EQ_INT(pn_config_load_file(cfg, "/nonexistent/p.properties",
                                         errstr, sizeof errstr),
                     PN_ERR_IO);
    PN_ASSERT_EQ_STR(S(errstr), "/nonexistent/p.properties: cannot open: No "
                             "such file or directory");
    pn_config_destroy(cfg);
}

static void test_env_and_flags_override(void) {
    pn_config_t *cfg = new_cfg();
    char path[4096], want[4200];
    PN_REQUIRE_OK(load_text(cfg, "p.properties",
                            "worker.batch.max.commands=10\n"
                            "group.id=from-file\n"
                            "store.path=/file\n"
                            "kafka.bootstrap.servers=file:9092\n",
                            path, sizeof path));
    char *env[] = {"HOME=/root",
                   "PANTHER=not-a-setting-prefix",
                   "PANTHERX_FOO=ignored",
                   "PANTHER_WORKER_BATCH_MAX_COMMANDS=20",
                   "PANTHER_GROUP_ID=from-env",
                   "PANTHER_KAFKA_BOOTSTRAP_SERVERS=env:9092",
                   "PANTHER_KAFKA_SASL_USERNAME=u",
                   "PANTHER_SCHEMA_REGISTRY_URL=",
                   NULL};
    PN_REQUIRE_OK(pn_config_load_env(cfg, env, errstr, sizeof errstr));
    PN_ASSERT_EQ_INT(pn_config_get_int(cfg, "worker.batch.max.commands"), 20);
    PN_ASSERT_EQ_STR(pn_config_source(cfg, "worker.batch.max.commands"),
                     "environment PANTHER_WORKER_BATCH_MAX_COMMANDS");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "group.id"), "from-env");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "store.path"), "/file");
    snprintf(want, sizeof want, "%s:3", path);
    PN_ASSERT_EQ_STR(pn_config_source(cfg, "store.path"), S(want));
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "kafka.bootstrap.servers"),
                     "env:9092");
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "kafka.sasl.username"), "u");

    /* Flags, fed by the CLI, beat the environment. */
    PN_REQUIRE_OK(pn_config_set_pair(cfg, " group.id = from-flag ", "--set",
                                     errstr, sizeof errstr));
    PN_REQUIRE_OK(pn_config_set(cfg, "worker.batch.max.commands", "30",
                                "--worker.batch.max.commands", errstr,
                                sizeof errstr));
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "group.id"), "from-flag");
    PN_ASSERT_EQ_STR(pn_config_source(cfg, "group.id"), "--set");
    PN_ASSERT_EQ_INT(pn_config_get_int(cfg, "worker.batch.max.commands"), 30);
    PN_ASSERT_EQ_INT(pn_config_set_pair(cfg, "group.id", "--set", errstr,
                                        sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT_EQ_STR(S(errstr), "--set: expected key=value, got no '='");
    PN_ASSERT_EQ_INT(pn_config_set_pair(cfg, "store.sync=perhaps", "--set",
                                        errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT_EQ_STR(S(errstr), "--set: value 'perhaps' for 'store.sync' is not "
                             "a boolean (true or false)");
    pn_config_destroy(cfg);
}

static void test_env_errors(void) {
    pn_config_t *cfg = new_cfg();
    char *env[] = {"PANTHER_GROUP_ID=ok", "PANTHER_WORKER_BATCHSIZE=5", NULL};
    PN_ASSERT_EQ_INT(pn_config_load_env(cfg, env, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT_EQ_STR(S(errstr), "environment PANTHER_WORKER_BATCHSIZE: unknown "
                             "key 'worker.batchsize'");
    char *env2[] = {"PANTHER_STORE_BLOCK_CACHE_BYTES=1", NULL};
    PN_ASSERT_EQ_INT(pn_config_load_env(cfg, env2, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT_EQ_STR(S(errstr), "environment PANTHER_STORE_BLOCK_CACHE_BYTES: 1 "
                             "is below the minimum 1MiB for "
                             "'store.block.cache.bytes'");
    char *env3[] = {"PANTHER_=x", NULL};
    PN_ASSERT_EQ_INT(pn_config_load_env(cfg, env3, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT_EQ_STR(S(errstr), "environment PANTHER_: no key after PANTHER_");
    pn_config_destroy(cfg);

    /* NULL reads the process environment. */
    cfg = new_cfg();
    PN_REQUIRE(setenv("PANTHER_SNAPSHOTTER_INTERVAL_MS", "3s", 1) == 0);
    PN_REQUIRE_OK(pn_config_load_env(cfg, NULL, errstr, sizeof errstr));
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "snapshotter.interval.ms"), 3000);
    PN_REQUIRE(setenv("PANTHER_NO_SUCH_SETTING", "1", 1) == 0);
    PN_ASSERT_EQ_INT(pn_config_load_env(cfg, NULL, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT(strstr(errstr, "environment PANTHER_NO_SUCH_SETTING: unknown "
                             "key 'no.such.setting'") != NULL);
    unsetenv("PANTHER_SNAPSHOTTER_INTERVAL_MS");
    unsetenv("PANTHER_NO_SUCH_SETTING");
    pn_config_destroy(cfg);
}

/* ---- kafka pass-through ------------------------------------------------ */

typedef struct kafka_seen {
    char text[1024];
    int calls, stop_at;
} kafka_seen_t;

static pn_err_t collect_kafka(const char *name, const char *value,
                              const char *source, void *opaque) {
    kafka_seen_t *seen = opaque;
    size_t used = strlen(seen->text);
    snprintf(seen->text + used, sizeof seen->text - used, "%s=%s@%s;", name,
             value, source);
    return ++seen->calls == seen->stop_at ? PN_ERR_KAFKA : PN_ERR_OK;
}

static void test_kafka_passthrough(void) {
    pn_config_t *cfg = new_cfg();
    PN_REQUIRE_OK(SET(cfg, "kafka.bootstrap.servers", "a:9092"));
    PN_REQUIRE_OK(SET(cfg, "kafka.security.protocol", "SASL_SSL"));
    PN_REQUIRE_OK(SET(cfg, "kafka.linger.ms", "5"));
    PN_REQUIRE_OK(pn_config_set(cfg, "kafka.bootstrap.servers", "b:9092",
                                "env", errstr, sizeof errstr));
    PN_REQUIRE_OK(SET(cfg, "kafka.debug", ""));
    kafka_seen_t seen = {.stop_at = -1};
    PN_REQUIRE_OK(pn_config_kafka_foreach(cfg, collect_kafka, &seen));
    PN_ASSERT_EQ_STR(S(seen.text), "bootstrap.servers=b:9092@env;"
                                "security.protocol=SASL_SSL@test;"
                                "linger.ms=5@test;debug=@test;");
    /* A callback error stops the walk and is returned. */
    kafka_seen_t stop = {.stop_at = 2};
    PN_ASSERT_EQ_INT(pn_config_kafka_foreach(cfg, collect_kafka, &stop),
                     PN_ERR_KAFKA);
    PN_ASSERT_EQ_INT(stop.calls, 2);
    PN_ASSERT_EQ_STR(pn_config_source(cfg, "kafka.bootstrap.servers"), "env");
    PN_ASSERT(pn_config_is_key("kafka.anything"));
    PN_ASSERT(pn_config_is_key("store.sync"));
    PN_ASSERT(!pn_config_is_key("store.synchronous"));

    EXPECT_SET_ERROR(cfg, "kafka.", "x",
                     "test: empty librdkafka property name in 'kafka.'");
    EXPECT_SET_ERROR(cfg, "kafka.group.id", "x",
                     "test: 'kafka.group.id' is managed by Panther: use "
                     "'group.id' or 'snapshotter.group.id'");
    EXPECT_SET_ERROR(cfg, "kafka.transactional.id", "x",
                     "test: 'kafka.transactional.id' is managed by Panther: "
                     "it is derived from 'instance.id'");
    EXPECT_SET_ERROR(cfg, "kafka.partitioner", "consistent_random",
                     "test: 'kafka.partitioner' is managed by Panther: "
                     "Panther always uses murmur2_random (DESIGN section 2)");
    pn_config_destroy(cfg);
}

/* ---- printing and generated docs --------------------------------------- */

static void test_print_redacts(void) {
    pn_config_t *cfg = new_cfg();
    PN_REQUIRE_OK(SET(cfg, "schema.registry.basic.auth.user.info",
                      "reg:hunter1"));
    PN_REQUIRE_OK(SET(cfg, "schema.registry.url",
                      "https://alice:hunter5@registry:8081/x,http://r2"));
    PN_REQUIRE_OK(SET(cfg, "kafka.bootstrap.servers", "localhost:9092"));
    PN_REQUIRE_OK(SET(cfg, "kafka.sasl.username", "panther"));
    PN_REQUIRE_OK(SET(cfg, "kafka.sasl.password", "hunter2"));
    PN_REQUIRE_OK(SET(cfg, "kafka.ssl.key.password", "hunter3"));
    PN_REQUIRE_OK(SET(cfg, "kafka.sasl.oauthbearer.client.secret", "hunter4"));
    PN_REQUIRE_OK(SET(cfg, "kafka.sasl.oauthbearer.config", "x=hunter6"));
    PN_REQUIRE_OK(SET(cfg, "kafka.ssl.key.pem", "-----BEGIN hunter7"));
    PN_REQUIRE_OK(SET(cfg, "kafka.some.token", "hunter8"));
    PN_REQUIRE_OK(pn_config_finalize(cfg, errstr, sizeof errstr));
    char *out = capture(print_writer, cfg);
    PN_REQUIRE(out != NULL);
    PN_ASSERT(strstr(out, "hunter") == NULL);
    if (strstr(out, "hunter"))
        fprintf(stderr, "leaked secret in:\n%s", out);
    PN_ASSERT(strstr(out, "\nschema.registry.basic.auth.user.info=******** "
                          "# test\n") != NULL);
    PN_ASSERT(strstr(out, "\nschema.registry.url=https://********@registry:"
                          "8081/x,http://r2 # test\n") != NULL);
    PN_ASSERT(strstr(out, "\nkafka.sasl.password=******** # test\n") != NULL);
    PN_ASSERT(strstr(out, "\nkafka.ssl.key.password=******** # test\n") !=
              NULL);
    PN_ASSERT(strstr(out, "\nkafka.bootstrap.servers=localhost:9092 # test\n")
              != NULL);
    PN_ASSERT(strstr(out, "\nkafka.sasl.username=panther # test\n") != NULL);
    PN_ASSERT(strncmp(out, "topics.commands=inventory.commands # default\n",
                      45) == 0);
    PN_ASSERT(strstr(out, "\ntopics.dead.letters=inventory.commands.DLT # "
                          "derived from topics.commands\n") != NULL);
    PN_ASSERT(strstr(out, "\nstore.block.cache.bytes=33554432 # default\n")
              != NULL);
    free(out);
    pn_config_destroy(cfg);

    /* Empty secrets print empty: it shows they are unset, and nothing more. */
    cfg = new_cfg();
    out = capture(print_writer, cfg);
    PN_ASSERT(strstr(out, "\nschema.registry.basic.auth.user.info= # "
                          "default\n") != NULL);
    free(out);
    pn_config_destroy(cfg);
}

/* Calls fn(key, arg) for every table key, taken from pn_config_print. */
static void for_each_key(void (*fn)(const char *key, void *arg), void *arg) {
    pn_config_t *cfg = new_cfg();
    char *out = capture(print_writer, cfg);
    int keys = 0;
    for (char *p = out; *p;) {
        char *eq = strchr(p, '=');
        char *nl = strchr(p, '\n');
        PN_REQUIRE(eq && nl && eq < nl);
        *eq = '\0';
        fn(p, arg);
        keys++;
        p = nl + 1;
    }
    PN_ASSERT(keys >= 25);
    free(out);
    pn_config_destroy(cfg);
}

static void expect_in_markdown(const char *key, void *md) {
    char cell[256];
    snprintf(cell, sizeof cell, "\n| `%s` | ", key);
    PN_ASSERT_(strstr(md, cell) != NULL, CU_FALSE,
               "markdown has a row for '%s'", key);
}

static void expect_in_sample(const char *key, void *sample) {
    char line[256];
    snprintf(line, sizeof line, "\n#%s=", key);
    PN_ASSERT_(strstr(sample, line) != NULL, CU_FALSE,
               "sample has a line for '%s'", key);
}

static void test_markdown_lists_every_key(void) {
    char *md = capture(markdown_writer, NULL);
    PN_REQUIRE(md != NULL);
    PN_ASSERT(strncmp(md, "| Name | Type | Default | Range | Description |\n",
                      46) == 0);
    for_each_key(expect_in_markdown, md);
    PN_ASSERT(strstr(md, "| `worker.batch.max.commands` | int | `5000` | "
                         "`1 .. 1000000` | ") != NULL);
    PN_ASSERT(strstr(md, "| `processing.guarantee` | enum | `exactly_once` | "
                         "`exactly_once`, `at_least_once` | ") != NULL);
    PN_ASSERT(strstr(md, "| `store.block.cache.bytes` | size-bytes | "
                         "`32MiB` | `1MiB .. 1TiB` | ") != NULL);
    PN_ASSERT(strstr(md, "Secret: printed as `********`.") != NULL);
    /* Every row has exactly five cells: no unescaped '|' in a description. */
    for (char *p = md; *p;) {
        char *nl = strchr(p, '\n');
        PN_REQUIRE(nl != NULL);
        int bars = 0;
        for (char *q = p; q < nl; q++)
            bars += *q == '|' && (q == p || q[-1] != '\\');
        PN_ASSERT_EQ_INT(bars, 6);
        p = nl + 1;
    }
    free(md);
}

static void test_sample_lists_every_key_and_loads(void) {
    char *sample = capture(sample_writer, NULL);
    PN_REQUIRE(sample != NULL);
    for_each_key(expect_in_sample, sample);
    PN_ASSERT(strstr(sample, "\n#kafka.bootstrap.servers=") != NULL);
    PN_ASSERT(strstr(sample, "\n#kafka.sasl.password=<secret>\n") != NULL);
    /* As it is, the sample sets nothing. */
    pn_config_t *cfg = new_cfg();
    PN_REQUIRE_OK(load_text(cfg, "sample.properties", sample, NULL, 0));
    pn_config_destroy(cfg);
    /* With every setting uncommented, it loads and gives the defaults. */
    size_t len = strlen(sample);
    char *active = malloc(len + 1);
    PN_REQUIRE(active != NULL);
    size_t n = 0;
    for (const char *p = sample; *p;) {
        const char *nl = strchr(p, '\n');
        size_t line_len = nl ? (size_t)(nl - p + 1) : strlen(p);
        bool setting = p[0] == '#' && p[1] >= 'a' && p[1] <= 'z' &&
                       memchr(p, '=', line_len) != NULL;
        if (setting) {
            p++;
            line_len--;
        }
        memcpy(active + n, p, line_len);
        n += line_len;
        p += line_len;
    }
    active[n] = '\0';
    PN_ASSERT(strstr(active, "\nworker.batch.max.commands=5000\n") != NULL);
    cfg = new_cfg();
    PN_REQUIRE_OK(load_text(cfg, "active.properties", active, NULL, 0));
    pn_config_t *defaults = new_cfg();
    PN_ASSERT_EQ_INT(pn_config_get_bytes(cfg, "store.block.cache.bytes"),
                     pn_config_get_bytes(defaults, "store.block.cache.bytes"));
    PN_ASSERT_EQ_INT(pn_config_get_ms(cfg, "store.event.retention.ms"),
                     pn_config_get_ms(defaults, "store.event.retention.ms"));
    PN_ASSERT_EQ_STR(pn_config_get_str(cfg, "kafka.security.protocol"), "SSL");
    PN_REQUIRE_OK(pn_config_finalize(cfg, errstr, sizeof errstr));
    pn_config_destroy(defaults);
    pn_config_destroy(cfg);
    free(active);
    free(sample);
}

static char *read_all(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    char chunk[4096];
    size_t n;
    while (out && (n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        fwrite(chunk, 1, n, out);
    fclose(fp);
    if (out)
        fclose(out);
    return text;
}

static void test_committed_sample_is_current(void) {
    const char *src = getenv("PN_SOURCE_DIR");
    PN_REQUIRE(src != NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/deploy/panther.properties", src);
    char *committed = read_all(path);
    PN_REQUIRE(committed != NULL);
    char *generated = capture(sample_writer, NULL);
    PN_REQUIRE(generated != NULL);
    int line = 1;
    const char *a = committed, *b = generated;
    while (*a && *a == *b) {
        line += *a == '\n';
        a++;
        b++;
    }
    PN_ASSERT_(*a == *b, CU_FALSE,
               "%s differs from pn_config_write_sample() at line %d; run "
               "scripts/gen-config-docs",
               S(path), line);
    free(generated);
    free(committed);
}

/* ---- misuse ------------------------------------------------------------ */

static void test_getter_misuse_aborts(void) {
    static const char *const cases[] = {"no.such.key", "store.sync"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fflush(NULL);
        pid_t pid = fork();
        PN_REQUIRE(pid >= 0);
        if (pid == 0) {
            pn_config_t *cfg = pn_config_new();
            /* store.sync is a bool: reading it as an int is a bug. */
            (void)pn_config_get_int(cfg, cases[i]);
            _exit(0);
        }
        int status = 0;
        PN_REQUIRE(waitpid(pid, &status, 0) == pid);
        PN_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    }
}

static const pn_test_case_t config_cases[] = {
    {"defaults", test_defaults},
    {"finalize derives dead letters and instance id", test_finalize_derives},
    {"finalize rules across keys", test_finalize_rules},
    {"durations, sizes, booleans, enums", test_value_syntax},
    {"bad values and unknown keys", test_bad_values},
    {"file: comments, whitespace, '=' in values", test_file_parsing},
    {"file errors name file and line", test_file_errors_name_line},
    {"env beats file, flags beat env", test_env_and_flags_override},
    {"unknown PANTHER_ variables are errors", test_env_errors},
    {"kafka.* pass-through", test_kafka_passthrough},
    {"print redacts secrets", test_print_redacts},
    {"markdown lists every key", test_markdown_lists_every_key},
    {"sample lists every key and loads", test_sample_lists_every_key_and_loads},
    {"deploy/panther.properties is generated", test_committed_sample_is_current},
    {"getter misuse aborts", test_getter_misuse_aborts},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"config", config_cases},
                                          {NULL, NULL}};
