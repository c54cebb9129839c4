// SYSCALL and BREAK: ExcCode (Sys 8 / Bp 9), EPC at the instruction (handler adds 4), the code
// field read back from the instruction word, and both in a delay slot (BD=1, EPC = branch).
#include "rt.h"

static void show_code(const char *what, int is_break) {
    u32 insn = *(u32 *)(rt_exc.epc + ((rt_exc.cause & CA_BD) ? 4 : 0));
    u32 code = is_break ? (insn >> 6) & 0xfffff : (insn >> 6) & 0xfffff;
    printf("%-28s insn=%08x code=0x%05x ", what, insn, code);
    if (is_break) printf("(hi10=%u lo10=%u) ", code >> 10, code & 0x3ff);
    show_exc("exc");
}

int main(void) {
    install_handlers();
    exc_clear(); PROBE("syscall", ::: "memory"); show_code("syscall", 0);
    exc_clear(); PROBE("syscall 1", ::: "memory"); show_code("syscall 1", 0);
    exc_clear(); PROBE("syscall 0x12345", ::: "memory"); show_code("syscall 0x12345", 0);
    exc_clear(); PROBE("syscall 0xffffe", ::: "memory"); show_code("syscall 0xffffe", 0);
    exc_clear(); PROBE("break", ::: "memory"); show_code("break", 1);
    exc_clear(); PROBE("break 7", ::: "memory"); show_code("break 7", 1);
    exc_clear(); PROBE("break 0x3ff", ::: "memory"); show_code("break 0x3ff", 1);
    exc_clear(); PROBE("break 5, 6", ::: "memory"); show_code("break 5,6", 1);
    exc_clear(); PROBE("break 0x3ff, 0x3ff", ::: "memory"); show_code("break 0x3ff,0x3ff", 1);
    exc_clear(); PROBE("beq $zero, $zero, 9f\n\tsyscall 42\n\tnop", ::: "memory"); show_code("syscall in beq slot", 0);
    exc_clear(); PROBE("beq %0, $zero, 9f\n\tbreak 3\n\tnop", :: "r"(1) : "memory"); show_code("break in not-taken beq slot", 1);
    /* the handler's EPC+4 resumes right after the syscall */
    u32 v = 0;
    exc_clear();
    __asm__ volatile("li %0, 1\n\tsyscall\n\taddiu %0, %0, 2" : "+r"(v) : : "memory");
    printf("syscall then continue at EPC+4: v=%u (3), count=%u\n", v, rt_exc.count);
    return 0;
}
