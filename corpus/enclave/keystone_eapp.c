/* A Keystone-style eapp: static RISC-V, no libc, talking to the Eyrie
 * runtime with ecall (call number in a7). BAD adds a Linux write
 * (proxied to the host), a call number outside the runtime interface,
 * and an ecall whose number comes from a register. */

typedef unsigned long u64;

#define RUNTIME_SYSCALL_OCALL 1001
#define RUNTIME_SYSCALL_ATTEST_ENCLAVE 1003
#define RUNTIME_SYSCALL_EXIT 1101

#ifndef BAD
u64 __stack_chk_guard = 0x2545f4914f6cdd1dul;

void __stack_chk_fail(void)
{
    for (;;)
        ;
}
#endif

#define ECALL(num, label)                                                  \
    static inline u64 label(u64 a0, u64 a1)                                 \
    {                                                                      \
        register u64 x10 __asm__("a0") = a0;                               \
        register u64 x11 __asm__("a1") = a1;                               \
        __asm__ volatile("li a7, %2\n\tecall__" #label ":\n\tecall" : "+r"(x10) : "r"(x11), "i"(num) : "a7", "memory"); \
        return x10;                                                        \
    }

ECALL(RUNTIME_SYSCALL_OCALL, ocall)
ECALL(RUNTIME_SYSCALL_ATTEST_ENCLAVE, attest)
#ifdef BAD
ECALL(64, linux_write)
ECALL(1500, unknown_runtime_call)

__attribute__((noinline)) static u64 call_by_number(u64 n, u64 arg)
{
    register u64 x10 __asm__("a0") = arg;
    register u64 x17 __asm__("a7") = n;
    __asm__ volatile("ecall__call_by_number:\n\tecall" : "+r"(x10) : "r"(x17) : "memory");
    return x10;
}
#endif

__attribute__((noinline)) static u64 report(const char *msg, u64 n)
{
    char buf[64];
    u64 i;
    for (i = 0; i < n && i < sizeof buf; i++)
        buf[i] = msg[i];
    return ocall(1, (u64)buf);
}

__attribute__((noreturn)) static void leave(u64 code)
{
    register u64 x10 __asm__("a0") = code;
    __asm__ volatile("li a7, %1\n\tecall__leave:\n\tecall" : : "r"(x10), "i"(RUNTIME_SYSCALL_EXIT) : "a7", "memory");
    for (;;)
        ;
}

void _start(void)
{
    u64 r = report("hello", 5);
    r += attest(0, 64);
#ifdef BAD
    r += linux_write(1, 0);
    r += unknown_runtime_call(0, 0);
    r += call_by_number(r & 0xff, 0);
#endif
    leave(r);
}
