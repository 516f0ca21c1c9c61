/*
 * The store's writer thread: pn_store_commit_async() hands it a batch's
 * records and returns, so the owner thread executes the next batch while
 * this one is sorted, turned into a RocksDB WriteBatch and written.
 *
 * At most one write is in flight. What the writer uses while it is
 * (async_batch, async_wb, the sort buffer store->order, and the result) is
 * handed over under store->wlock, and the owner thread does not touch
 * those until the write is over (every owner call that would waits first).
 * Apart from them the writer reads only the database, the column family
 * handles, the write options and the fold version, which do not change
 * while the store is open, and updates the idempotency watermarks (under
 * their own lock, store_dedup.c) once a write has landed.
 *
 * A failed write is kept (code and text) until the owner thread collects
 * it with pn_store_sync() or pn_store_poll(); waits inside the store
 * (maintenance, a synchronous commit, close) leave it there for the owner.
 */
#include "store_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "panther/log.h"

/* Records a failure of the write in flight (the caller holds wlock). */
static void fail_locked(pn_store_t *store, pn_err_t err, const char *text) {
    if (store->async_err)
        return;
    store->async_err = err;
    snprintf(store->async_error, sizeof store->async_error, "%s: commit: %s",
             store->path, text);
}

/* Builds and runs one write outside the lock; records a failure. */
static void write_one(pn_store_t *store, bool fail) {
    char *rerr = NULL;
    char errstr[PN_STORE_LAST_ERROR_MAX] = "";
    pn_err_t err = pn_store__build_writebatch(
        store, store->async_batch, store->async_wb, errstr, sizeof errstr);
    if (!err && fail)
        rerr = strdup("IO error: write failed (test)");
    else if (!err)
        rocksdb_write(store->db, store->wo, store->async_wb, &rerr);
    if (!err && !rerr)
        /* Landed: the compaction filter may now expire by its meta. */
        pn_store__marks_note_batch(store, store->async_batch);
    rocksdb_writebatch_clear(store->async_wb);
    pn_store_batch_clear(store->async_batch);
    pthread_mutex_lock(&store->wlock);
    if (err)
        fail_locked(store, err, errstr);
    else if (rerr)
        fail_locked(store, pn_store__rerr_code(rerr), rerr);
    store->inflight = false;
    pthread_cond_broadcast(&store->wcond);
    pthread_mutex_unlock(&store->wlock);
    rocksdb_free(rerr); /* RocksDB frees with free(), like strdup */
}

/* A held write (tests) starts only once someone waits for it. */
static bool may_start(const pn_store_t *store) {
    return store->inflight && (!store->test_hold_writes || store->waiters > 0);
}

#define WRITER_NICE 8

static void *writer_main(void *arg) {
    pn_store_t *store = arg;
    pn_store__quiet_perf_context();
    /* Yields to the batch loop when they compete for a core: the loop is
     * the critical path and the write is asynchronous (the next commit
     * waits for it, so a writer that falls behind slows the loop down,
     * never the other way round). Measured in `bench e2e`'s eos phase on
     * the two-core machine: the loop starved 13-15 % of the time instead
     * of 16-19 %, 2-6 % more commands/s. Best effort: lowering a thread's
     * own priority needs no privilege. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WRITER_NICE);
    pthread_mutex_lock(&store->wlock);
    for (;;) {
        while (!store->writer_stop && !may_start(store))
            pthread_cond_wait(&store->wcond, &store->wlock);
        if (!may_start(store))
            break; /* stopping, and nothing left to write */
        bool fail = store->test_fail_writes;
        pthread_mutex_unlock(&store->wlock);
        write_one(store, fail);
        pthread_mutex_lock(&store->wlock);
    }
    pthread_mutex_unlock(&store->wlock);
    return NULL;
}

pn_err_t pn_store__writer_init(pn_store_t *store) {
    if (pthread_mutex_init(&store->wlock, NULL) != 0)
        return PN_ERR_NOMEM;
    if (pthread_cond_init(&store->wcond, NULL) != 0) {
        pthread_mutex_destroy(&store->wlock);
        return PN_ERR_NOMEM;
    }
    store->writer_sync_ready = true;
    store->async_wb = rocksdb_writebatch_create();
    if (!store->async_wb)
        return PN_ERR_NOMEM;
    return pn_store_batch_new(&store->async_batch);
}

/* Waits until no write is in flight (the caller holds wlock). */
static void wait_locked(pn_store_t *store) {
    store->waiters++;
    pthread_cond_broadcast(&store->wcond); /* a held write may start now */
    while (store->inflight)
        pthread_cond_wait(&store->wcond, &store->wlock);
    store->waiters--;
}

void pn_store__wait_idle(pn_store_t *store) {
    if (!store->writer_started)
        return;
    pthread_mutex_lock(&store->wlock);
    wait_locked(store);
    pthread_mutex_unlock(&store->wlock);
}

void pn_store__writer_stop(pn_store_t *store) {
    if (store->writer_started) {
        pthread_mutex_lock(&store->wlock);
        wait_locked(store);
        store->writer_stop = true;
        pthread_cond_broadcast(&store->wcond);
        pthread_mutex_unlock(&store->wlock);
        pthread_join(store->writer, NULL);
        store->writer_started = false;
        if (store->async_err)
            /* Nobody will collect it: the events topic restores the batch
             * at the next start, but say that it happened. */
            pn_log_kv(PN_LOG_ERROR, "last store write failed at close",
                      PN_LOG_STR("detail", store->async_error));
    }
    if (store->async_wb)
        rocksdb_writebatch_destroy(store->async_wb);
    pn_store_batch_free(store->async_batch);
    if (store->writer_sync_ready) {
        pthread_cond_destroy(&store->wcond);
        pthread_mutex_destroy(&store->wlock);
    }
}

/* Hands over a failure (the caller holds wlock): code, and the text to
 * last_error and errstr. */
static pn_err_t collect_locked(pn_store_t *store, char *errstr,
                               size_t errstr_size) {
    pn_err_t err = store->async_err;
    if (!err)
        return PN_ERR_OK;
    store->async_err = PN_ERR_OK;
    snprintf(store->last_error, sizeof store->last_error, "%s",
             store->async_error);
    return pn_err_set(errstr, errstr_size, err, "%s", store->async_error);
}

pn_err_t pn_store_sync(pn_store_t *store, char *errstr, size_t errstr_size) {
    if (!store)
        return PN_ERR_INVALID_ARG;
    if (!store->writer_started)
        return PN_ERR_OK;
    pthread_mutex_lock(&store->wlock);
    wait_locked(store);
    pn_err_t err = collect_locked(store, errstr, errstr_size);
    pthread_mutex_unlock(&store->wlock);
    return err;
}

pn_err_t pn_store_poll(pn_store_t *store, bool *idle, char *errstr,
                       size_t errstr_size) {
    *idle = true;
    if (!store || !store->writer_started)
        return PN_ERR_OK;
    pthread_mutex_lock(&store->wlock);
    *idle = !store->inflight;
    pn_err_t err = *idle ? collect_locked(store, errstr, errstr_size)
                         : PN_ERR_OK;
    pthread_mutex_unlock(&store->wlock);
    return err;
}

static pn_err_t start_writer(pn_store_t *store, char *errstr,
                             size_t errstr_size) {
    if (store->writer_started)
        return PN_ERR_OK;
    store->writer_stop = false;
    if (pthread_create(&store->writer, NULL, writer_main, store) != 0)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "%s: cannot start the store writer thread",
                          store->path);
    store->writer_started = true;
    /* Named for top, perf and gdb; a failure to name it is harmless. */
    (void)pthread_setname_np(store->writer, "pn-store-write");
    return PN_ERR_OK;
}

pn_err_t pn_store_commit_async(pn_store_t *store, pn_store_batch_t *batch,
                               char *errstr, size_t errstr_size) {
    if (!store || !batch)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "store commit: no store or batch");
    pn_err_t err = pn_store_sync(store, errstr, errstr_size);
    if (err || pn_store_batch_count(batch) == 0)
        return err;
    if ((err = pn_store__check_writable(store, errstr, errstr_size)))
        return err;
    if ((err = start_writer(store, errstr, errstr_size)))
        return err;
    pn_store__filter_add_batch(store, batch);
    /* After the sync the writer is done with async_batch (it clears it
     * before it reports): the caller gets its empty memory back. */
    pn_store__batch_swap(batch, store->async_batch);
    pthread_mutex_lock(&store->wlock);
    store->inflight = true;
    pthread_cond_broadcast(&store->wcond);
    pthread_mutex_unlock(&store->wlock);
    return PN_ERR_OK;
}

void pn_store__test_hold_writes(pn_store_t *store, bool hold) {
    pthread_mutex_lock(&store->wlock);
    store->test_hold_writes = hold;
    pthread_cond_broadcast(&store->wcond);
    pthread_mutex_unlock(&store->wlock);
}

void pn_store__test_fail_writes(pn_store_t *store, bool fail) {
    pthread_mutex_lock(&store->wlock);
    store->test_fail_writes = fail;
    pthread_mutex_unlock(&store->wlock);
}
