#include "hashmap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Keys are short (stream keys, dedup keys of 20-60 bytes) and hashed on
 * every lookup, so the hash reads 8 bytes per step rather than FNV's one,
 * then avalanches (splitmix64) so power-of-two bucket masks see well-mixed
 * low bits. Not DoS-resistant: keys come from our own partitions. */
static uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t mix64(uint64_t h) {
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

uint64_t pn_hash_bytes(const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ (len * 0x9e3779b97f4a7c15ull);
    size_t i = 0;
    for (; i + 8 <= len; i += 8)
        h = (h ^ load64(p + i)) * 0x100000001b3ull + (h >> 29);
    uint64_t tail = 0;
    for (size_t j = 0; i + j < len; j++)
        tail |= (uint64_t)p[i + j] << (8 * j);
    return mix64(h ^ tail);
}

void pn_map_init(pn_map_t *map) { memset(map, 0, sizeof *map); }

/* Entries with keys shorter than PN_MAP_SPARE_KEY are all allocated with
 * that room and recycled through map->spare: per-batch maps are filled and
 * cleared once per batch, and the state cache evicts and creates entries
 * when it is smaller than the streams, so recycling takes malloc/free off
 * those paths. The spare list never holds more entries than the map once
 * did. */
static pn_map_entry_t *acquire_entry(pn_map_t *map, size_t len) {
    if (len >= PN_MAP_SPARE_KEY)
        return malloc(sizeof(pn_map_entry_t) + len + 1);
    pn_map_entry_t *e = map->spare;
    if (e) {
        map->spare = e->next;
        return e;
    }
    return malloc(sizeof(pn_map_entry_t) + PN_MAP_SPARE_KEY);
}

static void release_entry(pn_map_t *map, pn_map_entry_t *e) {
    if (e->key_len >= PN_MAP_SPARE_KEY) {
        free(e);
        return;
    }
    e->next = map->spare;
    map->spare = e;
}

void pn_map_clear(pn_map_t *map, pn_map_free_fn free_value) {
    for (size_t i = 0; i < map->n_slots && map->count > 0; i++) {
        pn_map_entry_t *e = map->slots[i].entry;
        if (!e)
            continue;
        if (free_value)
            free_value(e->value);
        release_entry(map, e);
        map->slots[i].entry = NULL;
        map->count--;
    }
    map->count = 0;
}

void pn_map_free(pn_map_t *map, pn_map_free_fn free_value) {
    if (!map)
        return;
    pn_map_clear(map, free_value);
    while (map->spare) {
        pn_map_entry_t *next = map->spare->next;
        free(map->spare);
        map->spare = next;
    }
    free(map->slots);
    pn_map_init(map);
}

/* The slot holding key, or the empty slot where the probe ended. */
static pn_map_slot_t *probe(const pn_map_t *map, uint64_t h, const void *key,
                            size_t len) {
    size_t mask = map->n_slots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        pn_map_slot_t *slot = &map->slots[i];
        pn_map_entry_t *e = slot->entry;
        if (!e || (slot->hash == h && e->key_len == len &&
                   memcmp(e->key, key, len) == 0))
            return slot;
    }
}

pn_map_entry_t *pn_map_find_hashed(const pn_map_t *map, uint64_t hash,
                                   const void *key, size_t len) {
    if (!map->count)
        return NULL;
    return probe(map, hash, key, len)->entry;
}

pn_map_entry_t *pn_map_find(const pn_map_t *map, const void *key,
                            size_t len) {
    return map->count ? pn_map_find_hashed(map, pn_hash_bytes(key, len), key, len)
                      : NULL;
}

static pn_err_t grow(pn_map_t *map) {
    size_t n = map->n_slots ? map->n_slots * 2 : 64;
    pn_map_slot_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return PN_ERR_NOMEM;
    for (size_t i = 0; i < map->n_slots; i++) {
        pn_map_slot_t *old = &map->slots[i];
        if (!old->entry)
            continue;
        size_t at = old->hash & (n - 1);
        while (slots[at].entry)
            at = (at + 1) & (n - 1);
        slots[at] = *old;
    }
    free(map->slots);
    map->slots = slots;
    map->n_slots = n;
    return PN_ERR_OK;
}

pn_err_t pn_map_insert_hashed(pn_map_t *map, uint64_t hash, const void *key,
                              size_t len, void *value,
                              pn_map_entry_t **entryp) {
    if (2 * (map->count + 1) > map->n_slots) { /* load factor 1/2 */
        pn_err_t err = grow(map);
        if (err)
            return err;
    }
    pn_map_entry_t *e = acquire_entry(map, len);
    if (!e)
        return PN_ERR_NOMEM;
    e->value = value;
    e->hash = hash;
    e->key_len = len;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    size_t mask = map->n_slots - 1, at = hash & mask;
    while (map->slots[at].entry)
        at = (at + 1) & mask;
    map->slots[at] = (pn_map_slot_t){hash, e};
    map->count++;
    if (entryp)
        *entryp = e;
    return PN_ERR_OK;
}

pn_err_t pn_map_insert(pn_map_t *map, const void *key, size_t len,
                       void *value, pn_map_entry_t **entryp) {
    return pn_map_insert_hashed(map, pn_hash_bytes(key, len), key, len, value,
                                entryp);
}

/* Empties slot i and shifts back the entries of its probe run that would
 * no longer be found past the hole (linear probing without tombstones). */
static void remove_slot(pn_map_t *map, size_t i) {
    size_t mask = map->n_slots - 1;
    for (size_t j = (i + 1) & mask; map->slots[j].entry; j = (j + 1) & mask) {
        size_t home = map->slots[j].hash & mask;
        /* Movable when its home is not cyclically within (i, j]. */
        bool in_between = i <= j ? (home > i && home <= j)
                                 : (home > i || home <= j);
        if (!in_between) {
            map->slots[i] = map->slots[j];
            i = j;
        }
    }
    map->slots[i] = (pn_map_slot_t){0, NULL};
}

void *pn_map_remove(pn_map_t *map, const void *key, size_t len) {
    return map->count
               ? pn_map_remove_hashed(map, pn_hash_bytes(key, len), key, len)
               : NULL;
}

void *pn_map_remove_hashed(pn_map_t *map, uint64_t hash, const void *key,
                           size_t len) {
    if (!map->count)
        return NULL;
    pn_map_slot_t *slot = probe(map, hash, key, len);
    pn_map_entry_t *e = slot->entry;
    if (!e)
        return NULL;
    void *value = e->value;
    remove_slot(map, (size_t)(slot - map->slots));
    release_entry(map, e);
    map->count--;
    return value;
}

void pn_map_foreach(const pn_map_t *map,
                    void (*fn)(pn_map_entry_t *entry, void *opaque),
                    void *opaque) {
    for (size_t i = 0; i < map->n_slots; i++)
        if (map->slots[i].entry)
            fn(map->slots[i].entry, opaque);
}
