/*
 * A byte-keyed hash map: open addressing with linear probing over slots
 * that hold the hash and the entry, so a lookup touches one slot run (and
 * the entry only when the hash matches) rather than a chain of scattered
 * entries. Entries are allocated apart and do not move, so their pointers
 * stay valid until removed. Keys are copied into the entry; the values
 * are opaque pointers the caller owns (a free callback can be given to
 * clear/free). Internal to panther_core.
 */
#ifndef PANTHER_HASHMAP_H
#define PANTHER_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

#include "panther/err.h"

typedef struct pn_map_entry {
    struct pn_map_entry *next; /* the spare list */
    void *value;
    uint64_t hash; /* pn_hash_bytes of the key */
    size_t key_len;
    char key[]; /* NUL-terminated copy */
} pn_map_entry_t;

typedef struct pn_map_slot {
    uint64_t hash;
    pn_map_entry_t *entry; /* NULL: empty */
} pn_map_slot_t;

typedef struct pn_map {
    pn_map_slot_t *slots;
    size_t n_slots; /* power of two, or 0 before the first insert */
    size_t count;
    pn_map_entry_t *spare; /* recycled entries (see PN_MAP_SPARE_KEY) */
} pn_map_t;

/* Key room of a recyclable entry: shorter keys share one entry size. */
#define PN_MAP_SPARE_KEY 64

typedef void (*pn_map_free_fn)(void *value);

uint64_t pn_hash_bytes(const void *data, size_t len);

void pn_map_init(pn_map_t *map);

/** Frees entries (calling free_value on each value if given) and slots. */
void pn_map_free(pn_map_t *map, pn_map_free_fn free_value);

/** Removes every entry but keeps the slots. */
void pn_map_clear(pn_map_t *map, pn_map_free_fn free_value);

/** The entry for key, or NULL. */
pn_map_entry_t *pn_map_find(const pn_map_t *map, const void *key, size_t len);

/** Inserts key (which must be absent) with value; *entryp gets the entry. */
PN_MUST_CHECK pn_err_t pn_map_insert(pn_map_t *map, const void *key,
                                     size_t len, void *value,
                                     pn_map_entry_t **entryp);

/** Removes key and returns its value (NULL when absent). */
void *pn_map_remove(pn_map_t *map, const void *key, size_t len);

/*
 * The same with the key's hash given (pn_hash_bytes(key, len), or the
 * hash of an entry with the same key): a key that moves between maps, or
 * is looked up in several, is hashed once.
 */
pn_map_entry_t *pn_map_find_hashed(const pn_map_t *map, uint64_t hash,
                                   const void *key, size_t len);
PN_MUST_CHECK pn_err_t pn_map_insert_hashed(pn_map_t *map, uint64_t hash,
                                            const void *key, size_t len,
                                            void *value,
                                            pn_map_entry_t **entryp);
void *pn_map_remove_hashed(pn_map_t *map, uint64_t hash, const void *key,
                           size_t len);

/** Calls fn for every entry; fn must not insert or remove. */
void pn_map_foreach(const pn_map_t *map,
                    void (*fn)(pn_map_entry_t *entry, void *opaque),
                    void *opaque);

#endif
