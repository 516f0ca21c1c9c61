/* panther rebuild: replays the events topic into a fresh store at
 * store.path, the way a worker's restore does (pn_engine_apply_event), for
 * every partition at once. The new store is built beside the old path and
 * moved into place only when complete, so an interrupted rebuild never
 * leaves a half-built store where a worker would open it; an existing
 * store (with --force) is moved aside, never deleted. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_config.h"
#include "cli_store.h"
#include "panther/log.h"
#include "topic_reader.h"
#include "clock.h"

/* Commit the new store every this many events (as a restore does). */
#define COMMIT_EVERY 5000

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: panther rebuild [options]\n"
            "Replays the events topic (topics.events, read_committed) into a new\n"
            "local store at store.path, as a worker's restore would, with the\n"
            "checkpoints a worker continues from. Stop the worker of that store\n"
            "first. The store is built in STORE.rebuild and moved into place when\n"
            "complete.\n\n"
            "  --force             rebuild even if store.path holds a store: the\n"
            "                      old one is moved aside to STORE.old-<time>\n"
            PN_CLI_CONFIG_USAGE
            "Progress goes to stderr: a bar on a terminal, plain lines otherwise.\n"
            "Exit status: 0 rebuilt, 1 failure or interrupted, 2 usage or\n"
            "configuration error (also: store.path not empty without --force).\n");
}

/* --- progress --------------------------------------------------------------- */

typedef struct rebuild {
    pn_cli_store_t ls;
    int32_t n_parts;
    int64_t *low;      /* by partition: first offset */
    int64_t *reached;  /* by partition: last offset seen + 1 */
    int64_t total;     /* offsets to read, all partitions */
    uint64_t applied, skipped;
    bool tty;
    double started, last_shown;
    char err[1024];
} rebuild_t;

static int64_t offsets_done(const rebuild_t *rb) {
    int64_t done = 0;
    for (int32_t p = 0; p < rb->n_parts; p++)
        done += rb->reached[p] - rb->low[p];
    return done;
}

static void show_progress(rebuild_t *rb, bool final) {
    double now = pn_mono_s();
    if (!final && now - rb->last_shown < (rb->tty ? 0.1 : 5.0))
        return;
    rb->last_shown = now;
    int64_t done = final ? rb->total : offsets_done(rb);
    double frac = rb->total > 0 ? (double)done / (double)rb->total : 1.0;
    if (frac > 1)
        frac = 1;
    double secs = now - rb->started;
    double rate = secs > 0 ? (double)rb->applied / secs : 0;
    if (rb->tty) {
        char bar[31];
        int filled = (int)(frac * 30);
        for (int i = 0; i < 30; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %3d%%  %" PRIu64 " events  %.0f/s  %.0fs%s",
                bar, (int)(frac * 100), rb->applied, rate, secs,
                final ? "\n" : "  ");
    } else {
        fprintf(stderr,
                "rebuild: %d%% (%" PRId64 " of %" PRId64 " offsets), %" PRIu64
                " events applied, %.0f events/s, %.0f s\n",
                (int)(frac * 100), done, rb->total, rb->applied, rate, secs);
    }
    fflush(stderr);
}

/* --- reading ---------------------------------------------------------------- */

/* Partition count and offset ranges of the events topic, for progress. */
static pn_err_t measure(const pn_cli_kafka_props_t *kp, const char *topic,
                        rebuild_t *rb, char *err, size_t err_size) {
    const pn_kafka_prop_t fixed[] = {{"group.id", "panther-rebuild-probe"},
                                     {"isolation.level", "read_committed"}};
    rd_kafka_conf_t *conf;
    pn_err_t e = pn_kafka_conf_new(NULL, 0, kp->props, kp->n, fixed, 2, &conf,
                                   err, err_size);
    if (e)
        return e;
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(err, err_size, PN_ERR_KAFKA,
                          "cannot create a consumer: %s", why);
    }
    e = pn_kafka_partition_count(rk, topic, 10000, &rb->n_parts, err, err_size);
    if (!e) {
        rb->low = calloc((size_t)rb->n_parts, sizeof *rb->low);
        rb->reached = calloc((size_t)rb->n_parts, sizeof *rb->reached);
        if (!rb->low || !rb->reached)
            e = pn_err_set(err, err_size, PN_ERR_NOMEM, "out of memory");
    }
    for (int32_t p = 0; !e && p < rb->n_parts; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t rerr =
            rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        if (rerr)
            e = pn_err_set(err, err_size, PN_ERR_KAFKA,
                           "offsets of %s [%d]: %s", topic, (int)p,
                           rd_kafka_err2str(rerr));
        rb->low[p] = rb->reached[p] = lo;
        rb->total += hi - lo;
    }
    rd_kafka_destroy(rk);
    return e;
}

static pn_err_t on_event(void *opaque, const rd_kafka_message_t *m) {
    rebuild_t *rb = opaque;
    bool applied;
    pn_err_t e = pn_engine_apply_event(rb->ls.engine, m->partition, m->offset,
                                       m->payload, m->len, &applied, rb->err,
                                       sizeof rb->err);
    if (e) {
        char what[sizeof rb->err];
        memcpy(what, rb->err, sizeof what);
        snprintf(rb->err, sizeof rb->err,
                 "partition %d offset %" PRId64 ": %.900s", (int)m->partition,
                 m->offset, what);
        return e;
    }
    if (applied)
        rb->applied++;
    else
        rb->skipped++;
    if (m->partition >= 0 && m->partition < rb->n_parts)
        rb->reached[m->partition] = m->offset + 1;
    if ((rb->applied + rb->skipped) % COMMIT_EVERY == 0)
        e = pn_engine_commit(rb->ls.engine, NULL, 0, rb->err, sizeof rb->err);
    show_progress(rb, false);
    return e;
}

/* --- the store's place ------------------------------------------------------ */

/* Refuses what must not be replaced; with --force moves the old store
 * aside (its lock is checked first: no running worker may lose it). */
static int check_target(const pn_config_t *cfg, const char *path, bool force,
                        char *aside, size_t aside_size) {
    aside[0] = '\0';
    size_t entries;
    pn_cli_store_kind_t kind = pn_cli_store_probe(path, &entries);
    if (kind == PN_CLI_STORE_ABSENT)
        return PN_EXIT_OK;
    if (kind == PN_CLI_STORE_OTHER) {
        fprintf(stderr, "panther rebuild: '%s' exists and is not a Panther "
                        "store; move it away or choose another store.path\n",
                path);
        return PN_EXIT_USAGE;
    }
    if (!force) {
        fprintf(stderr, "panther rebuild: '%s' already holds a store; use "
                        "--force to rebuild it (the old one is kept aside)\n",
                path);
        return PN_EXIT_USAGE;
    }
    pn_cli_store_t ls;
    char err[1024] = "";
    pn_err_t e = pn_cli_store_open(cfg, path, &ls, err, sizeof err);
    pn_cli_store_close(&ls);
    if (e) {
        fprintf(stderr, "panther rebuild: %s\n", err[0] ? err : pn_err_str(e));
        return PN_EXIT_FAILURE;
    }
    char stamp[32];
    time_t t = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", gmtime(&t));
    snprintf(aside, aside_size, "%s.old-%s", path, stamp);
    return PN_EXIT_OK;
}

static int swap_in(const char *tmp, const char *path, const char *aside) {
    if (aside[0] && rename(path, aside) != 0) {
        fprintf(stderr, "panther rebuild: cannot move '%s' to '%s': %s\n",
                path, aside, strerror(errno));
        return PN_EXIT_FAILURE;
    }
    /* An empty directory at path (ABSENT) is replaced. */
    if (!aside[0])
        rmdir(path);
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "panther rebuild: cannot move '%s' to '%s': %s\n",
                tmp, path, strerror(errno));
        return PN_EXIT_FAILURE;
    }
    if (aside[0])
        fprintf(stderr, "panther rebuild: the previous store is kept in '%s'\n",
                aside);
    return PN_EXIT_OK;
}

static int rebuild(const pn_config_t *cfg, bool force) {
    const char *path = pn_config_get_str(cfg, "store.path");
    const char *topic = pn_config_get_str(cfg, "topics.events");
    char aside[PATH_MAX], tmp[PATH_MAX];
    int rc = check_target(cfg, path, force, aside, sizeof aside);
    if (rc)
        return rc;
    snprintf(tmp, sizeof tmp, "%s.rebuild", path);
    size_t entries;
    if (pn_cli_store_probe(tmp, &entries) != PN_CLI_STORE_ABSENT) {
        fprintf(stderr, "panther rebuild: '%s' exists (an earlier rebuild "
                        "stopped?); remove it first\n", tmp);
        return PN_EXIT_USAGE;
    }
    rebuild_t rb = {.tty = isatty(STDERR_FILENO)};
    pn_cli_kafka_props_t kp;
    pn_err_t e = pn_cli_kafka_props_load(cfg, &kp);
    if (!e)
        e = measure(&kp, topic, &rb, rb.err, sizeof rb.err);
    if (!e)
        e = pn_cli_store_open(cfg, tmp, &rb.ls, rb.err, sizeof rb.err);
    if (!e) {
        fprintf(stderr, "panther rebuild: %s (%d partitions, %" PRId64
                        " offsets) into '%s'\n",
                topic, (int)rb.n_parts, rb.total, path);
        rb.started = rb.last_shown = pn_mono_s();
        e = pn_topic_read_all_until(kp.props, kp.n, topic, on_event, &rb,
                                    INT_MAX, &interrupted, rb.err,
                                    sizeof rb.err);
        /* What was read is consistent (checkpoints included), also when
         * interrupted: keep it for a worker to continue from. The write
         * is waited for: "done" only once it is on disk. */
        pn_err_t ce = pn_engine_commit(rb.ls.engine, NULL, 0, rb.err,
                                       sizeof rb.err);
        if (!ce)
            ce = pn_engine_sync(rb.ls.engine, rb.err, sizeof rb.err);
        e = e ? e : ce;
    }
    if (!e)
        show_progress(&rb, true);
    else if (rb.tty && rb.started > 0)
        fputc('\n', stderr);
    pn_cli_store_close(&rb.ls);
    pn_cli_kafka_props_free(&kp);
    free(rb.low);
    free(rb.reached);
    if (e) {
        fprintf(stderr, "panther rebuild: %s; the partial store is in '%s'\n",
                rb.err[0] ? rb.err : pn_err_str(e), tmp);
        return interrupted ? PN_EXIT_FAILURE
                           : e == PN_ERR_CONFIG ? PN_EXIT_USAGE : PN_EXIT_FAILURE;
    }
    rc = swap_in(tmp, path, aside);
    if (!rc)
        fprintf(stderr, "panther rebuild: done, %" PRIu64 " events applied "
                        "(%" PRIu64 " already present) in %.1f s\n",
                rb.applied, rb.skipped, pn_mono_s() - rb.started);
    return rc;
}

int pn_cli_rebuild(int argc, char **argv) {
    enum { OPT_FORCE = 1 };
    static const struct option longopts[] = {
        PN_CLI_CONFIG_OPTIONS,
        {"force", no_argument, NULL, OPT_FORCE},
        {NULL, 0, NULL, 0}};
    pn_cli_config_args_t args = {0};
    bool usage_error = false, force = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (pn_cli_config_option(&args, c, optarg, &usage_error))
            continue;
        if (c == OPT_FORCE)
            force = true;
        else
            usage_error = true;
    }
    pn_config_t *cfg;
    bool done;
    int rc = pn_cli_config_parsed("rebuild", &args, usage_error || optind < argc,
                                  usage, &cfg, &done);
    if (done)
        return rc;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    rc = rebuild(cfg, force);
    pn_config_destroy(cfg);
    return rc;
}
