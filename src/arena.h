/*
 * A bump allocator for the bytes of one batch (encoded events and
 * outcomes, keys): pointers stay valid until pn_arena_reset(), which keeps
 * one block (grown to the largest batch seen) for the next batch.
 * Internal to panther_core.
 */
#ifndef PANTHER_ARENA_H
#define PANTHER_ARENA_H

#include <stddef.h>

typedef struct pn_arena_block pn_arena_block_t;

typedef struct pn_arena {
    pn_arena_block_t *head; /* current block; older ones chained behind */
    size_t block_size;
} pn_arena_t;

void pn_arena_init(pn_arena_t *arena, size_t block_size);
void pn_arena_free(pn_arena_t *arena);
void pn_arena_reset(pn_arena_t *arena);

/** n bytes (uninitialised, 16-byte aligned), or NULL when out of memory. */
void *pn_arena_alloc(pn_arena_t *arena, size_t n);

/** A copy of n bytes (plus a NUL after them), or NULL when out of memory. */
void *pn_arena_dup(pn_arena_t *arena, const void *data, size_t n);

#endif
