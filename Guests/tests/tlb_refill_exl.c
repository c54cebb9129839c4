// A TLB miss while Status.EXL=1 goes to the general vector (+0x180, ExcCode TLBL/TLBS) instead
// of the refill vector (+0x000), EPC unchanged; with EXL=0 the same miss uses +0x000. Also a
// real nested miss inside a general exception handler.
#include "rt.h"

static struct exc_info nested;
static u32 nested_seen, outer_mark;

/* in the handler of a syscall, touch an unmapped address (EXL=1) */
static void miss_in_handler(struct frame *f) {
    if (f->vector == 0x180 && CA_EXC(f->cause) == EXC_SYS && !nested_seen) {
        nested_seen = 1;
        outer_mark = rt_mark;
        u32 v;
        PROBE("lw %0, 0(%1)", : "=r"(v) : "r"(0x00aa0000) : "memory");
        nested = *(struct exc_info *)&rt_exc;
        f->epc += 4;
        return;
    }
    if (nested_seen == 1) { /* the nested miss: resume in the outer handler */
        nested_seen = 2;
        f->epc = rt_resume;
        rt_resume = 0;
        return;
    }
    exc_default_policy(f);
}

/* EPC = label 9 (where PROBE resumes), EXL = 1 */
#define EXL_ON                                                                                \
    "lui $t1, %%hi(9f)\n\taddiu $t1, $t1, %%lo(9f)\n\tmtc0 $t1, $14\n\t"                      \
    "mfc0 $t0, $12\n\tori $t0, $t0, 2\n\tmtc0 $t0, $12\n\tehb\n\t"

int main(void) {
    install_handlers();
    tlb_clear_all();
    u32 v = 0, label;
    exc_clear();
    PROBE("lw %0, 0(%1)", : "+r"(v) : "r"(0x00aa0000) : "memory");
    show_exc_full("lw unmapped, EXL=0");
    exc_clear();
    PROBE("sw %0, 0(%1)", : : "r"(v), "r"(0x00aa0004) : "memory");
    show_exc_full("sw unmapped, EXL=0");
    exc_clear();
    PROBE(EXL_ON "lw %0, 0(%2)\n\tnop\n9:\tmove %1, $t1", : "+r"(v), "=r"(label) : "r"(0x00aa0008) : "t0", "t1", "memory");
    printf("lw unmapped, EXL=1: %s vec=%03x badva=%08x epc=preset%+d\n", exc_name(CA_EXC(rt_exc.cause)),
           rt_exc.vector, rt_exc.badvaddr, (s32)(rt_exc.epc - label));
    exc_clear();
    PROBE(EXL_ON "sw %0, 0(%2)\n\tnop\n9:\tmove %1, $t1", : "+r"(v), "=r"(label) : "r"(0x00aa000c) : "t0", "t1", "memory");
    printf("sw unmapped, EXL=1: %s vec=%03x badva=%08x epc=preset%+d\n", exc_name(CA_EXC(rt_exc.cause)),
           rt_exc.vector, rt_exc.badvaddr, (s32)(rt_exc.epc - label));
    /* fetch miss with EXL=1 */
    exc_clear();
    PROBE(EXL_ON "lui $t0, 0x00aa\n\tjr $t0\n\tnop\n\tnop\n9:\tmove %1, $t1", : "+r"(v), "=r"(label) : "r"(0) : "t0", "t1", "memory");
    printf("jr to unmapped, EXL=1: %s vec=%03x badva=%08x epc=preset%+d\n", exc_name(CA_EXC(rt_exc.cause)),
           rt_exc.vector, rt_exc.badvaddr, (s32)(rt_exc.epc - label));
    /* nested: a miss inside the handler of a syscall */
    rt_exc_hook = miss_in_handler;
    exc_clear();
    PROBE("syscall", ::: "memory");
    rt_exc_hook = NULL;
    printf("miss inside a syscall handler: %s vec=%03x badva=%08x epc=syscall%+d; exceptions %u\n",
           exc_name(CA_EXC(nested.cause)), nested.vector, nested.badvaddr,
           (s32)(nested.epc - outer_mark), rt_exc.count);
    return 0;
}
