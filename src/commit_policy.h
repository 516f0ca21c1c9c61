/* When an open transaction commits: the commit cadence of the worker's
 * pipelined loop, shared with the bench's pass-through baseline. Pure: the
 * caller reads the clocks and the consumer's lag. */
#ifndef PANTHER_COMMIT_POLICY_H
#define PANTHER_COMMIT_POLICY_H

#include <stdbool.h>
#include <stdint.h>

/**
 * The monotonic time (ms) by which a transaction that opens at now_ms must
 * commit, given when the previous commit started (0: none yet) and how old
 * the record that opens it is (its Kafka timestamp against the wall clock;
 * -1 when it has none).
 *
 * Under a light or moderate load the interval counts from the start of the
 * previous commit when that is less than an interval ago, as Kafka Streams
 * counts it: the records polled first after a commit arrived while the loop
 * was committing, so they have waited since then, and counting from their
 * poll would keep them waiting for an interval plus two commits.
 *
 * When the loop is behind (the record is already older than an interval,
 * or the previous commit took longer than one) a latency bound is lost
 * anyway, and a full interval of work per commit amortises the commit
 * better: under a busy broker that keeps commits from crowding it further
 * (measured: a fifth of an interval after a slow commit made the worker's
 * p99 worse at 15,000 commands/s). So is the case after an idle spell. A
 * producer clock that is off only moves a transaction between these
 * choices, both of which are safe.
 */
static inline int64_t pn_commit_deadline(int64_t now_ms, int64_t interval_ms,
                                         int64_t last_commit_started_ms,
                                         int64_t record_age_ms) {
    bool recent_commit = last_commit_started_ms > 0 &&
                         now_ms - last_commit_started_ms < interval_ms;
    if (recent_commit && record_age_ms < interval_ms)
        return last_commit_started_ms + interval_ms;
    return now_ms + interval_ms;
}

#endif
