/* A larson-style churn in C for the LD_PRELOAD test: each thread owns an
 * array of live blocks, replaces random ones with blocks of random size
 * (writing a pattern and checking it before free), and hands its array
 * to the next thread each round. Also forks a child mid-run that
 * allocates, and checks calloc, realloc and posix_memalign results.
 * Prints "larson ok <checksum>" on success. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <malloc.h>

#define THREADS 4
#define SLOTS 2000
#define ROUNDS 6
#define OPS 40000

struct blk { unsigned char *p; size_t n; };
static struct blk arrays[THREADS][SLOTS];
static pthread_barrier_t barrier;
static unsigned long sums[THREADS];

static uint64_t rnd(uint64_t *s) { *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return *s; }

static void *worker(void *arg) {
    long t = (long)arg;
    uint64_t s = 88172645463325252ull + t;
    for (int r = 0; r < ROUNDS; r++) {
        struct blk *a = arrays[(t + r) % THREADS];
        for (int i = 0; i < OPS; i++) {
            struct blk *b = &a[rnd(&s) % SLOTS];
            if (b->p) {
                for (size_t k = 0; k < b->n; k += 64)
                    if (b->p[k] != (unsigned char)b->n) { fprintf(stderr, "corrupt block\n"); exit(3); }
                free(b->p);
            }
            b->n = 8 + rnd(&s) % 600;
            b->p = malloc(b->n);
            if (!b->p) { fprintf(stderr, "malloc failed\n"); exit(4); }
            memset(b->p, (unsigned char)b->n, b->n);
            sums[t] += b->n;
        }
        pthread_barrier_wait(&barrier);
    }
    return 0;
}

int main(void) {
    pthread_t th[THREADS];
    pthread_barrier_init(&barrier, 0, THREADS);
    for (long t = 0; t < THREADS; t++) pthread_create(&th[t], 0, worker, (void *)t);
    /* fork while the workers churn: the child must be able to allocate */
    pid_t pid = fork();
    if (pid == 0) {
        void *v[1000];
        for (int i = 0; i < 1000; i++) { v[i] = malloc(16 + i); memset(v[i], 1, 16 + i); }
        for (int i = 0; i < 1000; i++) free(v[i]);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "child failed\n"); return 5; }
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], 0);
    unsigned long total = 0;
    for (int t = 0; t < THREADS; t++) {
        total += sums[t];
        for (int i = 0; i < SLOTS; i++) free(arrays[t][i].p);
    }
    int *z = calloc(1000, sizeof(int));
    for (int i = 0; i < 1000; i++) if (z[i]) return 6;
    z = realloc(z, 100000 * sizeof(int));
    for (int i = 0; i < 1000; i++) if (z[i]) return 7;
    free(z);
    void *m = 0;
    if (posix_memalign(&m, 4096, 100) || ((uintptr_t)m & 4095)) return 8;
    if (malloc_usable_size(m) < 100) return 9;
    free(m);
    printf("larson ok %lu\n", total);
    return 0;
}
