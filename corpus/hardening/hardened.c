/* The program of the PE (mingw) image-hardening corpus: a stack buffer
 * that -fstack-protector-strong instruments, and with -DWX a function in a
 * section the assembler marks writable and executable. */
#include <stdio.h>
#include <string.h>

#ifdef WX
/* A section flagged "wx": mapped writable and executable. */
__asm__(".section .wxcode,\"wx\"\n"
        ".globl wx_answer\n"
        "wx_answer:\n"
        "  movl $42, %eax\n"
        "  ret\n"
        ".text\n");
int wx_answer(void);
#endif

static int copy_and_sum(const char *s)
{
    char buf[64];
    strncpy(buf, s, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
    int sum = 0;
    for (size_t i = 0; i < strlen(buf); i++)
        sum += (unsigned char)buf[i];
    return sum;
}

int main(int argc, char **argv)
{
    int r = copy_and_sum(argc > 1 ? argv[1] : "talos");
#ifdef WX
    r += wx_answer();
#endif
    printf("%d\n", r);
    return 0;
}
