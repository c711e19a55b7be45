/* An SGX-SDK-like enclave image for talos audit tests: a shared object
 * built without libc, exporting enclave_entry (as the SDK's trts does).
 *
 * BAD builds put every instruction that faults inside SGX on a path
 * reachable from enclave_entry, plus one in a function nothing reaches.
 * Each such instruction carries a local label expect__<rule>__<n> that
 * gen.py turns into the expected finding (rule id and address).
 * The clean twin (no BAD) computes the same values without them. */

typedef unsigned long u64;

u64 g_state;

#ifdef PAD
/* Only in the "rebuilt" variant (built with -fno-toplevel-reorder, so
 * this lands first in .text): shifts every later address. */
__asm__(".text\n\t.globl padding_function\n\t.type padding_function, @function\n"
        "padding_function:\n\t.fill 93, 1, 0x90\n\tret\n\t.size padding_function, .-padding_function");
#endif

#ifdef BAD
#define EXPECT(rule, n, insn) __asm__ volatile("expect__" #rule "__" #n ":\n\t" insn ::: "memory")
#endif

__attribute__((noinline)) static u64 op_syscall(u64 x)
{
#ifdef BAD
    u64 r;
    __asm__ volatile("expect__sgx_syscall__0:\n\tsyscall" : "=a"(r) : "a"(x) : "rcx", "r11", "memory");
    return r;
#else
    return x * 3 + 1;
#endif
}

__attribute__((noinline)) static u64 op_cpuid(u64 x)
{
#ifdef BAD
    unsigned a = (unsigned)x, b, c = 0, d;
    __asm__ volatile("expect__sgx_cpuid__0:\n\tcpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return a ^ b ^ c ^ d;
#else
    return x ^ 0x5a5a;
#endif
}

__attribute__((noinline)) static u64 op_rdtsc(u64 x)
{
#ifdef BAD
    unsigned lo, hi;
    __asm__ volatile("expect__sgx_rdtsc__0:\n\trdtsc" : "=a"(lo), "=d"(hi));
    return x + lo + ((u64)hi << 32);
#else
    return x + 7;
#endif
}

__attribute__((noinline)) static u64 op_io(u64 x)
{
#ifdef BAD
    EXPECT(sgx_io, 0, "outb %%al, $0x80");
    EXPECT(sgx_interrupt, 0, "int $0x80");
#endif
    return x - 1;
}

__attribute__((noinline)) static u64 op_vm(u64 x)
{
#ifdef BAD
    EXPECT(sgx_vm_exit, 0, "vmcall");
#endif
    return x << 1;
}

__attribute__((noinline)) static u64 op_halt(u64 x)
{
#ifdef BAD
    if (x == 0xdead)
        EXPECT(sgx_privileged, 0, "hlt");
#endif
    return x >> 1;
}

#ifdef BAD
/* Kept (used), never called, address never taken: unreachable. */
__attribute__((used, noinline)) static u64 never_called(u64 x)
{
    EXPECT(sgx_unreachable_instruction, 0, "cpuid");
    return x;
}
#endif

/* A function with a local buffer, so -fstack-protector-strong puts a
 * canary in it. */
__attribute__((noinline)) static u64 checksum(const char *s, u64 n)
{
    char buf[64];
    u64 i, sum = 0;
    for (i = 0; i < n && i < sizeof buf; i++)
        buf[i] = s[i] ^ 0x11;
    for (i = 0; i < n && i < sizeof buf; i++)
        sum = sum * 31 + (unsigned char)buf[i];
    return sum;
}

#ifndef BAD
/* Stack-protector failure handler (no libc inside an enclave). */
void __stack_chk_fail(void)
{
    for (;;)
        g_state = ~0ul;
}
#endif

u64 enclave_entry(u64 op, u64 arg)
{
    u64 r;
    switch (op) {
    case 0: r = op_syscall(arg); break;
    case 1: r = op_cpuid(arg); break;
    case 2: r = op_rdtsc(arg); break;
    case 3: r = op_io(arg); break;
    case 4: r = op_vm(arg); break;
    case 5: r = op_halt(arg); break;
    case 6: r = checksum((const char *)&g_state, sizeof g_state); break;
    default: r = arg; break;
    }
#ifdef BAD
    /* An absolute address in code: a text relocation in a shared object. */
    u64 p;
    __asm__ volatile("movabs $g_state, %0" : "=r"(p));
    r ^= p;
#endif
    g_state += r;
    return r;
}

#ifdef BAD
/* A writable and executable section: one RWX PT_LOAD segment. */
__asm__(".section .wxtext,\"awx\",@progbits\n\t.byte 0xc3\n\t.previous");
#endif
