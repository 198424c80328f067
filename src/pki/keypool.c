/*
 * Parallel key generation. RSA keys dominate the cost of a tree (tens of milliseconds each), so
 * they are spread over one thread per CPU pulling jobs from a shared counter; ECDSA keys take
 * ~30 microseconds, less than starting a thread, so they are made on the calling thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pki/pki.h"

struct pool {
    struct kp_key_job *jobs;
    size_t count;
    atomic_size_t next;
    const struct kp_pki_hooks *hooks;
    pthread_mutex_t lock; /* guards done, failed, first_error, and serialises progress calls */
    size_t done;
    bool failed;
    struct kp_error first_error;
};

/* A generator for type, reusing *gen when it already makes that type. */
static enum kp_result generator_for(enum kp_key_type type, struct kp_keygen **gen,
                                    struct kp_error *err)
{
    if (*gen != NULL && kp_keygen_type(*gen) == type) {
        return KP_OK;
    }
    kp_keygen_free(*gen);
    *gen = NULL;
    return kp_keygen_new(type, gen, err);
}

static void *worker(void *arg)
{
    struct pool *pool = arg;
    struct kp_keygen *gen = NULL; /* this thread's own */
    for (;;) {
        size_t index = atomic_fetch_add(&pool->next, 1);
        if (index >= pool->count) {
            break;
        }
        struct kp_error err;
        kp_error_clear(&err);
        pthread_mutex_lock(&pool->lock);
        bool stop = pool->failed;
        pthread_mutex_unlock(&pool->lock);
        if (stop) {
            break;
        }
        struct kp_key_job *job = &pool->jobs[index];
        enum kp_result rc = generator_for(job->type, &gen, &err);
        if (rc == KP_OK) {
            rc = kp_keygen_next(gen, &job->key, &err);
        }
        pthread_mutex_lock(&pool->lock);
        if (rc != KP_OK && !pool->failed) {
            pool->failed = true;
            pool->first_error = err;
        }
        if (rc == KP_OK) {
            pool->done++;
            if (pool->hooks != NULL && pool->hooks->key_progress != NULL) {
                pool->hooks->key_progress(pool->hooks->context, pool->done, pool->count);
            }
        }
        pthread_mutex_unlock(&pool->lock);
    }
    kp_keygen_free(gen);
    return NULL;
}

static int online_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        return CPU_COUNT(&set);
    }
    long count = sysconf(_SC_NPROCESSORS_ONLN);
    return count > 0 ? (int)count : 1;
}

enum kp_result kp_keypool_generate(struct kp_key_job *jobs, size_t count, int threads,
                                   const struct kp_pki_hooks *hooks, struct kp_error *err)
{
    bool any_rsa = false;
    for (size_t i = 0; i < count; i++) {
        jobs[i].key = NULL;
        any_rsa = any_rsa || kp_key_type_is_rsa(jobs[i].type);
    }
    if (threads <= 0) {
        threads = online_cpus();
    }
    if (!any_rsa) {
        threads = 1;
    }
    if ((size_t)threads > count) {
        threads = (int)count;
    }
    struct pool pool = {.jobs = jobs, .count = count, .hooks = hooks};
    atomic_init(&pool.next, 0);
    pthread_mutex_init(&pool.lock, NULL);
    kp_error_clear(&pool.first_error);
    pthread_t workers[256];
    int started = 0;
    /* The calling thread is worker 0. */
    for (int i = 1; i < threads && i < 256; i++) {
        if (pthread_create(&workers[started], NULL, worker, &pool) == 0) {
            started++;
        }
    }
    worker(&pool);
    for (int i = 0; i < started; i++) {
        pthread_join(workers[i], NULL);
    }
    pthread_mutex_destroy(&pool.lock);
    if (pool.failed) {
        for (size_t i = 0; i < count; i++) {
            EVP_PKEY_free(jobs[i].key);
            jobs[i].key = NULL;
        }
        if (err != NULL) {
            *err = pool.first_error;
        }
        return pool.first_error.code != KP_OK ? pool.first_error.code : KP_ERR_INTERNAL;
    }
    return KP_OK;
}
