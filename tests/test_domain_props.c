/*
 * Property tests of the domain (pn_domain_decide / pn_domain_evolve) against
 * the independent reference model in reference_model.c, over seeded random
 * command sequences, plus targeted tests of the idempotency semantics.
 *
 * The test plays the engine: it keeps the real state of each stream, the
 * events it emitted, and a per-stream index id -> first real outcome, which
 * it passes to decide as `prior`. The model keeps its own index.
 *
 * PN_PROPS_SEED (default 1) is the seed of the first sequence; sequence i
 * uses PN_PROPS_SEED + i. PN_PROPS_RUNS (default 10000) is the number of
 * sequences. A failure prints the sequence's seed and the command that
 * failed; `PN_PROPS_SEED=<seed> PN_PROPS_RUNS=1` replays exactly that one.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "panther/domain.h"
#include "pn_test.h"
#include "reference_model.h"

#define LIT(s) ((pn_str_t){(s), sizeof(s) - 1})

#define MAX_STEPS 60
#define MIN_STEPS 20
#define MAX_STREAMS 5
#define MAX_SLOTS 8
#define ARENA_SIZE (1u << 18)
#define MAX_FAILED_SEQUENCES 3

/* ---------------------------------------------------------------- PRNG */

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *rng) { return pn_test_rand(&rng->s); }

static uint32_t rng_below(rng_t *rng, uint32_t n) {
    return (uint32_t)(rng_next(rng) % n);
}

static bool rng_pct(rng_t *rng, unsigned pct) {
    return rng_below(rng, 100) < pct;
}

/* ------------------------------------------------------- string arena */

typedef struct arena {
    char buf[ARENA_SIZE];
    size_t used;
    bool overflow;
} arena_t;

static pn_str_t arena_printf(arena_t *arena, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static pn_str_t arena_printf(arena_t *arena, const char *fmt, ...) {
    size_t room = ARENA_SIZE - arena->used;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(arena->buf + arena->used, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        arena->overflow = true;
        return LIT("");
    }
    pn_str_t s = {arena->buf + arena->used, (size_t)n};
    arena->used += (size_t)n + 1;
    return s;
}

/* prefix, then `fill` up to len bytes in all. */
static pn_str_t arena_pad(arena_t *arena, pn_str_t prefix, char fill,
                          size_t len) {
    if (ARENA_SIZE - arena->used < len + 1 || prefix.len > len) {
        arena->overflow = true;
        return LIT("");
    }
    char *p = arena->buf + arena->used;
    if (prefix.len)
        memcpy(p, prefix.ptr, prefix.len);
    memset(p + prefix.len, fill, len - prefix.len);
    p[len] = '\0';
    arena->used += len + 1;
    return (pn_str_t){p, len};
}

/* ------------------------------------------------------ engine's role */

static bool str_same(pn_str_t a, pn_str_t b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool id_usable(pn_str_t s) {
    return s.ptr && s.len >= 1 && s.len <= PN_ID_MAX_BYTES;
}

static bool stream_ids_usable(pn_str_t sku, pn_str_t node) {
    return id_usable(sku) && id_usable(node) &&
           !memchr(sku.ptr, '|', sku.len) && !memchr(node.ptr, '|', node.len);
}

/* One stream as the engine holds it. */
typedef struct slot {
    pn_str_t sku, node;
    pn_state_t state;
    size_t n_events;
    pn_event_t events[MAX_STEPS];
    size_t n_seen;
    pn_str_t seen_id[MAX_STEPS];
    pn_outcome_t seen_outcome[MAX_STEPS];
} slot_t;

typedef struct stats {
    uint64_t sequences, steps, duplicates, dup_rejected, events_checked;
    uint64_t accepted[PN_CMD__COUNT];
    uint64_t rejected[PN_REASON__COUNT];
    uint64_t events[PN_EVT__COUNT];
    uint64_t update_no_event, null_qty_accepted, negative_available;
    uint64_t max_qty_reserved, folds;
} stats_t;

/* One execution of one sequence. */
typedef struct run {
    uint64_t seed;
    rng_t rng;
    arena_t arena;
    int64_t at_ms;
    size_t n_streams;
    pn_str_t sku[MAX_STREAMS], node[MAX_STREAMS];
    size_t n_slots;
    slot_t slots[MAX_SLOTS];
    size_t n_steps;
    pn_command_t cmds[MAX_STEPS];
    pn_decision_t decisions[MAX_STEPS];
    pn_ref_t *ref;
    stats_t *stats; /* NULL: do not count */
} run_t;

static slot_t *slot_for(run_t *run, pn_str_t sku, pn_str_t node) {
    for (size_t i = 0; i < run->n_slots; i++)
        if (str_same(run->slots[i].sku, sku) &&
            str_same(run->slots[i].node, node))
            return &run->slots[i];
    if (run->n_slots == MAX_SLOTS)
        return NULL;
    slot_t *slot = &run->slots[run->n_slots++];
    slot->sku = sku;
    slot->node = node;
    pn_state_init(&slot->state);
    slot->n_events = 0;
    slot->n_seen = 0;
    return slot;
}

static const pn_outcome_t *prior_for(const slot_t *slot, pn_str_t id) {
    for (size_t i = 0; i < slot->n_seen; i++)
        if (str_same(slot->seen_id[i], id))
            return &slot->seen_outcome[i];
    return NULL;
}

static void run_release(run_t *run) {
    for (size_t i = 0; i < run->n_slots; i++)
        pn_state_clear(&run->slots[i].state);
    run->n_slots = 0;
}

/* ---------------------------------------------------------- reporting */

static void print_str(FILE *f, const char *name, pn_str_t s) {
    if (!s.ptr) {
        fprintf(f, " %s=NULL", name);
        return;
    }
    if (s.len > 24)
        fprintf(f, " %s=\"%.12s...\"(len %zu)", name, s.ptr, s.len);
    else
        fprintf(f, " %s=\"%.*s\"", name, (int)s.len, s.ptr);
}

static void print_cmd(FILE *f, size_t step, const pn_command_t *cmd) {
    fprintf(f, "    #%zu %s", step, pn_command_type_name(cmd->type));
    print_str(f, "id", cmd->id);
    print_str(f, "sku", cmd->sku_id);
    print_str(f, "node", cmd->node_id);
    if (cmd->type != PN_CMD_UPDATE)
        print_str(f, "order", cmd->order_id);
    if (cmd->has_quantity)
        fprintf(f, " q=%" PRId32, cmd->quantity);
    else
        fprintf(f, " q=null");
    print_str(f, "by", cmd->by);
    fprintf(f, " at=%" PRId64 "\n", cmd->at_ms);
}

/* Prints the seed, the failing step and the commands that led to it. */
static void fail_step(const run_t *run, size_t step, const char *what) {
    fprintf(stderr,
            "\nprops: MISMATCH seed=%" PRIu64 " step=%zu: %s\n"
            "  reproduce: PN_PROPS_SEED=%" PRIu64 " PN_PROPS_RUNS=1\n"
            "  commands so far:\n",
            run->seed, step, what, run->seed);
    for (size_t i = 0; i <= step && i < run->n_steps; i++)
        print_cmd(stderr, i, &run->cmds[i]);
}

/* Stop the sequence at its first mismatch (both values printed by CUnit). */
#define EXPECT_EQ(run, step, real, want)                                     \
    do {                                                                     \
        if ((int64_t)(real) != (int64_t)(want)) {                            \
            PN_ASSERT_EQ_INT(real, want);                                    \
            fail_step((run), (step), #real " == " #want);                    \
            return false;                                                    \
        }                                                                    \
    } while (0)

#define EXPECT_TRUE(run, step, cond)                                         \
    do {                                                                     \
        if (!(cond)) {                                                       \
            PN_ASSERT(cond);                                                 \
            fail_step((run), (step), #cond);                                 \
            return false;                                                    \
        }                                                                    \
    } while (0)

#define EXPECT_STR(run, step, real, want)                                    \
    do {                                                                     \
        pn_str_t r_ = (real), w_ = (want);                                   \
        if (!str_same(r_, w_)) {                                             \
            PN_ASSERT_(false, CU_FALSE,                                      \
                       "%s == %s (\"%.*s\" len %zu vs \"%.*s\" len %zu)",    \
                       #real, #want, (int)(r_.len > 40 ? 40 : r_.len),       \
                       r_.ptr ? r_.ptr : "", r_.len,                         \
                       (int)(w_.len > 40 ? 40 : w_.len),                     \
                       w_.ptr ? w_.ptr : "", w_.len);                        \
            fail_step((run), (step), #real " == " #want);                    \
            return false;                                                    \
        }                                                                    \
    } while (0)

/* ---------------------------------------------------------- generator */

static int32_t clamp32(int64_t v) {
    if (v > INT32_MAX)
        return INT32_MAX;
    if (v < INT32_MIN)
        return INT32_MIN;
    return (int32_t)v;
}

static int32_t gen_negative(rng_t *rng) {
    switch (rng_below(rng, 4)) {
    case 0:
        return -1;
    case 1:
        return INT32_MIN;
    case 2:
        return INT32_MIN + 1;
    default:
        return -(int32_t)(1 + rng_below(rng, 1000));
    }
}

static int32_t gen_large(rng_t *rng) {
    switch (rng_below(rng, 3)) {
    case 0:
        return INT32_MAX;
    case 1:
        return INT32_MAX - 1;
    default:
        return INT32_MAX - (int32_t)rng_below(rng, 100000);
    }
}

static void gen_streams(run_t *run) {
    rng_t *rng = &run->rng;
    run->n_streams = 3 + rng_below(rng, 3);
    for (size_t i = 0; i < run->n_streams; i++) {
        for (;;) {
            pn_str_t sku = arena_printf(&run->arena, "sku-%u", rng_below(rng, 3));
            pn_str_t node =
                arena_printf(&run->arena, "node-%u", rng_below(rng, 3));
            bool dup = false;
            for (size_t j = 0; j < i; j++)
                dup |= str_same(run->sku[j], sku) && str_same(run->node[j], node);
            if (!dup) {
                run->sku[i] = sku;
                run->node[i] = node;
                break;
            }
        }
    }
    /* Keys that only the separator tells apart, and a maximal sku. */
    if (rng_pct(rng, 15)) {
        run->sku[0] = LIT("ab");
        run->node[0] = LIT("c");
        run->sku[1] = LIT("a");
        run->node[1] = LIT("bc");
    }
    if (rng_pct(rng, 15))
        run->sku[2] = arena_pad(&run->arena, LIT("S"), 's', PN_ID_MAX_BYTES);
}

static pn_str_t gen_order(run_t *run) {
    static const char *pool[] = {"o-1", "o-2", "o-3", "o-4"};
    uint32_t r = rng_below(&run->rng, 100);
    if (r < 88)
        return pn_str_c(pool[r % 4]);
    if (r < 92)
        return LIT("o|5"); /* '|' is only forbidden in sku and node */
    if (r < 96)
        return arena_pad(&run->arena, LIT("O"), 'o', PN_ID_MAX_BYTES);
    return LIT("o-6");
}

static int32_t gen_update_qty(run_t *run, const pn_ref_stream_t *ms) {
    rng_t *rng = &run->rng;
    uint32_t r = rng_below(rng, 100);
    int64_t reserved = pn_ref_reserved(ms);
    int64_t on_hand = ms ? ms->on_hand : 0;
    if (r < 25)
        return (int32_t)rng_below(rng, 120);
    if (r < 45)
        return clamp32(reserved + rng_below(rng, 60));
    if (r < 53)
        return clamp32(on_hand);
    if (r < 59)
        return clamp32(reserved);
    if (r < 65)
        return clamp32(reserved > 0 ? reserved - 1 - rng_below(rng, 5) : 0);
    if (r < 73)
        return gen_negative(rng);
    if (r < 78)
        return 0;
    if (r < 86)
        return gen_large(rng);
    return (int32_t)rng_below(rng, 1000);
}

static int32_t gen_reserve_qty(run_t *run, const pn_ref_stream_t *ms) {
    rng_t *rng = &run->rng;
    uint32_t r = rng_below(rng, 100);
    int64_t available = (ms ? ms->on_hand : 0) - pn_ref_reserved(ms);
    if (r < 45)
        return 1 + (int32_t)rng_below(rng, 10);
    if (r < 52)
        return 0;
    if (r < 60)
        return gen_negative(rng);
    if (r < 72)
        return clamp32(available > 0 ? available : 1);
    if (r < 78)
        return clamp32(available + 1);
    if (r < 88)
        return gen_large(rng);
    return 1 + (int32_t)rng_below(rng, 100);
}

static void gen_release_qty(run_t *run, const pn_ref_stream_t *ms,
                            pn_command_t *cmd) {
    rng_t *rng = &run->rng;
    int64_t held = pn_ref_held(ms, cmd->order_id);
    uint32_t r = rng_below(rng, 100);
    cmd->has_quantity = r >= 35;
    if (r < 35)
        cmd->quantity = 0;
    else if (r < 55)
        cmd->quantity = clamp32(held);
    else if (r < 62)
        cmd->quantity = clamp32(held + 1);
    else if (r < 69)
        cmd->quantity = clamp32(held - 1);
    else if (r < 76)
        cmd->quantity = 0;
    else if (r < 83)
        cmd->quantity = gen_negative(rng);
    else if (r < 88)
        cmd->quantity = gen_large(rng);
    else
        cmd->quantity = 1 + (int32_t)rng_below(rng, 10);
}

static void gen_quantity(run_t *run, pn_command_t *cmd) {
    const pn_ref_stream_t *ms = pn_ref_find(run->ref, cmd->sku_id, cmd->node_id);
    cmd->has_quantity = true;
    switch (cmd->type) {
    case PN_CMD_UPDATE:
        cmd->quantity = gen_update_qty(run, ms);
        break;
    case PN_CMD_RESERVE:
        cmd->quantity = gen_reserve_qty(run, ms);
        break;
    default:
        gen_release_qty(run, ms, cmd);
        break;
    }
}

/* Mostly aim a cancel/ship at an order that holds something here. */
static void gen_held_order(run_t *run, pn_command_t *cmd) {
    const pn_ref_stream_t *ms = pn_ref_find(run->ref, cmd->sku_id, cmd->node_id);
    if ((cmd->type != PN_CMD_CANCEL && cmd->type != PN_CMD_SHIP) || !ms ||
        ms->n_orders == 0 || !rng_pct(&run->rng, 85))
        return;
    const pn_ref_order_t *o =
        &ms->orders[rng_below(&run->rng, (uint32_t)ms->n_orders)];
    /* A copy: the model's table moves when entries are dropped. */
    cmd->order_id = arena_pad(&run->arena, (pn_str_t){o->id, o->len}, '?',
                              o->len);
}

static pn_command_type_t gen_type(rng_t *rng) {
    uint32_t r = rng_below(rng, 100);
    if (r < 25)
        return PN_CMD_UPDATE;
    if (r < 65)
        return PN_CMD_RESERVE;
    return r < 82 ? PN_CMD_CANCEL : PN_CMD_SHIP;
}

static void set_type(run_t *run, pn_command_t *cmd, pn_command_type_t type) {
    cmd->type = type;
    if (type == PN_CMD_UPDATE)
        cmd->order_id = PN_STR_NULL;
    else if (cmd->order_id.ptr == NULL)
        cmd->order_id = gen_order(run);
}

/* Breaks one id of the command (INVALID_COMMAND cases). */
static void gen_bad(run_t *run, pn_command_t *cmd) {
    arena_t *arena = &run->arena;
    switch (rng_below(&run->rng, 12)) {
    case 0:
        cmd->id = LIT("");
        break;
    case 1:
        cmd->id = PN_STR_NULL;
        break;
    case 2:
        cmd->id = arena_pad(arena, cmd->id, 'L', PN_ID_MAX_BYTES + 1);
        break;
    case 3:
        cmd->sku_id = LIT("");
        break;
    case 4:
        cmd->node_id =
            arena_printf(arena, "%.*s|x", (int)cmd->node_id.len,
                         cmd->node_id.ptr ? cmd->node_id.ptr : "");
        break;
    case 5:
        cmd->sku_id = LIT("sku|1");
        break;
    case 6:
    case 7:
        if (cmd->type == PN_CMD_UPDATE)
            set_type(run, cmd, PN_CMD_RESERVE);
        cmd->order_id = rng_pct(&run->rng, 50) ? LIT("") : PN_STR_NULL;
        break;
    case 8:
        if (cmd->type == PN_CMD_UPDATE)
            set_type(run, cmd, PN_CMD_SHIP);
        cmd->order_id = arena_pad(arena, LIT("O"), 'o', PN_ID_MAX_BYTES + 1);
        break;
    case 9:
        cmd->sku_id = arena_pad(arena, LIT("S"), 's', PN_ID_MAX_BYTES + 1);
        break;
    case 10:
        cmd->node_id = arena_pad(arena, LIT("N"), 'n', PN_ID_MAX_BYTES + 1);
        break;
    default:
        cmd->node_id = LIT("");
        break;
    }
}

/* Re-sends an earlier command with the same id, sometimes changed. */
static void gen_duplicate(run_t *run, size_t step, pn_command_t *cmd) {
    rng_t *rng = &run->rng;
    *cmd = run->cmds[rng_below(rng, (uint32_t)step)];
    if (rng_pct(rng, 55))
        return;
    switch (rng_below(rng, 7)) {
    case 0:
        gen_quantity(run, cmd);
        break;
    case 1:
        set_type(run, cmd, gen_type(rng));
        gen_quantity(run, cmd);
        break;
    case 2:
        if (cmd->type != PN_CMD_UPDATE)
            cmd->order_id = gen_order(run);
        break;
    case 3: {
        uint32_t i = rng_below(rng, (uint32_t)run->n_streams);
        cmd->sku_id = run->sku[i]; /* same id on another stream is new */
        cmd->node_id = run->node[i];
        break;
    }
    case 4:
        cmd->by = arena_printf(&run->arena, "retry-%u", rng_below(rng, 9));
        cmd->at_ms = run->at_ms;
        break;
    case 5:
        if (cmd->type != PN_CMD_UPDATE)
            cmd->order_id = LIT(""); /* the prior still decides */
        break;
    default:
        gen_bad(run, cmd);
        break;
    }
}

static void gen_command(run_t *run, size_t step, pn_command_t *cmd) {
    rng_t *rng = &run->rng;
    run->at_ms += 1 + rng_below(rng, 60000);
    memset(cmd, 0, sizeof *cmd);
    if (step > 0 && rng_pct(rng, 14)) {
        gen_duplicate(run, step, cmd);
        return;
    }
    uint32_t s = rng_below(rng, (uint32_t)run->n_streams);
    cmd->sku_id = run->sku[s];
    cmd->node_id = run->node[s];
    const pn_ref_stream_t *ms = pn_ref_find(run->ref, cmd->sku_id, cmd->node_id);
    /* A stream starts empty: stock it first, most of the time. */
    bool empty = !ms || ms->on_hand == 0;
    set_type(run, cmd, empty && rng_pct(rng, 50) ? PN_CMD_UPDATE : gen_type(rng));
    pn_str_t id = arena_printf(&run->arena, "cmd-%zu", step);
    cmd->id = rng_pct(rng, 4) ? arena_pad(&run->arena, id, 'i', PN_ID_MAX_BYTES)
                              : id;
    cmd->by = arena_printf(&run->arena, "user-%u", rng_below(rng, 5));
    cmd->at_ms = run->at_ms;
    gen_held_order(run, cmd);
    gen_quantity(run, cmd);
    if (rng_pct(rng, 8))
        gen_bad(run, cmd);
}

/* ------------------------------------------------------------- checks */

static bool check_outcome(const run_t *run, size_t step,
                          const pn_outcome_t *out, const pn_ref_result_t *exp) {
    EXPECT_EQ(run, step, out->command_type, exp->command_type);
    EXPECT_EQ(run, step, out->status, exp->status);
    EXPECT_EQ(run, step, out->reason, exp->reason);
    EXPECT_EQ(run, step, out->duplicate, exp->duplicate);
    EXPECT_EQ(run, step, out->version, exp->version);
    EXPECT_EQ(run, step, out->on_hand, exp->on_hand);
    EXPECT_EQ(run, step, out->reserved, exp->reserved);
    EXPECT_EQ(run, step, out->available, exp->available);
    return true;
}

static bool check_event(const run_t *run, size_t step, const pn_command_t *cmd,
                        const pn_state_t *state, const pn_event_t *ev,
                        const pn_ref_result_t *exp) {
    EXPECT_EQ(run, step, ev->type, exp->event_type);
    EXPECT_EQ(run, step, ev->version, state->version + 1);
    EXPECT_EQ(run, step, ev->version, exp->event_version);
    EXPECT_EQ(run, step, ev->quantity, exp->event_quantity);
    if (ev->type == PN_EVT_UPDATED) {
        EXPECT_EQ(run, step, ev->previous_quantity,
                  exp->event_previous_quantity);
        EXPECT_EQ(run, step, ev->order_id.len, 0);
    } else {
        EXPECT_STR(run, step, ev->order_id, cmd->order_id);
    }
    EXPECT_STR(run, step, ev->sku_id, cmd->sku_id);
    EXPECT_STR(run, step, ev->node_id, cmd->node_id);
    EXPECT_STR(run, step, ev->command_id, cmd->id);
    EXPECT_STR(run, step, ev->by, cmd->by);
    EXPECT_EQ(run, step, ev->at_ms, cmd->at_ms);
    return true;
}

static int order_cmp(const pn_reservation_t *a, const pn_reservation_t *b) {
    size_t n = a->order_id_len < b->order_id_len ? a->order_id_len
                                                 : b->order_id_len;
    int c = memcmp(a->order_id, b->order_id, n);
    if (c)
        return c;
    return a->order_id_len < b->order_id_len ? -1
           : a->order_id_len > b->order_id_len ? 1
                                                : 0;
}

/* Invariants of a real state, and equality with the model's stream. */
static bool check_state(const run_t *run, size_t step, const pn_state_t *st,
                        const pn_ref_stream_t *ms) {
    int64_t sum = 0;
    EXPECT_TRUE(run, step, ms != NULL);
    for (size_t i = 0; i < st->n_reservations; i++) {
        const pn_reservation_t *r = &st->reservations[i];
        EXPECT_TRUE(run, step, r->quantity > 0);
        EXPECT_TRUE(run, step, r->order_id[r->order_id_len] == '\0');
        if (i > 0)
            EXPECT_TRUE(run, step,
                        order_cmp(&st->reservations[i - 1], r) < 0);
        pn_str_t order = {r->order_id, r->order_id_len};
        EXPECT_EQ(run, step, r->quantity, pn_ref_held(ms, order));
        sum += r->quantity;
    }
    EXPECT_EQ(run, step, st->reserved, sum);
    EXPECT_TRUE(run, step, st->on_hand >= 0);
    EXPECT_EQ(run, step, st->n_reservations, ms->n_orders);
    EXPECT_EQ(run, step, st->version, ms->version);
    EXPECT_EQ(run, step, st->on_hand, ms->on_hand);
    EXPECT_EQ(run, step, st->reserved, pn_ref_reserved(ms));
    return true;
}

static bool check_against_prior(const run_t *run, size_t step,
                                const pn_decision_t *dec,
                                const pn_outcome_t *prior) {
    EXPECT_EQ(run, step, dec->has_event, false);
    EXPECT_EQ(run, step, dec->outcome.duplicate, true);
    EXPECT_EQ(run, step, dec->outcome.command_type, prior->command_type);
    EXPECT_EQ(run, step, dec->outcome.status, prior->status);
    EXPECT_EQ(run, step, dec->outcome.reason, prior->reason);
    EXPECT_EQ(run, step, dec->outcome.version, prior->version);
    EXPECT_EQ(run, step, dec->outcome.on_hand, prior->on_hand);
    EXPECT_EQ(run, step, dec->outcome.reserved, prior->reserved);
    EXPECT_EQ(run, step, dec->outcome.available, prior->available);
    return true;
}

/* evolve must refuse an event whose version is not state.version + 1. */
static bool check_version_gap_refused(const run_t *run, size_t step,
                                      pn_state_t *st, const pn_event_t *ev) {
    pn_event_t bad = *ev;
    int64_t version = st->version, on_hand = st->on_hand;
    int64_t reserved = st->reserved;
    bad.version = ev->version + 1 + (int64_t)(step % 2) * -2;
    EXPECT_EQ(run, step, pn_domain_evolve(st, &bad), PN_ERR_INVALID_ARG);
    EXPECT_EQ(run, step, st->version, version);
    EXPECT_EQ(run, step, st->on_hand, on_hand);
    EXPECT_EQ(run, step, st->reserved, reserved);
    return true;
}

static void count(stats_t *stats, const pn_decision_t *dec,
                  const pn_command_t *cmd) {
    const pn_outcome_t *out = &dec->outcome;
    stats->steps++;
    if (out->duplicate) {
        stats->duplicates++;
        stats->dup_rejected += out->status == PN_STATUS_REJECTED;
        return;
    }
    if (out->status == PN_STATUS_ACCEPTED)
        stats->accepted[out->command_type]++;
    else if (out->reason >= 0 && out->reason < PN_REASON__COUNT)
        stats->rejected[out->reason]++;
    if (dec->has_event) {
        stats->events[dec->event.type]++;
        if (dec->event.quantity == INT32_MAX &&
            dec->event.type == PN_EVT_RESERVED)
            stats->max_qty_reserved++;
    } else if (out->status == PN_STATUS_ACCEPTED &&
               cmd->type == PN_CMD_UPDATE) {
        stats->update_no_event++;
    }
    if (dec->has_event && !cmd->has_quantity)
        stats->null_qty_accepted++;
    if (out->available < 0)
        stats->negative_available++;
}

/* One command: model, real decide with the engine's prior, evolve, checks. */
static bool exec_step(run_t *run, size_t step) {
    const pn_command_t *cmd = &run->cmds[step];
    pn_state_t zero;
    pn_state_init(&zero);
    slot_t *slot = NULL;
    if (stream_ids_usable(cmd->sku_id, cmd->node_id)) {
        slot = slot_for(run, cmd->sku_id, cmd->node_id);
        EXPECT_TRUE(run, step, slot != NULL);
    }
    pn_state_t *st = slot ? &slot->state : &zero;
    const pn_outcome_t *prior =
        slot && id_usable(cmd->id) ? prior_for(slot, cmd->id) : NULL;

    pn_ref_result_t exp;
    EXPECT_TRUE(run, step, pn_ref_execute(run->ref, cmd, &exp));

    pn_decision_t *dec = &run->decisions[step];
    memset(dec, 0, sizeof *dec);
    int64_t version_before = st->version;
    pn_domain_decide(st, cmd, prior, dec);
    EXPECT_EQ(run, step, st->version, version_before);

    if (!check_outcome(run, step, &dec->outcome, &exp))
        return false;
    EXPECT_EQ(run, step, dec->has_event, exp.has_event);
    if (prior && !check_against_prior(run, step, dec, prior))
        return false;

    if (dec->has_event) {
        EXPECT_TRUE(run, step, slot != NULL);
        if (!check_event(run, step, cmd, st, &dec->event, &exp))
            return false;
        if (step % 16 == 5 &&
            !check_version_gap_refused(run, step, st, &dec->event))
            return false;
        EXPECT_EQ(run, step, pn_domain_evolve(st, &dec->event), PN_ERR_OK);
        EXPECT_EQ(run, step, st->version, version_before + 1);
        slot->events[slot->n_events++] = dec->event;
        if (dec->event.type == PN_EVT_RESERVED)
            EXPECT_TRUE(run, step, pn_state_available(st) >= 0);
    } else {
        EXPECT_EQ(run, step, st->version, version_before);
    }

    if (!dec->outcome.duplicate) {
        /* The outcome reports the state after the command. */
        EXPECT_EQ(run, step, dec->outcome.version, st->version);
        EXPECT_EQ(run, step, dec->outcome.on_hand, st->on_hand);
        EXPECT_EQ(run, step, dec->outcome.reserved, st->reserved);
        EXPECT_EQ(run, step, dec->outcome.available, pn_state_available(st));
    }
    if (slot) {
        const pn_ref_stream_t *ms =
            pn_ref_find(run->ref, cmd->sku_id, cmd->node_id);
        if (!check_state(run, step, st, ms))
            return false;
        if (!prior && id_usable(cmd->id)) {
            slot->seen_id[slot->n_seen] = cmd->id;
            slot->seen_outcome[slot->n_seen++] = dec->outcome;
        }
    } else {
        EXPECT_EQ(run, step, dec->outcome.reason, PN_REASON_INVALID_COMMAND);
    }
    if (run->stats) {
        count(run->stats, dec, cmd);
        run->stats->events_checked += dec->has_event;
    }
    return true;
}

/* fold(events of the stream from the zero state) == the current state. */
static bool check_folds(run_t *run) {
    size_t last = run->n_steps ? run->n_steps - 1 : 0;
    for (size_t i = 0; i < run->n_slots; i++) {
        slot_t *slot = &run->slots[i];
        pn_state_t fold;
        pn_state_init(&fold);
        bool ok = true;
        for (size_t e = 0; e < slot->n_events && ok; e++) {
            ok = slot->events[e].version == (int64_t)e + 1 &&
                 pn_domain_evolve(&fold, &slot->events[e]) == PN_ERR_OK;
        }
        ok = ok && pn_state_eq(&fold, &slot->state) &&
             fold.version == (int64_t)slot->n_events;
        pn_state_clear(&fold);
        EXPECT_TRUE(run, last, ok);
        if (run->stats)
            run->stats->folds++;
    }
    return true;
}

static bool run_sequence(run_t *run, uint64_t seed, stats_t *stats) {
    run->seed = seed;
    run->rng.s = seed;
    run->arena.used = 0;
    run->arena.overflow = false;
    run->at_ms = 1700000000000 + (int64_t)rng_below(&run->rng, 1000000);
    run->n_slots = 0;
    run->stats = stats;
    pn_ref_reset(run->ref);
    gen_streams(run);
    run->n_steps = MIN_STEPS + rng_below(&run->rng, MAX_STEPS - MIN_STEPS + 1);
    for (size_t step = 0; step < run->n_steps; step++) {
        gen_command(run, step, &run->cmds[step]);
        EXPECT_TRUE(run, step, !run->arena.overflow);
        if (!exec_step(run, step))
            return false;
    }
    if (stats)
        stats->sequences++;
    return check_folds(run);
}

static bool same_event(const run_t *run, size_t step, const pn_event_t *a,
                       const pn_event_t *b) {
    EXPECT_EQ(run, step, a->type, b->type);
    EXPECT_STR(run, step, a->sku_id, b->sku_id);
    EXPECT_STR(run, step, a->node_id, b->node_id);
    EXPECT_EQ(run, step, a->version, b->version);
    EXPECT_STR(run, step, a->command_id, b->command_id);
    EXPECT_STR(run, step, a->by, b->by);
    EXPECT_EQ(run, step, a->at_ms, b->at_ms);
    EXPECT_STR(run, step, a->order_id, b->order_id);
    EXPECT_EQ(run, step, a->quantity, b->quantity);
    EXPECT_EQ(run, step, a->previous_quantity, b->previous_quantity);
    return true;
}

/* The second run of a seed must decide exactly as the first. */
static bool same_decisions(const run_t *a, const run_t *b) {
    EXPECT_EQ(a, 0, a->n_steps, b->n_steps);
    for (size_t i = 0; i < a->n_steps; i++) {
        const pn_decision_t *x = &a->decisions[i], *y = &b->decisions[i];
        EXPECT_EQ(a, i, x->outcome.command_type, y->outcome.command_type);
        EXPECT_EQ(a, i, x->outcome.status, y->outcome.status);
        EXPECT_EQ(a, i, x->outcome.reason, y->outcome.reason);
        EXPECT_EQ(a, i, x->outcome.duplicate, y->outcome.duplicate);
        EXPECT_EQ(a, i, x->outcome.version, y->outcome.version);
        EXPECT_EQ(a, i, x->outcome.on_hand, y->outcome.on_hand);
        EXPECT_EQ(a, i, x->outcome.reserved, y->outcome.reserved);
        EXPECT_EQ(a, i, x->outcome.available, y->outcome.available);
        EXPECT_EQ(a, i, x->has_event, y->has_event);
        if (x->has_event && !same_event(a, i, &x->event, &y->event))
            return false;
    }
    return true;
}

static uint64_t env_u64(const char *name, uint64_t dflt) {
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 0);
    if (!end || *end != '\0') {
        fprintf(stderr, "props: ignoring %s=%s (not a number)\n", name, v);
        return dflt;
    }
    return (uint64_t)n;
}

static run_t *run_new(void) {
    run_t *run = calloc(1, sizeof *run);
    if (run && !(run->ref = calloc(1, sizeof *run->ref))) {
        free(run);
        run = NULL;
    }
    return run;
}

static void run_free(run_t *run) {
    if (!run)
        return;
    run_release(run);
    free(run->ref);
    free(run);
}

static void print_stats(const stats_t *s, double secs) {
    fprintf(stderr,
            "\nprops: %" PRIu64 " sequences, %" PRIu64 " commands (x2 for "
            "determinism) in %.2f s; %" PRIu64 " duplicates (%" PRIu64
            " rejected), %" PRIu64 " folds\n"
            "  accepted UPDATE %" PRIu64 " RESERVE %" PRIu64 " CANCEL %" PRIu64
            " SHIP %" PRIu64 "; update without event %" PRIu64
            ", null quantity %" PRIu64 "\n",
            s->sequences, s->steps, secs, s->duplicates, s->dup_rejected,
            s->folds, s->accepted[PN_CMD_UPDATE], s->accepted[PN_CMD_RESERVE],
            s->accepted[PN_CMD_CANCEL], s->accepted[PN_CMD_SHIP],
            s->update_no_event, s->null_qty_accepted);
    fprintf(stderr, "  rejected:");
    for (int r = 0; r < PN_REASON__COUNT; r++)
        fprintf(stderr, " %s %" PRIu64, pn_reason_name((pn_reason_t)r),
                s->rejected[r]);
    fprintf(stderr, "\n  events:");
    for (int e = 0; e < PN_EVT__COUNT; e++)
        fprintf(stderr, " %s %" PRIu64, pn_event_type_name((pn_event_type_t)e),
                s->events[e]);
    fprintf(stderr,
            "\n  outcomes with negative available %" PRIu64
            ", reserves of INT32_MAX %" PRIu64 "\n",
            s->negative_available, s->max_qty_reserved);
}

/* The generator must reach every row, or the property proves little. */
static void check_coverage(const stats_t *s) {
    for (int t = 0; t < PN_CMD__COUNT; t++)
        PN_ASSERT(s->accepted[t] > 0);
    for (int r = 0; r < PN_REASON__COUNT; r++)
        PN_ASSERT(s->rejected[r] > 0);
    for (int e = 0; e < PN_EVT__COUNT; e++)
        PN_ASSERT(s->events[e] > 0);
    PN_ASSERT(s->duplicates > 0 && s->dup_rejected > 0);
    PN_ASSERT(s->update_no_event > 0 && s->null_qty_accepted > 0);
    PN_ASSERT(s->negative_available > 0 && s->max_qty_reserved > 0);
}

static void test_random_sequences(void) {
    uint64_t base = env_u64("PN_PROPS_SEED", 1);
    uint64_t runs = env_u64("PN_PROPS_RUNS", 10000);
    run_t *a = run_new(), *b = run_new();
    stats_t stats;
    memset(&stats, 0, sizeof stats);
    PN_REQUIRE(a && b);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned failed = 0;
    for (uint64_t i = 0; i < runs && failed < MAX_FAILED_SEQUENCES; i++) {
        uint64_t seed = base + i;
        bool ok = run_sequence(a, seed, &stats) &&
                  run_sequence(b, seed, NULL) && same_decisions(a, b);
        run_release(a);
        run_release(b);
        failed += !ok;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (failed == MAX_FAILED_SEQUENCES)
        fprintf(stderr, "props: stopped after %u failing sequences\n", failed);
    print_stats(&stats, (double)(t1.tv_sec - t0.tv_sec) +
                            (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (runs >= 1000 && !failed)
        check_coverage(&stats);
    run_free(a);
    run_free(b);
}

/* ---------------------------------------------- targeted: idempotency */

static pn_command_t mk(pn_command_type_t type, const char *id,
                      const char *order, bool has_q, int32_t q) {
    pn_command_t cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = type;
    cmd.id = pn_str_c(id);
    cmd.order_id = order ? pn_str_c(order) : PN_STR_NULL;
    cmd.sku_id = LIT("sku-t");
    cmd.node_id = LIT("node-t");
    cmd.by = LIT("tester");
    cmd.has_quantity = has_q;
    cmd.quantity = q;
    cmd.at_ms = 1700000000000;
    return cmd;
}

/* decide + evolve with no prior; returns the decision. */
static pn_decision_t apply(pn_state_t *st, const pn_command_t *cmd) {
    pn_decision_t dec;
    memset(&dec, 0, sizeof dec);
    pn_domain_decide(st, cmd, NULL, &dec);
    if (dec.has_event)
        PN_REQUIRE_OK(pn_domain_evolve(st, &dec.event));
    return dec;
}

static void assert_outcome(const pn_outcome_t *o, pn_command_type_t type,
                           pn_status_t status, pn_reason_t reason, bool dup,
                           int64_t version, int64_t on_hand, int64_t reserved) {
    PN_ASSERT_EQ_INT(o->command_type, type);
    PN_ASSERT_EQ_INT(o->status, status);
    PN_ASSERT_EQ_INT(o->reason, reason);
    PN_ASSERT_EQ_INT(o->duplicate, dup);
    PN_ASSERT_EQ_INT(o->version, version);
    PN_ASSERT_EQ_INT(o->on_hand, on_hand);
    PN_ASSERT_EQ_INT(o->reserved, reserved);
    PN_ASSERT_EQ_INT(o->available, on_hand - reserved);
}

static void test_prior_replayed_after_state_changed(void) {
    pn_state_t st;
    pn_state_init(&st);
    pn_command_t up = mk(PN_CMD_UPDATE, "c1", NULL, true, 10);
    pn_command_t res = mk(PN_CMD_RESERVE, "c2", "o-1", true, 4);
    pn_command_t down = mk(PN_CMD_UPDATE, "c3", NULL, true, 3);
    apply(&st, &up);
    pn_decision_t first = apply(&st, &res);
    assert_outcome(&first.outcome, PN_CMD_RESERVE, PN_STATUS_ACCEPTED,
                   PN_REASON_NONE, false, 2, 10, 4);
    PN_ASSERT(first.has_event);
    apply(&st, &down);
    PN_ASSERT_EQ_INT(st.version, 3);

    /* Same command again, the state has moved on: the old outcome. */
    pn_decision_t again;
    pn_domain_decide(&st, &res, &first.outcome, &again);
    assert_outcome(&again.outcome, PN_CMD_RESERVE, PN_STATUS_ACCEPTED,
                   PN_REASON_NONE, true, 2, 10, 4);
    PN_ASSERT(!again.has_event);

    /* Same id, another payload (even another type): still the old one. */
    pn_command_t other = mk(PN_CMD_CANCEL, "c2", "o-9", false, 0);
    pn_domain_decide(&st, &other, &first.outcome, &again);
    assert_outcome(&again.outcome, PN_CMD_RESERVE, PN_STATUS_ACCEPTED,
                   PN_REASON_NONE, true, 2, 10, 4);
    PN_ASSERT(!again.has_event);
    PN_ASSERT_EQ_INT(st.version, 3);
    PN_ASSERT_EQ_INT(st.reserved, 4);
    pn_state_clear(&st);
}

static void test_rejected_prior_replayed_as_rejected(void) {
    pn_state_t st;
    pn_state_init(&st);
    pn_command_t res = mk(PN_CMD_RESERVE, "r1", "o-1", true, 5);
    pn_decision_t first = apply(&st, &res);
    assert_outcome(&first.outcome, PN_CMD_RESERVE, PN_STATUS_REJECTED,
                   PN_REASON_INSUFFICIENT_INVENTORY, false, 0, 0, 0);
    PN_ASSERT(!first.has_event);
    pn_command_t up = mk(PN_CMD_UPDATE, "u1", NULL, true, 100);
    apply(&st, &up);

    /* Now it would succeed, but the window says it already failed. */
    pn_decision_t again;
    pn_domain_decide(&st, &res, &first.outcome, &again);
    assert_outcome(&again.outcome, PN_CMD_RESERVE, PN_STATUS_REJECTED,
                   PN_REASON_INSUFFICIENT_INVENTORY, true, 0, 0, 0);
    PN_ASSERT(!again.has_event);

    /* Outside the window (no prior) the command is decided afresh. */
    pn_domain_decide(&st, &res, NULL, &again);
    assert_outcome(&again.outcome, PN_CMD_RESERVE, PN_STATUS_ACCEPTED,
                   PN_REASON_NONE, false, 2, 100, 5);
    PN_ASSERT(again.has_event);
    PN_ASSERT_EQ_INT(again.event.version, 2);
    pn_state_clear(&st);
}

static void test_invalid_command_prior_replayed(void) {
    pn_state_t st;
    pn_state_init(&st);
    pn_command_t up = mk(PN_CMD_UPDATE, "u1", NULL, true, 7);
    apply(&st, &up);
    pn_command_t bad = mk(PN_CMD_SHIP, "s1", "", false, 0);
    pn_decision_t first = apply(&st, &bad);
    assert_outcome(&first.outcome, PN_CMD_SHIP, PN_STATUS_REJECTED,
                   PN_REASON_INVALID_COMMAND, false, 1, 7, 0);
    PN_ASSERT(!first.has_event);
    pn_command_t res = mk(PN_CMD_RESERVE, "r1", "o-1", true, 2);
    apply(&st, &res);

    /* Fixed payload, same id: the rejection is replayed. */
    pn_command_t fixed = mk(PN_CMD_SHIP, "s1", "o-1", false, 0);
    pn_decision_t again;
    pn_domain_decide(&st, &fixed, &first.outcome, &again);
    assert_outcome(&again.outcome, PN_CMD_SHIP, PN_STATUS_REJECTED,
                   PN_REASON_INVALID_COMMAND, true, 1, 7, 0);
    PN_ASSERT(!again.has_event);
    pn_state_clear(&st);
}

/*
 * A hand-computed walk through the table (expected values worked out from
 * DESIGN.md by hand), checked against the model and the real domain both,
 * so the model itself is tested.
 */
typedef struct row {
    pn_command_t cmd;
    pn_status_t status;
    pn_reason_t reason;
    bool dup;
    int64_t version, on_hand, reserved;
    int ev_type; /* -1: no event */
    int32_t ev_qty;
} row_t;

static void test_hand_computed_walk(void) {
    const pn_status_t A = PN_STATUS_ACCEPTED, R = PN_STATUS_REJECTED;
    pn_command_t bad_node = mk(PN_CMD_UPDATE, "x2", NULL, true, 1);
    bad_node.node_id = LIT("n|1");
    const row_t rows[] = {
        {mk(PN_CMD_UPDATE, "a", NULL, true, 10), A, PN_REASON_NONE, false, 1, 10, 0, PN_EVT_UPDATED, 10},
        {mk(PN_CMD_UPDATE, "b", NULL, true, 10), A, PN_REASON_NONE, false, 1, 10, 0, -1, 0},
        {mk(PN_CMD_UPDATE, "b2", NULL, true, -1), R, PN_REASON_INVALID_QUANTITY, false, 1, 10, 0, -1, 0},
        {mk(PN_CMD_RESERVE, "c", "o1", true, 0), R, PN_REASON_INVALID_QUANTITY, false, 1, 10, 0, -1, 0},
        {mk(PN_CMD_RESERVE, "d", "o1", true, 11), R, PN_REASON_INSUFFICIENT_INVENTORY, false, 1, 10, 0, -1, 0},
        {mk(PN_CMD_RESERVE, "e", "o1", true, 6), A, PN_REASON_NONE, false, 2, 10, 6, PN_EVT_RESERVED, 6},
        {mk(PN_CMD_UPDATE, "f", NULL, true, 4), A, PN_REASON_NONE, false, 3, 4, 6, PN_EVT_UPDATED, 4},
        {mk(PN_CMD_RESERVE, "g", "o2", true, 1), R, PN_REASON_INSUFFICIENT_INVENTORY, false, 3, 4, 6, -1, 0},
        {mk(PN_CMD_CANCEL, "h", "o2", false, 0), R, PN_REASON_NO_RESERVATION, false, 3, 4, 6, -1, 0},
        {mk(PN_CMD_CANCEL, "i", "o2", true, -3), R, PN_REASON_NO_RESERVATION, false, 3, 4, 6, -1, 0},
        {mk(PN_CMD_CANCEL, "j", "o1", true, 0), R, PN_REASON_INVALID_QUANTITY, false, 3, 4, 6, -1, 0},
        {mk(PN_CMD_SHIP, "k", "o1", true, 7), R, PN_REASON_EXCEEDS_RESERVATION, false, 3, 4, 6, -1, 0},
        {mk(PN_CMD_SHIP, "l", "o1", true, 5), A, PN_REASON_NONE, false, 4, 0, 1, PN_EVT_SHIPPED, 5},
        {mk(PN_CMD_RESERVE, "e", "o3", true, 1), A, PN_REASON_NONE, true, 2, 10, 6, -1, 0},
        {mk(PN_CMD_CANCEL, "m", "o1", false, 0), A, PN_REASON_NONE, false, 5, 0, 0, PN_EVT_CANCELLED, 1},
        {mk(PN_CMD_RESERVE, "", "o1", true, 1), R, PN_REASON_INVALID_COMMAND, false, 5, 0, 0, -1, 0},
        {mk(PN_CMD_RESERVE, "n", "", true, 1), R, PN_REASON_INVALID_COMMAND, false, 5, 0, 0, -1, 0},
        {mk(PN_CMD_UPDATE, "n", NULL, true, 9), R, PN_REASON_INVALID_COMMAND, true, 5, 0, 0, -1, 0},
        {mk(PN_CMD_UPDATE, "o", NULL, true, INT32_MAX), A, PN_REASON_NONE, false, 6, INT32_MAX, 0, PN_EVT_UPDATED, INT32_MAX},
        {mk(PN_CMD_RESERVE, "p", "o|1", true, INT32_MAX), A, PN_REASON_NONE, false, 7, INT32_MAX, INT32_MAX, PN_EVT_RESERVED, INT32_MAX},
        {mk(PN_CMD_SHIP, "q", "o|1", false, 0), A, PN_REASON_NONE, false, 8, 0, 0, PN_EVT_SHIPPED, INT32_MAX},
        {bad_node, R, PN_REASON_INVALID_COMMAND, false, 0, 0, 0, -1, 0},
    };
    pn_ref_t *ref = calloc(1, sizeof *ref);
    PN_REQUIRE(ref != NULL);
    pn_ref_reset(ref);
    pn_state_t st, zero;
    pn_state_init(&st);
    pn_state_init(&zero);
    pn_outcome_t seen[sizeof rows / sizeof rows[0]];
    const char *seen_id[sizeof rows / sizeof rows[0]];
    size_t n_seen = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row_t *w = &rows[i];
        unsigned failures_before = CU_get_number_of_failures();
        bool stream_ok = stream_ids_usable(w->cmd.sku_id, w->cmd.node_id);
        pn_ref_result_t m;
        PN_REQUIRE(pn_ref_execute(ref, &w->cmd, &m));
        PN_ASSERT_EQ_INT(m.status, w->status);
        PN_ASSERT_EQ_INT(m.reason, w->reason);
        PN_ASSERT_EQ_INT(m.duplicate, w->dup);
        PN_ASSERT_EQ_INT(m.version, w->version);
        PN_ASSERT_EQ_INT(m.on_hand, w->on_hand);
        PN_ASSERT_EQ_INT(m.reserved, w->reserved);
        PN_ASSERT_EQ_INT(m.available, w->on_hand - w->reserved);
        PN_ASSERT_EQ_INT(m.has_event ? (int)m.event_type : -1, w->ev_type);
        if (m.has_event)
            PN_ASSERT_EQ_INT(m.event_quantity, w->ev_qty);

        const pn_outcome_t *prior = NULL;
        for (size_t k = 0; k < n_seen && stream_ok; k++)
            if (strcmp(seen_id[k], w->cmd.id.ptr) == 0)
                prior = &seen[k];
        pn_decision_t d;
        pn_domain_decide(stream_ok ? &st : &zero, &w->cmd, prior, &d);
        if (d.has_event)
            PN_REQUIRE_OK(pn_domain_evolve(&st, &d.event));
        PN_ASSERT_EQ_INT(d.outcome.status, w->status);
        PN_ASSERT_EQ_INT(d.outcome.reason, w->reason);
        PN_ASSERT_EQ_INT(d.outcome.duplicate, w->dup);
        PN_ASSERT_EQ_INT(d.outcome.version, w->version);
        PN_ASSERT_EQ_INT(d.outcome.on_hand, w->on_hand);
        PN_ASSERT_EQ_INT(d.outcome.reserved, w->reserved);
        PN_ASSERT_EQ_INT(d.has_event ? (int)d.event.type : -1, w->ev_type);
        if (d.has_event)
            PN_ASSERT_EQ_INT(d.event.quantity, w->ev_qty);
        if (CU_get_number_of_failures() != failures_before)
            fprintf(stderr, "\nwalk: row %zu (id \"%s\") failed\n", i,
                    w->cmd.id.ptr);
        if (stream_ok && !prior && w->cmd.id.len > 0) {
            seen_id[n_seen] = w->cmd.id.ptr;
            seen[n_seen++] = d.outcome;
        }
    }
    pn_state_clear(&st);
    free(ref);
}

static const pn_test_case_t props_cases[] = {
    {"hand-computed walk: model and domain", test_hand_computed_walk},
    {"prior replayed after the state changed",
     test_prior_replayed_after_state_changed},
    {"rejected prior replayed as rejected",
     test_rejected_prior_replayed_as_rejected},
    {"INVALID_COMMAND prior replayed", test_invalid_command_prior_replayed},
    {"random sequences match the reference model", test_random_sequences},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"domain_props", props_cases},
                                          {NULL, NULL}};
