#include "panther/err.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const err_names[] = {
#define PN_ERR_NAME_(name, msg) #name,
    PN_ERR_MAP(PN_ERR_NAME_)
#undef PN_ERR_NAME_
};

static const char *const err_messages[] = {
#define PN_ERR_MSG_(name, msg) msg,
    PN_ERR_MAP(PN_ERR_MSG_)
#undef PN_ERR_MSG_
};

const char *pn_err_name(pn_err_t err) {
    if ((unsigned)err >= PN_ERR__COUNT)
        return "UNKNOWN";
    return err_names[err];
}

const char *pn_err_str(pn_err_t err) {
    if ((unsigned)err >= PN_ERR__COUNT)
        return "unknown error";
    return err_messages[err];
}

pn_err_t pn_err_set(char *errstr, size_t errstr_size, pn_err_t err,
                    const char *fmt, ...) {
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}
