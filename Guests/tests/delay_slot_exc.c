// Exceptions in branch delay slots: Cause.BD=1 and EPC = the branch for taken and not-taken
// BEQ, taken BEQL, J, JAL, JR, JALR, BLTZAL, BGEZALL; links are written; and a handler that
// fixes the cause and returns to EPC re-executes the branch, which then goes where it should.
#include "rt.h"

#define SLOT(label, branch, slot)                                                             \
    do {                                                                                      \
        exc_clear();                                                                          \
        PROBE("li $t0, 0\n\tlui $t9, %%hi(9f)\n\taddiu $t9, $t9, %%lo(9f)\n\t"                \
              "lui $k0, %%hi(rt_mark)\n\tlui $k1, %%hi(7f)\n\taddiu $k1, $k1, %%lo(7f)\n\t"   \
              "sw $k1, %%lo(rt_mark)($k0)\n7:\t" branch "\n\t" slot "\n\tnop",               \
              : : "r"(1) : "t0", "t9", "ra", "memory");                                       \
        show_exc(label);                                                                      \
    } while (0)

/* Restart test: the slot traps while t0 == 0; the hook sets t0 = 1 and returns to EPC. */
static void fix_and_restart(struct frame *f) {
    f->r[8] = 1; /* t0 */
}

int main(void) {
    install_handlers();
    SLOT("beq taken, syscall in slot", "beq $zero, $zero, 9f", "syscall");
    SLOT("beq not taken (1 != 0), syscall", "beq %0, $zero, 9f", "syscall");
    SLOT("bne taken, break in slot", "bne %0, $zero, 9f", "break");
    SLOT("beql taken, teq in slot", "beql $zero, $zero, 9f", "teq $zero, $zero");
    SLOT("bgezall taken, syscall", "bgezall $zero, 9f", "syscall");
    SLOT("bltzal not taken, syscall", "bltzal %0, 9f", "syscall");
    SLOT("j, misaligned lw in slot", "j 9f", "lw $t1, 1($zero)");
    SLOT("jal, sw misaligned in slot", "jal 9f", "sw $zero, 2($zero)");
    SLOT("jr, add overflow in slot", "jr $t9", "add $t1, $t9, $t9");
    SLOT("jalr, RI in slot", "jalr $t9", ".word 0x0000003f");
    SLOT("jalr, mfc1 (CpU) in slot", "jalr $t9", "mfc1 $t1, $f0");
    SLOT("bgez taken, lw through a null pointer", "bgez $zero, 9f", "lw $t1, 0($zero)");

    /* restart at the branch after fixing the cause */
    rt_exc_hook = fix_and_restart;
    static const char *const names[] = {"beq", "bnel", "jal", "jalr $t9", "bltzal"};
    for (u32 k = 0; k < 5; k++) {
        u32 flags = 0, ra = 0, base = 0;
        exc_clear();
        switch (k) {
        case 0:
            __asm__ volatile(".set push\n\t.set noreorder\n\tli $t0, 0\n\tli %0, 0\n\tlui %2, %%hi(2f)\n\taddiu %2, %2, %%lo(2f)\n"
                             "2:\tbeq %0, $zero, 1f\n\tteq $t0, $zero\n\tori %0, %0, 2\n1:\tori %0, %0, 4\n\tmove %1, $ra\n\t.set pop"
                             : "=&r"(flags), "=&r"(ra), "=&r"(base) : : "t0", "ra", "memory");
            break;
        case 1:
            __asm__ volatile(".set push\n\t.set noreorder\n\tli $t0, 0\n\tli %0, 0\n\tlui %2, %%hi(2f)\n\taddiu %2, %2, %%lo(2f)\n"
                             "\tli $t9, 1\n2:\tbnel $t9, $zero, 1f\n\tteq $t0, $zero\n\tori %0, %0, 2\n1:\tori %0, %0, 4\n\tmove %1, $ra\n\t.set pop"
                             : "=&r"(flags), "=&r"(ra), "=&r"(base) : : "t0", "t9", "ra", "memory");
            break;
        case 2:
            __asm__ volatile(".set push\n\t.set noreorder\n\tli $t0, 0\n\tli %0, 0\n\tlui %2, %%hi(2f)\n\taddiu %2, %2, %%lo(2f)\n"
                             "2:\tjal 1f\n\tteq $t0, $zero\n\tori %0, %0, 2\n1:\tori %0, %0, 4\n\tmove %1, $ra\n\t.set pop"
                             : "=&r"(flags), "=&r"(ra), "=&r"(base) : : "t0", "ra", "memory");
            break;
        case 3:
            __asm__ volatile(".set push\n\t.set noreorder\n\tli $t0, 0\n\tli %0, 0\n\tlui %2, %%hi(2f)\n\taddiu %2, %2, %%lo(2f)\n"
                             "\tlui $t9, %%hi(1f)\n\taddiu $t9, $t9, %%lo(1f)\n"
                             "2:\tjalr $t9\n\tteq $t0, $zero\n\tori %0, %0, 2\n1:\tori %0, %0, 4\n\tmove %1, $ra\n\t.set pop"
                             : "=&r"(flags), "=&r"(ra), "=&r"(base) : : "t0", "t9", "ra", "memory");
            break;
        case 4:
            __asm__ volatile(".set push\n\t.set noreorder\n\tli $t0, 0\n\tli %0, 0\n\tlui %2, %%hi(2f)\n\taddiu %2, %2, %%lo(2f)\n\tli $t9, -1\n"
                             "2:\tbltzal $t9, 1f\n\tteq $t0, $zero\n\tori %0, %0, 2\n1:\tori %0, %0, 4\n\tmove %1, $ra\n\t.set pop"
                             : "=&r"(flags), "=&r"(ra), "=&r"(base) : : "t0", "t9", "ra", "memory");
            break;
        }
        printf("restart %-8s: exc %s bd=%u epc=branch%+d count=%u, then flags=%u (4 = taken path)",
               names[k], exc_name(CA_EXC(rt_exc.cause)), rt_exc.cause >> 31,
               (s32)(rt_exc.epc - base), rt_exc.count, flags);
        if (k >= 2) printf(" ra=branch%+d", (s32)(ra - base));
        putchar('\n');
    }
    rt_exc_hook = NULL;
    return 0;
}
