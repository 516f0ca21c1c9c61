/*
 * A bounded LRU cache of committed stream states, keyed by stream key.
 * The engine takes a state out while a batch works on it and puts it back
 * at commit, so the cache only ever holds committed states. Internal.
 */
#ifndef PANTHER_STATE_CACHE_H
#define PANTHER_STATE_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "panther/domain.h"

typedef struct pn_state_cache pn_state_cache_t;

/** capacity >= 1 states. NULL when out of memory. */
pn_state_cache_t *pn_state_cache_new(size_t capacity);
void pn_state_cache_free(pn_state_cache_t *cache);

/**
 * Moves the cached state of key into *state (which must be initialised and
 * is overwritten) and removes it from the cache. False when absent.
 * hash is pn_hash_bytes of the key (hashmap.h), here and in put: the
 * engine hashes a stream key once for its own map and the cache.
 */
bool pn_state_cache_take(pn_state_cache_t *cache, pn_str_t key, uint64_t hash,
                         pn_state_t *state);

/** A read-only view of a cached state, or NULL; valid until the next
 *  call that changes the cache. Marks the entry recently used. */
const pn_state_t *pn_state_cache_peek(pn_state_cache_t *cache, pn_str_t key);

/**
 * Moves *state into the cache under key (replacing any entry), evicting the
 * least recently used unpinned entry when full. *state is left initialised
 * and empty. On PN_ERR_NOMEM the state is freed instead: the store still
 * has it (the caller must not pin a state the store does not have yet
 * unless it can afford to lose the put; the engine cannot, see engine.c).
 *
 * pin > the last pn_state_cache_unpin() value pins the entry: it is never
 * evicted (the cache grows past its capacity instead) until unpinned. The
 * engine pins states whose store write is still in flight, so they cannot
 * be evicted and re-read stale from the store. 0 = not pinned.
 */
pn_err_t pn_state_cache_put(pn_state_cache_t *cache, pn_str_t key,
                            uint64_t hash, pn_state_t *state, uint64_t pin);

/** Releases the pins at or below `durable` (their writes landed), and
 *  evicts down to the capacity. */
void pn_state_cache_unpin(pn_state_cache_t *cache, uint64_t durable);

/** True when pinned entries hold the cache above its capacity. */
bool pn_state_cache_over(const pn_state_cache_t *cache);

/** Drops the entry of key, if any. */
void pn_state_cache_drop(pn_state_cache_t *cache, pn_str_t key);

/** Drops every entry for which pred returns true. */
void pn_state_cache_drop_if(pn_state_cache_t *cache,
                            bool (*pred)(void *opaque, pn_str_t key),
                            void *opaque);

size_t pn_state_cache_size(const pn_state_cache_t *cache);

#endif
