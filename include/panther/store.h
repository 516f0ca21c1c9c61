/*
 * Local state on RocksDB (DESIGN.md section 7). One database per worker with
 * these column families (byte layouts in src/store_format.h):
 *
 *   events     stream key + big-endian version -> command time + encoded
 *              InventoryEvent (opaque bytes to the store)
 *   snapshots  stream key -> fold format version, stream version, state
 *   dedup      stream key + command id -> partition, sequence, command time,
 *              outcome (the idempotency index). Entries expire by
 *              themselves: a compaction filter drops those outside the
 *              idempotency window of their partition (see "idempotency
 *              window" below), so nothing but the entry is written per
 *              command and nothing has to delete it.
 *   meta       store format version; per-partition checkpoint (next
 *              events-topic offset to apply) and idempotency watermark;
 *              per-stream time of the last change (the snapshotter's)
 *
 * The store knows domain types but not Avro: event bytes are opaque, so
 * rebuilding a stale snapshot is the engine's job (pn_store_scan_events).
 * All writes of one committed batch go through one pn_store_batch_t and land
 * atomically, or not at all.
 *
 * A store handle may be used from one thread at a time, with one
 * exception: the readers of the "concurrent reads" section below may run on
 * any number of other threads at the same time as the owner thread's calls
 * (RocksDB allows it, and they share no scratch state of the handle), as
 * long as none of them outlives pn_store_close().
 *
 * pn_store_commit_async() hands a batch's write to the store's own writer
 * thread (at most one write in flight). Every owner-thread call that
 * reads, writes or maintains (the point reads and scans, pn_store_commit,
 * expiry, drop_partition, close) waits for it first, so a caller sees
 * every commit that returned; the engine alone uses non-waiting reads
 * (src/store_nowait.h) and answers for the in-flight batch from memory.
 * The concurrent reads below do not wait: like any reader on another
 * thread they see the writes that have landed.
 */
#ifndef PANTHER_STORE_H
#define PANTHER_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "panther/domain.h"
#include "panther/err.h"

typedef struct pn_store_s pn_store_t;
typedef struct pn_store_batch_s pn_store_batch_t;

/** Version of the snapshot encoding and of the fold that produced it. Bump
 *  when evolve changes meaning: snapshots of another version are deleted
 *  and rebuilt from events. */
#define PN_FOLD_FORMAT_VERSION 1u

typedef struct pn_store_options {
    const char *path;             /* directory; created if missing */
    uint64_t block_cache_bytes;   /* one shared LRU cache; 0 = 32 MiB */
    uint64_t write_buffer_bytes;  /* budget for all memtables; 0 = 64 MiB */
    bool sync_writes;             /* fsync the WAL on every commit */
    uint32_t fold_format_version; /* 0 = PN_FOLD_FORMAT_VERSION (tests set
                                     it to simulate an upgrade) */
    /* Events covered by a snapshot and older than this (command time) are
     * dropped by pn_store_expire_events. 0 = keep forever. */
    int64_t event_retention_ms;
    /* Idempotency window (DESIGN.md section 4): an entry is kept while it
     * is among the last dedup_window_commands commands of its partition
     * OR at most dedup_window_ms of command time older than the
     * partition's latest. Both 0 = the defaults below; otherwise taken as
     * given (0 in one of them: that bound alone). Every process opening a
     * store must pass the same window: compaction deletes by it. */
    uint64_t dedup_window_commands;
    int64_t dedup_window_ms;
} pn_store_options_t;

#define PN_STORE_DEFAULT_WINDOW_COMMANDS 10000u
#define PN_STORE_DEFAULT_WINDOW_MS (24LL * 3600 * 1000)

/**
 * Opens or creates the store. Fails with PN_ERR_STORE_CORRUPT or
 * PN_ERR_STORE_VERSION (message in errstr naming the path) when the
 * directory holds something Panther cannot use. *storep owned by caller.
 */
PN_MUST_CHECK pn_err_t pn_store_open(const pn_store_options_t *opts,
                                     pn_store_t **storep, char *errstr,
                                     size_t errstr_size);

/** Flushes nothing extra (the WAL is durable enough); NULL-safe. */
void pn_store_close(pn_store_t *store);

/** Room for a store error text (path, what was attempted, RocksDB's
 *  message), with its terminating NUL. */
#define PN_STORE_LAST_ERROR_MAX 512

/** The text of the last RocksDB failure seen by this store (path, what was
 *  attempted, RocksDB's message), for logs; "" when none. Calls without an
 *  errstr (reads, scans, maintenance) only report through here. */
const char *pn_store_last_error(const pn_store_t *store);

/** What pn_store_get_snapshot found. */
typedef enum {
    PN_SNAPSHOT_NONE,  /* no snapshot: the stream has no committed events */
    PN_SNAPSHOT_FOUND, /* state holds the snapshot */
    PN_SNAPSHOT_STALE, /* written by another fold format version: rebuild
                          from the events and overwrite it */
} pn_snapshot_status_t;

/**
 * Reads the snapshot of a stream into state (initialised by the caller).
 * A stale snapshot is left in place until the caller overwrites it with the
 * rebuilt state, so a crash in between cannot make the stream look new.
 * state is left at the zero state unless the status is FOUND.
 */
PN_MUST_CHECK pn_err_t pn_store_get_snapshot(pn_store_t *store,
                                             pn_str_t stream_key,
                                             pn_state_t *state,
                                             pn_snapshot_status_t *status);

/** Called once per event in version order; a non-OK return stops the scan
 *  and is returned by pn_store_scan_events. */
typedef pn_err_t (*pn_store_event_fn)(void *opaque, int64_t version,
                                      const void *data, size_t len);

/** Visits the stored events of a stream with version >= from_version. */
PN_MUST_CHECK pn_err_t pn_store_scan_events(pn_store_t *store,
                                            pn_str_t stream_key,
                                            int64_t from_version,
                                            pn_store_event_fn fn,
                                            void *opaque);

/** An idempotency index entry. */
typedef struct pn_dedup_entry {
    int32_t partition;
    uint64_t seq;  /* position of the command in its partition */
    int64_t at_ms; /* command time */
    pn_outcome_t outcome;
} pn_dedup_entry_t;

/** Looks up (stream, command id); *found = false when absent. The entry
 *  may be outside the window but not compacted away yet: callers decide
 *  with pn_store_dedup_expired(). */
PN_MUST_CHECK pn_err_t pn_store_get_dedup(pn_store_t *store,
                                          pn_str_t stream_key,
                                          pn_str_t command_id,
                                          pn_dedup_entry_t *entry,
                                          bool *found);

/** Per-partition metadata kept with every batch. */
typedef struct pn_partition_meta {
    int64_t events_offset; /* next events-topic offset to apply; -1 none */
    uint64_t dedup_seq;    /* commands executed in the partition so far */
    int64_t dedup_max_at_ms; /* latest command time seen */
} pn_partition_meta_t;

/** *found = false (and meta zeroed, offset -1) for an unknown partition. */
PN_MUST_CHECK pn_err_t pn_store_get_partition_meta(pn_store_t *store,
                                                   int32_t partition,
                                                   pn_partition_meta_t *meta,
                                                   bool *found);

/** Deletes the stream events, snapshots, idempotency entries and metadata
 *  of one partition's streams. `owns` says whether a stream key belongs to
 *  the partition. Used when the local copy must be rebuilt from Kafka. */
typedef bool (*pn_store_key_filter_fn)(void *opaque, pn_str_t stream_key);

/* --- idempotency window ------------------------------------------------ */

/** The store's window (from the options, defaults applied). */
void pn_store_dedup_window(const pn_store_t *store, uint64_t *commands,
                           int64_t *ms);

/**
 * True when entry is outside the window of its partition whose watermarks
 * are meta (dedup_seq, dedup_max_at_ms): more than `commands` commands
 * behind AND more than `ms` of command time older. The one definition
 * used by lookups (the engine, with its batch's watermarks) and by the
 * compaction filter (with the watermarks of the last landed write, never
 * ahead of the engine's), so compaction only drops what a lookup would
 * already ignore. Thread-safe, pure.
 */
bool pn_store_dedup_expired(uint64_t commands, int64_t ms,
                            const pn_partition_meta_t *meta,
                            const pn_dedup_entry_t *entry);

/* --- batches ----------------------------------------------------------- */

/** Largest batch: puts past it fail with PN_ERR_TOO_LARGE. */
#define PN_STORE_BATCH_MAX_BYTES ((size_t)256 << 20)

/*
 * Puts validate their arguments (PN_ERR_INVALID_ARG): stream keys of 1 to
 * PN_STREAM_KEY_MAX - 1 bytes, versions >= 1, partitions >= 0, states that
 * keep their invariants. A failed put leaves the batch as it was. Puts only
 * append to memory the batch keeps across pn_store_batch_clear(), so a
 * reused batch does not allocate.
 */

/** A new empty batch. Owned by the caller; pn_store_batch_free() frees. */
PN_MUST_CHECK pn_err_t pn_store_batch_new(pn_store_batch_t **batchp);
void pn_store_batch_free(pn_store_batch_t *batch);
/** Empties the batch for reuse. */
void pn_store_batch_clear(pn_store_batch_t *batch);
/** Number of puts and deletes recorded. */
size_t pn_store_batch_count(const pn_store_batch_t *batch);
/** Bytes of keys and values recorded. */
size_t pn_store_batch_bytes(const pn_store_batch_t *batch);

PN_MUST_CHECK pn_err_t pn_store_batch_put_event(pn_store_batch_t *batch,
                                                pn_str_t stream_key,
                                                int64_t version,
                                                int64_t at_ms,
                                                const void *data,
                                                size_t len);

/** Snapshot of state (encoded by the store, stamped with the fold format
 *  version of the store the batch is committed to). */
PN_MUST_CHECK pn_err_t pn_store_batch_put_snapshot(pn_store_batch_t *batch,
                                                   pn_str_t stream_key,
                                                   const pn_state_t *state);

PN_MUST_CHECK pn_err_t pn_store_batch_put_dedup(
    pn_store_batch_t *batch, pn_str_t stream_key, pn_str_t command_id,
    const pn_dedup_entry_t *entry);

PN_MUST_CHECK pn_err_t pn_store_batch_put_partition_meta(
    pn_store_batch_t *batch, int32_t partition,
    const pn_partition_meta_t *meta);

/** When a stream last changed: the command time of its latest applied
 *  event (the snapshotter's updatedAt), kept next to its snapshot. */
PN_MUST_CHECK pn_err_t pn_store_batch_put_stream_time(pn_store_batch_t *batch,
                                                      pn_str_t stream_key,
                                                      int64_t at_ms);

/** Writes the batch atomically (one RocksDB WriteBatch), after any
 *  asynchronous write in flight; if that one failed, returns its error
 *  and writes nothing. The batch is left as it was; clear it to reuse. */
PN_MUST_CHECK pn_err_t pn_store_commit(pn_store_t *store,
                                       pn_store_batch_t *batch, char *errstr,
                                       size_t errstr_size);

/**
 * Starts writing the batch on the store's writer thread and returns
 * without waiting for it. First waits for the previous asynchronous write
 * and returns its error, if it failed, without starting this one. The
 * batch's records move to the writer (which sorts and writes them): the
 * batch is left empty, ready for reuse. A failure of this write is
 * returned by the next pn_store_sync(), pn_store_poll() or
 * pn_store_commit_async(). Owner thread.
 */
PN_MUST_CHECK pn_err_t pn_store_commit_async(pn_store_t *store,
                                             pn_store_batch_t *batch,
                                             char *errstr,
                                             size_t errstr_size);

/** Waits for the asynchronous write in flight, if any; returns its error
 *  once (text in errstr and pn_store_last_error()). Owner thread. */
PN_MUST_CHECK pn_err_t pn_store_sync(pn_store_t *store, char *errstr,
                                     size_t errstr_size);

/** Like pn_store_sync() without waiting: *idle = false while the write is
 *  still in flight (then OK is returned). Owner thread. */
PN_MUST_CHECK pn_err_t pn_store_poll(pn_store_t *store, bool *idle,
                                     char *errstr, size_t errstr_size);

/* --- concurrent reads --------------------------------------------------- */

/*
 * For readers on other threads (the snapshotter's HTTP threads) while the
 * owner thread writes. Each call reads from one RocksDB snapshot, so a
 * stream's state and time come from the same committed batch; each
 * allocates what it needs and leaves pn_store_last_error() alone (the
 * error is returned only).
 */

/** Time of a stream without one (never written by put_stream_time). */
#define PN_STORE_NO_TIME INT64_MIN

/**
 * Reads the snapshot of a stream (as pn_store_get_snapshot) and its time
 * (PN_STORE_NO_TIME when none) into state and *at_ms.
 */
PN_MUST_CHECK pn_err_t pn_store_read_snapshot(pn_store_t *store,
                                              pn_str_t stream_key,
                                              pn_state_t *state,
                                              int64_t *at_ms,
                                              pn_snapshot_status_t *status);

/** Called once per snapshot; the views are valid for the call only. A
 *  non-OK return stops the scan and is returned by it. */
typedef pn_err_t (*pn_store_snapshot_fn)(void *opaque, pn_str_t stream_key,
                                         const pn_state_t *state,
                                         int64_t at_ms);

/**
 * Visits the snapshots of every stream whose key starts with `prefix`
 * (e.g. "SKU-1|" for all nodes of a SKU; empty for all), ordered by key
 * length, then bytes. Snapshots of another fold format version are
 * skipped (they are not the current fold). Keys are length-prefixed, so
 * this is one seek per distinct key length present, not a full scan.
 */
PN_MUST_CHECK pn_err_t pn_store_scan_snapshots(pn_store_t *store,
                                               pn_str_t prefix,
                                               pn_store_snapshot_fn fn,
                                               void *opaque);

/* --- maintenance ------------------------------------------------------- */

/**
 * Deletes events whose version is at or below their stream's snapshot
 * version and whose command time is older than now_ms - retention (from the
 * options). Returns the number deleted in *n_deleted (may be NULL).
 */
PN_MUST_CHECK pn_err_t pn_store_expire_events(pn_store_t *store,
                                              int64_t now_ms,
                                              uint64_t *n_deleted);

/**
 * pn_store_expire_events in bounded steps: visits snapshots and deletes
 * events until max_work (snapshots visited + events deleted; at least 2,
 * so that every step makes progress) is reached, and remembers where it stopped; the next call resumes there.
 * *pass_done (may be NULL) is true when this step reached the end of the
 * snapshots (the next starts a new pass from the first). Deletes are
 * written in chunks, so a step's work lands even if a later step fails.
 * A pass reads the database as of its first step (it keeps its iterators
 * between steps; this pins that moment's memtables and tables until the
 * pass ends), so call steps often enough that a pass ends in seconds to
 * minutes. pn_store_drop_partition() and pn_store_expire_events() end a
 * pass in progress. Owner thread; waits for the write in flight.
 */
PN_MUST_CHECK pn_err_t pn_store_expire_events_step(pn_store_t *store,
                                                   int64_t now_ms,
                                                   uint64_t max_work,
                                                   uint64_t *n_deleted,
                                                   bool *pass_done);

/** Drops everything belonging to streams for which owns() is true (their
 *  times included), and the partition's metadata, in one atomic write. */
PN_MUST_CHECK pn_err_t pn_store_drop_partition(pn_store_t *store,
                                               int32_t partition,
                                               pn_store_key_filter_fn owns,
                                               void *opaque);

/** Approximate memory held by RocksDB (memtables + block cache + table
 *  readers), for metrics and the benchmark. */
uint64_t pn_store_memory_usage(pn_store_t *store);

#endif
