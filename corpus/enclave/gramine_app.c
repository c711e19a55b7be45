/* An application meant to run under Gramine (glibc, dynamic, PIE).
 * BAD: raw SYSCALL and CPUID instructions, which Gramine traps and
 * emulates; labels expect__<rule>__<n> mark them for the tests. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

__attribute__((noinline)) static long raw_getpid(void)
{
#ifdef BAD
    long r;
    __asm__ volatile("mov $39, %%eax\n\texpect__gramine_emulated_syscall__0:\n\tsyscall"
                     : "=a"(r) : : "rcx", "r11", "memory");
    return r;
#else
    return 42;
#endif
}

__attribute__((noinline)) static unsigned features(void)
{
#ifdef BAD
    unsigned a = 1, b, c = 0, d;
    __asm__ volatile("expect__gramine_emulated_instruction__0:\n\tcpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return d;
#else
    return 0;
#endif
}

int main(int argc, char **argv)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s %ld %u", argc > 1 ? argv[1] : "-", raw_getpid(), features());
    puts(buf);
    return (int)strlen(buf) > 200 ? EXIT_FAILURE : EXIT_SUCCESS;
}
