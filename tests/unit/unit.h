/* Helpers the unit-test files share (include after <cmocka.h>). */
#ifndef XFER_UNIT_H
#define XFER_UNIT_H

#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* A new directory under /tmp (free the name; fx_rmtree the directory). */
static inline char *unit_tmpdir(void)
{
    char *dir = strdup("/tmp/xfer-test-XXXXXX");
    assert_non_null(dir);
    assert_non_null(mkdtemp(dir));
    return dir;
}

/* rc is XE_FAIL and the message contains text. */
static inline void unit_expect_error(int rc, const XErr *e, const char *text)
{
    if (rc != XE_FAIL || !strstr(e->msg, text))
        fail_msg("expected an error containing \"%s\", got rc %d \"%s\"", text, rc, e->msg);
}

#endif
