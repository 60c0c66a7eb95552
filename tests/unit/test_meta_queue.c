/* Claim holders (lib/meta/queue.c, lib/db/heart.c): the worker name that
 * runs and searches are claimed under, which names count as a process of
 * this host that is gone, and the heartbeat thread (beats, a lost lease,
 * a stop that does not wait for the next beat). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "db/heart.h"
#include "fixtures/fx_util.h"
#include "meta/meta.h"

/* A pid that was a process of this host a moment ago and is no more. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (!pid)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return pid;
}

static void test_meta_queue_worker_name(void **state)
{
    char host[64] = "host", name[180], want[180], other[180];
    (void)state;
    gethostname(host, sizeof host - 1);
    queue_worker_name(name, sizeof name, 0);
    snprintf(want, sizeof want, "%s:%d:", host, (int)getpid());
    assert_memory_equal(name, want, strlen(want));
    assert_null(strchr(name + strlen(want), ':'));
    queue_worker_name(name, sizeof name, 3);
    assert_string_equal(strrchr(name, ':'), ":3");
    /* this process lives */
    assert_int_equal(queue_worker_dead(name), 0);
    snprintf(other, sizeof other, "%s:%d:1:2", host, (int)dead_pid());
    assert_int_equal(queue_worker_dead(other), 1);
    snprintf(other, sizeof other, "%s:%d", host, (int)dead_pid());
    assert_int_equal(queue_worker_dead(other), 1);
    /* another host, or not a name of that form: never taken for gone */
    snprintf(other, sizeof other, "%s.elsewhere:%d:1", host, (int)dead_pid());
    assert_int_equal(queue_worker_dead(other), 0);
    static const char *const odd[] = { "", "host", ":1:1", "%s:", "%s:abc:1", "%s:0:1", "%s:-1:1", "%s:12x:1",
                                       "%s:99999999999999999999:1" };
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        snprintf(other, sizeof other, odd[i], host);
        assert_int_equal(queue_worker_dead(other), 0);
    }
}

typedef struct Beats {
    int n, lose_at;
} Beats;

static int count_beat(Store *st, void *ctx, XErr *e)
{
    Beats *b = ctx;
    (void)st;
    if (++b->n >= b->lose_at)
        return xerr_set(e, XE_FAIL, "search 1: lease lost (another process took it over); not writing");
    return XE_OK;
}

static void test_meta_queue_heart(void **state)
{
    char *d = unit_tmpdir();
    const char *p = fx_path(d, "x.db");
    Store st;
    Heart h;
    Beats b = { 0, 4 };
    XErr e = { 0 };
    double t0;
    (void)state;
    assert_int_equal(store_open(&st, p, 1, &e), XE_OK);
    assert_int_equal(heart_start(&h, p, 0.01, count_beat, &b, &e), XE_OK);
    for (int i = 0; i < 500 && !h.lost; i++)
        usleep(10000);
    assert_true(h.lost);
    assert_true(b.n >= 4);
    heart_stop(&h);
    /* a stop does not wait for the next beat */
    b.n = 0, b.lose_at = 1000;
    assert_int_equal(heart_start(&h, p, 60, count_beat, &b, &e), XE_OK);
    t0 = xfer_clock();
    heart_stop(&h);
    assert_true(xfer_clock() - t0 < 5);
    assert_int_equal(b.n, 0);
    /* a database it cannot open: no thread */
    assert_int_equal(heart_start(&h, fx_path(d, "missing.db"), 1, count_beat, &b, &e), XE_FAIL);
    store_close(&st);
    fx_rmtree(d);
    free(d);
}

const struct CMUnitTest test_meta_queue_tests[] = {
    cmocka_unit_test(test_meta_queue_worker_name),
    cmocka_unit_test(test_meta_queue_heart),
};
const size_t test_meta_queue_count = sizeof test_meta_queue_tests / sizeof test_meta_queue_tests[0];
