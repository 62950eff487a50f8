/* Per-request memory arena. The first block lives inside its owner (the
 * connection), so a request that fits in it costs no malloc; larger needs
 * chain heap blocks that are freed when the pool is reset. */
#ifndef CR_POOL_H
#define CR_POOL_H

#include <stddef.h>

typedef struct cr_pool_block {
    struct cr_pool_block *next;
    size_t size;
    size_t used;
    _Alignas(16) char data[];
} cr_pool_block;

struct cr_pool {
    char *base; /* the embedded first block */
    size_t size;
    size_t used;
    cr_pool_block *extra; /* heap blocks, newest first */
};

typedef struct cr_pool cr_pool;

void cr_pool_init(cr_pool *p, void *first_block, size_t size);

/* 16-byte aligned memory; NULL when out of memory. */
void *cr_pool_alloc(cr_pool *p, size_t size);

/* Frees the heap blocks and makes the first block empty again. */
void cr_pool_reset(cr_pool *p);

#endif
