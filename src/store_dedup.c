/*
 * The idempotency window in the store: entries of the dedup family expire
 * in RocksDB compactions, not by deletes.
 *
 * A compaction filter on the dedup family decodes each entry it is handed
 * (partition, seq, command time) and drops it when pn_store_dedup_expired()
 * says so against its partition's watermarks. The watermarks it reads are
 * those of the last write that landed (loaded from meta at open, then
 * taken from the partition meta records of every landed batch), never the
 * open batch's: those only grow, and expiry only grows with them, so the
 * filter never drops an entry that a lookup by the engine (with watermarks
 * at least as new) would still count. An unknown partition, or a value it
 * cannot decode, is kept.
 *
 * RocksDB calls the filter from its compaction threads, concurrently, so
 * the table is under a mutex (a compaction takes it once per entry,
 * uncontended but for the one update per landed batch).
 */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

bool pn_store_dedup_expired(uint64_t commands, int64_t ms,
                            const pn_partition_meta_t *meta,
                            const pn_dedup_entry_t *entry) {
    bool old_by_count =
        meta->dedup_seq > entry->seq && meta->dedup_seq - entry->seq > commands;
    int64_t cutoff_ms; /* entries with at_ms below it are old enough */
    if (!old_by_count ||
        __builtin_sub_overflow(meta->dedup_max_at_ms, ms, &cutoff_ms))
        return false;
    return entry->at_ms < cutoff_ms;
}

void pn_store_dedup_window(const pn_store_t *store, uint64_t *commands,
                           int64_t *ms) {
    *commands = store->marks.window_commands;
    *ms = store->marks.window_ms;
}

/* The partition's watermarks; false when unknown. */
static bool marks_get(pn_store_watermarks_t *m, int32_t partition,
                      pn_partition_meta_t *meta) {
    bool known = false;
    pthread_mutex_lock(&m->lock);
    if (partition >= 0 && (size_t)partition < m->n_parts &&
        m->parts[partition].known) {
        known = true;
        meta->dedup_seq = m->parts[partition].dedup_seq;
        meta->dedup_max_at_ms = m->parts[partition].dedup_max_at_ms;
    }
    pthread_mutex_unlock(&m->lock);
    return known;
}

static unsigned char dedup_filter(void *state, int level, const char *key,
                                  size_t klen, const char *value, size_t vlen,
                                  char **new_value, size_t *new_value_len,
                                  unsigned char *value_changed) {
    (void)level;
    (void)key;
    (void)klen;
    (void)new_value;
    (void)new_value_len;
    *value_changed = 0;
    pn_store_watermarks_t *m = state;
    pn_dedup_entry_t entry;
    pn_partition_meta_t meta = {0};
    if (pn_store__dedup_decode(value, vlen, &entry) != PN_ERR_OK ||
        !marks_get(m, entry.partition, &meta))
        return 0;
    return pn_store_dedup_expired(m->window_commands, m->window_ms, &meta,
                                  &entry)
               ? 1
               : 0;
}

static const char *dedup_filter_name(void *state) {
    (void)state;
    return "panther.dedup_window";
}

static void dedup_filter_destroy(void *state) {
    (void)state; /* the store owns the table */
}

pn_err_t pn_store__marks_init(pn_store_t *store,
                              const pn_store_options_t *opts) {
    pn_store_watermarks_t *m = &store->marks;
    if (opts->dedup_window_commands == 0 && opts->dedup_window_ms == 0) {
        m->window_commands = PN_STORE_DEFAULT_WINDOW_COMMANDS;
        m->window_ms = PN_STORE_DEFAULT_WINDOW_MS;
    } else {
        m->window_commands = opts->dedup_window_commands;
        m->window_ms = opts->dedup_window_ms;
    }
    if (pthread_mutex_init(&m->lock, NULL) != 0)
        return PN_ERR_NOMEM;
    m->lock_ready = true;
    m->filter = rocksdb_compactionfilter_create(
        m, dedup_filter_destroy, dedup_filter, dedup_filter_name);
    return m->filter ? PN_ERR_OK : PN_ERR_NOMEM;
}

void pn_store__marks_free(pn_store_t *store) {
    pn_store_watermarks_t *m = &store->marks;
    if (m->filter)
        rocksdb_compactionfilter_destroy(m->filter);
    free(m->parts);
    if (m->lock_ready)
        pthread_mutex_destroy(&m->lock);
    memset(m, 0, sizeof *m);
}

/* Records one partition's watermarks (the caller holds the lock). A table
 * that cannot grow leaves the partition unknown: its entries are kept. */
static void marks_set_locked(pn_store_watermarks_t *m, int32_t partition,
                             const pn_partition_meta_t *meta) {
    if (partition < 0 || partition >= PN_STORE_WATERMARK_PARTITIONS)
        return;
    size_t need = (size_t)partition + 1;
    if (need > m->n_parts) {
        size_t n = m->n_parts ? m->n_parts : 16;
        while (n < need)
            n *= 2;
        pn_store_watermark_t *grown = realloc(m->parts, n * sizeof *grown);
        if (!grown)
            return;
        memset(grown + m->n_parts, 0, (n - m->n_parts) * sizeof *grown);
        m->parts = grown;
        m->n_parts = n;
    }
    m->parts[partition] = (pn_store_watermark_t){true, meta->dedup_seq,
                                                 meta->dedup_max_at_ms};
}

void pn_store__marks_forget(pn_store_t *store, int32_t partition) {
    pn_store_watermarks_t *m = &store->marks;
    pthread_mutex_lock(&m->lock);
    if (partition >= 0 && (size_t)partition < m->n_parts)
        m->parts[partition].known = false;
    pthread_mutex_unlock(&m->lock);
}

/* A partition meta record: "p" + u32 BE partition -> meta value. */
static void note_record(void *opaque, pn_store_cf_t cf, const uint8_t *key,
                        size_t klen, const uint8_t *value, size_t vlen) {
    pn_store_watermarks_t *m = opaque;
    pn_partition_meta_t meta;
    if (cf != PN_STORE_CF_META || klen != PN_STORE_META_PARTITION_KEY_LEN ||
        key[0] != PN_STORE_META_PARTITION_TAG ||
        pn_store__meta_decode(value, vlen, &meta) != PN_ERR_OK)
        return;
    marks_set_locked(m, (int32_t)pn_be32_read(key + 1), &meta);
}

void pn_store__marks_note_batch(pn_store_t *store,
                                const pn_store_batch_t *batch) {
    pn_store_watermarks_t *m = &store->marks;
    pthread_mutex_lock(&m->lock);
    pn_store__batch_foreach(batch, note_record, m);
    pthread_mutex_unlock(&m->lock);
}

pn_err_t pn_store__marks_load(pn_store_t *store) {
    pn_store_watermarks_t *m = &store->marks;
    const char lower = PN_STORE_META_PARTITION_TAG,
               upper = PN_STORE_META_PARTITION_TAG + 1;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, &upper, 1);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, ro, store->cf[PN_STORE_CF_META]);
    pthread_mutex_lock(&m->lock);
    for (rocksdb_iter_seek(it, &lower, 1); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        note_record(m, PN_STORE_CF_META, (const uint8_t *)k, klen,
                    (const uint8_t *)v, vlen);
    }
    pthread_mutex_unlock(&m->lock);
    pn_err_t err = pn_store__iter_done(store, it, "load idempotency watermarks");
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return err;
}

void pn_store__test_compact_dedup(pn_store_t *store) {
    pn_store__wait_idle(store);
    rocksdb_compact_range_cf(store->db, store->cf[PN_STORE_CF_DEDUP], NULL, 0,
                             NULL, 0);
}
