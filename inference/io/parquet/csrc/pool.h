/*
 * A process-wide pool of page buffers: buffers freed by finished readers are kept (up
 * to POOL_SLOTS buffers and POOL_BYTES bytes) for the next readers, as a fresh buffer
 * costs a page fault per 4 KiB page, as much as decoding it. Thread-safe; fork-safe
 * through pthread_atfork handlers (pq_pool_install_fork_handlers).
 *
 * Built with AddressSanitizer, the pool keeps nothing and rounds nothing: every buffer
 * is a malloc of exactly the bytes asked for, so a read past the bytes a reader asked
 * for lands in ASan's redzone instead of a pooled buffer's slack.
 */
#ifndef LINREG_PQ_POOL_H
#define LINREG_PQ_POOL_H

#include <stdint.h>

/* A buffer of at least need bytes (*cap set to its size), or NULL. */
uint8_t *pq_buffer_get(int64_t need, int64_t *cap);

/* Gives a buffer back (NULL is fine): to the pool if it has room, else to free(). */
void pq_buffer_put(uint8_t *b, int64_t cap);

/* Makes *buf hold at least need bytes (its contents are not kept): 1, or 0 without
 * memory (*buf is then NULL). */
int pq_grow(uint8_t **buf, int64_t *cap, int64_t need);

/* Registers the fork handlers (once per process): 1 on success. */
int pq_pool_install_fork_handlers(void);

#endif
