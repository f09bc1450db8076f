/* Thread churn under a preloaded malloc: worker threads are created and
 * joined over and over while they allocate objects of many sizes, hand
 * them to each other through a shared exchange array (so most frees land
 * on another thread's slabs, often one that has exited), free a burst
 * just before they return (so they exit with full per-thread caches), and
 * exit while still owning objects others will free. Meanwhile the main
 * thread forks: each child allocates and frees from a process whose other
 * threads were mid-allocation at the fork.
 *
 * Usage: churn [rounds] [threads] [ops] [seed]. Prints one line,
 * "churn ok <checksum>", whose checksum depends only on the arguments.
 * A watchdog (alarm) turns a hang into exit status 3 with a message. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOTS 4096

static _Atomic(unsigned char *) exchange[SLOTS];
static int ops_per_thread;
static atomic_ulong checksum;

static uint64_t next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Sizes from 1 byte to 40 KiB, most of them small, as a program's are. */
static size_t pick_size(uint64_t *s) {
    uint64_t r = next(s);
    switch (r % 16) {
    case 0: return 1 + (r >> 8) % 40000;
    case 1: case 2: return 1 + (r >> 8) % 4096;
    case 3: return 1 + (r >> 8) % 1024;
    default: return 1 + (r >> 8) % 256;
    }
}

/* An object carries its size and a byte derived from it, so a block
 * freed early or handed out twice is caught when its next owner checks. */
static unsigned char *make(size_t size) {
    size_t n = size < sizeof(size_t) + 1 ? sizeof(size_t) + 1 : size;
    unsigned char *p = malloc(n);
    if (!p) {
        fprintf(stderr, "churn: malloc(%zu) returned NULL\n", n);
        _exit(4);
    }
    memcpy(p, &n, sizeof n);
    memset(p + sizeof n, (int)(n & 0xff), n - sizeof n);
    return p;
}

static void check_and_free(unsigned char *p) {
    size_t n;
    memcpy(&n, p, sizeof n);
    if (n < sizeof(size_t) + 1 || n > 40000 + sizeof(size_t)) {
        fprintf(stderr, "churn: corrupt size %zu in block %p\n", n, (void *)p);
        _exit(5);
    }
    if (p[n - 1] != (unsigned char)(n & 0xff) || p[sizeof n] != (unsigned char)(n & 0xff)) {
        fprintf(stderr, "churn: block %p of %zu bytes overwritten\n", (void *)p, n);
        _exit(5);
    }
    atomic_fetch_add_explicit(&checksum, n, memory_order_relaxed);
    free(p);
}

/* A worker's start: its seed and, for some, a batch of blocks another
 * thread allocated, to free just before it exits. */
struct job {
    uint64_t id;
    unsigned char **batch;
    int batch_len;
};

static void *worker(void *arg) {
    struct job *job = arg;
    uint64_t s = job->id * 0x9e3779b97f4a7c15ULL + 1;
    unsigned char *mine[64] = {0};
    for (int i = 0; i < ops_per_thread; i++) {
        uint64_t r = next(&s);
        unsigned char *p = make(pick_size(&s));
        if (r & 1) {
            /* Hand it to whoever comes to this slot next. */
            unsigned char *q = atomic_exchange(&exchange[(r >> 1) % SLOTS], p);
            if (q) check_and_free(q);
        } else {
            /* Keep it a while, freeing what it replaces (a local free). */
            unsigned char **slot = &mine[(r >> 1) % 64];
            if (*slot) check_and_free(*slot);
            *slot = p;
        }
        if (i % 997 == 0) {
            /* A burst of short-lived blocks of one size: fills the
             * thread's caches for that size class. */
            unsigned char *burst[48];
            size_t sz = pick_size(&s);
            for (int k = 0; k < 48; k++) burst[k] = make(sz);
            for (int k = 0; k < 48; k++) check_and_free(burst[k]);
        }
    }
    /* Exit with objects still in the thread's caches: half of the kept
     * blocks are freed here, the rest go to the exchange for others. */
    for (int k = 0; k < 64; k++) {
        if (!mine[k]) continue;
        if (k % 2) {
            check_and_free(mine[k]);
        } else {
            unsigned char *q = atomic_exchange(&exchange[(k * 61 + s) % SLOTS], mine[k]);
            if (q) check_and_free(q);
        }
    }
    /* Then a whole batch of one size that another thread allocated: the
     * first free into each of its full slabs makes the slab this
     * thread's, the rest empty it, and the thread exits owning empty
     * slabs (its exit must hand them back without allocating). */
    for (int k = 0; k < job->batch_len; k++) check_and_free(job->batch[k]);
    return NULL;
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "churn: watchdog fired: the program hung\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 50;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    ops_per_thread = argc > 3 ? atoi(argv[3]) : 4000;
    uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
    int watchdog = argc > 5 ? atoi(argv[5]) : 60;
    signal(SIGALRM, on_alarm);
    alarm((unsigned)watchdog);
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    struct job *jobs = calloc((size_t)threads, sizeof *jobs);
    /* Up to 12 slabs' worth of 128 small blocks for the batch. */
    unsigned char **batch = calloc(12 * 128, sizeof *batch);
    for (int round = 0; round < rounds; round++) {
        /* This round's batch: one small size (8 to 32 bytes, cycling
         * every round) and 1 to 12 slabs' worth of 128 blocks. */
        size_t batch_size = 8 * (1 + (size_t)round % 4);
        int batch_len = 128 * (1 + (round / 4) % 12);
        for (int k = 0; k < batch_len; k++) batch[k] = make(batch_size);
        for (int k = 0; k < threads; k++) {
            jobs[k].id = seed * 1000003 + (uint64_t)round * 131 + (uint64_t)k + 1;
            jobs[k].batch = k == 0 ? batch : NULL;
            jobs[k].batch_len = k == 0 ? batch_len : 0;
            if (pthread_create(&t[k], NULL, worker, &jobs[k]) != 0) {
                fprintf(stderr, "churn: pthread_create failed\n");
                return 6;
            }
        }
        if (round % 5 == 0) {
            /* Fork while the workers allocate: the child must be able to
             * allocate whatever locks they held. */
            pid_t pid = fork();
            if (pid < 0) {
                perror("churn: fork");
                return 6;
            }
            if (pid == 0) {
                alarm(20);
                uint64_t cs = seed + (uint64_t)round;
                unsigned char *keep[256];
                for (int i = 0; i < 256; i++) keep[i] = make(pick_size(&cs));
                for (int i = 0; i < 256; i++) check_and_free(keep[i]);
                /* A thread in the child too: its exit flushes its caches. */
                pthread_t c;
                struct job j = {cs | 1, NULL, 0};
                if (pthread_create(&c, NULL, worker, &j) != 0) _exit(6);
                pthread_join(c, NULL);
                _exit(0);
            }
            int st;
            if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "churn: forked child failed (status %d)\n", st);
                return 7;
            }
        }
        for (int k = 0; k < threads; k++) pthread_join(t[k], NULL);
    }
    /* Whatever is left in the exchange is freed by the main thread. */
    for (int i = 0; i < SLOTS; i++) {
        unsigned char *q = atomic_exchange(&exchange[i], NULL);
        if (q) check_and_free(q);
    }
    free(batch);
    free(jobs);
    free(t);
    printf("churn ok %lu\n", (unsigned long)atomic_load(&checksum));
    return 0;
}
