/*
 * A bounded LRU cache of committed stream states, keyed by stream key.
 * The open batch checks states out and changes them in place; commit makes
 * them committed states again, discard drops them. Internal.
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
 * Checks the state of key out to the open batch, which changes it in
 * place: the entry stays in the cache, marked recently used, and is not
 * evicted, dropped or shown by peek until pn_state_cache_commit_batch()
 * or pn_state_cache_discard_batch(). *found is false for a key the cache
 * did not have: its entry is created with the zero state, for the caller
 * to fill (or to give back with pn_state_cache_cancel_checkout()). The
 * pointer stays valid until the entry leaves the cache. NULL when out of
 * memory (nothing changed). hash is pn_hash_bytes of the key (hashmap.h):
 * the engine hashes a stream key once for its own map and the cache.
 */
pn_state_t *pn_state_cache_checkout(pn_state_cache_t *cache, pn_str_t key,
                                    uint64_t hash, bool *found);

/** Drops the entry a checkout just created for state (its load failed);
 *  nothing when state is not the last one checked out. */
void pn_state_cache_cancel_checkout(pn_state_cache_t *cache,
                                    const pn_state_t *state);

/** A read-only view of a cached committed state, or NULL (also for a
 *  checked-out one); valid until the next call that changes the cache.
 *  Marks the entry recently used. */
const pn_state_t *pn_state_cache_peek(pn_state_cache_t *cache, pn_str_t key);

/**
 * The open batch committed: its entries hold committed states again, each
 * pinned with `pin`. pin > the last pn_state_cache_unpin() value keeps an
 * entry from being evicted (the cache grows past its capacity instead)
 * until unpinned: the engine pins states whose store write is still in
 * flight, so they cannot be evicted and re-read stale from the store.
 */
void pn_state_cache_commit_batch(pn_state_cache_t *cache, uint64_t pin);

/** The open batch was discarded: its entries (changed, or created for it)
 *  leave the cache, so their committed states are read from the store. */
void pn_state_cache_discard_batch(pn_state_cache_t *cache);

/** Releases the pins at or below `durable` (their writes landed), and
 *  evicts down to the capacity. */
void pn_state_cache_unpin(pn_state_cache_t *cache, uint64_t durable);

/** True when pinned or checked-out entries hold the cache above its
 *  capacity. */
bool pn_state_cache_over(const pn_state_cache_t *cache);

/** Drops every entry not checked out for which pred returns true. */
void pn_state_cache_drop_if(pn_state_cache_t *cache,
                            bool (*pred)(void *opaque, pn_str_t key),
                            void *opaque);

size_t pn_state_cache_size(const pn_state_cache_t *cache);

#endif
