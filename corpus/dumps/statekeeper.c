/*
 * statekeeper: a small process with known state, dumped by make-dumps.sh so
 * that talos can be tested on real gdb and kernel core files.
 *
 * State it holds, all derived from a fixed seed so every run is identical:
 *   - g_state      a global (.data) 64-bit state word, 0x5441534b45455053
 *                  ("SPEEKSAT") folded through the operation table once;
 *   - g_ops[4]     a const function pointer table (RELRO in a PIE);
 *   - g_hooks[2]   a writable function pointer table (.data);
 *   - g_heap       4 MiB (--heap-mib) of xorshift64 output (mmap'd by malloc);
 *   - g_small      64 small heap blocks on the brk heap;
 *   - two worker threads (256 KiB stacks) blocked in read() on a pipe
 *     nobody writes.
 *
 * Protocol: prints one line "ready pid=<pid> heap=<addr> state=<hex>" on
 * stdout once the state is built, then reads commands from stdin, one per
 * line: "step" (advance g_state through the table), "quit". At end of input
 * it blocks in pause() until killed.
 *
 * --jit: also maps one anonymous read-write-execute page holding
 * "mov eax, 42; ret" and calls it (anonymous executable memory, W+X).
 *
 * --tick MS [--heap-mib N]: the live-migration sample. The heap buffer is N
 * MiB (default 4) and the main thread, instead of reading commands, ticks
 * every MS milliseconds: it advances g_tick and g_state and prints
 *   tick=<n> state=<hex> heap=<hex>
 * where heap is a 64-bit hash of the whole heap buffer. A process moved by
 * CRIU must go on from the tick it was frozen at with the same heap hash.
 * Run it as a session leader with no terminal (setsid, stdin /dev/null,
 * stdout a file) so that `criu dump` needs no --shell-job.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define HEAP_BYTES_DEFAULT ((size_t)4 << 20)
#define SMALL_BLOCKS 64

typedef uint64_t (*op_fn)(uint64_t);

uint64_t g_state = 0x5441534b45455053ull;
volatile uint64_t g_counter;
volatile uint64_t g_tick;
size_t g_heap_bytes = HEAP_BYTES_DEFAULT;
uint8_t *g_heap;
void *g_small[SMALL_BLOCKS];
void *g_jit;

__attribute__((noinline)) uint64_t op_add(uint64_t x) { return x + 0x9e3779b97f4a7c15ull; }
__attribute__((noinline)) uint64_t op_mul(uint64_t x) { return x * 0xbf58476d1ce4e5b9ull; }
__attribute__((noinline)) uint64_t op_xor(uint64_t x) { return x ^ (x >> 31); }
__attribute__((noinline)) uint64_t op_rot(uint64_t x) { return (x << 13) | (x >> 51); }

op_fn const g_ops[4] = {op_add, op_mul, op_xor, op_rot};
op_fn g_hooks[2] = {op_add, op_xor};

__attribute__((noinline)) uint64_t sk_checksum(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Word-wise, so that hashing a 1 GiB heap every tick stays cheap. */
__attribute__((noinline)) uint64_t sk_heap_hash(const uint8_t *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull, w;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    return h;
}

__attribute__((noinline)) void sk_fill(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t x = seed;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
}

__attribute__((noinline)) uint64_t sk_step(uint64_t s) {
    for (int i = 0; i < 4; i++) s = g_ops[i](s);
    return g_hooks[s & 1](s);
}

static int g_pipe[2];

static void *sk_worker(void *arg) {
    char c;
    ssize_t r = read(g_pipe[0], &c, 1);
    g_counter += (uint64_t)r + (uintptr_t)arg;
    return NULL;
}

static void sk_ticks(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    for (;;) {
        g_tick++;
        g_state = sk_step(g_state);
        printf("tick=%llu state=%016llx heap=%016llx\n", (unsigned long long)g_tick,
               (unsigned long long)g_state,
               (unsigned long long)sk_heap_hash(g_heap, g_heap_bytes));
        fflush(stdout);
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv) {
    int jit = 0;
    long tick_ms = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jit") == 0) {
            jit = 1;
        } else if (strcmp(argv[i], "--tick") == 0 && i + 1 < argc) {
            tick_ms = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--heap-mib") == 0 && i + 1 < argc) {
            g_heap_bytes = (size_t)strtoul(argv[++i], NULL, 10) << 20;
        } else {
            fprintf(stderr, "usage: statekeeper [--jit] [--tick MS [--heap-mib N]]\n");
            return 2;
        }
    }
    g_heap = malloc(g_heap_bytes);
    if (!g_heap) return 1;
    sk_fill(g_heap, g_heap_bytes, 0x243f6a8885a308d3ull);
    for (int i = 0; i < SMALL_BLOCKS; i++) {
        g_small[i] = malloc(256);
        if (!g_small[i]) return 1;
        sk_fill(g_small[i], 256, (uint64_t)i + 1);
    }
    g_state = sk_step(g_state ^ sk_checksum(g_heap, g_heap_bytes < HEAP_BYTES_DEFAULT ? g_heap_bytes : HEAP_BYTES_DEFAULT));
    if (jit) {
        g_jit = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (g_jit == MAP_FAILED) return 1;
        static const uint8_t code[] = {0xb8, 42, 0, 0, 0, 0xc3}; /* mov eax, 42; ret */
        memcpy(g_jit, code, sizeof code);
        g_counter += (uint64_t)((int (*)(void))g_jit)();
    }
    if (pipe(g_pipe) != 0) return 1;
    pthread_t t[2];
    pthread_attr_t attr; /* small stacks keep the dumps small */
    if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, 256 << 10) != 0) return 1;
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], &attr, sk_worker, (void *)(uintptr_t)i) != 0) return 1;
    printf("ready pid=%d heap=%p state=%016llx\n", (int)getpid(), (void *)g_heap,
           (unsigned long long)g_state);
    fflush(stdout);
    if (tick_ms >= 0) sk_ticks(tick_ms);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "step", 4) == 0) {
            g_state = sk_step(g_state);
            printf("state=%016llx\n", (unsigned long long)g_state);
            fflush(stdout);
        } else if (strncmp(line, "quit", 4) == 0) {
            return 0;
        }
    }
    for (;;) pause();
}
