/* Reports which allocator a preloaded klab library runs malloc on, and
 * that it did the work: the library's klab_allocator() name and its
 * counters (SLAB's slabs made, SLOB's pages), found with dlsym so the
 * program also runs without the library ("allocator none").
 *
 * Allocates and frees blocks of many sizes on four threads (each frees
 * half of another's), with realloc, calloc and posix_memalign, and prints
 * a checksum that depends only on the contents written. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 20000
#define THREADS 4

static unsigned char *blocks[THREADS][N];
static size_t sizes[THREADS][N];
static uint64_t sums[THREADS];

static void *work(void *arg) {
    int t = (int)(intptr_t)arg;
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1), sum = 0;
    for (int i = 0; i < N; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        size_t n = 1 + (s % 16 == 0 ? (s >> 8) % 20000 : (s >> 8) % 300);
        unsigned char *p = i % 7 == 0 ? calloc(1, n) : malloc(n);
        if (!p) { fprintf(stderr, "malloc(%zu) failed\n", n); exit(1); }
        if (i % 7 == 0) for (size_t k = 0; k < n; k++) if (p[k]) { fprintf(stderr, "calloc not zero\n"); exit(1); }
        memset(p, (int)(n & 0xff), n);
        if (i % 5 == 0) {
            p = realloc(p, n * 2);
            memset(p + n, (int)(n & 0xff), n);
            n *= 2;
        }
        blocks[t][i] = p;
        sizes[t][i] = n;
        if (i % 3 == 0 && i > 0) {
            /* Free an older block of our own. */
            int j = i / 2;
            if (blocks[t][j]) {
                for (size_t k = 0; k < sizes[t][j]; k++) sum += blocks[t][j][k];
                free(blocks[t][j]);
                blocks[t][j] = NULL;
            }
        }
    }
    void *a = NULL;
    if (posix_memalign(&a, 64, 100) || ((uintptr_t)a & 63)) { fprintf(stderr, "posix_memalign\n"); exit(1); }
    free(a);
    sums[t] = sum;
    return NULL;
}

int main(void) {
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, work, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    /* The main thread frees what the workers left (cross-thread frees). */
    uint64_t sum = 0;
    for (int t = 0; t < THREADS; t++) {
        sum += sums[t];
        for (int i = 0; i < N; i++)
            if (blocks[t][i]) {
                for (size_t k = 0; k < sizes[t][i]; k++) sum += blocks[t][i][k];
                free(blocks[t][i]);
            }
    }
    const char *(*name)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "klab_allocator");
    size_t (*grown)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "klab_slab_slabs_grown");
    size_t (*pages)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "klab_slob_pages");
    if (name)
        printf("allocator %s slab-slabs %s slob-pages %s\n", name(),
               grown() > 0 ? "some" : "none", pages() > 0 ? "some" : "none");
    else
        printf("allocator none\n");
    printf("sum %llu\n", (unsigned long long)sum);
    return 0;
}
