#include "pool.h"

#include <stdint.h>
#include <stdlib.h>

#define CR_POOL_ALIGN     16
#define CR_POOL_MIN_BLOCK 8192

static size_t cr_pool_round(size_t n)
{
    return (n + CR_POOL_ALIGN - 1) & ~(size_t)(CR_POOL_ALIGN - 1);
}

void cr_pool_init(cr_pool *p, void *first_block, size_t size)
{
    p->base = first_block;
    p->size = size;
    p->used = 0;
    p->extra = NULL;
}

static void *cr_pool_alloc_block(cr_pool *p, size_t size)
{
    size_t block = size > CR_POOL_MIN_BLOCK ? size : CR_POOL_MIN_BLOCK;
    cr_pool_block *b;

    if (size > SIZE_MAX / 2)
        return NULL;
    b = malloc(sizeof(*b) + block);
    if (b == NULL)
        return NULL;
    b->size = block;
    b->used = size;
    b->next = p->extra;
    p->extra = b;
    return b->data;
}

void *cr_pool_alloc(cr_pool *p, size_t size)
{
    size_t need = cr_pool_round(size ? size : 1);
    void *mem;

    if (need <= p->size - p->used) {
        mem = p->base + p->used;
        p->used += need;
        return mem;
    }
    if (p->extra != NULL && need <= p->extra->size - p->extra->used) {
        mem = p->extra->data + p->extra->used;
        p->extra->used += need;
        return mem;
    }
    return cr_pool_alloc_block(p, need);
}

void cr_pool_reset(cr_pool *p)
{
    cr_pool_block *b = p->extra;

    while (b != NULL) {
        cr_pool_block *next = b->next;
        free(b);
        b = next;
    }
    p->extra = NULL;
    p->used = 0;
}
