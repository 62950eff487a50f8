#include "corral/work_queue.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "corral/log.h"
#include "corral/types.h"

struct cr_work_queue {
    pthread_mutex_t lock;
    pthread_cond_t ready; /* an item came, or the stop */
    int capacity;
    int head; /* the oldest item */
    int count;
    bool stopped;
    void *items[]; /* ring of `capacity` slots */
};

cr_work_queue *cr_work_queue_new(int capacity)
{
    cr_work_queue *q;
    int err;

    if (capacity < 1) {
        cr_log(CR_LOG_CRIT, "a work queue of %d items: needs at least one", capacity);
        return NULL;
    }
    q = calloc(1, sizeof(*q) + (size_t)capacity * sizeof(q->items[0]));
    if (q == NULL) {
        cr_log(CR_LOG_CRIT, "a work queue of %d items: out of memory", capacity);
        return NULL;
    }
    q->capacity = capacity;
    err = pthread_mutex_init(&q->lock, NULL);
    if (err != 0) {
        cr_log_errno(CR_LOG_CRIT, err, "pthread_mutex_init (work queue)");
        free(q);
        return NULL;
    }
    err = pthread_cond_init(&q->ready, NULL);
    if (err != 0) {
        cr_log_errno(CR_LOG_CRIT, err, "pthread_cond_init (work queue)");
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
    }
    return q;
}

int cr_work_queue_push(cr_work_queue *q, void *item)
{
    int rc = CR_OK;

    pthread_mutex_lock(&q->lock);
    if (q->stopped)
        rc = CR_DONE;
    else if (q->count == q->capacity)
        rc = CR_AGAIN;
    if (rc == CR_OK) {
        q->items[(q->head + q->count) % q->capacity] = item;
        q->count++;
        /* One item, one consumer: waking them all would only put the rest
         * back to sleep. */
        pthread_cond_signal(&q->ready);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int cr_work_queue_pop(cr_work_queue *q, void **item)
{
    int rc = CR_DONE;

    pthread_mutex_lock(&q->lock);
    while (q->count == 0 && !q->stopped)
        pthread_cond_wait(&q->ready, &q->lock);
    if (q->count > 0) {
        *item = q->items[q->head];
        q->head = (q->head + 1) % q->capacity;
        q->count--;
        rc = CR_OK;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void cr_work_queue_stop(cr_work_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->stopped = true;
    pthread_cond_broadcast(&q->ready);
    pthread_mutex_unlock(&q->lock);
}

void cr_work_queue_free(cr_work_queue *q)
{
    if (q == NULL)
        return;
    pthread_cond_destroy(&q->ready);
    pthread_mutex_destroy(&q->lock);
    free(q);
}
