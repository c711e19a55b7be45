/* talos corpus program (written for talos, not upstream code).
 *
 * Local functions named like libc's noreturn functions -- err, fatal, die,
 * panic -- that RETURN, and one function with an innocent name that never
 * returns. A verifier that decides "noreturn" from a name cuts the code after
 * every call to err/fatal/die/panic (and its stripped and unstripped builds
 * then disagree); one that decides from the code keeps those fallthroughs and
 * ends the block after the call to stop_here().
 *
 * noinline/noclone keep each function a function of its own at -O2; nothing
 * here is declared noreturn, so the compiler's own knowledge does not leak
 * into the call sites of the returning ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int errors;
static int warnings;

__attribute__((noinline, noclone)) static void err(const char *msg)
{
    errors++;
    if (msg && msg[0] == '!')
        fprintf(stderr, "err: %s\n", msg + 1);
}

__attribute__((noinline, noclone)) static int fatal(const char *msg, int code)
{
    if (code > 100)
        fprintf(stderr, "fatal: %s (%d)\n", msg, code);
    warnings += code & 3;
    return code + 1;
}

__attribute__((noinline, noclone)) void die(int level)
{
    if (level > 3)
        fprintf(stderr, "die: level %d\n", level);
    errors += level;
}

__attribute__((noinline, noclone)) void panic(const char *where, size_t n)
{
    if (n > 64)
        fprintf(stderr, "panic: %s is long\n", where);
    warnings += (int)(n & 1);
}

/* Never returns, though nothing says so: only the code does. */
__attribute__((noinline, noclone)) static void stop_here(int code)
{
    fflush(stdout);
    fprintf(stderr, "stopping with %d\n", code);
    exit(code);
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--stop") == 0)
            stop_here(total & 0x7f);
        err(a);
        total += fatal(a, (int)strlen(a));
        die(i);
        panic(a, strlen(a));
        total += errors - warnings;
    }
    err("done");
    die(0);
    printf("%d %d %d\n", total, errors, warnings);
    return 0;
}
