// Address error on instruction fetch (AdEL): jumping to an address with bit 1 set; EPC =
// BadVAddr = the target, BD=0; the jump's link register was written; the delay slot ran.
// (Targets with bit 0 set are not tested: QEMU's 24Kc has MIPS16e and switches ISA mode.)
#include "rt.h"

static void show_fetch(const char *what, u32 target) {
    if (!rt_exc.count) {
        printf("%s: none\n", what);
        return;
    }
    printf("%s: %s bd=%u epc=target%+d badva=target%+d\n", what, exc_name(CA_EXC(rt_exc.cause)),
           rt_exc.cause >> 31, (s32)(rt_exc.epc - target), (s32)(rt_exc.badvaddr - target));
}

int main(void) {
    install_handlers();
    u32 target, link = 0, base;
    static const u32 offs[] = {2, 6, 0x7ffe};
    for (u32 i = 0; i < 3; i++) {
        exc_clear();
        __asm__ volatile(".set push\n\t.set noreorder\n\t"
                         "lui %0, %%hi(1f)\n\taddiu %0, %0, %%lo(1f)\n\t"
                         "lui $k1, %%hi(1f)\n\taddiu $k1, $k1, %%lo(1f)\n\t"
                         "lui $k0, %%hi(rt_resume)\n\tsw $k1, %%lo(rt_resume)($k0)\n\t"
                         "addu %0, %0, %1\n\tjr %0\n\tnop\n1:\t.set pop"
                         : "=&r"(target) : "r"(offs[i]) : "memory");
        printf("jr to label+%x", offs[i]);
        show_fetch("", target);
    }
    exc_clear();
    __asm__ volatile(".set push\n\t.set noreorder\n\t"
                     "lui %0, %%hi(1f)\n\taddiu %0, %0, %%lo(1f)\n\taddiu %0, %0, 2\n\t"
                     "lui $k1, %%hi(1f)\n\taddiu $k1, $k1, %%lo(1f)\n\t"
                     "lui $k0, %%hi(rt_resume)\n\tsw $k1, %%lo(rt_resume)($k0)\n\t"
                     "lui %2, %%hi(2f)\n\taddiu %2, %2, %%lo(2f)\n\tli $ra, 0\n"
                     "2:\tjalr %0\n\tnop\n1:\tmove %1, $ra\n\t.set pop"
                     : "=&r"(target), "=&r"(link), "=&r"(base) : : "ra", "memory");
    show_fetch("jalr to label+2", target);
    printf("jalr link written before the fetch fault: ra=jalr%+d\n", (s32)(link - base));
    /* a misaligned target in the delay slot's instruction stream: BD of the fault is 0 */
    exc_clear();
    __asm__ volatile(".set push\n\t.set noreorder\n\t"
                     "lui %0, %%hi(1f)\n\taddiu %0, %0, %%lo(1f)\n\taddiu %0, %0, 2\n\t"
                     "lui $k1, %%hi(1f)\n\taddiu $k1, $k1, %%lo(1f)\n\t"
                     "lui $k0, %%hi(rt_resume)\n\tsw $k1, %%lo(rt_resume)($k0)\n\t"
                     "li %1, 0\n\tjr %0\n\taddiu %1, %1, 1\n\taddiu %1, %1, 2\n1:\t.set pop"
                     : "=&r"(target), "=&r"(link) : : "memory");
    show_fetch("jr label+2 (slot increments)", target);
    printf("delay slot of the jr ran before the fault: %s\n", link == 1 ? "yes" : link == 0 ? "no" : "???");
    return 0;
}
