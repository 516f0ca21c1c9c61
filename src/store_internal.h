/*
 * Internal to the store module (store.c, store_maint.c): the handle and the
 * RocksDB error translation shared by its files.
 */
#ifndef PANTHER_STORE_INTERNAL_H
#define PANTHER_STORE_INTERNAL_H

#include <rocksdb/c.h>

#include "panther/buf.h"
#include "panther/store.h"
#include "store_format.h"

#define PN_STORE_LAST_ERROR_MAX 512
#define PN_STORE_FILTER_MAX_PARTS 40

/* One blocked Bloom filter of the chain. */
typedef struct pn_store_filter_part {
    uint64_t *words;
    uint64_t block_mask; /* n_blocks - 1, n_blocks a power of two */
    uint64_t capacity;   /* keys it holds at its false-positive rate */
    uint64_t count;
} pn_store_filter_part_t;

/* The idempotency filter (store_filter.c). Not ready = not built yet (or
 * dropped): every lookup goes to RocksDB and adds are skipped. */
typedef struct pn_store_filter {
    bool ready;
    size_t n_parts;
    pn_store_filter_part_t parts[PN_STORE_FILTER_MAX_PARTS];
    uint64_t keys;    /* added since the build */
    uint64_t deleted; /* entries deleted from the family since the build */
    uint64_t bytes;
} pn_store_filter_t;

struct pn_store_s {
    char *path;
    rocksdb_t *db;
    rocksdb_options_t *db_opts;
    rocksdb_options_t *cf_opts[PN_STORE_CF__COUNT];
    rocksdb_column_family_handle_t *cf[PN_STORE_CF__COUNT];
    rocksdb_cache_t *cache;       /* the one block cache of every family */
    rocksdb_readoptions_t *ro;    /* point reads, reused */
    rocksdb_writeoptions_t *wo;   /* WAL on; sync per the options */
    rocksdb_writebatch_t *wb;     /* rebuilt by each commit, reused */
    pn_buf_t key;                 /* scratch for dedup keys */
    pn_buf_t order;               /* a commit's records, sorted by key */
    pn_store_filter_t filter;     /* dedup keys that may be stored */
    bool filter_failed;           /* its build failed: do without it */
    uint32_t fold;                /* fold format version of this process */
    int64_t retention_ms;
    char last_error[PN_STORE_LAST_ERROR_MAX];
};

/**
 * Translates a RocksDB error (and frees rerr): "Corruption" becomes
 * PN_ERR_STORE_CORRUPT, anything else PN_ERR_STORE_IO. The text, prefixed
 * with the path and `what`, goes to store->last_error and to errstr.
 */
pn_err_t pn_store__fail(pn_store_t *store, char *rerr, const char *what,
                        char *errstr, size_t errstr_size);

/** The error status of an iterator after a scan, translated. */
pn_err_t pn_store__iter_done(pn_store_t *store, rocksdb_iterator_t *it,
                             const char *what);

/** Builds the idempotency filter from the dedup family (no write may be
 *  in flight). On failure the filter stays not ready. */
pn_err_t pn_store__filter_build(pn_store_t *store);

/** Records a dedup key about to be written (before the write is issued).
 *  On failure the filter is dropped (not ready), never left incomplete. */
pn_err_t pn_store__filter_add(pn_store_filter_t *f, const void *key,
                              size_t len);

/** False only when key was never added since the build. True when the
 *  filter is not ready. */
bool pn_store__filter_may_contain(const pn_store_filter_t *f, const void *key,
                                  size_t len);

/** n entries were deleted from the dedup family; drops the filter (to be
 *  rebuilt at the next lookup) once most of what it holds is gone. */
void pn_store__filter_note_deleted(pn_store_filter_t *f, uint64_t n);

/** Frees the filter's memory and marks it not ready. */
void pn_store__filter_reset(pn_store_filter_t *f);

#endif
