/*
 * A small embedded HTTP/1.1 server (libmicrohttpd) for /metrics, /livez,
 * /readyz and the snapshotter's read API. Bound to 127.0.0.1 unless told
 * otherwise. Requests are bounded (URL length, no bodies accepted); handlers
 * run on the server's threads, so they must be thread-safe.
 */
#ifndef PANTHER_HTTP_H
#define PANTHER_HTTP_H

#include <stdint.h>

#include "panther/buf.h"
#include "panther/err.h"

typedef struct pn_http_server_s pn_http_server_t;

/** What a handler fills in. body starts empty (bounded to 16 MiB). */
typedef struct pn_http_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "text/plain" */
    pn_buf_t body;
} pn_http_response_t;

/**
 * Handles one GET request. `path` is the raw request path without the query
 * string, not yet percent-decoded (use pn_http_decode_segment on each
 * segment). Called on a server thread.
 */
typedef void (*pn_http_handler_fn)(void *opaque, const char *path,
                                   pn_http_response_t *response);

typedef struct pn_http_route {
    const char *prefix;       /* "/metrics", "/v1/inventory/" ... */
    pn_http_handler_fn handler;
    void *opaque;
} pn_http_route_t;

/**
 * Starts serving on bind:port (port 0 picks a free one; see
 * pn_http_server_port). The first route whose prefix matches the path
 * handles it (an exact match for prefixes not ending in '/'); anything
 * else is 404, methods other than GET and HEAD are 405. The routes array
 * is copied. *serverp owned by the caller.
 */
PN_MUST_CHECK pn_err_t pn_http_server_start(const char *bind, int port,
                                            const pn_http_route_t *routes,
                                            size_t n_routes,
                                            pn_http_server_t **serverp,
                                            char *errstr, size_t errstr_size);

/** The port actually bound. */
int pn_http_server_port(const pn_http_server_t *server);

/** Stops serving and frees the server. NULL-safe. */
void pn_http_server_stop(pn_http_server_t *server);

/**
 * Percent-decodes one path segment (no '/' in it) into out (NUL-terminated).
 * PN_ERR_MALFORMED for a bad escape, an encoded NUL, or invalid UTF-8;
 * PN_ERR_TOO_LARGE when it does not fit.
 */
PN_MUST_CHECK pn_err_t pn_http_decode_segment(const char *segment, size_t len,
                                              char *out, size_t out_size,
                                              size_t *out_len);

#endif
