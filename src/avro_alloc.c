/*
 * Avro C allocates through one global function. Its default is realloc
 * and free, and the codec pays it about twelve times per command: every
 * string avro_value_read decodes gets a fresh buffer (the previous one is
 * freed), and so do the wrappers around them. This allocator keeps up to
 * CACHE_MAX freed small blocks per size class and thread, and hands them
 * back before asking malloc.
 *
 * A block's class comes from malloc_usable_size, not from the size Avro
 * says it had: every block is an ordinary malloc block, so one allocated
 * before the allocator was installed may be cached, any block may still
 * go to free(), and a wrong size from Avro cannot put a block in a class
 * it is too small for.
 */
#include "avro_alloc.h"

#include <avro.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CLASS_BYTES 32
#define N_CLASSES 8 /* blocks of 32 .. 287 usable bytes */
#define CACHE_MAX 64

typedef struct free_block {
    struct free_block *next;
} free_block_t;

typedef struct cache {
    free_block_t *head[N_CLASSES];
    unsigned count[N_CLASSES];
    bool registered; /* its blocks are freed when the thread exits */
} cache_t;

static _Thread_local cache_t tl_cache;
static pthread_key_t cache_key;
static bool cache_key_ok;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

/* At thread exit. A block freed after it (another destructor) registers
 * the cache again, and the thread's destructors run once more. */
static void cache_drain(void *arg) {
    cache_t *c = arg;
    c->registered = false;
    for (int k = 0; k < N_CLASSES; k++) {
        while (c->head[k]) {
            free_block_t *b = c->head[k];
            c->head[k] = b->next;
            free(b);
        }
        c->count[k] = 0;
    }
}

/* The class whose every block can hold n bytes; N_CLASSES when none. */
static int class_for_request(size_t n) {
    size_t k = (n + CLASS_BYTES - 1) / CLASS_BYTES;
    return k == 0 ? 0 : k <= N_CLASSES ? (int)k - 1 : N_CLASSES;
}

static void *acquire(size_t n) {
    int k = class_for_request(n);
    cache_t *c = &tl_cache;
    if (k < N_CLASSES && c->head[k]) {
        free_block_t *b = c->head[k];
        c->head[k] = b->next;
        c->count[k]--;
        return b;
    }
    /* A miss allocates the class's full size, so the block comes back to
     * the same class when it is freed. */
    return malloc(k < N_CLASSES ? (size_t)(k + 1) * CLASS_BYTES : n);
}

static void release(void *p) {
    if (!p)
        return;
    size_t usable = malloc_usable_size(p);
    size_t k = usable / CLASS_BYTES; /* usable >= k * CLASS_BYTES */
    cache_t *c = &tl_cache;
    if (k == 0 || k > N_CLASSES || c->count[k - 1] >= CACHE_MAX) {
        free(p);
        return;
    }
    if (!c->registered) {
        if (!cache_key_ok || pthread_setspecific(cache_key, c) != 0) {
            free(p); /* nothing would drain it at thread exit */
            return;
        }
        c->registered = true;
    }
    free_block_t *b = p;
    b->next = c->head[k - 1];
    c->head[k - 1] = b;
    c->count[k - 1]++;
}

static void *avro_alloc(void *user_data, void *ptr, size_t osize,
                        size_t nsize) {
    (void)user_data;
    (void)osize; /* malloc_usable_size says what the block holds */
    if (nsize == 0) {
        release(ptr);
        return NULL;
    }
    if (!ptr)
        return acquire(nsize);
    size_t usable = malloc_usable_size(ptr);
    if (usable >= nsize)
        return ptr;
    void *grown = acquire(nsize);
    if (!grown)
        return NULL; /* ptr stays valid, as with realloc */
    memcpy(grown, ptr, usable);
    release(ptr);
    return grown;
}

static void install(void) {
    cache_key_ok = pthread_key_create(&cache_key, cache_drain) == 0;
    avro_set_allocator(avro_alloc, NULL);
}

void pn_avro_alloc_install(void) { pthread_once(&install_once, install); }
