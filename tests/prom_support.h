/*
 * Checks Prometheus exposition text with a real parser: the reference
 * Python client's (prometheus_client.parser.text_string_to_metric_families),
 * run as a python3 child. Used by the metrics unit test and the metrics
 * integration test.
 */
#ifndef PN_PROM_SUPPORT_H
#define PN_PROM_SUPPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* pn_prom_parse's result when python3 or prometheus_client is missing. */
#define PN_PROM_MISSING 77

/**
 * Parses text. Returns 0 and sets *families to a JSON array of
 * {"name", "type", "help", "samples": [[name, {labels}, "value"], ...]}
 * (values as Python's str(float): "1.0", "inf", "nan"); PN_PROM_MISSING
 * when the parser is not installed; -1 when the text does not parse (the
 * parser's message in err). The caller frees *families with json_decref.
 */
int pn_prom_parse(const char *text, size_t len, json_t **families, char *err,
                  size_t err_size);

/** The value of the sample `name` whose labels are exactly `labels`
 *  ("k=v,k2=v2", "" for none); *found tells whether there was one. */
double pn_prom_value(json_t *families, const char *name, const char *labels,
                     bool *found);

/** Sum of the values of every sample called `name` whose labels include
 *  all of `labels` ("k=v,..." or ""), and how many there were. */
double pn_prom_sum(json_t *families, const char *name, const char *labels,
                   int *count);

/** The family of that name (a counter family is named without _total). */
json_t *pn_prom_family(json_t *families, const char *name);

#endif
