/*
 * Structured logging (DESIGN.md section 8): one JSON object per line,
 *
 *   {"ts":"2026-11-26T03:47:39.123Z","level":"info","msg":"...",<fields>}
 *
 * written to stderr unless pn_log_set_fd says otherwise. Every string is
 * escaped so each line is valid JSON whatever the input: quotes,
 * backslashes, control characters (as \n, \t or \u00XX) and bytes that are
 * not valid UTF-8 (each replaced by \ufffd). A line longer than
 * PN_LOG_LINE_MAX is cut at a field or character boundary, closed properly
 * and marked "truncated":true.
 *
 * @locality any thread. Each line is formatted on the caller's stack and
 * written with one write(2); librdkafka's threads may log concurrently with
 * the application's. The level and fd are process-wide settings: set them
 * at startup. Logging never changes errno. Not async-signal-safe: do not
 * log from a signal handler.
 *
 * Usage:
 *   pn_log(PN_LOG_INFO, "worker started with %d threads", n);
 *   pn_log_kv(PN_LOG_INFO, "restored partition",
 *             PN_LOG_STR("topic", topic), PN_LOG_INT("partition", p),
 *             PN_LOG_INT("offset", off), PN_LOG_UINT("events", count));
 * Fields are typed by their macro, so a mismatch is a compile error rather
 * than a varargs surprise.
 */
#ifndef PANTHER_LOG_H
#define PANTHER_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "panther/err.h"

/** Longest line written, newline included; longer lines are truncated. */
#define PN_LOG_LINE_MAX 16384

/* Values are in the order of the config key log.level's names. */
typedef enum {
    PN_LOG_DEBUG,
    PN_LOG_INFO,
    PN_LOG_WARN,
    PN_LOG_ERROR
} pn_log_level_t;

typedef enum {
    PN_LOG_T_STR,    /* NUL-terminated; NULL logs as null */
    PN_LOG_T_STRN,   /* ptr + len, need not be NUL-terminated */
    PN_LOG_T_INT,
    PN_LOG_T_UINT,
    PN_LOG_T_DOUBLE, /* NaN and infinities log as null */
    PN_LOG_T_BOOL
} pn_log_type_t;

/** One key/value of a log line. Build it with the PN_LOG_* macros. */
typedef struct pn_log_field {
    const char *key;
    pn_log_type_t type;
    union {
        const char *s;
        int64_t i;
        uint64_t u;
        double d;
        bool b;
    } v;
    size_t len; /* PN_LOG_T_STRN */
} pn_log_field_t;

/* (Macro parameters end in '_' so they can never capture a member name.) */
#define PN_LOG_STR(key_, str_)                                               \
    ((pn_log_field_t){.key = (key_), .type = PN_LOG_T_STR, .v.s = (str_)})
#define PN_LOG_STRN(key_, ptr_, len_)                                        \
    ((pn_log_field_t){.key = (key_),                                         \
                      .type = PN_LOG_T_STRN,                                 \
                      .v.s = (ptr_),                                         \
                      .len = (len_)})
#define PN_LOG_INT(key_, x_)                                                 \
    ((pn_log_field_t){                                                       \
        .key = (key_), .type = PN_LOG_T_INT, .v.i = (int64_t)(x_)})
#define PN_LOG_UINT(key_, x_)                                                \
    ((pn_log_field_t){                                                       \
        .key = (key_), .type = PN_LOG_T_UINT, .v.u = (uint64_t)(x_)})
#define PN_LOG_DOUBLE(key_, x_)                                              \
    ((pn_log_field_t){                                                       \
        .key = (key_), .type = PN_LOG_T_DOUBLE, .v.d = (double)(x_)})
#define PN_LOG_BOOL(key_, x_)                                                \
    ((pn_log_field_t){.key = (key_), .type = PN_LOG_T_BOOL, .v.b = (x_)})
/** "error":"<pn_err_name>" for a pn_err_t. */
#define PN_LOG_ERR(err_) PN_LOG_STR("error", pn_err_name(err_))
/** The Kafka coordinates of a record: topic, partition, offset. */
#define PN_LOG_TPO(topic_, partition_, offset_)                              \
    PN_LOG_STR("topic", (topic_)), PN_LOG_INT("partition", (partition_)),    \
        PN_LOG_INT("offset", (offset_))

/**
 * Logs msg (used as is, not a format) with one or more fields built by the
 * PN_LOG_* macros. For a line without fields use pn_log.
 */
#define pn_log_kv(level_, msg_, ...)                                         \
    pn_log_fields((level_), (msg_), (const pn_log_field_t[]){__VA_ARGS__},  \
                  sizeof((const pn_log_field_t[]){__VA_ARGS__}) /           \
                      sizeof(pn_log_field_t))

/** Logs a printf-formatted message with no extra fields. */
void pn_log(pn_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Logs msg with n fields (borrowed for the call). fields may be NULL if
 * n is 0. */
void pn_log_fields(pn_log_level_t level, const char *msg,
                   const pn_log_field_t *fields, size_t n);

/**
 * Routes one librdkafka log line: maps the syslog level (0-3 error,
 * 4 warn, 5-6 info, 7 debug) and adds "component":"librdkafka" and
 * "facility":fac. Matches the level/fac/buf of rd_kafka_conf_set_log_cb's
 * callback, so the worker's adapter is one line.
 */
void pn_log_rdkafka(int syslog_level, const char *fac, const char *buf);

/** True if a line at level would be written (to skip costly arguments). */
bool pn_log_enabled(pn_log_level_t level);

/** Sets the least severe level written (default PN_LOG_INFO). */
void pn_log_set_level(pn_log_level_t level);

/** The current level. */
pn_log_level_t pn_log_get_level(void);

/**
 * Sends lines to fd (default 2, stderr). The caller keeps ownership of fd
 * and must keep it open while logging may happen; for a FILE* pass
 * fileno(fp), and note lines bypass its buffer.
 */
void pn_log_set_fd(int fd);

/** "debug", "info", "warn" or "error" ("?" for an unknown value). */
const char *pn_log_level_name(pn_log_level_t level);

/** Parses a level name (case-insensitive; "warning" also works).
 * Returns PN_ERR_INVALID_ARG for anything else. */
PN_MUST_CHECK pn_err_t pn_log_level_parse(const char *name,
                                          pn_log_level_t *level);

#endif
