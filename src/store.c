/*
 * The local state store on RocksDB (DESIGN.md section 7): open and close,
 * point reads, event scans, batches and their atomic commit. Maintenance
 * (expiry, dropping a partition, memory accounting) lives in store_maint.c;
 * the byte layout of keys and values in store_format.c.
 *
 * RocksDB's char **errptr strings stop here: every failure becomes a
 * pn_err_t, and its text is kept for pn_store_last_error().
 *
 * Memory is bounded by the options: one LRU block cache shared by every
 * column family, holding data blocks and also the index and filter blocks
 * (so table readers stay small), and a write-buffer budget enforced across
 * column families by db_write_buffer_size, with per-family memtable sizes
 * that add up to the same budget.
 */
#include "store_internal.h"
#include "store_nowait.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "panther/log.h"

#define MIB ((uint64_t)1 << 20)
#define DEFAULT_BLOCK_CACHE (32 * MIB)
#define DEFAULT_WRITE_BUFFER (64 * MIB)
#define MIN_CF_WRITE_BUFFER ((uint64_t)64 << 10)
#define MAX_WRITE_BUFFERS 2
#define BLOOM_BITS_PER_KEY 10.0
#define CACHE_SHARD_MIN (4 * MIB)
#define CACHE_SHARD_BITS_MAX 4
#define MAX_OPEN_FILES 512
#define KEEP_INFO_LOGS 3
#define L0_COMPACTION_TRIGGER 8
/* In the store's directory: its WAL may be replayed with the dedup
 * family's insert hint (see convert_for_hint). */
#define HINT_MARKER "PANTHER-DEDUP-HINT"

/* A batch record: [u8 cf][u32 BE key len][u32 BE value len][key][value]. */
#define RECORD_HEAD 9

struct pn_store_batch_s {
    pn_buf_t log; /* records, in put order */
    size_t count;
    size_t bytes;
};

/* Shares of the write-buffer budget, per column family; each family may
 * hold MAX_WRITE_BUFFERS memtables, so shares sum to the whole budget. */
static const unsigned cf_write_share[PN_STORE_CF__COUNT] = {
    [PN_STORE_CF_DEFAULT] = 1, [PN_STORE_CF_EVENTS] = 4,
    [PN_STORE_CF_SNAPSHOTS] = 3, [PN_STORE_CF_DEDUP] = 4,
    [PN_STORE_CF_META] = 1};
#define WRITE_SHARES_TOTAL 13

/* --- errors ------------------------------------------------------------- */

pn_err_t pn_store__check_writable(pn_store_t *store, char *errstr,
                                  size_t errstr_size) {
    if (!store->hints_unsafe)
        return PN_ERR_OK;
    return pn_err_set(errstr, errstr_size, PN_ERR_STORE_IO,
                      "%s: a partition drop could not flush its range "
                      "deletions; reopen the store before writing",
                      store->path);
}

pn_err_t pn_store__fail(pn_store_t *store, char *rerr, const char *what,
                        char *errstr, size_t errstr_size) {
    pn_err_t err = pn_store__rerr_code(rerr);
    snprintf(store->last_error, sizeof store->last_error, "%s: %s: %s",
             store->path, what, rerr);
    rocksdb_free(rerr);
    return pn_err_set(errstr, errstr_size, err, "%s", store->last_error);
}

pn_err_t pn_store__iter_done(pn_store_t *store, rocksdb_iterator_t *it,
                             const char *what) {
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    return rerr ? pn_store__fail(store, rerr, what, NULL, 0) : PN_ERR_OK;
}

const char *pn_store_last_error(const pn_store_t *store) {
    return store ? store->last_error : "";
}

/* --- options ------------------------------------------------------------ */

static rocksdb_block_based_table_options_t *table_options(pn_store_t *store,
                                                          bool bloom) {
    rocksdb_block_based_table_options_t *bbto =
        rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(bbto, store->cache);
    /* Index and filter blocks are charged to the cache rather than held by
     * table readers, so the cache size bounds them; pinned L0 blocks and
     * high priority keep them from being evicted by data blocks. */
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(bbto, 1);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(
        bbto, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(
        bbto, 1);
    rocksdb_block_based_options_set_format_version(bbto, 5);
    /* Partitioned index and filters: a whole-file filter of a large table
     * is bigger than a cache shard, so it would be read from disk again on
     * every lookup; 4 KiB partitions cache like data blocks, and only the
     * small top level is pinned. */
    rocksdb_block_based_options_set_index_type(
        bbto, rocksdb_block_based_table_index_type_two_level_index_search);
    rocksdb_block_based_options_set_metadata_block_size(bbto, 4096);
    rocksdb_block_based_options_set_pin_top_level_index_and_filter(bbto, 1);
    if (bloom) {
        /* The table options take ownership of the policy. */
        rocksdb_block_based_options_set_filter_policy(
            bbto, rocksdb_filterpolicy_create_bloom_full(BLOOM_BITS_PER_KEY));
        rocksdb_block_based_options_set_partition_filters(bbto, 1);
        rocksdb_block_based_options_set_whole_key_filtering(bbto, 1);
    }
    return bbto;
}

/* The shared LRU cache, with shards of at least CACHE_SHARD_MIN so that a
 * large block (a top-level index, a big value) fits in one. One thread
 * reads the store, so few shards cost no contention. */
static rocksdb_cache_t *cache_create(uint64_t bytes) {
    int bits = 0;
    while (bits < CACHE_SHARD_BITS_MAX && (bytes >> (bits + 1)) >= CACHE_SHARD_MIN)
        bits++;
    rocksdb_lru_cache_options_t *o = rocksdb_lru_cache_options_create();
    rocksdb_lru_cache_options_set_capacity(o, (size_t)bytes);
    rocksdb_lru_cache_options_set_num_shard_bits(o, bits);
    rocksdb_cache_t *cache = rocksdb_cache_create_lru_opts(o);
    rocksdb_lru_cache_options_destroy(o);
    return cache;
}

/*
 * Options of the snapshots and dedup families, whose commits insert each
 * batch's keys in ascending order (pn_store__build_writebatch sorts them).
 * Without a hint RocksDB searches the skiplist from the top for every key
 * unless it lands right next to the previous one; with the insert-hint
 * extractor it keeps the last insert position and climbs only as far as
 * the next key needs, so a sorted run costs the log of the gap between
 * keys, not of the memtable. Every key's first byte (the high byte of the
 * stream key's length) is one prefix, so the whole batch shares one hint.
 * The option exists only as a string in RocksDB's C API. NULL when it
 * cannot be set.
 *
 * RocksDB 7.8 keeps one hint per prefix for a memtable's point entries and
 * its range tombstones alike, so a range deletion in a hinted family must
 * never share a memtable with puts: snapshots are deleted key by key, and
 * dropping a partition puts the dedup family's range deletions in a
 * memtable of their own (store_maint.c). The events family has no hint
 * (its memtable is a vector).
 */
static rocksdb_options_t *hinted_options(void) {
    rocksdb_options_t *base = rocksdb_options_create();
    rocksdb_options_t *o = rocksdb_options_create();
    char *rerr = NULL;
    rocksdb_get_options_from_string(
        base, "memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.1",
        o, &rerr);
    rocksdb_options_destroy(base);
    if (rerr) {
        rocksdb_free(rerr);
        rocksdb_options_destroy(o);
        return NULL;
    }
    return o;
}

static rocksdb_options_t *cf_options(pn_store_t *store, pn_store_cf_t cf,
                                     uint64_t write_budget) {
    bool hint = cf == PN_STORE_CF_SNAPSHOTS ||
                (cf == PN_STORE_CF_DEDUP && store->dedup_hint);
    rocksdb_options_t *o = hint ? hinted_options() : NULL;
    if (!o)
        o = rocksdb_options_create();
    uint64_t size = write_budget * cf_write_share[cf] /
                    (WRITE_SHARES_TOTAL * MAX_WRITE_BUFFERS);
    rocksdb_options_set_write_buffer_size(
        o, (size_t)(size < MIN_CF_WRITE_BUFFER ? MIN_CF_WRITE_BUFFER : size));
    rocksdb_options_set_max_write_buffer_number(o, MAX_WRITE_BUFFERS);
    rocksdb_options_set_compression(o, rocksdb_lz4_compression);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
    /* Stream keys spread every flush over the whole key space, so each L0
     * compaction rewrites the whole base level: compacting 8 L0 files at
     * a time instead of 4 halves that work. Point reads pay little for the
     * extra files (their filter and index blocks stay pinned). */
    rocksdb_options_set_level0_file_num_compaction_trigger(o, L0_COMPACTION_TRIGGER);
    bool point_reads = cf == PN_STORE_CF_SNAPSHOTS || cf == PN_STORE_CF_DEDUP;
    if (cf == PN_STORE_CF_EVENTS)
        /* Appended once per event and only scanned by expiry and by a
         * rare rebuild: an unsorted memtable makes the insert O(1),
         * sorted at flush. */
        rocksdb_options_set_memtable_vector_rep(o);
    if (cf == PN_STORE_CF_DEDUP)
        /* Entries outside the idempotency window go at compaction
         * (store_dedup.c). The options do not own the filter. */
        rocksdb_options_set_compaction_filter(o, store->marks.filter);
    if (point_reads) {
        /* Most dedup lookups miss (a new command id), and so do snapshot
         * lookups of new streams: a memtable bloom answers them without
         * walking the skiplist. */
        rocksdb_options_set_memtable_prefix_bloom_size_ratio(o, 0.02);
        rocksdb_options_set_memtable_whole_key_filtering(o, 1);
    }
    rocksdb_block_based_table_options_t *bbto =
        table_options(store, point_reads);
    rocksdb_options_set_block_based_table_factory(o, bbto);
    rocksdb_block_based_options_destroy(bbto);
    return o;
}

static pn_err_t store_configure(pn_store_t *store,
                                const pn_store_options_t *opts) {
    uint64_t cache_bytes =
        opts->block_cache_bytes ? opts->block_cache_bytes : DEFAULT_BLOCK_CACHE;
    uint64_t write_budget = opts->write_buffer_bytes ? opts->write_buffer_bytes
                                                     : DEFAULT_WRITE_BUFFER;
    store->fold = opts->fold_format_version ? opts->fold_format_version
                                            : PN_FOLD_FORMAT_VERSION;
    store->retention_ms = opts->event_retention_ms;
    pn_err_t err = pn_store__marks_init(store, opts);
    if (err)
        return err;
    store->cache = cache_create(cache_bytes);
    store->db_opts = rocksdb_options_create();
    rocksdb_options_t *o = store->db_opts;
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_db_write_buffer_size(o, (size_t)write_budget);
    rocksdb_options_set_max_open_files(o, MAX_OPEN_FILES);
    rocksdb_options_set_max_background_jobs(o, 2);
    rocksdb_options_set_keep_log_file_num(o, KEEP_INFO_LOGS);
    /* One writer thread; and the vector memtable requires it. */
    rocksdb_options_set_allow_concurrent_memtable_write(o, 0);
    /* A torn last WAL record (kill -9 mid-write) is dropped; everything
     * before it is recovered. */
    rocksdb_options_set_wal_recovery_mode(o, 2 /* kPointInTimeRecovery */);
    store->write_budget = write_budget;
    store->dedup_hint = true;
    for (int cf = 0; cf < PN_STORE_CF__COUNT; cf++)
        store->cf_opts[cf] = cf_options(store, (pn_store_cf_t)cf, write_budget);
    store->ro = rocksdb_readoptions_create();
    store->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(store->wo, opts->sync_writes ? 1 : 0);
    store->wb = rocksdb_writebatch_create();
    pn_buf_init(&store->key, 2 + PN_STORE_STREAM_MAX + PN_STORE_COMMAND_ID_MAX);
    pn_buf_init(&store->order, SIZE_MAX);
    store->path = strdup(opts->path);
    return store->path ? PN_ERR_OK : PN_ERR_NOMEM;
}

/* --- opening ------------------------------------------------------------ */

/* A RocksDB data file: a table (*.sst) or a write-ahead log (<n>.log). */
static bool is_data_file(const char *name) {
    size_t n = strlen(name);
    if (n > 4 && strcmp(name + n - 4, ".sst") == 0)
        return true;
    return n > 4 && strcmp(name + n - 4, ".log") == 0 && name[0] >= '0' &&
           name[0] <= '9';
}

/* Without CURRENT, RocksDB would create a fresh database next to the old
 * data files (and later delete them): refuse instead. */
static pn_err_t check_orphan_files(pn_store_t *store, char *errstr,
                                   size_t errstr_size) {
    DIR *dir = opendir(store->path);
    if (!dir)
        return PN_ERR_OK; /* missing: RocksDB creates it, or says why not */
    const char *found = NULL;
    struct dirent *de;
    while (!found && (de = readdir(dir)) != NULL)
        if (is_data_file(de->d_name))
            found = de->d_name;
    pn_err_t err = PN_ERR_OK;
    if (found)
        err = pn_err_set(errstr, errstr_size, PN_ERR_STORE_CORRUPT,
                         "%s: holds RocksDB data (%s) but no CURRENT file",
                         store->path, found);
    closedir(dir);
    return err;
}

/* Translates an open error. When the database exists (CURRENT is there),
 * a file it names but that is missing means a damaged database, not a
 * transient I/O failure. */
static pn_err_t open_fail(pn_store_t *store, char *rerr, bool exists,
                          const char *what, char *errstr, size_t errstr_size) {
    bool corrupt = pn_store__rerr_code(rerr) == PN_ERR_STORE_CORRUPT ||
                   (exists && strstr(rerr, "No such file") != NULL);
    snprintf(store->last_error, sizeof store->last_error, "%s: %s%s: %s",
             store->path, corrupt ? "store is corrupt, " : "", what, rerr);
    rocksdb_free(rerr);
    return pn_err_set(errstr, errstr_size,
                      corrupt ? PN_ERR_STORE_CORRUPT : PN_ERR_STORE_IO, "%s",
                      store->last_error);
}

static int cf_index(const char *name) {
    for (int cf = 0; cf < PN_STORE_CF__COUNT; cf++)
        if (strcmp(name, pn_store__cf_names[cf]) == 0)
            return cf;
    return -1;
}

/* An existing database may only hold our column families: RocksDB cannot
 * open it otherwise, and they would come from another version. */
static pn_err_t check_column_families(pn_store_t *store, char *errstr,
                                      size_t errstr_size) {
    size_t n = 0;
    char *rerr = NULL;
    char **names =
        rocksdb_list_column_families(store->db_opts, store->path, &n, &rerr);
    if (rerr) {
        /* The C API returns an (empty) array even on failure. */
        if (names)
            rocksdb_list_column_families_destroy(names, n);
        return open_fail(store, rerr, true,
                         "cannot read the database description",
                         errstr, errstr_size);
    }
    pn_err_t err = PN_ERR_OK;
    for (size_t i = 0; i < n && !err; i++)
        if (strcmp(names[i], PN_STORE_V1_DEDUP_INDEX_CF) == 0)
            /* Format 1 (its dedup index family): say so in the words of
             * a format version mismatch, which is what it is. */
            err = pn_err_set(errstr, errstr_size, PN_ERR_STORE_VERSION,
                             "%s: store format version 1, this build reads "
                             "version %u (delete the directory: it is "
                             "restored from the events topic)",
                             store->path, PN_STORE_FORMAT_VERSION);
        else if (cf_index(names[i]) < 0)
            err = pn_err_set(errstr, errstr_size, PN_ERR_STORE_VERSION,
                             "%s: unknown column family \"%s\" (written by "
                             "another version of Panther?)",
                             store->path, names[i]);
    rocksdb_list_column_families_destroy(names, n);
    return err;
}

/* *exists tells whether a database (its CURRENT file) is there. */
static pn_err_t check_directory(pn_store_t *store, bool *exists, char *errstr,
                                size_t errstr_size) {
    char current[4096];
    struct stat st;
    int n = snprintf(current, sizeof current, "%s/CURRENT", store->path);
    if (n < 0 || (size_t)n >= sizeof current)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "%s: path too long", store->path);
    *exists = stat(current, &st) == 0;
    if (*exists)
        return check_column_families(store, errstr, errstr_size);
    if (errno != ENOENT)
        return pn_err_set(errstr, errstr_size, PN_ERR_STORE_IO, "%s: %s",
                          current, strerror(errno));
    return check_orphan_files(store, errstr, errstr_size);
}

static pn_err_t open_db(pn_store_t *store, bool exists, char *errstr,
                       size_t errstr_size) {
    const rocksdb_options_t *cf_opts[PN_STORE_CF__COUNT];
    for (int cf = 0; cf < PN_STORE_CF__COUNT; cf++)
        cf_opts[cf] = store->cf_opts[cf];
    char *rerr = NULL;
    store->db = rocksdb_open_column_families(
        store->db_opts, store->path, PN_STORE_CF__COUNT, pn_store__cf_names,
        cf_opts, store->cf, &rerr);
    if (rerr) {
        store->db = NULL;
        memset(store->cf, 0, sizeof store->cf);
        return open_fail(store, rerr, exists, "cannot open", errstr,
                         errstr_size);
    }
    return PN_ERR_OK;
}

/* True when no column family holds a key. */
static pn_err_t store_is_empty(pn_store_t *store, bool *empty) {
    *empty = true;
    pn_err_t err = PN_ERR_OK;
    for (int cf = 0; cf < PN_STORE_CF__COUNT && *empty && !err; cf++) {
        rocksdb_iterator_t *it =
            rocksdb_create_iterator_cf(store->db, store->ro, store->cf[cf]);
        rocksdb_iter_seek_to_first(it);
        *empty = !rocksdb_iter_valid(it);
        err = pn_store__iter_done(store, it, "scan");
        rocksdb_iter_destroy(it);
    }
    return err;
}

/* Stamps a new (empty) store with the format version, durably. */
static pn_err_t write_format(pn_store_t *store, char *errstr,
                             size_t errstr_size) {
    uint8_t v[4];
    pn_be32_write(v, PN_STORE_FORMAT_VERSION);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 1);
    char *rerr = NULL;
    rocksdb_put_cf(store->db, wo, store->cf[PN_STORE_CF_META],
                   PN_STORE_META_FORMAT_KEY, strlen(PN_STORE_META_FORMAT_KEY),
                   (const char *)v, sizeof v, &rerr);
    rocksdb_writeoptions_destroy(wo);
    return rerr ? pn_store__fail(store, rerr, "cannot write the format version",
                                 errstr, errstr_size)
                : PN_ERR_OK;
}

static pn_err_t check_format(pn_store_t *store, char *errstr,
                             size_t errstr_size) {
    size_t len = 0;
    char *rerr = NULL;
    char *v = rocksdb_get_cf(store->db, store->ro, store->cf[PN_STORE_CF_META],
                             PN_STORE_META_FORMAT_KEY,
                             strlen(PN_STORE_META_FORMAT_KEY), &len, &rerr);
    if (rerr)
        return pn_store__fail(store, rerr, "cannot read the format version",
                              errstr, errstr_size);
    if (!v) {
        bool empty;
        pn_err_t err = store_is_empty(store, &empty);
        if (err || empty)
            return err ? err : write_format(store, errstr, errstr_size);
        return pn_err_set(errstr, errstr_size, PN_ERR_STORE_VERSION,
                          "%s: holds data but no store format version (not "
                          "a Panther store?); this build reads version %u",
                          store->path, PN_STORE_FORMAT_VERSION);
    }
    uint32_t found = len == 4 ? pn_be32_read((const uint8_t *)v) : 0;
    rocksdb_free(v);
    if (len != 4)
        return pn_err_set(errstr, errstr_size, PN_ERR_STORE_CORRUPT,
                          "%s: format version record has %zu bytes, not 4",
                          store->path, len);
    if (found != PN_STORE_FORMAT_VERSION)
        return pn_err_set(errstr, errstr_size, PN_ERR_STORE_VERSION,
                          "%s: store format version %u, this build reads "
                          "version %u",
                          store->path, found, PN_STORE_FORMAT_VERSION);
    return PN_ERR_OK;
}

/* --- the dedup family's insert hint and older stores -------------------- */

pn_err_t pn_store__flush_dedup(pn_store_t *store) {
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *rerr = NULL;
    rocksdb_flush_cf(store->db, fo, store->cf[PN_STORE_CF_DEDUP], &rerr);
    rocksdb_flushoptions_destroy(fo);
    return rerr ? pn_store__fail(store, rerr, "flush of the dedup family",
                                 NULL, 0)
                : PN_ERR_OK;
}

static void hint_marker_path(const pn_store_t *store, char *out, size_t size) {
    snprintf(out, size, "%s/%s", store->path, HINT_MARKER);
}

static bool hint_marker_present(const pn_store_t *store) {
    char path[PATH_MAX];
    hint_marker_path(store, path, sizeof path);
    return access(path, F_OK) == 0;
}

/* Best effort: without the marker the next open converts again. */
static void write_hint_marker(pn_store_t *store) {
    char path[PATH_MAX];
    hint_marker_path(store, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || fsync(fd) != 0)
        pn_log_kv(PN_LOG_WARN, "cannot write the store's insert-hint marker; "
                               "the next open flushes the dedup family again",
                  PN_LOG_STR("path", path), PN_LOG_STR("error", strerror(errno)));
    if (fd >= 0)
        close(fd);
}

static void close_db(pn_store_t *store) {
    for (int cf = 0; cf < PN_STORE_CF__COUNT; cf++) {
        if (store->cf[cf])
            rocksdb_column_family_handle_destroy(store->cf[cf]);
        store->cf[cf] = NULL;
    }
    if (store->db)
        rocksdb_close(store->db);
    store->db = NULL;
}

static void set_dedup_hint(pn_store_t *store, bool hint) {
    store->dedup_hint = hint;
    rocksdb_options_destroy(store->cf_opts[PN_STORE_CF_DEDUP]);
    store->cf_opts[PN_STORE_CF_DEDUP] =
        cf_options(store, PN_STORE_CF_DEDUP, store->write_budget);
}

/*
 * A store without the marker was last written by a build without the
 * dedup family's insert hint, whose partition drops could leave range
 * deletions and puts in one dedup memtable; replaying that WAL with the
 * hint would link them into one skiplist (see hinted_options). It is
 * opened once without the hint and its dedup family flushed, so the WAL
 * holds nothing of that family any more, then reopened by the caller.
 */
static pn_err_t convert_for_hint(pn_store_t *store, char *errstr,
                                 size_t errstr_size) {
    set_dedup_hint(store, false);
    pn_err_t err = open_db(store, true, errstr, errstr_size);
    if (!err && (err = pn_store__flush_dedup(store)))
        pn_err_set(errstr, errstr_size, err, "%s", store->last_error);
    close_db(store);
    set_dedup_hint(store, true);
    if (!err)
        write_hint_marker(store);
    return err;
}

void pn_store__quiet_perf_context(void) {
    rocksdb_set_perf_level(1 /* kDisable */);
}

pn_err_t pn_store_open(const pn_store_options_t *opts, pn_store_t **storep,
                       char *errstr, size_t errstr_size) {
    /* The owner thread's reads (see pn_store__quiet_perf_context). */
    pn_store__quiet_perf_context();
    if (storep)
        *storep = NULL;
    if (!storep || !opts || !opts->path || !*opts->path ||
        opts->event_retention_ms < 0)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "store: no path, or a negative retention");
    pn_store_t *store = calloc(1, sizeof *store);
    if (!store)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "store: %s",
                          pn_err_str(PN_ERR_NOMEM));
    bool exists = false;
    pn_err_t err = pn_store__writer_init(store);
    if (!err)
        err = store_configure(store, opts);
    if (err)
        pn_err_set(errstr, errstr_size, err, "store: %s", pn_err_str(err));
    if (!err)
        err = check_directory(store, &exists, errstr, errstr_size);
    bool marked = !err && hint_marker_present(store);
    if (!err && exists && !marked)
        err = convert_for_hint(store, errstr, errstr_size);
    if (!err)
        err = open_db(store, exists, errstr, errstr_size);
    if (!err && !exists && !marked)
        write_hint_marker(store);
    if (!err)
        err = check_format(store, errstr, errstr_size);
    if (!err && (err = pn_store__marks_load(store)))
        pn_err_set(errstr, errstr_size, err, "%s", store->last_error);
    if (err) {
        pn_store_close(store);
        return err;
    }
    *storep = store;
    return PN_ERR_OK;
}

void pn_store_close(pn_store_t *store) {
    if (!store)
        return;
    pn_store__writer_stop(store);
    pn_store__expire_pass_end(store); /* its iterators, before the db */
    close_db(store);
    for (int cf = 0; cf < PN_STORE_CF__COUNT; cf++)
        if (store->cf_opts[cf])
            rocksdb_options_destroy(store->cf_opts[cf]);
    /* Compactions are over: the filter and its table may go. */
    pn_store__marks_free(store);
    if (store->db_opts)
        rocksdb_options_destroy(store->db_opts);
    if (store->cache)
        rocksdb_cache_destroy(store->cache);
    if (store->ro)
        rocksdb_readoptions_destroy(store->ro);
    if (store->wo)
        rocksdb_writeoptions_destroy(store->wo);
    if (store->wb)
        rocksdb_writebatch_destroy(store->wb);
    pn_buf_free(&store->key);
    pn_buf_free(&store->order);
    pn_store__filter_reset(&store->filter);
    free(store->path);
    free(store);
}

/* --- reads -------------------------------------------------------------- */

/* A point read; *value (NULL when absent) is released with rocksdb_free. */
static pn_err_t store_get(pn_store_t *store, pn_store_cf_t cf,
                          const void *key, size_t klen, char **value,
                          size_t *vlen) {
    char *rerr = NULL;
    *value = rocksdb_get_cf(store->db, store->ro, store->cf[cf], key, klen,
                            vlen, &rerr);
    return rerr ? pn_store__fail(store, rerr, "read", NULL, 0) : PN_ERR_OK;
}

pn_err_t pn_store__get_snapshot_nowait(pn_store_t *store, pn_str_t stream_key,
                               pn_state_t *state,
                               pn_snapshot_status_t *status) {
    if (!store || !state || !status || !pn_store__stream_ok(stream_key))
        return PN_ERR_INVALID_ARG;
    *status = PN_SNAPSHOT_NONE;
    pn_state_clear(state);
    uint8_t key[PN_STORE_PREFIX_MAX];
    size_t klen = pn_store__prefix(key, stream_key);
    char *v;
    size_t vlen;
    pn_err_t err = store_get(store, PN_STORE_CF_SNAPSHOTS, key, klen, &v, &vlen);
    if (err || !v)
        return err;
    uint32_t fold;
    int64_t version;
    err = pn_store__snapshot_peek(v, vlen, &fold, &version);
    if (!err && fold != store->fold)
        *status = PN_SNAPSHOT_STALE;
    else if (!err && !(err = pn_store__snapshot_decode(v, vlen, state)))
        *status = PN_SNAPSHOT_FOUND;
    rocksdb_free(v);
    return err;
}

pn_err_t pn_store__get_dedup_nowait(pn_store_t *store, pn_str_t stream_key,
                            pn_str_t command_id, pn_dedup_entry_t *entry,
                            bool *found) {
    if (!store || !entry || !found)
        return PN_ERR_INVALID_ARG;
    *found = false;
    memset(entry, 0, sizeof *entry);
    pn_buf_reset(&store->key);
    pn_err_t err = pn_store__dedup_key(&store->key, stream_key, command_id);
    if (err)
        return err;
    if (!store->filter.ready && !store->filter_failed &&
        pn_store__filter_build(store) != PN_ERR_OK) {
        /* Not retried: a scan that fails once would fail per lookup. */
        store->filter_failed = true;
        pn_log_kv(PN_LOG_WARN, "idempotency filter not built; looking up "
                               "every command id in RocksDB",
                  PN_LOG_STR("detail", store->last_error));
    }
    if (!pn_store__filter_may_contain(&store->filter, store->key.data,
                                      store->key.len))
        return PN_ERR_OK; /* never stored: no Get needed */
    char *v = NULL;
    size_t vlen;
    err = store_get(store, PN_STORE_CF_DEDUP, store->key.data, store->key.len,
                    &v, &vlen);
    if (err || !v)
        return err;
    err = pn_store__dedup_decode(v, vlen, entry);
    *found = !err;
    rocksdb_free(v);
    return err;
}

pn_err_t pn_store__get_partition_meta_nowait(pn_store_t *store, int32_t partition,
                                     pn_partition_meta_t *meta, bool *found) {
    if (!store || !meta || !found || partition < 0)
        return PN_ERR_INVALID_ARG;
    *found = false;
    memset(meta, 0, sizeof *meta);
    meta->events_offset = -1;
    uint8_t key[PN_STORE_META_PARTITION_KEY_LEN];
    pn_store__partition_key(key, partition);
    char *v;
    size_t vlen;
    pn_err_t err = store_get(store, PN_STORE_CF_META, key, sizeof key, &v, &vlen);
    if (err || !v)
        return err;
    err = pn_store__meta_decode(v, vlen, meta);
    *found = !err;
    if (err) {
        memset(meta, 0, sizeof *meta);
        meta->events_offset = -1;
    }
    rocksdb_free(v);
    return err;
}

/* One event under the scan's bounds: checks its shape, then calls fn. */
static pn_err_t visit_event(rocksdb_iterator_t *it, size_t prefix_len,
                            pn_store_event_fn fn, void *opaque) {
    size_t klen, vlen;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
    if (klen != prefix_len + 8 || vlen < PN_STORE_EVENT_AT_LEN)
        return PN_ERR_STORE_CORRUPT;
    uint64_t version = pn_be64_read(k + prefix_len);
    if (version > INT64_MAX)
        return PN_ERR_STORE_CORRUPT;
    return fn(opaque, (int64_t)version, v + PN_STORE_EVENT_AT_LEN,
              vlen - PN_STORE_EVENT_AT_LEN);
}

pn_err_t pn_store__scan_events_nowait(pn_store_t *store, pn_str_t stream_key,
                              int64_t from_version, pn_store_event_fn fn,
                              void *opaque) {
    if (!store || !fn || !pn_store__stream_ok(stream_key))
        return PN_ERR_INVALID_ARG;
    uint8_t lower[PN_STORE_EVENT_KEY_MAX], upper[PN_STORE_PREFIX_MAX];
    size_t lower_len = pn_store__event_key(
        lower, stream_key, from_version < 0 ? 0 : (uint64_t)from_version);
    size_t prefix_len = pn_store__prefix(upper, stream_key);
    size_t upper_len = pn_store__successor(upper, prefix_len);
    /* Own read options: the bounds point at this frame, and fn may call
     * back into the store. */
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)upper,
                                                upper_len);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, ro, store->cf[PN_STORE_CF_EVENTS]);
    pn_err_t err = PN_ERR_OK;
    for (rocksdb_iter_seek(it, (const char *)lower, lower_len);
         !err && rocksdb_iter_valid(it); rocksdb_iter_next(it))
        err = visit_event(it, prefix_len, fn, opaque);
    if (!err)
        err = pn_store__iter_done(store, it, "scan events");
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return err;
}

/* --- reads that wait ---------------------------------------------------- */

/* The public point reads and scans first wait for an asynchronous write in
 * flight, so a caller sees every commit that returned. Only the engine,
 * which keeps that write's contents in memory, reads without waiting
 * (store_nowait.h). */

pn_err_t pn_store_get_snapshot(pn_store_t *store, pn_str_t stream_key,
                               pn_state_t *state,
                               pn_snapshot_status_t *status) {
    if (store)
        pn_store__wait_idle(store);
    return pn_store__get_snapshot_nowait(store, stream_key, state, status);
}

pn_err_t pn_store_get_dedup(pn_store_t *store, pn_str_t stream_key,
                            pn_str_t command_id, pn_dedup_entry_t *entry,
                            bool *found) {
    if (store)
        pn_store__wait_idle(store);
    return pn_store__get_dedup_nowait(store, stream_key, command_id, entry,
                                      found);
}

pn_err_t pn_store_get_partition_meta(pn_store_t *store, int32_t partition,
                                     pn_partition_meta_t *meta, bool *found) {
    if (store)
        pn_store__wait_idle(store);
    return pn_store__get_partition_meta_nowait(store, partition, meta, found);
}

pn_err_t pn_store_scan_events(pn_store_t *store, pn_str_t stream_key,
                              int64_t from_version, pn_store_event_fn fn,
                              void *opaque) {
    if (store)
        pn_store__wait_idle(store);
    return pn_store__scan_events_nowait(store, stream_key, from_version, fn,
                                        opaque);
}

/* --- concurrent reads --------------------------------------------------- */

/* A RocksDB error on a reader thread: translated, not recorded (the
 * handle's last_error belongs to the owner thread). */
static pn_err_t reader_fail(char *rerr) {
    pn_err_t err = pn_store__rerr_code(rerr);
    rocksdb_free(rerr);
    return err;
}

/* Read options of one reader call, pinned to a snapshot of the database. */
typedef struct reader {
    pn_store_t *store;
    const rocksdb_snapshot_t *snap;
    rocksdb_readoptions_t *ro;
} reader_t;

static void reader_open(reader_t *r, pn_store_t *store) {
    r->store = store;
    r->snap = rocksdb_create_snapshot(store->db);
    r->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(r->ro, r->snap);
}

static void reader_close(reader_t *r) {
    rocksdb_readoptions_destroy(r->ro);
    rocksdb_release_snapshot(r->store->db, r->snap);
}

static pn_err_t reader_time(reader_t *r, pn_str_t stream_key, int64_t *at_ms) {
    uint8_t key[PN_STORE_STREAM_TIME_KEY_MAX];
    size_t klen = pn_store__stream_time_key(key, stream_key);
    char *rerr = NULL;
    size_t vlen;
    char *v = rocksdb_get_cf(r->store->db, r->ro, r->store->cf[PN_STORE_CF_META],
                             (const char *)key, klen, &vlen, &rerr);
    *at_ms = PN_STORE_NO_TIME;
    if (rerr)
        return reader_fail(rerr);
    if (!v)
        return PN_ERR_OK;
    pn_err_t err = pn_store__stream_time_decode(v, vlen, at_ms);
    rocksdb_free(v);
    return err;
}

/* Decodes a snapshot value of the store's fold; *current = false (state
 * cleared) for another fold. */
static pn_err_t reader_decode(const pn_store_t *store, const char *v,
                              size_t vlen, pn_state_t *state, bool *current) {
    uint32_t fold;
    int64_t version;
    pn_state_clear(state);
    pn_err_t err = pn_store__snapshot_peek(v, vlen, &fold, &version);
    *current = !err && fold == store->fold;
    if (!err && *current)
        err = pn_store__snapshot_decode(v, vlen, state);
    return err;
}

pn_err_t pn_store_read_snapshot(pn_store_t *store, pn_str_t stream_key,
                                pn_state_t *state, int64_t *at_ms,
                                pn_snapshot_status_t *status) {
    if (!store || !state || !at_ms || !status || !pn_store__stream_ok(stream_key))
        return PN_ERR_INVALID_ARG;
    *status = PN_SNAPSHOT_NONE;
    *at_ms = PN_STORE_NO_TIME;
    pn_state_clear(state);
    uint8_t key[PN_STORE_PREFIX_MAX];
    size_t klen = pn_store__prefix(key, stream_key);
    reader_t r;
    reader_open(&r, store);
    char *rerr = NULL;
    size_t vlen;
    char *v = rocksdb_get_cf(store->db, r.ro, store->cf[PN_STORE_CF_SNAPSHOTS],
                             (const char *)key, klen, &vlen, &rerr);
    pn_err_t err = rerr ? reader_fail(rerr) : PN_ERR_OK;
    if (!err && v) {
        bool current;
        err = reader_decode(store, v, vlen, state, &current);
        if (!err)
            *status = current ? PN_SNAPSHOT_FOUND : PN_SNAPSHOT_STALE;
        if (!err && current)
            err = reader_time(&r, stream_key, at_ms);
        if (err) {
            pn_state_clear(state);
            *status = PN_SNAPSHOT_NONE;
        }
    }
    rocksdb_free(v);
    reader_close(&r);
    return err;
}

/* Seeks to the first key of length n that starts with prefix. */
static void seek_length(rocksdb_iterator_t *it, size_t n, pn_str_t prefix) {
    uint8_t key[2 + PN_STORE_STREAM_MAX];
    key[0] = (uint8_t)(n >> 8);
    key[1] = (uint8_t)n;
    memcpy(key + 2, prefix.ptr, prefix.len);
    rocksdb_iter_seek(it, (const char *)key, 2 + prefix.len);
}

/* Visits the snapshot under the iterator (its key matched). */
static pn_err_t visit_snapshot(reader_t *r, rocksdb_iterator_t *it,
                               pn_str_t stream, pn_state_t *state,
                               pn_store_snapshot_fn fn, void *opaque) {
    size_t vlen;
    const char *v = rocksdb_iter_value(it, &vlen);
    bool current;
    int64_t at_ms;
    pn_err_t err = reader_decode(r->store, v, vlen, state, &current);
    if (err || !current)
        return err;
    err = reader_time(r, stream, &at_ms);
    return err ? err : fn(opaque, stream, state, at_ms);
}

/*
 * Keys are [u16 BE n][stream key], so the streams that start with prefix
 * lie in one range per length n. Seek to (n, prefix): a key of that length
 * that matches is visited; one that does not ends length n; a longer key
 * says no length in between has a match, so the scan jumps to it.
 */
pn_err_t pn_store_scan_snapshots(pn_store_t *store, pn_str_t prefix,
                                 pn_store_snapshot_fn fn, void *opaque) {
    if (!store || !fn || (prefix.len && !prefix.ptr) ||
        prefix.len > PN_STORE_STREAM_MAX)
        return PN_ERR_INVALID_ARG;
    reader_t r;
    reader_open(&r, store);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(
        store->db, r.ro, store->cf[PN_STORE_CF_SNAPSHOTS]);
    pn_state_t state;
    pn_state_init(&state);
    pn_err_t err = PN_ERR_OK;
    size_t n = prefix.len ? prefix.len : 1;
    bool seek = true;
    while (!err && n <= PN_STORE_STREAM_MAX) {
        if (seek)
            seek_length(it, n, prefix);
        if (!rocksdb_iter_valid(it))
            break;
        size_t klen, prefix_len;
        pn_str_t stream;
        const char *k = rocksdb_iter_key(it, &klen);
        if (!pn_store__parse_prefix(k, klen, &stream, &prefix_len) ||
            prefix_len != klen) {
            err = PN_ERR_STORE_CORRUPT;
        } else if (stream.len != n) {
            n = stream.len; /* > n: nothing of the lengths in between */
            seek = true;
        } else if (memcmp(stream.ptr, prefix.ptr, prefix.len) != 0) {
            n++;
            seek = true;
        } else {
            err = visit_snapshot(&r, it, stream, &state, fn, opaque);
            rocksdb_iter_next(it);
            seek = false;
        }
    }
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    if (rerr && !err)
        err = reader_fail(rerr);
    else if (rerr)
        rocksdb_free(rerr);
    pn_state_clear(&state);
    rocksdb_iter_destroy(it);
    reader_close(&r);
    return err;
}

/* --- batches ------------------------------------------------------------ */

pn_err_t pn_store_batch_new(pn_store_batch_t **batchp) {
    if (!batchp)
        return PN_ERR_INVALID_ARG;
    *batchp = calloc(1, sizeof **batchp);
    if (!*batchp)
        return PN_ERR_NOMEM;
    pn_buf_init(&(*batchp)->log, PN_STORE_BATCH_MAX_BYTES);
    return PN_ERR_OK;
}

void pn_store_batch_free(pn_store_batch_t *batch) {
    if (!batch)
        return;
    pn_buf_free(&batch->log);
    free(batch);
}

void pn_store_batch_clear(pn_store_batch_t *batch) {
    if (!batch)
        return;
    pn_buf_reset(&batch->log);
    batch->count = 0;
    batch->bytes = 0;
}

size_t pn_store_batch_count(const pn_store_batch_t *batch) {
    return batch ? batch->count : 0;
}

size_t pn_store_batch_bytes(const pn_store_batch_t *batch) {
    return batch ? batch->bytes : 0;
}

/* Fills the head of the record that starts at `at` and counts it. */
static void record_seal(pn_store_batch_t *batch, size_t at, pn_store_cf_t cf,
                        size_t klen, size_t vlen) {
    uint8_t *head = batch->log.data + at;
    head[0] = (uint8_t)cf;
    pn_be32_write(head + 1, (uint32_t)klen);
    pn_be32_write(head + 5, (uint32_t)vlen);
    batch->count++;
    batch->bytes += klen + vlen;
}

/* Makes room for a record with a key of klen bytes and a value of at most
 * vmax bytes; *keyp is where the key goes, the value follows it. */
static pn_err_t record_open(pn_store_batch_t *batch, size_t klen, size_t vmax,
                            uint8_t **keyp) {
    pn_err_t err = pn_buf_reserve(&batch->log, RECORD_HEAD + klen + vmax);
    if (err)
        return err;
    *keyp = batch->log.data + batch->log.len + RECORD_HEAD;
    return PN_ERR_OK;
}

/* Seals the record made ready by record_open. */
static void record_close(pn_store_batch_t *batch, pn_store_cf_t cf,
                         size_t klen, size_t vlen) {
    record_seal(batch, batch->log.len, cf, klen, vlen);
    batch->log.len += RECORD_HEAD + klen + vlen;
}

/* For keys appended to the log by a pn_buf writer: skips the head and
 * returns where the key starts. */
static pn_err_t record_begin(pn_store_batch_t *batch, size_t *key_start) {
    pn_err_t err = pn_buf_reserve(&batch->log, RECORD_HEAD);
    if (err)
        return err;
    batch->log.len += RECORD_HEAD;
    *key_start = batch->log.len;
    return PN_ERR_OK;
}

/* Appends the value after a key written since record_begin, and seals. */
static pn_err_t record_end(pn_store_batch_t *batch, pn_store_cf_t cf,
                           size_t key_start, const void *v, size_t vlen) {
    size_t klen = batch->log.len - key_start;
    pn_err_t err = pn_buf_append(&batch->log, v, vlen);
    if (err)
        return err;
    record_seal(batch, key_start - RECORD_HEAD, cf, klen, vlen);
    return PN_ERR_OK;
}

pn_err_t pn_store_batch_put_event(pn_store_batch_t *batch, pn_str_t stream_key,
                                  int64_t version, int64_t at_ms,
                                  const void *data, size_t len) {
    if (!batch || !pn_store__stream_ok(stream_key) || version < 1 ||
        (len > 0 && !data) || len > PN_STORE_BATCH_MAX_BYTES)
        return PN_ERR_INVALID_ARG;
    uint8_t *k;
    size_t klen = 2 + stream_key.len + 8;
    pn_err_t err = record_open(batch, klen, PN_STORE_EVENT_AT_LEN + len, &k);
    if (err)
        return err;
    pn_store__event_key(k, stream_key, (uint64_t)version);
    pn_be64_write(k + klen, (uint64_t)at_ms);
    if (len > 0)
        memcpy(k + klen + PN_STORE_EVENT_AT_LEN, data, len);
    record_close(batch, PN_STORE_CF_EVENTS, klen, PN_STORE_EVENT_AT_LEN + len);
    return PN_ERR_OK;
}

/* The fold format version written here is a placeholder: the commit stamps
 * the version of the store it writes to. */
pn_err_t pn_store_batch_put_snapshot(pn_store_batch_t *batch,
                                     pn_str_t stream_key,
                                     const pn_state_t *state) {
    if (!batch || !state || !pn_store__stream_ok(stream_key))
        return PN_ERR_INVALID_ARG;
    uint8_t *k;
    size_t klen = 2 + stream_key.len;
    pn_err_t err =
        record_open(batch, klen, pn_store__snapshot_max_size(state), &k);
    if (err)
        return err;
    size_t vlen = pn_store__snapshot_write(k + klen, 0, state);
    if (vlen == 0)
        return PN_ERR_INVALID_ARG;
    pn_store__prefix(k, stream_key);
    record_close(batch, PN_STORE_CF_SNAPSHOTS, klen, vlen);
    return PN_ERR_OK;
}

pn_err_t pn_store_batch_put_dedup(pn_store_batch_t *batch, pn_str_t stream_key,
                                  pn_str_t command_id,
                                  const pn_dedup_entry_t *entry) {
    uint8_t v[PN_STORE_DEDUP_VALUE_MAX];
    size_t vlen = entry ? pn_store__dedup_encode(v, entry) : 0;
    if (!batch || vlen == 0 || entry->partition < 0)
        return PN_ERR_INVALID_ARG;
    pn_buf_t *log = &batch->log;
    size_t start = log->len, count = batch->count, bytes = batch->bytes;
    size_t key_start;
    pn_err_t err = record_begin(batch, &key_start);
    if (!err)
        err = pn_store__dedup_key(log, stream_key, command_id);
    if (!err)
        err = record_end(batch, PN_STORE_CF_DEDUP, key_start, v, vlen);
    if (err) {
        log->len = start;
        batch->count = count;
        batch->bytes = bytes;
    }
    return err;
}

pn_err_t pn_store_batch_put_partition_meta(pn_store_batch_t *batch,
                                           int32_t partition,
                                           const pn_partition_meta_t *meta) {
    if (!batch || !meta || partition < 0)
        return PN_ERR_INVALID_ARG;
    uint8_t *k;
    pn_err_t err = record_open(batch, PN_STORE_META_PARTITION_KEY_LEN,
                               PN_STORE_META_VALUE_MAX, &k);
    if (err)
        return err;
    pn_store__partition_key(k, partition);
    size_t vlen = pn_store__meta_encode(k + PN_STORE_META_PARTITION_KEY_LEN, meta);
    record_close(batch, PN_STORE_CF_META, PN_STORE_META_PARTITION_KEY_LEN, vlen);
    return PN_ERR_OK;
}

pn_err_t pn_store_batch_put_stream_time(pn_store_batch_t *batch,
                                        pn_str_t stream_key, int64_t at_ms) {
    if (!batch || !pn_store__stream_ok(stream_key))
        return PN_ERR_INVALID_ARG;
    uint8_t *k;
    pn_err_t err = record_open(batch, PN_STORE_STREAM_TIME_KEY_MAX,
                               PN_STORE_STREAM_TIME_LEN, &k);
    if (err)
        return err;
    size_t klen = pn_store__stream_time_key(k, stream_key);
    pn_store__stream_time_encode(k + klen, at_ms);
    record_close(batch, PN_STORE_CF_META, klen, PN_STORE_STREAM_TIME_LEN);
    return PN_ERR_OK;
}

/* Orders batch records by column family, then key, then position, so
 * that a key written twice keeps its last value. */
static int record_cmp(const void *a, const void *b) {
    const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    size_t xl = pn_be32_read(x + 1), yl = pn_be32_read(y + 1);
    int c = memcmp(x + RECORD_HEAD, y + RECORD_HEAD, xl < yl ? xl : yl);
    if (c)
        return c;
    if (xl != yl)
        return xl < yl ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Sorts records[0..n) with tmp[0..n) as scratch: a bottom-up merge sort,
 * stable, into a buffer the store keeps (qsort allocates and frees a
 * temporary array of the batch's size on every commit). */
static void sort_records(uint8_t **records, uint8_t **tmp, size_t n) {
    uint8_t **src = records, **dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = record_cmp(&src[j], &src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        uint8_t **swap = src;
        src = dst;
        dst = swap;
    }
    if (src != records)
        memcpy(records, src, n * sizeof *records);
}

/* Collects the records of a batch sorted by key. RocksDB's memtable skip
 * list inserts a run of ascending keys almost for free (it reuses the
 * position of the previous insert), where random order pays a full search
 * per key: sorting here is what lets a commit keep up with raw writes. */
static pn_err_t sorted_records(pn_store_t *store, pn_store_batch_t *batch,
                               uint8_t ***recordsp) {
    pn_buf_reset(&store->order);
    pn_err_t err =
        pn_buf_reserve(&store->order, 2 * batch->count * sizeof(uint8_t *));
    if (err)
        return err;
    uint8_t **records = (uint8_t **)(void *)store->order.data;
    size_t n = 0;
    uint8_t *p = batch->log.data, *end = p + batch->log.len;
    while (p < end && n < batch->count) {
        records[n++] = p;
        p += RECORD_HEAD + pn_be32_read(p + 1) + pn_be32_read(p + 5);
    }
    sort_records(records, records + n, n);
    *recordsp = records;
    return PN_ERR_OK;
}

void pn_store__batch_foreach(const pn_store_batch_t *batch,
                             pn_store__record_fn fn, void *opaque) {
    const uint8_t *p = batch->log.data, *end = p + batch->log.len;
    for (size_t n = 0; p < end && n < batch->count; n++) {
        size_t klen = pn_be32_read(p + 1), vlen = pn_be32_read(p + 5);
        fn(opaque, (pn_store_cf_t)p[0], p + RECORD_HEAD, klen,
           p + RECORD_HEAD + klen, vlen);
        p += RECORD_HEAD + klen + vlen;
    }
}

static void filter_add_record(void *opaque, pn_store_cf_t cf,
                              const uint8_t *key, size_t klen,
                              const uint8_t *value, size_t vlen) {
    (void)value;
    (void)vlen;
    if (cf == PN_STORE_CF_DEDUP)
        (void)pn_store__filter_add(opaque, key, klen);
}

/* Adds the batch's dedup keys to the idempotency filter. Owner thread,
 * before the write is issued: a lookup must never miss a stored key. A
 * failed add drops the filter rather than leave it short. */
void pn_store__filter_add_batch(pn_store_t *store,
                                const pn_store_batch_t *batch) {
    if (!store->filter.ready)
        return;
    pn_store__batch_foreach(batch, filter_add_record, &store->filter);
    pn_store__filter_check_bound(store);
}

void pn_store__batch_swap(pn_store_batch_t *a, pn_store_batch_t *b) {
    pn_store_batch_t t = *a;
    *a = *b;
    *b = t;
}

pn_err_t pn_store__build_writebatch(pn_store_t *store, pn_store_batch_t *batch,
                                    rocksdb_writebatch_t *wb, char *errstr,
                                    size_t errstr_size) {
    uint8_t **records;
    pn_err_t err = sorted_records(store, batch, &records);
    if (err)
        return pn_err_set(errstr, errstr_size, err, "store commit: %s",
                          pn_err_str(err));
    rocksdb_writebatch_clear(wb);
    for (size_t i = 0; i < batch->count; i++) {
        uint8_t *p = records[i];
        pn_store_cf_t cf = (pn_store_cf_t)p[0];
        size_t klen = pn_be32_read(p + 1), vlen = pn_be32_read(p + 5);
        uint8_t *k = p + RECORD_HEAD, *v = k + klen;
        if (cf == PN_STORE_CF_SNAPSHOTS)
            pn_be32_write(v, store->fold);
        rocksdb_writebatch_put_cf(wb, store->cf[cf], (const char *)k, klen,
                                  (const char *)v, vlen);
    }
    return PN_ERR_OK;
}

pn_err_t pn_store_commit(pn_store_t *store, pn_store_batch_t *batch,
                         char *errstr, size_t errstr_size) {
    if (!store || !batch)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "store commit: no store or batch");
    if (batch->count == 0)
        return PN_ERR_OK;
    /* After an asynchronous write: this one must land after it (and the
     * writer thread is done with store->order), and not at all if it
     * failed: a checkpoint written past a batch that never landed would
     * skip that batch when the store is restored. */
    pn_err_t err = pn_store_sync(store, errstr, errstr_size);
    if (!err)
        err = pn_store__check_writable(store, errstr, errstr_size);
    if (err)
        return err;
    pn_store__filter_add_batch(store, batch);
    err = pn_store__build_writebatch(store, batch, store->wb, errstr,
                                     errstr_size);
    if (err)
        return err;
    char *rerr = NULL;
    rocksdb_write(store->db, store->wo, store->wb, &rerr);
    rocksdb_writebatch_clear(store->wb);
    if (rerr)
        return pn_store__fail(store, rerr, "commit", errstr, errstr_size);
    pn_store__marks_note_batch(store, batch);
    return PN_ERR_OK;
}
