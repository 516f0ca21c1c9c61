/*
 * The idempotency filter: an in-memory answer to "this dedup key was never
 * stored" without a RocksDB Get. Nearly every command carries a fresh id,
 * so without it every command pays a memtable and SST-filter probe that
 * finds nothing.
 *
 * It is a chain of blocked Bloom filters (a scalable Bloom filter): each
 * part holds up to its capacity of keys at FILTER_BITS_PER_KEY, and when
 * the newest part is full a part of twice the capacity is added, so no
 * part ever needs the keys again. A lookup asks every part. A Bloom filter
 * has no false negatives as long as every stored key was added, which is
 * the store's side of the contract (see store.c): it is built from a scan
 * of the dedup family, and every committed dedup key is added before its
 * write is issued. Deletions (compaction expiry, dropping a partition) are
 * not removed from it: they only become false positives, which fall
 * through to the Get; the store drops the filter and rebuilds it when too
 * many have accumulated (pn_store__filter_check_bound), so memory follows
 * the live entries.
 */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hashmap.h"
#include "panther/log.h"
#include "clock.h"

#define FILTER_BITS_PER_KEY 12
#define FILTER_PROBES 6
#define BLOCK_WORDS 8 /* 512-bit blocks: one cache line per lookup per part */
#define FILTER_MIN_KEYS ((uint64_t)1 << 16)
#define BUILD_LOG_KEYS 100000u
#define FILTER_REBUILD_FACTOR 2
#define FILTER_CHECK_SHARE 8

static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static pn_err_t add_part(pn_store_filter_t *f, uint64_t capacity) {
    if (f->n_parts == PN_STORE_FILTER_MAX_PARTS)
        return PN_ERR_NOMEM;
    uint64_t blocks = 1;
    while (blocks * BLOCK_WORDS * 64 < capacity * FILTER_BITS_PER_KEY)
        blocks *= 2;
    pn_store_filter_part_t *part = &f->parts[f->n_parts];
    part->words = calloc(blocks * BLOCK_WORDS, sizeof(uint64_t));
    if (!part->words)
        return PN_ERR_NOMEM;
    part->block_mask = blocks - 1;
    part->capacity = capacity;
    part->count = 0;
    f->n_parts++;
    f->bytes += blocks * BLOCK_WORDS * sizeof(uint64_t);
    return PN_ERR_OK;
}

void pn_store__filter_reset(pn_store_filter_t *f) {
    for (size_t i = 0; i < f->n_parts; i++)
        free(f->parts[i].words);
    memset(f, 0, sizeof *f);
}

static bool part_test(const pn_store_filter_part_t *part, uint64_t h) {
    const uint64_t *block =
        part->words + ((h >> 32) & part->block_mask) * BLOCK_WORDS;
    uint64_t g = mix(h);
    for (int i = 0; i < FILTER_PROBES; i++, g >>= 9)
        if (!(block[(g >> 6) & 7] & ((uint64_t)1 << (g & 63))))
            return false;
    return true;
}

static void part_set(pn_store_filter_part_t *part, uint64_t h) {
    uint64_t *block = part->words + ((h >> 32) & part->block_mask) * BLOCK_WORDS;
    uint64_t g = mix(h);
    for (int i = 0; i < FILTER_PROBES; i++, g >>= 9)
        block[(g >> 6) & 7] |= (uint64_t)1 << (g & 63);
    part->count++;
}

pn_err_t pn_store__filter_add(pn_store_filter_t *f, const void *key,
                              size_t len) {
    if (!f->ready)
        return PN_ERR_OK; /* the build scans what is written meanwhile */
    pn_store_filter_part_t *last =
        f->n_parts ? &f->parts[f->n_parts - 1] : NULL;
    if (!last || last->count >= last->capacity) {
        pn_err_t err = add_part(f, last ? last->capacity * 2 : FILTER_MIN_KEYS);
        if (err) {
            /* Cannot keep the promise: drop it, lookups go to RocksDB
             * until the next build. */
            pn_store__filter_reset(f);
            return err;
        }
        last = &f->parts[f->n_parts - 1];
    }
    part_set(last, pn_hash_bytes(key, len));
    f->keys++;
    return PN_ERR_OK;
}

bool pn_store__filter_may_contain(const pn_store_filter_t *f, const void *key,
                                  size_t len) {
    if (!f->ready)
        return true;
    uint64_t h = pn_hash_bytes(key, len);
    for (size_t i = f->n_parts; i-- > 0;)
        if (part_test(&f->parts[i], h))
            return true;
    return false;
}

/*
 * Compaction expires entries without telling the filter, so it keeps
 * every key added since its build. Bound: once it holds more than
 * FILTER_REBUILD_FACTOR times the keys the dedup family still has
 * (RocksDB's estimate, which counts expired entries not compacted yet, so
 * it never undercounts the live ones), drop it; the next lookup rebuilds
 * it from the family, i.e. from the live entries. With a steady window of
 * W entries that is a rebuild every ~W new ids, and the filter never holds
 * more than about FILTER_REBUILD_FACTOR x the stored keys (memory
 * FILTER_BITS_PER_KEY / 8 bytes a key, twice that after doubling). While
 * nothing expires, the added keys are all stored and it is never rebuilt.
 * The estimate is read every FILTER_CHECK_SHARE-th of it, not per batch.
 */
void pn_store__filter_check_bound(pn_store_t *store) {
    pn_store_filter_t *f = &store->filter;
    if (!f->ready || f->keys < f->next_check)
        return;
    uint64_t live = 0;
    if (rocksdb_property_int_cf(store->db, store->cf[PN_STORE_CF_DEDUP],
                                "rocksdb.estimate-num-keys", &live) != 0)
        live = f->keys; /* unknown: assume all live, keep the filter */
    if (live < FILTER_MIN_KEYS)
        live = FILTER_MIN_KEYS;
    if (f->keys > FILTER_REBUILD_FACTOR * live) {
        pn_store__filter_reset(f);
        return;
    }
    f->next_check = f->keys + live / FILTER_CHECK_SHARE;
}

/* Counts the keys of the dedup family, to size the first part. */
static pn_err_t scan_keys(pn_store_t *store, pn_store_filter_t *f,
                          uint64_t *n) {
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_fill_cache(ro, 0); /* one pass, not hot data */
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(
        store->db, ro, store->cf[PN_STORE_CF_DEDUP]);
    pn_err_t err = PN_ERR_OK;
    *n = 0;
    for (rocksdb_iter_seek_to_first(it); !err && rocksdb_iter_valid(it);
         rocksdb_iter_next(it), (*n)++) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (f)
            err = pn_store__filter_add(f, k, klen);
    }
    if (!err)
        err = pn_store__iter_done(store, it, "build idempotency filter");
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return err;
}

/*
 * One pass over the keys, after sizing the first part from RocksDB's
 * estimate of their number (from its memtables and table properties, no
 * scan) so that it fits them all with room to grow and lookups ask one
 * part; an estimate that is low only adds parts. Without an estimate, a
 * counting pass first. It waits for the write in flight, so the scan sees
 * every stored key.
 */
pn_err_t pn_store__filter_build(pn_store_t *store) {
    pn_store_filter_t *f = &store->filter;
    pn_store__wait_idle(store); /* its dedup keys are not in the filter */
    pn_store__filter_reset(f);
    double t0 = pn_mono_s();
    uint64_t n = 0;
    pn_err_t err = PN_ERR_OK;
    if (rocksdb_property_int_cf(store->db, store->cf[PN_STORE_CF_DEDUP],
                                "rocksdb.estimate-num-keys", &n) != 0)
        err = scan_keys(store, NULL, &n);
    uint64_t capacity = FILTER_MIN_KEYS;
    while (capacity < 2 * n)
        capacity *= 2;
    if (!err)
        err = add_part(f, capacity);
    f->ready = !err;
    if (!err)
        err = scan_keys(store, f, &n);
    if (err) {
        pn_store__filter_reset(f);
        return err;
    }
    if (n >= BUILD_LOG_KEYS)
        pn_log_kv(PN_LOG_INFO, "built the idempotency filter",
                  PN_LOG_STR("store", store->path), PN_LOG_UINT("keys", n),
                  PN_LOG_UINT("bytes", f->bytes),
                  PN_LOG_DOUBLE("seconds", pn_mono_s() - t0));
    return PN_ERR_OK;
}
