/* panther state: prints the state of one stream as JSON, from the local
 * store at store.path or, with --url, from a snapshotter's read API. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_config.h"
#include "cli_store.h"
#include "panther/buf.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: panther state [options] SKU NODE\n"
            "Prints the state of the stream (SKU, NODE) as one JSON object:\n"
            "skuId, fulfillmentNodeId, version, onHand, reserved, available\n"
            "and reservations [{orderId, quantity}].\n\n"
            "By default it reads the local store at store.path (a worker's\n"
            "RocksDB; it cannot be read while that worker runs). With --url\n"
            "it asks a snapshotter's read API instead and prints its answer.\n\n"
            "  --url URL           base URL of a snapshotter (http://host:8080)\n"
            PN_CLI_CONFIG_USAGE
            "Exit status: 0 printed, 1 no such stream or a failure, 2 usage or\n"
            "configuration error.\n");
}

static json_t *state_json(const char *sku, const char *node,
                          const pn_state_t *st) {
    json_t *reservations = json_array();
    for (size_t i = 0; i < st->n_reservations; i++)
        json_array_append_new(
            reservations,
            json_pack("{s:s%,s:I}", "orderId", st->reservations[i].order_id,
                      st->reservations[i].order_id_len, "quantity",
                      (json_int_t)st->reservations[i].quantity));
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o}", "skuId", sku,
                     "fulfillmentNodeId", node, "version",
                     (json_int_t)st->version, "onHand", (json_int_t)st->on_hand,
                     "reserved", (json_int_t)st->reserved, "available",
                     (json_int_t)pn_state_available(st), "reservations",
                     reservations);
}

static int print_local(const pn_config_t *cfg, const char *sku,
                       const char *node) {
    const char *path = pn_config_get_str(cfg, "store.path");
    size_t entries;
    if (pn_cli_store_probe(path, &entries) != PN_CLI_STORE_PRESENT) {
        fprintf(stderr, "panther state: no store at '%s' (store.path)\n", path);
        return PN_EXIT_FAILURE;
    }
    char key[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(pn_str_c(sku), pn_str_c(node), key, sizeof key);
    if (!key_len) {
        fprintf(stderr, "panther state: '%s' / '%s' is not a valid stream "
                        "(ids of 1 to %d bytes, without '|')\n",
                sku, node, PN_ID_MAX_BYTES);
        return PN_EXIT_USAGE;
    }
    pn_cli_store_t ls;
    char err[1024] = "";
    pn_state_t st;
    pn_state_init(&st);
    pn_err_t e = pn_cli_store_open(cfg, NULL, &ls, err, sizeof err);
    if (!e)
        e = pn_engine_read_state(ls.engine, (pn_str_t){key, key_len}, &st, err,
                                 sizeof err);
    int rc = PN_EXIT_OK;
    if (e) {
        fprintf(stderr, "panther state: %s\n", err[0] ? err : pn_err_str(e));
        rc = PN_EXIT_FAILURE;
    } else if (st.version == 0) {
        fprintf(stderr, "panther state: no stream %s in the store at '%s'\n",
                key, path);
        rc = PN_EXIT_FAILURE;
    } else {
        json_t *doc = state_json(sku, node, &st);
        if (!doc || json_dumpf(doc, stdout, JSON_PRESERVE_ORDER | JSON_COMPACT))
            rc = PN_EXIT_FAILURE;
        fputc('\n', stdout);
        json_decref(doc);
    }
    pn_state_clear(&st);
    pn_cli_store_close(&ls);
    return rc;
}

/* The answer is kept (bounded) until its status is known: only a 200 goes
 * to stdout. */
#define BODY_MAX ((size_t)16 << 20)

static size_t on_body(char *ptr, size_t size, size_t n, void *opaque) {
    return pn_buf_append(opaque, ptr, size * n) ? 0 : size * n;
}

/* GET <url>/v1/inventory/<sku>/<node>, the body to stdout. */
static int print_remote(const char *base, const char *sku, const char *node) {
    CURL *curl = curl_easy_init();
    if (!curl)
        return PN_EXIT_FAILURE;
    char *esku = curl_easy_escape(curl, sku, 0);
    char *enode = curl_easy_escape(curl, node, 0);
    size_t base_len = strlen(base);
    while (base_len && base[base_len - 1] == '/')
        base_len--;
    size_t size = base_len + (esku ? strlen(esku) : 0) +
                  (enode ? strlen(enode) : 0) + 32;
    char *url = malloc(size);
    int rc = PN_EXIT_FAILURE;
    pn_buf_t body;
    pn_buf_init(&body, BODY_MAX);
    if (url && esku && enode) {
        snprintf(url, size, "%.*s/v1/inventory/%s/%s", (int)base_len, base,
                 esku, enode);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        CURLcode cc = curl_easy_perform(curl);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK)
            fprintf(stderr, "panther state: %s: %s\n", url,
                    curl_easy_strerror(cc));
        else if (status == 200)
            rc = fwrite(body.data, 1, body.len, stdout) == body.len
                     ? PN_EXIT_OK
                     : PN_EXIT_FAILURE;
        else {
            size_t shown = body.len < 1024 ? body.len : 1024;
            while (shown && (body.data[shown - 1] == '\n' ||
                             body.data[shown - 1] == '\r'))
                shown--;
            fprintf(stderr, "panther state: %s answered %ld%s: %.*s\n", url,
                    status, status == 404 ? " (no such stream)" : "",
                    (int)shown, shown ? (const char *)body.data : "");
        }
    }
    pn_buf_free(&body);
    curl_free(esku);
    curl_free(enode);
    free(url);
    curl_easy_cleanup(curl);
    return rc;
}

int pn_cli_state(int argc, char **argv) {
    enum { OPT_URL = 1 };
    static const struct option longopts[] = {
        PN_CLI_CONFIG_OPTIONS,
        {"url", required_argument, NULL, OPT_URL},
        {NULL, 0, NULL, 0}};
    pn_cli_config_args_t args = {0};
    bool usage_error = false;
    const char *url = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (pn_cli_config_option(&args, c, optarg, &usage_error))
            continue;
        if (c == OPT_URL)
            url = optarg;
        else
            usage_error = true;
    }
    if (args.help) {
        usage(stdout);
        return PN_EXIT_OK;
    }
    if (usage_error || argc - optind != 2) {
        usage(stderr);
        return PN_EXIT_USAGE;
    }
    const char *sku = argv[optind], *node = argv[optind + 1];
    if (url)
        return print_remote(url, sku, node);
    pn_config_t *cfg;
    bool done;
    int rc = pn_cli_config_build("state", &args, &cfg, &done);
    if (done)
        return rc;
    rc = print_local(cfg, sku, node);
    pn_config_destroy(cfg);
    return rc;
}
