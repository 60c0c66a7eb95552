/* Fuzzes PNG decoding in the image-folder reader. */
#include "data/readers.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    IngestOpts o;
    Builder b;
    XErr e = { 0 };
    fuzz_opts(&o);
    builder_init(&b, &o);
    if (imgfolder_add_png(&b, "train/cat/1.png", data, size, "'1.png'", &e) == XE_OK)
        builder_finish(&b, "folder", &e);
    builder_release(&b);
    return 0;
}
