#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "panther/log.h"
#include "pn_test.h"

/* ---- capturing lines into a file --------------------------------------- */

typedef struct capture {
    char *dir;
    char path[4096];
    int fd;
} capture_t;

static void capture_begin(capture_t *c) {
    c->dir = pn_test_tmpdir("log");
    PN_REQUIRE(c->dir != NULL);
    snprintf(c->path, sizeof c->path, "%s/out.jsonl", c->dir);
    c->fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    PN_REQUIRE(c->fd >= 0);
    pn_log_set_fd(c->fd);
}

/* Stops capturing; returns what was written (caller frees). */
static char *capture_end(capture_t *c) {
    pn_log_set_fd(STDERR_FILENO);
    pn_log_set_level(PN_LOG_INFO);
    close(c->fd);
    FILE *fp = fopen(c->path, "rb");
    PN_REQUIRE(fp != NULL);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    rewind(fp);
    char *text = malloc((size_t)size + 1);
    PN_REQUIRE(text != NULL);
    size_t n = fread(text, 1, (size_t)size, fp);
    fclose(fp);
    text[n] = '\0';
    return text;
}

static void capture_free(capture_t *c, char *text) {
    free(text);
    pn_test_rmdir(c->dir);
    free(c->dir);
}

/*
 * Parses every line of the captured file with Python's json module, strict
 * about UTF-8 and about NaN/Infinity; returns the number of valid objects
 * with ts, level and msg, or -1 if any line is bad.
 */
static int python_valid_lines(const capture_t *c) {
    static const char script[] =
        "import json,sys\n"
        "def bad(x): raise ValueError(x)\n"
        "n=0\n"
        "for raw in open(sys.argv[1],'rb'):\n"
        "    assert raw.endswith(b'\\n'), raw\n"
        "    o=json.loads(raw.decode('utf-8','strict'),parse_constant=bad)\n"
        "    assert isinstance(o,dict) and {'ts','level','msg'}<=o.keys(), o\n"
        "    n+=1\n"
        "print(n)\n";
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "python3 -c \"$PN_PY\" '%s'", c->path);
    PN_REQUIRE(setenv("PN_PY", script, 1) == 0);
    FILE *p = popen(cmd, "r");
    PN_REQUIRE(p != NULL);
    int n = -1;
    if (fscanf(p, "%d", &n) != 1)
        n = -1;
    int status = pclose(p);
    PN_ASSERT_(status == 0, CU_FALSE, "python3 json check exited %d", status);
    return status == 0 ? n : -1;
}

static int count_lines(const char *text) {
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/* Hides a buffer's bound from GCC, whose -Wformat-truncation would flag
 * pn_test.h's 512-byte failure message (a cut message is harmless). */
static inline const char *S(const char *p) {
    __asm__("" : "+r"(p));
    return p;
}

#define ASSERT_HAS(text, needle)                                             \
    PN_ASSERT_(strstr((text), (needle)) != NULL, CU_FALSE,                   \
               "output contains %s\n--- output:\n%s", #needle, S(text))

/* ---- tests ------------------------------------------------------------- */

static void test_escaping_nasty_strings(void) {
    capture_t c;
    capture_begin(&c);
    pn_log(PN_LOG_INFO, "%s",
           "q\"b\\s/n\nr\rt\tc\x01\x1f del\x7f end");
    /* Invalid UTF-8: lone continuation, overlong NUL, surrogate, cut
     * sequence, 0xFF, code point above U+10FFFF; then valid multi-byte. */
    pn_log(PN_LOG_INFO, "%s",
           "a\x80" "b\xC0\x80" "c\xED\xA0\x80" "d\xE2\x82" "e\xFF"
           "f\xF4\x90\x80\x80" "g \xE2\x82\xAC \xF0\x9F\x98\x80 \xC3\xA9");
    pn_log_kv(PN_LOG_WARN, "field \"keys\" too",
              PN_LOG_STR("we\"ird\nkey", "v\\al"),
              PN_LOG_STRN("bytes", "a\0b\xFE", 4));
    char *out = capture_end(&c);
    ASSERT_HAS(out, "\"msg\":\"q\\\"b\\\\s/n\\nr\\rt\\tc\\u0001\\u001f "
                    "del\\u007f end\"}\n");
    ASSERT_HAS(out, "\"msg\":\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd\\ufffdd"
                    "\\ufffd\\ufffde\\ufffdf\\ufffd\\ufffd\\ufffd\\ufffdg "
                    "\xE2\x82\xAC \xF0\x9F\x98\x80 \xC3\xA9\"}\n");
    ASSERT_HAS(out, "\"level\":\"warn\",\"msg\":\"field \\\"keys\\\" too\","
                    "\"we\\\"ird\\nkey\":\"v\\\\al\","
                    "\"bytes\":\"a\\u0000b\\ufffd\"}\n");
    PN_ASSERT_EQ_INT(count_lines(out), 3);
    PN_ASSERT_EQ_INT(python_valid_lines(&c), 3);
    capture_free(&c, out);
}

static void test_fields_and_format(void) {
    capture_t c;
    capture_begin(&c);
    pn_log_kv(PN_LOG_INFO, "restored partition",
              PN_LOG_TPO("inventory.commands", 3, 42),
              PN_LOG_UINT("events", UINT64_MAX), PN_LOG_INT("min", INT64_MIN),
              PN_LOG_DOUBLE("ratio", 0.5), PN_LOG_DOUBLE("nan", NAN),
              PN_LOG_DOUBLE("inf", -INFINITY), PN_LOG_BOOL("ready", true),
              PN_LOG_STR("none", NULL), PN_LOG_ERR(PN_ERR_KAFKA_FENCED));
    pn_log(PN_LOG_ERROR, "plain %d%%", 7);
    char *out = capture_end(&c);
    ASSERT_HAS(out, "\"level\":\"info\",\"msg\":\"restored partition\","
                    "\"topic\":\"inventory.commands\",\"partition\":3,"
                    "\"offset\":42,\"events\":18446744073709551615,"
                    "\"min\":-9223372036854775808,\"ratio\":0.5,"
                    "\"nan\":null,\"inf\":null,\"ready\":true,\"none\":null,"
                    "\"error\":\"KAFKA_FENCED\"}\n");
    ASSERT_HAS(out, "\"level\":\"error\",\"msg\":\"plain 7%\"}\n");
    /* {"ts":"2026-11-26T03:47:39.123Z",... */
    PN_REQUIRE(strncmp(out, "{\"ts\":\"", 7) == 0);
    const char *ts = out + 7;
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ\"";
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        bool ok = shape[i] == 'd' ? ts[i] >= '0' && ts[i] <= '9'
                                  : ts[i] == shape[i];
        PN_ASSERT_(ok, CU_FALSE, "timestamp %.26s matches %s at %zu", ts,
                   shape, i);
    }
    PN_ASSERT_EQ_INT(python_valid_lines(&c), 2);
    capture_free(&c, out);
}

static void test_level_filter(void) {
    capture_t c;
    capture_begin(&c);
    PN_ASSERT_EQ_INT(pn_log_get_level(), PN_LOG_INFO);
    pn_log(PN_LOG_DEBUG, "hidden debug");
    pn_log(PN_LOG_INFO, "shown info");
    pn_log_set_level(PN_LOG_WARN);
    PN_ASSERT(!pn_log_enabled(PN_LOG_INFO));
    PN_ASSERT(pn_log_enabled(PN_LOG_ERROR));
    pn_log(PN_LOG_INFO, "hidden info");
    pn_log_kv(PN_LOG_INFO, "hidden kv", PN_LOG_INT("x", 1));
    pn_log(PN_LOG_WARN, "shown warn");
    pn_log_kv(PN_LOG_ERROR, "shown error", PN_LOG_INT("x", 2));
    pn_log_set_level(PN_LOG_DEBUG);
    pn_log(PN_LOG_DEBUG, "shown debug");
    char *out = capture_end(&c);
    PN_ASSERT(strstr(out, "hidden") == NULL);
    ASSERT_HAS(out, "\"level\":\"info\",\"msg\":\"shown info\"");
    ASSERT_HAS(out, "\"level\":\"warn\",\"msg\":\"shown warn\"");
    ASSERT_HAS(out, "\"level\":\"error\",\"msg\":\"shown error\",\"x\":2");
    ASSERT_HAS(out, "\"level\":\"debug\",\"msg\":\"shown debug\"");
    PN_ASSERT_EQ_INT(count_lines(out), 4);
    capture_free(&c, out);
}

static void test_rdkafka_route(void) {
    capture_t c;
    capture_begin(&c);
    pn_log_rdkafka(7, "FETCH", "hidden at info");
    pn_log_rdkafka(6, "CONFWARN", "info line\n");
    pn_log_rdkafka(5, "NOTICE", "notice line");
    pn_log_rdkafka(4, "REQTMOUT", "warn line");
    pn_log_rdkafka(3, "FAIL", "sasl \"failed\"");
    pn_log_rdkafka(0, "EMERG", "emergency");
    pn_log_set_level(PN_LOG_DEBUG);
    pn_log_rdkafka(7, "FETCH", "debug line");
    char *out = capture_end(&c);
    PN_ASSERT(strstr(out, "hidden") == NULL);
    ASSERT_HAS(out, "\"level\":\"info\",\"msg\":\"info line\","
                    "\"component\":\"librdkafka\",\"facility\":\"CONFWARN\"}\n");
    ASSERT_HAS(out, "\"level\":\"info\",\"msg\":\"notice line\"");
    ASSERT_HAS(out, "\"level\":\"warn\",\"msg\":\"warn line\"");
    ASSERT_HAS(out, "\"level\":\"error\",\"msg\":\"sasl \\\"failed\\\"\","
                    "\"component\":\"librdkafka\",\"facility\":\"FAIL\"}\n");
    ASSERT_HAS(out, "\"level\":\"error\",\"msg\":\"emergency\"");
    ASSERT_HAS(out, "\"level\":\"debug\",\"msg\":\"debug line\"");
    PN_ASSERT_EQ_INT(count_lines(out), 6);
    PN_ASSERT_EQ_INT(python_valid_lines(&c), 6);
    capture_free(&c, out);
}

static void test_truncation_keeps_json_valid(void) {
    size_t big = 3 * PN_LOG_LINE_MAX;
    char *msg = malloc(big + 1);
    PN_REQUIRE(msg != NULL);
    /* Multi-byte characters and escapes, so cuts fall in awkward places. */
    for (size_t i = 0; i < big; i++)
        msg[i] = "\xE2\x82\xAC\"x\n"[i % 6];
    msg[big] = '\0';
    capture_t c;
    capture_begin(&c);
    pn_log(PN_LOG_INFO, "%s", msg);
    pn_log_kv(PN_LOG_INFO, "big field", PN_LOG_STR("a", "small"),
              PN_LOG_STR("big", msg), PN_LOG_INT("after", 1));
    pn_log_kv(PN_LOG_INFO, msg, PN_LOG_INT("dropped", 1));
    /* Many small fields: the one that does not fit is dropped whole. */
    pn_log_field_t many[2000];
    for (size_t i = 0; i < 2000; i++)
        many[i] = PN_LOG_INT("field_with_a_long_name", (int64_t)i);
    pn_log_fields(PN_LOG_INFO, "many fields", many, 2000);
    char *out = capture_end(&c);
    PN_ASSERT_EQ_INT(count_lines(out), 4);
    for (const char *p = out; *p;) {
        const char *nl = strchr(p, '\n');
        PN_REQUIRE(nl != NULL);
        size_t len = (size_t)(nl - p) + 1;
        PN_ASSERT(len <= PN_LOG_LINE_MAX);
        PN_ASSERT(len > PN_LOG_LINE_MAX - 96);
        PN_ASSERT(strncmp(nl - 18, ",\"truncated\":true}", 18) == 0);
        p = nl + 1;
    }
    ASSERT_HAS(out, "\"a\":\"small\",\"big\":\"");
    PN_ASSERT(strstr(out, "\"after\"") == NULL);
    PN_ASSERT(strstr(out, "\"dropped\"") == NULL);
    PN_ASSERT_EQ_INT(python_valid_lines(&c), 4);
    capture_free(&c, out);
    free(msg);
}

typedef struct worker_arg {
    int id;
    int lines;
} worker_arg_t;

static void *log_thread(void *opaque) {
    worker_arg_t *arg = opaque;
    char pad[6000];
    for (int i = 0; i < arg->lines; i++) {
        /* Some lines longer than PIPE_BUF, to catch interleaving. */
        size_t n = (size_t)(i * 37 + arg->id * 101) % sizeof pad;
        memset(pad, 'a' + arg->id, n);
        pad[n] = '\0';
        pn_log_kv(PN_LOG_INFO, "from thread", PN_LOG_INT("thread", arg->id),
                  PN_LOG_INT("i", i), PN_LOG_STR("pad", pad));
    }
    return NULL;
}

/* Drains the read end of a pipe slowly into the capture file, so writers
 * find the pipe full and the kernel splits their writes. */
typedef struct drain {
    int rfd, out_fd;
} drain_t;

static void *drain_pipe(void *opaque) {
    drain_t *d = opaque;
    char chunk[1024];
    ssize_t n;
    while ((n = read(d->rfd, chunk, sizeof chunk)) > 0) {
        if (write(d->out_fd, chunk, (size_t)n) != n)
            break;
        usleep(50);
    }
    return NULL;
}

static void test_threads_write_whole_lines(void) {
    enum { THREADS = 8, LINES = 200 };
    pthread_t tids[THREADS], reader;
    worker_arg_t args[THREADS];
    capture_t c;
    capture_begin(&c);
    /* A small pipe, like stderr under a container runtime. */
    int fds[2];
    PN_REQUIRE(pipe(fds) == 0);
    (void)fcntl(fds[1], F_SETPIPE_SZ, 4096);
    drain_t d = {fds[0], c.fd};
    PN_REQUIRE(pthread_create(&reader, NULL, drain_pipe, &d) == 0);
    pn_log_set_fd(fds[1]);
    for (int t = 0; t < THREADS; t++) {
        args[t] = (worker_arg_t){t, LINES};
        PN_REQUIRE(pthread_create(&tids[t], NULL, log_thread, &args[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(tids[t], NULL);
    pn_log_set_fd(c.fd);
    close(fds[1]);
    pthread_join(reader, NULL);
    close(fds[0]);
    char *out = capture_end(&c);
    PN_ASSERT_EQ_INT(count_lines(out), THREADS * LINES);
    PN_ASSERT_EQ_INT(python_valid_lines(&c), THREADS * LINES);
    capture_free(&c, out);
}

static void test_errno_and_levels(void) {
    capture_t c;
    capture_begin(&c);
    errno = ERANGE;
    pn_log(PN_LOG_INFO, "keeps errno");
    PN_ASSERT_EQ_INT(errno, ERANGE);
    char *out = capture_end(&c);
    capture_free(&c, out);

    pn_log_level_t level;
    PN_REQUIRE_OK(pn_log_level_parse("WARNING", &level));
    PN_ASSERT_EQ_INT(level, PN_LOG_WARN);
    PN_REQUIRE_OK(pn_log_level_parse("debug", &level));
    PN_ASSERT_EQ_INT(level, PN_LOG_DEBUG);
    PN_ASSERT_EQ_INT(pn_log_level_parse("loud", &level), PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_STR(pn_log_level_name(PN_LOG_ERROR), "error");
    PN_ASSERT_EQ_STR(pn_log_level_name((pn_log_level_t)42), "?");
}

static const pn_test_case_t log_cases[] = {
    {"escaping of nasty strings", test_escaping_nasty_strings},
    {"fields and line format", test_fields_and_format},
    {"level filter", test_level_filter},
    {"librdkafka routing", test_rdkafka_route},
    {"truncation keeps JSON valid", test_truncation_keeps_json_valid},
    {"threads write whole lines", test_threads_write_whole_lines},
    {"errno kept, level names", test_errno_and_levels},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"log", log_cases}, {NULL, NULL}};
