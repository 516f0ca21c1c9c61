#include "prom_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pn_test.h"

static const char script[] =
    "import json, sys\n"
    "try:\n"
    "    from prometheus_client.parser import text_string_to_metric_families\n"
    "except ImportError:\n"
    "    sys.exit(77)\n"
    "text = open(sys.argv[1], encoding='utf-8').read()\n"
    "out = []\n"
    "try:\n"
    "    for f in text_string_to_metric_families(text):\n"
    "        out.append({'name': f.name, 'type': f.type, 'help': f.documentation,\n"
    "                    'samples': [[s.name, s.labels, repr(float(s.value))]\n"
    "                                for s in f.samples]})\n"
    "except Exception as e:\n"
    "    print('%s: %s' % (type(e).__name__, e), file=sys.stderr)\n"
    "    sys.exit(1)\n"
    "json.dump(out, sys.stdout)\n";

static bool write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *data = malloc(cap);
    size_t n;
    while (data && (n = fread(data + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *grown = realloc(data, cap * 2);
            if (!grown)
                free(data);
            data = grown;
            cap *= 2;
        }
    }
    fclose(f);
    if (data)
        data[len] = '\0';
    return data;
}

int pn_prom_parse(const char *text, size_t len, json_t **families, char *err,
                  size_t err_size) {
    *families = NULL;
    err[0] = '\0';
    char *dir = pn_test_tmpdir("prom");
    if (!dir) {
        snprintf(err, err_size, "no temporary directory");
        return -1;
    }
    char in[4200], py[4200], out[4200], errf[4200], cmd[20000];
    snprintf(in, sizeof in, "%s/metrics.txt", dir);
    snprintf(py, sizeof py, "%s/parse.py", dir);
    snprintf(out, sizeof out, "%s/out.json", dir);
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    int rc = -1;
    if (!write_file(in, text, len) || !write_file(py, script, strlen(script))) {
        snprintf(err, err_size, "cannot write to %s", dir);
        goto done;
    }
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s' >'%s' 2>'%s'", py, in, out,
             errf);
    int status = system(cmd);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 127 || code == PN_PROM_MISSING) {
        rc = PN_PROM_MISSING;
        goto done;
    }
    char *msg = read_file(code ? errf : out);
    if (code) {
        snprintf(err, err_size, "parser: %s", msg ? msg : "(no message)");
    } else {
        json_error_t je;
        *families = msg ? json_loads(msg, 0, &je) : NULL;
        if (*families)
            rc = 0;
        else
            snprintf(err, err_size, "parser output is not JSON");
    }
    free(msg);
done:
    pn_test_rmdir(dir);
    free(dir);
    return rc;
}

/* Whether labels (a JSON object) hold every k=v of spec; with exact, also
 * nothing else. */
static bool labels_match(json_t *labels, const char *spec, bool exact) {
    size_t n = 0;
    for (const char *kv = spec; *kv;) {
        const char *end = strchr(kv, ',');
        size_t len = end ? (size_t)(end - kv) : strlen(kv);
        const char *eq = memchr(kv, '=', len);
        if (!eq)
            return false;
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
        const char *v = json_string_value(json_object_get(labels, key));
        size_t vlen = len - (size_t)(eq + 1 - kv);
        if (!v || strlen(v) != vlen || memcmp(v, eq + 1, vlen))
            return false;
        n++;
        kv += len + (end ? 1 : 0);
    }
    return !exact || json_object_size(labels) == n;
}

static double sample_scan(json_t *families, const char *name,
                          const char *labels, bool exact, int *count) {
    double sum = 0;
    *count = 0;
    size_t i, j;
    json_t *f, *s;
    json_array_foreach(families, i, f) {
        json_array_foreach(json_object_get(f, "samples"), j, s) {
            const char *sname = json_string_value(json_array_get(s, 0));
            if (!sname || strcmp(sname, name) ||
                !labels_match(json_array_get(s, 1), labels, exact))
                continue;
            sum += strtod(json_string_value(json_array_get(s, 2)), NULL);
            (*count)++;
        }
    }
    return sum;
}

double pn_prom_value(json_t *families, const char *name, const char *labels,
                     bool *found) {
    int count;
    double v = sample_scan(families, name, labels, true, &count);
    *found = count == 1;
    return v;
}

double pn_prom_sum(json_t *families, const char *name, const char *labels,
                   int *count) {
    return sample_scan(families, name, labels, false, count);
}

json_t *pn_prom_family(json_t *families, const char *name) {
    size_t i;
    json_t *f;
    json_array_foreach(families, i, f) {
        const char *n = json_string_value(json_object_get(f, "name"));
        if (n && !strcmp(n, name))
            return f;
    }
    return NULL;
}
