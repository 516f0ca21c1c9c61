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

#endif
