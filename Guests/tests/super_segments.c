// Supervisor mode (KSU=01) segment rules: useg and sseg (0xC0000000-0xDFFFFFFF) are mapped and
// accessible (loads, stores, instruction fetch); kseg0, kseg1 and kseg3 raise AdEL/AdES; an
// unmapped sseg address raises a TLB refill; privileged instructions raise CpU.
#include "rt.h"

static u32 page[1024] __attribute__((aligned(4096)));
static u32 code[1024] __attribute__((aligned(4096)));

static u32 s_load(u32 addr) {
    u32 v = 0x5a5a5a5a;
    __asm__ volatile("lw %0, 0(%1)" : "+r"(v) : "r"(addr) : "memory");
    return v;
}
static u32 s_store(u32 addr) {
    __asm__ volatile("sw %0, 0(%1)" : : "r"(0x5e5e5e5e), "r"(addr) : "memory");
    return 0;
}
static u32 s_call(u32 addr) {
    u32 v;
    __asm__ volatile("jalr %1\n\tnop\n\tmove %0, $v0" : "=r"(v) : "r"(addr) : "ra", "v0", "memory");
    return v;
}
static u32 s_mfc0(u32 arg) {
    u32 v = 0x5a5a5a5a;
    __asm__ volatile("mfc0 %0, $12" : "+r"(v));
    return v;
}
static u32 s_syscall(u32 arg) {
    __asm__ volatile("syscall 1" ::: "memory");
    return 0x600d;
}

static void show(const char *what, u32 v) {
    printf("%-34s ", what);
    if (!rt_exc.count) {
        printf("v0=%08x ok\n", v);
        return;
    }
    u32 code = CA_EXC(rt_exc.cause);
    int fetch = rt_exc.epc == rt_exc.badvaddr;
    if (!fetch) printf("v0=%08x ", v);
    printf("%s vec=%03x ", exc_name(code), rt_exc.vector);
    if (fetch)
        printf("epc=badva=%08x", rt_exc.epc);
    else
        printf("epc=fn%+d", (s32)(rt_exc.epc - rt_mark));
    if (!fetch && (code == EXC_ADEL || code == EXC_ADES || code == EXC_TLBL || code == EXC_TLBS))
        printf(" badva=%08x", rt_exc.badvaddr);
    printf(" status=%02x\n", rt_exc.status & 0xff);
}

#define S(what, fn, arg) show(what, probe_mode(KSU_SUPER, fn, arg))

int main(void) {
    install_handlers();
    tlb_clear_all();
    page[0] = 0x55550000;
    page[1] = 0x55550001;
    code[0] = 0x03e00008; /* jr ra */
    code[1] = 0x24020123; /* addiu v0, zero, 0x123 */
    sync_icache((u32)code, 8);
    u32 f = ELO_C(3) | ELO_D | ELO_V | ELO_G;
    tlb_write_index(1, 0xc0000000, ELO(USEG(page), f), ELO(USEG(code), f), PM_4K);
    tlb_write_index(2, 0xdfffe000, ELO(USEG(page), f), ELO(USEG(page), f), PM_4K);
    S("lw sseg c0000004 (mapped)", s_load, 0xc0000004);
    S("sw sseg c0000008 (mapped)", s_store, 0xc0000008);
    printf("  page[2] via kseg0: %08x\n", page[2]);
    S("lw sseg dffff000 (top of sseg)", s_load, 0xdffff000);
    S("call code in sseg c0001000", s_call, 0xc0001000);
    S("lw sseg c0100000 (unmapped)", s_load, 0xc0100000);
    S("lw useg (mapped by map_low)", s_load, USEG(page));
    S("lw kseg0 80001000", s_load, 0x80001000);
    S("lw kseg1 a0001000", s_load, 0xa0001000);
    S("lw kseg3 e0000000", s_load, 0xe0000000);
    S("lw kseg3 fffff000", s_load, 0xfffff000);
    S("sw kseg0 80001000", s_store, 0x80001000);
    S("sw kseg3 e0001000", s_store, 0xe0001000);
    S("call code in kseg0 80000180", s_call, 0x80000180);
    S("mfc0 Status", s_mfc0, 0);
    S("syscall", s_syscall, 0);
    return 0;
}
