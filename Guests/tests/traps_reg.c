// Register traps TEQ TNE TGE TGEU TLT TLTU, taken and not taken, over signed/unsigned edge
// pairs; Tr (ExcCode 13) with EPC at the trap; the 10-bit code field read from the instruction.
#include "rt.h"

static const u32 vals[] = {0, 1, 0xffffffff, 0x7fffffff, 0x80000000};

#define TRAP(op, a, b)                                                                        \
    ({                                                                                        \
        exc_clear();                                                                          \
        PROBE(op " %0, %1", : : "r"(a), "r"(b) : "memory");                                   \
        rt_exc.count ? (CA_EXC(rt_exc.cause) == EXC_TR && rt_exc.epc == rt_mark ? 'T' : '?') : '-'; \
    })

int main(void) {
    install_handlers();
    puts("a        b        | teq tne tge tgeu tlt tltu   (T = Tr at the trap, - = no trap)");
    for (u32 i = 0; i < countof(vals); i++)
        for (u32 j = 0; j < countof(vals); j++) {
            u32 a = vals[i], b = vals[j];
            printf("%08x %08x | %c   %c   %c   %c    %c   %c\n", a, b, TRAP("teq", a, b),
                   TRAP("tne", a, b), TRAP("tge", a, b), TRAP("tgeu", a, b), TRAP("tlt", a, b),
                   TRAP("tltu", a, b));
        }
    static const char *const names[] = {"teq $0,$0,0", "teq $0,$0,1", "teq $0,$0,0x155", "teq $0,$0,0x3ff"};
    for (u32 k = 0; k < 4; k++) {
        exc_clear();
        switch (k) {
        case 0: PROBE("teq $zero, $zero, 0", ::: "memory"); break;
        case 1: PROBE("teq $zero, $zero, 1", ::: "memory"); break;
        case 2: PROBE("teq $zero, $zero, 0x155", ::: "memory"); break;
        case 3: PROBE("teq $zero, $zero, 0x3ff", ::: "memory"); break;
        }
        u32 insn = *(u32 *)rt_exc.epc;
        printf("%s: insn %08x code field %u ", names[k], insn, (insn >> 6) & 0x3ff);
        show_exc("exc");
    }
    return 0;
}
