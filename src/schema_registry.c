/*
 * Confluent Schema Registry client: GET <url>/schemas/ids/<id> with
 * libcurl, the answer parsed with jansson, errors sorted into the classes
 * of schema_registry.h. libcurl's CURLcode and jansson's errors stop here.
 *
 * The class of an error is what the worker acts on: UNKNOWN_SCHEMA,
 * INCOMPATIBLE_SCHEMA and TOO_LARGE are the registry's definite word about
 * an id, so a record framed with it is dead-lettered; IO means the
 * registry said nothing definite (down, slow, overloaded, refusing our
 * credentials, or not a registry at all) and the record is retried. When
 * in doubt an answer is IO: a wrong verdict of "unknown" would dead-letter
 * good records, while a wrong "try again" only stalls until someone looks.
 */
#include "panther/schema_registry.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "panther/buf.h"
#include "clock.h"

#define NEG_CACHE_SLOTS 64
#define MSG_SIZE 512
#define CONFLUENT_SCHEMA_NOT_FOUND 40403

typedef struct endpoint {
    char *url;   /* base URL without trailing '/' */
    char *shown; /* the same with any user:password@ masked, for messages */
} endpoint_t;

/* A definite failure for an id, remembered until expires_ms. */
typedef struct neg_entry {
    int32_t id;
    pn_err_t err; /* PN_ERR_OK: free slot */
    int64_t expires_ms;
    char msg[MSG_SIZE];
} neg_entry_t;

struct pn_schema_registry_s {
    CURL *curl;
    struct curl_slist *headers;
    endpoint_t *endpoints;
    size_t n_endpoints;
    size_t current; /* the endpoint asked first */
    char *userpwd;  /* secret: wiped on free */
    int negative_ttl_ms;
    pn_buf_t body; /* the answer being received, bounded */
    pn_err_t body_err;
    uint64_t requests;
    neg_entry_t neg[NEG_CACHE_SLOTS];
    size_t neg_next;
    char curl_err[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is not thread-safe in every libcurl: run it once. It
 * is never undone, since other threads may still use libcurl at exit. */
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* --- construction -------------------------------------------------------- */

/* url with the user:password@ of its authority, if any, replaced by ***@. */
static char *masked_url(const char *url) {
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    const char *at = memrchr(host, '@', strcspn(host, "/?#"));
    if (!at)
        return strdup(url);
    size_t head = (size_t)(host - url), size = strlen(url) + 4;
    char *shown = malloc(size);
    if (shown)
        snprintf(shown, size, "%.*s***%s", (int)head, url, at);
    return shown;
}

static bool is_http_url(const char *s, size_t len) {
    size_t scheme = !strncasecmp(s, "http://", 7)    ? 7
                    : !strncasecmp(s, "https://", 8) ? 8
                                                     : 0;
    return scheme && len > scheme;
}

/* Splits the comma-separated list into endpoints. */
static pn_err_t parse_urls(pn_schema_registry_t *reg, const char *list,
                           char *errstr, size_t errstr_size) {
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    reg->endpoints = calloc(n, sizeof *reg->endpoints);
    if (!reg->endpoints)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        const char *start = p, *end = p + len;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start &&
               (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '/'))
            end--;
        endpoint_t *ep = &reg->endpoints[reg->n_endpoints];
        ep->url = strndup(start, (size_t)(end - start));
        ep->shown = ep->url ? masked_url(ep->url) : NULL;
        if (!ep->url || !ep->shown)
            return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                              "out of memory");
        reg->n_endpoints++;
        if (!is_http_url(ep->url, strlen(ep->url)))
            return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                              "schema registry URL '%s' is not an http:// or "
                              "https:// URL",
                              ep->shown);
        p += len;
        if (!*p)
            return PN_ERR_OK;
    }
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque) {
    pn_schema_registry_t *reg = opaque;
    pn_err_t err = pn_buf_append(&reg->body, data, size * nmemb);
    if (err) {
        reg->body_err = err;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    return size * nmemb;
}

#define SETOPT(rc, curl, opt, value)                                         \
    do {                                                                     \
        if ((rc) == CURLE_OK)                                                \
            (rc) = curl_easy_setopt((curl), (opt), (value));                 \
    } while (0)

static pn_err_t curl_setup(pn_schema_registry_t *reg, long timeout_ms,
                           size_t max_bytes, char *errstr,
                           size_t errstr_size) {
    reg->curl = curl_easy_init();
    reg->headers = curl_slist_append(
        NULL, "Accept: application/vnd.schemaregistry.v1+json, "
              "application/vnd.schemaregistry+json, application/json");
    if (!reg->curl || !reg->headers)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM,
                          "schema registry: cannot create a libcurl handle");
    CURL *curl = reg->curl;
    CURLcode rc = CURLE_OK;
    SETOPT(rc, curl, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM in a threaded process */
    SETOPT(rc, curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    SETOPT(rc, curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    SETOPT(rc, curl, CURLOPT_HTTPHEADER, reg->headers);
    SETOPT(rc, curl, CURLOPT_USERAGENT, "panther");
    SETOPT(rc, curl, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(rc, curl, CURLOPT_WRITEDATA, (void *)reg);
    SETOPT(rc, curl, CURLOPT_ERRORBUFFER, reg->curl_err);
    SETOPT(rc, curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_bytes);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(rc, curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(rc, curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (reg->userpwd) {
        SETOPT(rc, curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SETOPT(rc, curl, CURLOPT_USERPWD, reg->userpwd);
    }
    if (rc != CURLE_OK)
        return pn_err_set(errstr, errstr_size,
                          rc == CURLE_OUT_OF_MEMORY ? PN_ERR_NOMEM
                                                    : PN_ERR_INTERNAL,
                          "schema registry: libcurl setup failed: %s",
                          curl_easy_strerror(rc));
    return PN_ERR_OK;
}

pn_err_t pn_schema_registry_new(const pn_schema_registry_options_t *opts,
                                pn_schema_registry_t **regp, char *errstr,
                                size_t errstr_size) {
    *regp = NULL;
    if (!opts || !opts->url || !opts->url[0])
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "schema registry: no URL given");
    if (opts->basic_auth && opts->basic_auth[0] &&
        !strchr(opts->basic_auth, ':'))
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "schema registry credentials must have the form "
                          "user:password");
    if (pthread_once(&curl_once, curl_init) || curl_init_rc != CURLE_OK)
        return pn_err_set(errstr, errstr_size, PN_ERR_INTERNAL,
                          "schema registry: libcurl initialisation failed");
    pn_schema_registry_t *reg = calloc(1, sizeof *reg);
    if (!reg)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    size_t max_bytes = opts->max_response_bytes
                           ? opts->max_response_bytes
                           : PN_SCHEMA_REGISTRY_DEFAULT_MAX_RESPONSE_BYTES;
    pn_buf_init(&reg->body, max_bytes);
    reg->negative_ttl_ms = opts->negative_ttl_ms
                               ? opts->negative_ttl_ms
                               : PN_SCHEMA_REGISTRY_DEFAULT_NEGATIVE_TTL_MS;
    long timeout_ms = opts->timeout_ms > 0
                          ? opts->timeout_ms
                          : PN_SCHEMA_REGISTRY_DEFAULT_TIMEOUT_MS;
    pn_err_t err = parse_urls(reg, opts->url, errstr, errstr_size);
    if (!err && opts->basic_auth && opts->basic_auth[0] &&
        !(reg->userpwd = strdup(opts->basic_auth)))
        err = pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    if (!err)
        err = curl_setup(reg, timeout_ms, max_bytes, errstr, errstr_size);
    if (err) {
        pn_schema_registry_free(reg);
        return err;
    }
    *regp = reg;
    return PN_ERR_OK;
}

void pn_schema_registry_free(pn_schema_registry_t *reg) {
    if (!reg)
        return;
    if (reg->curl)
        curl_easy_cleanup(reg->curl);
    curl_slist_free_all(reg->headers);
    for (size_t i = 0; i < reg->n_endpoints; i++) {
        free(reg->endpoints[i].url);
        free(reg->endpoints[i].shown);
    }
    free(reg->endpoints);
    if (reg->userpwd) {
        explicit_bzero(reg->userpwd, strlen(reg->userpwd));
        free(reg->userpwd);
    }
    pn_buf_free(&reg->body);
    free(reg);
}

uint64_t pn_schema_registry_requests(const pn_schema_registry_t *reg) {
    return reg ? reg->requests : 0;
}

/* --- negative cache ------------------------------------------------------ */

static const neg_entry_t *neg_find(const pn_schema_registry_t *reg,
                                   int32_t id) {
    int64_t now = pn_mono_ms();
    for (size_t i = 0; i < NEG_CACHE_SLOTS; i++)
        if (reg->neg[i].err && reg->neg[i].id == id &&
            reg->neg[i].expires_ms > now)
            return &reg->neg[i];
    return NULL;
}

static void neg_add(pn_schema_registry_t *reg, int32_t id, pn_err_t err,
                    const char *msg) {
    if (reg->negative_ttl_ms < 0)
        return;
    neg_entry_t *e = &reg->neg[reg->neg_next];
    reg->neg_next = (reg->neg_next + 1) % NEG_CACHE_SLOTS;
    e->id = id;
    e->err = err;
    e->expires_ms = pn_mono_ms() + reg->negative_ttl_ms;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
}

/* --- one request --------------------------------------------------------- */

/* The answer to GET /schemas/ids/<id> with status 200. */
static pn_err_t schema_answer(const endpoint_t *ep, int32_t id, json_t *root,
                              char **schema_json, char *why,
                              size_t why_size) {
    json_t *schema = json_object_get(root, "schema");
    json_t *type = json_object_get(root, "schemaType");
    json_t *refs = json_object_get(root, "references");
    if (!json_is_string(schema) || (type && !json_is_null(type) &&
                                    !json_is_string(type)))
        return pn_err_set(why, why_size, PN_ERR_IO,
                          "schema registry %s answered schema id %" PRId32
                          " with JSON that has no \"schema\" string",
                          ep->shown, id);
    if (json_is_string(type) && strcmp(json_string_value(type), "AVRO"))
        return pn_err_set(why, why_size, PN_ERR_INCOMPATIBLE_SCHEMA,
                          "schema id %" PRId32 " is a %.32s schema; Panther "
                          "reads Avro only",
                          id, json_string_value(type));
    if (json_is_array(refs) && json_array_size(refs) > 0)
        return pn_err_set(why, why_size, PN_ERR_INCOMPATIBLE_SCHEMA,
                          "schema id %" PRId32 " refers to other schemas "
                          "(references), which Panther does not resolve",
                          id);
    size_t len = json_string_length(schema);
    const char *text = json_string_value(schema);
    if (memchr(text, '\0', len))
        return pn_err_set(why, why_size, PN_ERR_INCOMPATIBLE_SCHEMA,
                          "schema id %" PRId32 " contains a NUL character",
                          id);
    if (!(*schema_json = strndup(text, len)))
        return pn_err_set(why, why_size, PN_ERR_NOMEM, "out of memory");
    return PN_ERR_OK;
}

/* Sorts an HTTP answer into the classes of schema_registry.h. */
static pn_err_t http_answer(pn_schema_registry_t *reg, const endpoint_t *ep,
                            int32_t id, long status, char **schema_json,
                            char *why, size_t why_size) {
    json_t *root = json_loadb(
        reg->body.data ? (const char *)reg->body.data : "", reg->body.len, 0,
        NULL);
    json_t *code = json_is_object(root) ? json_object_get(root, "error_code")
                                        : NULL;
    json_t *message = json_is_object(root) ? json_object_get(root, "message")
                                           : NULL;
    const char *detail = json_is_string(message) ? json_string_value(message)
                                                 : "";
    pn_err_t err;
    if (status == 200 && json_is_object(root))
        err = schema_answer(ep, id, root, schema_json, why, why_size);
    else if (status == 200)
        err = pn_err_set(why, why_size, PN_ERR_IO,
                         "schema registry %s answered schema id %" PRId32
                         " with a body that is not JSON",
                         ep->shown, id);
    else if (status == 404 && json_is_integer(code) &&
             json_integer_value(code) == CONFLUENT_SCHEMA_NOT_FOUND)
        err = pn_err_set(why, why_size, PN_ERR_UNKNOWN_SCHEMA,
                         "schema id %" PRId32 " not found in the schema "
                         "registry %s (error 40403)",
                         id, ep->shown);
    else if (status == 404)
        err = pn_err_set(why, why_size, PN_ERR_IO,
                         "%s answered 404 to /schemas/ids/%" PRId32
                         " without the registry's error 40403: is "
                         "schema.registry.url the registry's base URL?",
                         ep->shown, id);
    else if (status == 401 || status == 403)
        err = pn_err_set(why, why_size, PN_ERR_IO,
                         "schema registry %s refused the request (HTTP %ld): "
                         "check schema.registry.basic.auth.user.info",
                         ep->shown, status);
    else
        err = pn_err_set(why, why_size, PN_ERR_IO,
                         "schema registry %s answered HTTP %ld for schema id "
                         "%" PRId32 "%s%.200s",
                         ep->shown, status, id, detail[0] ? ": " : "",
                         detail);
    json_decref(root);
    return err;
}

static pn_err_t fetch(pn_schema_registry_t *reg, const endpoint_t *ep,
                      int32_t id, char **schema_json, char *why,
                      size_t why_size) {
    size_t size = strlen(ep->url) + sizeof "/schemas/ids/-2147483648";
    char *url = malloc(size);
    if (!url)
        return pn_err_set(why, why_size, PN_ERR_NOMEM, "out of memory");
    snprintf(url, size, "%s/schemas/ids/%" PRId32, ep->url, id);
    pn_buf_reset(&reg->body);
    reg->body_err = PN_ERR_OK;
    reg->curl_err[0] = '\0';
    reg->requests++;
    CURLcode rc = curl_easy_setopt(reg->curl, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(reg->curl);
    free(url);
    long status = 0;
    curl_easy_getinfo(reg->curl, CURLINFO_RESPONSE_CODE, &status);
    if (reg->body_err == PN_ERR_NOMEM || rc == CURLE_OUT_OF_MEMORY)
        return pn_err_set(why, why_size, PN_ERR_NOMEM, "out of memory");
    if (reg->body_err == PN_ERR_TOO_LARGE || rc == CURLE_FILESIZE_EXCEEDED)
        return pn_err_set(why, why_size,
                          status == 200 ? PN_ERR_TOO_LARGE : PN_ERR_IO,
                          "schema registry %s answered schema id %" PRId32
                          " (HTTP %ld) with more than %zu bytes",
                          ep->shown, id, status, reg->body.max);
    if (rc != CURLE_OK)
        return pn_err_set(why, why_size, PN_ERR_IO,
                          "schema registry %s unreachable: %s", ep->shown,
                          reg->curl_err[0] ? reg->curl_err
                                           : curl_easy_strerror(rc));
    return http_answer(reg, ep, id, status, schema_json, why, why_size);
}

/* --- lookup -------------------------------------------------------------- */

pn_err_t pn_schema_registry_lookup(void *opaque, int32_t schema_id,
                                   char **schema_json, char *errstr,
                                   size_t errstr_size) {
    pn_schema_registry_t *reg = opaque;
    *schema_json = NULL;
    if (schema_id < 0)
        return pn_err_set(errstr, errstr_size, PN_ERR_UNKNOWN_SCHEMA,
                          "schema id %" PRId32 " is negative; registries "
                          "hand out ids from 0",
                          schema_id);
    const neg_entry_t *hit = neg_find(reg, schema_id);
    if (hit)
        return pn_err_set(errstr, errstr_size, hit->err, "%s", hit->msg);
    char why[MSG_SIZE] = "";
    pn_err_t err = PN_ERR_IO;
    size_t tried = 0;
    for (; tried < reg->n_endpoints; tried++) {
        size_t e = (reg->current + tried) % reg->n_endpoints;
        err = fetch(reg, &reg->endpoints[e], schema_id, schema_json, why,
                    sizeof why);
        if (err != PN_ERR_IO) {
            reg->current = e; /* it answered: ask it first next time */
            break;
        }
    }
    if (err == PN_ERR_UNKNOWN_SCHEMA || err == PN_ERR_INCOMPATIBLE_SCHEMA ||
        err == PN_ERR_TOO_LARGE)
        neg_add(reg, schema_id, err, why);
    if (err == PN_ERR_IO && reg->n_endpoints > 1)
        return pn_err_set(errstr, errstr_size, err,
                          "none of %zu schema registries answered; last: %s",
                          reg->n_endpoints, why);
    return err ? pn_err_set(errstr, errstr_size, err, "%s", why) : err;
}
