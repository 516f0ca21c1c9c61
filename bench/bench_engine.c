/*
 * panther bench engine: decode -> decide -> encode -> store commit in one
 * process, no Kafka, against a baseline that writes the same number of keys
 * and bytes with raw RocksDB WriteBatches in the same run.
 *
 * Commands are generated and Avro-encoded into a file before the run (as a
 * commands topic holds them before a worker fetches them) and read back a
 * batch at a time outside the timed section; the timed section is what a
 * worker does with a fetched batch apart from Kafka.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "bench_util.h"
#include "panther/engine.h"
#include "clock.h"

typedef struct options {
    uint64_t streams;
    uint64_t commands;
    uint64_t batch;
    uint64_t seed;
    bool json;
    bool skip_baseline; /* for profiling the engine alone */
    bool maintain;      /* after the run, time pn_engine_maintain passes */
    uint64_t maintain_work; /* work per call (0 = the engine's default) */
    const char *dir;
} options_t;

/* What the generator remembers of a stream: whether it has stock yet and
 * the number of its latest order, so cancels and ships mostly hit. */
typedef struct generator {
    uint64_t rng;
    uint64_t streams;
    uint8_t *seen;
    uint32_t *last_order;
    uint64_t next_id;
    uint64_t counts[PN_CMD__COUNT];
} generator_t;

typedef struct batch_input {
    pn_buf_t bytes;  /* concatenated encoded commands */
    size_t *offsets; /* n + 1 offsets into bytes */
    size_t n;
} batch_input_t;

static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Writes prefix then v in decimal, zero-padded to at least `width`
 * digits, NUL-terminated; returns the end. snprintf did the same at a
 * tenth of the generator's time. */
static char *put_number(char *p, const char *prefix, uint64_t v, int width) {
    while (*prefix)
        *p++ = *prefix++;
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = n; i < width; i++)
        *p++ = '0';
    while (n)
        *p++ = digits[--n];
    *p = '\0';
    return p;
}

static pn_err_t generate_one(generator_t *g, pn_codec_t *codec, pn_buf_t *out) {
    uint64_t s = next_rand(&g->rng) % g->streams;
    char id[32], sku[32], order[48];
    put_number(id, "cmd-", g->next_id++, 1);
    put_number(sku, "SKU-", s, 7);
    pn_command_t c = {.id = pn_str_c(id), .sku_id = pn_str_c(sku),
                      .node_id = pn_str_c("DC-1"), .by = pn_str_c("bench"),
                      .at_ms = 1700000000000LL + (int64_t)g->next_id,
                      .has_quantity = true};
    unsigned roll = (unsigned)(next_rand(&g->rng) % 100);
    if (!g->seen[s] || roll < 10) {
        g->seen[s] = 1;
        c.type = PN_CMD_UPDATE;
        c.quantity = 1000 + (int32_t)(next_rand(&g->rng) % 1000);
    } else if (roll < 60) {
        c.type = PN_CMD_RESERVE;
        c.quantity = 1 + (int32_t)(next_rand(&g->rng) % 5);
        g->last_order[s]++;
    } else {
        c.type = roll < 80 ? PN_CMD_CANCEL : PN_CMD_SHIP;
        c.has_quantity = next_rand(&g->rng) % 2;
        c.quantity = 1;
    }
    if (c.type != PN_CMD_UPDATE) {
        put_number(put_number(order, "ord-", s, 1), "-", g->last_order[s], 1);
        c.order_id = pn_str_c(order);
    }
    g->counts[c.type]++;
    return pn_codec_encode_command(codec, &c, PN_FRAMING_PLAIN, 0, out);
}

/*
 * The commands are generated and Avro-encoded before the timed run, into a
 * file of [u32 LE length][bytes] records, as a commands topic holds them
 * before a worker fetches them: generating during the run would put the
 * order system's work on the engine's two cores. The file is read back a
 * batch at a time (through the page cache, not the process's memory).
 */
static pn_err_t write_input(const options_t *o, pn_codec_t *codec,
                            const char *file, generator_t *g) {
    FILE *f = fopen(file, "wb");
    if (!f)
        return PN_ERR_IO;
    pn_buf_t cmd;
    pn_buf_init(&cmd, SIZE_MAX);
    pn_err_t err = PN_ERR_OK;
    for (uint64_t i = 0; !err && i < o->commands; i++) {
        pn_buf_reset(&cmd);
        err = generate_one(g, codec, &cmd);
        uint8_t head[4] = {(uint8_t)cmd.len, (uint8_t)(cmd.len >> 8),
                           (uint8_t)(cmd.len >> 16), (uint8_t)(cmd.len >> 24)};
        if (!err && (fwrite(head, 1, 4, f) != 4 ||
                     fwrite(cmd.data, 1, cmd.len, f) != cmd.len))
            err = PN_ERR_IO;
    }
    pn_buf_free(&cmd);
    if (fclose(f) != 0 && !err)
        err = PN_ERR_IO;
    return err;
}

/* Reads the next n commands of the input file into in. */
static pn_err_t read_batch(FILE *f, size_t n, batch_input_t *in) {
    pn_buf_reset(&in->bytes);
    in->n = 0;
    in->offsets[0] = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t head[4];
        if (fread(head, 1, 4, f) != 4)
            return PN_ERR_IO;
        size_t len = (size_t)head[0] | (size_t)head[1] << 8 |
                     (size_t)head[2] << 16 | (size_t)head[3] << 24;
        pn_err_t err = pn_buf_reserve(&in->bytes, len);
        if (err)
            return err;
        if (fread(in->bytes.data + in->bytes.len, 1, len, f) != len)
            return PN_ERR_IO;
        in->bytes.len += len;
        in->offsets[++in->n] = in->bytes.len;
    }
    return PN_ERR_OK;
}

/* The timed part: what a worker does with one fetched batch. */
static pn_err_t process_batch(pn_engine_t *engine, pn_codec_t *codec,
                              const batch_input_t *in, int64_t offset,
                              char *err, size_t errsz) {
    for (size_t i = 0; i < in->n; i++) {
        pn_command_t cmd;
        pn_engine_result_t res;
        const uint8_t *p = in->bytes.data + in->offsets[i];
        size_t len = in->offsets[i + 1] - in->offsets[i];
        pn_err_t e = pn_codec_decode_command(codec, p, len, &cmd, err, errsz);
        if (e)
            return e;
        e = pn_engine_execute(engine, 0, &cmd, &res, err, errsz);
        pn_command_release(&cmd);
        if (e)
            return e;
    }
    pn_engine_checkpoint_t cp = {0, offset};
    return pn_engine_commit(engine, &cp, 1, err, errsz);
}

typedef struct engine_result {
    double seconds;
    double engine_cpu_s;  /* the engine thread's CPU in the timed part */
    double process_cpu_s; /* every thread's (writer, RocksDB's), whole run */
    double input_cpu_s;   /* generating and encoding the commands, before
                             the run (the bench's work, not the engine's) */
    double p99_batch_ms;
    double peak_rss_mib;
    uint64_t keys;
    uint64_t bytes;
    pn_engine_stats_t stats;
    /* --maintain: one whole pass of default-work calls over the store */
    uint64_t maintain_calls;
    uint64_t maintain_deleted;
    double maintain_p50_ms;
    double maintain_max_ms;
    double maintain_total_s;
} engine_result_t;

/* CPU seconds (user + system) of the calling thread, or of the process. */
static double cpu_seconds(int who) {
    struct rusage ru;
    if (getrusage(who, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Times pn_engine_maintain() calls of the default work until one pass over
 * the store is done, with a "now" that makes every covered event old. */
static pn_err_t time_maintain(pn_engine_t *engine, size_t work,
                              engine_result_t *r, char *err, size_t errsz) {
    size_t cap = 1024, n = 0;
    double *ms = malloc(cap * sizeof *ms);
    if (!ms)
        return PN_ERR_NOMEM;
    pn_engine_maintenance_t m = {0};
    pn_err_t e = PN_ERR_OK;
    do {
        double t0 = pn_mono_s();
        e = pn_engine_maintain(engine, INT64_MAX / 2, work, &m, err, errsz);
        double dt = pn_mono_s() - t0;
        r->maintain_total_s += dt;
        r->maintain_deleted += m.events_deleted;
        if (n == cap) {
            double *grown = realloc(ms, 2 * cap * sizeof *ms);
            if (!grown) {
                e = PN_ERR_NOMEM;
                break;
            }
            ms = grown;
            cap *= 2;
        }
        ms[n++] = dt * 1e3;
        if (dt * 1e3 > r->maintain_max_ms)
            r->maintain_max_ms = dt * 1e3;
    } while (!e && !m.pass_done);
    r->maintain_calls = n;
    r->maintain_p50_ms = pn_bench_percentile(ms, n, 0.5);
    free(ms);
    return e;
}

static int run_engine(const options_t *o, const char *path,
                      const char *input_file, engine_result_t *r) {
    char err[512] = "";
    pn_codec_t *codec = NULL;
    pn_store_t *store = NULL;
    pn_engine_t *engine = NULL;
    generator_t g = {.rng = o->seed, .streams = o->streams};
    batch_input_t in = {0};
    FILE *input = NULL;
    size_t n_batches = (size_t)((o->commands + o->batch - 1) / o->batch);
    double *batch_ms = calloc(n_batches, sizeof *batch_ms);
    int rc = 1;

    g.seen = calloc(o->streams, 1);
    g.last_order = calloc(o->streams, sizeof *g.last_order);
    in.offsets = calloc(o->batch + 1, sizeof *in.offsets);
    pn_buf_init(&in.bytes, SIZE_MAX);
    pn_codec_config_t cc = {0};
    /* --maintain: a retention, so that the passes after the run have
     * events to drop (nothing expires during the timed part). */
    pn_store_options_t so = {.path = path,
                             .event_retention_ms = o->maintain ? 1 : 0};
    if (!batch_ms || !g.seen || !g.last_order || !in.offsets) {
        fprintf(stderr, "bench: out of memory\n");
        goto out;
    }
    pn_err_t e = pn_codec_new(&cc, &codec, err, sizeof err);
    if (!e) {
        double g0 = cpu_seconds(RUSAGE_THREAD);
        e = write_input(o, codec, input_file, &g);
        r->input_cpu_s = cpu_seconds(RUSAGE_THREAD) - g0;
        if (e)
            snprintf(err, sizeof err, "preparing the input in %.400s: %s",
                     input_file, e == PN_ERR_IO ? strerror(errno) : pn_err_str(e));
    }
    if (!e && !(input = fopen(input_file, "rb"))) {
        e = PN_ERR_IO;
        snprintf(err, sizeof err, "%.400s: %s", input_file, strerror(errno));
    }
    if (!e)
        e = pn_store_open(&so, &store, err, sizeof err);
    pn_engine_options_t eo = {.store = store, .codec = codec};
    if (!e)
        e = pn_engine_new(&eo, &engine, err, sizeof err);
    uint64_t done = 0;
    size_t b = 0;
    double total = 0, engine_cpu = 0;
    double process_cpu0 = cpu_seconds(RUSAGE_SELF);
    pn_bench_progress_t progress;
    pn_bench_progress_start(&progress, "engine", o->commands, !o->json);
    while (!e && done < o->commands) {
        size_t n = (size_t)(o->commands - done < o->batch ? o->commands - done
                                                          : o->batch);
        e = read_batch(input, n, &in);
        if (e) {
            snprintf(err, sizeof err, "reading %.400s: %s", input_file,
                     e == PN_ERR_IO ? "short read" : pn_err_str(e));
            break;
        }
        double t0 = pn_mono_s(), c0 = cpu_seconds(RUSAGE_THREAD);
        e = process_batch(engine, codec, &in, (int64_t)(done + n), err,
                          sizeof err);
        double dt = pn_mono_s() - t0;
        engine_cpu += cpu_seconds(RUSAGE_THREAD) - c0;
        total += dt;
        batch_ms[b++] = dt * 1e3;
        done += n;
        pn_bench_progress_update(&progress, done);
    }
    if (!e) {
        /* The last batch's store write is still in flight: it counts. */
        double t0 = pn_mono_s(), c0 = cpu_seconds(RUSAGE_THREAD);
        e = pn_engine_sync(engine, err, sizeof err);
        total += pn_mono_s() - t0;
        engine_cpu += cpu_seconds(RUSAGE_THREAD) - c0;
    }
    r->process_cpu_s = cpu_seconds(RUSAGE_SELF) - process_cpu0;
    pn_bench_progress_end(&progress);
    if (!e && o->maintain)
        e = time_maintain(engine, (size_t)o->maintain_work, r, err, sizeof err);
    if (e) {
        fprintf(stderr, "bench: %s: %s\n", pn_err_name(e), err);
        goto out;
    }
    r->seconds = total;
    r->engine_cpu_s = engine_cpu;
    r->p99_batch_ms = pn_bench_percentile(batch_ms, b, 0.99);
    r->peak_rss_mib = pn_bench_peak_rss_mib();
    pn_engine_get_stats(engine, &r->stats);
    r->keys = r->stats.keys_written;
    r->bytes = r->stats.bytes_written;
    rc = 0;
out:
    pn_engine_free(engine);
    pn_store_close(store);
    pn_codec_free(codec);
    if (input)
        fclose(input);
    pn_buf_free(&in.bytes);
    free(in.offsets);
    free(g.seen);
    free(g.last_order);
    free(batch_ms);
    return rc;
}

/*
 * The baseline: the same number of batches, keys and bytes through raw
 * RocksDB WriteBatches with the same WAL setting (on, no fsync), one column
 * family, keys spread like stream keys. Everything above RocksDB that the
 * engine does is the difference.
 */
static int run_baseline(const options_t *o, const char *path, uint64_t keys,
                        uint64_t bytes, double *seconds) {
    char *errptr = NULL;
    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(opts, 1);
    rocksdb_t *db = rocksdb_open(opts, path, &errptr);
    if (errptr) {
        fprintf(stderr, "bench: baseline open: %s\n", errptr);
        free(errptr);
        rocksdb_options_destroy(opts);
        return 1;
    }
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    uint64_t n_batches = (o->commands + o->batch - 1) / o->batch;
    uint64_t keys_per_batch = keys / n_batches + 1;
    size_t value_len = keys ? (size_t)(bytes / keys) : 0;
    size_t key_len = 24;
    value_len = value_len > key_len ? value_len - key_len : 1;
    char *value = malloc(value_len);
    uint64_t rng = o->seed ^ 0xabcdef;
    uint64_t written = 0;
    double total = 0;
    for (uint64_t b = 0; b < n_batches && written < keys; b++) {
        double t0 = pn_mono_s();
        for (uint64_t k = 0; k < keys_per_batch && written < keys; k++, written++) {
            char key[64] = {0}; /* first key_len bytes used, zero padded */
            snprintf(key, sizeof key, "SKU-%07" PRIu64 "|DC-1|%06" PRIu64,
                     next_rand(&rng) % o->streams, written % 1000000);
            memset(value, (int)(written & 0xff), value_len);
            rocksdb_writebatch_put(wb, key, key_len, value, value_len);
        }
        rocksdb_write(db, wo, wb, &errptr);
        rocksdb_writebatch_clear(wb);
        total += pn_mono_s() - t0;
        if (errptr) {
            fprintf(stderr, "bench: baseline write: %s\n", errptr);
            free(errptr);
            break;
        }
    }
    *seconds = total;
    free(value);
    rocksdb_writebatch_destroy(wb);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_close(db);
    rocksdb_options_destroy(opts);
    return 0;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: panther bench engine [--streams S] [--commands N] "
            "[--batch B] [--seed X] [--dir D] [--json]\n"
            "  --streams S   distinct (sku, node) streams (default 100000)\n"
            "  --commands N  commands to run (default 1000000)\n"
            "  --batch B     commands per committed batch (default 1000)\n"
            "  --seed X      generator seed (default 1)\n"
            "  --dir D       where the stores go (default $TMPDIR or /tmp)\n"
            "  --json        print one JSON object instead of a table\n"
            "  --skip-baseline  run the engine only (for profiling)\n"
            "  --maintain    then time pn_engine_maintain calls (default "
            "work) over one pass\n"
            "  --maintain-work W  the same with W units of work per call\n");
}

static int parse_args(int argc, char **argv, options_t *o) {
    static const struct option longopts[] = {
        {"streams", required_argument, NULL, 's'},
        {"commands", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {"seed", required_argument, NULL, 'x'},
        {"dir", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"skip-baseline", no_argument, NULL, 'k'},
        {"maintain", no_argument, NULL, 'm'},
        {"maintain-work", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        uint64_t *target = c == 's' ? &o->streams
                           : c == 'n' ? &o->commands
                           : c == 'b' ? &o->batch
                           : c == 'x' ? &o->seed
                                      : NULL;
        if (target) {
            if (!pn_bench_parse_u64(optarg, target) || *target == 0) {
                const struct option *opt = longopts;
                while (opt->val != c)
                    opt++;
                fprintf(stderr, "panther bench engine: --%s needs a positive "
                                "integer, not '%s'\n",
                        opt->name, optarg);
                return 2;
            }
        } else if (c == 'd') {
            o->dir = optarg;
        } else if (c == 'j') {
            o->json = true;
        } else if (c == 'k') {
            o->skip_baseline = true;
        } else if (c == 'm') {
            o->maintain = true;
        } else if (c == 'w') {
            o->maintain = true;
            if (!pn_bench_parse_u64(optarg, &o->maintain_work) ||
                o->maintain_work == 0) {
                fprintf(stderr, "panther bench engine: --maintain-work needs "
                                "a positive integer, not '%s'\n", optarg);
                return 2;
            }
        } else if (c == 'h') {
            usage(stdout);
            return -1;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "panther bench engine: unexpected argument '%s'\n",
                argv[optind]);
        return 2;
    }
    return 0;
}

int pn_bench_engine_main(int argc, char **argv) {
    options_t o = {.streams = 100000, .commands = 1000000, .batch = 1000,
                   .seed = 1};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    char *root = pn_bench_tmpdir(o.dir, "bench-engine");
    if (!root)
        return 1;
    char engine_dir[4200], base_dir[4200], input_file[4200];
    snprintf(engine_dir, sizeof engine_dir, "%s/engine", root);
    snprintf(input_file, sizeof input_file, "%s/commands.bin", root);
    snprintf(base_dir, sizeof base_dir, "%s/baseline", root);

    engine_result_t r = {0};
    double base_s = 0;
    rc = run_engine(&o, engine_dir, input_file, &r);
    if (!rc && !o.skip_baseline)
        rc = run_baseline(&o, base_dir, r.keys, r.bytes, &base_s);
    pn_bench_rmdir(root);
    free(root);
    if (rc)
        return rc;

    double cps = (double)o.commands / r.seconds;
    double base_cps = base_s > 0 ? (double)o.commands / base_s : 0;
    unsigned maintain_work = o.maintain_work ? (unsigned)o.maintain_work
                                             : PN_ENGINE_DEFAULT_MAINTAIN_WORK;
    if (o.json) {
        printf("{\"bench\":\"engine\",\"streams\":%" PRIu64 ",\"commands\":%" PRIu64
               ",\"batch\":%" PRIu64 ",\"commands_per_s\":%.0f,"
               "\"baseline_commands_per_s\":%.0f,\"ratio\":%.3f,"
               "\"p99_batch_ms\":%.3f,\"peak_rss_mib\":%.1f,"
               "\"engine_thread_cpu_us_per_command\":%.2f,"
               "\"process_cpu_us_per_command\":%.2f,"
               "\"input_cpu_us_per_command\":%.2f,"
               "\"events\":%" PRIu64 ",\"rejected\":%" PRIu64
               ",\"keys_written\":%" PRIu64 ",\"bytes_written\":%" PRIu64
               ",\"cache_hits\":%" PRIu64 ",\"cache_misses\":%" PRIu64 "}\n",
               o.streams, o.commands, o.batch, cps, base_cps,
               base_cps > 0 ? cps / base_cps : 0,
               r.p99_batch_ms, r.peak_rss_mib,
               r.engine_cpu_s * 1e6 / (double)o.commands,
               r.process_cpu_s * 1e6 / (double)o.commands,
               r.input_cpu_s * 1e6 / (double)o.commands, r.stats.events,
               r.stats.rejected, r.keys, r.bytes, r.stats.cache_hits,
               r.stats.cache_misses);
        if (o.maintain)
            printf("{\"bench\":\"engine_maintain\",\"calls\":%" PRIu64
                   ",\"work_per_call\":%u,\"events_deleted\":%" PRIu64
                   ",\"p50_call_ms\":%.3f,\"max_call_ms\":%.3f,"
                   "\"total_s\":%.3f}\n",
                   r.maintain_calls,
                   maintain_work,
                   r.maintain_deleted, r.maintain_p50_ms, r.maintain_max_ms,
                   r.maintain_total_s);
    } else {
        printf("engine    %12.0f commands/s  (p99 batch %.2f ms, peak RSS %.1f MiB)\n"
               "baseline  %12.0f commands/s  (raw RocksDB, same keys and bytes)\n"
               "ratio     %12.3f\n"
               "CPU       %12.2f us/command on the engine thread, %.2f in all "
               "threads (store writer, RocksDB); %.2f generating the "
               "commands beforehand\n"
               "%" PRIu64 " commands over %" PRIu64 " streams in batches of %" PRIu64
               ": %" PRIu64 " events, %" PRIu64 " rejected, %" PRIu64
               " keys / %" PRIu64 " bytes written\n",
               cps, r.p99_batch_ms, r.peak_rss_mib, base_cps,
               base_cps > 0 ? cps / base_cps : 0,
               r.engine_cpu_s * 1e6 / (double)o.commands,
               r.process_cpu_s * 1e6 / (double)o.commands,
               r.input_cpu_s * 1e6 / (double)o.commands, o.commands,
               o.streams, o.batch, r.stats.events, r.stats.rejected,
               r.keys, r.bytes);
        if (o.maintain)
            printf("maintain  %" PRIu64 " calls of %u work: %" PRIu64
                   " events deleted, p50 %.2f ms, max %.2f ms per call, "
                   "%.2f s in all\n",
                   r.maintain_calls,
                   maintain_work,
                   r.maintain_deleted, r.maintain_p50_ms, r.maintain_max_ms,
                   r.maintain_total_s);
    }
    return 0;
}
