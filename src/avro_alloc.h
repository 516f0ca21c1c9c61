/*
 * Avro C's allocator for the process: malloc's memory, with a small cache
 * of freed blocks per thread (avro_alloc.c says why).
 */
#ifndef PANTHER_AVRO_ALLOC_H
#define PANTHER_AVRO_ALLOC_H

/** Installs the allocator with avro_set_allocator, once per process
 *  (later calls do nothing). Blocks Avro allocated before stay valid. */
void pn_avro_alloc_install(void);

#endif
