// Immediate traps TEQI TNEI TGEI TGEIU TLTI TLTIU (sign-extended immediate; the -IU forms
// compare unsigned), taken and not taken.
#include "rt.h"

static const u32 vals[] = {0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 0x00007fff, 0xffff8000};

#define TRAP(op, a, imm)                                                                      \
    ({                                                                                        \
        exc_clear();                                                                          \
        PROBE(op " %0, %1", : : "r"(a), "i"(imm) : "memory");                                 \
        rt_exc.count ? (CA_EXC(rt_exc.cause) == EXC_TR && rt_exc.epc == rt_mark ? 'T' : '?') : '-'; \
    })
#define ROW(a, imm)                                                                           \
    printf("%08x %6d | %c    %c    %c    %c     %c    %c\n", a, imm, TRAP("teqi", a, imm),     \
           TRAP("tnei", a, imm), TRAP("tgei", a, imm), TRAP("tgeiu", a, imm),                 \
           TRAP("tlti", a, imm), TRAP("tltiu", a, imm))

int main(void) {
    install_handlers();
    puts("a        imm    | teqi tnei tgei tgeiu tlti tltiu");
    for (u32 i = 0; i < countof(vals); i++) {
        u32 a = vals[i];
        ROW(a, 0);
        ROW(a, 1);
        ROW(a, -1);
        ROW(a, 0x7fff);
        ROW(a, -0x8000);
    }
    return 0;
}
