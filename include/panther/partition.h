/*
 * Partitioning as Java's default partitioner does it (DESIGN.md section 2):
 * partition = (murmur2(key) & 0x7fffffff) % N, with Kafka's murmur2
 * (seed 0x9747b28c). A Java, Python or C producer that uses it puts a stream
 * on the same partition as Panther does.
 */
#ifndef PANTHER_PARTITION_H
#define PANTHER_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/** Kafka's murmur2 of the bytes, as a signed 32-bit int like Java's. */
int32_t pn_murmur2(const void *key, size_t len);

/** The partition of key among n_partitions (> 0). */
int32_t pn_partition_for_key(const void *key, size_t len,
                             int32_t n_partitions);

#endif
