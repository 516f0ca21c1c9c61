/*
 * Direct Avro binary for our own schemas: the hot path of the engine,
 * which encodes an event and an outcome and decodes a command per command.
 *
 * Avro C's generic values are general and slow for this: every string is
 * copied twice (into a NUL-terminated scratch, then into the value), every
 * field is reached through a virtual call, and writing walks the schema
 * again. A plan does the same work in one pass over flat slots.
 *
 * The schema stays the source of truth. A plan is compiled from the parsed
 * schemas/ file when the codec is created: it follows the schema's field
 * order and each field's Avro type, and only binds field names to slots.
 * A schema the compiler does not fully understand (a field no binding
 * names, a type it has no step for) gets no plan, and the codec refuses to
 * start. Avro C's generic values go through the same plans
 * (pn_codec__plan_to_value and _from_value), so the two paths share every
 * mapping between fields and records; tests run both on random records and
 * require the same bytes and the same values.
 *
 * Decoding by plan validates as it reads, by the rules of
 * pn_codec__scan(), but only says yes or no: a record it refuses (rare)
 * goes to the scanner, which says what is wrong and where. The tests and
 * the fuzz target hold the two to the same answers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

typedef enum step_kind {
    STEP_STR,
    STEP_INT,
    STEP_LONG,
    STEP_BOOL,
    STEP_ENUM,
    STEP_RECORDS /* a union of records: slot.num is the branch */
} step_kind_t;

struct pn_codec_step {
    step_kind_t kind;
    bool optional;        /* a union of null and the value */
    uint8_t slot;
    uint8_t null_branch;  /* optional: the union's index of null */
    uint8_t value_branch; /* optional: and of the value */
    int n_symbols;        /* ENUM: how many the schema has */
    pn_codec_plan_t *branches; /* RECORDS: one plan per branch, owned */
    size_t n_branches;
};

/* --- compiling ------------------------------------------------------------ */

/* What a compilation binds with. Slots are < 64, so a path's slots fit a
 * mask: no slot is bound twice on one path from the root (one slot read by
 * two fields would carry one value into both). */
typedef struct compile {
    const pn_codec_binding_t *b;
    size_t nb;
    size_t n_slots;
} compile_t;

static const pn_codec_binding_t *binding_of(const compile_t *c,
                                            const char *name) {
    for (size_t i = 0; i < c->nb; i++)
        if (strcmp(c->b[i].name, name) == 0)
            return &c->b[i];
    return NULL;
}

/* The class of values a scalar Avro type holds; -1 for none we write. */
static int scalar_class(avro_schema_t s) {
    switch (avro_typeof(s)) {
    case AVRO_STRING:
        return PN_CODEC_CLASS_STR;
    case AVRO_INT32:
        return PN_CODEC_CLASS_INT;
    case AVRO_INT64:
        return PN_CODEC_CLASS_LONG;
    case AVRO_BOOLEAN:
        return PN_CODEC_CLASS_BOOL;
    case AVRO_ENUM:
        return PN_CODEC_CLASS_ENUM;
    default:
        return -1;
    }
}

static const step_kind_t kind_of_class[] = {
    [PN_CODEC_CLASS_STR] = STEP_STR,   [PN_CODEC_CLASS_INT] = STEP_INT,
    [PN_CODEC_CLASS_LONG] = STEP_LONG, [PN_CODEC_CLASS_BOOL] = STEP_BOOL,
    [PN_CODEC_CLASS_ENUM] = STEP_ENUM, [PN_CODEC_CLASS_RECORDS] = STEP_RECORDS};

static bool compile_record(pn_codec_plan_t *plan, avro_schema_t record,
                           const compile_t *c, uint64_t used);

/* A union whose every branch is a record, each compiled to a plan. */
static bool compile_records(pn_codec_step_t *step, avro_schema_t u,
                            const compile_t *c, uint64_t used) {
    size_t n = avro_schema_union_size(u);
    step->branches = calloc(n ? n : 1, sizeof *step->branches);
    if (!step->branches)
        return false;
    step->n_branches = n;
    for (size_t i = 0; i < n; i++) {
        avro_schema_t r = avro_schema_union_branch(u, (int)i);
        if (!is_avro_record(r) || !compile_record(&step->branches[i], r, c, used))
            return false;
    }
    return true;
}

/* [null, X] or [X, null] with X a scalar of the binding's class. */
static bool compile_optional(pn_codec_step_t *step, avro_schema_t u,
                             pn_codec_class_t cls) {
    if (avro_schema_union_size(u) != 2)
        return false;
    for (uint8_t null_at = 0; null_at < 2; null_at++) {
        avro_schema_t other = avro_schema_union_branch(u, 1 - null_at);
        if (avro_typeof(avro_schema_union_branch(u, null_at)) == AVRO_NULL &&
            scalar_class(other) == (int)cls) {
            step->optional = true;
            if (cls == PN_CODEC_CLASS_ENUM)
                step->n_symbols = avro_schema_enum_number_of_symbols(other);
            step->null_branch = null_at;
            step->value_branch = (uint8_t)(1 - null_at);
            return true;
        }
    }
    return false;
}

static bool compile_value(pn_codec_step_t *step, avro_schema_t s,
                          const pn_codec_binding_t *bound, const compile_t *c,
                          uint64_t *used) {
    if (bound->slot >= c->n_slots || bound->slot >= 64 ||
        (*used >> bound->slot) & 1)
        return false;
    *used |= (uint64_t)1 << bound->slot;
    step->slot = bound->slot;
    step->kind = kind_of_class[bound->cls];
    if (bound->cls == PN_CODEC_CLASS_RECORDS)
        return is_avro_union(s) && compile_records(step, s, c, *used);
    if (is_avro_union(s))
        return compile_optional(step, s, bound->cls);
    if (scalar_class(s) != (int)bound->cls)
        return false;
    if (bound->cls == PN_CODEC_CLASS_ENUM)
        step->n_symbols = avro_schema_enum_number_of_symbols(s);
    return true;
}

static bool compile_record(pn_codec_plan_t *plan, avro_schema_t record,
                           const compile_t *c, uint64_t used) {
    size_t n = avro_schema_record_size(record);
    plan->steps = calloc(n ? n : 1, sizeof *plan->steps);
    if (!plan->steps)
        return false;
    plan->n = n;
    for (size_t i = 0; i < n; i++) {
        const pn_codec_binding_t *bound =
            binding_of(c, avro_schema_record_field_name(record, (int)i));
        if (!bound ||
            !compile_value(&plan->steps[i],
                           avro_schema_record_field_get_by_index(record, (int)i),
                           bound, c, &used))
            return false;
    }
    return true;
}

void pn_codec__plan_free(pn_codec_plan_t *plan) {
    if (!plan)
        return;
    for (size_t i = 0; i < plan->n; i++) {
        pn_codec_step_t *s = &plan->steps[i];
        for (size_t j = 0; j < s->n_branches; j++)
            pn_codec__plan_free(&s->branches[j]);
        free(s->branches);
    }
    free(plan->steps);
    memset(plan, 0, sizeof *plan);
}

bool pn_codec__plan_compile(pn_codec_plan_t *plan, avro_schema_t schema,
                            const pn_codec_binding_t *bindings,
                            size_t n_bindings, size_t n_slots,
                            uint8_t root_slot) {
    memset(plan, 0, sizeof *plan);
    compile_t c = {bindings, n_bindings, n_slots};
    bool ok;
    if (is_avro_record(schema)) {
        ok = compile_record(plan, schema, &c, 0);
    } else {
        /* A top-level union of records (Command): one step, no name. */
        pn_codec_binding_t root = {"", root_slot, PN_CODEC_CLASS_RECORDS};
        uint64_t used = 0;
        plan->steps = calloc(1, sizeof *plan->steps);
        plan->n = plan->steps ? 1 : 0;
        ok = plan->steps &&
             compile_value(&plan->steps[0], schema, &root, &c, &used);
    }
    if (!ok)
        pn_codec__plan_free(plan);
    return ok;
}

/* --- encoding ------------------------------------------------------------- */

static uint8_t *put_long(uint8_t *p, int64_t v) {
    uint64_t u = (uint64_t)v;
    uint64_t z = (u << 1) ^ (0 - (u >> 63));
    while (z >= 0x80) {
        *p++ = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    *p++ = (uint8_t)z;
    return p;
}

static size_t long_size(int64_t v) {
    uint64_t u = (uint64_t)v;
    uint64_t z = (u << 1) ^ (0 - (u >> 63));
    unsigned bits = 64 - (unsigned)__builtin_clzll(z | 1);
    return (bits + 6) / 7; /* 7 bits a byte */
}

/* Whether a step's value is null, and whether its schema can hold that
 * (and a view has bytes if it has a length). A plain string field writes
 * a null view as "", as Avro C does. */
static int step_null(const pn_codec_step_t *s, const pn_codec_slot_t *v,
                     bool *is_null) {
    *is_null = s->kind == STEP_STR ? s->optional && !v->str.ptr : v->null;
    if (v->str.len && !v->str.ptr)
        return EINVAL;
    return *is_null && !s->optional ? EINVAL : 0;
}

/* step_null, and whether the value fits its field: a string within the
 * record limit (Avro C fails copying a longer one, and so do we, where it
 * stands), an int within 32 bits, an enum index among the symbols. */
static int step_check(const pn_codec_step_t *s, const pn_codec_slot_t *v,
                      size_t limit, bool *is_null) {
    int rc = step_null(s, v, is_null);
    if (rc || *is_null)
        return rc;
    if (s->kind == STEP_STR && v->str.len > limit)
        return E2BIG;
    if ((s->kind == STEP_INT && (v->num < INT32_MIN || v->num > INT32_MAX)) ||
        (s->kind == STEP_ENUM && (v->num < 0 || v->num >= s->n_symbols)))
        return EINVAL;
    return 0;
}

/* Checks every value the plan will write and adds up its size, so that
 * the write itself cannot fail half way. Two walks with the same switch
 * (here and write_plan) rather than one walk with a "size only" mode:
 * that one was 40 % slower per record, its output pointer reloaded
 * around every copy. */
static int measure_plan(const pn_codec_plan_t *plan,
                        const pn_codec_slot_t *slots, size_t limit,
                        size_t *size) {
    for (size_t i = 0; i < plan->n; i++) {
        const pn_codec_step_t *s = &plan->steps[i];
        const pn_codec_slot_t *v = &slots[s->slot];
        bool is_null;
        int rc = step_check(s, v, limit, &is_null);
        if (rc)
            return rc;
        if (s->optional)
            *size += 1; /* a branch index of 0 or 1 */
        if (is_null)
            continue;
        switch (s->kind) {
        case STEP_STR:
            *size += long_size((int64_t)v->str.len) + v->str.len;
            break;
        case STEP_BOOL:
            *size += 1;
            break;
        case STEP_INT:
        case STEP_LONG:
        case STEP_ENUM:
            *size += long_size(v->num);
            break;
        case STEP_RECORDS:
            if (v->num < 0 || (size_t)v->num >= s->n_branches)
                return EINVAL;
            *size += long_size(v->num);
            rc = measure_plan(&s->branches[v->num], slots, limit, size);
            if (rc)
                return rc;
            break;
        }
    }
    return 0;
}

/* Writes what measure_plan() checked and sized. */
static uint8_t *write_plan(const pn_codec_plan_t *plan,
                           const pn_codec_slot_t *slots, uint8_t *p) {
    for (size_t i = 0; i < plan->n; i++) {
        const pn_codec_step_t *s = &plan->steps[i];
        const pn_codec_slot_t *v = &slots[s->slot];
        bool is_null;
        (void)step_null(s, v, &is_null);
        if (s->optional)
            p = put_long(p, is_null ? s->null_branch : s->value_branch);
        if (is_null)
            continue;
        switch (s->kind) {
        case STEP_STR:
            p = put_long(p, (int64_t)v->str.len);
            if (v->str.len)
                memcpy(p, v->str.ptr, v->str.len);
            p += v->str.len;
            break;
        case STEP_BOOL:
            *p++ = v->num != 0;
            break;
        case STEP_INT:
        case STEP_LONG:
        case STEP_ENUM:
            p = put_long(p, v->num);
            break;
        case STEP_RECORDS:
            p = put_long(p, v->num);
            p = write_plan(&s->branches[v->num], slots, p);
            break;
        }
    }
    return p;
}

pn_err_t pn_codec__plan_encode(const pn_codec_t *codec,
                               const pn_codec_plan_t *plan,
                               const pn_codec_slot_t *slots,
                               const uint8_t *prefix, size_t prefix_len,
                               pn_buf_t *out) {
    size_t size = 0;
    int rc = measure_plan(plan, slots, codec->max_record_bytes, &size);
    if (rc)
        return pn_codec__errno(rc);
    uint8_t *body;
    pn_err_t err = pn_codec__open_record(codec, prefix, prefix_len, size, out,
                                         &body);
    if (err)
        return err;
    if ((size_t)(write_plan(plan, slots, body) - body) != size)
        abort(); /* the write went past the room made for it: no way on */
    out->len += prefix_len + size;
    return PN_ERR_OK;
}

/* --- decoding ------------------------------------------------------------- */

typedef struct take {
    const uint8_t *p;
    const uint8_t *end;
    pn_codec_slot_t *slots;
} take_t;

/* A varint of at most max_bytes (5 for int, 10 for long) whose last byte
 * carries no bits beyond the type's width, zigzag-decoded: the rules of
 * pn_codec__scan(). */
static bool take_varint(take_t *t, int max_bytes, int64_t *v) {
    unsigned last_bits = max_bytes == 5 ? 4 : 1;
    uint64_t z = 0;
    for (int i = 0;; i++) {
        if (t->p == t->end)
            return false;
        uint8_t byte = *t->p++;
        if (i == max_bytes - 1 && ((byte & 0x80) || (byte >> last_bits)))
            return false;
        z |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80))
            break;
    }
    *v = (int64_t)((z >> 1) ^ (0 - (z & 1)));
    return true;
}

/* A union or branch index below n. */
static bool take_index(take_t *t, size_t n, int64_t *v) {
    return take_varint(t, 10, v) && *v >= 0 && (uint64_t)*v < n;
}

static bool take_plan(take_t *t, const pn_codec_plan_t *plan);

static bool take_step(take_t *t, const pn_codec_step_t *s) {
    pn_codec_slot_t *v = &t->slots[s->slot];
    int64_t branch = -1;
    if (s->optional && !take_index(t, 2, &branch))
        return false;
    v->null = s->optional && branch == s->null_branch;
    if (v->null) {
        v->str = PN_STR_NULL;
        return true;
    }
    switch (s->kind) {
    case STEP_STR: {
        int64_t len;
        if (!take_varint(t, 10, &len) || len < 0 || len > t->end - t->p ||
            !pn_codec__valid_utf8(t->p, (size_t)len))
            return false;
        v->str = (pn_str_t){(const char *)t->p, (size_t)len};
        t->p += len;
        return true;
    }
    case STEP_BOOL:
        if (t->p == t->end || *t->p > 1)
            return false;
        v->num = *t->p++;
        return true;
    case STEP_INT:
        return take_varint(t, 5, &v->num);
    case STEP_LONG:
        return take_varint(t, 10, &v->num);
    case STEP_ENUM:
        return take_varint(t, 5, &v->num) && v->num >= 0 &&
               v->num < s->n_symbols;
    case STEP_RECORDS:
        return take_index(t, s->n_branches, &v->num) &&
               take_plan(t, &s->branches[v->num]);
    }
    return false;
}

static bool take_plan(take_t *t, const pn_codec_plan_t *plan) {
    for (size_t i = 0; i < plan->n; i++)
        if (!take_step(t, &plan->steps[i]))
            return false;
    return true;
}

bool pn_codec__plan_decode(const pn_codec_plan_t *plan, const uint8_t *data,
                           size_t len, pn_codec_slot_t *slots) {
    take_t t = {data, data + len, slots};
    return take_plan(&t, plan) && t.p == t.end;
}

pn_err_t pn_codec__plan_refused(avro_schema_t schema, const uint8_t *data,
                                size_t len, size_t start, const char *what,
                                char *errstr, size_t errstr_size) {
    char why[256];
    pn_err_t err = pn_codec__scan(schema, data, len, start, NULL, why,
                                  sizeof why);
    if (err)
        return pn_err_set(errstr, errstr_size, err, "%s: %s", what, why);
    return pn_err_set(errstr, errstr_size, PN_ERR_INTERNAL,
                      "%s: the direct plan refused a record that the "
                      "validator accepts",
                      what);
}

/* --- Avro C's generic values, through the same plans ---------------------- */

static int value_plan(pn_codec_t *codec, const pn_codec_plan_t *plan,
                      const pn_codec_slot_t *slots, avro_value_t *record);

/* Sets field f (or, for a top-level union, the value itself) from its
 * slot, with the checks of the direct path. */
static int value_step(pn_codec_t *codec, const pn_codec_step_t *s,
                      const pn_codec_slot_t *slots, avro_value_t *f) {
    const pn_codec_slot_t *v = &slots[s->slot];
    bool is_null;
    int rc = step_check(s, v, codec->max_record_bytes, &is_null);
    if (rc)
        return rc;
    avro_value_t b = *f;
    if (s->optional) {
        rc = avro_value_set_branch(
            f, is_null ? s->null_branch : s->value_branch, &b);
        if (rc || is_null)
            return rc ? rc : avro_value_set_null(&b);
    }
    switch (s->kind) {
    case STEP_STR:
        return pn_codec__set_string(codec, &b, v->str);
    case STEP_INT:
        return avro_value_set_int(&b, (int32_t)v->num);
    case STEP_LONG:
        return avro_value_set_long(&b, v->num);
    case STEP_BOOL:
        return avro_value_set_boolean(&b, v->num != 0);
    case STEP_ENUM:
        return avro_value_set_enum(&b, (int)v->num);
    case STEP_RECORDS: {
        if (v->num < 0 || (size_t)v->num >= s->n_branches)
            return EINVAL;
        avro_value_t r;
        rc = avro_value_set_branch(f, (int)v->num, &r);
        return rc ? rc : value_plan(codec, &s->branches[v->num], slots, &r);
    }
    }
    return EINVAL;
}

static int value_plan(pn_codec_t *codec, const pn_codec_plan_t *plan,
                      const pn_codec_slot_t *slots, avro_value_t *record) {
    for (size_t i = 0; i < plan->n; i++) {
        avro_value_t f;
        int rc = avro_value_get_by_index(record, i, &f, NULL);
        if (!rc)
            rc = value_step(codec, &plan->steps[i], slots, &f);
        if (rc)
            return rc;
    }
    return 0;
}

int pn_codec__plan_to_value(pn_codec_t *codec, const pn_codec_plan_t *plan,
                            const pn_codec_slot_t *slots,
                            avro_value_t *value) {
    return avro_value_get_type(value) == AVRO_UNION
               ? value_step(codec, &plan->steps[0], slots, value)
               : value_plan(codec, plan, slots, value);
}

static int slots_plan(const pn_codec_plan_t *plan, avro_value_t *record,
                      pn_codec_slot_t *slots);

static int slots_step(const pn_codec_step_t *s, avro_value_t *f,
                      pn_codec_slot_t *slots) {
    pn_codec_slot_t *v = &slots[s->slot];
    avro_value_t b = *f;
    int rc;
    v->null = false;
    if (s->optional) {
        if ((rc = avro_value_get_current_branch(f, &b)))
            return rc;
        if (avro_value_get_type(&b) == AVRO_NULL) {
            v->null = true;
            v->str = PN_STR_NULL;
            return 0;
        }
    }
    switch (s->kind) {
    case STEP_STR:
        return pn_codec__get_string(&b, &v->str);
    case STEP_INT: {
        int32_t x = 0;
        rc = avro_value_get_int(&b, &x);
        v->num = x;
        return rc;
    }
    case STEP_LONG:
        return avro_value_get_long(&b, &v->num);
    case STEP_BOOL: {
        int x = 0;
        rc = avro_value_get_boolean(&b, &x);
        v->num = x != 0;
        return rc;
    }
    case STEP_ENUM: {
        int x = 0;
        rc = avro_value_get_enum(&b, &x);
        v->num = x;
        return rc;
    }
    case STEP_RECORDS: {
        int d = -1;
        avro_value_t r;
        if ((rc = avro_value_get_discriminant(f, &d)) ||
            (rc = avro_value_get_current_branch(f, &r)))
            return rc;
        if (d < 0 || (size_t)d >= s->n_branches)
            return EINVAL;
        v->num = d;
        return slots_plan(&s->branches[d], &r, slots);
    }
    }
    return EINVAL;
}

static int slots_plan(const pn_codec_plan_t *plan, avro_value_t *record,
                      pn_codec_slot_t *slots) {
    for (size_t i = 0; i < plan->n; i++) {
        avro_value_t f;
        int rc = avro_value_get_by_index(record, i, &f, NULL);
        if (!rc)
            rc = slots_step(&plan->steps[i], &f, slots);
        if (rc)
            return rc;
    }
    return 0;
}

int pn_codec__plan_from_value(const pn_codec_plan_t *plan, avro_value_t *value,
                              pn_codec_slot_t *slots) {
    return avro_value_get_type(value) == AVRO_UNION
               ? slots_step(&plan->steps[0], value, slots)
               : slots_plan(plan, value, slots);
}
