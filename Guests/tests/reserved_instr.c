// Reserved Instruction (ExcCode 10) for encodings a MIPS32r2 24Kc does not implement: MIPS64-only
// opcodes, unused SPECIAL/REGIMM/SPECIAL2/SPECIAL3/BSHFL/COP0 function codes, DSP ASE; and a
// few that look odd but are valid (no exception). Encodings QEMU wrongly executes are in
// qemu_quirks.
#include "rt.h"

struct word { u32 w; const char *what; };
static const struct word words[] = {
    {0x0000000e, "SPECIAL funct 0x0e"},
    {0x00000014, "SPECIAL DSLLV"},
    {0x00000016, "SPECIAL DSRLV"},
    {0x00000017, "SPECIAL DSRAV"},
    {0x0000001c, "SPECIAL DMULT"},
    {0x0000001d, "SPECIAL DMULTU"},
    {0x0000001e, "SPECIAL DDIV"},
    {0x0000001f, "SPECIAL DDIVU"},
    {0x00000028, "SPECIAL funct 0x28"},
    {0x00000029, "SPECIAL funct 0x29"},
    {0x0000002c, "SPECIAL DADD"},
    {0x0000002d, "SPECIAL DADDU"},
    {0x0000002e, "SPECIAL DSUB"},
    {0x0000002f, "SPECIAL DSUBU"},
    {0x00000035, "SPECIAL funct 0x35"},
    {0x00000037, "SPECIAL funct 0x37"},
    {0x00000038, "SPECIAL DSLL"},
    {0x0000003a, "SPECIAL DSRL"},
    {0x0000003b, "SPECIAL DSRA"},
    {0x0000003c, "SPECIAL DSLL32"},
    {0x0000003e, "SPECIAL DSRL32"},
    {0x0000003f, "SPECIAL DSRA32"},
    {0x04040000, "REGIMM rt 0x04"},
    {0x04050000, "REGIMM rt 0x05"},
    {0x04060000, "REGIMM rt 0x06"},
    {0x04070000, "REGIMM rt 0x07"},
    {0x040d0000, "REGIMM rt 0x0d"},
    {0x040f0000, "REGIMM rt 0x0f"},
    {0x04140000, "REGIMM rt 0x14"},
    {0x04180000, "REGIMM rt 0x18"},
    {0x041c0000, "REGIMM rt 0x1c (BPOSGE32, DSP)"},
    {0x041e0000, "REGIMM rt 0x1e"},
    {0x60000000, "DADDI"},
    {0x64000000, "DADDIU"},
    {0x68000000, "LDL"},
    {0x6c000000, "LDR"},
    {0x9c000000, "LWU"},
    {0xb0000000, "SDL"},
    {0xb4000000, "SDR"},
    {0xd0000000, "LLD"},
    {0xdc000000, "LD"},
    {0xec000000, "opcode 0x3b"},
    {0xf0000000, "SCD"},
    {0xfc000000, "SD"},
    {0xffffffff, "all ones (SD)"},
    {0x70000003, "SPECIAL2 funct 0x03"},
    {0x70000006, "SPECIAL2 funct 0x06"},
    {0x70000010, "SPECIAL2 funct 0x10"},
    {0x70000024, "SPECIAL2 DCLZ"},
    {0x70000025, "SPECIAL2 DCLO"},
    {0x7000003e, "SPECIAL2 funct 0x3e"},
    {0x7c000001, "SPECIAL3 DEXTM"},
    {0x7c000002, "SPECIAL3 DEXTU"},
    {0x7c000003, "SPECIAL3 DEXT"},
    {0x7c000005, "SPECIAL3 DINSM"},
    {0x7c000006, "SPECIAL3 DINSU"},
    {0x7c000007, "SPECIAL3 DINS"},
    {0x7c000024, "SPECIAL3 DBSHFL"},
    {0x7c00000a, "SPECIAL3 LX (DSP)"},
    {0x7c004010, "SPECIAL3 ADDU.QB (DSP) rd=t0"},
    {0x7c080038, "SPECIAL3 EXTR.W (DSP) rt=t0"},
    {0x7c00003f, "SPECIAL3 funct 0x3f"},
    {0x7c000020, "BSHFL sa 0x00"},
    {0x7c004060, "BSHFL sa 0x01 rd=t0"},
    {0x7c004460, "BSHFL sa 0x11 rd=t0"},
    {0x7c0047e0, "BSHFL sa 0x1f rd=t0"},
    {0x7c00303b, "RDHWR $6 (unimplemented hw reg)"},
    {0x7c00f83b, "RDHWR $31"},
    {0x42000010, "COP0 CO funct 0x10"},
    {0x42000021, "COP0 CO funct 0x21"},
    {0x4200001f, "COP0 DERET (not in debug mode)"},
    {0x40200000, "COP0 DMFC0"},
    {0x40a00000, "COP0 DMTC0"},
    {0x40400000, "COP0 rs 0x02"},
    {0x40c00000, "COP0 rs 0x06"},
    /* valid, for contrast */
    {0x00000000, "NOP (valid)"},
    {0x00000040, "SSNOP (valid)"},
    {0x000000c0, "EHB (valid)"},
    {0x00000140, "PAUSE encoding (sll $0,$0,5)"},
    {0x0000000f, "SYNC (valid)"},
    {0x0000040f, "SYNC 0x10 stype (valid)"},
    {0x0008400f, "SYNC with nonzero rt/rd fields"},
    {0x00000001 | (2 << 6), "SPECIAL funct 0x01 (MOVCI) with sa!=0"},
    {0x7c08087b, "RDHWR t0, $1 with sa field = 1"},
};

int main(void) {
    install_handlers();
    for (u32 i = 0; i < countof(words); i++) {
        exc_clear();
        run_word(words[i].w);
        printf("%08x %-40s", words[i].w, words[i].what);
        show_exc_full("");
    }
    return 0;
}
