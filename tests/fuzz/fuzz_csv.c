/* Fuzzes benchmark-table import (CSV, gzip) into an in-memory database. */
#include "data/import.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *tasks[] = { "c10", "c100" }, *cols[] = { "cifar10", "cifar100" };
    char *vt[] = { "c10" }, *vc[] = { "cifar10-valid" };
    BenchImport bi = { ":memory:", NULL, "nb201", "arch", tasks, cols, 2, vt, vc, 1, 200, "auto" };
    ImportStats st;
    XErr e = { 0 };
    bi.file = fuzz_path("bench.csv", data, size);
    if (bi.file) {
        bench_import(&bi, &st, &e);
        unlink(bi.file);
    }
    return 0;
}
