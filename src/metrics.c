/*
 * The metrics registry and the health state (include/panther/metrics.h).
 *
 * Counter and gauge values are doubles kept as bit patterns in 64-bit
 * atomics (an add is a compare-and-swap loop), so the worker's hot path
 * never takes a lock. Histograms are updated under their family's mutex:
 * a bucket array and a sum cannot change together atomically otherwise,
 * and a scrape must never see _count disagree with the +Inf bucket.
 * The family mutex also guards the series list; series are never freed
 * before the registry, which is what lets callers keep series pointers.
 */
#include "panther/metrics.h"
#include "clock.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } metric_type_t;

static const char *const type_names[] = {"counter", "gauge", "histogram"};

#define MAX_BOUNDS 64

struct pn_series_s {
    pn_metric_t *metric;
    char **values;              /* n_labels owned strings */
    _Atomic uint64_t bits;      /* counter or gauge: the double's bits */
    uint64_t *buckets;          /* histogram: n_bounds + 1, not cumulative */
    double sum;                 /* histogram */
    bool visible;               /* under the family lock */
    struct pn_series_s *next;
};

struct pn_metric_s {
    char *name;
    char *help;
    metric_type_t type;
    char *labels[PN_METRICS_MAX_LABELS];
    size_t n_labels;
    double bounds[MAX_BOUNDS];
    size_t n_bounds;
    pthread_mutex_t lock;
    pn_series_t *first, *last;
    struct pn_metric_s *next;
};

struct pn_metrics_s {
    pthread_mutex_t lock; /* the family list */
    pn_metric_t *first, *last;
};

/* --- names ---------------------------------------------------------------- */

static bool valid_name(const char *s, size_t len, bool colon) {
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '_' || (colon && c == ':') ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static void free_labels(char **labels, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(labels[i]);
}

/* Splits "a,b" into owned names, checking each. */
static pn_err_t parse_labels(const char *spec, bool histogram, char **out,
                             size_t *n_out) {
    *n_out = 0;
    if (!spec || !*spec)
        return PN_ERR_OK;
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        bool bad = !valid_name(p, len, false) || (len >= 2 && !strncmp(p, "__", 2)) ||
                   (histogram && len == 2 && !strncmp(p, "le", 2)) ||
                   *n_out == PN_METRICS_MAX_LABELS;
        for (size_t i = 0; !bad && i < *n_out; i++)
            bad = strlen(out[i]) == len && !strncmp(out[i], p, len);
        char *copy = bad ? NULL : strndup(p, len);
        if (!copy) {
            free_labels(out, *n_out);
            *n_out = 0;
            return bad ? PN_ERR_INVALID_ARG : PN_ERR_NOMEM;
        }
        out[(*n_out)++] = copy;
        if (!end)
            return PN_ERR_OK;
        p = end + 1;
    }
}

/* --- registry ------------------------------------------------------------- */

pn_metrics_t *pn_metrics_new(void) {
    pn_metrics_t *reg = calloc(1, sizeof *reg);
    if (reg)
        pthread_mutex_init(&reg->lock, NULL);
    return reg;
}

static void series_free(pn_series_t *s, size_t n_labels) {
    if (s->values)
        free_labels(s->values, n_labels);
    free(s->values);
    free(s->buckets);
    free(s);
}

static void metric_free(pn_metric_t *m) {
    for (pn_series_t *s = m->first, *next; s; s = next) {
        next = s->next;
        series_free(s, m->n_labels);
    }
    free_labels(m->labels, m->n_labels);
    free(m->name);
    free(m->help);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void pn_metrics_free(pn_metrics_t *reg) {
    if (!reg)
        return;
    for (pn_metric_t *m = reg->first, *next; m; m = next) {
        next = m->next;
        metric_free(m);
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static bool same_shape(const pn_metric_t *a, const pn_metric_t *b) {
    if (a->type != b->type || a->n_labels != b->n_labels ||
        a->n_bounds != b->n_bounds)
        return false;
    for (size_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->labels[i], b->labels[i]))
            return false;
    for (size_t i = 0; i < a->n_bounds; i++)
        if (a->bounds[i] != b->bounds[i])
            return false;
    return true;
}

static pn_series_t *series_new(pn_metric_t *m, const char *const *values) {
    pn_series_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->metric = m;
    s->visible = true;
    bool ok = true;
    if (m->n_labels) {
        s->values = calloc(m->n_labels, sizeof *s->values);
        ok = s->values != NULL;
        for (size_t i = 0; ok && i < m->n_labels; i++)
            ok = (s->values[i] = strdup(values[i])) != NULL;
    }
    if (ok && m->type == M_HISTOGRAM)
        ok = (s->buckets = calloc(m->n_bounds + 1, sizeof *s->buckets)) != NULL;
    if (!ok) {
        series_free(s, m->n_labels);
        return NULL;
    }
    if (m->last)
        m->last->next = s;
    else
        m->first = s;
    m->last = s;
    return s;
}

/* A family as asked for, not yet in the registry. */
static pn_err_t metric_make(const char *name, const char *help,
                            metric_type_t type, const char *labels,
                            const double *bounds, size_t n_bounds,
                            pn_metric_t **mp) {
    *mp = NULL;
    if (!name || !valid_name(name, strlen(name), true))
        return PN_ERR_INVALID_ARG;
    if (type == M_HISTOGRAM) {
        if (!bounds || n_bounds == 0 || n_bounds > MAX_BOUNDS)
            return PN_ERR_INVALID_ARG;
        for (size_t i = 0; i < n_bounds; i++)
            if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1]))
                return PN_ERR_INVALID_ARG;
    }
    pn_metric_t *m = calloc(1, sizeof *m);
    if (!m)
        return PN_ERR_NOMEM;
    pthread_mutex_init(&m->lock, NULL);
    m->type = type;
    if (type == M_HISTOGRAM) {
        memcpy(m->bounds, bounds, n_bounds * sizeof *bounds);
        m->n_bounds = n_bounds;
    }
    pn_err_t err = parse_labels(labels, type == M_HISTOGRAM, m->labels,
                                &m->n_labels);
    if (!err) {
        m->name = strdup(name);
        m->help = strdup(help ? help : "");
        if (!m->name || !m->help)
            err = PN_ERR_NOMEM;
    }
    /* An unlabelled family shows its one series from the start. */
    if (!err && m->n_labels == 0 && !series_new(m, NULL))
        err = PN_ERR_NOMEM;
    if (err) {
        metric_free(m);
        return err;
    }
    *mp = m;
    return PN_ERR_OK;
}

static pn_err_t metric_register(pn_metrics_t *reg, const char *name,
                                const char *help, metric_type_t type,
                                const char *labels, const double *bounds,
                                size_t n_bounds, pn_metric_t **metricp) {
    *metricp = NULL;
    if (!reg)
        return PN_ERR_INVALID_ARG;
    pn_metric_t *m;
    pn_err_t err = metric_make(name, help, type, labels, bounds, n_bounds, &m);
    if (err)
        return err;
    pthread_mutex_lock(&reg->lock);
    pn_metric_t *found = reg->first;
    while (found && strcmp(found->name, name))
        found = found->next;
    if (found) {
        err = same_shape(found, m) ? PN_ERR_OK : PN_ERR_INVALID_ARG;
        metric_free(m);
        m = err ? NULL : found;
    } else {
        if (reg->last)
            reg->last->next = m;
        else
            reg->first = m;
        reg->last = m;
    }
    pthread_mutex_unlock(&reg->lock);
    *metricp = m;
    return err;
}

pn_err_t pn_metrics_counter(pn_metrics_t *reg, const char *name,
                            const char *help, const char *labels,
                            pn_metric_t **metricp) {
    return metric_register(reg, name, help, M_COUNTER, labels, NULL, 0,
                           metricp);
}

pn_err_t pn_metrics_gauge(pn_metrics_t *reg, const char *name,
                          const char *help, const char *labels,
                          pn_metric_t **metricp) {
    return metric_register(reg, name, help, M_GAUGE, labels, NULL, 0, metricp);
}

pn_err_t pn_metrics_histogram(pn_metrics_t *reg, const char *name,
                              const char *help, const char *labels,
                              const double *bounds, size_t n_bounds,
                              pn_metric_t **metricp) {
    return metric_register(reg, name, help, M_HISTOGRAM, labels, bounds,
                           n_bounds, metricp);
}

/* --- series --------------------------------------------------------------- */

static pn_series_t *find_series(pn_metric_t *m, const char *const *values) {
    for (pn_series_t *s = m->first; s; s = s->next) {
        size_t i = 0;
        while (i < m->n_labels && !strcmp(s->values[i], values[i]))
            i++;
        if (i == m->n_labels)
            return s;
    }
    return NULL;
}

static void series_zero(pn_series_t *s) {
    atomic_store(&s->bits, 0); /* the bits of +0.0 */
    if (s->buckets)
        memset(s->buckets, 0, (s->metric->n_bounds + 1) * sizeof *s->buckets);
    s->sum = 0;
}

pn_series_t *pn_metric_with(pn_metric_t *m, const char *const *values) {
    if (!m || (m->n_labels && !values))
        return NULL;
    for (size_t i = 0; i < m->n_labels; i++)
        if (!values[i])
            return NULL;
    pthread_mutex_lock(&m->lock);
    pn_series_t *s = find_series(m, values);
    if (s)
        s->visible = true;
    else
        s = series_new(m, values);
    pthread_mutex_unlock(&m->lock);
    return s;
}

void pn_metric_remove(pn_metric_t *m, const char *const *values) {
    if (!m || (m->n_labels && !values))
        return;
    for (size_t i = 0; i < m->n_labels; i++)
        if (!values[i])
            return;
    pthread_mutex_lock(&m->lock);
    pn_series_t *s = find_series(m, values);
    if (s) {
        s->visible = false;
        series_zero(s);
    }
    pthread_mutex_unlock(&m->lock);
}

static double bits_to_double(uint64_t bits) {
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static uint64_t double_to_bits(double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

void pn_series_add(pn_series_t *s, double v) {
    if (!s || isnan(v) || s->metric->type == M_HISTOGRAM ||
        (s->metric->type == M_COUNTER && v < 0))
        return;
    uint64_t old = atomic_load(&s->bits);
    while (!atomic_compare_exchange_weak(
        &s->bits, &old, double_to_bits(bits_to_double(old) + v)))
        ;
}

void pn_series_inc(pn_series_t *s) { pn_series_add(s, 1); }

void pn_series_set(pn_series_t *s, double v) {
    if (s && s->metric->type == M_GAUGE)
        atomic_store(&s->bits, double_to_bits(v));
}

void pn_series_observe(pn_series_t *s, double v) {
    if (!s || isnan(v) || s->metric->type != M_HISTOGRAM)
        return;
    pn_metric_t *m = s->metric;
    size_t b = 0;
    while (b < m->n_bounds && v > m->bounds[b])
        b++;
    pthread_mutex_lock(&m->lock);
    s->buckets[b]++;
    s->sum += v;
    pthread_mutex_unlock(&m->lock);
}

double pn_series_value(const pn_series_t *s) {
    if (!s)
        return 0;
    if (s->metric->type != M_HISTOGRAM)
        return bits_to_double(atomic_load(&s->bits));
    pn_metric_t *m = s->metric;
    pthread_mutex_lock(&m->lock);
    uint64_t count = 0;
    for (size_t i = 0; i <= m->n_bounds; i++)
        count += s->buckets[i];
    pthread_mutex_unlock(&m->lock);
    return (double)count;
}

/* --- rendering ------------------------------------------------------------ */

/* The shortest text that reads back as v (Go's ParseFloat, which Prometheus
 * uses, and Python's float() accept it), and the exposition spellings of
 * the special values. */
static void format_value(char *out, size_t size, double v) {
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* Counts print as integers, not 4e+05. */
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, size, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* HELP text escapes \ and newline; label values also escape ". */
static pn_err_t append_escaped(pn_buf_t *out, const char *s, bool quote) {
    pn_err_t err = PN_ERR_OK;
    for (; *s && !err; s++) {
        if (*s == '\\')
            err = pn_buf_append(out, "\\\\", 2);
        else if (*s == '\n')
            err = pn_buf_append(out, "\\n", 2);
        else if (quote && *s == '"')
            err = pn_buf_append(out, "\\\"", 2);
        else
            err = pn_buf_append_byte(out, (uint8_t)*s);
    }
    return err;
}

/* name{l1="v1",...,extra="x"} value\n; `extra` (le) may be NULL. */
static pn_err_t append_sample(pn_buf_t *out, const pn_metric_t *m,
                              const pn_series_t *s, const char *suffix,
                              const char *extra_value, double v) {
    pn_err_t err = pn_buf_appendf(out, "%s%s", m->name, suffix);
    size_t n = m->n_labels + (extra_value ? 1 : 0);
    for (size_t i = 0; i < n && !err; i++) {
        bool le = i == m->n_labels;
        err = pn_buf_appendf(out, "%s%s=\"", i ? "," : "{",
                             le ? "le" : m->labels[i]);
        if (!err)
            err = append_escaped(out, le ? extra_value : s->values[i], true);
        if (!err)
            err = pn_buf_append_byte(out, '"');
    }
    if (!err && n)
        err = pn_buf_append_byte(out, '}');
    char text[40];
    format_value(text, sizeof text, v);
    if (!err)
        err = pn_buf_appendf(out, " %s\n", text);
    return err;
}

static pn_err_t append_histogram(pn_buf_t *out, const pn_metric_t *m,
                                 const pn_series_t *s) {
    uint64_t cumulative = 0;
    pn_err_t err = PN_ERR_OK;
    char le[40];
    for (size_t i = 0; i <= m->n_bounds && !err; i++) {
        cumulative += s->buckets[i];
        if (i < m->n_bounds)
            format_value(le, sizeof le, m->bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        err = append_sample(out, m, s, "_bucket", le, (double)cumulative);
    }
    if (!err)
        err = append_sample(out, m, s, "_sum", NULL, s->sum);
    if (!err)
        err = append_sample(out, m, s, "_count", NULL, (double)cumulative);
    return err;
}

static pn_err_t render_metric(pn_metric_t *m, pn_buf_t *out) {
    pn_err_t err = pn_buf_appendf(out, "# HELP %s ", m->name);
    if (!err)
        err = append_escaped(out, m->help, false);
    if (!err)
        err = pn_buf_appendf(out, "\n# TYPE %s %s\n", m->name,
                             type_names[m->type]);
    pthread_mutex_lock(&m->lock);
    for (pn_series_t *s = m->first; s && !err; s = s->next) {
        if (!s->visible)
            continue;
        if (m->type == M_HISTOGRAM)
            err = append_histogram(out, m, s);
        else
            err = append_sample(out, m, s, "", NULL,
                                bits_to_double(atomic_load(&s->bits)));
    }
    pthread_mutex_unlock(&m->lock);
    return err;
}

pn_err_t pn_metrics_render(pn_metrics_t *reg, pn_buf_t *out) {
    if (!reg || !out)
        return PN_ERR_INVALID_ARG;
    /* Registration is rare: holding the list lock for a scrape is fine
     * (family locks nest inside it, never the other way round). */
    pthread_mutex_lock(&reg->lock);
    pn_err_t err = PN_ERR_OK;
    for (pn_metric_t *m = reg->first; m && !err; m = m->next)
        err = render_metric(m, out);
    pthread_mutex_unlock(&reg->lock);
    return err;
}

/* --- health --------------------------------------------------------------- */

struct pn_health_s {
    int64_t stall_ms;
    _Atomic int64_t last_beat_ms;
    _Atomic bool ready;
    _Atomic(const char *) reason;
};

pn_health_t *pn_health_new(int64_t stall_ms) {
    pn_health_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->stall_ms = stall_ms > 0 ? stall_ms : 30000;
    atomic_store(&h->last_beat_ms, pn_mono_ms());
    atomic_store(&h->reason, "starting");
    return h;
}

void pn_health_free(pn_health_t *h) { free(h); }

void pn_health_beat(pn_health_t *h) {
    if (h)
        atomic_store(&h->last_beat_ms, pn_mono_ms());
}

void pn_health_set_ready(pn_health_t *h, bool ready, const char *reason) {
    if (!h)
        return;
    atomic_store(&h->reason, reason ? reason : "not ready");
    atomic_store(&h->ready, ready);
}

bool pn_health_live(const pn_health_t *h, int64_t *age_ms) {
    int64_t age = pn_mono_ms() - atomic_load(&((pn_health_t *)h)->last_beat_ms);
    if (age_ms)
        *age_ms = age;
    return age <= h->stall_ms;
}

bool pn_health_ready(const pn_health_t *h, const char **reason) {
    pn_health_t *hh = (pn_health_t *)h;
    bool ready = atomic_load(&hh->ready);
    if (reason)
        *reason = ready ? "" : atomic_load(&hh->reason);
    return ready;
}

/* --- HTTP handlers -------------------------------------------------------- */

static void serve_metrics(void *opaque, const char *path,
                          pn_http_response_t *r) {
    (void)path;
    if (pn_metrics_render(opaque, &r->body)) {
        pn_buf_reset(&r->body);
        r->status = 500;
        if (pn_buf_appendf(&r->body, "metrics cannot be rendered\n"))
            pn_buf_reset(&r->body);
        return;
    }
    r->status = 200;
    r->content_type = PN_METRICS_CONTENT_TYPE;
}

static void serve_livez(void *opaque, const char *path, pn_http_response_t *r) {
    (void)path;
    int64_t age;
    bool live = pn_health_live(opaque, &age);
    r->status = live ? 200 : 503;
    pn_err_t err = live ? pn_buf_appendf(&r->body, "ok\n")
                        : pn_buf_appendf(&r->body,
                                         "stalled: no progress for %lld ms\n",
                                         (long long)age);
    if (err)
        pn_buf_reset(&r->body);
}

static void serve_readyz(void *opaque, const char *path,
                         pn_http_response_t *r) {
    (void)path;
    const char *reason;
    bool ready = pn_health_ready(opaque, &reason);
    r->status = ready ? 200 : 503;
    pn_err_t err = ready ? pn_buf_appendf(&r->body, "ready\n")
                         : pn_buf_appendf(&r->body, "not ready: %s\n", reason);
    if (err)
        pn_buf_reset(&r->body);
}

size_t pn_metrics_http_routes(pn_metrics_t *reg, pn_health_t *health,
                              pn_http_route_t *routes) {
    size_t n = 0;
    if (reg)
        routes[n++] = (pn_http_route_t){"/metrics", serve_metrics, reg};
    if (health) {
        routes[n++] = (pn_http_route_t){"/livez", serve_livez, health};
        routes[n++] = (pn_http_route_t){"/readyz", serve_readyz, health};
    }
    return n;
}
