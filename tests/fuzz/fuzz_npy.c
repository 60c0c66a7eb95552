/* Fuzzes the .npy reader (one class per array). */
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
    if (f && xstream_open_file(&s, f, "cat.npy", &e) == XE_OK) {
        if (npy_read_class(&b, &s, "cat", &e) == XE_OK)
            builder_finish(&b, "cat.npy", &e);
        xstream_release(&s);
    }
    if (f)
        fclose(f);
    builder_release(&b);
    return 0;
}
