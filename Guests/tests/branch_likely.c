// Branch-likely forms BEQL BNEL BLEZL BGTZL BLTZL BGEZL BLTZALL BGEZALL: taken (delay slot runs)
// and not taken (delay slot nullified); the link of BLTZALL/BGEZALL is written either way.
#include "rt.h"

#define BR_BODY(insn)                                                                         \
    ".set push\n\t.set noreorder\n\tli %0, 0\n\t" insn "\n\tori %0, %0, 1\n\tori %0, %0, 2\n1:\tori %0, %0, 4\n\t.set pop"
#define BR2(op, a, b)                                                                         \
    ({                                                                                        \
        u32 r_;                                                                               \
        __asm__ volatile(BR_BODY(op " %1, %2, 1f") : "=&r"(r_) : "r"(a), "r"(b));             \
        r_;                                                                                   \
    })
#define BR1(op, a)                                                                            \
    ({                                                                                        \
        u32 r_;                                                                               \
        __asm__ volatile(BR_BODY(op " %1, 1f") : "=&r"(r_) : "r"(a));                         \
        r_;                                                                                   \
    })

static const char *outcome(u32 r) {
    switch (r) {
    case 5: return "taken";
    case 7: return "not-taken,slot-ran";
    case 6: return "not-taken";
    default: return "???";
    }
}

static const u32 vals[] = {0, 1, 0xffffffff, 0x7fffffff, 0x80000000};

#define LINK(op, v)                                                                           \
    do {                                                                                      \
        u32 r_, base_, ra_;                                                                   \
        __asm__ volatile(".set push\n\t.set noreorder\n\tlui %1, %%hi(2f)\n\taddiu %1, %1, %%lo(2f)\n\t" \
                         "li $ra, 0\n\tli %0, 0\n2:\t" op " %3, 1f\n\tori %0, %0, 1\n\tori %0, %0, 2\n" \
                         "1:\tori %0, %0, 4\n\tmove %2, $ra\n\t.set pop"                      \
                         : "=&r"(r_), "=&r"(base_), "=&r"(ra_) : "r"(v) : "ra");              \
        printf("%-8s %08x: %-9s ra=branch%+d\n", op, v, outcome(r_), (s32)(ra_ - base_));    \
    } while (0)

int main(void) {
    for (u32 i = 0; i < countof(vals); i++)
        for (u32 j = 0; j < countof(vals); j++) {
            u32 a = vals[i], b = vals[j];
            printf("%08x %08x: beql %-9s bnel %s\n", a, b, outcome(BR2("beql", a, b)),
                   outcome(BR2("bnel", a, b)));
        }
    for (u32 i = 0; i < countof(vals); i++) {
        u32 a = vals[i];
        printf("%08x: blezl %-9s bgtzl %-9s bltzl %-9s bgezl %s\n", a, outcome(BR1("blezl", a)),
               outcome(BR1("bgtzl", a)), outcome(BR1("bltzl", a)), outcome(BR1("bgezl", a)));
    }
    for (u32 i = 0; i < countof(vals); i++) {
        LINK("bltzall", vals[i]);
        LINK("bgezall", vals[i]);
    }
    /* a nullified delay slot that would fault: no exception */
    install_handlers();
    exc_clear();
    __asm__ volatile(".set push\n\t.set noreorder\n\tbnel $zero, $zero, 1f\n\tlw $t0, 1($zero)\n1:\t.set pop" : : : "t0");
    show_exc("not-taken bnel with a faulting slot");
    /* a loop closed by a likely branch, the increment in the slot */
    u32 n = 0, sum = 0;
    __asm__ volatile(".set push\n\t.set noreorder\n1:\tsltiu $t0, %0, 5\n\tbnel $t0, $zero, 1b\n\taddiu %0, %0, 1\n\t.set pop"
                     : "+r"(n) : : "t0");
    sum = n;
    printf("bnel loop: n=%u\n", sum);
    return 0;
}
