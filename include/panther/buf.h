/*
 * A growable byte buffer with a hard upper bound, for anything that holds
 * Kafka payloads or encoded records (after curl's dynbuf). Appends past the
 * bound fail with PN_ERR_TOO_LARGE and leave the contents untouched.
 */
#ifndef PANTHER_BUF_H
#define PANTHER_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "panther/err.h"

typedef struct pn_buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len */
} pn_buf_t;

/** Initialises an empty buffer that may grow to max bytes. No allocation. */
void pn_buf_init(pn_buf_t *buf, size_t max);

/** Frees the storage and returns to the empty state. NULL-safe. */
void pn_buf_free(pn_buf_t *buf);

/** Empties the buffer, keeping its storage for reuse. */
static inline void pn_buf_reset(pn_buf_t *buf) { buf->len = 0; }

/** Makes room for `extra` more bytes. */
PN_MUST_CHECK pn_err_t pn_buf_reserve(pn_buf_t *buf, size_t extra);

/** Appends n bytes. */
PN_MUST_CHECK pn_err_t pn_buf_append(pn_buf_t *buf, const void *ptr,
                                     size_t n);

/** Appends one byte. */
PN_MUST_CHECK pn_err_t pn_buf_append_byte(pn_buf_t *buf, uint8_t byte);

/** Appends printf-formatted text (no NUL counted in len). */
PN_MUST_CHECK pn_err_t pn_buf_appendf(pn_buf_t *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Big-endian fixed-width integers, as used in store keys. */
PN_MUST_CHECK pn_err_t pn_buf_append_be32(pn_buf_t *buf, uint32_t v);
PN_MUST_CHECK pn_err_t pn_buf_append_be64(pn_buf_t *buf, uint64_t v);

static inline uint32_t pn_be32_read(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint64_t pn_be64_read(const uint8_t *p) {
    return ((uint64_t)pn_be32_read(p) << 32) | pn_be32_read(p + 4);
}

static inline void pn_be32_write(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void pn_be64_write(uint8_t *p, uint64_t v) {
    pn_be32_write(p, (uint32_t)(v >> 32));
    pn_be32_write(p + 4, (uint32_t)v);
}

#endif
