#include "state_cache.h"

#include <stdlib.h>

#include "hashmap.h"

typedef struct cache_node {
    struct cache_node *prev, *next; /* LRU list: head = most recent */
    pn_map_entry_t *entry;          /* owns the key */
    uint64_t pin;                   /* not evictable while > durable */
    bool in_batch;                  /* checked out: not evictable either */
    pn_state_t state;
} cache_node_t;

/* Nodes of evicted, dropped or discarded entries, reused by checkout:
 * with a cache smaller than the streams, every batch evicts and creates
 * entries, so without the list it frees and allocates a node per stream.
 * Bounded so a huge batch does not keep its nodes. */
#define SPARE_NODES_MAX 4096

struct pn_state_cache {
    pn_map_t map; /* key -> cache_node_t */
    cache_node_t *head, *tail;
    size_t capacity;
    cache_node_t *spare; /* linked by next */
    size_t n_spare;
    uint64_t durable; /* pins at or below it are released */
    cache_node_t **batch; /* checked out by the open batch */
    size_t n_batch, cap_batch;
};

pn_state_cache_t *pn_state_cache_new(size_t capacity) {
    pn_state_cache_t *cache = calloc(1, sizeof *cache);
    if (!cache)
        return NULL;
    pn_map_init(&cache->map);
    cache->capacity = capacity ? capacity : 1;
    return cache;
}

static void free_node(void *value) {
    cache_node_t *node = value;
    pn_state_clear(&node->state);
    free(node);
}

static cache_node_t *new_node(pn_state_cache_t *cache) {
    cache_node_t *node = cache->spare;
    if (!node)
        return calloc(1, sizeof *node);
    cache->spare = node->next;
    cache->n_spare--;
    node->next = NULL;
    return node;
}

/* Recycles a node whose state has been cleared. */
static void recycle_node(pn_state_cache_t *cache, cache_node_t *node) {
    if (cache->n_spare >= SPARE_NODES_MAX) {
        free(node);
        return;
    }
    node->prev = NULL;
    node->next = cache->spare;
    cache->spare = node;
    cache->n_spare++;
}

void pn_state_cache_free(pn_state_cache_t *cache) {
    if (!cache)
        return;
    pn_map_free(&cache->map, free_node);
    free(cache->batch);
    while (cache->spare) {
        cache_node_t *next = cache->spare->next;
        free(cache->spare);
        cache->spare = next;
    }
    free(cache);
}

static void unlink_node(pn_state_cache_t *cache, cache_node_t *node) {
    if (node->prev)
        node->prev->next = node->next;
    else
        cache->head = node->next;
    if (node->next)
        node->next->prev = node->prev;
    else
        cache->tail = node->prev;
    node->prev = node->next = NULL;
}

static void push_front(pn_state_cache_t *cache, cache_node_t *node) {
    node->prev = NULL;
    node->next = cache->head;
    if (cache->head)
        cache->head->prev = node;
    cache->head = node;
    if (!cache->tail)
        cache->tail = node;
}

static void remove_node(pn_state_cache_t *cache, cache_node_t *node) {
    unlink_node(cache, node);
    pn_map_remove_hashed(&cache->map, node->entry->hash, node->entry->key,
                         node->entry->key_len);
}

const pn_state_t *pn_state_cache_peek(pn_state_cache_t *cache, pn_str_t key) {
    pn_map_entry_t *e = pn_map_find(&cache->map, key.ptr, key.len);
    if (!e)
        return NULL;
    cache_node_t *node = e->value;
    if (node->in_batch)
        return NULL;
    unlink_node(cache, node);
    push_front(cache, node);
    return &node->state;
}

/* The least recently used node that is neither pinned nor checked out, or
 * NULL. Those were used by the open batch or the latest commit, so they
 * sit near the head: the walk from the tail is short unless the cache is
 * smaller than a batch. */
static cache_node_t *victim(const pn_state_cache_t *cache) {
    cache_node_t *node = cache->tail;
    while (node && (node->in_batch || node->pin > cache->durable))
        node = node->prev;
    return node;
}

/* Evicts unpinned entries, least recent first, until at most `keep`
 * remain (or only pinned ones do). */
static void evict_above(pn_state_cache_t *cache, size_t keep) {
    cache_node_t *old;
    while (cache->map.count > keep && (old = victim(cache))) {
        remove_node(cache, old);
        pn_state_clear(&old->state);
        recycle_node(cache, old);
    }
}

static pn_err_t batch_push(pn_state_cache_t *cache, cache_node_t *node) {
    if (cache->n_batch == cache->cap_batch) {
        size_t cap = cache->cap_batch ? 2 * cache->cap_batch : 256;
        cache_node_t **grown = realloc(cache->batch, cap * sizeof *grown);
        if (!grown)
            return PN_ERR_NOMEM;
        cache->batch = grown;
        cache->cap_batch = cap;
    }
    cache->batch[cache->n_batch++] = node;
    node->in_batch = true;
    return PN_ERR_OK;
}

pn_state_t *pn_state_cache_checkout(pn_state_cache_t *cache, pn_str_t key,
                                    uint64_t hash, bool *found) {
    pn_map_entry_t *e = pn_map_find_hashed(&cache->map, hash, key.ptr, key.len);
    cache_node_t *node;
    if (e) {
        node = e->value;
        if (!node->in_batch && batch_push(cache, node) != PN_ERR_OK)
            return NULL;
        unlink_node(cache, node);
        push_front(cache, node);
        *found = true;
        return &node->state;
    }
    /* Room for the new entry. */
    evict_above(cache, cache->capacity - 1); /* capacity >= 1 */
    node = new_node(cache);
    if (!node)
        return NULL;
    node->pin = 0;
    node->in_batch = false;
    pn_state_init(&node->state);
    if (pn_map_insert_hashed(&cache->map, hash, key.ptr, key.len, node,
                             &node->entry) != PN_ERR_OK) {
        recycle_node(cache, node);
        return NULL;
    }
    if (batch_push(cache, node) != PN_ERR_OK) {
        pn_map_remove_hashed(&cache->map, hash, key.ptr, key.len);
        recycle_node(cache, node);
        return NULL;
    }
    push_front(cache, node);
    *found = false;
    return &node->state;
}

void pn_state_cache_cancel_checkout(pn_state_cache_t *cache,
                                    const pn_state_t *state) {
    if (!cache || cache->n_batch == 0 ||
        &cache->batch[cache->n_batch - 1]->state != state)
        return;
    cache_node_t *node = cache->batch[--cache->n_batch];
    remove_node(cache, node);
    pn_state_clear(&node->state);
    recycle_node(cache, node);
}

void pn_state_cache_commit_batch(pn_state_cache_t *cache, uint64_t pin) {
    if (!cache)
        return;
    for (size_t i = 0; i < cache->n_batch; i++) {
        cache->batch[i]->in_batch = false;
        cache->batch[i]->pin = pin;
    }
    cache->n_batch = 0;
}

void pn_state_cache_discard_batch(pn_state_cache_t *cache) {
    if (!cache) /* an engine whose creation failed */
        return;
    for (size_t i = 0; i < cache->n_batch; i++) {
        cache_node_t *node = cache->batch[i];
        remove_node(cache, node);
        pn_state_clear(&node->state);
        recycle_node(cache, node);
    }
    cache->n_batch = 0;
}

void pn_state_cache_unpin(pn_state_cache_t *cache, uint64_t durable) {
    cache->durable = durable;
    /* Pinned entries may have pushed it past its capacity. */
    evict_above(cache, cache->capacity);
}

bool pn_state_cache_over(const pn_state_cache_t *cache) {
    return cache->map.count > cache->capacity;
}

void pn_state_cache_drop_if(pn_state_cache_t *cache,
                            bool (*pred)(void *opaque, pn_str_t key),
                            void *opaque) {
    cache_node_t *node = cache->head;
    while (node) {
        cache_node_t *next = node->next;
        pn_str_t key = {node->entry->key, node->entry->key_len};
        if (!node->in_batch && pred(opaque, key)) {
            remove_node(cache, node);
            free_node(node);
        }
        node = next;
    }
}

size_t pn_state_cache_size(const pn_state_cache_t *cache) {
    return cache->map.count;
}
