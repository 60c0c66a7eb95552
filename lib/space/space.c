/* What every space shares: canonical string plus hash. */
#include "space/space.h"

#include <stdio.h>
#include <string.h>

#include "core/hash.h"

static const Space *const spaces[] = { &space_nb201 };

const Space *space_find(const char *name)
{
    for (size_t i = 0; i < sizeof spaces / sizeof *spaces; i++)
        if (name && strcmp(spaces[i]->name, name) == 0)
            return spaces[i];
    return NULL;
}

const char *space_list(void)
{
    return "nb201";
}

int space_canonical_hash(const Space *sp, const char *arch, char *canon, size_t cap,
                         char hash[65], XErr *e)
{
    char key[4096];
    if (sp->canonical(arch, canon, cap, e))
        return e->code;
    snprintf(key, sizeof key, "%s:%s", sp->name, canon);
    sha256_hex(key, strlen(key), hash);
    return XE_OK;
}
