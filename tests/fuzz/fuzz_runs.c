/* Fuzzes run-record import (JSON Lines) into an in-memory database. */
#include "data/import.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ImportStats st;
    XErr e = { 0 };
    const char *p = fuzz_path("runs.jsonl", data, size);
    if (p) {
        runs_import(":memory:", p, &st, &e);
        unlink(p);
    }
    return 0;
}
