/*
 * Parsing Canonical Form (PCF) of Avro schemas and their CRC-64-AVRO
 * fingerprints, per the Avro specification's "Parsing Canonical Form for
 * Schemas" and "Schema Fingerprints". Avro C has neither, so the schema JSON
 * is walked here with jansson (Avro C's own JSON dependency).
 *
 * The transformation follows the spec's rules: primitives in simple form
 * [PRIMITIVES], names made full and namespaces dropped [FULLNAMES], only
 * name/type/fields/symbols/items/values/size kept [STRIP] and written in that
 * order [ORDER], escapes decoded by the JSON parser [STRINGS], sizes as plain
 * integers [INTEGERS], no whitespace [WHITESPACE]. A named type that is
 * referenced again is written as its full name, as Java's
 * SchemaNormalization does.
 */
#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "panther/codec.h"

#define PCF_MAX_DEPTH 256
#define PCF_MAX_OUTPUT (16u * 1024u * 1024u)
#define PCF_MAX_NAME 1024

#define CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ull

static uint64_t crc64_table[256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_init_table(void) {
    for (unsigned i = 0; i < 256; i++) {
        uint64_t fp = i;
        for (int j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & (0 - (fp & 1)));
        crc64_table[i] = fp;
    }
}

uint64_t pn_crc64_avro(const void *data, size_t len) {
    pthread_once(&crc64_once, crc64_init_table);
    const uint8_t *p = data;
    uint64_t fp = CRC64_AVRO_EMPTY;
    for (size_t i = 0; i < len; i++)
        fp = (fp >> 8) ^ crc64_table[(fp ^ p[i]) & 0xff];
    return fp;
}

/* --- canonical form --------------------------------------------------- */

typedef struct pcf_ctx {
    pn_buf_t *out;
    char **names; /* full names defined so far, for references */
    size_t n_names;
    size_t cap_names;
    char *errstr;
    size_t errstr_size;
} pcf_ctx_t;

static pn_err_t pcf_schema(pcf_ctx_t *ctx, json_t *node, const char *ns,
                           int depth);

static const char *const primitive_names[] = {
    "null", "boolean", "int", "long", "float", "double", "bytes", "string"};

static bool is_primitive(const char *name) {
    for (size_t i = 0; i < sizeof primitive_names / sizeof *primitive_names;
         i++)
        if (strcmp(name, primitive_names[i]) == 0)
            return true;
    return false;
}

/* [A-Za-z_][A-Za-z0-9_]* for each dot-separated part (dotted if allowed). */
static bool valid_name(const char *s, bool dotted) {
    bool start = true;
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '.' && dotted && !start) {
            start = true;
            continue;
        }
        if (c > 127 || !(isalpha(c) || c == '_' || (!start && isdigit(c))))
            return false;
        start = false;
    }
    return !start;
}

static pn_err_t pcf_fail(pcf_ctx_t *ctx, const char *what, const char *name) {
    return pn_err_set(ctx->errstr, ctx->errstr_size, PN_ERR_INVALID_ARG,
                      "schema: %s%s%s%s", what, name ? " \"" : "",
                      name ? name : "", name ? "\"" : "");
}

static pn_err_t pcf_put(pcf_ctx_t *ctx, const char *s) {
    pn_err_t err = pn_buf_append(ctx->out, s, strlen(s));
    if (err == PN_ERR_TOO_LARGE)
        return pn_err_set(ctx->errstr, ctx->errstr_size, err,
                          "schema: canonical form exceeds %zu bytes",
                          ctx->out->max);
    return err;
}

static pn_err_t pcf_put_quoted(pcf_ctx_t *ctx, const char *s) {
    pn_err_t err;
    if ((err = pcf_put(ctx, "\"")) || (err = pcf_put(ctx, s)))
        return err;
    return pcf_put(ctx, "\"");
}

static bool name_defined(const pcf_ctx_t *ctx, const char *full) {
    for (size_t i = 0; i < ctx->n_names; i++)
        if (strcmp(ctx->names[i], full) == 0)
            return true;
    return false;
}

static pn_err_t define_name(pcf_ctx_t *ctx, const char *full) {
    if (name_defined(ctx, full))
        return pcf_fail(ctx, "redefinition of", full);
    if (ctx->n_names == ctx->cap_names) {
        size_t cap = ctx->cap_names ? ctx->cap_names * 2 : 8;
        char **names = realloc(ctx->names, cap * sizeof *names);
        if (!names)
            return PN_ERR_NOMEM;
        ctx->names = names;
        ctx->cap_names = cap;
    }
    char *copy = strdup(full);
    if (!copy)
        return PN_ERR_NOMEM;
    ctx->names[ctx->n_names++] = copy;
    return PN_ERR_OK;
}

/* Joins namespace and name into full (PCF_MAX_NAME bytes). */
static pn_err_t make_full_name(pcf_ctx_t *ctx, const char *ns,
                               const char *name, char *full) {
    int n = (ns && *ns && !strchr(name, '.'))
                ? snprintf(full, PCF_MAX_NAME, "%s.%s", ns, name)
                : snprintf(full, PCF_MAX_NAME, "%s", name);
    if (n < 0 || n >= PCF_MAX_NAME)
        return pcf_fail(ctx, "name too long:", name);
    return PN_ERR_OK;
}

/* A type given by name: a primitive or a named type defined earlier. */
static pn_err_t pcf_reference(pcf_ctx_t *ctx, const char *name,
                              const char *ns) {
    if (is_primitive(name))
        return pcf_put_quoted(ctx, name);
    char full[PCF_MAX_NAME];
    pn_err_t err = make_full_name(ctx, ns, name, full);
    if (err)
        return err;
    if (name_defined(ctx, full))
        return pcf_put_quoted(ctx, full);
    if (name_defined(ctx, name)) /* a name of the null namespace */
        return pcf_put_quoted(ctx, name);
    return pcf_fail(ctx, "unknown type", name);
}

static pn_err_t pcf_union(pcf_ctx_t *ctx, json_t *node, const char *ns,
                          int depth) {
    pn_err_t err = pcf_put(ctx, "[");
    size_t i;
    json_t *branch;
    json_array_foreach(node, i, branch) {
        if (err || (i > 0 && (err = pcf_put(ctx, ","))))
            return err;
        err = pcf_schema(ctx, branch, ns, depth + 1);
    }
    return err ? err : pcf_put(ctx, "]");
}

static pn_err_t pcf_fields(pcf_ctx_t *ctx, json_t *fields, const char *ns,
                           int depth) {
    if (!json_is_array(fields))
        return pcf_fail(ctx, "record without a \"fields\" array", NULL);
    pn_err_t err = pcf_put(ctx, ",\"fields\":[");
    size_t i;
    json_t *field;
    json_array_foreach(fields, i, field) {
        if (err)
            return err;
        const char *fname = json_string_value(json_object_get(field, "name"));
        json_t *ftype = json_object_get(field, "type");
        if (!fname || !valid_name(fname, false) || !ftype)
            return pcf_fail(ctx, "record field needs a valid name and a type",
                            fname);
        if ((i > 0 && (err = pcf_put(ctx, ","))) ||
            (err = pcf_put(ctx, "{\"name\":")) ||
            (err = pcf_put_quoted(ctx, fname)) ||
            (err = pcf_put(ctx, ",\"type\":")) ||
            (err = pcf_schema(ctx, ftype, ns, depth + 1)))
            return err;
        err = pcf_put(ctx, "}");
    }
    return err ? err : pcf_put(ctx, "]");
}

static pn_err_t pcf_symbols(pcf_ctx_t *ctx, json_t *symbols) {
    if (!json_is_array(symbols))
        return pcf_fail(ctx, "enum without a \"symbols\" array", NULL);
    pn_err_t err = pcf_put(ctx, ",\"symbols\":[");
    size_t i;
    json_t *sym;
    json_array_foreach(symbols, i, sym) {
        const char *s = json_string_value(sym);
        if (err)
            return err;
        if (!s || !valid_name(s, false))
            return pcf_fail(ctx, "invalid enum symbol", s);
        if (i > 0 && (err = pcf_put(ctx, ",")))
            return err;
        err = pcf_put_quoted(ctx, s);
    }
    return err ? err : pcf_put(ctx, "]");
}

/* [INTEGERS]: a size given as a number or as a quoted integer. */
static pn_err_t pcf_size(pcf_ctx_t *ctx, json_t *size) {
    long long n = -1;
    if (json_is_integer(size)) {
        n = json_integer_value(size);
    } else if (json_is_string(size)) {
        const char *s = json_string_value(size);
        char *end = NULL;
        if (*s && isdigit((unsigned char)*s))
            n = strtoll(s, &end, 10);
        if (!end || *end)
            n = -1;
    }
    if (n < 0 || n > INT32_MAX)
        return pcf_fail(ctx, "fixed needs a size between 0 and 2^31-1", NULL);
    char text[32];
    snprintf(text, sizeof text, ",\"size\":%lld", n);
    return pcf_put(ctx, text);
}

/* record, enum or fixed: {"name":full,"type":T,...} */
static pn_err_t pcf_named(pcf_ctx_t *ctx, json_t *node, const char *type,
                          const char *ns, int depth) {
    const char *name = json_string_value(json_object_get(node, "name"));
    if (!name || !valid_name(name, true))
        return pcf_fail(ctx, "named type needs a valid \"name\"", name);
    const char *own_ns = json_string_value(json_object_get(node, "namespace"));
    if (own_ns && *own_ns && !valid_name(own_ns, true))
        return pcf_fail(ctx, "invalid namespace", own_ns);
    char full[PCF_MAX_NAME];
    pn_err_t err = make_full_name(ctx, own_ns ? own_ns : ns, name, full);
    if (err || (err = define_name(ctx, full)))
        return err;
    /* Nested definitions take the namespace of this type's full name. */
    char inner_ns[PCF_MAX_NAME];
    const char *dot = strrchr(full, '.');
    snprintf(inner_ns, sizeof inner_ns, "%.*s", dot ? (int)(dot - full) : 0,
             full);
    if ((err = pcf_put(ctx, "{\"name\":")) || (err = pcf_put_quoted(ctx, full)) ||
        (err = pcf_put(ctx, ",\"type\":")) || (err = pcf_put_quoted(ctx, type)))
        return err;
    if (strcmp(type, "record") == 0)
        err = pcf_fields(ctx, json_object_get(node, "fields"), inner_ns, depth);
    else if (strcmp(type, "enum") == 0)
        err = pcf_symbols(ctx, json_object_get(node, "symbols"));
    else
        err = pcf_size(ctx, json_object_get(node, "size"));
    return err ? err : pcf_put(ctx, "}");
}

/* array or map: {"type":T,"items"|"values":S} */
static pn_err_t pcf_container(pcf_ctx_t *ctx, json_t *node, const char *type,
                              const char *ns, int depth) {
    bool array = strcmp(type, "array") == 0;
    json_t *inner = json_object_get(node, array ? "items" : "values");
    if (!inner)
        return pcf_fail(ctx, array ? "array without \"items\""
                                   : "map without \"values\"",
                        NULL);
    pn_err_t err;
    if ((err = pcf_put(ctx, "{\"type\":")) || (err = pcf_put_quoted(ctx, type)) ||
        (err = pcf_put(ctx, array ? ",\"items\":" : ",\"values\":")) ||
        (err = pcf_schema(ctx, inner, ns, depth + 1)))
        return err;
    return pcf_put(ctx, "}");
}

static pn_err_t pcf_object(pcf_ctx_t *ctx, json_t *node, const char *ns,
                           int depth) {
    json_t *type_node = json_object_get(node, "type");
    if (json_is_object(type_node) || json_is_array(type_node))
        return pcf_schema(ctx, type_node, ns, depth + 1);
    const char *type = json_string_value(type_node);
    if (!type)
        return pcf_fail(ctx, "object without a \"type\"", NULL);
    if (is_primitive(type))
        return pcf_put_quoted(ctx, type); /* [PRIMITIVES] */
    if (strcmp(type, "record") == 0 || strcmp(type, "enum") == 0 ||
        strcmp(type, "fixed") == 0)
        return pcf_named(ctx, node, type, ns, depth);
    if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0)
        return pcf_container(ctx, node, type, ns, depth);
    return pcf_reference(ctx, type, ns);
}

static pn_err_t pcf_schema(pcf_ctx_t *ctx, json_t *node, const char *ns,
                           int depth) {
    if (depth > PCF_MAX_DEPTH)
        return pcf_fail(ctx, "nesting too deep", NULL);
    if (json_is_string(node))
        return pcf_reference(ctx, json_string_value(node), ns);
    if (json_is_array(node))
        return pcf_union(ctx, node, ns, depth);
    if (json_is_object(node))
        return pcf_object(ctx, node, ns, depth);
    return pcf_fail(ctx, "a schema must be a string, array or object", NULL);
}

/** Writes the Parsing Canonical Form of the schema JSON into out. */
static pn_err_t pcf_of_json(const char *json, pn_buf_t *out, char *errstr,
                            size_t errstr_size) {
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                              &jerr);
    if (!root)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "schema is not valid JSON (line %d, column %d): %s",
                          jerr.line, jerr.column, jerr.text);
    pcf_ctx_t ctx = {.out = out, .errstr = errstr, .errstr_size = errstr_size};
    pn_err_t err = pcf_schema(&ctx, root, "", 0);
    for (size_t i = 0; i < ctx.n_names; i++)
        free(ctx.names[i]);
    free(ctx.names);
    json_decref(root);
    return err;
}

pn_err_t pn_schema_fingerprint(const char *json, uint64_t *fp, pn_buf_t *pcf,
                               char *errstr, size_t errstr_size) {
    if (!json || !fp)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "schema fingerprint: no schema given");
    pn_buf_t local;
    pn_buf_t *out = pcf ? pcf : &local;
    if (!pcf)
        pn_buf_init(&local, PCF_MAX_OUTPUT);
    size_t start = out->len;
    pn_err_t err = pcf_of_json(json, out, errstr, errstr_size);
    if (!err)
        *fp = pn_crc64_avro(out->data + start, out->len - start);
    if (err && pcf)
        pcf->len = start;
    if (!pcf)
        pn_buf_free(&local);
    return err;
}
