#include "panther/kafka.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "panther/log.h"

void pn_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                     const char *buf) {
    (void)rk;
    pn_log_rdkafka(level, fac, buf);
}

static pn_err_t set_props(rd_kafka_conf_t *conf, const pn_kafka_prop_t *props,
                          size_t n, const char *origin, char *errstr,
                          size_t errstr_size) {
    for (size_t i = 0; i < n; i++) {
        char why[512];
        if (rd_kafka_conf_set(conf, props[i].name, props[i].value, why,
                              sizeof why) != RD_KAFKA_CONF_OK)
            return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                              "%s Kafka property '%s': %s", origin,
                              props[i].name, why);
    }
    return PN_ERR_OK;
}

pn_err_t pn_kafka_conf_new(const pn_kafka_prop_t *defaults, size_t n_defaults,
                           const pn_kafka_prop_t *user, size_t n_user,
                           const pn_kafka_prop_t *fixed, size_t n_fixed,
                           rd_kafka_conf_t **confp, char *errstr,
                           size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    pn_err_t err = set_props(conf, defaults, n_defaults, "default", errstr,
                             errstr_size);
    if (!err)
        err = set_props(conf, user, n_user, "configured", errstr, errstr_size);
    if (!err)
        err = set_props(conf, fixed, n_fixed, "Panther's", errstr, errstr_size);
    if (err) {
        rd_kafka_conf_destroy(conf);
        return err;
    }
    rd_kafka_conf_set_log_cb(conf, pn_kafka_log_cb);
    *confp = conf;
    return PN_ERR_OK;
}

pn_err_t pn_kafka_partition_count(rd_kafka_t *rk, const char *topic,
                                  int timeout_ms, int32_t *count, char *errstr,
                                  size_t errstr_size) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt)
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "cannot create a handle for topic '%s'", topic);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rerr = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    pn_err_t err = PN_ERR_OK;
    if (rerr) {
        err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                         "metadata of topic '%s': %s", topic,
                         rd_kafka_err2str(rerr));
    } else if (md->topic_cnt != 1 || md->topics[0].err ||
               md->topics[0].partition_cnt == 0) {
        rd_kafka_resp_err_t terr = md->topic_cnt ? md->topics[0].err : 0;
        err = pn_err_set(errstr, errstr_size, PN_ERR_NOT_FOUND,
                         "topic '%s' does not exist%s%s", topic,
                         terr ? ": " : "", terr ? rd_kafka_err2str(terr) : "");
    } else {
        *count = md->topics[0].partition_cnt;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return err;
}

pn_err_t pn_kafka_err(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return PN_ERR_OK;
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
        return PN_ERR_KAFKA_FENCED;
    default:
        return PN_ERR_KAFKA;
    }
}

pn_err_t pn_kafka_txn_err(const rd_kafka_error_t *error) {
    if (!error)
        return PN_ERR_OK;
    if (rd_kafka_error_txn_requires_abort(error))
        return PN_ERR_KAFKA_ABORTABLE;
    if (rd_kafka_error_is_fatal(error))
        return PN_ERR_KAFKA_FENCED; /* the producer must be rebuilt */
    return pn_kafka_err(rd_kafka_error_code(error));
}

bool pn_kafka_header_int(const rd_kafka_message_t *m, const char *name,
                         int64_t *value) {
    rd_kafka_headers_t *hdrs = NULL;
    const void *v;
    size_t len;
    if (rd_kafka_message_headers(m, &hdrs) || !hdrs ||
        rd_kafka_header_get_last(hdrs, name, &v, &len) || !v || len == 0 ||
        len > 20)
        return false;
    char text[24];
    memcpy(text, v, len);
    text[len] = '\0';
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno || *end)
        return false;
    *value = n;
    return true;
}

int64_t pn_kafka_record_age_ms(const rd_kafka_message_t *m) {
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    return ts < 0 ? -1 : pn_wall_ms() - ts;
}

/* --- destroy with a deadline ------------------------------------------------ */

/* Shared by the caller and the thread that destroys; whichever is last to
 * let go frees it (the caller when the destroy finished in time, else the
 * thread, if the destroy ever returns). */
typedef struct destroyer {
    rd_kafka_t *rk;
    pthread_mutex_t lock;
    pthread_cond_t finished;
    bool done;
    bool abandoned;
} destroyer_t;

static void destroyer_free(destroyer_t *d) {
    pthread_cond_destroy(&d->finished);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static void *destroyer_main(void *arg) {
    destroyer_t *d = arg;
    rd_kafka_destroy(d->rk);
    pthread_mutex_lock(&d->lock);
    d->done = true;
    bool abandoned = d->abandoned;
    pthread_cond_signal(&d->finished);
    pthread_mutex_unlock(&d->lock);
    if (abandoned)
        destroyer_free(d);
    return NULL;
}

static destroyer_t *destroyer_new(rd_kafka_t *rk) {
    destroyer_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&d->finished, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0 || pthread_mutex_init(&d->lock, NULL) != 0) {
        if (rc == 0)
            pthread_cond_destroy(&d->finished);
        free(d);
        return NULL;
    }
    d->rk = rk;
    return d;
}

bool pn_kafka_destroy(rd_kafka_t *rk, const char *what, int timeout_ms) {
    if (!rk)
        return true;
    destroyer_t *d = destroyer_new(rk);
    pthread_t thread;
    if (!d || pthread_create(&thread, NULL, destroyer_main, d) != 0) {
        /* No thread to wait on: destroy here, without a deadline. */
        if (d)
            destroyer_free(d);
        rd_kafka_destroy(rk);
        return true;
    }
    pthread_detach(thread);
    struct timespec until = pn_timespec_after_ms(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&d->lock);
    while (!d->done &&
           pthread_cond_timedwait(&d->finished, &d->lock, &until) == 0)
        ;
    bool done = d->done;
    d->abandoned = !done;
    pthread_mutex_unlock(&d->lock);
    if (done) {
        destroyer_free(d);
        return true;
    }
    pn_log_kv(PN_LOG_WARN,
              "a Kafka client did not shut down in time and is left behind "
              "(librdkafka 2.0 can leak a partition reference on destroy)",
              PN_LOG_STR("client", what), PN_LOG_INT("waited_ms", timeout_ms));
    return false;
}
