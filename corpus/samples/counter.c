/* The live-migration sample of `talos demo`: a counter and a 1 MiB heap
 * buffer whose hash it prints every tick. Moved by CRIU, it must go on
 * from the tick it was frozen at, with the same hash. Built by build.sh;
 * the binary is committed so `talos demo` works without a compiler.
 *
 *   counter [MS]   tick every MS milliseconds (default 100) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEAP (1u << 20)

static uint64_t ticks;
static uint8_t *heap;

__attribute__((noinline)) static uint64_t hash(const uint8_t *p, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ull, w;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
  }
  return h;
}

int main(int argc, char **argv) {
  long ms = argc > 1 ? atol(argv[1]) : 100;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  uint64_t x = 0x243f6a8885a308d3ull;
  heap = malloc(HEAP);
  if (!heap) return 1;
  for (size_t i = 0; i + 8 <= HEAP; i += 8) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    memcpy(heap + i, &x, 8);
  }
  for (;;) {
    ticks++;
    printf("tick=%llu heap=%016llx\n", (unsigned long long)ticks,
           (unsigned long long)hash(heap, HEAP));
    fflush(stdout);
    nanosleep(&ts, NULL);
  }
}
