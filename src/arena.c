#include "arena.h"

#include <stdlib.h>
#include <string.h>

/* The largest block kept across resets. */
#define ARENA_KEEP_MAX ((size_t)8 << 20)

struct pn_arena_block {
    pn_arena_block_t *prev;
    size_t used;
    size_t size;
    _Alignas(16) unsigned char data[];
};

void pn_arena_init(pn_arena_t *arena, size_t block_size) {
    arena->head = NULL;
    arena->block_size = block_size ? block_size : 64 * 1024;
}

void pn_arena_free(pn_arena_t *arena) {
    pn_arena_block_t *b = arena->head;
    while (b) {
        pn_arena_block_t *prev = b->prev;
        free(b);
        b = prev;
    }
    arena->head = NULL;
}

/* Keeps one block for the next batch. When the batch outgrew the usual
 * size, the next block is one that holds all of it (up to ARENA_KEEP_MAX),
 * so a steady load settles on a single block and stops allocating. */
void pn_arena_reset(pn_arena_t *arena) {
    pn_arena_block_t *b = arena->head;
    if (!b)
        return;
    if (!b->prev) {
        b->used = 0;
        return;
    }
    size_t total = 0;
    while (b) {
        pn_arena_block_t *prev = b->prev;
        total += b->size;
        free(b);
        b = prev;
    }
    arena->head = NULL;
    if (total > ARENA_KEEP_MAX)
        total = ARENA_KEEP_MAX; /* a huge restore batch is not the norm */
    if (total > arena->block_size)
        arena->block_size = total;
}

void *pn_arena_alloc(pn_arena_t *arena, size_t n) {
    size_t need = (n + 1 + 15) & ~(size_t)15;
    pn_arena_block_t *b = arena->head;
    if (!b || b->size - b->used < need) {
        size_t size = need > arena->block_size ? need : arena->block_size;
        pn_arena_block_t *nb = malloc(sizeof *nb + size);
        if (!nb)
            return NULL;
        nb->prev = b;
        nb->used = 0;
        nb->size = size;
        arena->head = b = nb;
    }
    unsigned char *p = b->data + b->used;
    b->used += need;
    return p;
}

void *pn_arena_dup(pn_arena_t *arena, const void *data, size_t n) {
    unsigned char *p = pn_arena_alloc(arena, n);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, data, n);
    p[n] = '\0';
    return p;
}
