/*
 * The embedded HTTP server (include/panther/http.h) on libmicrohttpd.
 *
 * Bounds, so that a misbehaving client cannot take more than a slice of the
 * process: a small pool of polling threads (handlers run there), a cap on
 * concurrent connections, an idle timeout, a per-connection memory limit
 * (which also bounds the request line and headers: libmicrohttpd answers
 * 414 or 431 by itself when they do not fit), our own URL length limit
 * (414), and no request bodies at all (413).
 *
 * The path reaches the handlers raw: libmicrohttpd's default unescaping is
 * replaced by one that leaves the bytes alone, so that "%2F" inside a
 * segment stays distinguishable from a '/' between segments. Handlers
 * decode each segment with pn_http_decode_segment.
 */
#include "panther/http.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "panther/log.h"

#define HTTP_THREADS 4u
#define HTTP_MAX_CONNECTIONS 64u
#define HTTP_TIMEOUT_S 10u
#define HTTP_CONNECTION_MEMORY (16u * 1024u)
/* Longest raw path (and query) served; longer is 414. */
#define HTTP_MAX_URL 4096u
#define HTTP_MAX_BODY ((size_t)16 << 20)

struct pn_http_server_s {
    struct MHD_Daemon *daemon;
    int port;
    size_t n_routes;
    pn_http_route_t *routes;
    char **prefixes; /* owned copies behind routes[].prefix */
};

/* --- responses ------------------------------------------------------------ */

static enum MHD_Result send_buffer(struct MHD_Connection *conn, int status,
                                   const char *content_type, void *data,
                                   size_t len, bool owned,
                                   const char *allow) {
    struct MHD_Response *resp =
        owned ? MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE)
              : MHD_create_response_from_buffer(len, data, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (owned)
            free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* A fixed text answer for the errors the server itself gives. */
static enum MHD_Result send_text(struct MHD_Connection *conn, int status,
                                 const char *text, const char *allow) {
    return send_buffer(conn, status, "text/plain; charset=utf-8",
                       (void *)text, strlen(text), false, allow);
}

/* --- routing ---------------------------------------------------------------- */

static const pn_http_route_t *find_route(const pn_http_server_t *server,
                                         const char *path) {
    for (size_t i = 0; i < server->n_routes; i++) {
        const char *prefix = server->routes[i].prefix;
        size_t n = strlen(prefix);
        bool dir = n > 0 && prefix[n - 1] == '/';
        if (dir ? strncmp(path, prefix, n) == 0 : strcmp(path, prefix) == 0)
            return &server->routes[i];
    }
    return NULL;
}

/* True when the request announces a body (which we never read). */
static bool has_body(struct MHD_Connection *conn) {
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te)
        return true;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl && strspn(cl, "0") != strlen(cl);
}

static enum MHD_Result run_handler(struct MHD_Connection *conn,
                                   const pn_http_route_t *route,
                                   const char *path) {
    pn_http_response_t resp = {.status = 200, .content_type = "text/plain"};
    pn_buf_init(&resp.body, HTTP_MAX_BODY);
    route->handler(route->opaque, path, &resp);
    if (resp.status < 100 || resp.status > 599) {
        pn_log_kv(PN_LOG_ERROR, "http handler gave an invalid status",
                  PN_LOG_STR("path", path), PN_LOG_INT("status", resp.status));
        pn_buf_free(&resp.body);
        return send_text(conn, 500, "internal error\n", NULL);
    }
    const char *type = resp.content_type ? resp.content_type : "text/plain";
    if (resp.body.len == 0) {
        pn_buf_free(&resp.body);
        return send_buffer(conn, resp.status, type, (void *)"", 0, false, NULL);
    }
    /* The response takes the buffer (malloc'd by pn_buf). */
    return send_buffer(conn, resp.status, type, resp.body.data, resp.body.len,
                       true, NULL);
}

/* Where a request is, kept in libmicrohttpd's per-request pointer. */
static char request_seen;

/*
 * libmicrohttpd calls this once when the headers are in, then again for
 * each piece of body, then once more at the end. A response queued on the
 * first call is answered at once and the connection closed afterwards (the
 * body is never read): right for refusals. Accepted requests are answered
 * on the second call, which keeps the connection alive.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    (void)upload_data;
    pn_http_server_t *server = cls;
    if (!*con_cls) {
        *con_cls = &request_seen;
        if (strcmp(method, MHD_HTTP_METHOD_GET) &&
            strcmp(method, MHD_HTTP_METHOD_HEAD))
            return send_text(conn, 405, "method not allowed\n", "GET, HEAD");
        if (has_body(conn))
            return send_text(conn, 413, "request bodies are not accepted\n",
                             NULL);
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* cannot happen: refused above */
        return MHD_YES;
    }
    if (strlen(url) > HTTP_MAX_URL)
        return send_text(conn, 414, "URI too long\n", NULL);
    const pn_http_route_t *route = find_route(server, url);
    if (!route)
        return send_text(conn, 404, "not found\n", NULL);
    return run_handler(conn, route, url);
}

/* Keeps the path raw: handlers decode segment by segment. */
static size_t keep_escapes(void *cls, struct MHD_Connection *conn, char *s) {
    (void)cls;
    (void)conn;
    return strlen(s);
}

__attribute__((format(printf, 2, 0))) static void
on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    pn_log_kv(PN_LOG_WARN, "http server", PN_LOG_STR("detail", line));
}

/* --- lifecycle -------------------------------------------------------------- */

static pn_err_t copy_routes(pn_http_server_t *server,
                            const pn_http_route_t *routes, size_t n) {
    server->routes = calloc(n ? n : 1, sizeof *server->routes);
    server->prefixes = calloc(n ? n : 1, sizeof *server->prefixes);
    if (!server->routes || !server->prefixes)
        return PN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!routes[i].prefix || routes[i].prefix[0] != '/' || !routes[i].handler)
            return PN_ERR_INVALID_ARG;
        server->prefixes[i] = strdup(routes[i].prefix);
        if (!server->prefixes[i])
            return PN_ERR_NOMEM;
        server->routes[i] = routes[i];
        server->routes[i].prefix = server->prefixes[i];
        server->n_routes = i + 1;
    }
    return PN_ERR_OK;
}

/* Resolves a numeric address (IPv4 or IPv6) or a host name to bind to. */
static pn_err_t resolve(const char *bind, int port, struct addrinfo **aip,
                        char *errstr, size_t errstr_size) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(bind, service, &hints, aip);
    if (rc != 0)
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "http: cannot resolve bind address '%s': %s", bind,
                          gai_strerror(rc));
    return PN_ERR_OK;
}

static pn_err_t daemon_start(pn_http_server_t *server, const char *bind,
                             int port, char *errstr, size_t errstr_size) {
    struct addrinfo *ai = NULL;
    pn_err_t err = resolve(bind, port, &ai, errstr, errstr_size);
    if (err)
        return err;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    server->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, server,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, HTTP_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, NULL,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!server->daemon)
        return pn_err_set(errstr, errstr_size, PN_ERR_IO,
                          "http: cannot listen on %s:%d (address in use, or "
                          "not an address of this host?)",
                          bind, port);
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    server->port = info ? info->port : port;
    return PN_ERR_OK;
}

pn_err_t pn_http_server_start(const char *bind, int port,
                              const pn_http_route_t *routes, size_t n_routes,
                              pn_http_server_t **serverp, char *errstr,
                              size_t errstr_size) {
    if (serverp)
        *serverp = NULL;
    if (!serverp || !bind || !*bind || port < 0 || port > 65535 ||
        (n_routes && !routes))
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "http: bad bind address, port or routes");
    pn_http_server_t *server = calloc(1, sizeof *server);
    if (!server)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    pn_err_t err = copy_routes(server, routes, n_routes);
    if (err)
        pn_err_set(errstr, errstr_size, err,
                   "http: routes need a prefix starting with '/' and a "
                   "handler (%s)",
                   pn_err_str(err));
    else
        err = daemon_start(server, bind, port, errstr, errstr_size);
    if (err) {
        pn_http_server_stop(server);
        return err;
    }
    *serverp = server;
    return PN_ERR_OK;
}

int pn_http_server_port(const pn_http_server_t *server) {
    return server ? server->port : 0;
}

void pn_http_server_stop(pn_http_server_t *server) {
    if (!server)
        return;
    if (server->daemon)
        MHD_stop_daemon(server->daemon); /* joins the threads */
    for (size_t i = 0; server->prefixes && i < server->n_routes; i++)
        free(server->prefixes[i]);
    free(server->prefixes);
    free(server->routes);
    free(server);
}

/* --- percent-decoding -------------------------------------------------------- */

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_char(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

static bool utf8_valid(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t len = utf8_char(s + i, n - i);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

pn_err_t pn_http_decode_segment(const char *segment, size_t len, char *out,
                                size_t out_size, size_t *out_len) {
    if (out_len)
        *out_len = 0;
    if ((!segment && len) || !out || out_size == 0)
        return PN_ERR_INVALID_ARG;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)segment[i];
        if (c == '%') {
            int h = i + 2 < len ? hex_value(segment[i + 1]) : -1;
            int l = h >= 0 ? hex_value(segment[i + 2]) : -1;
            if (l < 0) {
                out[0] = '\0';
                return PN_ERR_MALFORMED;
            }
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || n + 1 >= out_size) {
            out[0] = '\0';
            return c == 0 ? PN_ERR_MALFORMED : PN_ERR_TOO_LARGE;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    if (!utf8_valid((const unsigned char *)out, n)) {
        out[0] = '\0';
        return PN_ERR_MALFORMED;
    }
    if (out_len)
        *out_len = n;
    return PN_ERR_OK;
}
