/*
 * Internals shared by the codec modules (never installed):
 *   codec.c          lifecycle, schema layouts, value helpers, plain I/O
 *   codec_command.c  commands: framings, decode, encode
 *   codec_records.c  events, outcomes, snapshots
 *   codec_writers.c  writer schemas: registration, Confluent ids, resolvers
 *   codec_scan.c     bounded validator of Avro binary against a schema
 * Names with a double underscore (pn_codec__*) are for these files only.
 */
#ifndef PANTHER_CODEC_INTERNAL_H
#define PANTHER_CODEC_INTERNAL_H

#include <avro.h>
#include <stdbool.h>

#include "panther/codec.h"

/** Deepest schema nesting the scanner follows (recursive schemas). */
#define PN_CODEC__MAX_DEPTH 64

/** Most unknown Confluent ids remembered before the list is forgotten. */
#define PN_CODEC__MAX_UNKNOWN_IDS 1024

/** One of our schemas with a reusable generic value of it. */
typedef struct pn_codec_rec {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
} pn_codec_rec_t;

/** Field positions of one command record in our Command schema. */
typedef struct pn_codec_cmd_layout {
    int branch; /* index in the Command union */
    int id, order_id, sku_id, node_id, quantity, by, at; /* -1: absent */
} pn_codec_cmd_layout_t;

/** Field positions of InventoryEvent and its DomainEvent branches. */
typedef struct pn_codec_event_layout {
    int sku_id, node_id, version, command_id, by, at, event;
    struct {
        int branch, order_id, quantity, previous_quantity; /* -1: absent */
    } types[PN_EVT__COUNT];
} pn_codec_event_layout_t;

/** Field positions and enum symbol indexes of CommandOutcome. */
typedef struct pn_codec_outcome_layout {
    int command_id, command_type, order_id, sku_id, node_id, status, reason,
        duplicate, version, on_hand, reserved, available, at;
    int type_symbol[PN_CMD__COUNT];
    int status_symbol[2];
    int reason_symbol[PN_REASON__COUNT];
} pn_codec_outcome_layout_t;

/** Field positions of InventorySnapshot and its Reservation items. */
typedef struct pn_codec_snapshot_layout {
    int sku_id, node_id, version, on_hand, reserved, available, reservations,
        updated_at;
    int item_order_id, item_quantity;
} pn_codec_snapshot_layout_t;

/** How one top-level writer branch (or a non-union writer) is read. */
typedef struct pn_codec_branch {
    pn_err_t err;                 /* OK, UNKNOWN_BRANCH (no such command)
                                     or INCOMPATIBLE_SCHEMA */
    avro_value_iface_t *resolver; /* writer branch -> our Command union */
    avro_value_t resolved;        /* its instance, writing into our value */
} pn_codec_branch_t;

/**
 * A writer schema of commands other than the embedded one (or ours, seen
 * through a framing). Each top-level branch is resolved to our Command
 * once, in its own Avro C call: resolving a whole writer union in one call
 * crashes Avro C 1.11 when one branch is a record of one of our names that
 * fails to resolve and another branch follows (its error path frees
 * memoized resolvers that later lookups return).
 */
typedef struct pn_codec_writer {
    uint64_t fp;           /* CRC-64-AVRO of its canonical form */
    avro_schema_t schema;  /* owned reference */
    bool ours;             /* same canonical form as Command.avsc */
    bool is_union;         /* data starts with a union index */
    pn_codec_branch_t *branches; /* one per union branch, or one */
    size_t n_branches;
    bool registered;       /* known for single-object decoding */
} pn_codec_writer_t;

/** What a Confluent schema id resolved to (cached per id). */
typedef struct pn_codec_id {
    int32_t id;
    pn_err_t err;              /* OK when writer is set */
    pn_codec_writer_t *writer; /* borrowed from the writer list */
    char *msg;                 /* owned reason when err != OK */
} pn_codec_id_t;

/* --- codec_direct.c: plans of direct Avro binary ------------------------- */

/** What a binding's slot holds, and so which Avro types it may meet. */
typedef enum pn_codec_class {
    PN_CODEC_CLASS_STR,
    PN_CODEC_CLASS_INT,
    PN_CODEC_CLASS_LONG,
    PN_CODEC_CLASS_BOOL,
    PN_CODEC_CLASS_ENUM,   /* the slot holds the symbol's index */
    PN_CODEC_CLASS_RECORDS /* a union of records; the slot holds the branch */
} pn_codec_class_t;

/** A field name bound to a slot, wherever in the schema it appears. */
typedef struct pn_codec_binding {
    const char *name;
    uint8_t slot;
    pn_codec_class_t cls;
} pn_codec_binding_t;

/** One field's value on its way in or out. A string is null when its
 *  ptr is NULL, any other value when `null` is set. */
typedef struct pn_codec_slot {
    pn_str_t str;
    int64_t num;
    bool null;
} pn_codec_slot_t;

typedef struct pn_codec_step pn_codec_step_t;

/** The fields of one record (or a top-level union) in schema order. */
typedef struct pn_codec_plan {
    pn_codec_step_t *steps;
    size_t n;
} pn_codec_plan_t;

/** root_slot of a schema that is a record. */
#define PN_CODEC_NO_SLOT UINT8_MAX

/**
 * Compiles schema (a record, or a union of records whose branch goes to
 * root_slot) to a plan over slot arrays of n_slots (at most 64). False,
 * with *plan empty, when a field has no binding, a type does not fit its
 * binding's class, a slot is out of range or bound twice on one path, or
 * memory runs out.
 */
bool pn_codec__plan_compile(pn_codec_plan_t *plan, avro_schema_t schema,
                            const pn_codec_binding_t *bindings,
                            size_t n_bindings, size_t n_slots,
                            uint8_t root_slot);

/** Frees a plan's steps. NULL-safe, and safe on an empty plan. */
void pn_codec__plan_free(pn_codec_plan_t *plan);

/**
 * Appends prefix + the binary encoding of slots to out, all or nothing.
 * INVALID_ARG for a null where the schema has none, a string view with a
 * length and no bytes, an int out of its range or a bad branch; TOO_LARGE
 * past the codec's record limit or out's own. The first field at fault
 * decides, as on Avro C's path. The slots' strings must not point into
 * out: out may move before they are copied.
 */
pn_err_t pn_codec__plan_encode(const pn_codec_t *codec,
                               const pn_codec_plan_t *plan,
                               const pn_codec_slot_t *slots,
                               const uint8_t *prefix, size_t prefix_len,
                               pn_buf_t *out);

/**
 * Reads data into slots (strings view data), checking it by the rules of
 * pn_codec__scan(): false for anything the scan would refuse, then ask
 * pn_codec__plan_refused() why.
 */
bool pn_codec__plan_decode(const pn_codec_plan_t *plan, const uint8_t *data,
                           size_t len, pn_codec_slot_t *slots);

/**
 * Avro C's path through the same plan: sets value (a generic value of the
 * plan's schema) from slots, with the checks of pn_codec__plan_encode();
 * reads value into slots (strings view the value). 0 or an errno.
 */
int pn_codec__plan_to_value(pn_codec_t *codec, const pn_codec_plan_t *plan,
                            const pn_codec_slot_t *slots, avro_value_t *value);
int pn_codec__plan_from_value(const pn_codec_plan_t *plan, avro_value_t *value,
                              pn_codec_slot_t *slots);

/**
 * The error for bytes [start, len) of data that a plan of schema refused:
 * the scan's code with "<what>: <the scan's reason>", or INTERNAL if the
 * scan accepts them (the plan and the scan disagree: a bug).
 */
pn_err_t pn_codec__plan_refused(avro_schema_t schema, const uint8_t *data,
                                size_t len, size_t start, const char *what,
                                char *errstr, size_t errstr_size);

struct pn_codec_s {
    size_t max_record_bytes;
    pn_schema_lookup_fn lookup;
    void *lookup_opaque;

    pn_codec_rec_t recs[PN_SCHEMA__COUNT];
    uint64_t command_fp; /* fingerprint of Command.avsc */
    avro_reader_t reader; /* memory reader, pointed at each input */
    avro_writer_t writer; /* memory writer, pointed at each output */
    pn_buf_t scratch;     /* NUL-terminated copies for avro string setters */

    pn_codec_cmd_layout_t cmd[PN_CMD__COUNT];
    pn_command_type_t *branch_type; /* Command union branch -> type */
    size_t n_branch_types;
    pn_codec_event_layout_t event;
    pn_codec_outcome_layout_t outcome;
    pn_codec_snapshot_layout_t snapshot;

    /* Plans of our schemas but the snapshot (codec_direct.c). Records
     * are written and read by them directly, or, with use_plans off
     * (tests, bench codec), through Avro C's generic values. */
    pn_codec_plan_t plans[PN_SCHEMA__COUNT];
    bool use_plans;

    pn_codec_writer_t **writers; /* [0] is our own Command schema */
    size_t n_writers;
    size_t cap_writers;
    pn_codec_id_t *ids; /* sorted by id */
    size_t n_ids;
    size_t cap_ids;
    size_t n_unknown_ids;
};

/* --- codec_scan.c ----------------------------------------------------- */

/**
 * Walks schema over bytes [start, len) of data, which must hold exactly one
 * value, checking every varint, length, union index, enum index, boolean
 * and UTF-8 string, so Avro C reads only validated input. Sets *top_branch
 * (if not NULL) to the top-level union index, -1 when the schema is not a
 * union. TRUNCATED, MALFORMED or UNKNOWN_BRANCH, with the byte offset
 * (from data) in errstr. start <= len.
 */
pn_err_t pn_codec__scan(avro_schema_t schema, const uint8_t *data, size_t len,
                        size_t start, int64_t *top_branch, char *errstr,
                        size_t errstr_size);

/** RFC 3629 UTF-8: no overlongs, no surrogates, nothing past U+10FFFF. */
bool pn_codec__valid_utf8(const uint8_t *p, size_t n);

/* --- codec_writers.c ---------------------------------------------------- */

/** Adds our own Command schema as writers[0]. */
pn_err_t pn_codec__writers_init(pn_codec_t *codec, char *errstr,
                                size_t errstr_size);

/** Frees the writer list and the Confluent id cache. */
void pn_codec__writers_free(pn_codec_t *codec);

/** A registered (or our own) writer by fingerprint, or NULL. */
pn_codec_writer_t *pn_codec__writer_by_fp(pn_codec_t *codec, uint64_t fp);

/**
 * The writer of a Confluent schema id, asking the lookup callback once per
 * id. UNKNOWN_SCHEMA when the id is unknown, INCOMPATIBLE_SCHEMA when its
 * schema cannot be read as ours, or the callback's own error (not cached).
 */
pn_err_t pn_codec__writer_by_id(pn_codec_t *codec, int32_t id,
                                pn_codec_writer_t **writer, char *errstr,
                                size_t errstr_size);

/** The plan of schema `which` to read and write bytes with directly, or
 *  NULL when use_plans is off (or the schema has none: the snapshot). */
static inline const pn_codec_plan_t *pn_codec__plan(const pn_codec_t *codec,
                                                    pn_schema_id_t which) {
    return codec->use_plans && codec->plans[which].steps
               ? &codec->plans[which]
               : NULL;
}

/** Tests and bench codec: plans on (the default), or Avro C's values. */
void pn_codec__use_plans(pn_codec_t *codec, bool on);

/* --- codec_records.c, codec_command.c ------------------------------------- */

/** Compile the plans of InventoryEvent and CommandOutcome / of Command;
 *  false when one does not compile. */
bool pn_codec__plan_records(pn_codec_t *codec);
bool pn_codec__plan_command(pn_codec_t *codec);

/* --- codec.c ------------------------------------------------------------ */

/** Maps an errno from Avro C or a setter to a pn_err_t. */
pn_err_t pn_codec__errno(int rc);

/** errstr = "<context>: <avro's message>"; returns err. */
pn_err_t pn_codec__avro_fail(char *errstr, size_t errstr_size, pn_err_t err,
                             const char *context);

/**
 * Checks size limits, validates a plain record of schema `which` and reads
 * it: into slots when the caller gives them (a schema with a plan), else
 * into the schema's generic value.
 */
pn_err_t pn_codec__read_plain(pn_codec_t *codec, pn_schema_id_t which,
                              const void *data, size_t len,
                              pn_codec_slot_t *slots, char *errstr,
                              size_t errstr_size);

/** Reads validated bytes into target (our value or a resolver of it). */
pn_err_t pn_codec__read_value(pn_codec_t *codec, avro_value_t *target,
                              const uint8_t *data, size_t len, pn_err_t fail,
                              char *errstr, size_t errstr_size);

/**
 * Makes room in out for prefix + a body of body_size bytes, copies the
 * prefix and sets *body to where the body goes; out->len is unchanged
 * (the caller adds both once the body is written). TOO_LARGE past the
 * codec's record limit or out's own.
 */
pn_err_t pn_codec__open_record(const pn_codec_t *codec, const uint8_t *prefix,
                               size_t prefix_len, size_t body_size,
                               pn_buf_t *out, uint8_t **body);

/** Appends prefix + the binary encoding of slots in schema `which` to
 *  out, all or nothing: by its plan, or with use_plans off through Avro C. */
pn_err_t pn_codec__encode_slots(pn_codec_t *codec, pn_schema_id_t which,
                                const pn_codec_slot_t *slots,
                                const uint8_t *prefix, size_t prefix_len,
                                pn_buf_t *out);

/** Appends prefix + the binary encoding of value to out, all or nothing. */
pn_err_t pn_codec__write(pn_codec_t *codec, avro_value_t *value,
                         const uint8_t *prefix, size_t prefix_len,
                         pn_buf_t *out);

/** Sets a string value from a view (Avro C wants a NUL-terminated copy).
 *  0 or an errno. */
int pn_codec__set_string(pn_codec_t *codec, avro_value_t *f, pn_str_t s);

/** A view of a string value (without Avro C's NUL). 0 or an errno. */
int pn_codec__get_string(avro_value_t *f, pn_str_t *s);

/* Field setters and getters on a record value (the snapshot's); each
 * returns 0 or an errno. */
int pn_codec__set_str(pn_codec_t *codec, avro_value_t *rec, int idx,
                      pn_str_t s);
int pn_codec__set_long(avro_value_t *rec, int idx, int64_t v);
int pn_codec__get_str(avro_value_t *rec, int idx, pn_str_t *s);
int pn_codec__get_long(avro_value_t *rec, int idx, int64_t *v);

/** Strings gathered from a value, then copied into one block. */
typedef struct pn_codec_strs {
    pn_str_t *dst[8];
    pn_str_t src[8];
    size_t n;
} pn_codec_strs_t;

/** Queues src to be copied; dst will view the copy. */
void pn_codec__strs_add(pn_codec_strs_t *strs, pn_str_t *dst, pn_str_t src);

/**
 * Copies every queued string (NUL-terminated, a NULL source stays
 * PN_STR_NULL) into one malloc'd block returned in *storage.
 */
pn_err_t pn_codec__strs_commit(pn_codec_strs_t *strs, void **storage);

#endif
