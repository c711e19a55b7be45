/* Test program of analyzer/tests/html.rs: its two functions are renamed to
   markup with objcopy; with "patch" it overwrites the first byte of one
   and traps, so that gdb can write a core of a tampered process. */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef V
#define V 3
#endif

/* Renamed by objcopy to names that are markup. */
__attribute__((noinline)) int hostile_script(int x) {
    unsigned a = 0, b, c, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
    return x * 7 + V + (int)(b & 1);
}
__attribute__((noinline)) int hostile_attr(int x) { return (x ^ 0x55) + V; }

int main(int argc, char **argv) {
    volatile int r = hostile_script(argc) + hostile_attr(argc);
    if (argc > 1 && strcmp(argv[1], "patch") == 0) {
        int fd = open("/proc/self/coredump_filter", O_WRONLY);
        if (fd >= 0) { (void)!write(fd, "0x7f", 4); close(fd); }
        long pg = sysconf(_SC_PAGESIZE);
        unsigned char *p = (unsigned char *)(void *)hostile_script;
        unsigned char *page = (unsigned char *)((unsigned long)p & ~(unsigned long)(pg - 1));
        mprotect(page, (size_t)pg * 2, PROT_READ | PROT_WRITE | PROT_EXEC);
        p[0] = 0xcc;
        mprotect(page, (size_t)pg * 2, PROT_READ | PROT_EXEC);
        __builtin_trap();
    }
    return r & 1;
}
