#include "cli_store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_config.h"

pn_cli_store_kind_t pn_cli_store_probe(const char *path, size_t *entries) {
    *entries = 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? PN_CLI_STORE_ABSENT : PN_CLI_STORE_OTHER;
    if (!S_ISDIR(st.st_mode))
        return PN_CLI_STORE_OTHER;
    DIR *dir = opendir(path);
    if (!dir)
        return PN_CLI_STORE_OTHER;
    bool current = false;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        (*entries)++;
        current = current || !strcmp(de->d_name, "CURRENT");
    }
    closedir(dir);
    if (*entries == 0)
        return PN_CLI_STORE_ABSENT;
    return current ? PN_CLI_STORE_PRESENT : PN_CLI_STORE_OTHER;
}

pn_err_t pn_cli_store_open(const pn_config_t *cfg, const char *path,
                           pn_cli_store_t *ls, char *err, size_t err_size) {
    memset(ls, 0, sizeof *ls);
    pn_cli_kafka_props_t none = {0};
    pn_worker_options_t o;
    pn_cli_worker_options(cfg, &none, &o);
    if (path)
        o.store.path = path;
    pn_err_t e = pn_codec_new(&o.codec, &ls->codec, err, err_size);
    if (!e) {
        e = pn_store_open(&o.store, &ls->store, err, err_size);
        if (e == PN_ERR_STORE_IO && strstr(err, "lock"))
            /* RocksDB's LOCK: a worker (or another tool) has it open. */
            snprintf(err + strlen(err), err_size - strlen(err),
                     " (is a worker running on this store? stop it, or ask "
                     "the snapshotter's read API with --url)");
    }
    if (!e) {
        pn_engine_options_t eo = o.engine;
        eo.store = ls->store;
        eo.codec = ls->codec;
        eo.clock_ms = pn_engine_wall_clock;
        e = pn_engine_new(&eo, &ls->engine, err, err_size);
    }
    return e;
}

void pn_cli_store_close(pn_cli_store_t *ls) {
    pn_engine_free(ls->engine);
    pn_store_close(ls->store);
    pn_codec_free(ls->codec);
    memset(ls, 0, sizeof *ls);
}
