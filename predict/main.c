/* xfer-predict: placeholder until its issue lands; it does no work and says so.
 * It fits the transfer surrogate and the learning-curve ranker (fit, score, curves, eval). */
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: xfer-predict COMMAND [OPTIONS]\n"
    "\n"
    "xfer-predict fits the transfer surrogate and the learning-curve ranker (fit, score, curves, eval).\n"
    "It is not built yet (planned in issue #6): every command exits with status 2.\n";

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    fputs(usage, stderr);
    fputs("xfer-predict: not implemented yet\n", stderr);
    return 2;
}
