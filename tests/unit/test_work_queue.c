/* Unit tests for core/work_queue.c: FIFO order, a full queue refusing a
 * push, a stop waking every waiting consumer, and several producers and
 * consumers at once (run under ThreadSanitizer by the tsan build). */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "corral/types.h"
#include "corral/work_queue.h"

#define CR_TQ_PRODUCERS    4
#define CR_TQ_CONSUMERS    4
#define CR_TQ_PER_PRODUCER 20000
#define CR_TQ_CAPACITY     8
#define CR_TQ_WAITERS      4

/* Items are small integers carried in the pointer, as the worker MPM
 * carries descriptors. */
static void *cr_tq_item(intptr_t n)
{
    return (void *)n;
}

static intptr_t cr_tq_value(void *item)
{
    return (intptr_t)item;
}

START_TEST(test_fifo_order)
{
    cr_work_queue *q = cr_work_queue_new(5);
    void *item;

    ck_assert_ptr_nonnull(q);
    /* Twice round the ring, so the wrap is crossed. */
    for (int round = 0; round < 2; round++) {
        for (intptr_t i = 0; i < 5; i++)
            ck_assert_int_eq(cr_work_queue_push(q, cr_tq_item(i)), CR_OK);
        for (intptr_t i = 0; i < 3; i++) {
            ck_assert_int_eq(cr_work_queue_pop(q, &item), CR_OK);
            ck_assert_int_eq(cr_tq_value(item), i);
        }
        ck_assert_int_eq(cr_work_queue_push(q, cr_tq_item(5)), CR_OK);
        for (intptr_t i = 3; i < 6; i++) {
            ck_assert_int_eq(cr_work_queue_pop(q, &item), CR_OK);
            ck_assert_int_eq(cr_tq_value(item), i);
        }
    }
    cr_work_queue_free(q);
}
END_TEST

START_TEST(test_full_refuses)
{
    cr_work_queue *q = cr_work_queue_new(3);
    void *item;

    ck_assert_ptr_nonnull(q);
    for (intptr_t i = 0; i < 3; i++)
        ck_assert_int_eq(cr_work_queue_push(q, cr_tq_item(i)), CR_OK);
    ck_assert_int_eq(cr_work_queue_push(q, cr_tq_item(3)), CR_AGAIN);
    ck_assert_int_eq(cr_work_queue_pop(q, &item), CR_OK);
    ck_assert_int_eq(cr_tq_value(item), 0);
    ck_assert_int_eq(cr_work_queue_push(q, cr_tq_item(3)), CR_OK);
    ck_assert_int_eq(cr_work_queue_push(q, cr_tq_item(4)), CR_AGAIN);
    cr_work_queue_free(q);
}
END_TEST

START_TEST(test_bad_capacity)
{
    ck_assert_ptr_null(cr_work_queue_new(0));
    ck_assert_ptr_null(cr_work_queue_new(-1));
    cr_work_queue_free(NULL);
}
END_TEST

typedef struct cr_tq_waiter {
    cr_work_queue *q;
    int rc;
} cr_tq_waiter;

static void *cr_tq_wait(void *arg)
{
    cr_tq_waiter *w = arg;
    void *item;

    w->rc = cr_work_queue_pop(w->q, &item);
    return NULL;
}

START_TEST(test_stop_wakes_waiters)
{
    cr_work_queue *q = cr_work_queue_new(4);
    cr_tq_waiter w[CR_TQ_WAITERS];
    pthread_t tid[CR_TQ_WAITERS];
    struct timespec pause = {0, 50 * 1000000L};

    ck_assert_ptr_nonnull(q);
    for (int i = 0; i < CR_TQ_WAITERS; i++) {
        w[i] = (cr_tq_waiter){.q = q, .rc = CR_ERROR};
        ck_assert_int_eq(pthread_create(&tid[i], NULL, cr_tq_wait, &w[i]), 0);
    }
    /* Most likely all asleep in the pop by now; either way none has an item. */
    nanosleep(&pause, NULL);
    cr_work_queue_stop(q);
    for (int i = 0; i < CR_TQ_WAITERS; i++) {
        ck_assert_int_eq(pthread_join(tid[i], NULL), 0);
        ck_assert_int_eq(w[i].rc, CR_DONE);
    }
    ck_assert_int_eq(cr_work_queue_push(q, cr_tq_item(1)), CR_DONE);
    cr_work_queue_free(q);
}
END_TEST

START_TEST(test_stop_hands_out_what_is_queued)
{
    cr_work_queue *q = cr_work_queue_new(4);
    void *item;

    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(cr_work_queue_push(q, cr_tq_item(7)), CR_OK);
    ck_assert_int_eq(cr_work_queue_push(q, cr_tq_item(8)), CR_OK);
    cr_work_queue_stop(q);
    ck_assert_int_eq(cr_work_queue_pop(q, &item), CR_OK);
    ck_assert_int_eq(cr_tq_value(item), 7);
    ck_assert_int_eq(cr_work_queue_pop(q, &item), CR_OK);
    ck_assert_int_eq(cr_tq_value(item), 8);
    ck_assert_int_eq(cr_work_queue_pop(q, &item), CR_DONE);
    cr_work_queue_free(q);
}
END_TEST

/* ---- several producers and consumers ---- */

typedef struct cr_tq_shared {
    cr_work_queue *q;
    atomic_int seen[CR_TQ_PRODUCERS * CR_TQ_PER_PRODUCER];
    atomic_int popped;
    atomic_int out_of_order;
} cr_tq_shared;

typedef struct cr_tq_producer {
    cr_tq_shared *s;
    int index;
} cr_tq_producer;

static void *cr_tq_produce(void *arg)
{
    cr_tq_producer *p = arg;

    for (intptr_t i = 0; i < CR_TQ_PER_PRODUCER; i++) {
        intptr_t n = (intptr_t)p->index * CR_TQ_PER_PRODUCER + i;

        /* A small queue, so producers meet it full and consumers meet it
         * empty many times. */
        while (cr_work_queue_push(p->s->q, cr_tq_item(n)) == CR_AGAIN)
            sched_yield();
    }
    return NULL;
}

/* Each consumer must see each producer's items in the order pushed. */
static void *cr_tq_consume(void *arg)
{
    cr_tq_shared *s = arg;
    intptr_t last[CR_TQ_PRODUCERS];
    void *item;

    for (int i = 0; i < CR_TQ_PRODUCERS; i++)
        last[i] = -1;
    while (cr_work_queue_pop(s->q, &item) == CR_OK) {
        intptr_t n = cr_tq_value(item);
        int from = (int)(n / CR_TQ_PER_PRODUCER);

        if (n % CR_TQ_PER_PRODUCER <= last[from])
            atomic_fetch_add(&s->out_of_order, 1);
        last[from] = n % CR_TQ_PER_PRODUCER;
        atomic_fetch_add(&s->seen[n], 1);
        atomic_fetch_add(&s->popped, 1);
    }
    return NULL;
}

START_TEST(test_producers_and_consumers)
{
    cr_tq_shared *s = calloc(1, sizeof(*s));
    cr_tq_producer prod[CR_TQ_PRODUCERS];
    pthread_t ptid[CR_TQ_PRODUCERS], ctid[CR_TQ_CONSUMERS];

    ck_assert_ptr_nonnull(s);
    s->q = cr_work_queue_new(CR_TQ_CAPACITY);
    ck_assert_ptr_nonnull(s->q);
    for (int i = 0; i < CR_TQ_CONSUMERS; i++)
        ck_assert_int_eq(pthread_create(&ctid[i], NULL, cr_tq_consume, s), 0);
    for (int i = 0; i < CR_TQ_PRODUCERS; i++) {
        prod[i] = (cr_tq_producer){.s = s, .index = i};
        ck_assert_int_eq(pthread_create(&ptid[i], NULL, cr_tq_produce, &prod[i]), 0);
    }
    for (int i = 0; i < CR_TQ_PRODUCERS; i++)
        ck_assert_int_eq(pthread_join(ptid[i], NULL), 0);
    /* Everything is pushed: the consumers empty the queue, then stop. */
    cr_work_queue_stop(s->q);
    for (int i = 0; i < CR_TQ_CONSUMERS; i++)
        ck_assert_int_eq(pthread_join(ctid[i], NULL), 0);
    ck_assert_int_eq(atomic_load(&s->popped), CR_TQ_PRODUCERS * CR_TQ_PER_PRODUCER);
    ck_assert_int_eq(atomic_load(&s->out_of_order), 0);
    for (int i = 0; i < CR_TQ_PRODUCERS * CR_TQ_PER_PRODUCER; i++)
        ck_assert_int_eq(atomic_load(&s->seen[i]), 1);
    cr_work_queue_free(s->q);
    free(s);
}
END_TEST

static Suite *cr_work_queue_suite(void)
{
    Suite *s = suite_create("work_queue");
    TCase *tc = tcase_create("core");

    /* The threaded case runs slowly under ThreadSanitizer. */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fifo_order);
    tcase_add_test(tc, test_full_refuses);
    tcase_add_test(tc, test_bad_capacity);
    tcase_add_test(tc, test_stop_wakes_waiters);
    tcase_add_test(tc, test_stop_hands_out_what_is_queued);
    tcase_add_test(tc, test_producers_and_consumers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cr_work_queue_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
