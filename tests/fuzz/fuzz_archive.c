/* Fuzzes archive walking (tar, gzip, zip, npz) and every member reader it
 * dispatches to: CIFAR batches and names, .npy arrays, PNG class folders. */
#include "data/ingest.h"
#include "data/readers.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    IngestOpts o;
    Builder b;
    XErr e = { 0 };
    IngestFormat found;
    fuzz_opts(&o);
    builder_init(&b, &o);
    if (ingest_archive(&b, "fuzz.tar.gz", data, size, FORMAT_AUTO, &found, &e) == XE_OK)
        builder_finish(&b, "fuzz.tar.gz", &e);
    builder_release(&b);
    return 0;
}
