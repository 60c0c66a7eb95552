/* Option helpers shared by the tools' mains. */
#include "core/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_long(const char *opt, const char *s, long lo, long hi, long *out, XErr *e)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return xerr_set(e, XE_USAGE, "%s: '%s' is not an integer in %ld..%ld", opt, s, lo, hi);
    *out = v;
    return XE_OK;
}

int cli_double(const char *opt, const char *s, double lo, double hi, double *out, XErr *e)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (!*s || *end || errno || !(v >= lo && v <= hi))
        return xerr_set(e, XE_USAGE, "%s: '%s' is not a number in %g..%g", opt, s, lo, hi);
    *out = v;
    return XE_OK;
}

void cli_free_list(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

int cli_split(const char *opt, const char *s, char ***out, int *n, XErr *e)
{
    char **list = NULL;
    int k = 0;
    const char *p = s;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char **nl = realloc(list, (size_t)(k + 1) * sizeof *nl);
        if (!nl) {
            cli_free_list(list, k);
            return xerr_set(e, XE_FAIL, "out of memory");
        }
        list = nl;
        if (len == 0) {
            cli_free_list(list, k);
            return xerr_set(e, XE_USAGE, "%s: empty item in '%s'", opt, s);
        }
        list[k] = strndup(p, len);
        if (!list[k]) {
            cli_free_list(list, k);
            return xerr_set(e, XE_FAIL, "out of memory");
        }
        k++;
        if (!c)
            break;
        p = c + 1;
    }
    *out = list;
    *n = k;
    return XE_OK;
}

int cli_pair(const char *opt, const char *s, char **key, char **value, XErr *e)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s || !eq[1])
        return xerr_set(e, XE_USAGE, "%s: expected KEY=VALUE, got '%s'", opt, s);
    *key = strndup(s, (size_t)(eq - s));
    *value = strdup(eq + 1);
    if (!*key || !*value) {
        free(*key), free(*value);
        return xerr_set(e, XE_FAIL, "out of memory");
    }
    return XE_OK;
}

int cli_finish_stdout(XErr *e)
{
    int bad = ferror(stdout);
    if (fclose(stdout) != 0 || bad)
        return xerr_set(e, XE_FAIL, "error writing standard output: %s", strerror(errno ? errno : EIO));
    return XE_OK;
}

int cli_report(const char *tool, int status, const XErr *e)
{
    if (status != XE_OK)
        fprintf(stderr, "%s: %s\n", tool, e->msg[0] ? e->msg : "failed");
    return status == XE_OK ? 0 : status == XE_USAGE ? 2 : status == XE_INTR ? 3 : 1;
}
