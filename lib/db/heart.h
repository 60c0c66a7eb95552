/* A heartbeat thread: keeps a lease in the store alive from its own
 * connection while the caller's thread trains, fits or waits (the run
 * queue's runs, a search's hold on its row). */
#ifndef XFER_HEART_H
#define XFER_HEART_H

#include <pthread.h>

#include "db/store.h"

/* One beat on the heart's connection: extends the lease. A failure whose
 * message says "lease lost" marks the lease lost; any other (a busy
 * database) is tried again at the next beat. */
typedef int (*HeartBeat)(Store *st, void *ctx, XErr *e);

typedef struct Heart {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    Store st;            /* its own connection */
    HeartBeat beat;
    void *ctx;
    double every;        /* seconds between beats */
    int stop;
    volatile int lost;   /* the lease was taken over */
} Heart;

/* Opens its connection to the database at path db and starts beating every
 * `every` seconds (the first beat after `every`). */
int heart_start(Heart *h, const char *db, double every, HeartBeat beat, void *ctx, XErr *e);
/* Stops the thread (at once, not at the next beat) and closes its connection. */
void heart_stop(Heart *h);

#endif
