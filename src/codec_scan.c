/*
 * A bounded validator of Avro binary against a schema. Avro C's reader
 * trusts the input in places (a string length becomes an allocation, a
 * varint may run on), so every input is walked here first: nothing is
 * allocated, every read is checked against the end, every length against
 * what is left, and the walk must end exactly at the last byte.
 */
#include <stdarg.h>
#include <stdio.h>

#include "codec_internal.h"

/* Room for collections of zero-byte elements (e.g. arrays of null) beyond
 * one element per input byte; keeps the work proportional to the input. */
#define SCAN_EXTRA_ELEMENTS 1024

typedef struct scan {
    const uint8_t *base;
    const uint8_t *p;
    const uint8_t *end;
    size_t budget;     /* collection elements still allowed */
    avro_schema_t record; /* innermost record, for messages */
    int field;            /* its field being read, -1 for none */
    int64_t top_branch;
    char *errstr;
    size_t errstr_size;
} scan_t;

static pn_err_t scan_value(scan_t *s, avro_schema_t schema, int depth);

__attribute__((format(printf, 4, 5))) static pn_err_t
scan_fail(scan_t *s, const uint8_t *at, pn_err_t err, const char *fmt, ...) {
    char what[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *field = s->field >= 0 ? avro_schema_record_field_name(
                                            s->record, s->field)
                                      : NULL;
    return pn_err_set(s->errstr, s->errstr_size, err, "byte %zu%s%s%s: %s",
                      (size_t)(at - s->base), field ? " (field " : "",
                      field ? field : "", field ? ")" : "", what);
}

static size_t scan_left(const scan_t *s) { return (size_t)(s->end - s->p); }

static pn_err_t scan_truncated(scan_t *s, const uint8_t *at) {
    return scan_fail(s, at, PN_ERR_TRUNCATED,
                     "input ends before the record does");
}

/* A varint of at most max_bytes (5 for int, 10 for long) whose last byte
 * carries no bits beyond the type's width. */
static pn_err_t scan_varint(scan_t *s, int max_bytes, uint64_t *raw) {
    const uint8_t *start = s->p;
    unsigned last_bits = max_bytes == 5 ? 4 : 1; /* 32-28, 64-63 */
    uint64_t v = 0;
    for (int i = 0;; i++) {
        if (s->p == s->end)
            return scan_truncated(s, start);
        uint8_t b = *s->p++;
        if (i == max_bytes - 1 && ((b & 0x80) || (b >> last_bits)))
            return scan_fail(s, start, PN_ERR_MALFORMED,
                             "varint longer than %d bytes or out of range",
                             max_bytes);
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    *raw = v;
    return PN_ERR_OK;
}

static int64_t zigzag(uint64_t raw) {
    return (int64_t)((raw >> 1) ^ (0 - (raw & 1)));
}

static pn_err_t scan_long(scan_t *s, int64_t *v) {
    uint64_t raw = 0;
    pn_err_t err = scan_varint(s, 10, &raw);
    *v = err ? 0 : zigzag(raw);
    return err;
}

static pn_err_t scan_int(scan_t *s, int64_t *v) {
    uint64_t raw = 0;
    pn_err_t err = scan_varint(s, 5, &raw);
    *v = err ? 0 : zigzag(raw);
    return err;
}

bool pn_codec__valid_utf8(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t extra;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        } else {
            return false;
        }
        if (n - i - 1 < extra || p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= extra; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
        i += extra + 1;
    }
    return true;
}

static pn_err_t scan_bytes(scan_t *s, bool utf8) {
    const uint8_t *start = s->p;
    int64_t len;
    pn_err_t err = scan_long(s, &len);
    if (err)
        return err;
    if (len < 0)
        return scan_fail(s, start, PN_ERR_MALFORMED, "negative length %lld",
                         (long long)len);
    if ((uint64_t)len > scan_left(s))
        return scan_fail(s, start, PN_ERR_MALFORMED,
                         "length %lld runs past the end of the input "
                         "(%zu bytes left)",
                         (long long)len, scan_left(s));
    if (utf8 && !pn_codec__valid_utf8(s->p, (size_t)len))
        return scan_fail(s, start, PN_ERR_MALFORMED,
                         "string is not valid UTF-8");
    s->p += len;
    return PN_ERR_OK;
}

static pn_err_t scan_fixed(scan_t *s, int64_t size) {
    if (size < 0 || (uint64_t)size > scan_left(s))
        return scan_truncated(s, s->p);
    s->p += size;
    return PN_ERR_OK;
}

static pn_err_t scan_boolean(scan_t *s) {
    if (s->p == s->end)
        return scan_truncated(s, s->p);
    if (*s->p > 1)
        return scan_fail(s, s->p, PN_ERR_MALFORMED, "boolean byte 0x%02x",
                         *s->p);
    s->p++;
    return PN_ERR_OK;
}

static pn_err_t scan_enum(scan_t *s, avro_schema_t schema) {
    const uint8_t *start = s->p;
    int64_t idx;
    pn_err_t err = scan_int(s, &idx);
    int n = avro_schema_enum_number_of_symbols(schema);
    if (!err && (idx < 0 || idx >= n))
        err = scan_fail(s, start, PN_ERR_MALFORMED,
                        "enum index %lld out of range (%d symbols)",
                        (long long)idx, n);
    return err;
}

static pn_err_t scan_union(scan_t *s, avro_schema_t schema, int depth) {
    const uint8_t *start = s->p;
    int64_t idx;
    pn_err_t err = scan_long(s, &idx);
    if (err)
        return err;
    size_t n = avro_schema_union_size(schema);
    if (idx < 0 || (uint64_t)idx >= n)
        return scan_fail(s, start, PN_ERR_UNKNOWN_BRANCH,
                         "union index %lld out of range (%zu branches)",
                         (long long)idx, n);
    if (depth == 0)
        s->top_branch = idx;
    return scan_value(s, avro_schema_union_branch(schema, (int)idx),
                      depth + 1);
}

/* One block header of an array or map: count, and a byte size when the
 * count is negative. */
static pn_err_t scan_block_header(scan_t *s, int64_t *count, int64_t *size) {
    const uint8_t *start = s->p;
    pn_err_t err = scan_long(s, count);
    *size = -1;
    if (err || *count >= 0)
        return err;
    if (*count == INT64_MIN)
        return scan_fail(s, start, PN_ERR_MALFORMED, "bad block count");
    *count = -*count;
    if ((err = scan_long(s, size)))
        return err;
    if (*size < 0 || (uint64_t)*size > scan_left(s))
        return scan_fail(s, start, PN_ERR_MALFORMED,
                         "block size %lld does not fit the input",
                         (long long)*size);
    return PN_ERR_OK;
}

static pn_err_t scan_blocks(scan_t *s, avro_schema_t inner, bool map,
                            int depth) {
    for (;;) {
        const uint8_t *start = s->p;
        int64_t count, size;
        pn_err_t err = scan_block_header(s, &count, &size);
        if (err || count == 0)
            return err;
        if ((uint64_t)count > s->budget)
            return scan_fail(s, start, PN_ERR_MALFORMED,
                             "block of %lld elements is more than the input "
                             "can hold",
                             (long long)count);
        s->budget -= (size_t)count;
        const uint8_t *items = s->p;
        for (int64_t i = 0; i < count; i++) {
            if ((map && (err = scan_bytes(s, true))) ||
                (err = scan_value(s, inner, depth + 1)))
                return err;
        }
        if (size >= 0 && s->p - items != size)
            return scan_fail(s, start, PN_ERR_MALFORMED,
                             "block size %lld does not match its elements",
                             (long long)size);
    }
}

static pn_err_t scan_record(scan_t *s, avro_schema_t schema, int depth) {
    size_t n = avro_schema_record_size(schema);
    for (size_t i = 0; i < n; i++) {
        s->record = schema;
        s->field = (int)i;
        pn_err_t err = scan_value(
            s, avro_schema_record_field_get_by_index(schema, (int)i),
            depth + 1);
        if (err)
            return err;
    }
    return PN_ERR_OK;
}

static pn_err_t scan_value(scan_t *s, avro_schema_t schema, int depth) {
    int64_t ignored;
    if (depth > PN_CODEC__MAX_DEPTH)
        return scan_fail(s, s->p, PN_ERR_MALFORMED,
                         "values nest deeper than %d levels",
                         PN_CODEC__MAX_DEPTH);
    switch (avro_typeof(schema)) {
    case AVRO_NULL:
        return PN_ERR_OK;
    case AVRO_BOOLEAN:
        return scan_boolean(s);
    case AVRO_INT32:
        return scan_int(s, &ignored);
    case AVRO_INT64:
        return scan_long(s, &ignored);
    case AVRO_FLOAT:
        return scan_fixed(s, 4);
    case AVRO_DOUBLE:
        return scan_fixed(s, 8);
    case AVRO_STRING:
        return scan_bytes(s, true);
    case AVRO_BYTES:
        return scan_bytes(s, false);
    case AVRO_FIXED:
        return scan_fixed(s, avro_schema_fixed_size(schema));
    case AVRO_ENUM:
        return scan_enum(s, schema);
    case AVRO_RECORD:
        return scan_record(s, schema, depth);
    case AVRO_UNION:
        return scan_union(s, schema, depth);
    case AVRO_ARRAY:
        return scan_blocks(s, avro_schema_array_items(schema), false, depth);
    case AVRO_MAP:
        return scan_blocks(s, avro_schema_map_values(schema), true, depth);
    case AVRO_LINK:
        return scan_value(s, avro_schema_link_target(schema), depth + 1);
    default:
        return scan_fail(s, s->p, PN_ERR_INTERNAL, "unsupported schema type");
    }
}

pn_err_t pn_codec__scan(avro_schema_t schema, const uint8_t *data, size_t len,
                        size_t start, int64_t *top_branch, char *errstr,
                        size_t errstr_size) {
    scan_t s = {.base = data,
                .p = data + start,
                .end = data + len,
                .budget = len - start + SCAN_EXTRA_ELEMENTS,
                .field = -1,
                .top_branch = -1,
                .errstr = errstr,
                .errstr_size = errstr_size};
    pn_err_t err = scan_value(&s, schema, 0);
    if (!err && s.p != s.end) {
        s.field = -1;
        err = scan_fail(&s, s.p, PN_ERR_MALFORMED,
                        "%zu trailing bytes after the record", scan_left(&s));
    }
    if (top_branch)
        *top_branch = err ? -1 : s.top_branch;
    return err;
}
