/* Error context and interrupt flag. */
#include "core/err.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

volatile int xfer_interrupted;

int xerr_set(XErr *e, int code, const char *fmt, ...)
{
    if (!e)
        return code;
    if (e->code == XE_OK || e->msg[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

void xerr_prefix(XErr *e, const char *fmt, ...)
{
    char head[512], old[sizeof e->msg];
    va_list ap;
    if (!e || !e->msg[0])
        return;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%s%s", head, old);
}

void xerr_clear(XErr *e)
{
    e->code = XE_OK;
    e->msg[0] = '\0';
}

static void on_signal(int sig)
{
    (void)sig;
    xfer_interrupted = 1;
}

void xfer_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int xerr_check_interrupt(XErr *e)
{
    if (!xfer_interrupted)
        return XE_OK;
    return xerr_set(e, XE_INTR, "interrupted");
}
