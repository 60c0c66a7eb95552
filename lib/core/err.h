/* Status codes and the error context: library functions return a status and
 * leave the message on an XErr; only main() prints it and exits. */
#ifndef XFER_ERR_H
#define XFER_ERR_H

enum {
    XE_OK = 0,
    XE_FAIL = 1,   /* bad input, I/O or database failure */
    XE_USAGE = 2,  /* bad options or arguments */
    XE_INTR = 3,   /* interrupted by SIGINT/SIGTERM */
};

typedef struct XErr {
    int code;
    char msg[1024];
} XErr;

/* Records a message (printf-style) and returns code, so callers can write
 * `return xerr_set(e, XE_FAIL, "'%s': truncated", path);`. A message already
 * set is kept: the first, innermost error is the one that explains. */
int xerr_set(XErr *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the current message (e.g. with a file name) if one is set. */
void xerr_prefix(XErr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void xerr_clear(XErr *e);

/* Set by the SIGINT/SIGTERM handler that xfer_catch_signals() installs;
 * long loops poll it and unwind with XE_INTR. */
extern volatile int xfer_interrupted;
void xfer_catch_signals(void);
int xerr_check_interrupt(XErr *e);

#endif
