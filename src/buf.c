#include "panther/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pn_buf_init(pn_buf_t *buf, size_t max) {
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
    buf->max = max;
}

void pn_buf_free(pn_buf_t *buf) {
    if (!buf)
        return;
    free(buf->data);
    pn_buf_init(buf, buf->max);
}

pn_err_t pn_buf_reserve(pn_buf_t *buf, size_t extra) {
    if (extra > buf->max - buf->len)
        return PN_ERR_TOO_LARGE;
    size_t need = buf->len + extra;
    if (need <= buf->cap)
        return PN_ERR_OK;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < need)
        cap = cap > buf->max / 2 ? buf->max : cap * 2;
    uint8_t *data = realloc(buf->data, cap);
    if (!data)
        return PN_ERR_NOMEM;
    buf->data = data;
    buf->cap = cap;
    return PN_ERR_OK;
}

pn_err_t pn_buf_append(pn_buf_t *buf, const void *ptr, size_t n) {
    if (n == 0)
        return PN_ERR_OK;
    pn_err_t err = pn_buf_reserve(buf, n);
    if (err)
        return err;
    memcpy(buf->data + buf->len, ptr, n);
    buf->len += n;
    return PN_ERR_OK;
}

pn_err_t pn_buf_append_byte(pn_buf_t *buf, uint8_t byte) {
    return pn_buf_append(buf, &byte, 1);
}

pn_err_t pn_buf_appendf(pn_buf_t *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return PN_ERR_INVALID_ARG;
    /* +1 for the NUL vsnprintf writes; it is not counted in len. */
    pn_err_t err = pn_buf_reserve(buf, (size_t)n + 1);
    if (err)
        return err;
    va_start(ap, fmt);
    vsnprintf((char *)buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return PN_ERR_OK;
}

pn_err_t pn_buf_append_be32(pn_buf_t *buf, uint32_t v) {
    uint8_t b[4];
    pn_be32_write(b, v);
    return pn_buf_append(buf, b, sizeof b);
}

pn_err_t pn_buf_append_be64(pn_buf_t *buf, uint64_t v) {
    uint8_t b[8];
    pn_be64_write(b, v);
    return pn_buf_append(buf, b, sizeof b);
}
