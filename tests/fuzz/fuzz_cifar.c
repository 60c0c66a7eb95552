/* Fuzzes the CIFAR batch reader; the first byte picks CIFAR-10 or -100. */
#include "data/readers.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    IngestOpts o;
    Builder b;
    XErr e = { 0 };
    XStream s;
    FILE *f;
    int variant;
    if (size < 1)
        return 0;
    variant = data[0] & 1 ? 100 : 10;
    fuzz_opts(&o);
    o.coarse = (data[0] & 2) != 0;
    builder_init(&b, &o);
    f = fuzz_file(data + 1, size - 1);
    if (f && cifar_begin(&b, variant, &e) == XE_OK && xstream_open_file(&s, f, "batch.bin", &e) == XE_OK) {
        if (cifar_read_batch(&b, variant, &s, SPLIT_TRAIN, &e) == XE_OK)
            builder_finish(&b, "batch.bin", &e);
        xstream_release(&s);
    }
    if (f)
        fclose(f);
    builder_release(&b);
    return 0;
}
