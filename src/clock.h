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

/* The time `ms` from now on `clock`, for pthread_cond_timedwait. */
static inline struct timespec pn_timespec_after_ms(clockid_t clock,
                                                   int64_t ms) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

#endif
