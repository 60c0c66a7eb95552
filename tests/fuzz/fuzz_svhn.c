/* Fuzzes the SVHN MATLAB v5 reader. */
#include "data/readers.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    IngestOpts o;
    Builder b;
    XErr e = { 0 };
    XStream s;
    FILE *f = fuzz_file(data, size);
    fuzz_opts(&o);
    builder_init(&b, &o);
    if (f && svhn_begin(&b, &e) == XE_OK && xstream_open_file(&s, f, "train_32x32.mat", &e) == XE_OK) {
        if (svhn_read_mat(&b, &s, SPLIT_TRAIN, &e) == XE_OK)
            builder_finish(&b, "train_32x32.mat", &e);
        xstream_release(&s);
    }
    if (f)
        fclose(f);
    builder_release(&b);
    return 0;
}
