/* Fuzzes the IDX reader: the input is an images file paired with labels. */
#include <stdlib.h>

#include "data/readers.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t labels[] = { 0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 0, 1 };
    IngestOpts o;
    Builder b;
    XErr e = { 0 };
    char img[256], lab[256];
    char *paths[2] = { img, lab };
    const char *p = fuzz_path("train-labels-idx1-ubyte", labels, sizeof labels);
    if (!p)
        return 0;
    snprintf(lab, sizeof lab, "%s", p);
    p = fuzz_path("train-images-idx3-ubyte", data, size);
    if (!p)
        return 0;
    snprintf(img, sizeof img, "%s", p);
    fuzz_opts(&o);
    builder_init(&b, &o);
    if (idx_read_files(&b, paths, 2, &e) == XE_OK)
        builder_finish(&b, img, &e);
    builder_release(&b);
    unlink(img);
    unlink(lab);
    {
        /* the array reader on its own, over memory */
        FILE *f = fuzz_file(data, size);
        XStream s;
        int nd;
        uint32_t dims[4];
        uint8_t *arr = NULL;
        if (f && xstream_open_file(&s, f, "fuzz", &e) == XE_OK)
            idx_read_array(&s, &nd, dims, &arr, &e);
        free(arr);
        xstream_release(&s);
        if (f)
            fclose(f);
    }
    return 0;
}
