/*
 * Writer schemas of commands: our own (writers[0]), the ones registered for
 * single-object decoding, and the ones a Confluent schema id resolves to.
 * Each distinct schema (by fingerprint) is parsed and resolved against our
 * Command once; Confluent ids map to a writer or to a cached failure, so the
 * lookup callback runs once per id (unknown ids are remembered up to
 * PN_CODEC__MAX_UNKNOWN_IDS, then forgotten together).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

static void writer_free(pn_codec_writer_t *w) {
    if (!w)
        return;
    for (size_t i = 0; i < w->n_branches; i++) {
        if (w->branches[i].resolved.self)
            avro_value_decref(&w->branches[i].resolved);
        if (w->branches[i].resolver)
            avro_value_iface_decref(w->branches[i].resolver);
    }
    free(w->branches);
    if (w->schema)
        avro_schema_decref(w->schema);
    free(w);
}

static pn_err_t writers_push(pn_codec_t *codec, pn_codec_writer_t *w) {
    if (codec->n_writers == codec->cap_writers) {
        size_t cap = codec->cap_writers ? codec->cap_writers * 2 : 4;
        pn_codec_writer_t **grown =
            realloc(codec->writers, cap * sizeof *grown);
        if (!grown)
            return PN_ERR_NOMEM;
        codec->writers = grown;
        codec->cap_writers = cap;
    }
    codec->writers[codec->n_writers++] = w;
    return PN_ERR_OK;
}

pn_err_t pn_codec__writers_init(pn_codec_t *codec, char *errstr,
                                size_t errstr_size) {
    pn_codec_writer_t *w = calloc(1, sizeof *w);
    if (!w || writers_push(codec, w)) {
        free(w);
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "codec: out of memory");
    }
    w->fp = codec->command_fp;
    w->schema = avro_schema_incref(codec->recs[PN_SCHEMA_COMMAND].schema);
    w->ours = true;
    w->is_union = true;
    w->registered = true;
    return PN_ERR_OK;
}

void pn_codec__writers_free(pn_codec_t *codec) {
    for (size_t i = 0; i < codec->n_ids; i++)
        free(codec->ids[i].msg);
    free(codec->ids);
    for (size_t i = 0; i < codec->n_writers; i++)
        writer_free(codec->writers[i]);
    free(codec->writers);
}

/* UNKNOWN_BRANCH for a writer record we have no command of that name for,
 * INCOMPATIBLE_SCHEMA for anything else that does not resolve. */
static pn_err_t unresolved_kind(avro_schema_t ours, avro_schema_t wbranch) {
    if (!is_avro_record(wbranch))
        return PN_ERR_INCOMPATIBLE_SCHEMA;
    for (size_t k = 0; k < avro_schema_union_size(ours); k++)
        if (strcmp(avro_schema_name(wbranch),
                   avro_schema_name(avro_schema_union_branch(ours, (int)k))) ==
            0)
            return PN_ERR_INCOMPATIBLE_SCHEMA;
    return PN_ERR_UNKNOWN_BRANCH;
}

/* Resolves one top-level writer branch (or a non-union writer) to our
 * Command union, alone in its Avro C call (see pn_codec_writer_t). Our
 * records hold only primitives and [null, int], so no nested record can
 * fail by name and trip the same Avro C bug. */
static pn_err_t branch_resolve(pn_codec_t *codec, pn_codec_branch_t *br,
                               avro_schema_t wbranch, char *why,
                               size_t why_size) {
    pn_codec_rec_t *ours = &codec->recs[PN_SCHEMA_COMMAND];
    br->resolver = avro_resolved_writer_new(wbranch, ours->schema);
    if (!br->resolver) {
        br->err = unresolved_kind(ours->schema, wbranch);
        if (why[0] == '\0')
            snprintf(why, why_size, "%s: %s",
                     is_avro_named_type(wbranch) ? avro_schema_name(wbranch)
                                                 : avro_schema_type_name(wbranch),
                     avro_strerror());
        return PN_ERR_OK;
    }
    if (avro_resolved_writer_new_value(br->resolver, &br->resolved)) {
        br->resolved.self = NULL;
        return PN_ERR_NOMEM;
    }
    avro_resolved_writer_set_dest(&br->resolved, &ours->value);
    return PN_ERR_OK;
}

/* Prepares reading data of w->schema into our Command value; at least one
 * branch must resolve. */
static pn_err_t writer_resolve(pn_codec_t *codec, pn_codec_writer_t *w,
                               char *errstr, size_t errstr_size) {
    w->is_union = is_avro_union(w->schema);
    size_t n = w->is_union ? avro_schema_union_size(w->schema) : 1;
    w->branches = calloc(n ? n : 1, sizeof *w->branches);
    if (!w->branches)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "writer schema: out of memory");
    w->n_branches = n;
    char why[256] = "";
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        avro_schema_t b = w->is_union
                              ? avro_schema_union_branch(w->schema, (int)i)
                              : w->schema;
        if (branch_resolve(codec, &w->branches[i], b, why, sizeof why))
            return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                              "writer schema: out of memory");
        any |= w->branches[i].err == PN_ERR_OK;
    }
    if (!any)
        return pn_err_set(errstr, errstr_size, PN_ERR_INCOMPATIBLE_SCHEMA,
                          "writer schema cannot be resolved to Command (%s)",
                          why[0] ? why : "no branches");
    return PN_ERR_OK;
}

static pn_codec_writer_t *writer_find(pn_codec_t *codec, uint64_t fp) {
    for (size_t i = 0; i < codec->n_writers; i++)
        if (codec->writers[i]->fp == fp)
            return codec->writers[i];
    return NULL;
}

/* The writer for a schema JSON, parsed and resolved unless already known.
 * INVALID_ARG for JSON that is not a schema, INCOMPATIBLE_SCHEMA for one
 * that cannot be read as our Command. */
static pn_err_t writer_from_json(pn_codec_t *codec, const char *json,
                                 pn_codec_writer_t **wp, char *errstr,
                                 size_t errstr_size) {
    uint64_t fp;
    pn_err_t err = pn_schema_fingerprint(json, &fp, NULL, errstr, errstr_size);
    if (err)
        return err;
    if ((*wp = writer_find(codec, fp)))
        return PN_ERR_OK;
    pn_codec_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "writer schema: out of memory");
    w->fp = fp;
    if (avro_schema_from_json_length(json, strlen(json), &w->schema)) {
        w->schema = NULL;
        err = pn_codec__avro_fail(errstr, errstr_size, PN_ERR_INVALID_ARG,
                                  "writer schema is not a valid Avro schema");
        goto fail;
    }
    w->ours = fp == codec->command_fp;
    if ((err = writer_resolve(codec, w, errstr, errstr_size)))
        goto fail;
    if ((err = writers_push(codec, w))) {
        pn_err_set(errstr, errstr_size, err, "writer schema: out of memory");
        goto fail;
    }
    *wp = w;
    return PN_ERR_OK;
fail:
    writer_free(w);
    return err;
}

pn_err_t pn_codec_register_writer_schema(pn_codec_t *codec, const char *json,
                                         char *errstr, size_t errstr_size) {
    if (!codec || !json)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "register writer schema: no codec or schema");
    pn_codec_writer_t *w;
    pn_err_t err = writer_from_json(codec, json, &w, errstr, errstr_size);
    if (!err)
        w->registered = true;
    return err;
}

pn_codec_writer_t *pn_codec__writer_by_fp(pn_codec_t *codec, uint64_t fp) {
    pn_codec_writer_t *w = writer_find(codec, fp);
    return w && w->registered ? w : NULL;
}

/* --- Confluent schema ids ------------------------------------------------- */

/* Binary search: the entry of id, or NULL with *pos where it would go. */
static pn_codec_id_t *id_find(pn_codec_t *codec, int32_t id, size_t *pos) {
    size_t lo = 0, hi = codec->n_ids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (codec->ids[mid].id == id)
            return &codec->ids[mid];
        if (codec->ids[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return NULL;
}

static void forget_unknown_ids(pn_codec_t *codec) {
    size_t kept = 0;
    for (size_t i = 0; i < codec->n_ids; i++) {
        if (codec->ids[i].err == PN_ERR_UNKNOWN_SCHEMA)
            free(codec->ids[i].msg);
        else
            codec->ids[kept++] = codec->ids[i];
    }
    codec->n_ids = kept;
    codec->n_unknown_ids = 0;
}

/* Caches what id resolved to; a failure to cache only costs a lookup. */
static void remember_id(pn_codec_t *codec, pn_codec_id_t entry) {
    if (entry.err == PN_ERR_UNKNOWN_SCHEMA &&
        codec->n_unknown_ids >= PN_CODEC__MAX_UNKNOWN_IDS)
        forget_unknown_ids(codec);
    size_t pos = 0;
    if (id_find(codec, entry.id, &pos))
        goto drop;
    if (codec->n_ids == codec->cap_ids) {
        size_t cap = codec->cap_ids ? codec->cap_ids * 2 : 16;
        pn_codec_id_t *grown = realloc(codec->ids, cap * sizeof *grown);
        if (!grown)
            goto drop;
        codec->ids = grown;
        codec->cap_ids = cap;
    }
    memmove(&codec->ids[pos + 1], &codec->ids[pos],
            (codec->n_ids - pos) * sizeof *codec->ids);
    codec->ids[pos] = entry;
    codec->n_ids++;
    if (entry.err == PN_ERR_UNKNOWN_SCHEMA)
        codec->n_unknown_ids++;
    return;
drop:
    free(entry.msg);
}

/* Asks the lookup callback and caches the answer unless it is transient. */
static pn_err_t lookup_id(pn_codec_t *codec, int32_t id,
                          pn_codec_writer_t **writer, char *errstr,
                          size_t errstr_size) {
    char *json = NULL;
    char why[512] = "";
    pn_err_t err = codec->lookup(codec->lookup_opaque, id, &json, why,
                                 sizeof why);
    if (!err && !json)
        err = PN_ERR_NOT_FOUND;
    if (err && err != PN_ERR_NOT_FOUND && err != PN_ERR_UNKNOWN_SCHEMA) {
        free(json);
        return pn_err_set(errstr, errstr_size, err,
                          "schema registry lookup of id %d failed: %s", id,
                          why[0] ? why : pn_err_str(err));
    }
    if (!err) {
        err = writer_from_json(codec, json, writer, why, sizeof why);
        free(json);
        if (err == PN_ERR_NOMEM)
            return pn_err_set(errstr, errstr_size, err, "%s", why);
        if (err)
            err = PN_ERR_INCOMPATIBLE_SCHEMA;
    } else {
        err = PN_ERR_UNKNOWN_SCHEMA;
    }
    char msg[640] = "";
    if (err)
        pn_err_set(msg, sizeof msg, err, "Confluent schema id %d: %s", id,
                   why[0] ? why : "unknown to the schema registry");
    remember_id(codec, (pn_codec_id_t){.id = id,
                                       .err = err,
                                       .writer = err ? NULL : *writer,
                                       .msg = err ? strdup(msg) : NULL});
    return err ? pn_err_set(errstr, errstr_size, err, "%s", msg) : err;
}

pn_err_t pn_codec__writer_by_id(pn_codec_t *codec, int32_t id,
                                pn_codec_writer_t **writer, char *errstr,
                                size_t errstr_size) {
    size_t pos;
    *writer = NULL;
    pn_codec_id_t *e = id_find(codec, id, &pos);
    if (e && e->writer) {
        *writer = e->writer;
        return PN_ERR_OK;
    }
    if (e)
        return pn_err_set(errstr, errstr_size, e->err, "%s",
                          e->msg ? e->msg : pn_err_str(e->err));
    if (!codec->lookup)
        return pn_err_set(errstr, errstr_size, PN_ERR_UNKNOWN_SCHEMA,
                          "Confluent schema id %d is unknown (no schema "
                          "registry lookup configured)",
                          id);
    return lookup_id(codec, id, writer, errstr, errstr_size);
}
