/*
 * Panther's one error type.
 *
 * Every fallible call returns a pn_err_t (0 = ok). Errors from dependencies
 * (RocksDB's errptr, avro_strerror(), librdkafka's rd_kafka_resp_err_t) are
 * translated at the adapter module and never travel further up; a call that
 * can fail for a reason a user must read also fills an errstr buffer.
 */
#ifndef PANTHER_ERR_H
#define PANTHER_ERR_H

#include <stddef.h>

#if defined(__GNUC__)
#define PN_MUST_CHECK __attribute__((warn_unused_result))
#else
#define PN_MUST_CHECK
#endif

/* X(name, message) */
#define PN_ERR_MAP(X)                                                        \
    X(OK, "success")                                                         \
    X(NOMEM, "out of memory")                                                \
    X(INVALID_ARG, "invalid argument")                                       \
    X(TOO_LARGE, "input exceeds the configured size limit")                  \
    X(TRUNCATED, "input ends before the record does")                        \
    X(MALFORMED, "malformed input")                                          \
    X(UNKNOWN_BRANCH, "unknown union branch")                                \
    X(UNKNOWN_SCHEMA, "writer schema is unknown")                            \
    X(INCOMPATIBLE_SCHEMA, "writer schema cannot be resolved to ours")       \
    X(STORE_IO, "local store I/O error")                                     \
    X(STORE_CORRUPT, "local store is corrupt")                               \
    X(STORE_VERSION, "local store was written by an incompatible version")   \
    X(NOT_FOUND, "not found")                                                \
    X(STATE, "call not valid in the current state")                          \
    X(CONFIG, "invalid configuration")                                       \
    X(KAFKA, "Kafka error")                                                  \
    X(KAFKA_FENCED, "producer fenced by a newer instance")                   \
    X(KAFKA_ABORTABLE, "transaction must be aborted")                        \
    X(IO, "I/O error")                                                       \
    X(INTERNAL, "internal error")

typedef enum {
#define PN_ERR_ENUM_(name, msg) PN_ERR_##name,
    PN_ERR_MAP(PN_ERR_ENUM_)
#undef PN_ERR_ENUM_
    PN_ERR__COUNT
} pn_err_t;

/** The symbolic name, e.g. "TRUNCATED". Never NULL. */
const char *pn_err_name(pn_err_t err);

/** A human-readable message. Never NULL. */
const char *pn_err_str(pn_err_t err);

/**
 * Formats into errstr (if not NULL) and returns err, so adapters can write
 * `return pn_err_set(errstr, errstr_size, PN_ERR_X, "...", ...);`.
 */
pn_err_t pn_err_set(char *errstr, size_t errstr_size, pn_err_t err,
                    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
