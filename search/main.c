/* xfer-search: placeholder until its issue lands; it does no work and says so.
 * It searches a cell for a new task with few trainings (run, bench). */
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: xfer-search COMMAND [OPTIONS]\n"
    "\n"
    "xfer-search searches a cell for a new task with few trainings (run, bench).\n"
    "It is not built yet (planned in issue #7): every command exits with status 2.\n";

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    fputs(usage, stderr);
    fputs("xfer-search: not implemented yet\n", stderr);
    return 2;
}
