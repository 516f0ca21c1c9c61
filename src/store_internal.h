/*
 * Internal to the store module (store.c, store_maint.c): the handle and the
 * RocksDB error translation shared by its files.
 */
#ifndef PANTHER_STORE_INTERNAL_H
#define PANTHER_STORE_INTERNAL_H

#include <pthread.h>
#include <rocksdb/c.h>

#include "panther/buf.h"
#include "panther/store.h"
#include "store_format.h"

#include <string.h>

/** The error a RocksDB message stands for: its Status prints "Corruption"
 *  first for a damaged database, anything else is I/O. */
static inline pn_err_t pn_store__rerr_code(const char *rerr) {
    return strncmp(rerr, "Corruption", 10) == 0 ? PN_ERR_STORE_CORRUPT
                                                : PN_ERR_STORE_IO;
}
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
    uint64_t keys;       /* added since the build (the build's included) */
    uint64_t next_check; /* keys at which to compare with the live count */
    uint64_t bytes;
} pn_store_filter_t;

/* Partitions past this have no watermark (their entries are kept). Kafka
 * partition numbers are far below it. */
#define PN_STORE_WATERMARK_PARTITIONS 65536

/* One partition's idempotency watermarks as of the last landed write. */
typedef struct pn_store_watermark {
    bool known;
    uint64_t dedup_seq;
    int64_t dedup_max_at_ms;
} pn_store_watermark_t;

/* The watermarks the dedup compaction filter reads (store_dedup.c), shared
 * between the thread that lands writes and RocksDB's compaction threads
 * under `lock`. Indexed by partition, grown on demand. */
typedef struct pn_store_watermarks {
    pthread_mutex_t lock;
    bool lock_ready;
    pn_store_watermark_t *parts;
    size_t n_parts;
    uint64_t window_commands; /* set before the database opens */
    int64_t window_ms;
    rocksdb_compactionfilter_t *filter; /* owned; outlives the database */
} pn_store_watermarks_t;

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
    /* The pass of pn_store_expire_events_step in progress: its
     * iterators live from the pass's first step to its last (see
     * store_maint.c); NULL between passes. */
    rocksdb_readoptions_t *expire_ro;
    rocksdb_iterator_t *expire_snaps; /* at the stream to resume with */
    rocksdb_iterator_t *expire_events;
    bool expire_resume; /* expire_events stands inside the current stream */
    pn_buf_t order;               /* a commit's records, sorted by key (the
                                     writer's while a write is in flight) */
    /* The writer thread (store_writer.c); the fields below up to the
     * filter are shared with it under wlock. */
    pthread_mutex_t wlock;
    pthread_cond_t wcond;
    pthread_t writer;
    bool writer_sync_ready;       /* wlock and wcond initialised */
    bool writer_started;          /* owner thread only */
    bool writer_stop;
    pn_store_batch_t *async_batch;  /* records handed to the writer */
    rocksdb_writebatch_t *async_wb; /* the writer builds and writes it */
    bool inflight;                  /* async_batch is being written */
    unsigned waiters;             /* owner waiting: a held write may go */
    bool test_hold_writes;        /* tests: writes wait for a waiter */
    bool test_fail_writes;        /* tests: writes fail */
    pn_err_t async_err;           /* failed write not yet collected */
    char async_error[PN_STORE_LAST_ERROR_MAX];

    pn_store_watermarks_t marks;  /* for the dedup compaction filter */
    pn_store_filter_t filter;     /* dedup keys that may be stored */
    bool filter_failed;           /* its build failed: do without it */
    /* A partition drop's dedup range deletions were written but not
     * flushed out of their memtable: puts there would meet RocksDB's
     * shared insert hint (see store.c), so writes are refused. */
    bool hints_unsafe;
    bool dedup_hint;              /* the dedup family's options have it */
    uint64_t write_budget;        /* for rebuilding a family's options */
    uint32_t fold;                /* fold format version of this process */
    int64_t retention_ms;
    char last_error[PN_STORE_LAST_ERROR_MAX];
};

/** Flushes the dedup family's memtable and waits for it. */
pn_err_t pn_store__flush_dedup(pn_store_t *store);

/** PN_ERR_STORE_IO while hints_unsafe: no write may go to the store. */
pn_err_t pn_store__check_writable(pn_store_t *store, char *errstr,
                                  size_t errstr_size);

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

/** Turns a batch into a RocksDB WriteBatch (sorted in store->order,
 *  snapshots stamped with the fold version). The thread that writes. */
pn_err_t pn_store__build_writebatch(pn_store_t *store, pn_store_batch_t *batch,
                                    rocksdb_writebatch_t *wb, char *errstr,
                                    size_t errstr_size);

/** Adds a batch's dedup keys to the filter. Owner thread, before the
 *  batch's write is issued. */
void pn_store__filter_add_batch(pn_store_t *store,
                                const pn_store_batch_t *batch);

/** Exchanges the contents (records and their memory) of two batches. */
void pn_store__batch_swap(pn_store_batch_t *a, pn_store_batch_t *b);

/** Sets up the writer's lock and WriteBatch (the thread starts with the
 *  first asynchronous commit). */
pn_err_t pn_store__writer_init(pn_store_t *store);

/** Waits for the in-flight write, leaving its error for the owner to
 *  collect. Every store call that writes, or scans to rebuild, calls it. */
void pn_store__wait_idle(pn_store_t *store);

/** Waits, stops and joins the writer; frees what writer_init made. */
void pn_store__writer_stop(pn_store_t *store);

/** Tests only: while held, a handed-over write starts only once the owner
 *  waits for it (so "still in flight" is deterministic). */
void pn_store__test_hold_writes(pn_store_t *store, bool hold);

/** Tests only: asynchronous writes fail with PN_ERR_STORE_IO. */
void pn_store__test_fail_writes(pn_store_t *store, bool fail);

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

/** Owner thread, after adds: drops the filter (rebuilt at the next
 *  lookup) once it holds far more keys than the dedup family has live,
 *  i.e. once compaction has expired most of them (store_filter.c). */
void pn_store__filter_check_bound(pn_store_t *store);

/** Frees the filter's memory and marks it not ready. */
void pn_store__filter_reset(pn_store_filter_t *f);

/* --- idempotency watermarks (store_dedup.c) ------------------------------ */

/** Sets up the lock and the compaction filter with the window from the
 *  options; before the column family options are made. */
pn_err_t pn_store__marks_init(pn_store_t *store,
                              const pn_store_options_t *opts);

/** Loads every partition's watermarks from meta (after open). */
pn_err_t pn_store__marks_load(pn_store_t *store);

/** A batch landed: its partition meta records become the watermarks.
 *  The thread that wrote it. */
void pn_store__marks_note_batch(pn_store_t *store,
                                const pn_store_batch_t *batch);

/** The partition was dropped: its watermarks are forgotten (keep all). */
void pn_store__marks_forget(pn_store_t *store, int32_t partition);

/** After the database is closed: frees the filter and the table. */
void pn_store__marks_free(pn_store_t *store);

/** Walks a batch's records: cf, key, value of each, in put order. */
typedef void (*pn_store__record_fn)(void *opaque, pn_store_cf_t cf,
                                    const uint8_t *key, size_t klen,
                                    const uint8_t *value, size_t vlen);
void pn_store__batch_foreach(const pn_store_batch_t *batch,
                             pn_store__record_fn fn, void *opaque);

/** Ends the event-expiry pass in progress (its iterators); the next step
 *  starts a new one. NULL-safe fields; before close and after a drop. */
void pn_store__expire_pass_end(pn_store_t *store);

/** Turns RocksDB's per-thread perf counters off for the calling thread
 * (they are on by default, and nothing reads them here): every memtable
 * insert and Get otherwise pays thread-local accesses to them, which in
 * a shared librocksdb go through __tls_get_addr. */
void pn_store__quiet_perf_context(void);

/** Tests: compacts the whole dedup family now (the filter runs). */
void pn_store__test_compact_dedup(pn_store_t *store);

#endif
