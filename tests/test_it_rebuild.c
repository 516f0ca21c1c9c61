/* panther rebuild against the real broker: the rebuilt store holds the same
 * state as the worker's own, carries checkpoints a worker continues from
 * (nothing left to restore), and is never swapped under a running worker. */
#include <glob.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "it_support.h"
#include "panther/engine.h"
#include "pn_test.h"

const int pn_test_needs_broker = 1;

#define STREAMS 60
#define COMMANDS 3000

typedef struct opened {
    pn_codec_t *codec;
    pn_store_t *store;
    pn_engine_t *engine;
} opened_t;

static void open_store(const char *path, opened_t *o) {
    char err[512];
    pn_codec_config_t cc = {0};
    PN_REQUIRE_OK(pn_codec_new(&cc, &o->codec, err, sizeof err));
    pn_store_options_t so = {.path = path};
    PN_REQUIRE_OK(pn_store_open(&so, &o->store, err, sizeof err));
    pn_engine_options_t eo = {.store = o->store, .codec = o->codec};
    PN_REQUIRE_OK(pn_engine_new(&eo, &o->engine, err, sizeof err));
}

static void close_store(opened_t *o) {
    pn_engine_free(o->engine);
    pn_store_close(o->store);
    pn_codec_free(o->codec);
}

/* Every stream of the workload has the same state in both stores, and the
 * checkpoints agree. Returns the number of streams with events. */
static int compare_stores(const char *a_path, const char *b_path) {
    opened_t a, b;
    open_store(a_path, &a);
    open_store(b_path, &b);
    int with_events = 0;
    char err[512];
    for (int s = 0; s < STREAMS; s++) {
        char key[64];
        int len = snprintf(key, sizeof key, "SKU-%d|DC-%d", s / 3, s % 3);
        pn_state_t sa, sb;
        pn_state_init(&sa);
        pn_state_init(&sb);
        pn_str_t k = {key, (size_t)len};
        PN_REQUIRE_OK(pn_engine_read_state(a.engine, k, &sa, err, sizeof err));
        PN_REQUIRE_OK(pn_engine_read_state(b.engine, k, &sb, err, sizeof err));
        PN_ASSERT_(pn_state_eq(&sa, &sb), CU_FALSE,
                   "%s: worker v%lld %lld/%lld, rebuilt v%lld %lld/%lld", key,
                   (long long)sa.version, (long long)sa.on_hand,
                   (long long)sa.reserved, (long long)sb.version,
                   (long long)sb.on_hand, (long long)sb.reserved);
        with_events += sa.version > 0;
        pn_state_clear(&sa);
        pn_state_clear(&sb);
    }
    for (int32_t p = 0; p < 3; p++) {
        int64_t ca, cb;
        PN_REQUIRE_OK(pn_engine_checkpoint(a.engine, p, &ca));
        PN_REQUIRE_OK(pn_engine_checkpoint(b.engine, p, &cb));
        PN_ASSERT_EQ_INT(ca, cb);
    }
    close_store(&a);
    close_store(&b);
    return with_events;
}

/* Whether a line of the log holds both texts (b may be NULL). */
static void test_rebuild_matches_worker_store(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "rebuild", 3, 3));
    pn_it_sender_t *sender = pn_it_send_async(&it, 7, STREAMS, COMMANDS, 0);
    pid_t w = pn_it_worker_start(&it, "w1", NULL);
    PN_ASSERT_EQ_INT(pn_it_send_wait(sender), 0);
    pn_audit_report_t report;
    pn_it_audit(&it, 120000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    PN_ASSERT_EQ_INT(report.outcomes, COMMANDS);
    pn_audit_report_free(&report);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);

    char worker_store[4200], rebuilt[4200], set_store[4300], set_events[300];
    snprintf(worker_store, sizeof worker_store, "%s/store-w1", it.dir);
    snprintf(rebuilt, sizeof rebuilt, "%s/rebuilt", it.dir);
    snprintf(set_store, sizeof set_store, "store.path=%s", rebuilt);
    snprintf(set_events, sizeof set_events, "topics.events=%s", it.events);
    const char *args[] = {"rebuild", "--bootstrap", it.bootstrap, "--set",
                          set_events, "--set", set_store, NULL};
    PN_ASSERT_EQ_INT(pn_it_run_panther(&it, args), 0);
    PN_ASSERT(compare_stores(worker_store, rebuilt) > STREAMS / 2);

    /* Again on the same path: refused without --force. */
    PN_ASSERT_EQ_INT(pn_it_run_panther(&it, args), 2);

    /* A worker on the rebuilt store has nothing left to restore, and goes
     * on where the other stopped. */
    char set_path[4300];
    snprintf(set_path, sizeof set_path, "store.path=%s", rebuilt);
    const char *extra[] = {set_path, NULL};
    w = pn_it_worker_start(&it, "w2", extra);
    PN_ASSERT(pn_it_worker_wait_ready(&it, "w2", 60000));
    char log[4300];
    snprintf(log, sizeof log, "%s/w2.log", it.dir);
    const char *nothing_restored[] = {"\"msg\":\"restore finished\"",
                                      "\"events_applied\":0,", NULL};
    PN_ASSERT(pn_it_log_count(log, nothing_restored) >= 1);
    pn_it_sender_t *more = pn_it_send_async(&it, 8, STREAMS, 500, 0);
    PN_ASSERT_EQ_INT(pn_it_send_wait(more), 0);
    pn_it_audit(&it, 120000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    PN_ASSERT_EQ_INT(report.outcomes, COMMANDS + 500);
    pn_audit_report_free(&report);

    /* --force while that worker runs: its store is locked, nothing moves. */
    const char *forced[] = {"rebuild", "--force", "--bootstrap", it.bootstrap,
                            "--set", set_events, "--set", set_store, NULL};
    PN_ASSERT_EQ_INT(pn_it_run_panther(&it, forced), 1);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);

    /* Stopped: --force rebuilds and keeps the old store aside, which
     * agrees with the new one. */
    PN_ASSERT_EQ_INT(pn_it_run_panther(&it, forced), 0);
    char pattern[4400];
    snprintf(pattern, sizeof pattern, "%s.old-*", rebuilt);
    glob_t g;
    PN_REQUIRE(glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc == 1);
    PN_ASSERT(compare_stores(g.gl_pathv[0], rebuilt) > STREAMS / 2);
    globfree(&g);
    char rebuild_tmp[4300];
    snprintf(rebuild_tmp, sizeof rebuild_tmp, "%s.rebuild", rebuilt);
    struct stat st;
    PN_ASSERT(stat(rebuild_tmp, &st) != 0);
    pn_it_cleanup(&it);
}

static const pn_test_case_t cases[] = {
    {"rebuild matches the worker's store", test_rebuild_matches_worker_store},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"rebuild", cases}, {NULL, NULL}};
