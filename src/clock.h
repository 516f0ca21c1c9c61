/* The two clocks Panther reads: monotonic for intervals, deadlines and
 * progress rates (immune to clock steps), and the wall clock for comparing
 * with Kafka record timestamps and command times. Internal header. */
#ifndef PANTHER_CLOCK_H
#define PANTHER_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t pn_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline double pn_mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int64_t pn_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
