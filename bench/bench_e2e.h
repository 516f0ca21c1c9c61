/*
 * Pieces of `panther bench e2e` (bench_e2e.c) that talk to Kafka or to the
 * processes under test: topic creation, the command workload, counting the
 * committed output of a run, and starting, measuring and stopping
 * `panther worker` / `panther bench passthrough-worker` (bench_e2e_kafka.c);
 * the latency measurement (bench_e2e_latency.c).
 *
 * @locality the calling thread; nothing here keeps global state except
 * pn_e2e_clients_quiet() which silences librdkafka's info lines.
 */
#ifndef PANTHER_BENCH_E2E_H
#define PANTHER_BENCH_E2E_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "panther/buf.h"
#include "panther/codec.h"
#include "panther/err.h"

/** Wall-clock microseconds (CLOCK_REALTIME): comparable with Kafka record
 *  timestamps and across processes of this machine. */
int64_t pn_e2e_realtime_us(void);

/**
 * Creates the topics (each with `partitions` partitions, replication 1)
 * with the Admin API and waits until the cluster's metadata lists them all,
 * so that a worker started right after finds them. An existing topic is an
 * error: every run uses fresh names.
 */
PN_MUST_CHECK pn_err_t pn_e2e_create_topics(const char *bootstrap,
                                            const char *const *names,
                                            size_t n, int partitions,
                                            char *errstr, size_t errstr_size);

/** Deletes the topics, waiting up to 30 s; errors are ignored (cleanup). */
void pn_e2e_delete_topics(const char *bootstrap, const char *const *names,
                          size_t n);

/** Delivery report callback (librdkafka's dr_msg_cb). */
typedef void (*pn_e2e_delivery_fn)(rd_kafka_t *rk,
                                   const rd_kafka_message_t *m, void *opaque);

/** A producer as upstream order systems would run it: idempotent, Java's
 *  murmur2 partitioner, linger.ms as given; bulk: 1 MB batches for loading.
 *  on_delivery (may be NULL) is called with opaque from rd_kafka_poll() and
 *  rd_kafka_flush(). Caller destroys it. */
PN_MUST_CHECK pn_err_t pn_e2e_producer_new(const char *bootstrap,
                                           int linger_ms, bool bulk,
                                           pn_e2e_delivery_fn on_delivery,
                                           void *opaque, rd_kafka_t **rkp,
                                           char *errstr, size_t errstr_size);

/*
 * The command workload. The first `streams` commands give every stream its
 * stock (UpdateInventory, streams visited in a scrambled order), so a run
 * holds state for all of them; after that a mix over uniformly random
 * streams: 10% restocks, 50% reservations (each a new order), 20%
 * cancellations and 18% shipments of the stream's latest order (with or
 * without a quantity), and 2% resends of one of the last 64 commands,
 * byte for byte, which the worker must answer as duplicates.
 * Deterministic for a seed except for the `at` timestamps.
 */
#define PN_E2E_RESEND_RING 64

typedef struct pn_e2e_gen {
    uint64_t rng;
    uint64_t streams;
    uint64_t stride; /* coprime to streams: the first-touch order */
    uint64_t next;   /* commands generated */
    uint32_t *last_order;
    pn_codec_t *codec;
    pn_buf_t ring_value[PN_E2E_RESEND_RING];
    pn_buf_t ring_key[PN_E2E_RESEND_RING];
    uint64_t resends;
} pn_e2e_gen_t;

PN_MUST_CHECK pn_err_t pn_e2e_gen_init(pn_e2e_gen_t *g, uint64_t seed,
                                       uint64_t streams, char *errstr,
                                       size_t errstr_size);
void pn_e2e_gen_free(pn_e2e_gen_t *g);

/**
 * The next command, encoded (plain Avro) into value, with its canonical
 * stream key in key. id_tag goes into the command id ("<tag>-<n>"), at_ms
 * into its `at` field. Both buffers are reset first.
 */
PN_MUST_CHECK pn_err_t pn_e2e_gen_next(pn_e2e_gen_t *g, const char *id_tag,
                                       int64_t at_ms, pn_buf_t *key,
                                       pn_buf_t *value);

/** Produces key/value to topic (partition by murmur2), waiting for room
 *  when the queue is full. opaque goes to the delivery report. */
PN_MUST_CHECK pn_err_t pn_e2e_produce(rd_kafka_t *rk, const char *topic,
                                      const pn_buf_t *key,
                                      const pn_buf_t *value, void *opaque,
                                      char *errstr, size_t errstr_size);

/** Generates and produces n commands to topic, then flushes. */
PN_MUST_CHECK pn_err_t pn_e2e_preproduce(const char *bootstrap,
                                         const char *topic, uint64_t seed,
                                         uint64_t streams, uint64_t n,
                                         bool progress, char *errstr,
                                         size_t errstr_size);

/** A read_committed consumer assigned to every partition of topic from the
 *  beginning, without a group. Caller closes and destroys it. */
PN_MUST_CHECK pn_err_t pn_e2e_reader_new(const char *bootstrap,
                                         const char *topic, int partitions,
                                         rd_kafka_t **rkp, char *errstr,
                                         size_t errstr_size);

/** What pn_e2e_count_output() saw. */
typedef struct pn_e2e_count {
    uint64_t records;
    int64_t first_create_ms; /* earliest record timestamp (producer's) */
    int64_t done_us;         /* realtime when `records` reached the target */
} pn_e2e_count_t;

/** How pn_e2e_count_output() is told what to wait for. */
typedef struct pn_e2e_count_spec {
    const char *bootstrap;
    const char *topic;
    int partitions;
    uint64_t target;
    double timeout_s;
    pid_t pid;        /* the process under test: fail early if it exits */
    const char *what; /* for progress lines and errors */
    bool progress;    /* progress lines on stderr */
    /* Called once, when the first record has been read (may be NULL). */
    void (*on_first)(void *opaque);
    void *opaque;
} pn_e2e_count_spec_t;

/**
 * Counts the committed records of spec->topic until there are
 * spec->target of them (or more), for at most spec->timeout_s seconds.
 */
PN_MUST_CHECK pn_err_t pn_e2e_count_output(const pn_e2e_count_spec_t *spec,
                                           pn_e2e_count_t *out, char *errstr,
                                           size_t errstr_size);

/**
 * Starts `<this executable> args...` (args NULL-terminated, without
 * argv[0]) with stdout and stderr appended to log_path. The child gets
 * SIGTERM if this process dies. Returns its pid, or -1.
 */
pid_t pn_e2e_spawn_self(const char *const *args, const char *log_path);

/** Waits up to timeout_s for pid to exit: its exit status (128 + signal
 *  when killed by one), -2 if it still runs, -1 if it cannot be reaped. */
int pn_e2e_wait(pid_t pid, double timeout_s);

/** SIGTERM, then SIGKILL after timeout_s; returns the exit status (128 +
 *  signal when killed by one), -1 if it could not be reaped. */
int pn_e2e_stop(pid_t pid, double timeout_s);

/** True while pid has not exited (reaps it if it has). */
bool pn_e2e_alive(pid_t pid);

/** Peak resident set (VmHWM) of a running process in MiB; 0 if unknown. */
double pn_e2e_peak_rss_mib(pid_t pid);

/** User + system CPU seconds a running process has used so far. */
double pn_e2e_cpu_seconds(pid_t pid);

/** The part of it spent by a JVM's JIT compiler threads (C1, C2): a
 *  freshly started broker spends most of its first minutes compiling. */
double pn_e2e_jit_cpu_seconds(pid_t pid);

/** Scheduler statistics of the main thread of pid (/proc/PID/schedstat):
 *  seconds on a CPU, and seconds runnable but waiting for one. 0 if
 *  unknown. Together with wall time they tell whether the loop of the
 *  process under test was working, starved of CPU, or blocked (waiting for
 *  Kafka). */
void pn_e2e_thread_sched(pid_t pid, double *run_s, double *wait_s);

/** Busy and total jiffies of the whole machine (from /proc/stat), to tell
 *  how saturated the two cores were during a phase. */
typedef struct pn_e2e_cpu_sample {
    uint64_t busy;
    uint64_t total;
} pn_e2e_cpu_sample_t;

void pn_e2e_cpu_sample(pn_e2e_cpu_sample_t *s);

/** Busy fraction (0..1) of all cores between two samples. */
double pn_e2e_cpu_busy(const pn_e2e_cpu_sample_t *a,
                       const pn_e2e_cpu_sample_t *b);

/** User + system CPU seconds of this process, all threads. */
double pn_e2e_self_cpu_seconds(void);

/** The 1-minute load average (other engineers' jobs share the machine). */
double pn_e2e_load1(void);

/* --- latency (bench_e2e_latency.c) --- */

typedef struct pn_e2e_latency_spec {
    const char *bootstrap;
    const char *commands_topic; /* where the load goes (fresh topic) */
    const char *output_topic;   /* one record per command, carrying the
                                   panther.source.partition/offset headers */
    int partitions;             /* of both */
    uint64_t streams;
    uint64_t seed;
    /* Commands sent first at full speed and waited for, unmeasured: proof
     * that the process runs, and (the workload's first pass) the stock of
     * every stream when prime == streams. */
    uint64_t prime;
    uint64_t rate;           /* paced commands per second */
    uint64_t warmup_seconds; /* of paced load, unmeasured */
    uint64_t seconds;        /* of paced load, measured */
    uint64_t linger_ms;      /* of the load's producer */
    double timeout_s;
    bool progress;
    pid_t pid;        /* the process under test: an error if it exits */
    const char *what; /* for progress lines and errors */
    /* Called when the paced load starts and once it is all answered. */
    void (*on_start)(void *opaque);
    void (*on_end)(void *opaque);
    void *opaque;
} pn_e2e_latency_spec_t;

/** Latency of the measured commands: sent (handed to the producer) ->
 *  output visible to a read_committed consumer, in ms. */
typedef struct pn_e2e_latency {
    double achieved_rate; /* measured commands per second */
    uint64_t samples;
    uint64_t missing; /* measured commands without an output */
    double p50, p99, p999, max, mean;
    /* The two legs: sent -> output produced (consumed, batch closed,
     * executed: the output record's timestamp), and produced -> visible
     * (transaction commit, markers, fetch). */
    double exec_p50, exec_p99, commit_p50, commit_p99;
    /* p99 of how late the load thread sent commands against its schedule:
     * large means the generator itself was starved of CPU. */
    double send_lag_p99;
    double *values; /* the samples, sorted; the caller frees */
} pn_e2e_latency_t;

/** Runs the load and the reader; output matched to commands by record. */
PN_MUST_CHECK pn_err_t pn_e2e_latency_run(const pn_e2e_latency_spec_t *spec,
                                          pn_e2e_latency_t *out,
                                          char *errstr, size_t errstr_size);

/** Routes librdkafka and Panther logs of the bench process at warn and
 *  above only (progress lines stay readable). */
void pn_e2e_clients_quiet(void);

#endif
