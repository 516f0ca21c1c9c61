/*
 * JSON-lines logging. A line is built in a buffer on the caller's stack,
 * so threads never share formatting state; only the write is serialised,
 * because a write(2) of more than PIPE_BUF bytes to a pipe (stderr under a
 * container runtime) may otherwise interleave with another thread's line.
 */
#include "panther/log.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = PN_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Bytes kept free at the end of a line so a cut line can still be closed:
 * '"' + ',"truncated":true' + '}\n' is 20. */
#define TAIL_RESERVE 32

typedef struct line {
    char buf[PN_LOG_LINE_MAX];
    size_t len;
    bool truncated; /* something did not fit; nothing more is added */
} line_t;

/* Appends n bytes if they fit below the reserve, else marks the line cut. */
static bool put(line_t *line, const char *p, size_t n) {
    if (line->truncated || n > PN_LOG_LINE_MAX - TAIL_RESERVE - line->len) {
        line->truncated = true;
        return false;
    }
    memcpy(line->buf + line->len, p, n);
    line->len += n;
    return true;
}

/* Appends into the reserve; only the closing bytes of a line use it. */
static void put_tail(line_t *line, const char *s) {
    size_t n = strlen(s);
    if (n <= PN_LOG_LINE_MAX - line->len) {
        memcpy(line->buf + line->len, s, n);
        line->len += n;
    }
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid:
 * overlong forms, surrogates and code points above U+10FFFF are invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Appends the JSON escape of s[0..n) without quotes, stopping at the last
 * whole character that fits. */
static void put_escaped(line_t *line, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n && !line->truncated) {
        char esc[8];
        const char *out = esc;
        size_t out_len = 2, step = 1;
        unsigned char c = u[i];
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            if (c < 0x20 || c == 0x7F) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                out_len = 6;
            } else if ((step = utf8_len(u + i, n - i)) == 0) {
                out = "\\ufffd"; /* one replacement per invalid byte */
                out_len = 6;
                step = 1;
            } else {
                out = s + i;
                out_len = step;
            }
        }
        if (put(line, out, out_len))
            i += step;
    }
}

/* A quoted JSON string; if it was cut, its closing quote uses the reserve. */
static bool put_string(line_t *line, const char *s, size_t n) {
    if (!put(line, "\"", 1))
        return false;
    put_escaped(line, s, n);
    if (!put(line, "\"", 1))
        put_tail(line, "\"");
    return true;
}

static void put_value(line_t *line, const pn_log_field_t *f, size_t mark) {
    char num[48];
    switch (f->type) {
    case PN_LOG_T_STR:
    case PN_LOG_T_STRN:
        if (!f->v.s) {
            snprintf(num, sizeof num, "null");
            break;
        }
        if (!put_string(line, f->v.s,
                        f->type == PN_LOG_T_STR ? strlen(f->v.s) : f->len))
            line->len = mark;
        return;
    case PN_LOG_T_INT:
        snprintf(num, sizeof num, "%" PRId64, f->v.i);
        break;
    case PN_LOG_T_UINT:
        snprintf(num, sizeof num, "%" PRIu64, f->v.u);
        break;
    case PN_LOG_T_DOUBLE:
        if (isfinite(f->v.d))
            snprintf(num, sizeof num, "%.17g", f->v.d);
        else
            snprintf(num, sizeof num, "null");
        break;
    case PN_LOG_T_BOOL:
        snprintf(num, sizeof num, "%s", f->v.b ? "true" : "false");
        break;
    default:
        snprintf(num, sizeof num, "null");
        break;
    }
    if (!put(line, num, strlen(num)))
        line->len = mark; /* a number is all or nothing */
}

/* ,"key":value — or nothing at all if the key does not fit. */
static void put_field(line_t *line, const pn_log_field_t *f) {
    if (line->truncated)
        return;
    size_t mark = line->len;
    const char *key = f->key ? f->key : "";
    put(line, ",\"", 2);
    put_escaped(line, key, strlen(key));
    put(line, "\":", 2);
    if (line->truncated) {
        line->len = mark;
        return;
    }
    put_value(line, f, mark);
}

static void put_header(line_t *line, pn_log_level_t level) {
    struct timespec now;
    struct tm tm;
    char ts[64] = "1970-01-01T00:00:00";
    clock_gettime(CLOCK_REALTIME, &now);
    if (gmtime_r(&now.tv_sec, &tm))
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    char head[160];
    int n = snprintf(head, sizeof head,
                     "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", ts,
                     now.tv_nsec / 1000000L, pn_log_level_name(level));
    put(line, head, (size_t)n < sizeof head ? (size_t)n : sizeof head - 1);
}

static void write_line(const char *buf, size_t len) {
    int fd = atomic_load(&log_fd);
    pthread_mutex_lock(&write_lock);
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere to report a failing log */
        buf += w;
        len -= (size_t)w;
    }
    pthread_mutex_unlock(&write_lock);
}

static void emit(pn_log_level_t level, const char *msg, size_t msg_len,
                 bool msg_cut, const pn_log_field_t *fields, size_t n) {
    line_t line;
    line.len = 0;
    line.truncated = false;
    put_header(&line, level);
    put_string(&line, msg ? msg : "", msg ? msg_len : 0);
    for (size_t i = 0; i < n; i++)
        put_field(&line, &fields[i]);
    if (line.truncated || msg_cut)
        put_tail(&line, ",\"truncated\":true");
    put_tail(&line, "}\n");
    write_line(line.buf, line.len);
}

bool pn_log_enabled(pn_log_level_t level) {
    return (int)level >= atomic_load(&log_level);
}

void pn_log_fields(pn_log_level_t level, const char *msg,
                   const pn_log_field_t *fields, size_t n) {
    if (!pn_log_enabled(level))
        return;
    int saved = errno;
    emit(level, msg, msg ? strlen(msg) : 0, false, fields, fields ? n : 0);
    errno = saved;
}

void pn_log(pn_log_level_t level, const char *fmt, ...) {
    if (!pn_log_enabled(level))
        return;
    int saved = errno;
    char msg[PN_LOG_LINE_MAX];
    int n = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        n = vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    if (n < 0)
        n = 0;
    bool cut = (size_t)n >= sizeof msg;
    emit(level, msg, cut ? sizeof msg - 1 : (size_t)n, cut, NULL, 0);
    errno = saved;
}

void pn_log_rdkafka(int syslog_level, const char *fac, const char *buf) {
    pn_log_level_t level = syslog_level <= 3   ? PN_LOG_ERROR
                           : syslog_level == 4 ? PN_LOG_WARN
                           : syslog_level <= 6 ? PN_LOG_INFO
                                               : PN_LOG_DEBUG;
    if (!pn_log_enabled(level))
        return;
    size_t len = buf ? strlen(buf) : 0;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    int saved = errno;
    pn_log_field_t fields[] = {PN_LOG_STR("component", "librdkafka"),
                               PN_LOG_STR("facility", fac ? fac : "")};
    emit(level, buf ? buf : "", len, false, fields,
         sizeof fields / sizeof fields[0]);
    errno = saved;
}

void pn_log_set_level(pn_log_level_t level) {
    atomic_store(&log_level, (int)level);
}

pn_log_level_t pn_log_get_level(void) {
    return (pn_log_level_t)atomic_load(&log_level);
}

void pn_log_set_fd(int fd) { atomic_store(&log_fd, fd); }

const char *pn_log_level_name(pn_log_level_t level) {
    if ((unsigned)level >= sizeof level_names / sizeof level_names[0])
        return "?";
    return level_names[level];
}

pn_err_t pn_log_level_parse(const char *name, pn_log_level_t *level) {
    if (!name || !level)
        return PN_ERR_INVALID_ARG;
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (!strcasecmp(name, level_names[i])) {
            *level = (pn_log_level_t)i;
            return PN_ERR_OK;
        }
    if (!strcasecmp(name, "warning")) {
        *level = PN_LOG_WARN;
        return PN_ERR_OK;
    }
    return PN_ERR_INVALID_ARG;
}
