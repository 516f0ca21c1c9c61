/*
 * Store maintenance: event retention, dropping a partition's streams,
 * memory accounting. (Idempotency entries expire in compactions:
 * store_dedup.c.) Called by the worker between
 * batches, on the thread that owns the store.
 *
 * Expiry deletes in chunks of MAINT_CHUNK keys per write so that a large
 * backlog does not build one huge batch; each chunk is independent (a crash
 * between chunks leaves some expired keys behind, to be deleted next time).
 * Dropping a partition is one write, as the contract requires.
 */
#include "store_internal.h"

#include <string.h>

#define MAINT_CHUNK 1024

/* Read options for maintenance scans: they read everything once, so they
 * must not push the hot blocks out of the cache. */
static rocksdb_readoptions_t *maint_ro(void) {
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_fill_cache(ro, 0);
    return ro;
}

static pn_err_t write_wb(pn_store_t *store, const char *what) {
    char *rerr = NULL;
    rocksdb_write(store->db, store->wo, store->wb, &rerr);
    rocksdb_writebatch_clear(store->wb);
    return rerr ? pn_store__fail(store, rerr, what, NULL, 0) : PN_ERR_OK;
}

/* Writes the pending deletes once a chunk is full (or when forced). */
static pn_err_t maybe_flush(pn_store_t *store, bool force, const char *what) {
    int n = rocksdb_writebatch_count(store->wb);
    if (n == 0 || (!force && n < MAINT_CHUNK))
        return PN_ERR_OK;
    return write_wb(store, what);
}

/* --- event retention ---------------------------------------------------- */

typedef struct expire_events_ctx {
    pn_store_t *store;
    rocksdb_iterator_t *events;
    int64_t cutoff_ms; /* events with command time below it may go */
    uint64_t deleted;
    uint64_t work;     /* snapshots visited + events deleted */
    uint64_t max_work; /* stop once work reaches it */
} expire_events_ctx_t;

static bool out_of_work(const expire_events_ctx_t *ctx) {
    return ctx->work >= ctx->max_work;
}

/* Deletes the old events of one stream with version <= snapshot_version,
 * from its first event (seek) or from where the events iterator stands (a
 * stream the previous step left unfinished). Out of work inside the
 * stream, it leaves the iterator on the next event to look at and marks
 * the pass to resume there. */
static pn_err_t expire_stream(expire_events_ctx_t *ctx, const uint8_t *prefix,
                              size_t prefix_len, int64_t snapshot_version,
                              bool seek) {
    rocksdb_iterator_t *it = ctx->events;
    if (seek) {
        uint8_t first[PN_STORE_EVENT_KEY_MAX];
        memcpy(first, prefix, prefix_len);
        pn_be64_write(first + prefix_len, 0);
        rocksdb_iter_seek(it, (const char *)first, prefix_len + 8);
    }
    pn_err_t err = PN_ERR_OK;
    while (!err && rocksdb_iter_valid(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (klen != prefix_len + 8 || memcmp(k, prefix, prefix_len) != 0 ||
            pn_be64_read(k + prefix_len) > (uint64_t)snapshot_version)
            break;
        if (out_of_work(ctx)) {
            ctx->store->expire_resume = true;
            break;
        }
        /* An unreadable time: keep rather than guess. */
        if (vlen >= PN_STORE_EVENT_AT_LEN &&
            (int64_t)pn_be64_read(v) < ctx->cutoff_ms) {
            rocksdb_writebatch_delete_cf(ctx->store->wb,
                                         ctx->store->cf[PN_STORE_CF_EVENTS],
                                         (const char *)k, klen);
            ctx->deleted++;
            ctx->work++;
            err = maybe_flush(ctx->store, false, "expire events");
        }
        rocksdb_iter_next(it);
    }
    return err;
}

/* One snapshot: only a readable one of the running fold format version
 * covers events (a stale one will be rebuilt from them). */
static pn_err_t expire_for_snapshot(expire_events_ctx_t *ctx,
                                    rocksdb_iterator_t *snaps) {
    size_t klen, vlen, prefix_len;
    pn_str_t stream;
    const char *k = rocksdb_iter_key(snaps, &klen);
    const char *v = rocksdb_iter_value(snaps, &vlen);
    uint32_t fold;
    int64_t version;
    bool resume = ctx->store->expire_resume;
    ctx->store->expire_resume = false;
    if (!resume)
        ctx->work++; /* a visit; a resumed one was counted already */
    if (!pn_store__parse_prefix(k, klen, &stream, &prefix_len) ||
        prefix_len != klen ||
        pn_store__snapshot_peek(v, vlen, &fold, &version) != PN_ERR_OK ||
        fold != ctx->store->fold)
        return PN_ERR_OK;
    return expire_stream(ctx, (const uint8_t *)k, prefix_len, version,
                         !resume);
}

void pn_store__expire_pass_end(pn_store_t *store) {
    if (store->expire_events)
        rocksdb_iter_destroy(store->expire_events);
    if (store->expire_snaps)
        rocksdb_iter_destroy(store->expire_snaps);
    if (store->expire_ro)
        rocksdb_readoptions_destroy(store->expire_ro);
    store->expire_events = NULL;
    store->expire_snaps = NULL;
    store->expire_ro = NULL;
    store->expire_resume = false;
}

/*
 * A pass keeps its two iterators from its first step to its last rather
 * than making them per step: creating an iterator over the events
 * family's vector memtable copies and sorts that memtable (~70 ms for a
 * full one), which would be the whole cost of a small step. The price is
 * that a pass reads the database as of its start: it pins the memtables
 * and tables of that moment (at most MAX_WRITE_BUFFERS memtables per
 * family beyond the budget) until it ends, and does not see later writes,
 * which is safe: later events are young, and a snapshot it reads is older
 * than the current one, so it covers fewer events, never more.
 */
static void expire_pass_begin(pn_store_t *store) {
    store->expire_ro = maint_ro();
    store->expire_snaps = rocksdb_create_iterator_cf(
        store->db, store->expire_ro, store->cf[PN_STORE_CF_SNAPSHOTS]);
    store->expire_events = rocksdb_create_iterator_cf(
        store->db, store->expire_ro, store->cf[PN_STORE_CF_EVENTS]);
    rocksdb_iter_seek_to_first(store->expire_snaps);
}

/* Walks the snapshots from where the pass stands until out of work or at
 * the end; *pass_done when the end was reached. */
static pn_err_t expire_walk(expire_events_ctx_t *ctx, bool *pass_done) {
    rocksdb_iterator_t *snaps = ctx->store->expire_snaps;
    pn_err_t err = PN_ERR_OK;
    while (!err && !out_of_work(ctx) && rocksdb_iter_valid(snaps)) {
        err = expire_for_snapshot(ctx, snaps);
        if (!ctx->store->expire_resume)
            rocksdb_iter_next(snaps); /* else: the stream is unfinished */
    }
    if (!err)
        err = pn_store__iter_done(ctx->store, snaps, "expire events");
    if (!err)
        err = pn_store__iter_done(ctx->store, ctx->events, "expire events");
    *pass_done = err || !rocksdb_iter_valid(snaps);
    return err;
}

pn_err_t pn_store_expire_events_step(pn_store_t *store, int64_t now_ms,
                                     uint64_t max_work, uint64_t *n_deleted,
                                     bool *pass_done) {
    if (n_deleted)
        *n_deleted = 0;
    if (pass_done)
        *pass_done = true;
    if (!store || max_work == 0)
        return PN_ERR_INVALID_ARG;
    pn_store__wait_idle(store); /* its deletes land after every commit */
    /* At least a visit and a delete: every step then makes progress (it
     * deletes an event or moves past a snapshot), so steps never stall. */
    expire_events_ctx_t ctx = {store, NULL, 0, 0, 0,
                               max_work < 2 ? 2 : max_work};
    if (store->retention_ms <= 0 ||
        __builtin_sub_overflow(now_ms, store->retention_ms, &ctx.cutoff_ms))
        return PN_ERR_OK;
    if (!store->expire_snaps)
        expire_pass_begin(store);
    ctx.events = store->expire_events;
    rocksdb_writebatch_clear(store->wb);
    bool done = true;
    pn_err_t err = expire_walk(&ctx, &done);
    if (!err)
        err = maybe_flush(store, true, "expire events");
    if (err || done)
        pn_store__expire_pass_end(store); /* a failure: start over */
    rocksdb_writebatch_clear(store->wb);
    if (n_deleted)
        *n_deleted = err ? 0 : ctx.deleted;
    if (pass_done)
        *pass_done = err || done;
    return err;
}

pn_err_t pn_store_expire_events(pn_store_t *store, int64_t now_ms,
                                uint64_t *n_deleted) {
    if (store)
        pn_store__expire_pass_end(store); /* a whole pass, from the top */
    return pn_store_expire_events_step(store, now_ms, UINT64_MAX, n_deleted,
                                       NULL);
}

/* --- dropping a partition ----------------------------------------------- */

typedef struct drop_ctx {
    pn_store_t *store;
    pn_store_key_filter_fn owns;
    void *opaque;
    rocksdb_readoptions_t *ro;
    size_t dedup_ranges; /* range deletions in the dedup family */
} drop_ctx_t;

/* Deletes one stream's keys [start, end) in a family: a range for events
 * and dedup entries, the key for a snapshot (point lookups there should not
 * meet range tombstones). */
static void drop_stream(pn_store_t *store, pn_store_cf_t cf,
                        const uint8_t *start, size_t start_len,
                        const uint8_t *end, size_t end_len) {
    if (cf == PN_STORE_CF_SNAPSHOTS)
        rocksdb_writebatch_delete_cf(store->wb, store->cf[cf],
                                     (const char *)start, start_len);
    else
        rocksdb_writebatch_delete_range_cf(store->wb, store->cf[cf],
                                           (const char *)start, start_len,
                                           (const char *)end, end_len);
}

/* Walks the streams of one family, one seek per stream, and deletes the
 * owned ones. */
static pn_err_t drop_streams(drop_ctx_t *ctx, pn_store_cf_t cf) {
    pn_store_t *store = ctx->store;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, ctx->ro, store->cf[cf]);
    pn_err_t err = PN_ERR_OK;
    rocksdb_iter_seek_to_first(it);
    while (!err && rocksdb_iter_valid(it)) {
        size_t klen, prefix_len;
        pn_str_t stream;
        const char *k = rocksdb_iter_key(it, &klen);
        if (!pn_store__parse_prefix(k, klen, &stream, &prefix_len)) {
            err = PN_ERR_STORE_CORRUPT;
            break;
        }
        uint8_t start[PN_STORE_PREFIX_MAX], end[PN_STORE_PREFIX_MAX];
        memcpy(start, k, prefix_len);
        memcpy(end, k, prefix_len);
        size_t end_len = pn_store__successor(end, prefix_len);
        if (ctx->owns(ctx->opaque, stream)) {
            drop_stream(store, cf, start, prefix_len, end, end_len);
            ctx->dedup_ranges += cf == PN_STORE_CF_DEDUP;
        }
        rocksdb_iter_seek(it, (const char *)end, end_len);
    }
    if (!err)
        err = pn_store__iter_done(store, it, "drop partition");
    rocksdb_iter_destroy(it);
    return err;
}

/* The owned streams' times: meta keys "s" + [u16 BE n][stream key]. */
static pn_err_t drop_stream_times(drop_ctx_t *ctx) {
    pn_store_t *store = ctx->store;
    const char lower = PN_STORE_META_STREAM_TAG,
               upper = PN_STORE_META_STREAM_TAG + 1;
    rocksdb_readoptions_t *ro = maint_ro();
    rocksdb_readoptions_set_iterate_upper_bound(ro, &upper, 1);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, ro, store->cf[PN_STORE_CF_META]);
    pn_err_t err = PN_ERR_OK;
    for (rocksdb_iter_seek(it, &lower, 1); !err && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, prefix_len;
        pn_str_t stream;
        const char *k = rocksdb_iter_key(it, &klen);
        if (!pn_store__parse_prefix(k + 1, klen - 1, &stream, &prefix_len))
            err = PN_ERR_STORE_CORRUPT;
        else if (ctx->owns(ctx->opaque, stream))
            rocksdb_writebatch_delete_cf(store->wb,
                                         store->cf[PN_STORE_CF_META], k, klen);
    }
    if (!err)
        err = pn_store__iter_done(store, it, "drop partition");
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return err;
}

/*
 * Writes the drop. Its dedup range deletions get a memtable of their own,
 * flushed before and after: the family's insert hint is shared by point
 * entries and range tombstones of one memtable (see hinted_options in
 * store.c). The flush before also makes WAL recovery replay the drop into
 * an empty memtable, the one after keeps it out of later replays. Until
 * the second flush has succeeded no write may follow.
 */
static pn_err_t write_drop(pn_store_t *store, size_t dedup_ranges) {
    if (dedup_ranges == 0)
        return write_wb(store, "drop partition");
    pn_err_t err = pn_store__flush_dedup(store);
    if (err)
        return err;
    store->hints_unsafe = true;
    err = write_wb(store, "drop partition");
    pn_err_t flushed = pn_store__flush_dedup(store);
    if (!flushed)
        store->hints_unsafe = false;
    return err ? err : flushed;
}

pn_err_t pn_store_drop_partition(pn_store_t *store, int32_t partition,
                                 pn_store_key_filter_fn owns, void *opaque) {
    if (!store || !owns || partition < 0)
        return PN_ERR_INVALID_ARG;
    pn_store__wait_idle(store); /* the scan must see every commit */
    /* A pass in progress reads the partition's old snapshots: restart. */
    pn_store__expire_pass_end(store);
    drop_ctx_t ctx = {store, owns, opaque, maint_ro(), 0};
    rocksdb_writebatch_clear(store->wb);
    pn_err_t err = drop_streams(&ctx, PN_STORE_CF_EVENTS);
    if (!err)
        err = drop_streams(&ctx, PN_STORE_CF_SNAPSHOTS);
    if (!err)
        err = drop_streams(&ctx, PN_STORE_CF_DEDUP);
    if (!err)
        err = drop_stream_times(&ctx);
    if (!err) {
        uint8_t key[PN_STORE_META_PARTITION_KEY_LEN];
        pn_store__partition_key(key, partition);
        rocksdb_writebatch_delete_cf(store->wb, store->cf[PN_STORE_CF_META],
                                     (const char *)key, sizeof key);
        err = write_drop(store, ctx.dedup_ranges);
    }
    /* The dropped dedup keys stay in the filter. They cannot hide a key
     * (no false negatives), and new ids meet them no more often than
     * before the drop (the filter is as full as it was); the filter's
     * bound rebuilds it once stale keys outnumber the live ones
     * (pn_store__filter_check_bound). Resetting it here made the next
     * lookup after every rebalance scan the whole dedup family. */
    if (!err)
        /* Its meta is gone: nothing of it is expired by stale marks if
         * the partition comes back. */
        pn_store__marks_forget(store, partition);
    rocksdb_writebatch_clear(store->wb);
    rocksdb_readoptions_destroy(ctx.ro);
    return err;
}

/* --- memory ------------------------------------------------------------- */

uint64_t pn_store_memory_usage(pn_store_t *store) {
    if (!store)
        return 0;
    rocksdb_memory_consumers_t *consumers = rocksdb_memory_consumers_create();
    rocksdb_memory_consumers_add_db(consumers, store->db);
    rocksdb_memory_consumers_add_cache(consumers, store->cache);
    char *rerr = NULL;
    rocksdb_memory_usage_t *usage =
        rocksdb_approximate_memory_usage_create(consumers, &rerr);
    uint64_t total = 0;
    if (usage) {
        total = rocksdb_approximate_memory_usage_get_mem_table_total(usage) +
                rocksdb_approximate_memory_usage_get_mem_table_readers_total(
                    usage) +
                rocksdb_approximate_memory_usage_get_cache_total(usage);
        rocksdb_approximate_memory_usage_destroy(usage);
    }
    if (rerr)
        (void)pn_store__fail(store, rerr, "memory usage", NULL, 0);
    rocksdb_memory_consumers_destroy(consumers);
    return total;
}
