/* The engine over a real store and codec: batches, commit, discard,
 * idempotency window, restore from events, snapshot rebuild. */
#include <stdlib.h>
#include <string.h>

#include "panther/engine.h"
#include "pn_test.h"
#include "store_internal.h" /* test hooks of the store writer */
#include "store_nowait.h"

typedef struct fixture {
    char *dir;
    pn_store_t *store;
    pn_codec_t *codec;
    pn_engine_t *engine;
    pn_engine_options_t opts;
    uint64_t window_commands; /* the store's idempotency window; 0 and 0 */
    int64_t window_ms;        /* = the defaults */
    int64_t retention_ms;     /* the store's event retention */
} fixture_t;

static void open_engine(fixture_t *f, uint32_t fold_version) {
    char err[512];
    pn_store_options_t so = {.path = f->dir,
                             .fold_format_version = fold_version,
                             .dedup_window_commands = f->window_commands,
                             .dedup_window_ms = f->window_ms,
                             .event_retention_ms = f->retention_ms};
    PN_REQUIRE_OK(pn_store_open(&so, &f->store, err, sizeof err));
    f->opts.store = f->store;
    f->opts.codec = f->codec;
    PN_REQUIRE_OK(pn_engine_new(&f->opts, &f->engine, err, sizeof err));
}

static void close_engine(fixture_t *f) {
    pn_engine_free(f->engine);
    pn_store_close(f->store);
    f->engine = NULL;
    f->store = NULL;
}

static void setup_window(fixture_t *f, const pn_engine_options_t *opts,
                         uint64_t window_commands, int64_t window_ms) {
    memset(f, 0, sizeof *f);
    if (opts)
        f->opts = *opts;
    f->window_commands = window_commands;
    f->window_ms = window_ms;
    f->dir = pn_test_tmpdir("engine");
    PN_REQUIRE(f->dir != NULL);
    char err[512];
    pn_codec_config_t cc = {0};
    PN_REQUIRE_OK(pn_codec_new(&cc, &f->codec, err, sizeof err));
    open_engine(f, 0);
}

static void setup(fixture_t *f, const pn_engine_options_t *opts) {
    setup_window(f, opts, 0, 0);
}

static void teardown(fixture_t *f) {
    close_engine(f);
    pn_codec_free(f->codec);
    pn_test_rmdir(f->dir);
    free(f->dir);
}

static pn_command_t cmd(pn_command_type_t type, const char *id,
                        const char *order, const char *sku, int32_t qty,
                        int64_t at) {
    pn_command_t c = {0};
    c.type = type;
    c.id = pn_str_c(id);
    c.order_id = order ? pn_str_c(order) : PN_STR_NULL;
    c.sku_id = pn_str_c(sku);
    c.node_id = pn_str_c("DC1");
    c.by = pn_str_c("test");
    c.has_quantity = qty >= -1000000;
    c.quantity = c.has_quantity ? qty : 0;
    c.at_ms = at;
    return c;
}

#define NOQTY (-2000000)

static pn_engine_result_t run(fixture_t *f, pn_command_t c) {
    pn_engine_result_t r;
    char err[512];
    PN_REQUIRE_OK(pn_engine_execute(f->engine, 0, &c, &r, err, sizeof err));
    return r;
}

static void commit(fixture_t *f, int64_t offset) {
    char err[512];
    pn_engine_checkpoint_t cp = {0, offset};
    PN_REQUIRE_OK(pn_engine_commit(f->engine, &cp, 1, err, sizeof err));
}

static pn_state_t read_state(fixture_t *f, const char *key) {
    pn_state_t st;
    pn_state_init(&st);
    char err[512];
    PN_REQUIRE_OK(pn_engine_read_state(f->engine, pn_str_c(key), &st, err,
                                       sizeof err));
    return st;
}

static void test_batch_sees_its_own_effects(void) {
    fixture_t f;
    setup(&f, NULL);
    pn_engine_result_t r = run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 10, 1));
    PN_ASSERT(r.has_event);
    PN_ASSERT_EQ_INT(r.event_version, 1);
    PN_ASSERT_EQ_PNSTR(r.stream_key, "S1|DC1");
    PN_ASSERT_EQ_PNSTR(r.outcome_key, "S1|DC1");
    r = run(&f, cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 7, 2));
    PN_ASSERT_EQ_INT(r.outcome.status, PN_STATUS_ACCEPTED);
    PN_ASSERT_EQ_INT(r.outcome.available, 3);
    PN_ASSERT_EQ_PNSTR(r.outcome_key, "o1");
    r = run(&f, cmd(PN_CMD_RESERVE, "c3", "o2", "S1", 4, 3));
    PN_ASSERT_EQ_INT(r.outcome.status, PN_STATUS_REJECTED);
    PN_ASSERT_EQ_INT(r.outcome.reason, PN_REASON_INSUFFICIENT_INVENTORY);
    PN_ASSERT(!r.has_event);
    PN_ASSERT(r.outcome_len > 0 && r.outcome_value != NULL);
    /* A repeated id inside the same batch is a duplicate. */
    r = run(&f, cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 7, 4));
    PN_ASSERT(r.outcome.duplicate);
    PN_ASSERT(!r.has_event);
    PN_ASSERT_EQ_INT(r.outcome.version, 2);
    PN_ASSERT_EQ_INT(pn_engine_batch_commands(f.engine), 4);
    commit(&f, 2);
    PN_ASSERT_EQ_INT(pn_engine_batch_commands(f.engine), 0);
    pn_state_t st = read_state(&f, "S1|DC1");
    PN_ASSERT_EQ_INT(st.version, 2);
    PN_ASSERT_EQ_INT(st.on_hand, 10);
    PN_ASSERT_EQ_INT(st.reserved, 7);
    pn_state_clear(&st);
    teardown(&f);
}

static void test_commit_survives_reopen(void) {
    fixture_t f;
    setup(&f, NULL);
    run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 10, 1));
    run(&f, cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 3, 2));
    commit(&f, 42);
    close_engine(&f);
    open_engine(&f, 0);
    pn_state_t st = read_state(&f, "S1|DC1");
    PN_ASSERT_EQ_INT(st.version, 2);
    PN_ASSERT_EQ_INT(st.reserved, 3);
    PN_ASSERT_EQ_INT(pn_state_held(&st, pn_str_c("o1")), 3);
    pn_state_clear(&st);
    int64_t off;
    PN_REQUIRE_OK(pn_engine_checkpoint(f.engine, 0, &off));
    PN_ASSERT_EQ_INT(off, 42);
    /* The idempotency index survived too. */
    pn_engine_result_t r = run(&f, cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 3, 9));
    PN_ASSERT(r.outcome.duplicate);
    PN_ASSERT_EQ_INT(r.outcome.version, 2);
    teardown(&f);
}

static void test_discard_leaves_no_trace(void) {
    fixture_t f;
    setup(&f, NULL);
    run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 10, 1));
    commit(&f, 1);
    pn_state_t before = read_state(&f, "S1|DC1");
    run(&f, cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 5, 2));
    run(&f, cmd(PN_CMD_UPDATE, "c3", NULL, "S2", 5, 3));
    pn_engine_discard(f.engine);
    pn_state_t after = read_state(&f, "S1|DC1");
    PN_ASSERT(pn_state_eq(&before, &after));
    pn_state_t s2 = read_state(&f, "S2|DC1");
    PN_ASSERT_EQ_INT(s2.version, 0);
    int64_t off;
    PN_REQUIRE_OK(pn_engine_checkpoint(f.engine, 0, &off));
    PN_ASSERT_EQ_INT(off, 1);
    /* c2 was discarded: running it again is not a duplicate. */
    pn_engine_result_t r = run(&f, cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 5, 2));
    PN_ASSERT(!r.outcome.duplicate);
    PN_ASSERT_EQ_INT(r.event_version, 2);
    pn_engine_discard(f.engine);
    /* Nothing of it reached the store either. */
    close_engine(&f);
    open_engine(&f, 0);
    pn_state_t reopened = read_state(&f, "S1|DC1");
    PN_ASSERT(pn_state_eq(&before, &reopened));
    pn_state_clear(&before);
    pn_state_clear(&after);
    pn_state_clear(&s2);
    pn_state_clear(&reopened);
    teardown(&f);
}

static void test_window_by_count_and_time(void) {
    fixture_t f;
    setup_window(&f, NULL, 3, 1000);
    run(&f, cmd(PN_CMD_UPDATE, "first", NULL, "S1", 10, 0));
    /* Three more commands of the partition, all within 1000 ms: still a
     * duplicate by both rules. */
    run(&f, cmd(PN_CMD_UPDATE, "a", NULL, "S2", 1, 10));
    run(&f, cmd(PN_CMD_UPDATE, "b", NULL, "S2", 2, 20));
    commit(&f, 1);
    pn_engine_result_t r = run(&f, cmd(PN_CMD_UPDATE, "first", NULL, "S1", 99, 30));
    PN_ASSERT(r.outcome.duplicate);
    PN_ASSERT_EQ_INT(r.outcome.on_hand, 10);
    /* Past the count but inside the time window: still remembered. */
    run(&f, cmd(PN_CMD_UPDATE, "c", NULL, "S2", 3, 40));
    run(&f, cmd(PN_CMD_UPDATE, "d", NULL, "S2", 4, 50));
    r = run(&f, cmd(PN_CMD_UPDATE, "first", NULL, "S1", 99, 60));
    PN_ASSERT(r.outcome.duplicate);
    /* Past both: executed again. */
    run(&f, cmd(PN_CMD_UPDATE, "e", NULL, "S2", 5, 2000));
    r = run(&f, cmd(PN_CMD_UPDATE, "first", NULL, "S1", 99, 2001));
    PN_ASSERT(!r.outcome.duplicate);
    PN_ASSERT_EQ_INT(r.outcome.on_hand, 99);
    commit(&f, 2);
    teardown(&f);
}

static int64_t fixed_clock(void *opaque) { return *(const int64_t *)opaque; }

/* One command stamped a century ahead must not age every entry out of the
 * window: with a clock, a time more than an hour past it does not move the
 * window's clock. Without one, the entry below would be forgotten. */
static void test_window_clock_ignores_far_future_times(void) {
    const int64_t now = 1767225600000LL, hour = 3600 * 1000LL;
    const int64_t century = 100 * 365 * 24 * hour;
    for (int with_clock = 0; with_clock <= 1; with_clock++) {
        int64_t clock = now;
        pn_engine_options_t o = {.clock_ms = with_clock ? fixed_clock : NULL,
                                 .clock_opaque = &clock};
        fixture_t f;
        setup_window(&f, &o, 3, 24 * hour);
        run(&f, cmd(PN_CMD_UPDATE, "first", NULL, "S1", 10, now));
        run(&f, cmd(PN_CMD_UPDATE, "future", NULL, "S2", 1, now + century));
        for (int i = 0; i < 5; i++) { /* past the window by count */
            char id[8];
            snprintf(id, sizeof id, "c%d", i);
            run(&f, cmd(PN_CMD_UPDATE, id, NULL, "S2", 2 + i, now + i));
        }
        commit(&f, 1);
        /* An hour later, the resend is within 24 h of command time. */
        pn_engine_result_t r =
            run(&f, cmd(PN_CMD_UPDATE, "first", NULL, "S1", 99, now + hour));
        PN_ASSERT_EQ_INT(r.outcome.duplicate, with_clock);
        /* A day later by the clock, times move the window on again (up to
         * an hour ahead of it). */
        clock = now + 24 * hour;
        run(&f, cmd(PN_CMD_UPDATE, "soon", NULL, "S2", 1, now + 25 * hour));
        for (int i = 0; i < 5; i++) {
            char id[8];
            snprintf(id, sizeof id, "d%d", i);
            run(&f, cmd(PN_CMD_UPDATE, id, NULL, "S2", 2 + i, now + 25 * hour));
        }
        r = run(&f, cmd(PN_CMD_UPDATE, "c0", NULL, "S2", 99, now + 25 * hour));
        PN_ASSERT(!r.outcome.duplicate); /* 25 h after it: forgotten */
        commit(&f, 2);
        teardown(&f);
    }
}

static bool store_has_dedup(fixture_t *f, const char *stream, const char *id) {
    pn_dedup_entry_t e;
    bool found;
    PN_REQUIRE_OK(pn_store_get_dedup(f->store, pn_str_c(stream), pn_str_c(id),
                                     &e, &found));
    return found;
}

/*
 * An entry outside the window is not a duplicate any more even while it is
 * still stored (compaction has not run), and compaction then removes it
 * while keeping the entries inside the window by count or by time; a
 * restart keeps the watermarks compaction uses.
 */
static void test_window_expiry_before_and_after_compaction(void) {
    fixture_t f;
    setup_window(&f, NULL, 3, 1000);
    char err[512];
    run(&f, cmd(PN_CMD_UPDATE, "old", NULL, "S1", 10, 0));
    commit(&f, 1);
    /* Four later commands, 5 s later: "old" is 4 behind and 5000 ms older
     * than the latest, outside both bounds. "t1" stays inside by time
     * only (4 behind), "c2" inside by count only (4900 ms older). */
    run(&f, cmd(PN_CMD_UPDATE, "t1", NULL, "S2", 1, 4500));
    run(&f, cmd(PN_CMD_UPDATE, "c2", NULL, "S4", 2, 100));
    run(&f, cmd(PN_CMD_UPDATE, "c3", NULL, "S2", 3, 4700));
    run(&f, cmd(PN_CMD_UPDATE, "c4", NULL, "S3", 4, 5000));
    commit(&f, 2);
    PN_REQUIRE_OK(pn_engine_sync(f.engine, err, sizeof err));
    /* Still stored, but no longer a duplicate. */
    PN_ASSERT(store_has_dedup(&f, "S1|DC1", "old"));
    pn_engine_result_t r = run(&f, cmd(PN_CMD_UPDATE, "old", NULL, "S1", 7, 5000));
    PN_ASSERT(!r.outcome.duplicate);
    PN_ASSERT_EQ_INT(r.outcome.on_hand, 7);
    pn_engine_discard(f.engine);
    /* A restart: the watermarks come back from the store's metadata. */
    close_engine(&f);
    open_engine(&f, 0);
    pn_store__test_compact_dedup(f.store);
    PN_ASSERT(!store_has_dedup(&f, "S1|DC1", "old"));
    PN_ASSERT(store_has_dedup(&f, "S2|DC1", "t1")); /* by time (500 ms) */
    PN_ASSERT(store_has_dedup(&f, "S4|DC1", "c2")); /* by count (3 behind) */
    r = run(&f, cmd(PN_CMD_UPDATE, "t1", NULL, "S2", 9, 5000));
    PN_ASSERT(r.outcome.duplicate);
    r = run(&f, cmd(PN_CMD_UPDATE, "old", NULL, "S1", 7, 5000));
    PN_ASSERT(!r.outcome.duplicate);
    commit(&f, 3);
    teardown(&f);
}

static int count_events(fixture_t *f, const char *stream);

/* Maintenance drops the events snapshots cover and that are older than
 * the retention, a bounded amount per call, until a pass is done; the
 * state is the same afterwards, also after a reopen. */
static void test_maintain_expires_events(void) {
    fixture_t f;
    memset(&f, 0, sizeof f);
    fixture_t *fp = &f;
    setup(fp, NULL);
    close_engine(fp);
    fp->retention_ms = 1000;
    open_engine(fp, 0);
    char err[512];
    char sku[16];
    for (int s = 0; s < 20; s++) {
        snprintf(sku, sizeof sku, "M%d", s);
        for (int v = 1; v <= 10; v++) {
            char id[32];
            snprintf(id, sizeof id, "m-%d-%d", s, v);
            run(fp, cmd(PN_CMD_UPDATE, id, NULL, sku, v, v));
        }
    }
    commit(fp, 1);
    /* Nothing old enough yet (command times 1..10, now 500). */
    pn_engine_maintenance_t m;
    PN_REQUIRE_OK(pn_engine_maintain(fp->engine, 500, 0, &m, err, sizeof err));
    PN_ASSERT_EQ_INT(m.events_deleted, 0);
    PN_ASSERT(m.pass_done);
    uint64_t total = 0;
    int calls = 0;
    do {
        PN_REQUIRE_OK(pn_engine_maintain(fp->engine, 5000, 16, &m, err,
                                         sizeof err));
        PN_ASSERT(m.events_deleted <= 16);
        total += m.events_deleted;
        PN_REQUIRE(++calls < 1000);
    } while (!m.pass_done);
    PN_ASSERT_EQ_INT(total, 200);
    PN_ASSERT(calls > 200 / 16);
    pn_engine_stats_t st;
    pn_engine_get_stats(fp->engine, &st);
    PN_ASSERT_EQ_INT(st.events_expired, 200);
    PN_ASSERT_EQ_INT(count_events(fp, "M3|DC1"), 0);
    close_engine(fp);
    open_engine(fp, 0);
    pn_state_t state = read_state(fp, "M3|DC1");
    PN_ASSERT_EQ_INT(state.version, 10);
    PN_ASSERT_EQ_INT(state.on_hand, 10);
    pn_state_clear(&state);
    pn_engine_result_t r = run(fp, cmd(PN_CMD_UPDATE, "m-3-11", NULL, "M3", 11, 11));
    PN_ASSERT_EQ_INT(r.event_version, 11);
    commit(fp, 2);
    teardown(fp);
}

/* A snapshot of another fold format is rebuilt from the stored events; if
 * the first of them expired, the store says so and what to do, rather than
 * failing in evolve with no message. */
static void test_stale_snapshot_with_expired_events(void) {
    fixture_t f;
    setup(&f, NULL);
    close_engine(&f);
    f.retention_ms = 1000;
    open_engine(&f, 0);
    for (int v = 1; v <= 10; v++) {
        char id[16];
        snprintf(id, sizeof id, "x%d", v);
        run(&f, cmd(PN_CMD_UPDATE, id, NULL, "X", v, v <= 5 ? v : 9000 + v));
    }
    commit(&f, 1);
    char err[512];
    pn_engine_maintenance_t m;
    do
        PN_REQUIRE_OK(pn_engine_maintain(f.engine, 5000, 0, &m, err, sizeof err));
    while (!m.pass_done);
    PN_ASSERT_EQ_INT(count_events(&f, "X|DC1"), 5); /* 6..10 are left */
    close_engine(&f);
    open_engine(&f, 77); /* another fold format */
    pn_command_t c = cmd(PN_CMD_UPDATE, "x11", NULL, "X", 11, 9100);
    pn_engine_result_t r;
    pn_err_t e = pn_engine_execute(f.engine, 0, &c, &r, err, sizeof err);
    PN_ASSERT_EQ_INT(e, PN_ERR_STORE_VERSION);
    PN_ASSERT_(strstr(err, "X|DC1") && strstr(err, "from version 6") &&
                   strstr(err, "remove the local store"),
               CU_FALSE, "error: %.400s", err);
    pn_engine_discard(f.engine);
    teardown(&f);
}

static pn_err_t count_event(void *opaque, int64_t version, const void *data,
                            size_t len) {
    (void)version;
    (void)data;
    (void)len;
    (*(int *)opaque)++;
    return PN_ERR_OK;
}

static int count_events(fixture_t *f, const char *stream) {
    int n = 0;
    PN_REQUIRE_OK(pn_store_scan_events(f->store, pn_str_c(stream), 0,
                                       count_event, &n));
    return n;
}

static void test_invalid_commands(void) {
    fixture_t f;
    setup(&f, NULL);
    pn_engine_result_t r = run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S|1", 10, 1));
    PN_ASSERT_EQ_INT(r.outcome.reason, PN_REASON_INVALID_COMMAND);
    PN_ASSERT(r.stream_key.ptr == NULL);
    PN_ASSERT_EQ_PNSTR(r.outcome_key, "S|1|DC1");
    r = run(&f, cmd(PN_CMD_RESERVE, "", "o1", "S1", 1, 1));
    PN_ASSERT_EQ_INT(r.outcome.reason, PN_REASON_INVALID_COMMAND);
    PN_ASSERT_EQ_PNSTR(r.outcome_key, "o1");
    /* A rejected command with a usable id is remembered like any other. */
    r = run(&f, cmd(PN_CMD_RESERVE, "c2", "", "S1", 1, 1));
    PN_ASSERT_EQ_INT(r.outcome.reason, PN_REASON_INVALID_COMMAND);
    r = run(&f, cmd(PN_CMD_RESERVE, "c2", "", "S1", 1, 1));
    PN_ASSERT(r.outcome.duplicate);
    PN_ASSERT_EQ_INT(r.outcome.reason, PN_REASON_INVALID_COMMAND);
    commit(&f, 0);
    teardown(&f);
}

/* Events made by one engine, replayed into another, rebuild the same state. */
static void test_restore_from_events(void) {
    fixture_t a, b;
    setup(&a, NULL);
    setup(&b, NULL);
    pn_command_t cmds[] = {
        cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 10, 1),
        cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 4, 2),
        cmd(PN_CMD_RESERVE, "c3", "o2", "S1", 5, 3),
        cmd(PN_CMD_SHIP, "c4", "o1", "S1", NOQTY, 4),
        cmd(PN_CMD_CANCEL, "c5", "o2", "S1", 2, 5),
    };
    char err[512];
    int64_t offset = 100;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        pn_engine_result_t r = run(&a, cmds[i]);
        PN_REQUIRE(r.has_event);
        bool applied;
        PN_REQUIRE_OK(pn_engine_apply_event(b.engine, 0, offset++, r.event_value,
                                            r.event_len, &applied, err,
                                            sizeof err));
        PN_ASSERT(applied);
        /* Replaying the same event again is skipped. */
        PN_REQUIRE_OK(pn_engine_apply_event(b.engine, 0, offset - 1,
                                            r.event_value, r.event_len,
                                            &applied, err, sizeof err));
        PN_ASSERT(!applied);
    }
    commit(&a, 5);
    PN_REQUIRE_OK(pn_engine_commit(b.engine, NULL, 0, err, sizeof err));
    pn_state_t sa = read_state(&a, "S1|DC1"), sb = read_state(&b, "S1|DC1");
    PN_ASSERT(pn_state_eq(&sa, &sb));
    PN_ASSERT_EQ_INT(sb.version, 5);
    PN_ASSERT_EQ_INT(sb.on_hand, 6);
    PN_ASSERT_EQ_INT(sb.reserved, 3);
    int64_t off;
    PN_REQUIRE_OK(pn_engine_checkpoint(b.engine, 0, &off));
    PN_ASSERT_EQ_INT(off, 105);
    /* The restored engine knows the ids of commands that made events. */
    pn_engine_result_t r = run(&b, cmds[1]);
    PN_ASSERT(r.outcome.duplicate);
    PN_ASSERT_EQ_INT(r.outcome.version, 2);
    PN_ASSERT_EQ_INT(r.outcome.reserved, 4);
    pn_engine_discard(b.engine);
    pn_state_clear(&sa);
    pn_state_clear(&sb);
    teardown(&a);
    teardown(&b);
}

static void test_restore_detects_gap(void) {
    fixture_t a, b;
    setup(&a, NULL);
    setup(&b, NULL);
    run(&a, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 10, 1));
    pn_engine_result_t r2 = run(&a, cmd(PN_CMD_UPDATE, "c2", NULL, "S1", 11, 2));
    char err[512] = "";
    bool applied;
    PN_ASSERT_EQ_INT(pn_engine_apply_event(b.engine, 0, 7, r2.event_value,
                                           r2.event_len, &applied, err,
                                           sizeof err),
                     PN_ERR_STATE);
    PN_ASSERT(!applied);
    PN_ASSERT(strstr(err, "S1|DC1") != NULL);
    pn_engine_discard(a.engine);
    pn_engine_discard(b.engine);
    teardown(&a);
    teardown(&b);
}

/* A snapshot of another fold format version is dropped and the state is
 * rebuilt from the stored events. */
static void test_stale_snapshot_rebuilt(void) {
    fixture_t f;
    setup(&f, NULL);
    run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 10, 1));
    run(&f, cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 4, 2));
    commit(&f, 2);
    run(&f, cmd(PN_CMD_SHIP, "c3", "o1", "S1", 1, 3));
    commit(&f, 3);
    pn_state_t expected = read_state(&f, "S1|DC1");
    close_engine(&f);
    open_engine(&f, PN_FOLD_FORMAT_VERSION + 1);
    pn_state_t rebuilt = read_state(&f, "S1|DC1");
    PN_ASSERT(pn_state_eq(&expected, &rebuilt));
    PN_ASSERT_EQ_INT(rebuilt.version, 3);
    /* The next batch that touches it writes a snapshot of the new format. */
    run(&f, cmd(PN_CMD_UPDATE, "c4", NULL, "S1", 20, 4));
    commit(&f, 4);
    pn_snapshot_status_t status;
    pn_state_t snap;
    pn_state_init(&snap);
    PN_REQUIRE_OK(pn_store_get_snapshot(f.store, pn_str_c("S1|DC1"), &snap, &status));
    PN_ASSERT_EQ_INT(status, PN_SNAPSHOT_FOUND);
    PN_ASSERT_EQ_INT(snap.version, 4);
    pn_state_clear(&snap);
    pn_state_clear(&expected);
    pn_state_clear(&rebuilt);
    teardown(&f);
}

/* The cache is bounded: states beyond it are reloaded from the store. */
static void test_cache_bound(void) {
    fixture_t f;
    pn_engine_options_t o = {.state_cache_streams = 8};
    setup(&f, &o);
    char sku[32], id[32];
    for (int i = 0; i < 100; i++) {
        snprintf(sku, sizeof sku, "S%d", i);
        snprintf(id, sizeof id, "u%d", i);
        run(&f, cmd(PN_CMD_UPDATE, id, NULL, sku, i + 1, i));
    }
    commit(&f, 1);
    pn_engine_stats_t st;
    pn_engine_get_stats(f.engine, &st);
    PN_ASSERT(st.cached_streams <= 8);
    for (int i = 0; i < 100; i += 7) {
        snprintf(sku, sizeof sku, "S%d|DC1", i);
        pn_state_t s = read_state(&f, sku);
        PN_ASSERT_EQ_INT(s.on_hand, i + 1);
        pn_state_clear(&s);
    }
    teardown(&f);
}

/* --- the asynchronous store write ---------------------------------------- */

/*
 * These hold the store's writer (pn_store__test_hold_writes): a committed
 * batch's write then starts only when the engine waits for it, so "still in
 * flight" is a fact the test can rely on, not a race it hopes to win.
 */

/* True when the store (not the engine) already has an idempotency entry. */
static bool stored_dedup(fixture_t *f, const char *stream, const char *id) {
    pn_dedup_entry_t e;
    bool found = true;
    PN_REQUIRE_OK(pn_store__get_dedup_nowait(f->store, pn_str_c(stream),
                                             pn_str_c(id), &e, &found));
    return found;
}

/* A repeated id in batch N+1 of a command from batch N is a duplicate
 * while N's write is still in flight, and the state N left is used. */
static void test_duplicate_while_write_pending(void) {
    fixture_t f;
    setup(&f, NULL);
    pn_store__test_hold_writes(f.store, true);
    run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 10, 1));
    commit(&f, 1);
    PN_ASSERT(!stored_dedup(&f, "S1|DC1", "c1")); /* not written yet */
    pn_engine_result_t r = run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 99, 2));
    PN_ASSERT(r.outcome.duplicate);
    PN_ASSERT_EQ_INT(r.outcome.on_hand, 10);
    r = run(&f, cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 10, 3));
    PN_ASSERT_EQ_INT(r.outcome.status, PN_STATUS_ACCEPTED);
    commit(&f, 2);
    PN_ASSERT(stored_dedup(&f, "S1|DC1", "c1")); /* commit 2 waited for 1 */
    pn_store__test_hold_writes(f.store, false);
    pn_state_t st = read_state(&f, "S1|DC1");
    PN_ASSERT_EQ_INT(st.on_hand, 10);
    PN_ASSERT_EQ_INT(st.reserved, 10);
    pn_state_clear(&st);
    teardown(&f);
}

/* A batch touching more streams than the cache holds: the states whose
 * write is in flight are not evicted and re-read stale from the store. */
static void test_pending_states_not_reread_stale(void) {
    fixture_t f;
    pn_engine_options_t o = {.state_cache_streams = 1};
    setup(&f, &o);
    pn_store__test_hold_writes(f.store, true);
    run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 10, 1));
    run(&f, cmd(PN_CMD_UPDATE, "c2", NULL, "S2", 20, 2));
    run(&f, cmd(PN_CMD_UPDATE, "c3", NULL, "S3", 30, 3));
    commit(&f, 1);
    pn_engine_result_t r = run(&f, cmd(PN_CMD_RESERVE, "c4", "o1", "S1", 10, 4));
    PN_ASSERT_EQ_INT(r.outcome.status, PN_STATUS_ACCEPTED);
    r = run(&f, cmd(PN_CMD_RESERVE, "c5", "o2", "S2", 20, 5));
    PN_ASSERT_EQ_INT(r.outcome.status, PN_STATUS_ACCEPTED);
    commit(&f, 2);
    pn_engine_stats_t st;
    pn_engine_get_stats(f.engine, &st);
    PN_ASSERT(st.cached_streams <= 1);
    pn_store__test_hold_writes(f.store, false);
    pn_state_t s1 = read_state(&f, "S1|DC1");
    PN_ASSERT_EQ_INT(s1.reserved, 10);
    pn_state_clear(&s1);
    teardown(&f);
}

/* Discarding batch N+1 while N's write is in flight keeps N and drops
 * only N+1. */
static void test_discard_while_write_pending(void) {
    fixture_t f;
    setup(&f, NULL);
    pn_store__test_hold_writes(f.store, true);
    run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 10, 1));
    commit(&f, 1);
    run(&f, cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 4, 2));
    pn_engine_discard(f.engine);
    /* c2 is not remembered, and all 10 are available again (not 6, and
     * not 0 from a store without batch 1). */
    pn_engine_result_t r = run(&f, cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 10, 3));
    PN_ASSERT(!r.outcome.duplicate);
    PN_ASSERT_EQ_INT(r.outcome.status, PN_STATUS_ACCEPTED);
    commit(&f, 2);
    pn_store__test_hold_writes(f.store, false);
    pn_state_t st = read_state(&f, "S1|DC1");
    PN_ASSERT_EQ_INT(st.on_hand, 10);
    PN_ASSERT_EQ_INT(st.reserved, 10);
    pn_state_clear(&st);
    teardown(&f);
}

/* A failed write is reported by the next call that waits for it (commit
 * here), the batch opened on top of it cannot be committed, and the
 * engine forgets what the failed batch changed: the store's state counts. */
static void test_write_failure_surfaces(void) {
    fixture_t f;
    setup(&f, NULL);
    char err[512];
    run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 10, 1));
    commit(&f, 1);
    PN_REQUIRE_OK(pn_engine_sync(f.engine, err, sizeof err));

    pn_store__test_hold_writes(f.store, true);
    pn_store__test_fail_writes(f.store, true);
    run(&f, cmd(PN_CMD_UPDATE, "c2", NULL, "S1", 50, 2));
    commit(&f, 2); /* handed over: its failure is not known yet */
    pn_engine_result_t r = run(&f, cmd(PN_CMD_RESERVE, "c3", "o1", "S1", 30, 3));
    PN_ASSERT_EQ_INT(r.outcome.status, PN_STATUS_ACCEPTED); /* saw the 50 */
    pn_engine_checkpoint_t cp = {0, 3};
    PN_ASSERT_EQ_INT(pn_engine_commit(f.engine, &cp, 1, err, sizeof err),
                     PN_ERR_STORE_IO);
    PN_ASSERT(strstr(err, "write failed") != NULL);
    pn_store__test_fail_writes(f.store, false);
    pn_store__test_hold_writes(f.store, false);

    pn_state_t st = read_state(&f, "S1|DC1");
    PN_ASSERT_EQ_INT(st.on_hand, 10); /* batch 2 never landed */
    PN_ASSERT_EQ_INT(st.reserved, 0); /* batch 3 was discarded */
    pn_state_clear(&st);
    int64_t off;
    PN_REQUIRE_OK(pn_engine_checkpoint(f.engine, 0, &off));
    PN_ASSERT_EQ_INT(off, 1);
    r = run(&f, cmd(PN_CMD_UPDATE, "c2", NULL, "S1", 50, 4));
    PN_ASSERT(!r.outcome.duplicate); /* its entry was lost with batch 2 */
    commit(&f, 4);
    st = read_state(&f, "S1|DC1");
    PN_ASSERT_EQ_INT(st.on_hand, 50);
    pn_state_clear(&st);
    teardown(&f);
}

/* The failure seen by another call (read_state) is reported there, once,
 * and poisons the batch that was open: its commit fails too. */
static void test_write_failure_poisons_open_batch(void) {
    fixture_t f;
    setup(&f, NULL);
    char err[512];
    pn_store__test_hold_writes(f.store, true);
    pn_store__test_fail_writes(f.store, true);
    run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 10, 1));
    commit(&f, 1);
    run(&f, cmd(PN_CMD_RESERVE, "c2", "o1", "S1", 5, 2));
    pn_state_t st;
    pn_state_init(&st);
    PN_ASSERT_EQ_INT(pn_engine_read_state(f.engine, pn_str_c("S1|DC1"), &st,
                                          err, sizeof err),
                     PN_ERR_STORE_IO);
    pn_store__test_fail_writes(f.store, false);
    pn_store__test_hold_writes(f.store, false);
    pn_engine_checkpoint_t cp = {0, 2};
    PN_ASSERT_EQ_INT(pn_engine_commit(f.engine, &cp, 1, err, sizeof err),
                     PN_ERR_STORE_IO);
    /* Reported: the next batch starts clean. */
    pn_engine_result_t r = run(&f, cmd(PN_CMD_UPDATE, "c1", NULL, "S1", 7, 3));
    PN_ASSERT(!r.outcome.duplicate);
    commit(&f, 3);
    PN_REQUIRE_OK(pn_engine_sync(f.engine, err, sizeof err));
    st = read_state(&f, "S1|DC1");
    PN_ASSERT_EQ_INT(st.on_hand, 7);
    pn_state_clear(&st);
    teardown(&f);
}

/* One step of the sequences below: a command over a few streams, orders
 * and ids, some of them repeated (duplicates), some invalid. */
static pn_command_t random_command(uint64_t *rng, char *id, char *order,
                                   char *sku, int64_t at) {
    static const pn_command_type_t types[] = {PN_CMD_UPDATE, PN_CMD_RESERVE,
                                              PN_CMD_RESERVE, PN_CMD_CANCEL,
                                              PN_CMD_SHIP};
    uint64_t x = pn_test_rand(rng);
    pn_command_type_t type = types[x % 5];
    snprintf(id, 32, "c%" PRIu64, x % 10 < 2 ? (x >> 8) % (uint64_t)(at + 1)
                                                : (uint64_t)at);
    snprintf(order, 32, "o%" PRIu64, (x >> 16) % 4);
    snprintf(sku, 32, "S%" PRIu64, (x >> 24) % 3);
    int32_t qty = (int32_t)((x >> 32) % 12) - 1; /* -1: invalid */
    return cmd(type, id, type == PN_CMD_UPDATE ? NULL : order, sku,
               type == PN_CMD_CANCEL && (x >> 40) % 2 ? NOQTY : qty, at);
}

static bool same_bytes(const void *a, size_t alen, const void *b, size_t blen) {
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/*
 * The state cache is invisible: seeded random sequences run through an
 * engine whose cache holds every stream and one whose cache holds one
 * (so most commands load their stream from the store), whose writes are
 * now and then held in flight (the next batch runs on states and ids the
 * store does not have yet) and which is reopened now and then (its cache
 * lost). Both give byte-identical events and outcomes, command for
 * command, through commits and discards, and the same states at the end.
 */
static void test_cache_invisible(void) {
    enum { SEQUENCES = 40, COMMANDS = 150 };
    for (uint64_t seed = 1; seed <= SEQUENCES; seed++) {
        uint64_t rng = seed;
        fixture_t a, b;
        pn_engine_options_t small = {.state_cache_streams = 1};
        setup(&a, NULL);
        setup(&b, &small);
        char id[32], order[32], sku[32];
        int64_t offset = 0;
        for (int64_t at = 1; at <= COMMANDS; at++) {
            pn_command_t c = random_command(&rng, id, order, sku, at);
            pn_engine_result_t ra = run(&a, c), rb = run(&b, c);
            PN_REQUIRE(same_bytes(ra.outcome_value, ra.outcome_len,
                                  rb.outcome_value, rb.outcome_len));
            PN_REQUIRE(ra.has_event == rb.has_event);
            if (ra.has_event)
                PN_REQUIRE(same_bytes(ra.event_value, ra.event_len,
                                      rb.event_value, rb.event_len));
            uint64_t step = pn_test_rand(&rng) % 16;
            if (step < 3) {
                pn_store__test_hold_writes(b.store, step == 0);
                commit(&a, ++offset);
                commit(&b, offset);
            } else if (step == 3) {
                pn_engine_discard(a.engine);
                pn_engine_discard(b.engine);
            } else if (step == 4) {
                commit(&a, ++offset);
                commit(&b, offset);
                close_engine(&b);
                open_engine(&b, 0);
            }
        }
        commit(&a, ++offset);
        commit(&b, offset);
        for (int s = 0; s < 3; s++) {
            snprintf(sku, sizeof sku, "S%d|DC1", s);
            pn_state_t sa = read_state(&a, sku), sb = read_state(&b, sku);
            PN_REQUIRE(pn_state_eq(&sa, &sb));
            pn_state_clear(&sa);
            pn_state_clear(&sb);
        }
        teardown(&a);
        teardown(&b);
    }
}

static const pn_test_case_t engine_cases[] = {
    {"a batch sees its own effects", test_batch_sees_its_own_effects},
    {"commit survives reopen", test_commit_survives_reopen},
    {"discard leaves no trace", test_discard_leaves_no_trace},
    {"a stale snapshot whose first events expired",
     test_stale_snapshot_with_expired_events},
    {"idempotency window by count and time", test_window_by_count_and_time},
    {"the window's clock ignores far-future command times",
     test_window_clock_ignores_far_future_times},
    {"expired ids: absent before compaction, gone after",
     test_window_expiry_before_and_after_compaction},
    {"maintenance expires events in bounded calls",
     test_maintain_expires_events},
    {"invalid commands", test_invalid_commands},
    {"restore from events", test_restore_from_events},
    {"restore detects a version gap", test_restore_detects_gap},
    {"stale snapshot rebuilt from events", test_stale_snapshot_rebuilt},
    {"state cache is bounded", test_cache_bound},
    {"duplicate of a batch whose write is in flight",
     test_duplicate_while_write_pending},
    {"states of an in-flight write are not re-read stale",
     test_pending_states_not_reread_stale},
    {"discard while the previous write is in flight",
     test_discard_while_write_pending},
    {"a failed store write surfaces and is forgotten",
     test_write_failure_surfaces},
    {"the state cache is invisible in events and outcomes",
     test_cache_invisible},
    {"a failed store write poisons the open batch",
     test_write_failure_poisons_open_batch},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"engine", engine_cases},
                                          {NULL, NULL}};
