/*
 * A fake Confluent Schema Registry for the tests: a thread of the test
 * process listening on a free 127.0.0.1 port, one thread per connection,
 * answering GET /schemas/ids/<id> with canned responses (see the ids
 * below), counting requests and recording the Authorization header.
 */
#ifndef PN_FAKE_REGISTRY_H
#define PN_FAKE_REGISTRY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* The ids the fake registry knows, and what it answers for them. Any other
 * id gets 404 {"error_code": 40403}. */
enum {
    FAKE_SR_OURS = 1,         /* 200: schemas/Command.avsc, no schemaType */
    FAKE_SR_EVOLVED = 2,      /* 200: ReserveInventory gains "channel", AVRO */
    FAKE_SR_NOT_FOUND = 3,    /* 404 {"error_code": 40403} */
    FAKE_SR_SERVER_ERROR = 4, /* 500 {"error_code": 50001} */
    FAKE_SR_SLOW = 5,         /* 200 after 3 s (or until the client leaves) */
    FAKE_SR_HUGE = 6,         /* 200, FAKE_SR_HUGE_BODY bytes, Content-Length */
    FAKE_SR_HUGE_STREAM = 7,  /* the same without Content-Length */
    FAKE_SR_PROTOBUF = 8,     /* 200, schemaType PROTOBUF */
    FAKE_SR_PLAIN_404 = 9,    /* 404 text/plain: not a registry's answer */
    FAKE_SR_REFERENCES = 10,  /* 200 with schema references */
    FAKE_SR_NOT_JSON = 11,    /* 200 with HTML */
    FAKE_SR_REDIRECT = 12,    /* 301 to FAKE_SR_OURS */
    FAKE_SR__COUNT = 16
};

#define FAKE_SR_HUGE_BODY (256 * 1024) /* length of the schema string */

typedef struct fake_sr {
    int listen_fd;
    int port;
    pthread_t thread;
    pthread_mutex_t mu;
    int stop;
    int active;                   /* connections being served */
    int requests[FAKE_SR__COUNT]; /* by id; [0]: other ids and paths */
    char last_auth[128];          /* Authorization of the last request */
    const char *expect_auth; /* set before requests: others get 401 */
    int down;                /* set: everything gets 503 */
    char *evolved_json;      /* the writer schema of FAKE_SR_EVOLVED */
} fake_sr_t;

/** Starts listening (a CUnit fatal assertion on failure). */
void fake_sr_start(fake_sr_t *f);

/** Stops and waits for every connection thread. */
void fake_sr_stop(fake_sr_t *f);

/** Requests seen for id (0: any other id or path). */
int fake_sr_requests(fake_sr_t *f, int id);

/** While down, every request gets 503. */
void fake_sr_set_down(fake_sr_t *f, int down);

/** The Authorization header of the last request ("" if none). */
void fake_sr_last_auth(fake_sr_t *f, char *out, size_t size);

/** "http://127.0.0.1:<port>" into out. */
void fake_sr_url(const fake_sr_t *f, char *out, size_t size);

/** A loopback port nobody listens on. */
int fake_sr_closed_port(void);

/* Avro binary built by hand, for the evolved writer schema. */
typedef struct fake_sr_bytes {
    uint8_t b[512];
    size_t n;
} fake_sr_bytes_t;

/** A Confluent-framed (schema id) ReserveInventory written with the
 *  evolved schema: channel "mobile", by "checkout", at 1717000000123. */
void fake_sr_evolved_reserve(fake_sr_bytes_t *o, int32_t schema_id,
                             const char *id, const char *order,
                             const char *sku, const char *node,
                             int32_t quantity);

#endif
