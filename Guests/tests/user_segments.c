// User mode (KSU=10) segment rules: useg mapped accesses work; kseg0, kseg1, kseg2 (sseg) and
// kseg3 raise AdEL/AdES with BadVAddr (no TLB lookup); a jump to kseg0 faults on fetch (EPC =
// BadVAddr = target); privileged instructions raise CpU (CE=0) unless Status.CU0=1; SYSCALL
// works; Status at the exception shows KSU=10 and EXL=1.
#include "rt.h"

static u32 data[4] = {0x11111111, 0x22222222, 0x33333333, 0x44444444};

static u32 u_loadb(u32 addr) {
    u32 v = 0x5a5a5a5a;
    __asm__ volatile("lbu %0, 0(%1)" : "+r"(v) : "r"(addr) : "memory");
    return v;
}
static u32 u_mfc0(u32 arg) {
    u32 v = 0x5a5a5a5a;
    __asm__ volatile("mfc0 %0, $12" : "+r"(v));
    return v;
}
static u32 u_mtc0(u32 arg) {
    __asm__ volatile("mtc0 %0, $14" : : "r"(arg));
    return 0;
}
static u32 u_tlbp(u32 arg) {
    __asm__ volatile("tlbp" ::: "memory");
    return 0;
}
static u32 u_wait(u32 arg) {
    __asm__ volatile("wait" ::: "memory");
    return 0;
}
static u32 u_syscall(u32 arg) {
    __asm__ volatile("syscall 0x99" ::: "memory");
    return 0x600d;
}
static u32 u_sum(u32 p) {
    u32 *q = (u32 *)p, s = 0;
    for (int i = 0; i < 4; i++) s += q[i];
    q[3] = s;
    return s;
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
    printf("%s bd=%u ", exc_name(code), rt_exc.cause >> 31);
    if (fetch)
        printf("epc=badva=%08x", rt_exc.epc);
    else
        printf("epc=fn%+d", (s32)(rt_exc.epc - rt_mark));
    if (!fetch && (code == EXC_ADEL || code == EXC_ADES || code == EXC_TLBL || code == EXC_TLBS))
        printf(" badva=%08x", rt_exc.badvaddr);
    printf(" status=%02x\n", rt_exc.status & 0xff);
}

#define U(what, fn, arg) show(what, probe_mode(KSU_USER, fn, arg))

int main(void) {
    install_handlers();
    tlb_clear_all();
    u32 d = USEG(data);
    U("lw useg (mapped) data", probe_lw, d);
    U("sum over useg data, store", u_sum, d);
    printf("  data[3] via kseg0: %08x\n", data[3]);
    U("lw kseg0 80001000", probe_lw, 0x80001000);
    U("lbu kseg0 80000013", u_loadb, 0x80000013);
    U("lw kseg1 a0001000", probe_lw, 0xa0001000);
    U("lw kseg2 c0000000", probe_lw, 0xc0000000);
    U("lw kseg3 e0000000", probe_lw, 0xe0000000);
    U("lw ffffffff-3", probe_lw, 0xfffffffc);
    U("lw 7ffffffc (useg, unmapped)", probe_lw, 0x7ffffffc);
    U("sw kseg0 80001000", probe_sw, 0x80001000);
    U("sw kseg1 b80003f8 (the UART)", probe_sw, 0xb80003f8);
    U("sw kseg2 c0001000", probe_sw, 0xc0001000);
    U("jump to kseg0 80100000", probe_jalr, 0x80100000);
    U("jump to kseg2 c0000000", probe_jalr, 0xc0000000);
    U("mfc0 Status", u_mfc0, 0);
    U("mtc0 EPC", u_mtc0, 0x1234);
    U("tlbp", u_tlbp, 0);
    U("wait", u_wait, 0);
    U("syscall 0x99", u_syscall, 0);
    mtc0(C0_STATUS, mfc0(C0_STATUS) | ST_CU0);
    U("mfc0 Status with CU0=1", u_mfc0, 0);
    U("tlbp with CU0=1", u_tlbp, 0);
    U("lw kseg0 with CU0=1", probe_lw, 0x80001000);
    mtc0(C0_STATUS, mfc0(C0_STATUS) & ~ST_CU0);
    return 0;
}
