/* MIPS32r2 CP0 registers, bits and helpers used by the teachos kernel. */
#ifndef TEACHOS_MIPS_H
#define TEACHOS_MIPS_H

/* CP0 register, select (for the assembly files and the mfc0/mtc0 macros). */
#define CP0_INDEX 0, 0
#define CP0_RANDOM 1, 0
#define CP0_ENTRYLO0 2, 0
#define CP0_ENTRYLO1 3, 0
#define CP0_CONTEXT 4, 0
#define CP0_PAGEMASK 5, 0
#define CP0_WIRED 6, 0
#define CP0_BADVADDR 8, 0
#define CP0_COUNT 9, 0
#define CP0_ENTRYHI 10, 0
#define CP0_COMPARE 11, 0
#define CP0_STATUS 12, 0
#define CP0_CAUSE 13, 0
#define CP0_EPC 14, 0
#define CP0_PRID 15, 0
#define CP0_EBASE 15, 1
#define CP0_CONFIG 16, 0
#define CP0_CONFIG1 16, 1

#define ST_IE 0x00000001u
#define ST_EXL 0x00000002u
#define ST_ERL 0x00000004u
#define ST_KSU_USER 0x00000010u
#define ST_KSU_MASK 0x00000018u
#define ST_IM7 0x00008000u /* the CP0 timer */
#define ST_BEV 0x00400000u

#define CAUSE_BD 0x80000000u
#define CAUSE_TI 0x40000000u
#define CAUSE_IV 0x00800000u
#define CAUSE_IP7 0x00008000u
#define CAUSE_EXC(c) (((c) >> 2) & 31)

#define EXC_INT 0
#define EXC_MOD 1
#define EXC_TLBL 2
#define EXC_TLBS 3
#define EXC_ADEL 4
#define EXC_ADES 5
#define EXC_SYS 8
#define EXC_BP 9
#define EXC_RI 10
#define EXC_CPU 11
#define EXC_OV 12
#define EXC_TR 13

/* EntryLo: PFN << 6 | C << 3 | D | V | G. */
#define ELO_G 0x1u
#define ELO_V 0x2u
#define ELO_D 0x4u
#define ELO_CACHED (3u << 3) /* cacheable, noncoherent, write-back */
#define ELO_PFN(lo) ((lo) >> 6)
#define PTE(pfn, flags) (((pfn) << 6) | ELO_CACHED | (flags))

#define PAGE_SIZE 4096u
#define PAGE_SHIFT 12
#define KSEG0 0x80000000u
#define KSEG1 0xA0000000u

#ifndef __ASSEMBLER__
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int s32;
typedef unsigned long long u64;

#define mfc0(...) mfc0_(__VA_ARGS__)
#define mfc0_(reg, sel)                                                                  \
    ({                                                                                   \
        u32 v_;                                                                          \
        __asm__ volatile("mfc0 %0, $" #reg ", " #sel : "=r"(v_));                        \
        v_;                                                                              \
    })
#define mtc0(...) mtc0_(__VA_ARGS__)
#define mtc0_(reg, sel, v)                                                               \
    __asm__ volatile("mtc0 %z0, $" #reg ", " #sel "\n\tehb" : : "Jr"((u32)(v)) : "memory")

static inline void tlbwi(void) { __asm__ volatile("tlbwi\n\tehb" ::: "memory"); }
static inline void tlbwr(void) { __asm__ volatile("tlbwr\n\tehb" ::: "memory"); }
static inline void tlbp(void) { __asm__ volatile("tlbp\n\tehb" ::: "memory"); }
static inline void tlbr(void) { __asm__ volatile("tlbr\n\tehb" ::: "memory"); }
#endif

#endif
