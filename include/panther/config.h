/*
 * Configuration (DESIGN.md section 8): one static table of settings in
 * src/config.c, four sources, a finalize step, typed getters.
 *
 * Sources, later overriding earlier:
 *   1. the defaults of the table,
 *   2. a properties file (pn_config_load_file),
 *   3. environment variables PANTHER_<KEY>, the key upper-cased with '.'
 *      turned into '_' (pn_config_load_env),
 *   4. command-line flags, fed one by one by the CLI (pn_config_set,
 *      pn_config_set_pair).
 * Keys that start with "kafka." are not interpreted: they are kept in the
 * order they were first set and handed to librdkafka with the prefix removed
 * (pn_config_kafka_foreach). Every other key must be in the table. Unknown
 * keys and bad values are errors whose message starts with the source:
 * "panther.properties:12: unknown key 'worker.batchsize'",
 * "environment PANTHER_X: unknown key 'x'".
 *
 * Value syntax by type: int is a decimal integer; bool is true/false (also
 * yes/no, on/off, 1/0); enum is one of the listed names; duration-ms is
 * milliseconds or a number with the unit ms, s, m, h or d ("24h");
 * size-bytes is bytes or a number with KiB, MiB or GiB ("32MiB").
 *
 * Lifecycle: pn_config_new, load/set from the sources in order,
 * pn_config_finalize (derived values and rules across keys), then read with
 * the getters. After finalize the handle is read-only and may be read from
 * any thread; before that it belongs to the thread that builds it.
 *
 * The getters take a key of the table; a key that is not in the table, or
 * a getter of the wrong type, is a programming error and aborts with a
 * message (the unit tests call every getter the code uses).
 *
 * This module depends on err only, so scripts/gen-config-docs can build
 * the documentation generator from src/config.c and src/err.c alone.
 */
#ifndef PANTHER_CONFIG_H
#define PANTHER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "panther/err.h"

typedef struct pn_config_s pn_config_t;

/** A comfortable errstr size for the config functions; longer messages
 * (very long paths) are cut, never overflowed. */
#define PN_CONFIG_ERRSTR_SIZE 512

/**
 * A configuration holding every default. The caller owns it and frees it
 * with pn_config_destroy. Returns NULL when out of memory.
 */
pn_config_t *pn_config_new(void);

/** Frees cfg and every string it handed out. NULL-safe. */
void pn_config_destroy(pn_config_t *cfg);

/**
 * Sets one key from text. `source` names where the value came from and
 * starts every error message ("--set", "panther.properties:12"); NULL means
 * "command line". Both strings are copied.
 * Returns PN_ERR_CONFIG for an unknown key or a bad value, PN_ERR_STATE
 * after pn_config_finalize, PN_ERR_NOMEM.
 */
PN_MUST_CHECK pn_err_t pn_config_set(pn_config_t *cfg, const char *key,
                                     const char *value, const char *source,
                                     char *errstr, size_t errstr_size);

/**
 * Sets "key=value" (split at the first '=', whitespace around key and value
 * trimmed), as given to `--set key=value`. Errors as pn_config_set, plus
 * PN_ERR_CONFIG when there is no '='.
 */
PN_MUST_CHECK pn_err_t pn_config_set_pair(pn_config_t *cfg, const char *pair,
                                          const char *source, char *errstr,
                                          size_t errstr_size);

/**
 * Reads a properties file: `key=value` lines, split at the first '=', with
 * whitespace trimmed around key and value; blank lines and lines whose first
 * non-blank character is '#' or '!' are ignored. Values are literal (no
 * escapes, no trailing comments). A later line for the same key wins.
 * Stops at the first error, which names path and line. Returns PN_ERR_IO
 * when the file cannot be read, else as pn_config_set.
 */
PN_MUST_CHECK pn_err_t pn_config_load_file(pn_config_t *cfg, const char *path,
                                           char *errstr, size_t errstr_size);

/**
 * Applies every PANTHER_* variable of envp (NULL-terminated "NAME=value"
 * strings; NULL means the process environment). The key is the rest of the
 * name lower-cased with '_' turned into '.': PANTHER_WORKER_BATCH_MAX_COMMANDS
 * sets worker.batch.max.commands, PANTHER_KAFKA_SASL_PASSWORD sets
 * kafka.sasl.password. A PANTHER_ variable that names no setting is an error
 * (so a typo cannot go unnoticed; note Kubernetes service links inject
 * <SERVICE>_PORT variables, so run pods with enableServiceLinks: false or
 * name no Service "panther"). Errors as pn_config_set.
 */
PN_MUST_CHECK pn_err_t pn_config_load_env(pn_config_t *cfg,
                                          char *const *envp, char *errstr,
                                          size_t errstr_size);

/**
 * Derives what was left empty (topics.dead.letters = topics.commands +
 * ".DLT", instance.id = the host name) and checks the rules across keys
 * (distinct topics, distinct group ids, an idempotency window). Afterwards
 * cfg is read-only: pn_config_set returns PN_ERR_STATE.
 * Returns PN_ERR_CONFIG with a message naming the keys and their sources.
 */
PN_MUST_CHECK pn_err_t pn_config_finalize(pn_config_t *cfg, char *errstr,
                                          size_t errstr_size);

/** True if key is a setting of the table or a kafka.* pass-through key. */
bool pn_config_is_key(const char *key);

/*
 * Typed getters. Strings point into cfg and stay valid until the key is set
 * again or cfg is destroyed. pn_config_get_str works for every type and
 * returns the canonical text (a duration in ms, a size in bytes).
 */
const char *pn_config_get_str(const pn_config_t *cfg, const char *key);
int64_t pn_config_get_int(const pn_config_t *cfg, const char *key);
bool pn_config_get_bool(const pn_config_t *cfg, const char *key);
/** A duration-ms setting, in milliseconds. */
int64_t pn_config_get_ms(const pn_config_t *cfg, const char *key);
/** A size-bytes setting, in bytes. */
int64_t pn_config_get_bytes(const pn_config_t *cfg, const char *key);
/** An enum setting as the index of its value in the table's list. */
int pn_config_get_enum(const pn_config_t *cfg, const char *key);

/** Where key's current value came from: "default", "x.properties:3", ... */
const char *pn_config_source(const pn_config_t *cfg, const char *key);

/**
 * Called once per kafka.* key in the order the keys were first set, with
 * the "kafka." prefix removed and the source of the current value (so the
 * caller can report a librdkafka rejection with its file and line).
 * Returning anything but PN_ERR_OK stops the iteration.
 */
typedef pn_err_t (*pn_config_kafka_fn)(const char *name, const char *value,
                                       const char *source, void *opaque);

/** Runs fn over the kafka.* keys; returns the first non-OK result of fn. */
PN_MUST_CHECK pn_err_t pn_config_kafka_foreach(const pn_config_t *cfg,
                                               pn_config_kafka_fn fn,
                                               void *opaque);

/**
 * Writes the effective configuration, one `key=value # source` line per
 * setting, table keys first, then the kafka.* keys. Secrets print as
 * ******** (table keys marked secret; kafka.* keys whose name contains
 * password, secret, key, token or credential; credentials inside URLs).
 * For people, not for reading back: a value may itself contain " #".
 * Returns PN_ERR_IO if fp reports a write error.
 */
PN_MUST_CHECK pn_err_t pn_config_print(const pn_config_t *cfg, FILE *fp);

/** Writes the Markdown reference table (name, type, default, range,
 * description) of every setting. Returns PN_ERR_IO on a write error. */
PN_MUST_CHECK pn_err_t pn_config_write_markdown(FILE *fp);

/** Writes the commented sample configuration (deploy/panther.properties):
 * every setting with its default, plus commented kafka.* examples. */
PN_MUST_CHECK pn_err_t pn_config_write_sample(FILE *fp);

#endif
