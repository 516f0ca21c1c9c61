/*
 * Field-by-field equality of decoded records, for the codec tests and the
 * fuzz target (which has no CUnit): two decodes of the same bytes, or a
 * record and its round trip, must agree on every field. A null string and
 * an empty one differ.
 */
#ifndef PN_TEST_CODEC_SAME_H
#define PN_TEST_CODEC_SAME_H

#include <stdbool.h>

#include "panther/codec.h"

static inline bool pn_same_str(pn_str_t a, pn_str_t b) {
    return (a.ptr == NULL) == (b.ptr == NULL) && pn_str_eq(a, b);
}

/* The quantity counts only when there is one. */
static inline bool pn_same_command(const pn_command_t *a,
                                   const pn_command_t *b) {
    return a->type == b->type && pn_same_str(a->id, b->id) &&
           pn_same_str(a->order_id, b->order_id) &&
           pn_same_str(a->sku_id, b->sku_id) &&
           pn_same_str(a->node_id, b->node_id) && pn_same_str(a->by, b->by) &&
           a->has_quantity == b->has_quantity &&
           (!a->has_quantity || a->quantity == b->quantity) &&
           a->at_ms == b->at_ms;
}

static inline bool pn_same_event(const pn_event_t *a, const pn_event_t *b) {
    return a->type == b->type && pn_same_str(a->sku_id, b->sku_id) &&
           pn_same_str(a->node_id, b->node_id) && a->version == b->version &&
           pn_same_str(a->command_id, b->command_id) &&
           pn_same_str(a->by, b->by) && a->at_ms == b->at_ms &&
           pn_same_str(a->order_id, b->order_id) &&
           a->quantity == b->quantity &&
           a->previous_quantity == b->previous_quantity;
}

static inline bool pn_same_outcome(const pn_outcome_record_t *x,
                                   const pn_outcome_record_t *y) {
    const pn_outcome_t *a = &x->outcome, *b = &y->outcome;
    return a->command_type == b->command_type && a->status == b->status &&
           a->reason == b->reason && a->duplicate == b->duplicate &&
           a->version == b->version && a->on_hand == b->on_hand &&
           a->reserved == b->reserved && a->available == b->available &&
           pn_same_str(x->command_id, y->command_id) &&
           pn_same_str(x->order_id, y->order_id) &&
           pn_same_str(x->sku_id, y->sku_id) &&
           pn_same_str(x->node_id, y->node_id) && x->at_ms == y->at_ms;
}

#endif
