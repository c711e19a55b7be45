/* A PE (Windows) enclave-like DLL for `talos audit --tee sgx`: its export
 * enclave_entry reaches CPUID, RDTSC and SYSCALL, which fault inside an
 * SGX enclave. No C library: only what this file says is in the image. */

static unsigned cpu_vendor(void)
{
    unsigned a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0));
    return b ^ c ^ d;
}

static unsigned long long ticks(void)
{
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((unsigned long long)hi << 32) | lo;
}

static long raw_getpid(void)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(39L) : "rcx", "r11", "memory");
    return r;
}

__declspec(dllexport) long enclave_entry(int op)
{
    switch (op) {
    case 1:
        return (long)cpu_vendor();
    case 2:
        return (long)ticks();
    case 3:
        return raw_getpid();
    default:
        return 0;
    }
}

int __stdcall DllMain(void *module, unsigned reason, void *reserved)
{
    (void)module;
    (void)reason;
    (void)reserved;
    return 1;
}
