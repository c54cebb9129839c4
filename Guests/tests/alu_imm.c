// Immediate ALU ops: ADDIU SLTI SLTIU (sign-extended immediates) ANDI ORI XORI (zero-extended) LUI.
#include "rt.h"

static const u32 vals[] = {
    0x00000000, 0x00000001, 0x7fffffff, 0x80000000, 0xffffffff, 0xffff8000,
    0x00007fff, 0x00008000, 0x12345678, 0xfffffffe,
};

#define ROW(imm)                                                                              \
    printf("%08x %6d | %08x %u %u %08x %08x %08x\n", a, (s32)(imm), OP_RI("addiu", a, imm),    \
           OP_RI("slti", a, imm), OP_RI("sltiu", a, imm), OP_RI("andi", a, (imm) & 0xffff),   \
           OP_RI("ori", a, (imm) & 0xffff), OP_RI("xori", a, (imm) & 0xffff))

int main(void) {
    puts("a        imm    | addiu    slti sltiu andi(imm&ffff) ori xori");
    for (u32 i = 0; i < countof(vals); i++) {
        u32 a = vals[i];
        ROW(0);
        ROW(1);
        ROW(-1);
        ROW(0x7fff);
        ROW(-0x8000);
        ROW(0x1234);
        ROW(-2);
    }
    u32 r;
#define LUI(imm)                                                                              \
    __asm__ volatile("lui %0, %1" : "=r"(r) : "i"(imm));                                      \
    printf("lui 0x%04x = %08x\n", imm, r)
    LUI(0);
    LUI(1);
    LUI(0x7fff);
    LUI(0x8000);
    LUI(0xffff);
    LUI(0x1234);
    return 0;
}
