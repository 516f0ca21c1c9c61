/*
 * Support for the integration tests (ctest label `integration`): they run
 * against the real local broker that scripts/test starts (its address in
 * PN_TEST_BOOTSTRAP), each test on topics of its own prefix, with real
 * `panther worker` processes started, killed and restarted.
 */
#ifndef PN_IT_SUPPORT_H
#define PN_IT_SUPPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "clock.h" /* pn_mono_ms for the tests' deadlines */
#include "panther/audit.h"
#include "panther/codec.h"
#include "panther/domain.h"

/* Exit code that ctest reports as "skipped" (SKIP_RETURN_CODE). */
#define PN_IT_SKIP 77

typedef struct pn_it {
    char bootstrap[256];
    char prefix[64];
    char commands[128], events[128], outcomes[128], dlt[128];
    char group[128];
    char *dir; /* scratch directory for worker stores and logs */
    pn_codec_t *codec;
    struct rd_kafka_s *producer;
    struct rd_kafka_s *default_producer; /* librdkafka's own partitioner */
    unsigned failures_at_init; /* CUnit's count: did this case fail? */
} pn_it_t;

/** Sets up a test: broker address, unique topic prefix, topics with
 *  n_partitions (events with n_event_partitions, normally the same).
 *  Returns false (test should be skipped) without a broker. */
bool pn_it_init(pn_it_t *it, const char *tag, int n_partitions,
                int n_event_partitions);
/** Closes the clients and removes the scratch directory, unless the case
 *  failed: then the tails of its process logs are printed and it stays. */
void pn_it_cleanup(pn_it_t *it);

/** Produces one command (murmur2 unless random_partition); flushes when
 *  flush is true. */
void pn_it_send(pn_it_t *it, const pn_command_t *cmd, bool random_partition);
void pn_it_send_raw(pn_it_t *it, const void *value, size_t len);
/** Produces with librdkafka's default partitioner (consistent_random, a
 *  CRC32 of the key), as a careless producer would. */
void pn_it_send_default_partitioner(pn_it_t *it, const pn_command_t *cmd);
void pn_it_flush(pn_it_t *it);
/** Produces one record to any topic and waits for it: its offset (-1 when
 *  it was not delivered, a failed assertion). headers: name, value, ...,
 *  NULL; or NULL for none. */
int64_t pn_it_produce(pn_it_t *it, const char *topic, int32_t partition,
                      pn_str_t key, const void *value, size_t len,
                      const char *const *headers);

/** A command for tests; strings must outlive the call to pn_it_send. */
pn_command_t pn_it_cmd(pn_command_type_t type, const char *id,
                       const char *order, const char *sku, const char *node,
                       bool has_quantity, int32_t quantity);

/** Starts `panther worker` for this test's topics; output goes to
 *  <dir>/<instance>.log. extra: NULL-terminated list of --set values. */
pid_t pn_it_worker_start(pn_it_t *it, const char *instance,
                         const char *const *extra);
/** Sends sig and waits for the process; returns its exit status (or
 *  128 + signal). */
int pn_it_worker_stop(pid_t pid, int sig);

/* Registers a clean-up that runs after the current case however it ends
 * (a fatal assertion skips the case's own): threads to stop and join. A
 * clean-up must be safe to run after the case already did the same. */
void pn_it_defer(void (*fn)(void *), void *arg);

/* Registers a process a test started itself: the watchdog kills it if the
 * case hangs (pn_it_worker_start and the other starters already do). */
void pn_it_track_child(pid_t pid);

/* A TCP port on 127.0.0.1 that nothing uses now, for a process the test
 * starts to listen on. It lies below the kernel's ephemeral range, so no
 * outgoing connection (the Kafka clients make many) can take it before
 * that process binds it, as can happen to a port that bind(0) hands out. */
int pn_it_free_port(void);

/** What a worker's log says about its runs: the counters of its last
 *  "worker stopped" line (written on a clean stop) and how many open
 *  transactions it aborted because its partitions were revoked. */
typedef struct pn_it_worker_log {
    bool stopped; /* a "worker stopped" line was found */
    uint64_t commands, commits, aborts;
    uint64_t events_expired; /* by the worker's retention steps */
    uint64_t revocation_aborts;
} pn_it_worker_log_t;

/** Lines of the file at path that contain every one of the needles
 *  (NULL-terminated); 0 when it cannot be read. */
int pn_it_log_count(const char *path, const char *const *needles);

/** Waits until the instance's log says a restore finished: it has its
 *  partitions and runs commands. False after timeout_ms. */
bool pn_it_worker_wait_ready(pn_it_t *it, const char *instance,
                             int timeout_ms);

/** Reads <dir>/<instance>.log (every run of that instance). */
void pn_it_worker_log(pn_it_t *it, const char *instance,
                      pn_it_worker_log_t *log);

/** Runs the audit (waiting up to wait_ms for the workers to catch up). */
void pn_it_audit(pn_it_t *it, int wait_ms, pn_audit_report_t *report);

/** Every outcome record, decoded, in topic order per partition. */
typedef struct pn_it_outcome {
    pn_outcome_record_t rec;
    int64_t source_partition, source_offset;
} pn_it_outcome_t;

size_t pn_it_read_outcomes(pn_it_t *it, pn_it_outcome_t **out);
void pn_it_free_outcomes(pn_it_outcome_t *o, size_t n);

/** The outcome answering command id (first non-duplicate), or NULL. */
const pn_outcome_record_t *pn_it_find_outcome(const pn_it_outcome_t *o,
                                              size_t n, const char *id,
                                              bool duplicate);

/** Runs `panther <args...>` (NULL-terminated) and returns its exit code;
 *  stderr and stdout go to <dir>/cmd.log. */
int pn_it_run_panther(pn_it_t *it, const char *const *args);

#endif

/* A mixed workload: restocks, reservations, cancellations and shipments
 * over n_streams streams, with some resends of earlier ids. Deterministic
 * for a seed. */
typedef struct pn_it_gen {
    uint64_t rng;
    uint64_t seed;
    int n_streams;
    uint64_t next;
    char id[64], order[64], sku[32], node[16];
} pn_it_gen_t;

void pn_it_gen_init(pn_it_gen_t *g, uint64_t seed, int n_streams);
/** The next command; its strings live in g until the next call. */
pn_command_t pn_it_gen_next(pn_it_gen_t *g);

/** Sends n commands from the generator at about rate per second (0: as
 *  fast as possible) from a thread with its own producer. */
typedef struct pn_it_sender pn_it_sender_t;
pn_it_sender_t *pn_it_send_async(pn_it_t *it, uint64_t seed, int n_streams,
                                 int n, int rate);
/** Waits for the sender; 0 when every command was delivered. */
int pn_it_send_wait(pn_it_sender_t *sender);

/** Sleeps ms milliseconds. */
void pn_it_sleep_ms(int ms);
