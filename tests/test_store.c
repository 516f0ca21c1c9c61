/*
 * The RocksDB store: round trips through every column family, batches,
 * reopen, format and fold versions, corrupt directories and values,
 * retention and idempotency expiry, dropping a partition, memory, and a
 * crash test that SIGKILLs a writer and checks what survives.
 *
 * The crash test's writer is this same binary, re-executed with
 * PN_TEST_STORE_CRASH_DIR set: a constructor turns it into the writer
 * before CUnit starts. Re-executing (rather than a bare fork) gives the
 * writer a clean process: RocksDB's background threads do not survive fork.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "panther/store.h"
#include "pn_test.h"
#include "store_format.h"
#include "store_internal.h" /* compaction hook for tests */

#define CACHE_BYTES ((uint64_t)8 << 20)
#define WRITE_BUFFER_BYTES ((uint64_t)8 << 20)

/* --- helpers ------------------------------------------------------------ */

typedef struct fixture {
    char *dir;
    pn_store_t *store;
    pn_store_batch_t *batch;
} fixture_t;

static pn_err_t open_store(const char *dir, uint32_t fold, int64_t retention,
                           pn_store_t **storep, char *err, size_t err_size) {
    pn_store_options_t so = {.path = dir,
                             .block_cache_bytes = CACHE_BYTES,
                             .write_buffer_bytes = WRITE_BUFFER_BYTES,
                             .fold_format_version = fold,
                             .event_retention_ms = retention};
    return pn_store_open(&so, storep, err, err_size);
}

static void setup_with(fixture_t *f, uint32_t fold, int64_t retention) {
    char err[512] = "";
    memset(f, 0, sizeof *f);
    f->dir = pn_test_tmpdir("store");
    PN_REQUIRE(f->dir != NULL);
    pn_err_t e = open_store(f->dir, fold, retention, &f->store, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "open: %s %s", pn_err_name(e), err);
    PN_REQUIRE_OK(pn_store_batch_new(&f->batch));
}

static void setup(fixture_t *f) { setup_with(f, 0, 0); }

static void reopen(fixture_t *f, uint32_t fold, int64_t retention) {
    char err[512] = "";
    pn_store_close(f->store);
    f->store = NULL;
    pn_err_t e = open_store(f->dir, fold, retention, &f->store, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "reopen: %s %s", pn_err_name(e), err);
}

static void teardown(fixture_t *f) {
    pn_store_batch_free(f->batch);
    pn_store_close(f->store);
    pn_test_rmdir(f->dir);
    free(f->dir);
}

static void commit(fixture_t *f) {
    char err[512] = "";
    pn_err_t e = pn_store_commit(f->store, f->batch, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "commit: %s %s", pn_err_name(e), err);
    pn_store_batch_clear(f->batch);
}

static void put_event(fixture_t *f, const char *stream, int64_t version,
                      int64_t at, const char *data) {
    PN_REQUIRE_OK(pn_store_batch_put_event(f->batch, pn_str_c(stream), version,
                                           at, data, strlen(data)));
}

/* A state with the given reservations ("order", qty, ..., NULL). */
static void make_state(pn_state_t *s, int64_t version, int64_t on_hand, ...) {
    va_list ap;
    pn_state_init(s);
    va_start(ap, on_hand);
    const char *order;
    while ((order = va_arg(ap, const char *)) != NULL) {
        int64_t q = va_arg(ap, int64_t);
        PN_REQUIRE_OK(pn_state_adjust_reservation(s, pn_str_c(order), q));
    }
    va_end(ap);
    s->version = version;
    s->on_hand = on_hand;
}

static void put_snapshot(fixture_t *f, const char *stream, int64_t version) {
    pn_state_t s;
    make_state(&s, version, version * 10, "order-1", (int64_t)2, NULL);
    PN_REQUIRE_OK(
        pn_store_batch_put_snapshot(f->batch, pn_str_c(stream), &s));
    pn_state_clear(&s);
}

static bool snapshot_found(fixture_t *f, const char *stream,
                           int64_t *version) {
    pn_state_t s;
    pn_snapshot_status_t status;
    pn_state_init(&s);
    PN_REQUIRE_OK(pn_store_get_snapshot(f->store, pn_str_c(stream), &s, &status));
    if (version)
        *version = s.version;
    pn_state_clear(&s);
    return status == PN_SNAPSHOT_FOUND;
}

static pn_dedup_entry_t dedup_entry(int32_t partition, uint64_t seq,
                                    int64_t at) {
    pn_dedup_entry_t e = {partition, seq, at,
                          {PN_CMD_RESERVE, PN_STATUS_ACCEPTED, PN_REASON_NONE,
                           false, 1, 10, 2, 8}};
    return e;
}

static void put_dedup(fixture_t *f, const char *stream, const char *id,
                      int32_t partition, uint64_t seq, int64_t at) {
    pn_dedup_entry_t e = dedup_entry(partition, seq, at);
    PN_REQUIRE_OK(pn_store_batch_put_dedup(f->batch, pn_str_c(stream),
                                           pn_str_c(id), &e));
}

static bool dedup_found(fixture_t *f, const char *stream, const char *id,
                        pn_dedup_entry_t *out) {
    pn_dedup_entry_t e;
    bool found = true;
    PN_REQUIRE_OK(pn_store_get_dedup(f->store, pn_str_c(stream), pn_str_c(id),
                                     &e, &found));
    if (out)
        *out = e;
    return found;
}

static bool meta_found(pn_store_t *store, int32_t partition,
                       pn_partition_meta_t *out) {
    pn_partition_meta_t m;
    bool found = true;
    PN_REQUIRE_OK(pn_store_get_partition_meta(store, partition, &m, &found));
    if (out)
        *out = m;
    return found;
}

/* Collects what a scan visits. */
#define SCAN_MAX 1024
typedef struct scan {
    size_t n;
    int64_t versions[SCAN_MAX];
    char data[SCAN_MAX][64];
    size_t stop_after; /* 0 = never */
} scan_t;

static pn_err_t collect(void *opaque, int64_t version, const void *data,
                        size_t len) {
    scan_t *s = opaque;
    if (s->n >= SCAN_MAX)
        return PN_ERR_TOO_LARGE;
    s->versions[s->n] = version;
    size_t n = len < 63 ? len : 63;
    memcpy(s->data[s->n], data, n);
    s->data[s->n][n] = '\0';
    s->n++;
    return s->stop_after && s->n == s->stop_after ? PN_ERR_INTERNAL
                                                  : PN_ERR_OK;
}

static void scan(pn_store_t *store, const char *stream, int64_t from,
                 scan_t *s) {
    memset(s, 0, sizeof *s);
    PN_REQUIRE_OK(
        pn_store_scan_events(store, pn_str_c(stream), from, collect, s));
}

/* Writes one key with the raw RocksDB API (opening every column family the
 * directory has, plus cf_name), to plant foreign or corrupt data. */
static void raw_put(const char *dir, const char *cf_name, const void *key,
                    size_t klen, const void *val, size_t vlen) {
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    char *rerr = NULL;
    size_t n = 0;
    char **names = rocksdb_list_column_families(o, dir, &n, &rerr);
    if (rerr) { /* no database yet */
        rocksdb_free(rerr);
        rerr = NULL;
        n = 0;
    }
    const char *cf_names[16];
    const rocksdb_options_t *cf_opts[16];
    rocksdb_column_family_handle_t *handles[16];
    int target = -1, count = 0;
    for (size_t i = 0; i < n && i < 15; i++) {
        cf_names[count] = names[i];
        cf_opts[count] = o;
        if (strcmp(names[i], cf_name) == 0)
            target = count;
        count++;
    }
    if (count == 0 || strcmp(cf_names[0], "default") != 0) {
        cf_names[count] = "default";
        cf_opts[count] = o;
        if (strcmp(cf_name, "default") == 0)
            target = count;
        count++;
    }
    if (target < 0) {
        cf_names[count] = cf_name;
        cf_opts[count] = o;
        target = count++;
    }
    rocksdb_t *db = rocksdb_open_column_families(o, dir, count, cf_names,
                                                 cf_opts, handles, &rerr);
    PN_ASSERT_(rerr == NULL, CU_TRUE, "raw open: %s", rerr ? rerr : "");
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(db, wo, handles[target], key, klen, val, vlen, &rerr);
    PN_ASSERT_(rerr == NULL, CU_TRUE, "raw put: %s", rerr ? rerr : "");
    rocksdb_writeoptions_destroy(wo);
    for (int i = 0; i < count; i++)
        rocksdb_column_family_handle_destroy(handles[i]);
    rocksdb_close(db);
    if (names)
        rocksdb_list_column_families_destroy(names, n);
    rocksdb_options_destroy(o);
}

static void write_file(const char *dir, const char *name, const void *data,
                       size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    PN_REQUIRE(fp != NULL);
    PN_REQUIRE(fwrite(data, 1, len, fp) == len);
    fclose(fp);
}

/* The name of the first file in dir whose name starts with prefix. */
static bool find_file(const char *dir, const char *prefix, char *name,
                      size_t name_size) {
    DIR *d = opendir(dir);
    struct dirent *de;
    bool found = false;
    while (d && !found && (de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            snprintf(name, name_size, "%s", de->d_name);
            found = true;
        }
    if (d)
        closedir(d);
    return found;
}

/* --- round trips -------------------------------------------------------- */

static void test_round_trip_every_family(void) {
    fixture_t f;
    setup(&f);
    put_event(&f, "sku|dc", 1, 1000, "first");
    PN_REQUIRE_OK(
        pn_store_batch_put_event(f.batch, pn_str_c("sku|dc"), 2, -5, NULL, 0));
    pn_state_t s, got;
    make_state(&s, 7, 40, "o-b", (int64_t)3, "o-a", (int64_t)5, "o\xff\x00z",
               (int64_t)1, NULL);
    PN_REQUIRE_OK(pn_store_batch_put_snapshot(f.batch, pn_str_c("sku|dc"), &s));
    pn_dedup_entry_t rejected = {3, 41, -77,
                                 {PN_CMD_SHIP, PN_STATUS_REJECTED,
                                  PN_REASON_EXCEEDS_RESERVATION, true, 7, 40, 9,
                                  -3}};
    PN_REQUIRE_OK(pn_store_batch_put_dedup(f.batch, pn_str_c("sku|dc"),
                                           pn_str_c("cmd-1"), &rejected));
    put_dedup(&f, "sku|dc", "cmd-2", 3, 42, 1000);
    pn_partition_meta_t meta = {123456789, 42, 1000}, mgot;
    PN_REQUIRE_OK(pn_store_batch_put_partition_meta(f.batch, 3, &meta));
    commit(&f);

    scan_t sc;
    scan(f.store, "sku|dc", 1, &sc);
    PN_ASSERT_EQ_INT(sc.n, 2);
    PN_ASSERT_EQ_INT(sc.versions[0], 1);
    PN_ASSERT_EQ_STR(sc.data[0], "first");
    PN_ASSERT_EQ_INT(sc.versions[1], 2);
    PN_ASSERT_EQ_STR(sc.data[1], "");

    pn_snapshot_status_t status;
    pn_state_init(&got);
    PN_REQUIRE_OK(pn_store_get_snapshot(f.store, pn_str_c("sku|dc"), &got, &status));
    PN_ASSERT_EQ_INT(status, PN_SNAPSHOT_FOUND);
    PN_ASSERT(pn_state_eq(&s, &got));
    PN_ASSERT_EQ_INT(got.reserved, 9);
    PN_ASSERT_EQ_INT(got.n_reservations, 3);

    pn_dedup_entry_t e;
    PN_ASSERT(dedup_found(&f, "sku|dc", "cmd-1", &e));
    PN_ASSERT(memcmp(&e, &rejected, sizeof e) == 0 ||
              (e.partition == 3 && e.seq == 41 && e.at_ms == -77 &&
               e.outcome.command_type == PN_CMD_SHIP &&
               e.outcome.status == PN_STATUS_REJECTED &&
               e.outcome.reason == PN_REASON_EXCEEDS_RESERVATION &&
               e.outcome.duplicate && e.outcome.version == 7 &&
               e.outcome.on_hand == 40 && e.outcome.reserved == 9 &&
               e.outcome.available == -3));
    PN_ASSERT_EQ_INT(e.outcome.available, -3);
    PN_ASSERT_EQ_INT(e.outcome.reason, PN_REASON_EXCEEDS_RESERVATION);
    PN_ASSERT(dedup_found(&f, "sku|dc", "cmd-2", &e));
    PN_ASSERT_EQ_INT(e.outcome.reason, PN_REASON_NONE);
    PN_ASSERT_EQ_INT(e.seq, 42);

    PN_ASSERT(meta_found(f.store, 3, &mgot));
    PN_ASSERT_EQ_INT(mgot.events_offset, 123456789);
    PN_ASSERT_EQ_INT(mgot.dedup_seq, 42);
    PN_ASSERT_EQ_INT(mgot.dedup_max_at_ms, 1000);

    pn_state_clear(&s);
    pn_state_clear(&got);
    teardown(&f);
}

static void test_absent_keys(void) {
    fixture_t f;
    setup(&f);
    put_event(&f, "a|b", 1, 1, "x");
    put_snapshot(&f, "a|b", 1);
    put_dedup(&f, "a|b", "id", 0, 1, 1);
    commit(&f);
    pn_state_t s;
    make_state(&s, 9, 9, "junk", (int64_t)1, NULL);
    pn_snapshot_status_t status;
    PN_REQUIRE_OK(pn_store_get_snapshot(f.store, pn_str_c("a|c"), &s, &status));
    PN_ASSERT_EQ_INT(status, PN_SNAPSHOT_NONE);
    PN_ASSERT_EQ_INT(s.version, 0);
    PN_ASSERT_EQ_INT(s.n_reservations, 0);
    PN_ASSERT(!snapshot_found(&f, "a|", NULL));
    PN_ASSERT(!dedup_found(&f, "a|b", "i", NULL));
    PN_ASSERT(!dedup_found(&f, "a|b", "idx", NULL));
    PN_ASSERT(!dedup_found(&f, "a|c", "id", NULL));
    pn_partition_meta_t m;
    PN_ASSERT(!meta_found(f.store, 7, &m));
    PN_ASSERT_EQ_INT(m.events_offset, -1);
    PN_ASSERT_EQ_INT(m.dedup_seq, 0);
    scan_t sc;
    scan(f.store, "a|bb", 0, &sc);
    PN_ASSERT_EQ_INT(sc.n, 0);
    pn_state_clear(&s);
    teardown(&f);
}

static void test_invalid_arguments(void) {
    fixture_t f;
    setup(&f);
    char big[PN_STREAM_KEY_MAX + 1];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    pn_str_t too_long = pn_str_c(big);
    pn_str_t longest = {big, PN_STREAM_KEY_MAX - 1};
    PN_ASSERT_EQ_INT(pn_store_batch_put_event(f.batch, pn_str_c(""), 1, 0, "x", 1),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_store_batch_put_event(f.batch, too_long, 1, 0, "x", 1),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_store_batch_put_event(f.batch, pn_str_c("a|b"), 0, 0, "x", 1),
                     PN_ERR_INVALID_ARG);
    pn_partition_meta_t m = {0, 0, 0};
    PN_ASSERT_EQ_INT(pn_store_batch_put_partition_meta(f.batch, -1, &m),
                     PN_ERR_INVALID_ARG);
    pn_dedup_entry_t e = dedup_entry(0, 1, 1);
    e.outcome.reason = (pn_reason_t)77;
    PN_ASSERT_EQ_INT(pn_store_batch_put_dedup(f.batch, pn_str_c("a|b"),
                                              pn_str_c("c"), &e),
                     PN_ERR_INVALID_ARG);
    e = dedup_entry(0, 1, 1);
    PN_ASSERT_EQ_INT(pn_store_batch_put_dedup(f.batch, too_long, pn_str_c("c"), &e),
                     PN_ERR_INVALID_ARG);
    pn_state_t bad;
    make_state(&bad, 1, 5, "o", (int64_t)2, NULL);
    bad.reserved = 3; /* breaks reserved == sum */
    PN_ASSERT_EQ_INT(pn_store_batch_put_snapshot(f.batch, pn_str_c("a|b"), &bad),
                     PN_ERR_INVALID_ARG);
    bad.reserved = 2;
    bad.on_hand = -1;
    PN_ASSERT_EQ_INT(pn_store_batch_put_snapshot(f.batch, pn_str_c("a|b"), &bad),
                     PN_ERR_INVALID_ARG);
    pn_state_clear(&bad);
    /* Nothing of the failed puts is in the batch. */
    PN_ASSERT_EQ_INT(pn_store_batch_count(f.batch), 0);
    PN_ASSERT_EQ_INT(pn_store_batch_bytes(f.batch), 0);
    /* The longest key is fine. */
    PN_REQUIRE_OK(pn_store_batch_put_event(f.batch, longest, 1, 0, "x", 1));
    commit(&f);
    scan_t sc;
    memset(&sc, 0, sizeof sc);
    PN_REQUIRE_OK(pn_store_scan_events(f.store, longest, 1, collect, &sc));
    PN_ASSERT_EQ_INT(sc.n, 1);
    pn_state_t s;
    bool found;
    pn_snapshot_status_t status;
    pn_state_init(&s);
    PN_ASSERT_EQ_INT(pn_store_get_snapshot(f.store, too_long, &s, &status),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_store_get_partition_meta(f.store, -2, &m, &found),
                     PN_ERR_INVALID_ARG);
    char err[256] = "";
    pn_store_options_t so = {.path = ""};
    pn_store_t *store = (pn_store_t *)&so;
    PN_ASSERT_EQ_INT(pn_store_open(&so, &store, err, sizeof err),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT(store == NULL);
    teardown(&f);
}

/* --- batches ------------------------------------------------------------ */

static void test_batch_counts_and_reuse(void) {
    fixture_t f;
    setup(&f);
    PN_ASSERT_EQ_INT(pn_store_batch_count(f.batch), 0);
    put_event(&f, "a|b", 1, 1, "12345");
    PN_ASSERT_EQ_INT(pn_store_batch_count(f.batch), 1);
    /* key: 2 + 3 + 8, value: 8 + 5 */
    PN_ASSERT_EQ_INT(pn_store_batch_bytes(f.batch), 13 + 13);
    put_snapshot(&f, "a|b", 1);
    put_dedup(&f, "a|b", "c1", 0, 1, 1); /* the entry alone, no index */
    pn_partition_meta_t m = {5, 1, 1};
    PN_REQUIRE_OK(pn_store_batch_put_partition_meta(f.batch, 0, &m));
    PN_ASSERT_EQ_INT(pn_store_batch_count(f.batch), 4);
    size_t bytes = pn_store_batch_bytes(f.batch);

    /* Nothing is visible before the commit. */
    PN_ASSERT(!snapshot_found(&f, "a|b", NULL));
    PN_ASSERT(!dedup_found(&f, "a|b", "c1", NULL));
    PN_ASSERT(!meta_found(f.store, 0, NULL));

    char err[256];
    PN_REQUIRE_OK(pn_store_commit(f.store, f.batch, err, sizeof err));
    /* The batch is left as it was and commits again the same way. */
    PN_ASSERT_EQ_INT(pn_store_batch_count(f.batch), 4);
    PN_ASSERT_EQ_INT(pn_store_batch_bytes(f.batch), bytes);
    PN_REQUIRE_OK(pn_store_commit(f.store, f.batch, err, sizeof err));
    PN_ASSERT(snapshot_found(&f, "a|b", NULL));
    PN_ASSERT(dedup_found(&f, "a|b", "c1", NULL));
    PN_ASSERT(meta_found(f.store, 0, NULL));
    scan_t sc;
    scan(f.store, "a|b", 1, &sc);
    PN_ASSERT_EQ_INT(sc.n, 1);

    pn_store_batch_clear(f.batch);
    PN_ASSERT_EQ_INT(pn_store_batch_count(f.batch), 0);
    PN_ASSERT_EQ_INT(pn_store_batch_bytes(f.batch), 0);
    /* An empty batch commits as a no-op. */
    PN_REQUIRE_OK(pn_store_commit(f.store, f.batch, err, sizeof err));
    /* A cleared batch is reused: later puts win over earlier ones. */
    put_snapshot(&f, "a|b", 2);
    put_snapshot(&f, "a|b", 3);
    commit(&f);
    int64_t v = 0;
    PN_ASSERT(snapshot_found(&f, "a|b", &v));
    PN_ASSERT_EQ_INT(v, 3);
    teardown(&f);
}

/* A batch that was built but never committed leaves no trace, across all
 * families; one that was committed is entirely there after a reopen. */
static void test_batch_atomic_and_reopen(void) {
    fixture_t f;
    setup(&f);
    for (int i = 1; i <= 50; i++) {
        char stream[32], id[32];
        snprintf(stream, sizeof stream, "sku%d|dc", i);
        snprintf(id, sizeof id, "cmd-%d", i);
        put_event(&f, stream, 1, i, "e");
        put_snapshot(&f, stream, 1);
        put_dedup(&f, stream, id, 1, (uint64_t)i, i);
    }
    pn_partition_meta_t m = {50, 50, 50};
    PN_REQUIRE_OK(pn_store_batch_put_partition_meta(f.batch, 1, &m));
    commit(&f);
    /* A second batch, abandoned. */
    put_event(&f, "sku1|dc", 2, 51, "lost");
    put_snapshot(&f, "sku1|dc", 2);
    put_dedup(&f, "sku1|dc", "cmd-51", 1, 51, 51);
    m.events_offset = 51;
    PN_REQUIRE_OK(pn_store_batch_put_partition_meta(f.batch, 1, &m));
    pn_store_batch_clear(f.batch);

    reopen(&f, 0, 0);
    for (int i = 1; i <= 50; i++) {
        char stream[32], id[32];
        snprintf(stream, sizeof stream, "sku%d|dc", i);
        snprintf(id, sizeof id, "cmd-%d", i);
        scan_t sc;
        scan(f.store, stream, 1, &sc);
        PN_ASSERT_EQ_INT(sc.n, 1);
        int64_t v = 0;
        PN_ASSERT(snapshot_found(&f, stream, &v));
        PN_ASSERT_EQ_INT(v, 1);
        pn_dedup_entry_t e;
        PN_ASSERT(dedup_found(&f, stream, id, &e));
        PN_ASSERT_EQ_INT(e.seq, i);
    }
    PN_ASSERT(!dedup_found(&f, "sku1|dc", "cmd-51", NULL));
    pn_partition_meta_t got;
    PN_ASSERT(meta_found(f.store, 1, &got));
    PN_ASSERT_EQ_INT(got.events_offset, 50);
    teardown(&f);
}

/* --- scans -------------------------------------------------------------- */

static void test_scan_order_and_from_version(void) {
    fixture_t f;
    setup(&f);
    /* Versions 1..300 written out of order over three batches, next to
     * streams whose keys extend or prefix this one. */
    int order[300];
    for (int i = 0; i < 300; i++)
        order[i] = i + 1;
    srand(7);
    for (int i = 299; i > 0; i--) {
        int j = rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < 300; i++) {
        char data[32];
        snprintf(data, sizeof data, "v%d", order[i]);
        put_event(&f, "s|a", order[i], order[i], data);
        if (i % 100 == 99)
            commit(&f);
    }
    put_event(&f, "s|ab", 1, 1, "other");
    put_event(&f, "s|", 5, 1, "other");
    put_event(&f, "s|b", 1, 1, "other");
    PN_REQUIRE_OK(pn_store_batch_put_event(f.batch, pn_str_c("s|a"),
                                           (int64_t)1 << 40, 1, "far", 3));
    commit(&f);

    scan_t *sc = calloc(1, sizeof *sc);
    PN_REQUIRE(sc != NULL);
    scan(f.store, "s|a", 1, sc);
    PN_ASSERT_EQ_INT(sc->n, 301);
    for (size_t i = 0; i < 300; i++) {
        char want[32];
        snprintf(want, sizeof want, "v%zu", i + 1);
        PN_ASSERT_EQ_INT(sc->versions[i], i + 1);
        PN_ASSERT_EQ_STR(sc->data[i], want);
    }
    PN_ASSERT_EQ_INT(sc->versions[300], (int64_t)1 << 40);

    scan(f.store, "s|a", 256, sc);
    PN_ASSERT_EQ_INT(sc->n, 46);
    PN_ASSERT_EQ_INT(sc->versions[0], 256);
    PN_ASSERT_EQ_INT(sc->versions[44], 300);
    scan(f.store, "s|a", 301, sc);
    PN_ASSERT_EQ_INT(sc->n, 1);
    scan(f.store, "s|a", ((int64_t)1 << 40) + 1, sc);
    PN_ASSERT_EQ_INT(sc->n, 0);
    scan(f.store, "s|a", -5, sc);
    PN_ASSERT_EQ_INT(sc->n, 301);
    scan(f.store, "s|", 0, sc);
    PN_ASSERT_EQ_INT(sc->n, 1);
    PN_ASSERT_EQ_INT(sc->versions[0], 5);

    /* A callback error stops the scan and comes back. */
    memset(sc, 0, sizeof *sc);
    sc->stop_after = 3;
    PN_ASSERT_EQ_INT(
        pn_store_scan_events(f.store, pn_str_c("s|a"), 1, collect, sc),
        PN_ERR_INTERNAL);
    PN_ASSERT_EQ_INT(sc->n, 3);
    free(sc);
    teardown(&f);
}

/* --- versions ------------------------------------------------------------ */

static void test_format_version_mismatch(void) {
    fixture_t f;
    setup(&f);
    pn_store_close(f.store);
    f.store = NULL;
    uint8_t v[4];
    pn_be32_write(v, 99);
    raw_put(f.dir, "meta", PN_STORE_META_FORMAT_KEY,
            strlen(PN_STORE_META_FORMAT_KEY), v, sizeof v);
    char err[512] = "";
    pn_store_t *store = NULL;
    PN_ASSERT_EQ_INT(open_store(f.dir, 0, 0, &store, err, sizeof err),
                     PN_ERR_STORE_VERSION);
    PN_ASSERT(store == NULL);
    PN_ASSERT_(strstr(err, f.dir) && strstr(err, "99") &&
                   strstr(err, "version 2"),
               CU_FALSE, "message names path and versions: %s", err);
    teardown(&f);
}

/* A format 1 store (it has the dedup_index family) is refused with the
 * version message, not as a foreign database. */
static void test_format_1_store_refused(void) {
    fixture_t f;
    setup(&f);
    pn_store_close(f.store);
    f.store = NULL;
    raw_put(f.dir, "dedup_index", "k", 1, "", 0);
    char err[512] = "";
    pn_store_t *store = NULL;
    PN_ASSERT_EQ_INT(open_store(f.dir, 0, 0, &store, err, sizeof err),
                     PN_ERR_STORE_VERSION);
    PN_ASSERT(store == NULL);
    PN_ASSERT_(strstr(err, f.dir) && strstr(err, "version 1") &&
                   strstr(err, "version 2"),
               CU_FALSE, "message names path and versions: %s", err);
    teardown(&f);
}

static void test_foreign_rocksdb_refused(void) {
    char *dir = pn_test_tmpdir("store");
    char err[512] = "";
    pn_store_t *store = NULL;
    /* Data but no format record: some other program's RocksDB. */
    raw_put(dir, "default", "k", 1, "v", 1);
    PN_ASSERT_EQ_INT(open_store(dir, 0, 0, &store, err, sizeof err),
                     PN_ERR_STORE_VERSION);
    PN_ASSERT_(strstr(err, dir) != NULL, CU_FALSE, "%s", err);
    pn_test_rmdir(dir);
    free(dir);

    /* A column family this build does not know. */
    fixture_t f;
    setup(&f);
    pn_store_close(f.store);
    f.store = NULL;
    raw_put(f.dir, "future", "k", 1, "v", 1);
    PN_ASSERT_EQ_INT(open_store(f.dir, 0, 0, &store, err, sizeof err),
                     PN_ERR_STORE_VERSION);
    PN_ASSERT_(strstr(err, "future") && strstr(err, f.dir), CU_FALSE, "%s", err);
    PN_ASSERT(store == NULL);
    teardown(&f);
}

static void test_snapshot_of_other_fold_version(void) {
    fixture_t f;
    setup(&f); /* fold 1 */
    put_snapshot(&f, "a|b", 4);
    put_snapshot(&f, "a|c", 4);
    commit(&f);
    PN_ASSERT(snapshot_found(&f, "a|b", NULL));

    reopen(&f, 2, 0);
    pn_state_t s;
    make_state(&s, 3, 3, NULL);
    pn_snapshot_status_t status;
    PN_REQUIRE_OK(pn_store_get_snapshot(f.store, pn_str_c("a|b"), &s, &status));
    PN_ASSERT_EQ_INT(status, PN_SNAPSHOT_STALE);
    PN_ASSERT_EQ_INT(s.version, 0);
    /* Stale snapshots stay until overwritten: a crash before the rebuilt
     * one lands must not make the stream look new. */
    PN_REQUIRE_OK(pn_store_get_snapshot(f.store, pn_str_c("a|b"), &s, &status));
    PN_ASSERT_EQ_INT(status, PN_SNAPSHOT_STALE);
    pn_state_clear(&s);
    /* A batch committed to this store is stamped with its version 2. */
    put_snapshot(&f, "a|d", 9);
    commit(&f);
    int64_t v = 0;
    PN_ASSERT(snapshot_found(&f, "a|d", &v));
    PN_ASSERT_EQ_INT(v, 9);

    /* Overwriting a stale snapshot makes it current. */
    put_snapshot(&f, "a|b", 5);
    commit(&f);
    PN_ASSERT(snapshot_found(&f, "a|b", &v));
    PN_ASSERT_EQ_INT(v, 5);

    /* Back on fold 1: a|c (never rewritten) is good again, a|b and a|d
     * carry version 2 so they are stale now. */
    reopen(&f, 1, 0);
    PN_ASSERT(!snapshot_found(&f, "a|b", NULL));
    PN_ASSERT(snapshot_found(&f, "a|c", NULL));
    PN_ASSERT(!snapshot_found(&f, "a|d", NULL));
    reopen(&f, 2, 0);
    PN_ASSERT(snapshot_found(&f, "a|d", NULL));
    teardown(&f);
}

/* --- corruption ----------------------------------------------------------- */

static void expect_corrupt(const char *dir, const char *what) {
    char err[1024] = "";
    pn_store_t *store = NULL;
    pn_err_t e = open_store(dir, 0, 0, &store, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_STORE_CORRUPT, CU_FALSE, "%s: got %s: %s", what,
               pn_err_name(e), err);
    PN_ASSERT_(strstr(err, dir) != NULL, CU_FALSE, "%s: names the path: %s",
               what, err);
    PN_ASSERT(store == NULL);
    pn_store_close(store);
}

/* A store with some data, closed; returns its directory. */
static char *closed_store(void) {
    fixture_t f;
    setup(&f);
    for (int i = 1; i <= 20; i++)
        put_event(&f, "a|b", i, i, "some event bytes");
    put_snapshot(&f, "a|b", 20);
    commit(&f);
    pn_store_batch_free(f.batch);
    pn_store_close(f.store);
    return f.dir;
}

static void test_corrupt_directories(void) {
    char *dir = closed_store();
    write_file(dir, "CURRENT", "MANIFEST-999999\n", 16);
    expect_corrupt(dir, "CURRENT names a missing manifest");
    pn_test_rmdir(dir);
    free(dir);

    dir = closed_store();
    write_file(dir, "CURRENT", "\x01\x02garbage", 9);
    expect_corrupt(dir, "CURRENT holds garbage");
    pn_test_rmdir(dir);
    free(dir);

    dir = closed_store();
    char name[256], path[4096];
    PN_REQUIRE(find_file(dir, "MANIFEST-", name, sizeof name));
    snprintf(path, sizeof path, "%s/%s", dir, name);
    PN_REQUIRE(truncate(path, 10) == 0);
    expect_corrupt(dir, "truncated MANIFEST");
    pn_test_rmdir(dir);
    free(dir);

    dir = closed_store();
    PN_REQUIRE(find_file(dir, "MANIFEST-", name, sizeof name));
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(dir, name, "this is not a manifest at all, not even close", 45);
    expect_corrupt(dir, "MANIFEST overwritten");
    pn_test_rmdir(dir);
    free(dir);

    dir = closed_store();
    snprintf(path, sizeof path, "%s/CURRENT", dir);
    PN_REQUIRE(unlink(path) == 0);
    expect_corrupt(dir, "data files without CURRENT");
    pn_test_rmdir(dir);
    free(dir);
}

static void test_corrupt_values(void) {
    fixture_t f;
    setup(&f);
    pn_store_close(f.store);
    f.store = NULL;
    uint8_t key[PN_STORE_PREFIX_MAX];
    size_t klen = pn_store__prefix(key, pn_str_c("bad|snap"));
    const uint8_t truncated[] = {0, 0, 0, 1, 0xFF};
    raw_put(f.dir, "snapshots", key, klen, truncated, sizeof truncated);
    klen = pn_store__prefix(key, pn_str_c("bad|short"));
    raw_put(f.dir, "snapshots", key, klen, "\0\0", 2);
    pn_buf_t dk;
    pn_buf_init(&dk, 4096);
    PN_REQUIRE_OK(pn_store__dedup_key(&dk, pn_str_c("bad|dedup"), pn_str_c("c")));
    raw_put(f.dir, "dedup", dk.data, dk.len, "\x01\x02", 2);
    pn_buf_free(&dk);
    uint8_t mk[PN_STORE_META_PARTITION_KEY_LEN];
    pn_store__partition_key(mk, 4);
    raw_put(f.dir, "meta", mk, sizeof mk, "\x07", 1);
    klen = pn_store__event_key(key, pn_str_c("bad|event"), 1);
    raw_put(f.dir, "events", key, klen, "\x01", 1);
    reopen(&f, 0, 0);

    pn_state_t s;
    bool found = true;
    pn_snapshot_status_t status = PN_SNAPSHOT_FOUND;
    pn_state_init(&s);
    PN_ASSERT_EQ_INT(pn_store_get_snapshot(f.store, pn_str_c("bad|snap"), &s, &status),
                     PN_ERR_STORE_CORRUPT);
    PN_ASSERT(status != PN_SNAPSHOT_FOUND);
    PN_ASSERT_EQ_INT(pn_store_get_snapshot(f.store, pn_str_c("bad|short"), &s, &status),
                     PN_ERR_STORE_CORRUPT);
    pn_dedup_entry_t e;
    PN_ASSERT_EQ_INT(pn_store_get_dedup(f.store, pn_str_c("bad|dedup"),
                                        pn_str_c("c"), &e, &found),
                     PN_ERR_STORE_CORRUPT);
    PN_ASSERT(!found);
    pn_partition_meta_t m;
    PN_ASSERT_EQ_INT(pn_store_get_partition_meta(f.store, 4, &m, &found),
                     PN_ERR_STORE_CORRUPT);
    PN_ASSERT_EQ_INT(m.events_offset, -1);
    scan_t sc;
    memset(&sc, 0, sizeof sc);
    PN_ASSERT_EQ_INT(pn_store_scan_events(f.store, pn_str_c("bad|event"), 1,
                                          collect, &sc),
                     PN_ERR_STORE_CORRUPT);
    PN_ASSERT_EQ_INT(sc.n, 0);
    pn_state_clear(&s);
    teardown(&f);
}

/* Encodes a state; caller frees *out. */
static size_t encode_state(const pn_state_t *s, uint8_t **out) {
    *out = malloc(pn_store__snapshot_max_size(s));
    PN_REQUIRE(*out != NULL);
    return pn_store__snapshot_write(*out, PN_FOLD_FORMAT_VERSION, s);
}

static pn_err_t decode_bytes(const uint8_t *bytes, size_t len) {
    pn_state_t s;
    pn_state_init(&s);
    /* An exact-size copy, so that ASan sees any read past the end. */
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, bytes, len);
    pn_err_t e = pn_store__snapshot_decode(copy, len, &s);
    if (e == PN_ERR_OK) {
        int64_t sum = 0;
        for (size_t i = 0; i < s.n_reservations; i++)
            sum += s.reservations[i].quantity;
        PN_ASSERT_EQ_INT(sum, s.reserved);
    } else {
        PN_ASSERT_EQ_INT(s.n_reservations, 0);
    }
    pn_state_clear(&s);
    free(copy);
    return e;
}

static void test_snapshot_decoder_rejects_corruption(void) {
    pn_state_t s, back;
    make_state(&s, 300, 1000, "alpha", (int64_t)5, "beta", (int64_t)300,
               "gamma", (int64_t)1, NULL);
    uint8_t *enc;
    size_t len = encode_state(&s, &enc);
    PN_REQUIRE(len > 0);
    pn_state_init(&back);
    PN_REQUIRE_OK(pn_store__snapshot_decode(enc, len, &back));
    PN_ASSERT(pn_state_eq(&s, &back));
    pn_state_clear(&back);

    for (size_t cut = 0; cut < len; cut++)
        PN_ASSERT_EQ_INT(decode_bytes(enc, cut), PN_ERR_STORE_CORRUPT);
    uint8_t longer[512];
    memcpy(longer, enc, len);
    longer[len] = 0;
    PN_ASSERT_EQ_INT(decode_bytes(longer, len + 1), PN_ERR_STORE_CORRUPT);

    /* Hand-made bad values (after the 4-byte fold version). */
    static const struct {
        const char *what;
        uint8_t bytes[24];
        size_t len;
    } bad[] = {
        {"overlong varint", {0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                             0x80, 0x80, 0x80, 0x80, 0x01}, 15},
        {"version above int64", {0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0, 0, 0}, 17},
        {"huge count", {0, 0, 0, 1, 1, 1, 0, 0xFF, 0xFF, 0xFF, 0x0F}, 11},
        {"reserved != sum", {0, 0, 0, 1, 1, 5, 3, 1, 1, 'a', 2}, 11},
        {"zero quantity", {0, 0, 0, 1, 1, 5, 0, 1, 1, 'a', 0}, 11},
        {"empty order id", {0, 0, 0, 1, 1, 5, 2, 1, 0, 2}, 10},
        {"order listed twice",
         {0, 0, 0, 1, 1, 5, 4, 2, 1, 'a', 2, 1, 'a', 2}, 14},
        {"id longer than value", {0, 0, 0, 1, 1, 5, 2, 1, 9, 'a', 2}, 11},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        PN_ASSERT_(decode_bytes(bad[i].bytes, bad[i].len) ==
                       PN_ERR_STORE_CORRUPT,
                   CU_FALSE, "%s is rejected", bad[i].what);
    static const uint8_t good[] = {0, 0, 0, 1, 1, 5, 2, 1, 1, 'a', 2};
    PN_ASSERT_EQ_INT(decode_bytes(good, sizeof good), PN_ERR_OK);

    /* Random damage: never a crash, only OK or STORE_CORRUPT. */
    uint8_t *m = malloc(len);
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        memcpy(m, enc, len);
        int flips = 1 + rand_r(&seed) % 3;
        for (int k = 0; k < flips; k++)
            m[4 + (size_t)rand_r(&seed) % (len - 4)] = (uint8_t)rand_r(&seed);
        pn_err_t e = decode_bytes(m, len - (size_t)(rand_r(&seed) % 2));
        if (e != PN_ERR_OK && e != PN_ERR_STORE_CORRUPT)
            PN_ASSERT_(false, CU_TRUE, "round %d: %s", round, pn_err_name(e));
    }
    free(m);
    free(enc);
    pn_state_clear(&s);
}

/* --- maintenance ---------------------------------------------------------- */

static void test_event_retention(void) {
    fixture_t f;
    setup_with(&f, 2, 1000);
    /* Written under fold 2: its snapshot will be stale after the reopen,
     * so its events must stay to rebuild it. */
    put_event(&f, "c|c", 1, 100, "c1");
    put_snapshot(&f, "c|c", 1);
    commit(&f);
    reopen(&f, 1, 1000);

    static const int64_t at_a[] = {100, 350, 200, 100, 100};
    for (int v = 1; v <= 5; v++)
        put_event(&f, "a|a", v, at_a[v - 1], "a");
    put_snapshot(&f, "a|a", 3);
    for (int v = 1; v <= 3; v++)
        put_event(&f, "b|b", v, 100, "b"); /* no snapshot */
    put_event(&f, "a|ab", 1, 100, "x");  /* no snapshot, shares a prefix */
    commit(&f);

    uint64_t n = 99;
    /* cutoff = 1350 - 1000 = 350: strictly older goes. */
    PN_REQUIRE_OK(pn_store_expire_events(f.store, 1350, &n));
    PN_ASSERT_EQ_INT(n, 2);
    scan_t sc;
    scan(f.store, "a|a", 1, &sc);
    PN_ASSERT_EQ_INT(sc.n, 3);
    PN_ASSERT_EQ_INT(sc.versions[0], 2); /* at == cutoff: kept */
    PN_ASSERT_EQ_INT(sc.versions[1], 4); /* above the snapshot: kept */
    PN_ASSERT_EQ_INT(sc.versions[2], 5);
    scan(f.store, "b|b", 1, &sc);
    PN_ASSERT_EQ_INT(sc.n, 3);
    scan(f.store, "a|ab", 1, &sc);
    PN_ASSERT_EQ_INT(sc.n, 1);
    scan(f.store, "c|c", 1, &sc);
    PN_ASSERT_EQ_INT(sc.n, 1);

    /* Idempotent; later, the one at the cutoff goes too. */
    PN_REQUIRE_OK(pn_store_expire_events(f.store, 1350, &n));
    PN_ASSERT_EQ_INT(n, 0);
    PN_REQUIRE_OK(pn_store_expire_events(f.store, 1351, &n));
    PN_ASSERT_EQ_INT(n, 1);

    /* Retention 0 keeps everything. */
    reopen(&f, 1, 0);
    PN_REQUIRE_OK(pn_store_expire_events(f.store, INT64_MAX, &n));
    PN_ASSERT_EQ_INT(n, 0);
    scan(f.store, "a|a", 1, &sc);
    PN_ASSERT_EQ_INT(sc.n, 2);
    teardown(&f);
}

static void test_event_retention_many(void) {
    fixture_t f;
    setup_with(&f, 0, 10);
    /* More than one delete chunk. */
    for (int v = 1; v <= 3000; v++)
        put_event(&f, "big|s", v, 0, "e");
    put_snapshot(&f, "big|s", 2500);
    commit(&f);
    uint64_t n = 0;
    PN_REQUIRE_OK(pn_store_expire_events(f.store, 1000, &n));
    PN_ASSERT_EQ_INT(n, 2500);
    scan_t *sc = calloc(1, sizeof *sc);
    scan(f.store, "big|s", 0, sc);
    PN_ASSERT_EQ_INT(sc->n, 500);
    PN_ASSERT_EQ_INT(sc->versions[0], 2501);
    free(sc);
    teardown(&f);
}

/* Steps of bounded work delete the same as one pass, resuming where the
 * previous stopped (also inside a stream), and each does at most its
 * work; a budget below 2 still makes progress. */
static void test_event_retention_steps(void) {
    fixture_t f;
    setup_with(&f, 0, 10);
    char stream[16];
    for (int s = 0; s < 40; s++) {
        snprintf(stream, sizeof stream, "st|%02d", s);
        for (int v = 1; v <= 30; v++)
            put_event(&f, stream, v, 0, "e");
        put_snapshot(&f, stream, 25);
    }
    commit(&f);
    uint64_t total = 0, n = 0;
    bool done = false;
    int steps = 0;
    while (!done) {
        PN_REQUIRE_OK(pn_store_expire_events_step(f.store, 1000, 7, &n, &done));
        PN_ASSERT(n <= 7);
        total += n;
        PN_REQUIRE(++steps < 10000);
    }
    PN_ASSERT_EQ_INT(total, 40 * 25);
    PN_ASSERT(steps > 40 * 25 / 7);
    scan_t sc;
    for (int s = 0; s < 40; s++) {
        snprintf(stream, sizeof stream, "st|%02d", s);
        scan(f.store, stream, 0, &sc);
        PN_ASSERT_EQ_INT(sc.n, 5);
        PN_ASSERT_EQ_INT(sc.versions[0], 26);
    }
    /* The next pass finds nothing left; budget 1 still gets through. */
    for (int s = 0; s < 3; s++) {
        snprintf(stream, sizeof stream, "st|%02d", s);
        put_snapshot(&f, stream, 30);
    }
    commit(&f);
    total = 0;
    done = false;
    steps = 0;
    while (!done) {
        PN_REQUIRE_OK(pn_store_expire_events_step(f.store, 1000, 1, &n, &done));
        total += n;
        PN_REQUIRE(++steps < 10000);
    }
    PN_ASSERT_EQ_INT(total, 3 * 5);
    PN_ASSERT_EQ_INT(pn_store_expire_events_step(f.store, 1000, 0, &n, &done),
                     PN_ERR_INVALID_ARG);
    teardown(&f);
}

static bool owns_st0(void *opaque, pn_str_t key) {
    (void)opaque;
    return key.len > 3 && key.ptr[3] == '0'; /* "st|0x" */
}

/* Dropping a partition in the middle of a pass ends the pass; the next
 * steps start a new one over what is left, and deleted streams stay
 * deleted. */
static void test_event_retention_steps_across_drop(void) {
    fixture_t f;
    setup_with(&f, 0, 10);
    char stream[16];
    for (int s = 0; s < 20; s++) {
        snprintf(stream, sizeof stream, "st|%02d", s);
        for (int v = 1; v <= 10; v++)
            put_event(&f, stream, v, 0, "e");
        put_snapshot(&f, stream, 10);
    }
    commit(&f);
    uint64_t n = 0, total = 0;
    bool done = false;
    PN_REQUIRE_OK(pn_store_expire_events_step(f.store, 1000, 5, &n, &done));
    PN_ASSERT(!done);
    total += n;
    PN_REQUIRE_OK(pn_store_drop_partition(f.store, 0, owns_st0, NULL));
    int steps = 0;
    do {
        PN_REQUIRE_OK(pn_store_expire_events_step(f.store, 1000, 5, &n, &done));
        total += n;
        PN_REQUIRE(++steps < 1000);
    } while (!done);
    /* st|00..st|09 dropped (the first step's deletes were among them);
     * st|10..st|19 expired by the new pass. */
    scan_t sc;
    for (int s = 0; s < 20; s++) {
        snprintf(stream, sizeof stream, "st|%02d", s);
        scan(f.store, stream, 0, &sc);
        PN_ASSERT_EQ_INT(sc.n, 0);
        PN_ASSERT(snapshot_found(&f, stream, NULL) == (s >= 10));
    }
    PN_ASSERT(total >= 100 && total <= 100 + 5);
    teardown(&f);
}

static pn_err_t open_window(const char *dir, uint64_t commands, int64_t ms,
                            pn_store_t **storep, char *err, size_t err_size) {
    pn_store_options_t so = {.path = dir,
                             .block_cache_bytes = CACHE_BYTES,
                             .write_buffer_bytes = WRITE_BUFFER_BYTES,
                             .dedup_window_commands = commands,
                             .dedup_window_ms = ms};
    return pn_store_open(&so, storep, err, err_size);
}

static void reopen_window(fixture_t *f, uint64_t commands, int64_t ms) {
    char err[512] = "";
    pn_store_close(f->store);
    f->store = NULL;
    pn_err_t e = open_window(f->dir, commands, ms, &f->store, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "reopen: %s %s", pn_err_name(e), err);
}

static void put_meta(fixture_t *f, int32_t partition, uint64_t seq,
                     int64_t max_at) {
    pn_partition_meta_t m = {0, seq, max_at};
    PN_REQUIRE_OK(pn_store_batch_put_partition_meta(f->batch, partition, &m));
}

static void test_dedup_expired_edges(void) {
    /* meta: 100 commands, latest at 10000; window: 10 commands, 1000 ms. */
    pn_partition_meta_t meta = {0, 100, 10000};
    pn_dedup_entry_t e = dedup_entry(0, 89, 8999); /* both just past */
    PN_ASSERT(pn_store_dedup_expired(10, 1000, &meta, &e));
    e = dedup_entry(0, 90, 8999); /* exactly 10 behind */
    PN_ASSERT(!pn_store_dedup_expired(10, 1000, &meta, &e));
    e = dedup_entry(0, 89, 9000); /* exactly 1000 ms */
    PN_ASSERT(!pn_store_dedup_expired(10, 1000, &meta, &e));
    e = dedup_entry(0, 101, 0); /* ahead of the watermark: kept */
    PN_ASSERT(!pn_store_dedup_expired(10, 1000, &meta, &e));
    e = dedup_entry(0, 0, INT64_MIN); /* time bound overflows: kept */
    meta.dedup_max_at_ms = INT64_MIN + 5;
    PN_ASSERT(!pn_store_dedup_expired(0, 1000, &meta, &e));
    meta.dedup_max_at_ms = 10000;
    e = dedup_entry(0, 0, 0); /* a window wider than all time */
    PN_ASSERT(!pn_store_dedup_expired(0, INT64_MAX, &meta, &e));
}

/*
 * Compaction drops exactly the entries outside both bounds of their
 * partition's watermarks, as of the last landed write; an unknown
 * partition keeps everything; watermarks survive a reopen; and until the
 * compaction runs the entries are still there (the engine ignores them).
 */
static void test_dedup_expires_in_compaction(void) {
    fixture_t f;
    setup(&f);
    reopen_window(&f, 10, 1000);
    uint64_t wc;
    int64_t wms;
    pn_store_dedup_window(f.store, &wc, &wms);
    PN_ASSERT_EQ_INT(wc, 10);
    PN_ASSERT_EQ_INT(wms, 1000);
    put_dedup(&f, "s|1", "e1", 0, 89, 8999); /* both just past: expires */
    put_dedup(&f, "s|1", "e2", 0, 90, 8999); /* exactly 10 behind: kept */
    put_dedup(&f, "s|1", "e3", 0, 89, 9000); /* exactly 1000 ms: kept */
    put_dedup(&f, "s|2", "e4", 0, 0, 0);     /* far past: expires */
    put_dedup(&f, "s|2", "e5", 0, 95, 0);    /* old but recent seq: kept */
    put_dedup(&f, "s|3", "e6", 1, 0, 0);     /* partition 1: no meta */
    put_dedup(&f, "s|4", "e7", 0, 1, 1);     /* replaced below */
    put_dedup(&f, "s|5", "e8", 7, 0, 0);     /* partition 7, meta later */
    commit(&f);
    put_dedup(&f, "s|4", "e7", 0, 99, 9999);
    put_meta(&f, 0, 100, 10000);
    commit(&f);
    /* Not compacted yet: all still stored. */
    PN_ASSERT(dedup_found(&f, "s|1", "e1", NULL));
    PN_ASSERT(dedup_found(&f, "s|2", "e4", NULL));
    pn_store__test_compact_dedup(f.store);
    PN_ASSERT(!dedup_found(&f, "s|1", "e1", NULL));
    PN_ASSERT(dedup_found(&f, "s|1", "e2", NULL));
    PN_ASSERT(dedup_found(&f, "s|1", "e3", NULL));
    PN_ASSERT(!dedup_found(&f, "s|2", "e4", NULL));
    PN_ASSERT(dedup_found(&f, "s|2", "e5", NULL));
    PN_ASSERT(dedup_found(&f, "s|3", "e6", NULL));
    pn_dedup_entry_t e;
    PN_ASSERT(dedup_found(&f, "s|4", "e7", &e));
    PN_ASSERT_EQ_INT(e.seq, 99);
    PN_ASSERT(dedup_found(&f, "s|5", "e8", NULL));

    /* Partition 7's watermarks arrive with an asynchronous write; after a
     * reopen partition 0's come back from meta: one more command moves
     * e2 out by count, later in time e3 goes; e5 and e7 stay. */
    put_meta(&f, 7, 50, 5000);
    char err[256];
    PN_REQUIRE_OK(pn_store_commit_async(f.store, f.batch, err, sizeof err));
    PN_REQUIRE_OK(pn_store_sync(f.store, err, sizeof err));
    reopen_window(&f, 10, 1000);
    pn_store__test_compact_dedup(f.store);
    PN_ASSERT(!dedup_found(&f, "s|5", "e8", NULL));
    PN_ASSERT(dedup_found(&f, "s|1", "e2", NULL));
    put_meta(&f, 0, 101, 10001);
    commit(&f);
    pn_store__test_compact_dedup(f.store);
    PN_ASSERT(!dedup_found(&f, "s|1", "e2", NULL));
    PN_ASSERT(!dedup_found(&f, "s|1", "e3", NULL));
    PN_ASSERT(dedup_found(&f, "s|2", "e5", NULL));
    PN_ASSERT(dedup_found(&f, "s|4", "e7", NULL));
    PN_ASSERT(dedup_found(&f, "s|3", "e6", NULL));

    /* A wide window keeps everything, whatever the watermarks. */
    reopen_window(&f, 0, INT64_MAX);
    put_meta(&f, 0, UINT64_MAX, INT64_MAX);
    commit(&f);
    pn_store__test_compact_dedup(f.store);
    PN_ASSERT(dedup_found(&f, "s|2", "e5", NULL));
    teardown(&f);
}

/* --- the idempotency filter --------------------------------------------- */

#define FILTER_IDS 100000 /* past the filter's first part (65,536 keys) */

/* Writes ids [from, to) of stream "f|1" at seq = at = id, in batches. */
static void put_ids(fixture_t *f, int from, int to) {
    char id[32];
    for (int i = from; i < to; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        put_dedup(f, "f|1", id, 0, (uint64_t)i, i);
        if (i % 5000 == 4999 || i == to - 1)
            commit(f);
    }
}

/* How many of ids [from, to) are found. */
static int count_found(fixture_t *f, int from, int to) {
    char id[32];
    int n = 0;
    for (int i = from; i < to; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        n += dedup_found(f, "f|1", id, NULL);
    }
    return n;
}

/*
 * The filter lets a lookup skip RocksDB for an id that was never stored;
 * it must never hide one that was: written before it was built (the build
 * scans them), after (commit adds them, across its growth), after a reopen,
 * and after expiry dropped it for a rebuild.
 */
static void test_dedup_filter_never_hides_an_id(void) {
    fixture_t f;
    setup(&f);
    put_ids(&f, 0, 10); /* before the first lookup: no filter yet */
    PN_ASSERT_EQ_INT(count_found(&f, 0, 10), 10);
    put_ids(&f, 10, FILTER_IDS); /* added by commits, filter grows */
    PN_ASSERT_EQ_INT(count_found(&f, 0, FILTER_IDS), FILTER_IDS);
    PN_ASSERT_EQ_INT(count_found(&f, FILTER_IDS, FILTER_IDS + 1000), 0);

    /* Window: 1000 commands, 0 ms. */
    reopen_window(&f, 1000, 0);
    PN_ASSERT_EQ_INT(count_found(&f, 0, FILTER_IDS), FILTER_IDS);

    /* Expire all but the last 1000 by compaction: the filter, which still
     * holds them all, is dropped once it holds too many more keys than
     * the family, rebuilt from what is left, and later writes are still
     * seen. */
    put_meta(&f, 0, FILTER_IDS, FILTER_IDS);
    commit(&f);
    pn_store__test_compact_dedup(f.store);
    PN_ASSERT_EQ_INT(count_found(&f, 0, FILTER_IDS), 1000);
    put_ids(&f, FILTER_IDS, FILTER_IDS + 3 * FILTER_IDS);
    PN_ASSERT_EQ_INT(count_found(&f, FILTER_IDS - 1000, 4 * FILTER_IDS),
                     3 * FILTER_IDS + 1000);
    PN_ASSERT(f.store->filter.ready);
    /* Rebuilt: it holds the stored keys, not the 99,000 expired too. */
    PN_ASSERT_(f.store->filter.keys <= 3 * FILTER_IDS + 1000, CU_FALSE,
               "filter rebuilt, not grown past the live keys: %llu",
               (unsigned long long)f.store->filter.keys);
    teardown(&f);
}

static bool owns_p0(void *opaque, pn_str_t key) {
    int *calls = opaque;
    (*calls)++;
    return pn_str_eq(key, pn_str_c("p0|a")) || pn_str_eq(key, pn_str_c("p0|b"));
}

static void test_drop_partition(void) {
    fixture_t f;
    setup(&f);
    static const char *const streams[] = {"p0|a", "p0|b", "p0|ab", "p1|a"};
    for (int i = 0; i < 4; i++) {
        int32_t partition = i < 2 ? 0 : 1;
        for (int v = 1; v <= 3; v++)
            put_event(&f, streams[i], v, v, "e");
        put_snapshot(&f, streams[i], 3);
        put_dedup(&f, streams[i], "cmd", partition, (uint64_t)i, 1);
        put_dedup(&f, streams[i], "cmd2", partition, (uint64_t)i + 10, 2);
    }
    pn_partition_meta_t m = {3, 4, 2};
    PN_REQUIRE_OK(pn_store_batch_put_partition_meta(f.batch, 0, &m));
    PN_REQUIRE_OK(pn_store_batch_put_partition_meta(f.batch, 1, &m));
    commit(&f);

    int calls = 0;
    PN_REQUIRE_OK(pn_store_drop_partition(f.store, 0, owns_p0, &calls));
    PN_ASSERT(calls > 0);
    for (int i = 0; i < 4; i++) {
        bool gone = i < 2;
        scan_t sc;
        scan(f.store, streams[i], 0, &sc);
        PN_ASSERT_EQ_INT(sc.n, gone ? 0 : 3);
        PN_ASSERT(snapshot_found(&f, streams[i], NULL) == !gone);
        PN_ASSERT(dedup_found(&f, streams[i], "cmd", NULL) == !gone);
        PN_ASSERT(dedup_found(&f, streams[i], "cmd2", NULL) == !gone);
    }
    PN_ASSERT(!meta_found(f.store, 0, NULL));
    PN_ASSERT(meta_found(f.store, 1, NULL));

    /* Compaction after the drop neither brings them back nor touches
     * partition 1's; its watermarks are forgotten (nothing expires by
     * them if it comes back). */
    pn_store__test_compact_dedup(f.store);
    for (int i = 0; i < 4; i++)
        PN_ASSERT(dedup_found(&f, streams[i], "cmd", NULL) == (i >= 2));
    PN_ASSERT(f.store->marks.n_parts > 1 && !f.store->marks.parts[0].known &&
              f.store->marks.parts[1].known);

    /* Puts after the drop's range deletions, then a second drop after the
     * puts: the dedup family's insert hint never sees a range tombstone
     * and a put in one memtable (write_drop in store_maint.c; RocksDB's
     * debug assertions catch it too). */
    for (int i = 0; i < 4; i++)
        put_dedup(&f, streams[i], "cmd3", i < 2 ? 0 : 1, (uint64_t)i + 20, 3);
    commit(&f);
    for (int i = 0; i < 4; i++)
        PN_ASSERT(dedup_found(&f, streams[i], "cmd3", NULL));
    PN_REQUIRE_OK(pn_store_drop_partition(f.store, 0, owns_p0, &calls));
    put_dedup(&f, streams[3], "cmd4", 1, 30, 4);
    commit(&f);
    for (int i = 0; i < 4; i++)
        PN_ASSERT(dedup_found(&f, streams[i], "cmd3", NULL) == (i >= 2));
    PN_ASSERT(dedup_found(&f, streams[3], "cmd4", NULL));
    PN_ASSERT(!f.store->hints_unsafe);
    teardown(&f);
}

/* Writes to the store's directory with plain RocksDB options (no insert
 * hint), as a build before the hint did: a dedup range deletion and a put
 * after it, left in the WAL (a close does not flush). */
static void write_like_old_build(const char *dir) {
    rocksdb_options_t *db = rocksdb_options_create();
    const rocksdb_options_t *cf_opts[PN_STORE_CF__COUNT];
    rocksdb_options_t *owned[PN_STORE_CF__COUNT];
    rocksdb_column_family_handle_t *cf[PN_STORE_CF__COUNT];
    for (int i = 0; i < PN_STORE_CF__COUNT; i++)
        cf_opts[i] = owned[i] = rocksdb_options_create();
    char *rerr = NULL;
    rocksdb_t *rdb = rocksdb_open_column_families(
        db, dir, PN_STORE_CF__COUNT, pn_store__cf_names, cf_opts, cf, &rerr);
    PN_ASSERT_(rerr == NULL, CU_TRUE, "raw open: %s", rerr ? rerr : "");
    PN_REQUIRE(rdb != NULL);
    uint8_t start[PN_STORE_PREFIX_MAX], end[PN_STORE_PREFIX_MAX];
    size_t start_len = pn_store__prefix(start, pn_str_c("p0|a"));
    memcpy(end, start, start_len);
    size_t end_len = pn_store__successor(end, start_len);
    pn_buf_t key;
    pn_buf_init(&key, SIZE_MAX);
    PN_REQUIRE_OK(pn_store__dedup_key(&key, pn_str_c("p0|b"), pn_str_c("cmd2")));
    uint8_t value[PN_STORE_DEDUP_VALUE_MAX];
    pn_dedup_entry_t e = dedup_entry(0, 7, 3);
    size_t vlen = pn_store__dedup_encode(value, &e);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range_cf(wb, cf[PN_STORE_CF_DEDUP],
                                       (const char *)start, start_len,
                                       (const char *)end, end_len);
    rocksdb_writebatch_put_cf(wb, cf[PN_STORE_CF_DEDUP], (const char *)key.data,
                              key.len, (const char *)value, vlen);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_write(rdb, wo, wb, &rerr);
    PN_ASSERT_(rerr == NULL, CU_TRUE, "raw write: %s", rerr ? rerr : "");
    rocksdb_writeoptions_destroy(wo);
    rocksdb_writebatch_destroy(wb);
    pn_buf_free(&key);
    for (int i = 0; i < PN_STORE_CF__COUNT; i++)
        rocksdb_column_family_handle_destroy(cf[i]);
    rocksdb_close(rdb);
    for (int i = 0; i < PN_STORE_CF__COUNT; i++)
        rocksdb_options_destroy(owned[i]);
    rocksdb_options_destroy(db);
}

/* A store last written by a build without the dedup insert hint (no
 * marker file) may have range deletions and puts in one dedup memtable of
 * its WAL: the first open replays it without the hint and flushes. */
static void test_open_store_of_older_build(void) {
    fixture_t f;
    setup(&f);
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/PANTHER-DEDUP-HINT", f.dir);
    PN_ASSERT(access(marker, F_OK) == 0);
    put_dedup(&f, "p0|a", "cmd", 0, 1, 1);
    put_dedup(&f, "p1|a", "cmd", 1, 2, 2);
    commit(&f);
    pn_store_close(f.store);
    f.store = NULL;
    write_like_old_build(f.dir);
    PN_REQUIRE(unlink(marker) == 0);
    reopen(&f, 0, 0);
    PN_REQUIRE(f.store != NULL);
    PN_ASSERT(access(marker, F_OK) == 0);
    PN_ASSERT(!dedup_found(&f, "p0|a", "cmd", NULL));
    PN_ASSERT(dedup_found(&f, "p1|a", "cmd", NULL));
    PN_ASSERT(dedup_found(&f, "p0|b", "cmd2", NULL));
    put_dedup(&f, "p0|a", "cmd3", 0, 8, 4);
    commit(&f);
    reopen(&f, 0, 0);
    PN_ASSERT(dedup_found(&f, "p0|a", "cmd3", NULL));
    PN_ASSERT(dedup_found(&f, "p0|b", "cmd2", NULL));
    teardown(&f);
}

/* --- concurrent reads: snapshot with time, prefix scans ------------------ */

static int64_t read_one(pn_store_t *store, const char *stream, int64_t *at,
                        pn_snapshot_status_t *status) {
    pn_state_t s;
    pn_state_init(&s);
    PN_REQUIRE_OK(pn_store_read_snapshot(store, pn_str_c(stream), &s, at, status));
    int64_t v = s.version;
    pn_state_clear(&s);
    return v;
}

static void test_read_snapshot_with_time(void) {
    fixture_t f;
    setup(&f);
    put_snapshot(&f, "s|1", 4);
    PN_REQUIRE_OK(pn_store_batch_put_stream_time(f.batch, pn_str_c("s|1"), 1234));
    put_snapshot(&f, "s|2", 2); /* no time */
    commit(&f);
    int64_t at;
    pn_snapshot_status_t st;
    PN_ASSERT_EQ_INT(read_one(f.store, "s|1", &at, &st), 4);
    PN_ASSERT_EQ_INT(st, PN_SNAPSHOT_FOUND);
    PN_ASSERT_EQ_INT(at, 1234);
    pn_state_t s;
    pn_state_init(&s);
    PN_REQUIRE_OK(pn_store_read_snapshot(f.store, pn_str_c("s|1"), &s, &at, &st));
    PN_ASSERT_EQ_INT(s.on_hand, 40);
    PN_ASSERT_EQ_INT(s.reserved, 2);
    PN_ASSERT_EQ_INT(s.n_reservations, 1);
    pn_state_clear(&s);
    PN_ASSERT_EQ_INT(read_one(f.store, "s|2", &at, &st), 2);
    PN_ASSERT_EQ_INT(at, PN_STORE_NO_TIME);
    PN_ASSERT_EQ_INT(read_one(f.store, "s|3", &at, &st), 0);
    PN_ASSERT_EQ_INT(st, PN_SNAPSHOT_NONE);
    PN_ASSERT_EQ_INT(at, PN_STORE_NO_TIME);
    /* A later time overwrites; negative times are kept as they are. */
    PN_REQUIRE_OK(pn_store_batch_put_stream_time(f.batch, pn_str_c("s|1"), -5));
    commit(&f);
    read_one(f.store, "s|1", &at, &st);
    PN_ASSERT_EQ_INT(at, -5);
    PN_ASSERT_EQ_INT(pn_store_read_snapshot(f.store, PN_STR_NULL, &s, &at, &st),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_store_batch_put_stream_time(f.batch, PN_STR_NULL, 1),
                     PN_ERR_INVALID_ARG);
    /* Another fold format: STALE, like pn_store_get_snapshot. */
    reopen(&f, 2, 0);
    PN_ASSERT_EQ_INT(read_one(f.store, "s|1", &at, &st), 0);
    PN_ASSERT_EQ_INT(st, PN_SNAPSHOT_STALE);
    teardown(&f);
}

#define SNAP_SEEN_MAX 64
typedef struct snap_seen {
    size_t n;
    char keys[SNAP_SEEN_MAX][PN_STREAM_KEY_MAX];
    int64_t versions[SNAP_SEEN_MAX], ats[SNAP_SEEN_MAX];
    size_t stop_after;
} snap_seen_t;

static pn_err_t on_snapshot(void *opaque, pn_str_t key, const pn_state_t *state,
                            int64_t at_ms) {
    snap_seen_t *seen = opaque;
    if (seen->n == SNAP_SEEN_MAX)
        return PN_ERR_TOO_LARGE;
    snprintf(seen->keys[seen->n], sizeof seen->keys[0], "%.*s", (int)key.len,
             key.ptr);
    seen->versions[seen->n] = state->version;
    seen->ats[seen->n] = at_ms;
    seen->n++;
    return seen->stop_after && seen->n == seen->stop_after ? PN_ERR_INTERNAL
                                                           : PN_ERR_OK;
}

static void scan_prefix(pn_store_t *store, const char *prefix, snap_seen_t *seen) {
    memset(seen, 0, sizeof *seen);
    PN_REQUIRE_OK(pn_store_scan_snapshots(store, pn_str_c(prefix), on_snapshot, seen));
}

static bool seen_has(const snap_seen_t *seen, const char *key) {
    for (size_t i = 0; i < seen->n; i++)
        if (!strcmp(seen->keys[i], key))
            return true;
    return false;
}

static void test_scan_snapshots_by_prefix(void) {
    fixture_t f;
    setup(&f);
    char long_node[300];
    memset(long_node, 'n', 256);
    long_node[256] = '\0';
    char long_key[600];
    snprintf(long_key, sizeof long_key, "A|%s", long_node);
    const char *keys[] = {"A|1", "A|10", "A|2", "A|DC-9", "AB|1", "A", "B|1",
                          "|A|1", "A|1|x", long_key, "Z|\xC3\xA9"};
    size_t n_keys = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < n_keys; i++) {
        put_snapshot(&f, keys[i], (int64_t)i + 1);
        PN_REQUIRE_OK(pn_store_batch_put_stream_time(f.batch, pn_str_c(keys[i]),
                                                     (int64_t)i * 100));
    }
    /* Events and times of other streams do not confuse the scan. */
    put_event(&f, "A|3", 1, 1, "e");
    PN_REQUIRE_OK(pn_store_batch_put_stream_time(f.batch, pn_str_c("A|4"), 7));
    commit(&f);

    snap_seen_t seen;
    scan_prefix(f.store, "A|", &seen);
    const char *want[] = {"A|1", "A|10", "A|2", "A|DC-9", "A|1|x", long_key};
    PN_ASSERT_EQ_INT(seen.n, 6);
    for (size_t i = 0; i < 6; i++)
        PN_ASSERT_(seen_has(&seen, want[i]), CU_FALSE, "missing %.20s", want[i]);
    /* Ordered by length, then bytes. */
    PN_ASSERT(strcmp(seen.keys[0], "A|1") == 0);
    PN_ASSERT(strcmp(seen.keys[1], "A|2") == 0);
    PN_ASSERT(strcmp(seen.keys[2], "A|10") == 0);
    for (size_t i = 0; i < seen.n; i++)
        for (size_t k = 0; k < n_keys; k++)
            if (!strcmp(seen.keys[i], keys[k])) {
                PN_ASSERT_EQ_INT(seen.versions[i], (int64_t)k + 1);
                PN_ASSERT_EQ_INT(seen.ats[i], (int64_t)k * 100);
            }
    scan_prefix(f.store, "", &seen);
    PN_ASSERT_EQ_INT(seen.n, n_keys);
    scan_prefix(f.store, "A", &seen);
    PN_ASSERT_EQ_INT(seen.n, 8); /* A|..., AB|1, A */
    scan_prefix(f.store, "Z|\xC3\xA9", &seen);
    PN_ASSERT_EQ_INT(seen.n, 1);
    scan_prefix(f.store, "C|", &seen);
    PN_ASSERT_EQ_INT(seen.n, 0);
    scan_prefix(f.store, long_key, &seen);
    PN_ASSERT_EQ_INT(seen.n, 1);
    /* A callback error stops the scan and comes back. */
    memset(&seen, 0, sizeof seen);
    seen.stop_after = 2;
    PN_ASSERT_EQ_INT(pn_store_scan_snapshots(f.store, pn_str_c("A|"), on_snapshot,
                                             &seen),
                     PN_ERR_INTERNAL);
    PN_ASSERT_EQ_INT(seen.n, 2);
    PN_ASSERT_EQ_INT(pn_store_scan_snapshots(f.store, pn_str_c("A|"), NULL, NULL),
                     PN_ERR_INVALID_ARG);
    /* Snapshots of another fold are skipped; rewritten ones are seen. */
    reopen(&f, 2, 0);
    put_snapshot(&f, "A|2", 50);
    commit(&f);
    scan_prefix(f.store, "A|", &seen);
    PN_ASSERT_EQ_INT(seen.n, 1);
    PN_ASSERT(strcmp(seen.keys[0], "A|2") == 0);
    PN_ASSERT_EQ_INT(seen.versions[0], 50);
    PN_ASSERT_EQ_INT(seen.ats[0], 200); /* the time was not rewritten */
    teardown(&f);
}

static bool owns_a(void *opaque, pn_str_t key) {
    (void)opaque;
    return key.len > 2 && key.ptr[0] == 'a' && key.ptr[1] == '|';
}

static void test_drop_partition_drops_times(void) {
    fixture_t f;
    setup(&f);
    const char *keys[] = {"a|1", "a|2", "b|1"};
    for (int i = 0; i < 3; i++) {
        put_snapshot(&f, keys[i], 1);
        PN_REQUIRE_OK(pn_store_batch_put_stream_time(f.batch, pn_str_c(keys[i]), 9));
    }
    commit(&f);
    PN_REQUIRE_OK(pn_store_drop_partition(f.store, 0, owns_a, NULL));
    int64_t at;
    pn_snapshot_status_t st;
    read_one(f.store, "a|1", &at, &st);
    PN_ASSERT_EQ_INT(st, PN_SNAPSHOT_NONE);
    /* Write the snapshot back alone: no time survived the drop. */
    put_snapshot(&f, "a|1", 1);
    commit(&f);
    read_one(f.store, "a|1", &at, &st);
    PN_ASSERT_EQ_INT(st, PN_SNAPSHOT_FOUND);
    PN_ASSERT_EQ_INT(at, PN_STORE_NO_TIME);
    read_one(f.store, "b|1", &at, &st);
    PN_ASSERT_EQ_INT(at, 9);
    teardown(&f);
}

/* Readers on other threads while the owner commits: every read sees one
 * whole batch (state and time agree) and versions never go back. */
typedef struct reader_arg {
    pn_store_t *store;
    volatile int *stop;
    uint64_t reads;
    int bad;
} reader_arg_t;

static pn_err_t check_pair(void *opaque, pn_str_t key, const pn_state_t *state,
                           int64_t at_ms) {
    reader_arg_t *a = opaque;
    (void)key;
    if (at_ms != state->version * 1000 || state->on_hand != state->version * 10)
        a->bad++;
    return PN_ERR_OK;
}

static void *reader_thread(void *arg) {
    reader_arg_t *a = arg;
    int64_t last = 0;
    pn_state_t s;
    pn_state_init(&s);
    while (!*a->stop) {
        int64_t at;
        pn_snapshot_status_t st;
        if (pn_store_read_snapshot(a->store, pn_str_c("c|0"), &s, &at, &st)) {
            a->bad++;
            break;
        }
        if (st == PN_SNAPSHOT_FOUND &&
            (s.version < last || at != s.version * 1000))
            a->bad++;
        last = s.version;
        if (pn_store_scan_snapshots(a->store, pn_str_c("c|"), check_pair, a))
            a->bad++;
        a->reads++;
    }
    pn_state_clear(&s);
    return NULL;
}

static void test_concurrent_readers(void) {
    fixture_t f;
    setup(&f);
    enum { READERS = 4 };
    volatile int stop = 0;
    pthread_t th[READERS];
    reader_arg_t args[READERS];
    for (int i = 0; i < READERS; i++) {
        args[i] = (reader_arg_t){f.store, &stop, 0, 0};
        PN_REQUIRE(pthread_create(&th[i], NULL, reader_thread, &args[i]) == 0);
    }
    for (int64_t v = 1; v <= 2000; v++) {
        for (int k = 0; k < 4; k++) {
            char key[16];
            snprintf(key, sizeof key, "c|%d", k);
            put_snapshot(&f, key, v);
            PN_REQUIRE_OK(pn_store_batch_put_stream_time(f.batch, pn_str_c(key),
                                                         v * 1000));
        }
        commit(&f);
    }
    stop = 1;
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
        PN_ASSERT_EQ_INT(args[i].bad, 0);
        PN_ASSERT(args[i].reads > 0);
    }
    teardown(&f);
}

static void test_memory_usage(void) {
    fixture_t f;
    setup(&f);
    PN_ASSERT(pn_store_memory_usage(f.store) > 0);
    char data[1000];
    memset(data, 'x', sizeof data);
    /* 24 MB through an 8 MiB write budget and an 8 MiB cache. */
    for (int b = 0; b < 24; b++) {
        for (int i = 0; i < 1000; i++)
            PN_REQUIRE_OK(pn_store_batch_put_event(
                f.batch, pn_str_c("mem|s"), b * 1000 + i + 1, 0, data,
                sizeof data));
        commit(&f);
    }
    scan_t *sc = calloc(1, sizeof *sc);
    scan(f.store, "mem|s", 23001, sc); /* reads some blocks into the cache */
    free(sc);
    uint64_t used = pn_store_memory_usage(f.store);
    PN_ASSERT(used > (1u << 20));
    PN_ASSERT_(used < CACHE_BYTES + 3 * WRITE_BUFFER_BYTES, CU_FALSE,
               "memory bounded: %" PRIu64 " bytes", used);
    PN_ASSERT_EQ_INT(pn_store_memory_usage(NULL), 0);
    teardown(&f);
}

static void test_second_open_fails_cleanly(void) {
    fixture_t f;
    setup(&f);
    char err[512] = "";
    pn_store_t *other = NULL;
    pn_err_t e = open_store(f.dir, 0, 0, &other, err, sizeof err);
    PN_ASSERT_EQ_INT(e, PN_ERR_STORE_IO);
    PN_ASSERT(other == NULL);
    PN_ASSERT_(strstr(err, f.dir) != NULL, CU_FALSE, "%s", err);
    /* The failure was the other handle's; this one has seen none. */
    PN_ASSERT_EQ_STR(pn_store_last_error(f.store), "");
    PN_ASSERT_EQ_STR(pn_store_last_error(NULL), "");
    teardown(&f);
}

/* Paths RocksDB cannot use are I/O errors, not corruption. */
static void test_unusable_paths(void) {
    char *dir = pn_test_tmpdir("store");
    char path[4096], err[512] = "";
    pn_store_t *store = NULL;
    snprintf(path, sizeof path, "%s/missing/parent", dir);
    pn_err_t e = open_store(path, 0, 0, &store, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_STORE_IO, CU_FALSE, "missing parent: %s %s",
               pn_err_name(e), err);
    PN_ASSERT_(strstr(err, path) != NULL, CU_FALSE, "%s", err);
    write_file(dir, "plain", "x", 1);
    snprintf(path, sizeof path, "%s/plain", dir);
    e = open_store(path, 0, 0, &store, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_STORE_IO, CU_FALSE, "a file: %s %s", pn_err_name(e),
               err);
    PN_ASSERT(store == NULL);
    /* An empty directory with unrelated files (lost+found on a volume) is
     * a fine place for a new store. */
    snprintf(path, sizeof path, "%s/volume", dir);
    PN_REQUIRE(mkdir(path, 0700) == 0);
    write_file(path, "README", "x", 1);
    e = open_store(path, 0, 0, &store, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_FALSE, "volume: %s %s", pn_err_name(e), err);
    pn_store_close(store);
    pn_test_rmdir(dir);
    free(dir);
}

/* --- crash test ------------------------------------------------------------ */

#define CRASH_ENV "PN_TEST_STORE_CRASH_DIR"
#define CRASH_SYNC_ENV "PN_TEST_STORE_CRASH_SYNC"
#define CRASH_ACK_FD 3
#define CRASH_KEYS 8
#define CRASH_ROUNDS 5

static void crash_stream(char *buf, size_t size, int i) {
    snprintf(buf, size, "crash%d|dc", i);
}

static void crash_command(char *buf, size_t size, uint64_t b) {
    snprintf(buf, size, "cmd-%" PRIu64, b);
}

/* The writer: commits batch after batch, each with CRASH_KEYS events,
 * a snapshot, a dedup entry and the partition meta, all carrying the batch
 * number b, and acknowledges each commit on CRASH_ACK_FD. */
static int crash_writer(const char *dir, bool sync) {
    char err[512];
    pn_store_t *store;
    pn_store_options_t so = {.path = dir, .sync_writes = sync,
                             .block_cache_bytes = CACHE_BYTES,
                             .write_buffer_bytes = WRITE_BUFFER_BYTES};
    pn_store_batch_t *batch;
    pn_partition_meta_t meta;
    bool found;
    if (pn_store_open(&so, &store, err, sizeof err) ||
        pn_store_get_partition_meta(store, 0, &meta, &found) ||
        pn_store_batch_new(&batch))
        return 2;
    for (uint64_t b = found ? (uint64_t)meta.events_offset + 1 : 1;; b++) {
        char stream[32], data[64], id[32];
        pn_store_batch_clear(batch);
        for (int i = 0; i < CRASH_KEYS; i++) {
            crash_stream(stream, sizeof stream, i);
            int n = snprintf(data, sizeof data, "batch %" PRIu64 " key %d", b, i);
            if (pn_store_batch_put_event(batch, pn_str_c(stream), (int64_t)b,
                                         (int64_t)b, data, (size_t)n))
                return 3;
        }
        pn_state_t s;
        pn_state_init(&s);
        s.version = (int64_t)b;
        s.on_hand = (int64_t)b;
        crash_command(id, sizeof id, b);
        pn_dedup_entry_t e = dedup_entry(0, b, (int64_t)b);
        meta = (pn_partition_meta_t){(int64_t)b, b, (int64_t)b};
        if (pn_store_batch_put_snapshot(batch, pn_str_c("crash0|dc"), &s) ||
            pn_store_batch_put_dedup(batch, pn_str_c("crash0|dc"),
                                     pn_str_c(id), &e) ||
            pn_store_batch_put_partition_meta(batch, 0, &meta) ||
            pn_store_commit(store, batch, err, sizeof err))
            return 4;
        if (write(CRASH_ACK_FD, &b, sizeof b) != (ssize_t)sizeof b)
            return 5;
    }
}

/* The re-executed test binary is the crash writer (see pn_test.h). */
void pn_test_before_main(void) {
    const char *dir = getenv(CRASH_ENV);
    if (dir && *dir)
        _exit(crash_writer(dir, getenv(CRASH_SYNC_ENV) != NULL));
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads acknowledgements until the deadline (or EOF); returns false on EOF.
 * *last is the highest batch acknowledged. */
static bool drain_acks(int fd, int64_t deadline, uint64_t *last,
                       uint64_t *count) {
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return true;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0;
        uint64_t acks[512];
        ssize_t n = read(fd, acks, sizeof acks);
        if (n <= 0)
            return false;
        for (size_t i = 0; i < (size_t)n / sizeof acks[0]; i++) {
            *last = acks[i];
            (*count)++;
        }
        if (*count > 0 && deadline == INT64_MAX)
            return true;
    }
}

/* Environment of the writer: ours plus the crash variables. */
static char **writer_env(const char *dir, bool sync) {
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 3, sizeof *env);
    static char dir_var[4200];
    if (!env)
        return NULL;
    static char sync_var[] = CRASH_SYNC_ENV "=1";
    snprintf(dir_var, sizeof dir_var, "%s=%s", CRASH_ENV, dir);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], CRASH_ENV, strlen(CRASH_ENV)) != 0 &&
            strncmp(environ[i], CRASH_SYNC_ENV, strlen(CRASH_SYNC_ENV)) != 0)
            env[k++] = environ[i];
    env[k++] = dir_var;
    if (sync)
        env[k++] = sync_var;
    return env;
}

/* One round: start the writer, let it commit for delay_ms after its first
 * acknowledgement, SIGKILL it. Returns the last acknowledged batch. */
static uint64_t crash_round(const char *dir, bool sync, int delay_ms) {
    int fds[2];
    PN_REQUIRE(pipe(fds) == 0);
    char **env = writer_env(dir, sync);
    PN_REQUIRE(env != NULL);
    char *argv[] = {"test_store", NULL};
    pid_t pid = fork();
    PN_REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (dup2(fds[1], CRASH_ACK_FD) < 0)
            _exit(126);
        execve("/proc/self/exe", argv, env);
        _exit(127);
    }
    free(env);
    close(fds[1]);
    uint64_t last = 0, count = 0;
    /* Wait (up to 60 s) for the writer to be up and committing. */
    bool alive = drain_acks(fds[0], INT64_MAX, &last, &count) && count > 0;
    if (alive)
        alive = drain_acks(fds[0], now_ms() + delay_ms, &last, &count);
    kill(pid, SIGKILL);
    int status = 0;
    PN_REQUIRE(waitpid(pid, &status, 0) == pid);
    /* Acknowledgements already in the pipe. */
    while (drain_acks(fds[0], now_ms() + 1000, &last, &count))
        ;
    close(fds[0]);
    PN_ASSERT_(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, CU_TRUE,
               "writer was killed, not dead on its own (status %d)", status);
    PN_ASSERT_(count > 0, CU_TRUE, "writer committed something");
    return last;
}

/* Checks that a stream's events are versions 1, 2, ... with their data. */
typedef struct crash_scan {
    int key;
    uint64_t expect; /* next version */
    bool ok;
} crash_scan_t;

static pn_err_t crash_check(void *opaque, int64_t version, const void *data,
                            size_t len) {
    crash_scan_t *cs = opaque;
    char want[64];
    int n = snprintf(want, sizeof want, "batch %" PRId64 " key %d", version,
                     cs->key);
    if ((uint64_t)version != cs->expect || (size_t)n != len ||
        memcmp(want, data, len) != 0)
        cs->ok = false;
    cs->expect++;
    return PN_ERR_OK;
}

/* Everything of batches 1..n is there, nothing of later batches. */
static void crash_verify(const char *dir, uint64_t acked) {
    fixture_t f = {.dir = (char *)dir};
    char err[512] = "";
    pn_err_t e = open_store(dir, 0, 0, &f.store, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "reopen after kill: %s", err);
    pn_partition_meta_t meta;
    PN_REQUIRE(meta_found(f.store, 0, &meta));
    uint64_t n = (uint64_t)meta.events_offset;
    /* Acknowledged means durable; at most one batch was in flight. */
    PN_ASSERT_(n >= acked && n <= acked + 1, CU_TRUE,
               "meta says %" PRIu64 " batches, %" PRIu64 " acknowledged", n,
               acked);
    PN_ASSERT_EQ_INT(meta.dedup_seq, n);
    for (int i = 0; i < CRASH_KEYS; i++) {
        char stream[32];
        crash_stream(stream, sizeof stream, i);
        crash_scan_t cs = {i, 1, true};
        PN_REQUIRE_OK(pn_store_scan_events(f.store, pn_str_c(stream), 1,
                                           crash_check, &cs));
        PN_ASSERT_(cs.ok && cs.expect == n + 1, CU_FALSE,
                   "stream %s: versions 1..%" PRIu64 " in order, saw up to "
                   "%" PRIu64 " (ok %d)",
                   stream, n, cs.expect - 1, cs.ok);
    }
    int64_t version = -1;
    PN_ASSERT(snapshot_found(&f, "crash0|dc", &version));
    PN_ASSERT_EQ_INT(version, n);
    for (uint64_t b = 1; b <= n + 2; b++) {
        char id[32];
        crash_command(id, sizeof id, b);
        pn_dedup_entry_t entry;
        bool found = dedup_found(&f, "crash0|dc", id, &entry);
        if (found != (b <= n) || (found && entry.seq != b)) {
            PN_ASSERT_(false, CU_FALSE,
                       "dedup of batch %" PRIu64 " found=%d with %" PRIu64
                       " batches",
                       b, found, n);
            break;
        }
    }
    pn_store_close(f.store);
}

static void test_crash_keeps_whole_batches(void) {
    char *dir = pn_test_tmpdir("store-crash");
    PN_REQUIRE(dir != NULL);
    const char *seed_env = getenv("PN_TEST_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10)
                             : (unsigned)time(NULL) ^ (unsigned)getpid();
    printf("\n    crash test seed %u (PN_TEST_SEED)\n", seed);
    uint64_t prev = 0;
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        int delay = 20 + (int)(rand_r(&seed) % 181);
        bool sync = round % 2 == 1;
        uint64_t acked = crash_round(dir, sync, delay);
        printf("    round %d: killed after %d ms (sync %d), %" PRIu64
               " batches acknowledged\n",
               round, delay, sync, acked);
        PN_ASSERT(acked > prev);
        crash_verify(dir, acked);
        prev = acked;
    }
    pn_test_rmdir(dir);
    free(dir);
}

/* A synchronous commit after an asynchronous one that failed returns that
 * failure and writes nothing: its checkpoint would lie past a batch that
 * never landed. */
static void test_commit_after_failed_async_write(void) {
    fixture_t f;
    setup(&f);
    char err[512] = "";
    put_event(&f, "s|1", 1, 1, "first");
    pn_store__test_fail_writes(f.store, true);
    PN_REQUIRE_OK(pn_store_commit_async(f.store, f.batch, err, sizeof err));
    put_event(&f, "s|1", 2, 2, "second");
    pn_err_t e = pn_store_commit(f.store, f.batch, err, sizeof err);
    pn_store__test_fail_writes(f.store, false); /* the writer's, only */
    PN_ASSERT_EQ_INT(e, PN_ERR_STORE_IO);
    PN_ASSERT(strstr(err, "write failed") != NULL);
    static scan_t sc; /* large */
    scan(f.store, "s|1", 0, &sc);
    PN_ASSERT_EQ_INT(sc.n, 0);
    /* Reported once: the next commit writes. */
    commit(&f);
    scan(f.store, "s|1", 0, &sc);
    PN_ASSERT_EQ_INT(sc.n, 1);
    PN_ASSERT_EQ_INT(sc.versions[0], 2);
    teardown(&f);
}

static const pn_test_case_t store_cases[] = {
    {"a commit after a failed asynchronous write reports it",
     test_commit_after_failed_async_write},
    {"round trip through every column family", test_round_trip_every_family},
    {"absent keys are not found", test_absent_keys},
    {"invalid arguments are refused, batch untouched", test_invalid_arguments},
    {"batch counts, commit leaves it, clear reuses it",
     test_batch_counts_and_reuse},
    {"batch atomic; reopen keeps data", test_batch_atomic_and_reopen},
    {"scan order and from_version", test_scan_order_and_from_version},
    {"format version mismatch -> STORE_VERSION", test_format_version_mismatch},
    {"format 1 store -> STORE_VERSION", test_format_1_store_refused},
    {"foreign RocksDB -> STORE_VERSION", test_foreign_rocksdb_refused},
    {"snapshot of another fold version deleted, not found",
     test_snapshot_of_other_fold_version},
    {"corrupt directories -> STORE_CORRUPT", test_corrupt_directories},
    {"corrupt values -> STORE_CORRUPT", test_corrupt_values},
    {"snapshot decoder rejects corruption",
     test_snapshot_decoder_rejects_corruption},
    {"event retention", test_event_retention},
    {"event retention over many chunks", test_event_retention_many},
    {"event retention in bounded steps", test_event_retention_steps},
    {"event retention steps across a partition drop",
     test_event_retention_steps_across_drop},
    {"dedup expiry at the window edges", test_dedup_expired_edges},
    {"dedup entries expire in compaction", test_dedup_expires_in_compaction},
    {"idempotency filter never hides a stored id",
     test_dedup_filter_never_hides_an_id},
    {"drop partition", test_drop_partition},
    {"read snapshot with its time", test_read_snapshot_with_time},
    {"scan snapshots by key prefix", test_scan_snapshots_by_prefix},
    {"drop partition drops stream times", test_drop_partition_drops_times},
    {"open a store of an older build", test_open_store_of_older_build},
    {"concurrent readers see whole batches", test_concurrent_readers},
    {"memory usage reported and bounded", test_memory_usage},
    {"second open of a directory fails cleanly",
     test_second_open_fails_cleanly},
    {"unusable paths -> STORE_IO", test_unusable_paths},
    {"kill -9 keeps whole batches, a prefix", test_crash_keeps_whole_batches},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"store", store_cases},
                                          {NULL, NULL}};
