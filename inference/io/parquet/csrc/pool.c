/*
 * The buffer pool (see pool.h). Fork handling: prepare takes the lock, so no other
 * thread holds it at the moment of fork(); the parent and the child (whose one thread
 * is the one that forked, the lock's owner) each release it.
 */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define PQ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PQ_ASAN 1
#endif
#endif

#ifdef PQ_ASAN
#define POOL_SLOTS 0
#define BUFFER_ROUND ((int64_t)1)
#else
#define POOL_SLOTS 64
/* capacities are rounded up to this, so pages of slightly different sizes share them */
#define BUFFER_ROUND ((int64_t)64 << 10)
#endif
#define POOL_BYTES ((int64_t)64 << 20)

static struct {
    uint8_t *buf;
    int64_t cap;
} pool[POOL_SLOTS > 0 ? POOL_SLOTS : 1];
static int pool_n;
static int64_t pool_bytes;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

uint8_t *pq_buffer_get(int64_t need, int64_t *cap) {
    uint8_t *b = NULL;
    pthread_mutex_lock(&pool_lock);
    int best = -1;
    for (int i = 0; i < pool_n; i++) {
        if (pool[i].cap >= need && (best < 0 || pool[i].cap < pool[best].cap)) {
            best = i;
        }
    }
    if (best >= 0) {
        b = pool[best].buf;
        *cap = pool[best].cap;
        pool_bytes -= pool[best].cap;
        pool[best] = pool[--pool_n];
    }
    pthread_mutex_unlock(&pool_lock);
    if (b != NULL) {
        return b;
    }
    int64_t n = (need + BUFFER_ROUND - 1) / BUFFER_ROUND * BUFFER_ROUND;
    b = malloc((size_t)(n > 0 ? n : 1));
    if (b != NULL) {
        *cap = n;
    }
    return b;
}

void pq_buffer_put(uint8_t *b, int64_t cap) {
    if (b == NULL) {
        return;
    }
    pthread_mutex_lock(&pool_lock);
    if (pool_n < POOL_SLOTS && pool_bytes + cap <= POOL_BYTES) {
        pool[pool_n].buf = b;
        pool[pool_n].cap = cap;
        pool_n++;
        pool_bytes += cap;
        b = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    free(b);
}

int pq_grow(uint8_t **buf, int64_t *cap, int64_t need) {
    if (need <= *cap) {
        return 1;
    }
    pq_buffer_put(*buf, *cap);
    *buf = NULL;
    *cap = 0;
    int64_t n;
    uint8_t *b = pq_buffer_get(need, &n);
    if (b == NULL) {
        return 0;
    }
    *buf = b;
    *cap = n;
    return 1;
}

static void pool_prepare(void) { pthread_mutex_lock(&pool_lock); }

static void pool_release(void) { pthread_mutex_unlock(&pool_lock); }

int pq_pool_install_fork_handlers(void) {
    static int installed;
    if (!installed) {
        installed = pthread_atfork(pool_prepare, pool_release, pool_release) == 0;
    }
    return installed;
}
