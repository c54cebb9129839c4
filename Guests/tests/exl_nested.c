// Exceptions taken while Status.EXL=1: EPC and Cause.BD are not updated, ExcCode and BadVAddr
// are; the general vector is used; a real nested exception inside a handler.
#include "rt.h"

/* EPC = label 9 (where PROBE resumes), then Status.EXL = 1; %0 = label 9 */
#define EXL_ON                                                                                \
    "lui %0, %%hi(9f)\n\taddiu %0, %0, %%lo(9f)\n\tmtc0 %0, $14\n\t"                          \
    "mfc0 $t0, $12\n\tori $t0, $t0, 2\n\tmtc0 $t0, $12\n\tehb\n\t"

static struct exc_info inner, outer;
static u32 inner_seen, outer_mark;

/* Outer exception (syscall): the hook itself performs a misaligned load (EXL=1). */
static void nesting_hook(struct frame *f) {
    if (inner_seen++ == 0) {
        outer = *(struct exc_info *)&rt_exc;
        outer_mark = rt_mark;
        u32 d = 0;
        PROBE("lw %0, 2(%1)", : "+r"(d) : "r"(0x80000000) : "memory"); /* nested: EXL=1 */
        inner = *(struct exc_info *)&rt_exc;
        f->epc += 4;
    } else {
        /* the nested one: resume inside the outer hook */
        f->epc = rt_resume;
        rt_resume = 0;
    }
}

int main(void) {
    install_handlers();
    u32 base;
    /* 1. EXL=1 set by software, EPC preset: a syscall does not change EPC */
    exc_clear();
    PROBE(EXL_ON "syscall\n\tnop", : "=&r"(base) : : "t0", "memory");
    printf("syscall with EXL=1: %s epc=preset%+d vec=%03x status.exl-at-entry=%u\n",
           exc_name(CA_EXC(rt_exc.cause)), (s32)(rt_exc.epc - base), rt_exc.vector,
           (rt_exc.status >> 1) & 1);
    printf("after eret: Status.EXL=%u\n", (mfc0(C0_STATUS) >> 1) & 1);

    /* 2. Cause.BD is not updated: first a delay-slot exception sets BD=1; then with EXL=1 a
     *    non-slot exception leaves BD=1; then with EXL=1 a slot exception after a BD=0 one. */
    exc_clear();
    PROBE("beq $zero, $zero, 9f\n\tsyscall\n\tnop", ::: "memory");
    printf("slot syscall, EXL=0: bd=%u\n", rt_exc.cause >> 31);
    exc_clear();
    PROBE(EXL_ON "break\n\tnop", : "=&r"(base) : : "t0", "memory");
    printf("non-slot break, EXL=1, BD was 1: %s bd=%u epc=preset%+d\n", exc_name(CA_EXC(rt_exc.cause)),
           rt_exc.cause >> 31, (s32)(rt_exc.epc - base));
    exc_clear();
    PROBE("syscall", ::: "memory");
    printf("non-slot syscall, EXL=0: bd=%u\n", rt_exc.cause >> 31);
    exc_clear();
    PROBE(EXL_ON "beq $zero, $zero, 9f\n\tsyscall\n\tnop", : "=&r"(base) : : "t0", "memory");
    printf("slot syscall, EXL=1, BD was 0: %s bd=%u epc=preset%+d\n", exc_name(CA_EXC(rt_exc.cause)),
           rt_exc.cause >> 31, (s32)(rt_exc.epc - base));

    /* 3. BadVAddr is updated with EXL=1 */
    exc_clear();
    PROBE(EXL_ON "lw $t0, 0x123($zero)\n\tnop", : "=&r"(base) : : "t0", "memory");
    printf("misaligned lw, EXL=1: %s badva=%08x epc=preset%+d\n", exc_name(CA_EXC(rt_exc.cause)),
           rt_exc.badvaddr, (s32)(rt_exc.epc - base));

    /* 4. a real nested exception in a handler */
    rt_exc_hook = nesting_hook;
    exc_clear();
    PROBE("syscall 5", ::: "memory");
    rt_exc_hook = NULL;
    printf("outer: %s epc=mark%+d vec=%03x\n", exc_name(CA_EXC(outer.cause)),
           (s32)(outer.epc - outer_mark), outer.vector);
    printf("inner (in the handler): %s epc=outer-epc%+d badva=%08x vec=%03x\n",
           exc_name(CA_EXC(inner.cause)), (s32)(inner.epc - outer.epc), inner.badvaddr,
           inner.vector);
    printf("after both returned: count=%u Status.EXL=%u\n", rt_exc.count, (mfc0(C0_STATUS) >> 1) & 1);
    return 0;
}
