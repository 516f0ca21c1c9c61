#include "hashmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t pn_hash_bytes(const void *data, size_t len) {
    /* FNV-1a with a final avalanche (splitmix64) so that power-of-two
     * bucket masks see well-mixed low bits. */
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

void pn_map_init(pn_map_t *map) { memset(map, 0, sizeof *map); }

void pn_map_clear(pn_map_t *map, pn_map_free_fn free_value) {
    for (size_t b = 0; b < map->n_buckets; b++) {
        pn_map_entry_t *e = map->buckets[b];
        while (e) {
            pn_map_entry_t *next = e->next;
            if (free_value)
                free_value(e->value);
            free(e);
            e = next;
        }
        map->buckets[b] = NULL;
    }
    map->count = 0;
}

void pn_map_free(pn_map_t *map, pn_map_free_fn free_value) {
    if (!map)
        return;
    pn_map_clear(map, free_value);
    free(map->buckets);
    pn_map_init(map);
}

pn_map_entry_t *pn_map_find(const pn_map_t *map, const void *key,
                            size_t len) {
    if (!map->n_buckets)
        return NULL;
    uint64_t h = pn_hash_bytes(key, len);
    for (pn_map_entry_t *e = map->buckets[h & (map->n_buckets - 1)]; e;
         e = e->next)
        if (e->hash == h && e->key_len == len && !memcmp(e->key, key, len))
            return e;
    return NULL;
}

static pn_err_t grow(pn_map_t *map) {
    size_t n = map->n_buckets ? map->n_buckets * 2 : 64;
    pn_map_entry_t **buckets = calloc(n, sizeof *buckets);
    if (!buckets)
        return PN_ERR_NOMEM;
    for (size_t b = 0; b < map->n_buckets; b++) {
        pn_map_entry_t *e = map->buckets[b];
        while (e) {
            pn_map_entry_t *next = e->next;
            size_t at = e->hash & (n - 1);
            e->next = buckets[at];
            buckets[at] = e;
            e = next;
        }
    }
    free(map->buckets);
    map->buckets = buckets;
    map->n_buckets = n;
    return PN_ERR_OK;
}

pn_err_t pn_map_insert(pn_map_t *map, const void *key, size_t len,
                       void *value, pn_map_entry_t **entryp) {
    if (map->count >= map->n_buckets) { /* load factor 1 */
        pn_err_t err = grow(map);
        if (err)
            return err;
    }
    pn_map_entry_t *e = malloc(sizeof *e + len + 1);
    if (!e)
        return PN_ERR_NOMEM;
    e->hash = pn_hash_bytes(key, len);
    e->value = value;
    e->key_len = len;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    size_t at = e->hash & (map->n_buckets - 1);
    e->next = map->buckets[at];
    map->buckets[at] = e;
    map->count++;
    if (entryp)
        *entryp = e;
    return PN_ERR_OK;
}

void *pn_map_remove(pn_map_t *map, const void *key, size_t len) {
    if (!map->n_buckets)
        return NULL;
    uint64_t h = pn_hash_bytes(key, len);
    pn_map_entry_t **link = &map->buckets[h & (map->n_buckets - 1)];
    for (; *link; link = &(*link)->next) {
        pn_map_entry_t *e = *link;
        if (e->hash == h && e->key_len == len && !memcmp(e->key, key, len)) {
            void *value = e->value;
            *link = e->next;
            free(e);
            map->count--;
            return value;
        }
    }
    return NULL;
}

void pn_map_foreach(const pn_map_t *map,
                    void (*fn)(pn_map_entry_t *entry, void *opaque),
                    void *opaque) {
    for (size_t b = 0; b < map->n_buckets; b++)
        for (pn_map_entry_t *e = map->buckets[b]; e; e = e->next)
            fn(e, opaque);
}
