/* libFuzzer harness for the search spaces: arch strings of every space
 * (first byte picks the space) and token sequences. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "space/space.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const Space *sp = size && data[0] & 1 ? &space_darts : &space_nb201;
    char *s = malloc(size + 1), canon[512], again[512];
    SpaceArch a;
    XErr e = { 0 };
    int tok[SPACE_MAX_TOKENS], back[SPACE_MAX_TOKENS], n;
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (sp->canonical(size ? s + 1 : s, canon, sizeof canon, &e) == XE_OK) {
        if (sp->parse(canon, &a, &e) != XE_OK)
            abort();
        sp->format(&a, again, sizeof again);
        if (strcmp(canon, again))
            abort();
    }
    n = (int)(size / 2 < SPACE_MAX_TOKENS ? size / 2 : SPACE_MAX_TOKENS);
    for (int k = 0; k < n; k++)
        tok[k] = (int8_t)data[2 * k] % 16;
    xerr_clear(&e);
    if (sp->decode(tok, n, &a, &e) == XE_OK) {
        sp->encode(&a, back);
        if (memcmp(tok, back, (size_t)n * sizeof *tok) || sp->to_index(&a) >= sp->count)
            abort();
    }
    free(s);
    return 0;
}
