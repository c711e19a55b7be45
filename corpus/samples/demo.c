/* The sample trusted application embedded in `talos demo`.
 *
 * A small key-value "vault" with the shapes talos must get right: a switch
 * lowered to a jump table, a function-pointer table, a function that never
 * returns, and state in .data/.bss/heap. Built by build.sh; the binary is
 * committed (16 KiB) so `talos demo` works without a compiler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vault { char key[16]; long value; unsigned epoch; };
static struct vault slots[8];
static unsigned epoch = 1;

__attribute__((noreturn, noinline)) static void die(const char *why) {
  fprintf(stderr, "vault: %s\n", why);
  exit(70);
}

static long op_put(long a, long b) { slots[a & 7].value = b; slots[a & 7].epoch = epoch++; return b; }
static long op_get(long a, long b) { (void)b; return slots[a & 7].value; }
static long op_add(long a, long b) { slots[a & 7].value += b; return slots[a & 7].value; }
static long op_clear(long a, long b) { (void)b; memset(&slots[a & 7], 0, sizeof slots[0]); return 0; }

static long (*const ops[])(long, long) = { op_put, op_get, op_add, op_clear };

__attribute__((noinline)) long dispatch(int cmd, long a, long b) {
  switch (cmd) {
  case 0: return ops[0](a, b);
  case 1: return ops[1](a, b);
  case 2: return ops[2](a, b);
  case 3: return ops[3](a, b);
  case 4: return a + b;
  case 5: return a - b;
  case 6: return a * b;
  case 7: if (b == 0) die("division by zero"); return a / b;
  default: die("unknown command");
  }
}

int main(int argc, char **argv) {
  long acc = 0;
  char *heap = malloc(4096);
  if (!heap) die("out of memory");
  for (int i = 1; i + 2 < argc; i += 3)
    acc += dispatch(atoi(argv[i]), atol(argv[i + 1]), atol(argv[i + 2]));
  snprintf(heap, 4096, "%ld", acc);
  puts(heap);
  free(heap);
  return 0;
}
