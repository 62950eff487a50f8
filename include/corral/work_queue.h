/* A bounded FIFO that hands work from one thread to a set of others: the
 * worker MPM's listener to its handler threads, the event driver's event
 * thread to its handler pool. A push never waits; a pop waits for an item. */
#ifndef CORRAL_WORK_QUEUE_H
#define CORRAL_WORK_QUEUE_H

/* Opaque: its layout is the core's, so it can change without an ABI bump. */
typedef struct cr_work_queue cr_work_queue;

/* An empty queue of `capacity` items (at least 1), or NULL with the cause
 * logged. */
cr_work_queue *cr_work_queue_new(int capacity);

/* Appends item without waiting. CR_OK; CR_AGAIN when the queue is full
 * (the caller decides: refuse the work, or wait for a consumer by its own
 * means); CR_DONE once stopped. */
int cr_work_queue_push(cr_work_queue *q, void *item);

/* Takes the oldest item into *item, waiting until there is one. CR_OK, or
 * CR_DONE once the queue was stopped and is empty: what was pushed before
 * the stop is still handed out. */
int cr_work_queue_pop(cr_work_queue *q, void **item);

/* Wakes every waiting consumer: from now on pushes return CR_DONE, and
 * pops too once the queue is empty. */
void cr_work_queue_stop(cr_work_queue *q);

/* Frees the queue (NULL is ignored) once no thread uses it any more. Items
 * still in it are the caller's. */
void cr_work_queue_free(cr_work_queue *q);

#endif
