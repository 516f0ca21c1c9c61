/*
 * A client of a Confluent Schema Registry (REST, over libcurl) that finds
 * the writer schema of a Confluent-framed record by its id:
 * GET <url>/schemas/ids/<id>, answer {"schema": "...", "schemaType": ...}.
 * pn_schema_registry_lookup() has the shape of pn_schema_lookup_fn, so a
 * registry plugs into the codec (codec.h) as lookup / lookup_opaque; the
 * codec caches what an id resolves to, so the client keeps only a short
 * negative cache.
 *
 * What an answer means (the error classes are the contract the worker
 * relies on, see src/worker_records.c):
 *   200 with an Avro schema            PN_ERR_OK, the schema JSON
 *   404 with error_code 40403          PN_ERR_UNKNOWN_SCHEMA: the registry
 *                                      says the id does not exist
 *   200 with schemaType other than     PN_ERR_INCOMPATIBLE_SCHEMA
 *     AVRO, or with schema references
 *   200 larger than max_response_bytes PN_ERR_TOO_LARGE
 *   anything else: connection failure, PN_ERR_IO: the registry could not
 *     timeout, 5xx, 401/403, a 404      answer now; nothing is known about
 *     that is not the registry's, a     the id, so the record must not be
 *     redirect, a body that is not      judged on it (the worker retries
 *     the registry's JSON               the batch instead of dead-lettering)
 * The definite failures (the first three) are remembered for
 * negative_ttl_ms, so a burst of records with such an id costs one request.
 *
 * url may list several registries separated by commas (as Confluent's
 * clients accept); PN_ERR_IO from one makes the client try the next, and
 * the one that answered is asked first from then on.
 *
 * Credentials (basic_auth, or user:password inside a URL) are sent to the
 * registry and never appear in messages or logs.
 *
 * A registry is not thread-safe (it holds one libcurl handle, which keeps
 * the connection alive between lookups): use one per thread, like the
 * codec it serves.
 */
#ifndef PANTHER_SCHEMA_REGISTRY_H
#define PANTHER_SCHEMA_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "panther/err.h"

typedef struct pn_schema_registry_s pn_schema_registry_t;

#define PN_SCHEMA_REGISTRY_DEFAULT_TIMEOUT_MS 5000
#define PN_SCHEMA_REGISTRY_DEFAULT_NEGATIVE_TTL_MS 5000
#define PN_SCHEMA_REGISTRY_DEFAULT_MAX_RESPONSE_BYTES (1024u * 1024u)

typedef struct pn_schema_registry_options {
    /* http:// or https:// base URL, or a comma-separated list of them.
     * Required. Copied. */
    const char *url;
    /* "user:password" for HTTP basic authentication; NULL or "" sends no
     * credentials. Copied; never logged. */
    const char *basic_auth;
    int timeout_ms;            /* per request, connecting included; 0 = default */
    int negative_ttl_ms;       /* 0 = default; < 0 = no negative cache */
    size_t max_response_bytes; /* 0 = default (1 MiB) */
} pn_schema_registry_options_t;

/**
 * Creates a client; no request is made until the first lookup.
 * PN_ERR_CONFIG for a URL that is not http(s) or credentials that are not
 * "user:password" (message in errstr, without the credentials).
 * *regp is owned by the caller: free it with pn_schema_registry_free().
 */
PN_MUST_CHECK pn_err_t pn_schema_registry_new(
    const pn_schema_registry_options_t *opts, pn_schema_registry_t **regp,
    char *errstr, size_t errstr_size);

/** NULL-safe. */
void pn_schema_registry_free(pn_schema_registry_t *reg);

/**
 * A pn_schema_lookup_fn: opaque is a pn_schema_registry_t. On success
 * *schema_json is the writer schema, malloc'd and NUL-terminated, owned by
 * the caller. Errors as in the table above, with a message in errstr that
 * names the registry (without credentials) and the id. Blocks for up to
 * timeout_ms per listed registry.
 */
PN_MUST_CHECK pn_err_t pn_schema_registry_lookup(void *opaque,
                                                 int32_t schema_id,
                                                 char **schema_json,
                                                 char *errstr,
                                                 size_t errstr_size);

/** Requests sent so far (for tests and metrics). */
uint64_t pn_schema_registry_requests(const pn_schema_registry_t *reg);

#endif
