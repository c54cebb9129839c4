// Shifts and rotates: SLL SRL SRA ROTR (every shift amount) and SLLV SRLV SRAV ROTRV (amounts
// taken from the low 5 bits of rs, including 32, 33, 0xffffffe1 and 0x80000004).
#include "rt.h"

static const u32 vals[] = {0x80000001, 0x12345678, 0xffffffff, 0x7ffffffe};

#define IMM(v, sa)                                                                            \
    printf("%08x %2u | %08x %08x %08x %08x\n", v, sa, OP_RI("sll", v, sa), OP_RI("srl", v, sa), \
           OP_RI("sra", v, sa), OP_RI("rotr", v, sa))
#define IMM4(v, b) IMM(v, b); IMM(v, b + 1); IMM(v, b + 2); IMM(v, b + 3)
#define IMM16(v, b) IMM4(v, b); IMM4(v, b + 4); IMM4(v, b + 8); IMM4(v, b + 12)

static void imm_shifts(u32 v) {
    IMM16(v, 0);
    IMM16(v, 16);
}

static const u32 amounts[] = {0, 1, 4, 15, 16, 31, 32, 33, 63, 0xffffffe1, 0x80000004};

int main(void) {
    puts("value    sa | sll      srl      sra      rotr");
    for (u32 i = 0; i < countof(vals); i++) imm_shifts(vals[i]);
    puts("value    rs       | sllv     srlv     srav     rotrv");
    for (u32 i = 0; i < countof(vals); i++)
        for (u32 j = 0; j < countof(amounts); j++) {
            u32 v = vals[i], s = amounts[j];
            printf("%08x %08x | %08x %08x %08x %08x\n", v, s, OP_RR("sllv", v, s),
                   OP_RR("srlv", v, s), OP_RR("srav", v, s), OP_RR("rotrv", v, s));
        }
    return 0;
}
