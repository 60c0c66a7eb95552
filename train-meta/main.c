/* xfer-train-meta: placeholder until its issue lands; it does no work and says so.
 * It trains cell architectures on stored tasks and records curves (plan, work, run, proxies, status, merge). */
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: xfer-train-meta COMMAND [OPTIONS]\n"
    "\n"
    "xfer-train-meta trains cell architectures on stored tasks and records curves (plan, work, run, proxies, status, merge).\n"
    "It is not built yet (planned in issue #5): every command exits with status 2.\n";

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    fputs(usage, stderr);
    fputs("xfer-train-meta: not implemented yet\n", stderr);
    return 2;
}
