// Context: PTEBase (bits 31:23) is writable, BadVPN2 (bits 22:4) is read-only and loaded with
// VA[31:13] on TLB refill, invalid and modified exceptions (also EntryHi.VPN2), but not on
// address errors or other exceptions.
#include "rt.h"

static void touch(const char *what, u32 va, int store) {
    u32 v = 0;
    exc_clear();
    if (store)
        PROBE("sw %0, 0(%1)", : : "r"(v), "r"(va) : "memory");
    else
        PROBE("lw %0, 0(%1)", : "+r"(v) : "r"(va) : "memory");
    printf("%-30s %-4s Context=%08x EntryHi=%08x BadVAddr=%08x\n", what,
           rt_exc.count ? exc_name(CA_EXC(rt_exc.cause)) : "none", mfc0(C0_CONTEXT),
           mfc0(C0_ENTRYHI), mfc0(C0_BADVADDR));
}

static u32 page[1024] __attribute__((aligned(4096)));

int main(void) {
    install_handlers();
    tlb_clear_all();
    mtc0(C0_ENTRYHI, 0x00000042);
    mtc0(C0_CONTEXT, 0xffffffff);
    printf("Context write ffffffff -> %08x\n", mfc0(C0_CONTEXT));
    mtc0(C0_CONTEXT, 0x00000000);
    printf("Context write 00000000 -> %08x\n", mfc0(C0_CONTEXT));
    mtc0(C0_CONTEXT, 0x12345678);
    printf("Context write 12345678 -> %08x\n", mfc0(C0_CONTEXT));
    touch("refill lw 00000000", 0x00000000, 0);
    touch("refill lw 7fffeffc", 0x7fffeffc, 0);
    touch("refill sw 12346abc", 0x12346abc, 1);
    touch("refill lw c0002004 (kseg2)", 0xc0002004, 0);
    touch("refill lw fffff000 (kseg3)", 0xfffff000, 0);
    tlb_write_index(1, 0x60000000, ELO(USEG(page), ELO_V | ELO_G), ELO(USEG(page), ELO_G), PM_4K);
    touch("invalid lw 60001010", 0x60001010, 0);
    touch("modified sw 60000020", 0x60000020, 1);
    touch("hit lw 60000000", 0x60000000, 0);
    touch("misaligned lw 23456781", 0x23456781, 0);
    touch("misaligned sw 34567892", 0x34567892, 1);
    exc_clear();
    __asm__ volatile("syscall" ::: "memory");
    printf("%-30s %-4s Context=%08x EntryHi=%08x\n", "syscall", exc_name(CA_EXC(rt_exc.cause)),
           mfc0(C0_CONTEXT), mfc0(C0_ENTRYHI));
    mtc0(C0_CONTEXT, 0x80000000);
    printf("PTEBase rewritten, BadVPN2 kept: %08x\n", mfc0(C0_CONTEXT));
    return 0;
}
