/* What every tool's main() shares: parsing numbers and lists from options,
 * and finishing stdout so a failed write is a failure (jq main.c). */
#ifndef XFER_CLI_H
#define XFER_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Parses an integer / a real in [lo, hi] for option opt. */
int cli_long(const char *opt, const char *s, long lo, long hi, long *out, XErr *e);
int cli_double(const char *opt, const char *s, double lo, double hi, double *out, XErr *e);
/* Splits s at commas into a new array of new strings. */
int cli_split(const char *opt, const char *s, char ***out, int *n, XErr *e);
void cli_free_list(char **list, int n);
/* Splits "KEY=VALUE" into two new strings. */
int cli_pair(const char *opt, const char *s, char **key, char **value, XErr *e);

/* Closes stdout; returns XE_FAIL with a message if anything failed to write. */
int cli_finish_stdout(XErr *e);

/* Prints "tool: message" for a status and returns the exit code for it. */
int cli_report(const char *tool, int status, const XErr *e);

/* A tool's command table and main(): global options (--help, --version,
 * --db PATH or --db=PATH), then COMMAND dispatched with getopt reset and
 * argv starting at the command; *db_path = db_default(the --db value or
 * NULL) before the command runs. Returns the exit code. */
typedef struct CliCommand {
    const char *name;
    int (*fn)(int argc, char **argv, XErr *e);
} CliCommand;

int cli_main(const char *tool, const char *usage, const CliCommand *cmds, size_t ncmds,
             const char *(*db_default)(const char *opt), const char **db_path, int argc, char **argv);

#endif
