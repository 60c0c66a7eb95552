/* Shared by the libFuzzer harnesses: a stream or a file over the input, and
 * a builder to push into. Each harness feeds one reader. */
#ifndef XFER_FUZZ_H
#define XFER_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/stream.h"
#include "data/builder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_opts(IngestOpts *o)
{
    memset(o, 0, sizeof *o);
    o->valid_fraction = 0.2;
}

/* A FILE* over the input (never empty: fmemopen refuses size 0). */
static inline FILE *fuzz_file(const uint8_t *data, size_t size)
{
    static const uint8_t none;
    return fmemopen((void *)(size ? data : &none), size ? size : 1, "rb");
}

/* Writes the input to a file with the given name under /dev/shm (or /tmp). */
static inline const char *fuzz_path(const char *name, const uint8_t *data, size_t size)
{
    static char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/xfer-fuzz-%d-%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
             (int)getpid(), name);
    f = fopen(path, "wb");
    if (!f)
        return NULL;
    fwrite(data, 1, size, f);
    fclose(f);
    return path;
}

#endif
