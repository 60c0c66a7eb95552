/* Option helpers shared by the tools' mains. */
#include "core/cli.h"
#include "core/config.h"

#include <errno.h>
#include <getopt.h>
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

int cli_main(const char *tool, const char *usage, const CliCommand *cmds, size_t ncmds,
             const char *(*db_default)(const char *opt), const char **db_path, int argc, char **argv)
{
    XErr e = { 0 };
    int i = 1, rc;
    const char *db = NULL;
    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return cli_report(tool, cli_finish_stdout(&e), &e);
        } else if (!strcmp(argv[i], "--version")) {
            printf("%s %s\n", tool, XFER_VERSION);
            return cli_report(tool, cli_finish_stdout(&e), &e);
        } else if (!strcmp(argv[i], "--db") && i + 1 < argc) {
            db = argv[i + 1];
            i += 2;
        } else if (!strncmp(argv[i], "--db=", 5)) {
            db = argv[i] + 5;
            i++;
        } else {
            fprintf(stderr, "%s: unknown option '%s'\n%s", tool, argv[i], usage);
            return 2;
        }
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    *db_path = db_default(db);
    for (size_t k = 0; k < ncmds; k++)
        if (!strcmp(cmds[k].name, argv[i])) {
            optind = 1;
            rc = cmds[k].fn(argc - i, argv + i, &e);
            if (cli_finish_stdout(&e) && rc == XE_OK)
                rc = XE_FAIL;
            return cli_report(tool, rc, &e);
        }
    fprintf(stderr, "%s: unknown command '%s' (", tool, argv[i]);
    for (size_t k = 0; k < ncmds; k++)
        fprintf(stderr, "%s%s", k ? ", " : "", cmds[k].name);
    fputs(")\n", stderr);
    return 2;
}
