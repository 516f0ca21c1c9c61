/*
 * Avro codec for the records of DESIGN.md sections 3 and 5, built on Avro
 * C's avro_value_t API. The schemas come from schemas/NAME.avsc, embedded at
 * build time (see pn_schema_json()).
 *
 * Decoding tells framings apart by their first bytes:
 *   0x00 + 4-byte big-endian id + body   Confluent Schema Registry framing;
 *                                        the writer schema comes from the
 *                                        lookup callback
 *   0xC3 0x01 + 8-byte CRC-64-AVRO       Avro single-object encoding; the
 *        fingerprint (little endian)     fingerprint must be one the codec
 *                                        knows (ours or a registered one)
 *   anything else                        plain Avro binary of our schema
 * Plain Avro of UpdateInventory (union branch 0) also starts with 0x00:
 * 0x00 0x00 is always Confluent framing (ids below 2^24), while 0x00 and a
 * non-zero byte is read as a plain UpdateInventory when it is a valid one
 * and as Confluent framing otherwise (see src/codec_command.c).
 * A writer schema other than ours is read through Avro schema resolution;
 * resolvers are built once per writer schema and cached. Avro C 1.11 does
 * not apply reader defaults, so a writer lacking one of our fields is
 * INCOMPATIBLE_SCHEMA even when our field has a default.
 *
 * Errors are typed (PN_ERR_TOO_LARGE, TRUNCATED, MALFORMED, UNKNOWN_BRANCH,
 * UNKNOWN_SCHEMA, INCOMPATIBLE_SCHEMA) with a message in errstr; no input
 * makes the decoder read out of bounds or crash. Input that ends early is
 * TRUNCATED, except that a string or bytes length pointing past the end is
 * MALFORMED; strings must be valid UTF-8.
 *
 * A codec is not thread-safe: use one per thread.
 */
#ifndef PANTHER_CODEC_H
#define PANTHER_CODEC_H

#include <stdint.h>

#include "panther/buf.h"
#include "panther/domain.h"
#include "panther/err.h"

typedef struct pn_codec_s pn_codec_t;

/** The records Panther knows, one per file in schemas/. */
typedef enum {
    PN_SCHEMA_COMMAND,            /* Command.avsc: union of 4 records */
    PN_SCHEMA_INVENTORY_EVENT,    /* InventoryEvent.avsc */
    PN_SCHEMA_COMMAND_OUTCOME,    /* CommandOutcome.avsc */
    PN_SCHEMA_INVENTORY_SNAPSHOT, /* InventorySnapshot.avsc */
    PN_SCHEMA__COUNT
} pn_schema_id_t;

/** The schema JSON as embedded from schemas/ at build time. */
const char *pn_schema_json(pn_schema_id_t which);

typedef enum {
    PN_FRAMING_PLAIN,         /* bare Avro binary */
    PN_FRAMING_CONFLUENT,     /* 0x00 + schema id + body */
    PN_FRAMING_SINGLE_OBJECT, /* 0xC3 0x01 + fingerprint + body */
} pn_framing_t;

/**
 * Finds the writer schema of a Confluent-framed record. On success sets
 * *schema_json to a malloc'd NUL-terminated JSON string that the codec
 * frees. Called at most once per schema id (results are cached).
 * PN_ERR_NOT_FOUND (or UNKNOWN_SCHEMA) means the registry has no such id:
 * cached too (up to 1024 unknown ids), decode gives UNKNOWN_SCHEMA. Any
 * other error is returned by decode as is and not cached, so a registry
 * outage can be retried.
 */
typedef pn_err_t (*pn_schema_lookup_fn)(void *opaque, int32_t schema_id,
                                        char **schema_json, char *errstr,
                                        size_t errstr_size);

typedef struct pn_codec_config {
    size_t max_record_bytes;     /* 0 = default, 1 MiB; decode and encode;
                                    at most PN_CODEC_LIMIT_MAX_RECORD_BYTES */
    pn_schema_lookup_fn lookup;  /* may be NULL: Confluent ids unknown */
    void *lookup_opaque;
} pn_codec_config_t;

#define PN_CODEC_DEFAULT_MAX_RECORD_BYTES (1024u * 1024u)
#define PN_CODEC_LIMIT_MAX_RECORD_BYTES ((size_t)1 << 30)

/** Parses the embedded schemas. *codecp is owned by the caller. */
PN_MUST_CHECK pn_err_t pn_codec_new(const pn_codec_config_t *conf,
                                    pn_codec_t **codecp, char *errstr,
                                    size_t errstr_size);

/** NULL-safe. */
void pn_codec_free(pn_codec_t *codec);

/**
 * Registers a writer schema (JSON of a Command union or of a single command
 * record) for single-object decoding by its fingerprint.
 */
PN_MUST_CHECK pn_err_t pn_codec_register_writer_schema(pn_codec_t *codec,
                                                       const char *json,
                                                       char *errstr,
                                                       size_t errstr_size);

/**
 * CRC-64-AVRO fingerprint of the Parsing Canonical Form of a schema JSON
 * (the Avro specification's "Schema Fingerprints"). Writes the canonical
 * form into pcf if not NULL.
 */
PN_MUST_CHECK pn_err_t pn_schema_fingerprint(const char *json, uint64_t *fp,
                                             pn_buf_t *pcf, char *errstr,
                                             size_t errstr_size);

/** CRC-64-AVRO of bytes. */
uint64_t pn_crc64_avro(const void *data, size_t len);

/**
 * Decodes a commands-topic record value. On success cmd owns a block of
 * memory behind its strings: release it with pn_command_release().
 * On failure cmd is zeroed.
 */
PN_MUST_CHECK pn_err_t pn_codec_decode_command(pn_codec_t *codec,
                                               const void *data, size_t len,
                                               pn_command_t *cmd,
                                               char *errstr,
                                               size_t errstr_size);

/**
 * Encodes a command in the given framing, appending to out. schema_id is
 * written for PN_FRAMING_CONFLUENT and ignored otherwise.
 */
PN_MUST_CHECK pn_err_t pn_codec_encode_command(pn_codec_t *codec,
                                               const pn_command_t *cmd,
                                               pn_framing_t framing,
                                               int32_t schema_id,
                                               pn_buf_t *out);

/** InventoryEvent, plain Avro binary, appended to out. */
PN_MUST_CHECK pn_err_t pn_codec_encode_event(pn_codec_t *codec,
                                             const pn_event_t *ev,
                                             pn_buf_t *out);

/** Decodes an InventoryEvent; release ev with pn_event_release(). */
PN_MUST_CHECK pn_err_t pn_codec_decode_event(pn_codec_t *codec,
                                             const void *data, size_t len,
                                             pn_event_t *ev, char *errstr,
                                             size_t errstr_size);

/** A CommandOutcome record: the numbers plus the command's strings. */
typedef struct pn_outcome_record {
    pn_outcome_t outcome;
    pn_str_t command_id;
    pn_str_t order_id; /* PN_STR_NULL when the Avro value is null */
    pn_str_t sku_id;
    pn_str_t node_id;
    int64_t at_ms;
    void *storage; /* owned by a decoded record */
} pn_outcome_record_t;

/** Frees rec->storage and zeroes rec. NULL-safe. */
void pn_outcome_record_release(pn_outcome_record_t *rec);

/** CommandOutcome answering cmd, plain Avro binary, appended to out. */
PN_MUST_CHECK pn_err_t pn_codec_encode_outcome(pn_codec_t *codec,
                                               const pn_command_t *cmd,
                                               const pn_outcome_t *outcome,
                                               pn_buf_t *out);

/** Encodes a record given field by field (as the audit and tests do). */
PN_MUST_CHECK pn_err_t pn_codec_encode_outcome_record(
    pn_codec_t *codec, const pn_outcome_record_t *rec, pn_buf_t *out);

/** Decodes a CommandOutcome; release with pn_outcome_record_release(). */
PN_MUST_CHECK pn_err_t pn_codec_decode_outcome(pn_codec_t *codec,
                                               const void *data, size_t len,
                                               pn_outcome_record_t *rec,
                                               char *errstr,
                                               size_t errstr_size);

/** InventorySnapshot of a stream's state, plain Avro binary. */
PN_MUST_CHECK pn_err_t pn_codec_encode_snapshot(pn_codec_t *codec,
                                                pn_str_t sku_id,
                                                pn_str_t node_id,
                                                const pn_state_t *state,
                                                int64_t updated_at_ms,
                                                pn_buf_t *out);

/**
 * Decodes an InventorySnapshot into state (initialised by the caller; old
 * content freed). sku_id/node_id may be NULL; when given they receive
 * malloc'd NUL-terminated copies that the caller frees.
 */
PN_MUST_CHECK pn_err_t pn_codec_decode_snapshot(
    pn_codec_t *codec, const void *data, size_t len, pn_state_t *state,
    char **sku_id, char **node_id, int64_t *updated_at_ms, char *errstr,
    size_t errstr_size);

#endif
