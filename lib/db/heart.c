/* The heartbeat thread: a timed wait on a condition, so stopping it does
 * not wait for the next beat. */
#include "db/heart.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static void *heart_main(void *arg)
{
    Heart *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)h->every;
        ts.tv_nsec += (long)((h->every - (double)(time_t)h->every) * 1e9);
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        if (pthread_cond_timedwait(&h->cv, &h->mu, &ts) == ETIMEDOUT && !h->stop) {
            XErr e = { 0 };
            pthread_mutex_unlock(&h->mu);
            if (h->beat(&h->st, h->ctx, &e) && strstr(e.msg, "lease lost"))
                h->lost = 1;
            pthread_mutex_lock(&h->mu);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int heart_start(Heart *h, const char *db, double every, HeartBeat beat, void *ctx, XErr *e)
{
    memset(h, 0, sizeof *h);
    h->beat = beat;
    h->ctx = ctx;
    h->every = every;
    if (store_open(&h->st, db, 0, e))
        return e->code;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, heart_main, h)) {
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        store_close(&h->st);
        return xerr_set(e, XE_FAIL, "cannot start the heartbeat thread");
    }
    return XE_OK;
}

void heart_stop(Heart *h)
{
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    store_close(&h->st);
}
