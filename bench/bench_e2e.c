/*
 * panther bench e2e: the whole flow against a real broker.
 *
 *   warmup         rounds of 100,000 records and 5 s of paced load through
 *                  the pass-through, unmeasured, until the broker's JIT
 *                  compiler is quiet (90 s at most)
 *   passthrough    baseline: `panther bench passthrough-worker`, the
 *                  worker's transactional consume -> produce -> commit loop
 *                  with the same settings and nothing of Panther inside
 *   alos           `panther worker` with processing.guarantee=at_least_once
 *   eos            `panther worker` (exactly_once); its peak RSS is the
 *                  worker's memory with --streams streams
 *   latency        a fresh exactly-once worker: first every stream gets its
 *                  stock at full speed (unmeasured), then the command mix
 *                  at half the eos rate; latency = outcome visible to a
 *                  read_committed consumer minus the moment the command was
 *                  handed to the producer (same machine, same clock)
 *   ptlatency      the same paced load through a fresh pass-through: what
 *                  the transactions alone cost in latency
 *
 * passthrough, alos and eos run in interleaved rounds (--rounds, default 3):
 * rates are the medians, ratios the medians of the rounds' own ratios.
 * Each phase has topics of its own (unique prefix, Admin API). Throughput
 * phases produce all N commands first, then start the process under test
 * and time from the producer timestamp of its earliest output record (it
 * had consumed its first batch) to the moment a read_committed consumer
 * has seen N outputs. The processes under test are separate processes
 * (this executable, re-run), so their memory is measured alone (VmHWM).
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_e2e.h"
#include "bench_util.h"
#include "clock.h"

typedef struct options {
    const char *bootstrap;
    uint64_t commands;
    uint64_t streams;
    uint64_t partitions;
    uint64_t commit_interval_ms;
    uint64_t batch;
    uint64_t latency_seconds;
    uint64_t rounds; /* of the throughput phases, interleaved */
    uint64_t warmup_seconds;
    uint64_t latency_rate; /* 0: half the eos throughput */
    uint64_t producer_linger_ms;
    uint64_t timeout_s;
    uint64_t seed;
    uint64_t broker_pid; /* 0: unknown */
    const char *phases;
    const char *latency_csv;
    const char *perf_data;
    const char *dir;
    const char *worker_sets[16]; /* extra --set KEY=VALUE for workers */
    size_t n_worker_sets;
    bool json;
    bool keep;
} options_t;

/* Who had the cores during a measured window (the machine has two and
 * other people's jobs run on it too). */
typedef struct usage {
    double seconds;
    double machine_busy; /* 0..1 over all cores, every process */
    double sut_cpu_s;    /* the process under test */
    double broker_cpu_s; /* with --broker-pid, else NaN */
    double broker_jit_cpu_s; /* of it, its JIT compiler threads */
    double bench_cpu_s;  /* this process: load generator and readers */
    double load1;        /* 1-minute load average at the end */
    /* The main thread of the process under test (its batch loop), as
     * fractions of the window: on a CPU, runnable but waiting for one. The
     * rest of the time it was blocked: polling, waiting for Kafka. */
    double main_running;
    double main_starved;
} usage_t;

typedef struct window {
    pid_t sut, broker;
    double t, sut_cpu, broker_cpu, broker_jit, bench_cpu, main_run, main_wait;
    pn_e2e_cpu_sample_t machine;
    bool open;
} window_t;

typedef struct phase_result {
    bool ran;
    uint64_t records;
    double per_s;
    double seconds;
    double peak_rss_mib;
    usage_t use;
} phase_result_t;

typedef struct latency_result {
    bool ran;
    double rate;
    pn_e2e_latency_t m;
    double peak_rss_mib;
    usage_t use;
} latency_result_t;

typedef struct run {
    const options_t *o;
    char *root;       /* scratch directory: stores and logs */
    char id[64];      /* topic prefix of this run */
    bool progress;
    uint64_t latency_rate; /* commands/s of the latency phase */
    char **topics;    /* created, deleted at the end */
    size_t n_topics;
} run_t;

/* --- topics and processes ---------------------------------------------------- */

typedef struct worker_topics {
    char commands[192], events[192], outcomes[192], dlt[192], group[192];
} worker_topics_t;

static void topic_names(const run_t *r, const char *phase, worker_topics_t *t) {
    snprintf(t->commands, sizeof t->commands, "%s.%s.inventory.commands", r->id,
             phase);
    snprintf(t->events, sizeof t->events, "%s.%s.inventory.events", r->id, phase);
    snprintf(t->outcomes, sizeof t->outcomes, "%s.%s.inventory.outcomes", r->id,
             phase);
    snprintf(t->dlt, sizeof t->dlt, "%s.%s.inventory.commands.DLT", r->id, phase);
    snprintf(t->group, sizeof t->group, "%s.%s.workers", r->id, phase);
}

static pn_err_t create_topics(run_t *r, const char *const *names, size_t n,
                              char *err, size_t errsz) {
    pn_err_t e = pn_e2e_create_topics(r->o->bootstrap, names, n,
                                      (int)r->o->partitions, err, errsz);
    char **grown = realloc(r->topics, (r->n_topics + n) * sizeof *grown);
    if (!grown)
        return e;
    r->topics = grown;
    for (size_t i = 0; i < n; i++)
        if ((r->topics[r->n_topics] = strdup(names[i])))
            r->n_topics++;
    return e;
}

static pn_err_t create_worker_topics(run_t *r, const worker_topics_t *t,
                                     char *err, size_t errsz) {
    const char *names[] = {t->commands, t->events, t->outcomes, t->dlt};
    return create_topics(r, names, 4, err, errsz);
}

/* Leaves the broker as it was (best effort, not timed). */
static void delete_topics(run_t *r) {
    if (r->n_topics && !r->o->keep)
        pn_e2e_delete_topics(r->o->bootstrap, (const char *const *)r->topics,
                             r->n_topics);
    for (size_t i = 0; i < r->n_topics; i++)
        free(r->topics[i]);
    free(r->topics);
    r->topics = NULL;
    r->n_topics = 0;
}

/* `panther worker` on a phase's topics, with its own store and log. */
static pid_t start_worker(const run_t *r, const char *phase,
                          const worker_topics_t *t, bool exactly_once) {
    const options_t *o = r->o;
    char sets[12][512], log[4300];
    int n = 0;
    snprintf(sets[n++], 512, "topics.commands=%s", t->commands);
    snprintf(sets[n++], 512, "topics.events=%s", t->events);
    snprintf(sets[n++], 512, "topics.outcomes=%s", t->outcomes);
    snprintf(sets[n++], 512, "topics.dead.letters=%s", t->dlt);
    snprintf(sets[n++], 512, "group.id=%s", t->group);
    snprintf(sets[n++], 512, "instance.id=%s-0", phase);
    snprintf(sets[n++], 512, "store.path=%s/%s-store", r->root, phase);
    snprintf(sets[n++], 512, "kafka.bootstrap.servers=%s", o->bootstrap);
    snprintf(sets[n++], 512, "processing.guarantee=%s",
             exactly_once ? "exactly_once" : "at_least_once");
    snprintf(sets[n++], 512, "worker.commit.interval.ms=%" PRIu64,
             o->commit_interval_ms);
    snprintf(sets[n++], 512, "worker.batch.max.commands=%" PRIu64, o->batch);
    snprintf(log, sizeof log, "%s/%s-worker.log", r->root, phase);
    const char *args[1 + 2 * (12 + 16) + 1] = {"worker"};
    int argc = 1;
    for (int i = 0; i < n; i++) {
        args[argc++] = "--set";
        args[argc++] = sets[i];
    }
    for (size_t i = 0; i < o->n_worker_sets; i++) {
        args[argc++] = "--set";
        args[argc++] = o->worker_sets[i];
    }
    args[argc] = NULL;
    return pn_e2e_spawn_self(args, log);
}

/* perf record on the process under test, for --perf-record. */
static pid_t start_perf(pid_t target, const char *out) {
    char pid_text[32];
    snprintf(pid_text, sizeof pid_text, "%ld", (long)target);
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* DWARF unwinding: the release build keeps no frame pointers. */
    execlp("perf", "perf", "record", "-q", "-F", "499", "--call-graph", "dwarf",
           "-p", pid_text, "-o", out, (char *)NULL);
    _exit(127);
}

static void stop_perf(pid_t pid) {
    if (pid <= 0)
        return;
    kill(pid, SIGINT); /* perf writes its file and exits */
    if (pn_e2e_wait(pid, 120) == -2)
        pn_e2e_stop(pid, 10);
}

/* Measures what it can of the process, then stops it; an unclean exit
 * fails the phase. */
static pn_err_t finish_process(pid_t pid, const char *log, phase_result_t *pr,
                               char *err, size_t errsz) {
    pr->peak_rss_mib = pn_e2e_peak_rss_mib(pid);
    int rc = pn_e2e_stop(pid, 30);
    if (rc != 0)
        return pn_err_set(err, errsz, PN_ERR_STATE,
                          "the process under test exited with %d (log: %s)", rc,
                          log);
    return PN_ERR_OK;
}

static void window_begin(void *opaque) {
    window_t *w = opaque;
    w->open = true;
    w->t = pn_mono_s();
    w->sut_cpu = pn_e2e_cpu_seconds(w->sut);
    w->broker_cpu = w->broker > 0 ? pn_e2e_cpu_seconds(w->broker) : 0;
    w->broker_jit = w->broker > 0 ? pn_e2e_jit_cpu_seconds(w->broker) : 0;
    w->bench_cpu = pn_e2e_self_cpu_seconds();
    pn_e2e_thread_sched(w->sut, &w->main_run, &w->main_wait);
    pn_e2e_cpu_sample(&w->machine);
}

static void window_end(const window_t *w, usage_t *u) {
    pn_e2e_cpu_sample_t now;
    pn_e2e_cpu_sample(&now);
    u->seconds = pn_mono_s() - w->t;
    u->machine_busy = pn_e2e_cpu_busy(&w->machine, &now);
    u->sut_cpu_s = pn_e2e_cpu_seconds(w->sut) - w->sut_cpu;
    u->broker_cpu_s = w->broker > 0
                          ? pn_e2e_cpu_seconds(w->broker) - w->broker_cpu
                          : NAN;
    u->broker_jit_cpu_s = w->broker > 0
                              ? pn_e2e_jit_cpu_seconds(w->broker) - w->broker_jit
                              : NAN;
    u->bench_cpu_s = pn_e2e_self_cpu_seconds() - w->bench_cpu;
    u->load1 = pn_e2e_load1();
    double run, wait;
    pn_e2e_thread_sched(w->sut, &run, &wait);
    u->main_running = u->seconds > 0 ? (run - w->main_run) / u->seconds : NAN;
    u->main_starved = u->seconds > 0 ? (wait - w->main_wait) / u->seconds : NAN;
}

/* --- throughput phases ------------------------------------------------------- */

/* Counts the output of the process under test and turns it into a rate. */
static pn_err_t measure(run_t *r, const char *topic, uint64_t n, pid_t pid,
                        const char *what, phase_result_t *pr, char *err,
                        size_t errsz) {
    /* CPU is accounted from the first output on: start-up is not part of
     * the rate either. */
    window_t w = {.sut = pid, .broker = (pid_t)r->o->broker_pid};
    pn_e2e_count_spec_t spec = {
        .bootstrap = r->o->bootstrap, .topic = topic,
        .partitions = (int)r->o->partitions, .target = n,
        .timeout_s = (double)r->o->timeout_s, .pid = pid, .what = what,
        .progress = r->progress, .on_first = window_begin, .opaque = &w};
    pn_e2e_count_t count;
    pn_err_t e = pn_e2e_count_output(&spec, &count, err, errsz);
    if (e)
        return e;
    window_end(&w, &pr->use);
    pr->records = count.records;
    pr->seconds =
        (double)(count.done_us - count.first_create_ms * 1000) / 1e6;
    pr->per_s = pr->seconds > 0 ? (double)n / pr->seconds : 0;
    pr->ran = true;
    return PN_ERR_OK;
}

static pn_err_t run_worker_phase(run_t *r, const char *phase, bool exactly_once,
                                 phase_result_t *pr, char *err, size_t errsz) {
    const options_t *o = r->o;
    worker_topics_t t;
    topic_names(r, phase, &t);
    if (r->progress)
        fprintf(stderr, "%s: %" PRIu64 " commands over %" PRIu64
                        " streams, %" PRIu64 " partitions\n",
                phase, o->commands, o->streams, o->partitions);
    pn_err_t e = create_worker_topics(r, &t, err, errsz);
    if (!e)
        e = pn_e2e_preproduce(o->bootstrap, t.commands, o->seed, o->streams,
                              o->commands, r->progress, err, errsz);
    if (e)
        return e;
    char log[4300];
    snprintf(log, sizeof log, "%s/%s-worker.log", r->root, phase);
    pid_t pid = start_worker(r, phase, &t, exactly_once);
    if (pid < 0)
        return pn_err_set(err, errsz, PN_ERR_IO, "cannot start the worker");
    if (r->progress)
        fprintf(stderr, "%s: worker pid %ld, log %s\n", phase, (long)pid, log);
    pid_t perf = exactly_once && o->perf_data ? start_perf(pid, o->perf_data) : -1;
    char what[64];
    snprintf(what, sizeof what, "  %s outcomes", phase);
    e = measure(r, t.outcomes, o->commands, pid, what, pr, err, errsz);
    stop_perf(perf);
    if (e) {
        pn_e2e_stop(pid, 30);
        return e;
    }
    return finish_process(pid, log, pr, err, errsz);
}

/* The pass-through's topics and process, for a phase. */
typedef struct pt_names {
    char input[192], output[192], group[192], log[4300];
} pt_names_t;

static pn_err_t create_passthrough_topics(run_t *r, const char *phase,
                                          pt_names_t *n, char *err,
                                          size_t errsz) {
    snprintf(n->input, sizeof n->input, "%s.%s.input", r->id, phase);
    snprintf(n->output, sizeof n->output, "%s.%s.output", r->id, phase);
    snprintf(n->group, sizeof n->group, "%s.%s.workers", r->id, phase);
    snprintf(n->log, sizeof n->log, "%s/%s.log", r->root, phase);
    const char *names[] = {n->input, n->output};
    return create_topics(r, names, 2, err, errsz);
}

static pid_t start_passthrough(const run_t *r, const char *phase,
                               const pt_names_t *n) {
    char batch[32], ci[32];
    snprintf(batch, sizeof batch, "%" PRIu64, r->o->batch);
    snprintf(ci, sizeof ci, "%" PRIu64, r->o->commit_interval_ms);
    const char *args[15 + 2 * 16 + 1] = {
        "bench", "passthrough-worker", "--bootstrap", r->o->bootstrap,
        "--input", n->input, "--output", n->output, "--group", n->group,
        "--batch", batch, "--commit-interval-ms", ci};
    int argc = 14;
    /* The workers' Kafka client settings apply to the baseline too. */
    for (size_t i = 0; i < r->o->n_worker_sets; i++)
        if (!strncmp(r->o->worker_sets[i], "kafka.", 6)) {
            args[argc++] = "--kafka";
            args[argc++] = r->o->worker_sets[i] + 6;
        }
    args[argc] = NULL;
    pid_t pid = pn_e2e_spawn_self(args, n->log);
    if (pid > 0 && r->progress)
        fprintf(stderr, "%s: pass-through pid %ld, log %s\n", phase, (long)pid,
                n->log);
    return pid;
}

/* n records through a fresh pass-through, timed. As the first phase,
 * "warmup", it is not reported: a freshly started broker JVM runs its
 * first minute mostly in the interpreter and would handicap whichever
 * phase came first. */
static pn_err_t run_passthrough_phase(run_t *r, const char *phase, uint64_t n,
                                      phase_result_t *pr, char *err,
                                      size_t errsz) {
    const options_t *o = r->o;
    pt_names_t names;
    if (r->progress)
        fprintf(stderr, "%s: %" PRIu64 " records through the pass-through, %"
                        PRIu64 " partitions\n",
                phase, n, o->partitions);
    pn_err_t e = create_passthrough_topics(r, phase, &names, err, errsz);
    if (!e)
        e = pn_e2e_preproduce(o->bootstrap, names.input, o->seed, o->streams,
                              n, r->progress, err, errsz);
    if (e)
        return e;
    pid_t pid = start_passthrough(r, phase, &names);
    if (pid < 0)
        return pn_err_set(err, errsz, PN_ERR_IO, "cannot start the passthrough");
    char what[64];
    snprintf(what, sizeof what, "  %s output", phase);
    e = measure(r, names.output, n, pid, what, pr, err, errsz);
    if (e) {
        pn_e2e_stop(pid, 30);
        return e;
    }
    return finish_process(pid, names.log, pr, err, errsz);
}

/* --- latency ----------------------------------------------------------------- */

static void latency_begin(void *opaque) { window_begin(opaque); }

typedef struct latency_window {
    window_t w; /* first: latency_begin receives the struct */
    usage_t *use;
} latency_window_t;

static void latency_end(void *opaque) {
    latency_window_t *lw = opaque;
    window_end(&lw->w, lw->use);
}

/* Measures latency through a running process, from commands_topic to
 * output_topic; prime: commands sent first at full speed, unmeasured. */
static pn_err_t measure_latency(run_t *r, const char *what, pid_t pid,
                                const char *commands_topic,
                                const char *output_topic, uint64_t prime,
                                uint64_t rate, uint64_t seconds,
                                latency_result_t *lr, char *err,
                                size_t errsz) {
    const options_t *o = r->o;
    latency_window_t lw = {.w = {.sut = pid, .broker = (pid_t)o->broker_pid},
                           .use = &lr->use};
    pn_e2e_latency_spec_t spec = {
        .bootstrap = o->bootstrap, .commands_topic = commands_topic,
        .output_topic = output_topic, .partitions = (int)o->partitions,
        .streams = o->streams, .seed = o->seed + 1, .prime = prime,
        .rate = rate, .warmup_seconds = o->warmup_seconds,
        .seconds = seconds, .linger_ms = o->producer_linger_ms,
        .timeout_s = (double)o->timeout_s, .progress = r->progress,
        .pid = pid, .what = what, .on_start = latency_begin,
        .on_end = latency_end, .opaque = &lw};
    lr->rate = (double)rate;
    pn_err_t e = pn_e2e_latency_run(&spec, &lr->m, err, errsz);
    lr->peak_rss_mib = pn_e2e_peak_rss_mib(pid);
    return e;
}

/* A fresh exactly-once worker: stock for every stream first, then the mix. */
static pn_err_t run_latency_phase(run_t *r, latency_result_t *lr, char *err,
                                  size_t errsz) {
    worker_topics_t t;
    topic_names(r, "latency", &t);
    if (r->progress)
        fprintf(stderr, "latency: fresh exactly-once worker at %" PRIu64
                        " commands/s\n",
                r->latency_rate);
    pn_err_t e = create_worker_topics(r, &t, err, errsz);
    if (e)
        return e;
    char log[4300];
    snprintf(log, sizeof log, "%s/latency-worker.log", r->root);
    pid_t pid = start_worker(r, "latency", &t, true);
    if (pid < 0)
        return pn_err_set(err, errsz, PN_ERR_IO, "cannot start the worker");
    if (r->progress)
        fprintf(stderr, "latency: worker pid %ld, log %s\n", (long)pid, log);
    e = measure_latency(r, "  latency", pid, t.commands, t.outcomes,
                        r->o->streams, r->latency_rate, r->o->latency_seconds,
                        lr, err, errsz);
    if (e) {
        pn_e2e_stop(pid, 30);
        return e;
    }
    lr->ran = true;
    phase_result_t pr = {0};
    return finish_process(pid, log, &pr, err, errsz);
}

/* A paced load through a fresh transactional pass-through. */
static pn_err_t run_paced_passthrough(run_t *r, const char *phase,
                                      uint64_t rate, uint64_t seconds,
                                      latency_result_t *lr, char *err,
                                      size_t errsz) {
    pt_names_t n;
    if (r->progress)
        fprintf(stderr, "%s: fresh pass-through at %" PRIu64 " records/s\n",
                phase, rate);
    pn_err_t e = create_passthrough_topics(r, phase, &n, err, errsz);
    if (e)
        return e;
    pid_t pid = start_passthrough(r, phase, &n);
    if (pid < 0)
        return pn_err_set(err, errsz, PN_ERR_IO, "cannot start the passthrough");
    char what[48];
    snprintf(what, sizeof what, "  %s", phase);
    e = measure_latency(r, what, pid, n.input, n.output, 1000, rate, seconds,
                        lr, err, errsz);
    if (e) {
        pn_e2e_stop(pid, 30);
        return e;
    }
    lr->ran = true;
    phase_result_t pr = {0};
    return finish_process(pid, n.log, &pr, err, errsz);
}

/* The latency load through the transactional pass-through: the part of
 * the latency that Kafka transactions alone cost with these settings. */
static pn_err_t run_ptlatency_phase(run_t *r, latency_result_t *lr, char *err,
                                    size_t errsz) {
    return run_paced_passthrough(r, "ptlatency", r->latency_rate,
                                 r->o->latency_seconds, lr, err, errsz);
}

/* The warm-up: unmeasured rounds of WARMUP_RECORDS through the
 * pass-through, each followed by a few seconds of paced load through
 * another (the broker requests of every phase: transactional produce,
 * read_committed fetches, offset commits), until the broker's JIT has
 * compiled them. A freshly started broker JVM spends minutes compiling:
 * in a 15 s latency run right after its start, 12.8 of its 23.6 CPU
 * seconds were the compiler's, still 2-3 s after five such runs, and that
 * CPU was taken from whichever phase ran then. Without --broker-pid the
 * compiler cannot be watched: one round. */
#define WARMUP_RECORDS 100000
#define WARMUP_PACED_RATE 10000 /* records/s */
#define WARMUP_PACED_SECONDS 5
#define WARMUP_MAX_ROUNDS 20
#define WARMUP_MAX_S 90
#define WARMUP_QUIET_JIT_SHARE 0.10 /* of the broker's CPU in a round */

static pn_err_t run_warmup(run_t *r, char *err, size_t errsz) {
    const pid_t broker = (pid_t)r->o->broker_pid;
    double start = pn_mono_s();
    for (int round = 1; round <= WARMUP_MAX_ROUNDS; round++) {
        char phase[32];
        snprintf(phase, sizeof phase, "warmup%d", round);
        double cpu0 = broker > 0 ? pn_e2e_cpu_seconds(broker) : 0;
        double jit0 = broker > 0 ? pn_e2e_jit_cpu_seconds(broker) : 0;
        phase_result_t pr = {0};
        pn_err_t e = run_passthrough_phase(r, phase, WARMUP_RECORDS, &pr, err,
                                           errsz);
        if (e || broker <= 0)
            return e;
        /* Then a paced load: small batches, a fetch per commit, the code
         * the latency phases run and a backlog does not. */
        latency_result_t paced = {0};
        snprintf(phase, sizeof phase, "warmup%dp", round);
        e = run_paced_passthrough(r, phase, WARMUP_PACED_RATE,
                                  WARMUP_PACED_SECONDS, &paced, err, errsz);
        free(paced.m.values);
        if (e)
            return e;
        double cpu = pn_e2e_cpu_seconds(broker) - cpu0;
        double jit = pn_e2e_jit_cpu_seconds(broker) - jit0;
        if (r->progress)
            fprintf(stderr, "%s: %.0f records/s; broker %.2f CPU s, of it "
                            "%.2f compiling\n",
                    phase, pr.per_s, cpu, jit);
        if (cpu > 0 && jit / cpu < WARMUP_QUIET_JIT_SHARE)
            return PN_ERR_OK;
        if (pn_mono_s() - start > WARMUP_MAX_S)
            break;
    }
    if (r->progress)
        fprintf(stderr, "warmup: the broker still compiles after %.0f s; "
                        "measuring anyway\n", pn_mono_s() - start);
    return PN_ERR_OK;
}

/* Histograms with 1 ms buckets, one per measured process:
 * series,latency_ms,count,cumulative_fraction. */
static void write_histogram(FILE *f, const char *series,
                            const latency_result_t *lr) {
    const pn_e2e_latency_t *m = &lr->m;
    size_t i = 0;
    while (lr->ran && i < m->samples) {
        double bucket = floor(m->values[i]);
        size_t j = i;
        while (j < m->samples && floor(m->values[j]) == bucket)
            j++;
        fprintf(f, "%s,%.0f,%zu,%.6f\n", series, bucket, j - i,
                (double)j / (double)m->samples);
        i = j;
    }
}

static int write_latency_csv(const char *path, const latency_result_t *worker,
                             const latency_result_t *passthrough) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f, "series,latency_ms,count,cumulative_fraction\n");
    write_histogram(f, "exactly_once", worker);
    write_histogram(f, "passthrough", passthrough);
    return fclose(f) ? 1 : 0;
}

/* --- output ------------------------------------------------------------------ */

#define MAX_ROUNDS 9

typedef struct report {
    const options_t *o;
    double load1_start;
    /* Per round, and the round of median rate of each (its usage is the
     * one reported); the ratios are the medians of the rounds' ratios. */
    phase_result_t pt_rounds[MAX_ROUNDS], alos_rounds[MAX_ROUNDS],
        eos_rounds[MAX_ROUNDS];
    size_t rounds;
    phase_result_t pt, alos, eos;
    double vs_pt, vs_alos;
    latency_result_t lat, ptlat;
} report_t;

static double ratio(const phase_result_t *a, const phase_result_t *b) {
    return a->ran && b->ran && b->per_s > 0 ? a->per_s / b->per_s : NAN;
}

static void json_num(FILE *f, const char *key, double v, int decimals) {
    if (isnan(v))
        fprintf(f, ",\"%s\":null", key);
    else
        fprintf(f, ",\"%s\":%.*f", key, decimals, v);
}

static void json_met(FILE *f, const char *key, double v, double limit,
                     bool at_least) {
    if (isnan(v))
        fprintf(f, ",\"%s\":null", key);
    else
        fprintf(f, ",\"%s\":%s", key,
                (at_least ? v >= limit : v <= limit) ? "true" : "false");
}

#define PHASE_VALUE(p, field) ((p).ran ? (double)(p).field : NAN)

/* Records per second of CPU of the main (batch loop) thread. */
static double per_main_cpu(const phase_result_t *p) {
    return p->ran && p->use.main_running > 0 ? p->per_s / p->use.main_running
                                             : NAN;
}

/* <phase>_window_s, _process_cpu_s, _broker_cpu_s, _bench_cpu_s,
 * _machine_cpu_busy, _load1. */
static void json_usage(FILE *f, const char *phase, bool ran, const usage_t *u) {
    static const struct {
        const char *suffix;
        size_t offset;
        int decimals;
    } fields[] = {
        {"window_s", offsetof(usage_t, seconds), 2},
        {"process_cpu_s", offsetof(usage_t, sut_cpu_s), 2},
        {"broker_cpu_s", offsetof(usage_t, broker_cpu_s), 2},
        {"broker_jit_cpu_s", offsetof(usage_t, broker_jit_cpu_s), 2},
        {"bench_cpu_s", offsetof(usage_t, bench_cpu_s), 2},
        {"machine_cpu_busy", offsetof(usage_t, machine_busy), 3},
        {"load1", offsetof(usage_t, load1), 2},
        {"main_thread_running", offsetof(usage_t, main_running), 3},
        {"main_thread_starved", offsetof(usage_t, main_starved), 3},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s_%s", phase, fields[i].suffix);
        double v = *(const double *)((const char *)u + fields[i].offset);
        json_num(f, key, ran ? v : NAN, fields[i].decimals);
    }
}

/* The latency keys, prefixed ("" for the worker, whose keys the issue
 * names: p50_ms, p99_ms, p999_ms). */
static void json_latency(FILE *f, const char *prefix,
                         const latency_result_t *l) {
    const pn_e2e_latency_t *m = &l->m;
    const struct {
        const char *name;
        double value;
        int decimals;
    } fields[] = {
        {"latency_rate_per_s", l->rate, 0},
        {"latency_achieved_per_s", m->achieved_rate, 0},
        {"latency_samples", (double)m->samples, 0},
        {"latency_missing", (double)m->missing, 0},
        {"p50_ms", m->p50, 1},
        {"p99_ms", m->p99, 1},
        {"p999_ms", m->p999, 1},
        {"max_ms", m->max, 1},
        {"mean_ms", m->mean, 1},
        {"exec_p50_ms", m->exec_p50, 1},
        {"exec_p99_ms", m->exec_p99, 1},
        {"commit_p50_ms", m->commit_p50, 1},
        {"commit_p99_ms", m->commit_p99, 1},
        {"send_lag_p99_ms", m->send_lag_p99, 1},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char key[96];
        snprintf(key, sizeof key, "%s%s", prefix, fields[i].name);
        json_num(f, key, l->ran ? fields[i].value : NAN, fields[i].decimals);
    }
}

/* Every round's rates and ratios, in the order run. */
static void json_rounds(FILE *f, const report_t *rp) {
    const struct {
        const char *key;
        const phase_result_t *a, *b; /* b: ratio a / b */
    } series[] = {
        {"passthrough_rounds_per_s", rp->pt_rounds, NULL},
        {"alos_rounds_per_s", rp->alos_rounds, NULL},
        {"eos_rounds_per_s", rp->eos_rounds, NULL},
        {"eos_vs_passthrough_rounds", rp->eos_rounds, rp->pt_rounds},
        {"eos_vs_alos_rounds", rp->eos_rounds, rp->alos_rounds},
    };
    fprintf(f, ",\"rounds\":%zu", rp->rounds);
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++) {
        fprintf(f, ",\"%s\":[", series[i].key);
        for (size_t k = 0; k < rp->rounds; k++) {
            double v = series[i].b ? ratio(&series[i].a[k], &series[i].b[k])
                                   : PHASE_VALUE(series[i].a[k], per_s);
            if (isnan(v))
                fprintf(f, "%snull", k ? "," : "");
            else
                fprintf(f, "%s%.*f", k ? "," : "", series[i].b ? 3 : 0, v);
        }
        fprintf(f, "]");
    }
}

static void print_json(const report_t *rp) {
    const options_t *o = rp->o;
    const latency_result_t *l = &rp->lat;
    double vs_pt = rp->vs_pt, vs_alos = rp->vs_alos;
    double p99_limit = (double)o->commit_interval_ms + 25;
    FILE *f = stdout;
    fprintf(f, "{\"bench\":\"e2e\",\"commands\":%" PRIu64 ",\"streams\":%" PRIu64
               ",\"partitions\":%" PRIu64 ",\"commit_interval_ms\":%" PRIu64
               ",\"batch\":%" PRIu64 ",\"latency_seconds\":%" PRIu64
               ",\"warmup_seconds\":%" PRIu64 ",\"producer_linger_ms\":%" PRIu64,
            o->commands, o->streams, o->partitions, o->commit_interval_ms,
            o->batch, o->latency_seconds, o->warmup_seconds,
            o->producer_linger_ms);
    json_num(f, "eos_commands_per_s", PHASE_VALUE(rp->eos, per_s), 0);
    json_num(f, "alos_commands_per_s", PHASE_VALUE(rp->alos, per_s), 0);
    json_num(f, "passthrough_per_s", PHASE_VALUE(rp->pt, per_s), 0);
    json_num(f, "eos_vs_passthrough", vs_pt, 3);
    json_num(f, "eos_vs_alos", vs_alos, 3);
    json_rounds(f, rp);
    /* Per second of CPU of the batch loop: what the ratio would be if both
     * workers had had the cores to themselves (a shared machine starves
     * them unevenly). Reported beside the target, not instead of it. */
    json_num(f, "eos_per_main_cpu_s", per_main_cpu(&rp->eos), 0);
    json_num(f, "alos_per_main_cpu_s", per_main_cpu(&rp->alos), 0);
    json_num(f, "eos_vs_alos_per_main_cpu",
             per_main_cpu(&rp->eos) / per_main_cpu(&rp->alos), 3);
    json_latency(f, "", l);
    json_latency(f, "passthrough_", &rp->ptlat);
    json_num(f, "worker_peak_rss_mib", PHASE_VALUE(rp->eos, peak_rss_mib), 1);
    json_num(f, "alos_worker_peak_rss_mib", PHASE_VALUE(rp->alos, peak_rss_mib), 1);
    json_num(f, "passthrough_peak_rss_mib", PHASE_VALUE(rp->pt, peak_rss_mib), 1);
    json_num(f, "latency_worker_peak_rss_mib", PHASE_VALUE(*l, peak_rss_mib), 1);
    json_num(f, "eos_seconds", PHASE_VALUE(rp->eos, seconds), 2);
    json_num(f, "alos_seconds", PHASE_VALUE(rp->alos, seconds), 2);
    json_num(f, "passthrough_seconds", PHASE_VALUE(rp->pt, seconds), 2);
    json_usage(f, "passthrough", rp->pt.ran, &rp->pt.use);
    json_usage(f, "alos", rp->alos.ran, &rp->alos.use);
    json_usage(f, "eos", rp->eos.ran, &rp->eos.use);
    json_usage(f, "latency", l->ran, &l->use);
    json_usage(f, "ptlatency", rp->ptlat.ran, &rp->ptlat.use);
    json_num(f, "load1_start", rp->load1_start, 2);
    fprintf(f, ",\"target_eos_vs_passthrough\":0.6,\"target_eos_vs_alos\":0.9"
               ",\"target_p99_ms\":%.0f,\"target_worker_rss_mib\":200",
            p99_limit);
    json_met(f, "met_eos_vs_passthrough", vs_pt, 0.6, true);
    json_met(f, "met_eos_vs_alos", vs_alos, 0.9, true);
    json_met(f, "met_p99", l->ran ? l->m.p99 : NAN, p99_limit, false);
    json_met(f, "met_worker_rss", PHASE_VALUE(rp->eos, peak_rss_mib), 200, false);
    fprintf(f, "}\n");
}

static const char *verdict(double v, double limit, bool at_least) {
    if (isnan(v))
        return "not measured";
    return (at_least ? v >= limit : v <= limit) ? "met" : "MISSED";
}

/* CPU seconds as cores busy over the window. */
static double cores(double cpu_s, const usage_t *u) {
    return u->seconds > 0 ? cpu_s / u->seconds : NAN;
}

static void print_usage_row(const char *name, bool ran, const usage_t *u) {
    if (!ran)
        return;
    char broker[16] = "-", jit[16] = "-";
    if (!isnan(u->broker_cpu_s)) {
        snprintf(broker, sizeof broker, "%.2f", cores(u->broker_cpu_s, u));
        snprintf(jit, sizeof jit, "%.2f", cores(u->broker_jit_cpu_s, u));
    }
    printf("%-14s %9.2f %9s %9s %9.2f %8.0f%% %6.1f %7.0f%% %7.0f%% %7.0f%%\n",
           name, cores(u->sut_cpu_s, u), broker, jit, cores(u->bench_cpu_s, u),
           100 * u->machine_busy, u->load1, 100 * u->main_running,
           100 * u->main_starved,
           100 * (1 - u->main_running - u->main_starved));
}

static void print_phase(const char *name, const phase_result_t *p) {
    if (!p->ran)
        printf("%-14s %12s\n", name, "not run");
    else
        printf("%-14s %12.0f %9.2f %12.1f\n", name, p->per_s, p->seconds,
               p->peak_rss_mib);
}

static void print_latency(const char *what, const latency_result_t *l,
                          const options_t *o, double p99_limit) {
    const pn_e2e_latency_t *m = &l->m;
    if (!l->ran)
        return;
    printf("\n%s at %.0f records/s for %" PRIu64 " s (%" PRIu64
           " samples, %" PRIu64 " missing), sent -> output visible "
           "(read_committed):\n"
           "  p50 %.1f ms   p99 %.1f ms   p99.9 %.1f ms   max %.1f ms"
           "   (p99 target <= %.0f ms: %s)\n"
           "  sent -> executed (output produced)  p50 %.1f ms   p99 %.1f ms\n"
           "  executed -> visible (commit, fetch) p50 %.1f ms   p99 %.1f ms\n"
           "  (load generator behind schedule: p99 %.1f ms)\n",
           what, m->achieved_rate, o->latency_seconds, m->samples, m->missing,
           m->p50, m->p99, m->p999, m->max, p99_limit,
           verdict(m->p99, p99_limit, false), m->exec_p50, m->exec_p99,
           m->commit_p50, m->commit_p99, m->send_lag_p99);
}

static void print_table(const report_t *rp) {
    const options_t *o = rp->o;
    const latency_result_t *l = &rp->lat;
    double vs_pt = rp->vs_pt, vs_alos = rp->vs_alos;
    double p99_limit = (double)o->commit_interval_ms + 25;
    printf("%" PRIu64 " commands over %" PRIu64 " streams, %" PRIu64
           " partitions, batch %" PRIu64 ", commit interval %" PRIu64 " ms\n\n",
           o->commands, o->streams, o->partitions, o->batch,
           o->commit_interval_ms);
    printf("%-14s %12s %9s %12s\n", "phase", "records/s", "seconds",
           "peak RSS MiB");
    print_phase("passthrough", &rp->pt);
    print_phase("at_least_once", &rp->alos);
    print_phase("exactly_once", &rp->eos);
    if (rp->rounds > 1) {
        printf("(the median of %zu interleaved rounds:", rp->rounds);
        const phase_result_t *rows[] = {rp->pt_rounds, rp->alos_rounds,
                                        rp->eos_rounds};
        const char *names[] = {"passthrough", "at_least_once", "exactly_once"};
        for (size_t i = 0; i < 3; i++) {
            printf("%s %s", i ? ";" : "", names[i]);
            for (size_t k = 0; k < rp->rounds; k++)
                printf(" %.0f", PHASE_VALUE(rows[i][k], per_s));
        }
        printf(")\n");
    }
    double rss = PHASE_VALUE(rp->eos, peak_rss_mib);
    if (!isnan(vs_pt))
        printf("\neos / passthrough  %6.3f  (target >= 0.6: %s)\n", vs_pt,
               verdict(vs_pt, 0.6, true));
    if (!isnan(vs_alos))
        printf("eos / alos         %6.3f  (target >= 0.9: %s; per CPU second "
               "of the batch loop: %.3f)\n",
               vs_alos, verdict(vs_alos, 0.9, true),
               per_main_cpu(&rp->eos) / per_main_cpu(&rp->alos));
    if (!isnan(rss))
        printf("worker peak RSS    %6.1f MiB with %" PRIu64
               " streams  (target <= 200: %s)\n",
               rss, o->streams, verdict(rss, 200, false));
    print_latency("exactly-once worker", l, o, p99_limit);
    print_latency("transactional pass-through", &rp->ptlat, o, p99_limit);
    printf("\ncores busy while measured (process under test, broker with "
           "--broker-pid and its JIT compiler,\nthis bench), and where the "
           "main loop of the process under test spent the time (running,\n"
           "waiting for a CPU, blocked)\n"
           "%-14s %9s %9s %9s %9s %9s %6s %8s %8s %8s\n",
           "phase", "process", "broker", "jit", "bench", "machine", "load1",
           "running", "starved", "blocked");
    print_usage_row("passthrough", rp->pt.ran, &rp->pt.use);
    print_usage_row("at_least_once", rp->alos.ran, &rp->alos.use);
    print_usage_row("exactly_once", rp->eos.ran, &rp->eos.use);
    print_usage_row("latency", l->ran, &l->use);
    print_usage_row("ptlatency", rp->ptlat.ran, &rp->ptlat.use);
}

/* --- arguments and the run --------------------------------------------------- */

static void usage(FILE *out) {
    fprintf(out,
        "usage: panther bench e2e --bootstrap HOSTS [options]\n"
        "Exactly-once throughput and latency of 'panther worker' against a real\n"
        "broker (scripts/kafka-local start), with two baselines measured in the\n"
        "same run: at_least_once, and a transactional pass-through.\n\n"
        "  --bootstrap HOSTS        broker (default: $PN_TEST_BOOTSTRAP)\n"
        "  --commands N             commands per throughput phase (default 300000)\n"
        "  --streams S              distinct (sku, node) streams (default 100000)\n"
        "  --partitions P           partitions of every topic (default 4)\n"
        "  --commit-interval-ms MS  worker.commit.interval.ms (default 100)\n"
        "  --batch B                worker.batch.max.commands (default 5000)\n"
        "  --rounds K               interleaved rounds of the throughput phases\n"
        "                           (default 3); rates are the rounds' medians,\n"
        "                           ratios the medians of the rounds' ratios\n"
        "  --latency-seconds T      measured part of the latency phase (default 20)\n"
        "  --warmup-seconds W       unmeasured start of it (default 2)\n"
        "  --latency-rate R         commands/s there (default: half the eos rate)\n"
        "  --producer-linger-ms L   linger.ms of the latency producer (default 5)\n"
        "  --phases LIST            of warmup,passthrough,alos,eos,latency,\n"
        "                           ptlatency (default all; warmup: rounds of\n"
        "                           100000 records through the pass-through and\n"
        "                           5 s of paced load, unmeasured, for at most\n"
        "                           90 s, until the broker's JIT compiler\n"
        "                           is under 10 %% of its CPU (one round without\n"
        "                           --broker-pid), so that a fresh broker's\n"
        "                           compiling is not charged to a phase;\n"
        "                           ptlatency: the latency load through the\n"
        "                           pass-through)\n"
        "  --latency-csv FILE       write the latency histogram (1 ms buckets)\n"
        "  --perf-record FILE       perf record (DWARF call graphs) the eos\n"
        "                           worker into FILE (that run is slowed by perf)\n"
        "  --timeout-s T            give up on a phase after T s (default 600)\n"
        "  --seed X                 workload seed (default 1)\n"
        "  --broker-pid PID         also report the broker's CPU use (with\n"
        "                           kafka-local: $KAFKA_LOCAL_RUN/pid)\n"
        "  --dir D                  scratch dir for stores, logs (default /tmp)\n"
        "  --worker-set KEY=VALUE   extra worker setting (repeatable), e.g.\n"
        "                           kafka.debug=eos with log.level=debug;\n"
        "                           kafka.* ones apply to the pass-through too\n"
        "  --keep                   keep the scratch dir and the topics\n"
        "  --json                   one JSON object on stdout instead of a table\n");
}

static bool phase_on(const options_t *o, const char *name) {
    size_t len = strlen(name);
    for (const char *p = o->phases; (p = strstr(p, name)); p += len)
        if ((p == o->phases || p[-1] == ',') && (p[len] == ',' || !p[len]))
            return true;
    return false;
}

static int parse_args(int argc, char **argv, options_t *o) {
    static const struct option longopts[] = {
        {"commands", required_argument, NULL, 'n'},
        {"streams", required_argument, NULL, 's'},
        {"partitions", required_argument, NULL, 'p'},
        {"commit-interval-ms", required_argument, NULL, 'c'},
        {"batch", required_argument, NULL, 'b'},
        {"latency-seconds", required_argument, NULL, 'l'},
        {"rounds", required_argument, NULL, 'N'},
        {"warmup-seconds", required_argument, NULL, 'w'},
        {"latency-rate", required_argument, NULL, 'r'},
        {"producer-linger-ms", required_argument, NULL, 'L'},
        {"timeout-s", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 'x'},
        {"broker-pid", required_argument, NULL, 'K'},
        {"bootstrap", required_argument, NULL, 'B'},
        {"phases", required_argument, NULL, 'P'},
        {"latency-csv", required_argument, NULL, 'C'},
        {"perf-record", required_argument, NULL, 'R'},
        {"dir", required_argument, NULL, 'd'},
        {"keep", no_argument, NULL, 'k'},
        {"worker-set", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    uint64_t *numbers[128] = {
        ['n'] = &o->commands, ['s'] = &o->streams, ['p'] = &o->partitions,
        ['c'] = &o->commit_interval_ms, ['b'] = &o->batch,
        ['l'] = &o->latency_seconds, ['w'] = &o->warmup_seconds,
        ['N'] = &o->rounds,
        ['r'] = &o->latency_rate, ['L'] = &o->producer_linger_ms,
        ['t'] = &o->timeout_s, ['x'] = &o->seed, ['K'] = &o->broker_pid};
    const char **strings[128] = {['B'] = &o->bootstrap, ['P'] = &o->phases,
                                 ['C'] = &o->latency_csv, ['R'] = &o->perf_data,
                                 ['d'] = &o->dir};
    int c, idx;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
        if (c > 0 && c < 128 && numbers[c]) {
            bool zero_ok = c == 'w' || c == 'r' || c == 'L' || c == 'x';
            if (!pn_bench_parse_u64(optarg, numbers[c]) ||
                (!zero_ok && *numbers[c] == 0)) {
                fprintf(stderr, "panther bench e2e: --%s needs a %s integer, "
                                "not '%s'\n",
                        longopts[idx].name, zero_ok ? "whole" : "positive",
                        optarg);
                return 2;
            }
        } else if (c > 0 && c < 128 && strings[c]) {
            *strings[c] = optarg;
        } else if (c == 'k') {
            o->keep = true;
        } else if (c == 'S') {
            if (o->n_worker_sets == sizeof o->worker_sets / sizeof o->worker_sets[0]) {
                fprintf(stderr, "panther bench e2e: too many --worker-set\n");
                return 2;
            }
            o->worker_sets[o->n_worker_sets++] = optarg;
        } else if (c == 'j') {
            o->json = true;
        } else if (c == 'h') {
            usage(stdout);
            return -1;
        } else {
            usage(stderr);
            return 2;
        }
    }
    const char *why = NULL;
    if (optind < argc)
        why = "unexpected argument";
    else if (!o->bootstrap || !*o->bootstrap)
        why = "--bootstrap (or PN_TEST_BOOTSTRAP) is required";
    else if (o->streams > (1u << 30) || o->partitions > 1000)
        why = "--streams at most 2^30, --partitions at most 1000";
    else if (o->rounds > MAX_ROUNDS)
        why = "--rounds at most 9";
    else if ((phase_on(o, "latency") || phase_on(o, "ptlatency")) &&
             !phase_on(o, "eos") && !o->latency_rate)
        why = "the latency phases without the eos phase need --latency-rate";
    if (why) {
        fprintf(stderr, "panther bench e2e: %s\n", why);
        return 2;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n values (NaN ones left out); NaN if none. */
static double median(double *v, size_t n) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i]))
            v[m++] = v[i];
    if (m == 0)
        return NAN;
    qsort(v, m, sizeof *v, cmp_double);
    return m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
}

static int cmp_rate(const void *a, const void *b) {
    double x = (*(const phase_result_t *const *)a)->per_s;
    double y = (*(const phase_result_t *const *)b)->per_s;
    return (x > y) - (x < y);
}

/* The round of median rate (the lower middle one of an even count). */
static phase_result_t median_round(const phase_result_t *rounds, size_t n) {
    const phase_result_t *ran[MAX_ROUNDS];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (rounds[i].ran)
            ran[m++] = &rounds[i];
    if (m == 0)
        return (phase_result_t){0};
    qsort(ran, m, sizeof *ran, cmp_rate);
    return *ran[(m - 1) / 2];
}

static void summarize_rounds(report_t *rp) {
    size_t n = rp->rounds;
    rp->pt = median_round(rp->pt_rounds, n);
    rp->alos = median_round(rp->alos_rounds, n);
    rp->eos = median_round(rp->eos_rounds, n);
    /* The worker's memory: the most any round used. */
    for (size_t k = 0; k < n; k++)
        if (rp->eos_rounds[k].peak_rss_mib > rp->eos.peak_rss_mib)
            rp->eos.peak_rss_mib = rp->eos_rounds[k].peak_rss_mib;
    double vs_pt[MAX_ROUNDS], vs_alos[MAX_ROUNDS];
    for (size_t k = 0; k < n; k++) {
        vs_pt[k] = ratio(&rp->eos_rounds[k], &rp->pt_rounds[k]);
        vs_alos[k] = ratio(&rp->eos_rounds[k], &rp->alos_rounds[k]);
    }
    rp->vs_pt = median(vs_pt, n);
    rp->vs_alos = median(vs_alos, n);
}

static pn_err_t run_phases(run_t *r, report_t *rp, char *err, size_t errsz) {
    const options_t *o = r->o;
    pn_err_t e = PN_ERR_OK;
    if (phase_on(o, "warmup"))
        e = run_warmup(r, err, errsz);
    /* Interleaved rounds, so that what the shared machine and the broker
     * do meanwhile (other jobs, the JIT compiler that never quite stops)
     * falls on every phase alike. */
    for (size_t k = 0; !e && k < o->rounds; k++) {
        char name[48];
        snprintf(name, sizeof name, "passthrough-r%zu", k + 1);
        if (phase_on(o, "passthrough"))
            e = run_passthrough_phase(r, name, o->commands, &rp->pt_rounds[k],
                                      err, errsz);
        snprintf(name, sizeof name, "alos-r%zu", k + 1);
        if (!e && phase_on(o, "alos"))
            e = run_worker_phase(r, name, false, &rp->alos_rounds[k], err,
                                 errsz);
        snprintf(name, sizeof name, "eos-r%zu", k + 1);
        if (!e && phase_on(o, "eos"))
            e = run_worker_phase(r, name, true, &rp->eos_rounds[k], err, errsz);
        rp->rounds = k + 1;
    }
    if (!e)
        summarize_rounds(rp);
    if (!e && phase_on(o, "latency")) {
        r->latency_rate = o->latency_rate
                              ? o->latency_rate
                              : (uint64_t)(rp->eos.per_s / 2 + 0.5);
        if (!r->latency_rate)
            r->latency_rate = 1;
        e = run_latency_phase(r, &rp->lat, err, errsz);
    }
    if (!e && phase_on(o, "ptlatency")) {
        if (!r->latency_rate)
            r->latency_rate = o->latency_rate
                                  ? o->latency_rate
                                  : (uint64_t)(rp->eos.per_s / 2 + 0.5);
        if (!r->latency_rate)
            r->latency_rate = 1;
        e = run_ptlatency_phase(r, &rp->ptlat, err, errsz);
    }
    return e;
}

int pn_bench_e2e_main(int argc, char **argv) {
    options_t o = {.bootstrap = getenv("PN_TEST_BOOTSTRAP"),
                   .commands = 300000, .streams = 100000, .partitions = 4,
                   .commit_interval_ms = 100, .batch = 5000,
                   .latency_seconds = 20, .warmup_seconds = 2, .rounds = 3,
                   .producer_linger_ms = 5, .timeout_s = 600, .seed = 1,
                   .phases = "warmup,passthrough,alos,eos,latency,ptlatency"};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    pn_e2e_clients_quiet();
    run_t r = {.o = &o, .progress = true};
    snprintf(r.id, sizeof r.id, "bench-e2e-%ld-%ld", (long)getpid(),
             (long)time(NULL));
    if (!(r.root = pn_bench_tmpdir(o.dir, "bench-e2e")))
        return 1;
    report_t rp = {.o = &o, .load1_start = pn_e2e_load1()};
    char err[1024] = "";
    pn_err_t e = run_phases(&r, &rp, err, sizeof err);
    delete_topics(&r);
    if (e) {
        fprintf(stderr, "panther bench e2e: %s: %s\n(scratch dir kept: %s)\n",
                pn_err_name(e), err, r.root);
        rc = 1;
    } else {
        if (o.json)
            print_json(&rp);
        else
            print_table(&rp);
        if (o.latency_csv && (rp.lat.ran || rp.ptlat.ran))
            rc = write_latency_csv(o.latency_csv, &rp.lat, &rp.ptlat);
        if (!o.keep)
            pn_bench_rmdir(r.root);
        else
            fprintf(stderr, "scratch dir kept: %s\n", r.root);
    }
    free(rp.lat.m.values);
    free(rp.ptlat.m.values);
    free(r.root);
    return rc;
}
