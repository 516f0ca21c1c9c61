/* The fake Confluent Schema Registry of fake_registry.h. */
#include "fake_registry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "panther/buf.h"
#include "panther/codec.h"
#include "pn_test.h"

typedef struct conn {
    fake_sr_t *f;
    int fd;
} conn_t;

static int get_flag(fake_sr_t *f, const int *flag) {
    pthread_mutex_lock(&f->mu);
    int v = *flag;
    pthread_mutex_unlock(&f->mu);
    return v;
}

static void set_flag(fake_sr_t *f, int *flag, int v) {
    pthread_mutex_lock(&f->mu);
    *flag = v;
    pthread_mutex_unlock(&f->mu);
}

int fake_sr_requests(fake_sr_t *f, int id) {
    pthread_mutex_lock(&f->mu);
    int n = f->requests[id];
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void send_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the client went away (timeout, size limit) */
        data += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, int status, const char *reason,
                    const char *content_type, const char *body,
                    bool with_length, const char *extra_header) {
    char head[512];
    size_t len = strlen(body);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s"
                     "Connection: close\r\n",
                     status, reason, content_type, extra_header,
                     extra_header[0] ? "\r\n" : "");
    if (with_length)
        n += snprintf(head + n, sizeof head - (size_t)n,
                      "Content-Length: %zu\r\n", len);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

static void respond_json(int fd, int status, const char *reason,
                         json_t *body) {
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    respond(fd, status, reason, "application/vnd.schemaregistry.v1+json",
            text ? text : "{}", true, "");
    free(text);
}

static void respond_error(int fd, int status, const char *reason, int code,
                          const char *message) {
    respond_json(fd, status, reason,
                 json_pack("{s:i,s:s}", "error_code", code, "message",
                           message));
}

/* True when the client closed its end (it gave up waiting). */
static bool client_gone(int fd) {
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void answer_huge(int fd, bool with_length) {
    char *body = malloc(FAKE_SR_HUGE_BODY + 32);
    if (!body)
        return;
    int n = snprintf(body, 32, "{\"schema\": \"");
    memset(body + n, 'x', FAKE_SR_HUGE_BODY);
    snprintf(body + n + FAKE_SR_HUGE_BODY, 32, "\"}");
    respond(fd, 200, "OK", "application/json", body, with_length, "");
    free(body);
}

static void answer_id(fake_sr_t *f, int fd, int id) {
    char location[128];
    switch (id) {
    case FAKE_SR_OURS:
        respond_json(fd, 200, "OK",
                     json_pack("{s:s}", "schema",
                               pn_schema_json(PN_SCHEMA_COMMAND)));
        return;
    case FAKE_SR_EVOLVED:
        respond_json(fd, 200, "OK",
                     json_pack("{s:s,s:s,s:i}", "schema", f->evolved_json,
                               "schemaType", "AVRO", "id", FAKE_SR_EVOLVED));
        return;
    case FAKE_SR_SERVER_ERROR:
        respond_error(fd, 500, "Internal Server Error", 50001,
                      "Error in the backend data store");
        return;
    case FAKE_SR_SLOW:
        for (int i = 0; i < 150 && !get_flag(f, &f->stop); i++) {
            if (client_gone(fd))
                return;
            usleep(20 * 1000);
        }
        answer_id(f, fd, FAKE_SR_OURS);
        return;
    case FAKE_SR_HUGE:
    case FAKE_SR_HUGE_STREAM:
        answer_huge(fd, id == FAKE_SR_HUGE);
        return;
    case FAKE_SR_PROTOBUF:
        respond_json(fd, 200, "OK",
                     json_pack("{s:s,s:s}", "schema",
                               "syntax = \"proto3\"; message Command {}",
                               "schemaType", "PROTOBUF"));
        return;
    case FAKE_SR_PLAIN_404:
        respond(fd, 404, "Not Found", "text/plain", "Not Found", true, "");
        return;
    case FAKE_SR_REFERENCES:
        respond_json(fd, 200, "OK",
                     json_pack("{s:s,s:[{s:s,s:s,s:i}]}", "schema",
                               "[\"panther.inventory.ReserveInventory\"]",
                               "references", "name",
                               "panther.inventory.ReserveInventory",
                               "subject", "reserve-value", "version", 1));
        return;
    case FAKE_SR_NOT_JSON:
        respond(fd, 200, "OK", "text/html", "<html>hello</html>", true, "");
        return;
    case FAKE_SR_REDIRECT:
        snprintf(location, sizeof location,
                 "Location: http://127.0.0.1:%d/schemas/ids/%d", f->port,
                 FAKE_SR_OURS);
        respond(fd, 301, "Moved Permanently", "text/plain", "", true, location);
        return;
    default:
        respond_error(fd, 404, "Not Found", 40403, "Schema not found");
    }
}

/* The Authorization header of a request, "" when absent. */
static void find_auth(const char *req, char *out, size_t size) {
    out[0] = '\0';
    for (const char *line = strstr(req, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (!strncasecmp(line, "Authorization:", 14)) {
            const char *v = line + 14;
            while (*v == ' ')
                v++;
            snprintf(out, size, "%.*s", (int)strcspn(v, "\r\n"), v);
            return;
        }
    }
}

static void serve(fake_sr_t *f, int fd) {
    char req[8192] = "";
    size_t used = 0;
    while (used < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0)
            return;
        ssize_t n = recv(fd, req + used, sizeof req - 1 - used, 0);
        if (n <= 0)
            return;
        used += (size_t)n;
        req[used] = '\0';
    }
    int id = 0;
    if (sscanf(req, "GET /schemas/ids/%d HTTP/1.1", &id) != 1 || id <= 0)
        id = 0;
    int slot = id < FAKE_SR__COUNT ? id : 0;
    char auth[128];
    find_auth(req, auth, sizeof auth);
    pthread_mutex_lock(&f->mu);
    f->requests[slot]++;
    snprintf(f->last_auth, sizeof f->last_auth, "%s", auth);
    const char *expect = f->expect_auth;
    int down = f->down;
    pthread_mutex_unlock(&f->mu);
    if (expect && strcmp(auth, expect))
        respond_error(fd, 401, "Unauthorized", 40101, "Unauthorized");
    else if (down)
        respond_error(fd, 503, "Service Unavailable", 50301,
                      "Service unavailable");
    else if (!id)
        respond(fd, 404, "Not Found", "text/plain", "no such path", true, "");
    else
        answer_id(f, fd, id);
}

static void *conn_main(void *arg) {
    conn_t *c = arg;
    serve(c->f, c->fd);
    close(c->fd);
    pthread_mutex_lock(&c->f->mu);
    c->f->active--;
    pthread_mutex_unlock(&c->f->mu);
    free(c);
    return NULL;
}

static void *accept_main(void *arg) {
    fake_sr_t *f = arg;
    while (!get_flag(f, &f->stop)) {
        struct pollfd p = {f->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(f->listen_fd, NULL, NULL);
        conn_t *c = fd >= 0 ? malloc(sizeof *c) : NULL;
        if (!c) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        *c = (conn_t){f, fd};
        pthread_mutex_lock(&f->mu);
        f->active++;
        pthread_mutex_unlock(&f->mu);
        pthread_t t;
        if (pthread_create(&t, NULL, conn_main, c) == 0) {
            pthread_detach(t);
        } else {
            conn_main(c);
        }
    }
    return NULL;
}

/* A socket bound to a free loopback port; *port receives it. */
static int bind_loopback(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) ||
        getsockname(fd, (struct sockaddr *)&addr, &len)) {
        close(fd);
        return -1;
    }
    *port = ntohs(addr.sin_port);
    return fd;
}

/* Our Command schema with a field added to ReserveInventory (with a
 * default, as a compatible evolution must) between quantity and by. */
static char *evolved_schema(void) {
    json_t *root = json_loads(pn_schema_json(PN_SCHEMA_COMMAND), 0, NULL);
    size_t i;
    json_t *rec;
    json_array_foreach(root, i, rec) {
        if (strcmp(json_string_value(json_object_get(rec, "name")),
                   "ReserveInventory"))
            continue;
        json_array_insert_new(json_object_get(rec, "fields"), 5,
                              json_pack("{s:s,s:s,s:s}", "name", "channel",
                                        "type", "string", "default", "web"));
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

void fake_sr_start(fake_sr_t *f) {
    /* Loopback requests must not go through a proxy of the environment. */
    static const char *const proxies[] = {"http_proxy",  "HTTP_PROXY",
                                          "https_proxy", "HTTPS_PROXY",
                                          "all_proxy",   "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->evolved_json = evolved_schema();
    PN_REQUIRE(f->evolved_json != NULL);
    f->listen_fd = bind_loopback(&f->port);
    PN_REQUIRE(f->listen_fd >= 0);
    PN_REQUIRE(listen(f->listen_fd, 16) == 0);
    PN_REQUIRE(pthread_create(&f->thread, NULL, accept_main, f) == 0);
}

void fake_sr_stop(fake_sr_t *f) {
    set_flag(f, &f->stop, 1);
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    while (get_flag(f, &f->active) > 0)
        usleep(10 * 1000);
    free(f->evolved_json);
    pthread_mutex_destroy(&f->mu);
}

int fake_sr_closed_port(void) {
    int port = 0;
    int fd = bind_loopback(&port);
    PN_REQUIRE(fd >= 0);
    close(fd);
    return port;
}

void fake_sr_set_down(fake_sr_t *f, int down) { set_flag(f, &f->down, down); }

void fake_sr_last_auth(fake_sr_t *f, char *out, size_t size) {
    pthread_mutex_lock(&f->mu);
    snprintf(out, size, "%s", f->last_auth);
    pthread_mutex_unlock(&f->mu);
}

void fake_sr_url(const fake_sr_t *f, char *out, size_t size) {
    snprintf(out, size, "http://127.0.0.1:%d", f->port);
}

/* --- Avro by hand ---------------------------------------------------------- */

static void put_byte(fake_sr_bytes_t *o, uint8_t v) { o->b[o->n++] = v; }

static void put_long(fake_sr_bytes_t *o, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z > 0x7f) {
        put_byte(o, (uint8_t)(z | 0x80));
        z >>= 7;
    }
    put_byte(o, (uint8_t)z);
}

static void put_str(fake_sr_bytes_t *o, const char *s) {
    put_long(o, (int64_t)strlen(s));
    memcpy(o->b + o->n, s, strlen(s));
    o->n += strlen(s);
}

static void confluent_header(fake_sr_bytes_t *o, int32_t id) {
    put_byte(o, 0x00);
    pn_be32_write(o->b + o->n, (uint32_t)id);
    o->n += 4;
}

void fake_sr_evolved_reserve(fake_sr_bytes_t *o, int32_t schema_id,
                             const char *id, const char *order,
                             const char *sku, const char *node,
                             int32_t quantity) {
    confluent_header(o, schema_id);
    put_long(o, 1); /* union branch: ReserveInventory */
    put_str(o, id);
    put_str(o, order);
    put_str(o, sku);
    put_str(o, node);
    put_long(o, quantity);
    put_str(o, "mobile"); /* channel: not ours, skipped by resolution */
    put_str(o, "checkout");
    put_long(o, 1717000000123);
}
