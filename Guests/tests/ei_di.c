// EI and DI: the old Status is returned in rt (or discarded with rt=$0), IE set/cleared, no
// other bit changed; in user and supervisor mode both raise CpU (CE=0).
#include "rt.h"

static u32 u_di(u32 arg) {
    u32 v = 0x5a5a5a5a;
    __asm__ volatile("di %0" : "+r"(v));
    return v;
}
static u32 u_ei(u32 arg) {
    u32 v = 0x5a5a5a5a;
    __asm__ volatile("ei %0" : "+r"(v));
    return v;
}

int main(void) {
    install_handlers();
    u32 st = mfc0(C0_STATUS) & ~ST_IE;
    mtc0(C0_STATUS, st);
    u32 old, now;
    __asm__ volatile("ei %0\n\tehb" : "=r"(old));
    now = mfc0(C0_STATUS);
    printf("ei: returned %08x, Status now %08x\n", old, now);
    __asm__ volatile("ei %0\n\tehb" : "=r"(old));
    printf("ei again: returned %08x, Status now %08x\n", old, mfc0(C0_STATUS));
    __asm__ volatile("di %0\n\tehb" : "=r"(old));
    printf("di: returned %08x, Status now %08x\n", old, mfc0(C0_STATUS));
    __asm__ volatile("di %0\n\tehb" : "=r"(old));
    printf("di again: returned %08x, Status now %08x\n", old, mfc0(C0_STATUS));
    __asm__ volatile("ei\n\tehb" ::: "memory");
    printf("ei (no rt): Status %08x\n", mfc0(C0_STATUS));
    __asm__ volatile("di\n\tehb" ::: "memory");
    printf("di (no rt): Status %08x\n", mfc0(C0_STATUS));
    /* with other Status bits set: IM bits, CU0 */
    mtc0(C0_STATUS, st | ST_CU0 | 0x0000ab00);
    __asm__ volatile("ei %0\n\tehb" : "=r"(old));
    printf("ei with CU0|IM=ab: returned %08x, Status now %08x\n", old, mfc0(C0_STATUS));
    __asm__ volatile("di %0\n\tehb" : "=r"(old));
    printf("di: returned %08x, Status now %08x\n", old, mfc0(C0_STATUS));
    mtc0(C0_STATUS, st);
    /* user and supervisor mode */
    u32 v = probe_mode(KSU_USER, u_di, 0);
    printf("user di: rt=%08x ", v);
    show_exc_full("exc");
    v = probe_mode(KSU_USER, u_ei, 0);
    printf("user ei: rt=%08x ", v);
    show_exc_full("exc");
    v = probe_mode(KSU_SUPER, u_ei, 0);
    printf("supervisor ei: rt=%08x ", v);
    show_exc_full("exc");
    printf("Status after returning to kernel mode: %08x\n", mfc0(C0_STATUS));
    return 0;
}
