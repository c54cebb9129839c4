// Conditional branches BEQ BNE BLEZ BGTZ BLTZ BGEZ BLTZAL BGEZAL, taken and not taken; the delay
// slot always executes; link value of the -AL forms (written taken or not); backward branches.
#include "rt.h"

/* bit 1: delay slot ran, bit 2: fall-through path ran, bit 4: join point reached */
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
    case 7: return "not-taken";
    case 6: return "not-taken,slot-nullified";
    default: return "???";
    }
}

static const u32 vals[] = {0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 0x00010000};

#define LINK(op, v)                                                                           \
    do {                                                                                      \
        u32 r_, base_, ra_;                                                                   \
        __asm__ volatile(".set push\n\t.set noreorder\n\tlui %1, %%hi(2f)\n\taddiu %1, %1, %%lo(2f)\n\t" \
                         "li $ra, 0\n\tli %0, 0\n2:\t" op " %3, 1f\n\tori %0, %0, 1\n\tori %0, %0, 2\n" \
                         "1:\tori %0, %0, 4\n\tmove %2, $ra\n\t.set pop"                      \
                         : "=&r"(r_), "=&r"(base_), "=&r"(ra_) : "r"(v) : "ra");              \
        printf("%-7s %08x: %-9s ra=branch%+d\n", op, v, outcome(r_), (s32)(ra_ - base_));    \
    } while (0)

int main(void) {
    for (u32 i = 0; i < countof(vals); i++)
        for (u32 j = 0; j < countof(vals); j++) {
            u32 a = vals[i], b = vals[j];
            printf("%08x %08x: beq %-9s bne %s\n", a, b, outcome(BR2("beq", a, b)),
                   outcome(BR2("bne", a, b)));
        }
    for (u32 i = 0; i < countof(vals); i++) {
        u32 a = vals[i];
        printf("%08x: blez %-9s bgtz %-9s bltz %-9s bgez %s\n", a, outcome(BR1("blez", a)),
               outcome(BR1("bgtz", a)), outcome(BR1("bltz", a)), outcome(BR1("bgez", a)));
    }
    for (u32 i = 0; i < countof(vals); i++) {
        LINK("bltzal", vals[i]);
        LINK("bgezal", vals[i]);
    }
    /* unconditional forms: b (beq $0,$0) and bal (bgezal $0) */
    u32 r = BR2("beq", 0, 0);
    printf("beq $0,$0 (b): %s\n", outcome(r));
    /* a backward branch: count down a loop with the decrement in the delay slot */
    u32 n = 10, iters = 0;
    __asm__ volatile(".set push\n\t.set noreorder\n1:\taddiu %1, %1, 1\n\tbnez %0, 1b\n\taddiu %0, %0, -1\n\t.set pop"
                     : "+r"(n), "+r"(iters));
    printf("backward bnez loop from 10: iterations=%u n=%08x\n", iters, n);
    /* the delay slot changes the branch's source register: the branch already decided */
    u32 a = 0;
    __asm__ volatile(".set push\n\t.set noreorder\n\tli %0, 0\n\tbeqz %1, 1f\n\tli %1, 5\n\tori %0, %0, 2\n1:\tori %0, %0, 4\n\t.set pop" : "=&r"(r), "+r"(a));
    printf("beqz whose delay slot changes rs: %s (rs now %u)\n", r == 4 ? "taken" : r == 6 ? "not-taken" : "???", a);
    return 0;
}
