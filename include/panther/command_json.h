/*
 * JSON views of Panther's records, for the client tools (`panther produce`,
 * `panther consume`) and the tests.
 *
 * A command as one JSON object (the input line format of `panther produce`,
 * and what `panther consume commands` prints):
 *
 *   {"type": "ReserveInventory", "id": "9b1d…", "orderId": "o-1",
 *    "skuId": "sku-1", "fulfillmentNodeId": "dc-1", "quantity": 2,
 *    "by": "checkout", "at": 1767225600000}
 *
 *   type      UpdateInventory | ReserveInventory | CancelReservation |
 *             ShipOrder, or update | reserve | cancel | ship (any case)
 *   id        string; absent or null: a fresh UUID v4
 *   orderId   string; required except for UpdateInventory (absent or null)
 *   skuId, fulfillmentNodeId   strings, required
 *   quantity  integer (32-bit); required for UpdateInventory and
 *             ReserveInventory; for CancelReservation and ShipOrder absent
 *             or null means "all the order holds"
 *   by        string; absent or null: the caller's default
 *   at        integer, milliseconds since the epoch; absent or null: the
 *             caller's default (normally now)
 * Any other member, a duplicated member or a wrong type is an error naming
 * the field. Strings may hold any Unicode, "\u0000" included; values that
 * the domain rejects (empty ids, negative quantities) are accepted here on
 * purpose, so the tools can publish them.
 *
 * Record bytes need not be valid UTF-8, which JSON strings must be. The
 * builders write such a field as a string with each invalid byte replaced
 * by U+FFFD and add "<field>Hex" with the exact bytes in lowercase hex, so
 * nothing is lost and the output is always valid JSON.
 *
 * The json_t results are new references owned by the caller (json_decref);
 * NULL means out of memory. @locality any thread; no shared state.
 */
#ifndef PANTHER_COMMAND_JSON_H
#define PANTHER_COMMAND_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "panther/buf.h"
#include "panther/codec.h"
#include "panther/domain.h"
#include "panther/err.h"

/** Text size of a UUID ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") plus NUL. */
#define PN_UUID_STR_SIZE 37

/** The "by" of a command whose JSON has none, unless the caller says. */
#define PN_COMMAND_JSON_DEFAULT_BY "panther-produce"

/** Values for the optional members of a command object. */
typedef struct pn_command_json_defaults {
    const char *by; /* NULL: PN_COMMAND_JSON_DEFAULT_BY */
    int64_t at_ms;  /* "at" when absent or null */
} pn_command_json_defaults_t;

/**
 * A random (version 4) UUID in lowercase text, from /dev/urandom.
 * PN_ERR_IO when the random source cannot be read.
 */
PN_MUST_CHECK pn_err_t pn_command_json_uuid_v4(char out[PN_UUID_STR_SIZE],
                                               char *errstr,
                                               size_t errstr_size);

/**
 * Parses one JSON object (len bytes of text, no NUL needed) into cmd, per
 * the format above. On success cmd owns one block behind its strings:
 * release it with pn_command_release(). On failure cmd is zeroed and
 * errstr says what is wrong, naming the field ("field 'quantity': expected
 * an integer or null, got a string"). Returns PN_ERR_MALFORMED for bad
 * input, PN_ERR_IO when no id can be generated, PN_ERR_NOMEM.
 */
PN_MUST_CHECK pn_err_t pn_command_json_parse(
    const char *text, size_t len, const pn_command_json_defaults_t *defaults,
    pn_command_t *cmd, char *errstr, size_t errstr_size);

/** Same as pn_command_json_parse for an already parsed JSON value. */
PN_MUST_CHECK pn_err_t pn_command_json_parse_value(
    const json_t *obj, const pn_command_json_defaults_t *defaults,
    pn_command_t *cmd, char *errstr, size_t errstr_size);

/**
 * The Kafka key of a command: the canonical stream key `sku|node` when the
 * ids are valid (pn_stream_key), else the raw `sku|node` bytes, so even an
 * invalid command has a deterministic key. Replaces out's contents.
 */
PN_MUST_CHECK pn_err_t pn_command_json_record_key(const pn_command_t *cmd,
                                                  pn_buf_t *out);

/** The command as a JSON object in the format above, full type name,
 *  "quantity": null when it has none, no "orderId" for UpdateInventory. */
json_t *pn_command_json_command(const pn_command_t *cmd);

/**
 * An InventoryEvent: skuId, fulfillmentNodeId, version, commandId, by, at,
 * "type" (the DomainEvent record name, e.g. "InventoryReserved"), then the
 * payload: orderId (all but InventoryUpdated), quantity, and
 * previousQuantity (InventoryUpdated only).
 */
json_t *pn_command_json_event(const pn_event_t *ev);

/**
 * A CommandOutcome with every field of the schema, enums as their symbol
 * names, "orderId" and "reason" null when absent.
 */
json_t *pn_command_json_outcome(const pn_outcome_record_t *rec);

/**
 * Sets obj[key] to the bytes as a JSON string: verbatim when they are
 * valid UTF-8, else with each invalid byte replaced by U+FFFD plus
 * obj[key + "Hex"] holding the bytes in hex. ptr NULL sets obj[key] to
 * null. PN_ERR_NOMEM on allocation failure.
 */
PN_MUST_CHECK pn_err_t pn_command_json_set_bytes(json_t *obj, const char *key,
                                                 const void *ptr, size_t len);

/** A JSON string of the bytes in lowercase hex; NULL ptr gives JSON null. */
json_t *pn_command_json_hex(const void *ptr, size_t len);

/** True if the bytes are well-formed UTF-8 (RFC 3629: no overlong forms,
 *  no surrogates, nothing above U+10FFFF). */
bool pn_command_json_utf8_valid(const void *ptr, size_t len);

#endif
