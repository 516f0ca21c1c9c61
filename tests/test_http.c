/* The embedded HTTP server: real requests over a loopback socket (raw, so
 * that malformed and oversized requests reach the server as written),
 * routing, methods, limits, and the percent-decoding of path segments. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "panther/http.h"
#include "pn_test.h"

/* --- a minimal client -------------------------------------------------------- */

typedef struct reply {
    int status; /* -1: no reply (connection closed or failed) */
    char head[4096];
    char *body;
    size_t body_len;
} reply_t;

static void reply_free(reply_t *r) {
    free(r->body);
    memset(r, 0, sizeof *r);
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends `raw` as is and reads the whole answer (the request asks the
 * server to close). */
static void send_raw(int port, const char *raw, size_t raw_len, reply_t *r) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    int fd = connect_to(port);
    if (fd < 0)
        return;
    for (size_t off = 0; off < raw_len;) {
        ssize_t n = send(fd, raw + off, raw_len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    int status;
    if (end && sscanf(buf, "HTTP/1.%*d %d", &status) == 1) {
        r->status = status;
        size_t head_len = (size_t)(end - buf);
        snprintf(r->head, sizeof r->head, "%.*s", (int)head_len, buf);
        r->body_len = len - head_len - 4;
        r->body = malloc(r->body_len + 1);
        memcpy(r->body, end + 4, r->body_len);
        r->body[r->body_len] = '\0';
    }
    free(buf);
}

static void request(int port, const char *method, const char *path, reply_t *r) {
    size_t n = strlen(method) + strlen(path) + 128;
    char *raw = malloc(n);
    int len = snprintf(raw, n,
                       "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                       method, path);
    send_raw(port, raw, (size_t)len, r);
    free(raw);
}

static bool has_header(const reply_t *r, const char *line) {
    return strcasestr(r->head, line) != NULL;
}

/* --- handlers ------------------------------------------------------------------ */

static void hello(void *opaque, const char *path, pn_http_response_t *resp) {
    (void)opaque;
    (void)path;
    PN_ASSERT(pn_buf_appendf(&resp->body, "hello\n") == PN_ERR_OK);
}

/* Echoes the raw path it was given. */
static void echo(void *opaque, const char *path, pn_http_response_t *resp) {
    resp->content_type = opaque;
    PN_ASSERT(pn_buf_appendf(&resp->body, "%s", path) == PN_ERR_OK);
}

static void teapot(void *opaque, const char *path, pn_http_response_t *resp) {
    (void)opaque;
    (void)path;
    resp->status = 418;
    resp->content_type = "application/json";
    PN_ASSERT(pn_buf_appendf(&resp->body, "{\"error\":\"teapot\"}") == PN_ERR_OK);
}

static void bad_status(void *opaque, const char *path, pn_http_response_t *resp) {
    (void)opaque;
    (void)path;
    resp->status = 42;
}

static void empty(void *opaque, const char *path, pn_http_response_t *resp) {
    (void)opaque;
    (void)path;
    resp->status = 204;
}

static const pn_http_route_t routes[] = {
    {"/hello", hello, NULL},
    {"/echo/", echo, "application/x-echo"},
    {"/teapot", teapot, NULL},
    {"/bad", bad_status, NULL},
    {"/empty", empty, NULL},
};

static pn_http_server_t *start(void) {
    pn_http_server_t *server = NULL;
    char err[256] = "";
    pn_err_t e = pn_http_server_start("127.0.0.1", 0, routes,
                                      sizeof routes / sizeof routes[0], &server,
                                      err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "start: %s", err);
    PN_ASSERT(pn_http_server_port(server) > 0);
    return server;
}

/* --- tests ------------------------------------------------------------------- */

static void test_routes_and_status(void) {
    pn_http_server_t *server = start();
    int port = pn_http_server_port(server);
    reply_t r;
    request(port, "GET", "/hello", &r);
    PN_ASSERT_EQ_INT(r.status, 200);
    PN_ASSERT_EQ_STR(r.body, "hello\n");
    PN_ASSERT(has_header(&r, "Content-Type: text/plain"));
    PN_ASSERT(has_header(&r, "Content-Length: 6"));
    reply_free(&r);
    /* A prefix without a trailing '/' matches exactly. */
    const char *not_found[] = {"/hello/", "/hellox", "/hello/x", "/", "/echo",
                               "/nothing", "/HELLO"};
    for (size_t i = 0; i < sizeof not_found / sizeof not_found[0]; i++) {
        request(port, "GET", not_found[i], &r);
        PN_ASSERT_(r.status == 404, CU_FALSE, "%s: %d", not_found[i], r.status);
        reply_free(&r);
    }
    /* A prefix with one matches everything below it; the handler sees the
     * raw path, escapes intact, query string cut. */
    request(port, "GET", "/echo/a%2Fb/c%20d?x=1&y=%41", &r);
    PN_ASSERT_EQ_INT(r.status, 200);
    PN_ASSERT_EQ_STR(r.body, "/echo/a%2Fb/c%20d");
    PN_ASSERT(has_header(&r, "Content-Type: application/x-echo"));
    reply_free(&r);
    request(port, "GET", "/echo/", &r);
    PN_ASSERT_EQ_INT(r.status, 200);
    PN_ASSERT_EQ_STR(r.body, "/echo/");
    reply_free(&r);
    /* Status and content type come from the handler. */
    request(port, "GET", "/teapot", &r);
    PN_ASSERT_EQ_INT(r.status, 418);
    PN_ASSERT_EQ_STR(r.body, "{\"error\":\"teapot\"}");
    PN_ASSERT(has_header(&r, "Content-Type: application/json"));
    reply_free(&r);
    request(port, "GET", "/empty", &r);
    PN_ASSERT_EQ_INT(r.status, 204);
    PN_ASSERT_EQ_INT(r.body_len, 0);
    reply_free(&r);
    /* A handler's nonsense status is the server's fault: 500. */
    request(port, "GET", "/bad", &r);
    PN_ASSERT_EQ_INT(r.status, 500);
    reply_free(&r);
    pn_http_server_stop(server);
}

static void test_methods(void) {
    pn_http_server_t *server = start();
    int port = pn_http_server_port(server);
    reply_t r;
    const char *refused[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        request(port, refused[i], "/hello", &r);
        PN_ASSERT_(r.status == 405, CU_FALSE, "%s: %d", refused[i], r.status);
        PN_ASSERT(has_header(&r, "Allow: GET, HEAD"));
        reply_free(&r);
    }
    /* Also on paths that do not exist: the method is checked first. */
    request(port, "POST", "/nothing", &r);
    PN_ASSERT_EQ_INT(r.status, 405);
    reply_free(&r);
    /* HEAD: the headers of the GET, no body. */
    request(port, "HEAD", "/hello", &r);
    PN_ASSERT_EQ_INT(r.status, 200);
    PN_ASSERT(has_header(&r, "Content-Length: 6"));
    PN_ASSERT_EQ_INT(r.body_len, 0);
    reply_free(&r);
    request(port, "HEAD", "/nothing", &r);
    PN_ASSERT_EQ_INT(r.status, 404);
    PN_ASSERT_EQ_INT(r.body_len, 0);
    reply_free(&r);
    pn_http_server_stop(server);
}

static void test_limits(void) {
    pn_http_server_t *server = start();
    int port = pn_http_server_port(server);
    reply_t r;
    /* Our own limit: 4096 bytes of path. */
    char *path = malloc(100001);
    memcpy(path, "/echo/", 6);
    memset(path + 6, 'a', 100000 - 6);
    path[4096] = '\0';
    request(port, "GET", path, &r);
    PN_ASSERT_EQ_INT(r.status, 200);
    PN_ASSERT_EQ_INT(r.body_len, 4096);
    reply_free(&r);
    path[4096] = 'a';
    path[4097] = '\0';
    request(port, "GET", path, &r);
    PN_ASSERT_EQ_INT(r.status, 414);
    reply_free(&r);
    /* Past the connection's memory: libmicrohttpd refuses it itself. */
    path[100000] = '\0';
    request(port, "GET", path, &r);
    PN_ASSERT_EQ_INT(r.status, 414);
    reply_free(&r);
    free(path);
    /* Huge headers: 431 from libmicrohttpd. */
    size_t big = 64 * 1024;
    char *raw = malloc(big + 256);
    int n = snprintf(raw, 256, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(raw + n, 'b', big);
    memcpy(raw + n + big, "\r\nConnection: close\r\n\r\n", 24);
    send_raw(port, raw, (size_t)n + big + 23, &r);
    PN_ASSERT_(r.status == 431 || r.status == 413 || r.status == -1, CU_FALSE,
               "huge header: %d", r.status);
    reply_free(&r);
    free(raw);
    /* Bodies are refused, announced by length or chunked. */
    const char *with_body =
        "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        "Connection: close\r\n\r\nhello";
    send_raw(port, with_body, strlen(with_body), &r);
    PN_ASSERT_EQ_INT(r.status, 413);
    reply_free(&r);
    const char *chunked =
        "GET /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    send_raw(port, chunked, strlen(chunked), &r);
    PN_ASSERT_EQ_INT(r.status, 413);
    reply_free(&r);
    const char *zero_length =
        "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n";
    send_raw(port, zero_length, strlen(zero_length), &r);
    PN_ASSERT_EQ_INT(r.status, 200);
    reply_free(&r);
    /* Garbage is answered (400) or dropped, never served. */
    const char *garbage = "\x01\x02 nonsense\r\n\r\n";
    send_raw(port, garbage, strlen(garbage), &r);
    PN_ASSERT(r.status == 400 || r.status == -1 || r.status >= 500);
    reply_free(&r);
    /* And the server is still fine. */
    request(port, "GET", "/hello", &r);
    PN_ASSERT_EQ_INT(r.status, 200);
    reply_free(&r);
    pn_http_server_stop(server);
}

/* Keep-alive: a second request on the same connection. */
static void test_keep_alive(void) {
    pn_http_server_t *server = start();
    int fd = connect_to(pn_http_server_port(server));
    PN_REQUIRE(fd >= 0);
    const char *first = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    PN_REQUIRE(send(fd, first, strlen(first), MSG_NOSIGNAL) == (ssize_t)strlen(first));
    char buf[4096] = "";
    size_t len = 0;
    while (len < sizeof buf - 1 && !strstr(buf, "hello\n")) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    PN_ASSERT(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    const char *second = "GET /echo/z HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    PN_REQUIRE(send(fd, second, strlen(second), MSG_NOSIGNAL) == (ssize_t)strlen(second));
    len = 0;
    buf[0] = '\0';
    for (;;) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    PN_ASSERT(strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "/echo/z"));
    pn_http_server_stop(server);
}

typedef struct load {
    int port;
    int id;
    int ok;
} load_t;

static void *load_thread(void *arg) {
    load_t *l = arg;
    for (int i = 0; i < 150; i++) {
        char path[64], want[64];
        snprintf(path, sizeof path, "/echo/t%d/%d", l->id, i);
        snprintf(want, sizeof want, "/echo/t%d/%d", l->id, i);
        reply_t r;
        request(l->port, "GET", path, &r);
        if (r.status == 200 && r.body && strcmp(r.body, want) == 0)
            l->ok++;
        reply_free(&r);
    }
    return NULL;
}

static void test_concurrent_requests(void) {
    pn_http_server_t *server = start();
    enum { THREADS = 8 };
    pthread_t th[THREADS];
    load_t loads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        loads[i] = (load_t){pn_http_server_port(server), i, 0};
        PN_REQUIRE(pthread_create(&th[i], NULL, load_thread, &loads[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        PN_ASSERT_EQ_INT(loads[i].ok, 150);
    }
    pn_http_server_stop(server);
}

static void test_start_errors(void) {
    pn_http_server_t *server = start(), *second = NULL;
    char err[256] = "";
    /* The port is taken. */
    PN_ASSERT_EQ_INT(pn_http_server_start("127.0.0.1", pn_http_server_port(server),
                                          routes, 1, &second, err, sizeof err),
                     PN_ERR_IO);
    PN_ASSERT(second == NULL);
    PN_ASSERT(strstr(err, "127.0.0.1") != NULL);
    pn_http_server_stop(server);
    PN_ASSERT_EQ_INT(pn_http_server_start("not a host name!", 0, routes, 1,
                                          &second, err, sizeof err),
                     PN_ERR_CONFIG);
    PN_ASSERT_EQ_INT(pn_http_server_start("127.0.0.1", 70000, routes, 1,
                                          &second, err, sizeof err),
                     PN_ERR_INVALID_ARG);
    pn_http_route_t bad = {"no-slash", hello, NULL};
    PN_ASSERT_EQ_INT(pn_http_server_start("127.0.0.1", 0, &bad, 1, &second,
                                          err, sizeof err),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT(second == NULL);
    pn_http_server_stop(NULL);
    PN_ASSERT_EQ_INT(pn_http_server_port(NULL), 0);
    /* IPv6 loopback, when the host has it. */
    if (pn_http_server_start("::1", 0, routes, 1, &second, err, sizeof err) ==
        PN_ERR_OK) {
        PN_ASSERT(pn_http_server_port(second) > 0);
        pn_http_server_stop(second);
    }
    /* No routes: everything is 404. */
    PN_REQUIRE_OK(pn_http_server_start("127.0.0.1", 0, NULL, 0, &second, err,
                                       sizeof err));
    reply_t r;
    request(pn_http_server_port(second), "GET", "/hello", &r);
    PN_ASSERT_EQ_INT(r.status, 404);
    reply_free(&r);
    pn_http_server_stop(second);
}

/* --- percent-decoding ---------------------------------------------------------- */

static pn_err_t decode(const char *in, char *out, size_t out_size, size_t *n) {
    return pn_http_decode_segment(in, strlen(in), out, out_size, n);
}

static void test_decode_segment(void) {
    char out[64];
    size_t n;
    PN_REQUIRE_OK(decode("SKU-1", out, sizeof out, &n));
    PN_ASSERT_EQ_STR(out, "SKU-1");
    PN_ASSERT_EQ_INT(n, 5);
    PN_REQUIRE_OK(decode("a%2Fb", out, sizeof out, &n));
    PN_ASSERT_EQ_STR(out, "a/b");
    PN_REQUIRE_OK(decode("a%2fb%7C%25", out, sizeof out, &n));
    PN_ASSERT_EQ_STR(out, "a/b|%");
    PN_REQUIRE_OK(decode("a+b%20c", out, sizeof out, &n));
    PN_ASSERT_EQ_STR(out, "a+b c"); /* '+' is not a space in a path */
    PN_REQUIRE_OK(decode("", out, sizeof out, &n));
    PN_ASSERT_EQ_INT(n, 0);
    PN_ASSERT_EQ_STR(out, "");
    /* UTF-8, encoded and raw. */
    PN_REQUIRE_OK(decode("caf%C3%A9-%E2%82%AC-%F0%9F%90%86", out, sizeof out, &n));
    PN_ASSERT_EQ_STR(out, "caf\xC3\xA9-\xE2\x82\xAC-\xF0\x9F\x90\x86");
    PN_ASSERT_EQ_INT(n, 14);
    PN_REQUIRE_OK(decode("\xC3\xA9t\xC3\xA9", out, sizeof out, &n));
    PN_ASSERT_EQ_STR(out, "\xC3\xA9t\xC3\xA9");
    /* Bad escapes. */
    const char *malformed[] = {
        "%", "%2", "a%", "a%4", "%zz", "%G1", "%1G", "%-1", "%%41",
        "%00", "a%00b",                       /* encoded NUL */
        "%C3", "%C3%28", "%FF", "%80",        /* invalid UTF-8 */
        "%C0%AF", "%E0%80%AF", "%F0%80%80%AF", /* overlong */
        "%ED%A0%80",                          /* surrogate */
        "%F4%90%80%80",                       /* past U+10FFFF */
        "\xC3", "a\xFF",                      /* raw invalid bytes */
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        pn_err_t e = decode(malformed[i], out, sizeof out, &n);
        PN_ASSERT_(e == PN_ERR_MALFORMED, CU_FALSE, "'%s': %s", malformed[i],
                   pn_err_name(e));
        PN_ASSERT_EQ_INT(n, 0);
    }
    /* A raw NUL inside the given length is no better than %00. */
    PN_ASSERT_EQ_INT(pn_http_decode_segment("a\0b", 3, out, sizeof out, &n),
                     PN_ERR_MALFORMED);
    /* The output must hold the bytes and the NUL. */
    PN_REQUIRE_OK(decode("abc", out, 4, &n));
    PN_ASSERT_EQ_INT(decode("abcd", out, 4, &n), PN_ERR_TOO_LARGE);
    PN_REQUIRE_OK(decode("%41%42%43", out, 4, &n));
    PN_ASSERT_EQ_STR(out, "ABC");
    PN_ASSERT_EQ_INT(decode("%41%42%43%44", out, 4, &n), PN_ERR_TOO_LARGE);
    /* Only the given length is read. */
    PN_REQUIRE_OK(pn_http_decode_segment("ab/cd", 2, out, sizeof out, &n));
    PN_ASSERT_EQ_STR(out, "ab");
    PN_REQUIRE_OK(pn_http_decode_segment("%41%4", 3, out, sizeof out, &n));
    PN_ASSERT_EQ_STR(out, "A");
    PN_ASSERT_EQ_INT(pn_http_decode_segment(NULL, 1, out, sizeof out, &n),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_http_decode_segment("a", 1, NULL, 0, &n),
                     PN_ERR_INVALID_ARG);
}

static const pn_test_case_t cases[] = {
    {"routes and status codes", test_routes_and_status},
    {"methods and HEAD", test_methods},
    {"limits: URL, headers, bodies", test_limits},
    {"keep-alive", test_keep_alive},
    {"concurrent requests", test_concurrent_requests},
    {"start errors", test_start_errors},
    {"percent-decoding of segments", test_decode_segment},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"http", cases}, {NULL, NULL}};
