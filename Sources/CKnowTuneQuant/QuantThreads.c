// Implements the decoding kernels' thread team: the calling thread and up to KT_Q_TEAM_MAX − 1 workers run the
// parts of one product, and the call returns when every part has. Workers spin briefly between products (a decoding
// step runs a product every few tens of microseconds, far less than a sleep and wake-up costs) and then sleep on a
// condition variable. One product at a time: a second caller while the team is busy runs its product alone.
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include "QuantInternal.h"

#define KT_Q_TEAM_MAX 8
// Spins of about 40 ns each (a pause) before a worker sleeps: a few milliseconds.
#define KT_Q_SPINS 100000

static pthread_mutex_t kt_q_team_busy = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t kt_q_team_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kt_q_team_wake = PTHREAD_COND_INITIALIZER;
static int kt_q_team_started = 0;          // workers running (guarded by kt_q_team_lock)
static atomic_uint kt_q_team_generation;   // bumped once per product
static atomic_int kt_q_team_pending;       // parts not yet finished by workers
static atomic_int kt_q_team_sleepers;
// The generation before the product that starts a worker: a worker that begins after the bump still runs it.
static unsigned kt_q_team_birth_generation;
static kt_q_part_fn kt_q_team_task;
static void *kt_q_team_context;
static int kt_q_team_parts;

static void *kt_q_worker(void *argument) {
    const int index = (int)(intptr_t)argument;  // 1 … KT_Q_TEAM_MAX − 1
    unsigned seen = kt_q_team_birth_generation;  // written before pthread_create, which orders it before this read
    for (;;) {
        unsigned generation;
        int spins = 0;
        while ((generation = atomic_load_explicit(&kt_q_team_generation, memory_order_acquire)) == seen) {
            if (++spins < KT_Q_SPINS) {
                _mm_pause();
                continue;
            }
            pthread_mutex_lock(&kt_q_team_lock);
            atomic_fetch_add(&kt_q_team_sleepers, 1);
            // Sequentially consistent with the caller's bump-then-read of the sleepers: one of the two sees the other.
            while (atomic_load(&kt_q_team_generation) == seen) pthread_cond_wait(&kt_q_team_wake, &kt_q_team_lock);
            atomic_fetch_sub(&kt_q_team_sleepers, 1);
            pthread_mutex_unlock(&kt_q_team_lock);
            spins = 0;
        }
        seen = generation;
        if (index < kt_q_team_parts) {
            kt_q_team_task(kt_q_team_context, index, kt_q_team_parts);
            atomic_fetch_sub_explicit(&kt_q_team_pending, 1, memory_order_release);
        }
    }
    return NULL;
}

// Starts workers up to `parts` − 1; returns how many parts can run (1 if a thread cannot be created).
static int kt_q_team_grow(int parts) {
    pthread_mutex_lock(&kt_q_team_lock);
    kt_q_team_birth_generation = atomic_load(&kt_q_team_generation);
    while (kt_q_team_started < parts - 1) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        const int failed = pthread_create(&thread, &attributes, kt_q_worker, (void *)(intptr_t)(kt_q_team_started + 1));
        pthread_attr_destroy(&attributes);
        if (failed) break;
        kt_q_team_started++;
    }
    const int available = kt_q_team_started + 1;
    pthread_mutex_unlock(&kt_q_team_lock);
    return parts < available ? parts : available;
}

void kt_q_parallel(int parts, kt_q_part_fn task, void *context) {
    if (parts > KT_Q_TEAM_MAX) parts = KT_Q_TEAM_MAX;
    if (parts <= 1 || pthread_mutex_trylock(&kt_q_team_busy) != 0) {
        task(context, 0, 1);
        return;
    }
    parts = kt_q_team_grow(parts);
    if (parts <= 1) {
        pthread_mutex_unlock(&kt_q_team_busy);
        task(context, 0, 1);
        return;
    }
    kt_q_team_task = task;
    kt_q_team_context = context;
    kt_q_team_parts = parts;
    // Every started worker sees the generation change; those with an index ≥ parts skip the product.
    int participants = 0;
    for (int index = 1; index <= kt_q_team_started; index++) participants += index < parts;
    atomic_store_explicit(&kt_q_team_pending, participants, memory_order_relaxed);
    atomic_fetch_add(&kt_q_team_generation, 1);  // sequentially consistent: see the worker's sleep path
    if (atomic_load(&kt_q_team_sleepers) > 0) {
        pthread_mutex_lock(&kt_q_team_lock);
        pthread_cond_broadcast(&kt_q_team_wake);
        pthread_mutex_unlock(&kt_q_team_lock);
    }
    task(context, 0, parts);
    while (atomic_load_explicit(&kt_q_team_pending, memory_order_acquire) > 0) _mm_pause();
    pthread_mutex_unlock(&kt_q_team_busy);
}
