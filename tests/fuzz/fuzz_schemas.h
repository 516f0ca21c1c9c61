/*
 * Writer schemas the fuzz target and the corpus generator share: the
 * Confluent ids and single-object registrations they set up, so seeds
 * reach the schema-resolution paths too.
 */
#ifndef PN_FUZZ_SCHEMAS_H
#define PN_FUZZ_SCHEMAS_H

#include <string.h>

#include "panther/codec.h"

/* Confluent id 1 is our own Command schema, id 2 the evolved one. */
#define PN_FUZZ_ID_OURS 1
#define PN_FUZZ_ID_EVOLVED 2

/* ReserveInventory reordered with an extra field, plus a command type
 * Panther does not know. */
static const char pn_fuzz_evolved_json[] =
    "[{\"type\":\"record\",\"name\":\"ReserveInventory\",\"namespace\":"
    "\"panther.inventory\",\"fields\":["
    "{\"name\":\"at\",\"type\":\"long\"},"
    "{\"name\":\"channel\",\"type\":\"string\",\"default\":\"web\"},"
    "{\"name\":\"quantity\",\"type\":\"int\"},"
    "{\"name\":\"skuId\",\"type\":\"string\"},"
    "{\"name\":\"fulfillmentNodeId\",\"type\":\"string\"},"
    "{\"name\":\"orderId\",\"type\":\"string\"},"
    "{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"by\",\"type\":\"string\"},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"map\",\"values\":{\"type\":"
    "\"array\",\"items\":[\"null\",\"double\",{\"type\":\"fixed\",\"name\":"
    "\"F4\",\"size\":4}]}},\"default\":{}}]},"
    "{\"type\":\"record\",\"name\":\"AdjustInventory\",\"namespace\":"
    "\"panther.inventory\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"ok\",\"type\":\"boolean\"},{\"name\":\"kind\",\"type\":"
    "{\"type\":\"enum\",\"name\":\"K\",\"symbols\":[\"A\",\"B\"]}}]}]";

static inline pn_err_t pn_fuzz_lookup(void *opaque, int32_t id, char **json,
                                      char *errstr, size_t errstr_size) {
    (void)opaque;
    const char *src = id == PN_FUZZ_ID_OURS      ? pn_schema_json(PN_SCHEMA_COMMAND)
                      : id == PN_FUZZ_ID_EVOLVED ? pn_fuzz_evolved_json
                                                 : NULL;
    if (!src)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOT_FOUND,
                          "no schema %d", id);
    *json = strdup(src);
    return *json ? PN_ERR_OK : PN_ERR_NOMEM;
}

#endif
