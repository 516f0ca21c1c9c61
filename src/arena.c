#include "arena.h"

#include <stdlib.h>
#include <string.h>

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

void pn_arena_reset(pn_arena_t *arena) {
    pn_arena_block_t *b = arena->head;
    if (!b)
        return;
    /* Keep only the oldest block: it is the one of the usual size. */
    while (b->prev) {
        pn_arena_block_t *prev = b->prev;
        free(b);
        b = prev;
    }
    b->used = 0;
    arena->head = b;
}

void *pn_arena_dup(pn_arena_t *arena, const void *data, size_t n) {
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
    if (n)
        memcpy(p, data, n);
    p[n] = '\0';
    b->used += need;
    return p;
}
