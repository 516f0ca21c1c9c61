/* The local store, opened by the operator tools (state, rebuild) with the
 * same settings a worker uses (store.*, codec.*, idempotency.*). */
#ifndef PANTHER_CLI_STORE_H
#define PANTHER_CLI_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "panther/config.h"
#include "panther/engine.h"

typedef struct pn_cli_store {
    pn_store_t *store;
    pn_codec_t *codec;
    pn_engine_t *engine;
} pn_cli_store_t;

/** What is at a store path. */
typedef enum {
    PN_CLI_STORE_ABSENT,    /* nothing, or an empty directory */
    PN_CLI_STORE_PRESENT,   /* a RocksDB directory (it has CURRENT) */
    PN_CLI_STORE_OTHER,     /* something else: a file, other data */
} pn_cli_store_kind_t;

/** Looks at path without changing anything. *entries gets the number of
 *  directory entries (0 when absent). */
pn_cli_store_kind_t pn_cli_store_probe(const char *path, size_t *entries);

/**
 * Opens the store at `path` (NULL: store.path) and an engine over it. A
 * store in use by a running worker cannot be opened (RocksDB's lock): the
 * message says so. Free with pn_cli_store_close, also after a failure.
 */
pn_err_t pn_cli_store_open(const pn_config_t *cfg, const char *path,
                           pn_cli_store_t *ls, char *err, size_t err_size);

void pn_cli_store_close(pn_cli_store_t *ls);

#endif
