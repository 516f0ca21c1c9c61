/*
 * Internal to the store: the on-disk layout of keys and values in the
 * store's RocksDB (src/store.c is the only user besides the tests). Nothing
 * here touches RocksDB; every decoder is bounds-checked and answers
 * PN_ERR_STORE_CORRUPT for bytes it cannot fully account for.
 *
 * Column family "events"
 *   key    [u16 BE n][stream key, n bytes][u64 BE version]
 *   value  [i64 BE command time ms][opaque event bytes]
 * Column family "snapshots"
 *   key    [u16 BE n][stream key]
 *   value  [u32 BE fold format version][state]   state, when the fold
 *          format version is 1: varint version, varint on_hand,
 *          varint reserved, varint count, count x (varint n, order id
 *          bytes, varint quantity); nothing may follow.
 * Column family "dedup"
 *   key    [u16 BE n][stream key][command id]
 *   value  [u8 layout = 1] zigzag partition, varint seq, zigzag at_ms,
 *          u8 command type, u8 status, u8 reason + 1, u8 duplicate,
 *          zigzag version, on_hand, reserved, available
 *   An entry expires by itself: the family's compaction filter
 *   (store_dedup.c) drops it once it is outside the idempotency window of
 *   its partition, read from the value's partition, seq and at_ms. (Format
 *   version 1 also kept a "dedup_index" family ordering entries by time for
 *   an explicit expiry pass; version 2 has none.)
 * Column family "meta"
 *   "format"                  -> u32 BE store format version
 *   "p" + u32 BE partition    -> [u8 layout = 1] zigzag events_offset,
 *                                varint dedup_seq, zigzag dedup_max_at_ms
 *   "s" + [u16 BE n][stream key] -> [u8 layout = 1][i64 BE at_ms]: when
 *                                the stream last changed (the snapshotter
 *                                writes it next to each snapshot; an
 *                                addition that older readers never look
 *                                up, so the format version is unchanged)
 *
 * Big-endian keys sort streams apart (the length prefix keeps "a|b" and
 * "a|bc" in separate ranges) and events by version.
 */
#ifndef PANTHER_STORE_FORMAT_H
#define PANTHER_STORE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "panther/buf.h"
#include "panther/domain.h"
#include "panther/store.h"

/** Version of the whole layout above, kept under meta "format". Bump on any
 *  incompatible change; a store of another version is refused on open. */
#define PN_STORE_FORMAT_VERSION 2u
/** The column family only format version 1 had: its presence names the
 *  version of a store too old to open. */
#define PN_STORE_V1_DEDUP_INDEX_CF "dedup_index"

#define PN_STORE_META_FORMAT_KEY "format"
#define PN_STORE_META_PARTITION_TAG 'p'
#define PN_STORE_META_PARTITION_KEY_LEN 5
#define PN_STORE_META_STREAM_TAG 's'
#define PN_STORE_STREAM_TIME_KEY_MAX (1 + PN_STORE_PREFIX_MAX)
#define PN_STORE_STREAM_TIME_LEN 9

/** Longest stream key the store accepts (any valid canonical key fits). */
#define PN_STORE_STREAM_MAX (PN_STREAM_KEY_MAX - 1)
/** Longest command id in a dedup key. */
#define PN_STORE_COMMAND_ID_MAX 4096
#define PN_STORE_PREFIX_MAX (2 + PN_STORE_STREAM_MAX)
#define PN_STORE_EVENT_KEY_MAX (PN_STORE_PREFIX_MAX + 8)
#define PN_STORE_EVENT_AT_LEN 8
#define PN_STORE_FOLD_LEN 4

/** Column families, in the order the store opens them. */
typedef enum {
    PN_STORE_CF_DEFAULT,
    PN_STORE_CF_EVENTS,
    PN_STORE_CF_SNAPSHOTS,
    PN_STORE_CF_DEDUP,
    PN_STORE_CF_META,
    PN_STORE_CF__COUNT
} pn_store_cf_t;

extern const char *const pn_store__cf_names[PN_STORE_CF__COUNT];

/* --- keys -------------------------------------------------------------- */

/** True when the store accepts key as a stream key (1..PN_STORE_STREAM_MAX
 *  bytes). */
bool pn_store__stream_ok(pn_str_t stream_key);

/** Writes [u16 BE n][stream key] (PN_STORE_PREFIX_MAX bytes suffice);
 *  returns its length. The key must be pn_store__stream_ok. */
size_t pn_store__prefix(uint8_t *out, pn_str_t stream_key);

/** Writes the events key (PN_STORE_EVENT_KEY_MAX bytes suffice). */
size_t pn_store__event_key(uint8_t *out, pn_str_t stream_key,
                           uint64_t version);

/**
 * Splits a key that starts with a stream prefix: *stream views the key's
 * bytes, *prefix_len is 2 + n. False when the key is too short or n is out
 * of range.
 */
bool pn_store__parse_prefix(const void *key, size_t len, pn_str_t *stream,
                            size_t *prefix_len);

/**
 * Turns key[0..len) into the smallest key greater than every key that starts
 * with it (increment the last byte below 0xFF, drop what follows). Returns
 * the new length, 0 when no such key exists (all 0xFF).
 */
size_t pn_store__successor(uint8_t *key, size_t len);

/** Writes the meta key of a partition (PN_STORE_META_PARTITION_KEY_LEN). */
void pn_store__partition_key(uint8_t *out, int32_t partition);

/** Writes the meta key of a stream's time ("s" + prefix); returns its
 *  length (PN_STORE_STREAM_TIME_KEY_MAX bytes suffice). */
size_t pn_store__stream_time_key(uint8_t *out, pn_str_t stream_key);

/** Appends [u16 BE n][stream key][command id] to out. */
PN_MUST_CHECK pn_err_t pn_store__dedup_key(pn_buf_t *out, pn_str_t stream_key,
                                           pn_str_t command_id);

/* --- values ------------------------------------------------------------ */

/** Largest encoding of the state (for one reservation of the output). */
size_t pn_store__snapshot_max_size(const pn_state_t *state);

/**
 * Writes [u32 BE fold][state] to out, which has room for
 * pn_store__snapshot_max_size(state) bytes; returns the length. Returns 0
 * for a state that breaks its invariants (negative counts, reserved != sum,
 * empty or oversized order ids), so a bad snapshot is caught when written
 * rather than when read.
 */
size_t pn_store__snapshot_write(uint8_t *out, uint32_t fold,
                                const pn_state_t *state);

/** Reads the fold format version and the stream version of a snapshot value
 *  without decoding the rest. */
PN_MUST_CHECK pn_err_t pn_store__snapshot_peek(const void *value, size_t len,
                                               uint32_t *fold,
                                               int64_t *version);

/**
 * Decodes a snapshot value of fold format version 1 into state, which is
 * cleared first and left cleared on failure. PN_ERR_STORE_CORRUPT for any
 * value a correct encoder cannot have written; PN_ERR_NOMEM.
 */
PN_MUST_CHECK pn_err_t pn_store__snapshot_decode(const void *value, size_t len,
                                                 pn_state_t *state);

/** Largest encoded dedup value. */
#define PN_STORE_DEDUP_VALUE_MAX (1 + 10 * 7 + 4)

/** Writes a dedup value (PN_STORE_DEDUP_VALUE_MAX bytes suffice); returns
 *  its length, 0 for an entry with out-of-range enums. */
size_t pn_store__dedup_encode(uint8_t *out, const pn_dedup_entry_t *entry);

PN_MUST_CHECK pn_err_t pn_store__dedup_decode(const void *value, size_t len,
                                              pn_dedup_entry_t *entry);

/** A stream time value (PN_STORE_STREAM_TIME_LEN bytes). */
void pn_store__stream_time_encode(uint8_t *out, int64_t at_ms);
PN_MUST_CHECK pn_err_t pn_store__stream_time_decode(const void *value,
                                                    size_t len,
                                                    int64_t *at_ms);

#define PN_STORE_META_VALUE_MAX (1 + 10 * 3)

/** Writes a partition meta value; returns its length. */
size_t pn_store__meta_encode(uint8_t *out, const pn_partition_meta_t *meta);

PN_MUST_CHECK pn_err_t pn_store__meta_decode(const void *value, size_t len,
                                             pn_partition_meta_t *meta);

#endif
