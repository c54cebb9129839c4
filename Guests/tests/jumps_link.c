// J JAL JR JALR (rd=ra and rd=other) JR.HB JALR.HB BAL: targets, link values (jump+8), the
// delay slot runs and sees the new link register, and a delay slot changing the jump register.
#include "rt.h"

int main(void) {
    u32 base, link, slot, flags;
    /* J: delay slot runs, skipped instruction does not */
    __asm__ volatile(".set push\n\t.set noreorder\n\tli %0, 0\n\tj 1f\n\tori %0, %0, 1\n\tori %0, %0, 2\n1:\tori %0, %0, 4\n\t.set pop" : "=&r"(flags));
    printf("j: flags=%u (5 = slot ran, skipped code did not)\n", flags);

    /* JAL: ra = jal + 8, visible in the delay slot */
    __asm__ volatile(".set push\n\t.set noreorder\n\tlui %0, %%hi(2f)\n\taddiu %0, %0, %%lo(2f)\n\tli $ra, 0\n"
                     "2:\tjal 1f\n\tmove %2, $ra\n\tnop\n1:\tmove %1, $ra\n\t.set pop"
                     : "=&r"(base), "=&r"(link), "=&r"(slot) : : "ra");
    printf("jal: ra=jal%+d, ra seen in delay slot=jal%+d\n", (s32)(link - base), (s32)(slot - base));

    /* JALR rd=ra */
    __asm__ volatile(".set push\n\t.set noreorder\n\tlui %0, %%hi(2f)\n\taddiu %0, %0, %%lo(2f)\n\t"
                     "lui $t9, %%hi(1f)\n\taddiu $t9, $t9, %%lo(1f)\n\tli $ra, 0\n"
                     "2:\tjalr $t9\n\tmove %2, $ra\n\tnop\n1:\tmove %1, $ra\n\t.set pop"
                     : "=&r"(base), "=&r"(link), "=&r"(slot) : : "ra", "t9");
    printf("jalr $t9: ra=jalr%+d, in slot=jalr%+d\n", (s32)(link - base), (s32)(slot - base));

    /* JALR rd=t0 leaves ra alone */
    u32 ra_after;
    __asm__ volatile(".set push\n\t.set noreorder\n\tlui %0, %%hi(2f)\n\taddiu %0, %0, %%lo(2f)\n\t"
                     "lui $t9, %%hi(1f)\n\taddiu $t9, $t9, %%lo(1f)\n\tli $ra, 0x1234\n"
                     "2:\tjalr $t0, $t9\n\tnop\n\tnop\n1:\tmove %1, $t0\n\tmove %2, $ra\n\t.set pop"
                     : "=&r"(base), "=&r"(link), "=&r"(ra_after) : : "ra", "t9", "t0");
    printf("jalr $t0, $t9: t0=jalr%+d ra=%x\n", (s32)(link - base), ra_after);

    /* JR / JR.HB / JALR.HB */
    __asm__ volatile(".set push\n\t.set noreorder\n\tli %0, 0\n\tlui $t9, %%hi(1f)\n\taddiu $t9, $t9, %%lo(1f)\n\t"
                     "jr $t9\n\tori %0, %0, 1\n\tori %0, %0, 2\n1:\tori %0, %0, 4\n\t"
                     "lui $t9, %%hi(3f)\n\taddiu $t9, $t9, %%lo(3f)\n\tjr.hb $t9\n\tori %0, %0, 8\n\tori %0, %0, 16\n"
                     "3:\tori %0, %0, 32\n\t.set pop" : "=&r"(flags) : : "t9");
    printf("jr / jr.hb: flags=%u (45 = both slots ran, skipped code did not)\n", flags);
    __asm__ volatile(".set push\n\t.set noreorder\n\tlui %0, %%hi(2f)\n\taddiu %0, %0, %%lo(2f)\n\t"
                     "lui $t9, %%hi(1f)\n\taddiu $t9, $t9, %%lo(1f)\n"
                     "2:\tjalr.hb $t9\n\tnop\n\tnop\n1:\tmove %1, $ra\n\t.set pop"
                     : "=&r"(base), "=&r"(link) : : "ra", "t9");
    printf("jalr.hb: ra=jalr%+d\n", (s32)(link - base));

    /* BAL (bgezal $zero): always taken, links */
    __asm__ volatile(".set push\n\t.set noreorder\n\tlui %0, %%hi(2f)\n\taddiu %0, %0, %%lo(2f)\n\tli %2, 0\n"
                     "2:\tbal 1f\n\tori %2, %2, 1\n\tori %2, %2, 2\n1:\tmove %1, $ra\n\t.set pop"
                     : "=&r"(base), "=&r"(link), "=&r"(flags) : : "ra");
    printf("bal: ra=bal%+d flags=%u\n", (s32)(link - base), flags);

    /* the delay slot of JR changes the jump register: the old value is the target */
    __asm__ volatile(".set push\n\t.set noreorder\n\tli %0, 0\n\tlui $t9, %%hi(1f)\n\taddiu $t9, $t9, %%lo(1f)\n\t"
                     "jr $t9\n\taddiu $t9, $t9, 8\n\tori %0, %0, 2\n1:\tori %0, %0, 4\n\tori %0, %0, 8\n\t.set pop"
                     : "=&r"(flags) : : "t9");
    printf("jr whose slot changes the register: flags=%u (12 = went to the old target)\n", flags);

    /* JALR with rd = rs ($t9, $t9) is unpredictable: not tested. A call and return: */
    u32 v;
    __asm__ volatile(".set push\n\t.set noreorder\n\tb 2f\n\tnop\n1:\tjr $ra\n\taddiu %0, %0, 100\n"
                     "2:\tli %0, 1\n\tjal 1b\n\taddiu %0, %0, 10\n\taddiu %0, %0, 1000\n\t.set pop"
                     : "=&r"(v) : : "ra");
    printf("jal to a leaf that returns with jr $ra: v=%u (1111)\n", v);
    /* J inside the 256 MB region: the target keeps PC[31:28] of the delay slot */
    printf("j target region: the code runs at %08x\n", (u32)main & 0xf0000000);
    return 0;
}
