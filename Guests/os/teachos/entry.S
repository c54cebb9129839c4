# teachos: boot entry, exception vectors, trap entry/exit, idle loops, hypercalls.
#include "kernel.h"

    .set noreorder
    .set noat

# ---- Boot ----------------------------------------------------------------------------------
# QEMU's (and Magritte's) Malta boot stub jumps here in kernel mode with Status.BEV = 1 and
# a0 = argc, a1 = argv, a2 = envp, a3 = memory size. Clear .bss (the boot arguments live at
# 0x80002000, far below it), take the kernel stack and call main(argc, argv, envp, memsize).
    .section .text.entry, "ax"
    .globl teachos_start
    .type teachos_start, @function
teachos_start:
    la      $t0, __bss_start
    la      $t1, __bss_end
1:  beq     $t0, $t1, 2f
    nop
    sw      $zero, 0($t0)
    b       1b
    addiu   $t0, $t0, 4
2:  la      $sp, kstack_top
    jal     main
    addiu   $sp, $sp, -16              # (delay slot) the o32 argument area
3:  b       3b
    nop
    .size teachos_start, . - teachos_start

    .text

# ---- Vector templates: copied to EBase + offset at boot (absolute addresses only) -----------

# A vector that jumps to `target` (through k0).
    .macro JUMP_TO target
    lui     $k0, %hi(\target)
    addiu   $k0, $k0, %lo(\target)
    jr      $k0
    nop
    .endm

# TLB refill (EBase + 0x000): a miss on a mapped user address with EXL = 0. Walk the current
# process's two-level page table (cur_pgdir: 1024 pointers to page tables, each 1024 PTEs in
# EntryLo format; empty slots point to zero_pt) and write the even/odd pair with tlbwr.
# An absent page has PTE 0 (V = 0): the retried access then takes a TLB invalid exception,
# which the C code turns into a demand-zero page or a kill.
    .macro COUNT_REFILL                # kstats.tlb_refills++ (with k0, k1)
    lui     $k1, %hi(kstats + KSTATS_TLB_REFILLS)
    lw      $k0, %lo(kstats + KSTATS_TLB_REFILLS)($k1)
    addiu   $k0, $k0, 1
    sw      $k0, %lo(kstats + KSTATS_TLB_REFILLS)($k1)
    .endm
# \pt = the address of the even/odd PTE pair that maps the faulting address, which the
# instruction `getva` loads into \va (twice; \va is clobbered).
    .macro PTE_PAIR pt, va, getva:vararg
    \getva
    lui     \pt, %hi(cur_pgdir)
    lw      \pt, %lo(cur_pgdir)(\pt)
    srl     \va, \va, 22               # VA[31:22]: page directory index
    sll     \va, \va, 2
    addu    \pt, \pt, \va
    lw      \pt, 0(\pt)                # the page table of these 4 MiB
    \getva
    srl     \va, \va, 10
    andi    \va, \va, 0xff8            # VA[21:13] * 8: the even/odd PTE pair
    addu    \pt, \pt, \va
    .endm
    .globl refill_bare, refill_bare_end
refill_bare:
    COUNT_REFILL
    PTE_PAIR $k1, $k0, mfc0 $k0, $8    # BadVAddr
    lw      $k0, 0($k1)
    lw      $k1, 4($k1)
    mtc0    $k0, $2                    # EntryLo0
    mtc0    $k1, $3                    # EntryLo1
    ehb
    tlbwr                              # EntryHi (VPN2, ASID) was set by the miss
    eret
refill_bare_end:

# Refill with a comm page (pv=comm): the same walk, with BadVAddr read from the comm page and
# EntryLo0/EntryLo1 written there; only tlbwr and eret trap. a0 is saved in the page's scratch.
    .globl refill_comm, refill_comm_end
refill_comm:
    COUNT_REFILL
    lui     $k1, %hi(commpage)
    addiu   $k1, $k1, %lo(commpage)
    sw      $a0, CP_SCRATCH($k1)
    PTE_PAIR $a0, $k0, lw $k0, CP_BADVADDR($k1)
    lw      $k0, 0($a0)
    sw      $k0, CP_ENTRYLO0($k1)
    lw      $k0, 4($a0)
    sw      $k0, CP_ENTRYLO1($k1)
    lw      $a0, CP_SCRATCH($k1)
    tlbwr                              # traps: the VMM takes EntryLo0/1 from the page first
    eret
refill_comm_end:

# Refill when the VMM answered the probe: jump to refill_hv, which installs the pair with one
# batched-TLB-write hypercall instead of mtc0 EntryLo0/EntryLo1 + tlbwr (three traps).
    .globl refill_hv_stub, refill_hv_stub_end
refill_hv_stub:
    JUMP_TO refill_hv
refill_hv_stub_end:

# General exception (EBase + 0x180) and interrupt (EBase + 0x200, unused with Cause.IV = 0).
    .globl general_stub, general_stub_end
general_stub:
    JUMP_TO exc_general
general_stub_end:

# The same with a comm page (pv=comm).
    .globl general_comm_stub, general_comm_stub_end
general_comm_stub:
    JUMP_TO exc_general_comm
general_comm_stub_end:

# ---- Hypercall instruction -----------------------------------------------------------------
#ifdef TEACHOS_FAKE_HV
# Self-test build only: pretend a VMM answers, so the para-virtual paths run on bare QEMU.
    .macro HCALL
    jal     fake_hypercall_asm
    nop
    .endm
#else
    .macro HCALL
    mfc0    $v0, $22, 7
    .endm
#endif

# Refill through HC_TLBWRITE. Saves the registers the hypercall needs in hv_scratch and
# builds one record there: {-1 (random), EntryHi, EntryLo0, EntryLo1, PageMask 0}.
refill_hv:
    lui     $k1, %hi(hv_scratch)
    addiu   $k1, $k1, %lo(hv_scratch)
    sw      $a0, 0($k1)
    sw      $a1, 4($k1)
    sw      $a2, 8($k1)
    sw      $v0, 12($k1)
    sw      $ra, 16($k1)
    lui     $a0, %hi(kstats + KSTATS_TLB_REFILLS)
    lw      $a1, %lo(kstats + KSTATS_TLB_REFILLS)($a0)
    addiu   $a1, $a1, 1
    sw      $a1, %lo(kstats + KSTATS_TLB_REFILLS)($a0)
    mfc0    $k0, $8                    # BadVAddr
    lui     $a0, %hi(cur_pgdir)
    lw      $a0, %lo(cur_pgdir)($a0)
    srl     $a1, $k0, 22
    sll     $a1, $a1, 2
    addu    $a0, $a0, $a1
    lw      $a0, 0($a0)                # page table
    srl     $a1, $k0, 10
    andi    $a1, $a1, 0xff8
    addu    $a0, $a0, $a1
    lw      $a1, 0($a0)
    sw      $a1, 24 + HC_TLB_ENTRYLO0($k1)
    lw      $a1, 4($a0)
    sw      $a1, 24 + HC_TLB_ENTRYLO1($k1)
    addiu   $a1, $zero, -1
    sw      $a1, 24 + HC_TLB_INDEX($k1)
    srl     $k0, $k0, 13               # VPN2 ...
    sll     $k0, $k0, 13
    lui     $a1, %hi(cur_asid)
    lw      $a1, %lo(cur_asid)($a1)
    or      $k0, $k0, $a1              # ... | ASID
    sw      $k0, 24 + HC_TLB_ENTRYHI($k1)
    sw      $zero, 24 + HC_TLB_PAGEMASK($k1)
    addiu   $a0, $zero, HC_TLBWRITE
    addiu   $a1, $k1, 24
    addiu   $a2, $zero, 1
    HCALL
    lui     $k1, %hi(hv_scratch)
    addiu   $k1, $k1, %lo(hv_scratch)
    lw      $a0, 0($k1)
    lw      $a1, 4($k1)
    lw      $a2, 8($k1)
    lw      $v0, 12($k1)
    lw      $ra, 16($k1)
    eret

#ifdef TEACHOS_FAKE_HV
# HC_TLBWRITE with one record, done by hand (a1 = record); the other functions go to C.
fake_hypercall_asm:
    addiu   $k0, $zero, HC_TLBWRITE
    bne     $a0, $k0, 1f
    nop
    lw      $k0, HC_TLB_ENTRYHI($a1)
    mtc0    $k0, $10
    lw      $k0, HC_TLB_ENTRYLO0($a1)
    mtc0    $k0, $2
    lw      $k0, HC_TLB_ENTRYLO1($a1)
    mtc0    $k0, $3
    lw      $k0, HC_TLB_PAGEMASK($a1)
    mtc0    $k0, $5
    ehb
    tlbwr
    ehb
    jr      $ra
    move    $v0, $zero
1:  j       fake_hypercall             # C, returns to our caller
    nop
#endif

# u32 hypercall(u32 fn, u32 a1, u32 a2, u32 a3): the ABI is the C calling convention.
    .globl hypercall
    .type hypercall, @function
hypercall:
#ifdef TEACHOS_FAKE_HV
    j       fake_hypercall
    nop
#else
    mfc0    $v0, $22, 7
    jr      $ra
    nop
#endif
    .size hypercall, . - hypercall

# ---- Trap entry and exit -------------------------------------------------------------------
# Every exception but the refill arrives here with EXL = 1. The kernel is not reentrant: it
# runs with EXL = 1 (interrupts off) on one kernel stack, and the interrupted context (a user
# process, or the idle loop) is saved in *cur_tf. trap() returns the context to resume.
#
# The parts of trap entry and exit that do not touch CP0, shared by the trapping version
# (exc_general, resume) and the comm-page one (exc_general_comm, resume_comm).
# TRAP_SAVE: unless nested, k1 = cur_tf and every general register, HI and LO saved in it.
    .macro TRAP_SAVE
    lui     $k0, %hi(in_kernel)
    lw      $k0, %lo(in_kernel)($k0)
    bnez    $k0, nested
    lui     $k1, %hi(cur_tf)
    lw      $k1, %lo(cur_tf)($k1)
    sw      $1, 4($k1)
    sw      $2, 8($k1)
    sw      $3, 12($k1)
    sw      $4, 16($k1)
    sw      $5, 20($k1)
    sw      $6, 24($k1)
    sw      $7, 28($k1)
    sw      $8, 32($k1)
    sw      $9, 36($k1)
    sw      $10, 40($k1)
    sw      $11, 44($k1)
    sw      $12, 48($k1)
    sw      $13, 52($k1)
    sw      $14, 56($k1)
    sw      $15, 60($k1)
    sw      $16, 64($k1)
    sw      $17, 68($k1)
    sw      $18, 72($k1)
    sw      $19, 76($k1)
    sw      $20, 80($k1)
    sw      $21, 84($k1)
    sw      $22, 88($k1)
    sw      $23, 92($k1)
    sw      $24, 96($k1)
    sw      $25, 100($k1)
    sw      $28, 112($k1)
    sw      $29, 116($k1)
    sw      $30, 120($k1)
    sw      $31, 124($k1)
    mfhi    $k0
    sw      $k0, TF_HI($k1)
    mflo    $k0
    sw      $k0, TF_LO($k1)
    .endm
# TRAP_CALL: in the kernel; call trap(k1) on the kernel stack; a0 = the context to resume.
    .macro TRAP_CALL
    addiu   $k0, $zero, 1
    lui     $1, %hi(in_kernel)
    sw      $k0, %lo(in_kernel)($1)
    la      $sp, kstack_top - 16
    jal     trap
    move    $a0, $k1                   # (delay slot)
    move    $a0, $v0
    .endm
# RESUME_LOAD: k1 = a0, out of the kernel, HI and LO restored.
    .macro RESUME_LOAD
    lui     $1, %hi(in_kernel)
    sw      $zero, %lo(in_kernel)($1)
    move    $k1, $a0
    lw      $k0, TF_HI($k1)
    mthi    $k0
    lw      $k0, TF_LO($k1)
    mtlo    $k0
    .endm
# RESUME_RESTORE: the general registers, then eret.
    .macro RESUME_RESTORE
    lw      $1, 4($k1)
    lw      $2, 8($k1)
    lw      $3, 12($k1)
    lw      $4, 16($k1)
    lw      $5, 20($k1)
    lw      $6, 24($k1)
    lw      $7, 28($k1)
    lw      $8, 32($k1)
    lw      $9, 36($k1)
    lw      $10, 40($k1)
    lw      $11, 44($k1)
    lw      $12, 48($k1)
    lw      $13, 52($k1)
    lw      $14, 56($k1)
    lw      $15, 60($k1)
    lw      $16, 64($k1)
    lw      $17, 68($k1)
    lw      $18, 72($k1)
    lw      $19, 76($k1)
    lw      $20, 80($k1)
    lw      $21, 84($k1)
    lw      $22, 88($k1)
    lw      $23, 92($k1)
    lw      $24, 96($k1)
    lw      $25, 100($k1)
    lw      $28, 112($k1)
    lw      $29, 116($k1)
    lw      $30, 120($k1)
    lw      $31, 124($k1)
    ehb
    eret
    .endm

exc_general:
    TRAP_SAVE
    mfc0    $k0, $14                   # EPC
    sw      $k0, TF_EPC($k1)
    mfc0    $k0, $12                   # Status
    sw      $k0, TF_STATUS($k1)
    mfc0    $k0, $13                   # Cause
    sw      $k0, TF_CAUSE($k1)
    mfc0    $k0, $8                    # BadVAddr
    sw      $k0, TF_BADVADDR($k1)
    TRAP_CALL
    # fall through

# void resume(struct trapframe *tf): restore a context and eret into it.
    .globl resume
    .type resume, @function
resume:
    RESUME_LOAD
    lw      $k0, TF_EPC($k1)
    mtc0    $k0, $14
    lw      $k0, TF_STATUS($k1)        # EXL = 1 in it: interrupts stay off until eret
    mtc0    $k0, $12
    RESUME_RESTORE
    .size resume, . - resume

# With a comm page (pv=comm): the CP0 registers are read and written there; only eret traps.
exc_general_comm:
    TRAP_SAVE
    lui     $1, %hi(commpage)          # ($1 is saved)
    lw      $k0, %lo(commpage + CP_EPC)($1)
    sw      $k0, TF_EPC($k1)
    lw      $k0, %lo(commpage + CP_STATUS)($1)
    sw      $k0, TF_STATUS($k1)
    lw      $k0, %lo(commpage + CP_CAUSE)($1)
    sw      $k0, TF_CAUSE($k1)
    lw      $k0, %lo(commpage + CP_BADVADDR)($1)
    sw      $k0, TF_BADVADDR($k1)
    TRAP_CALL
    # fall through

    .globl resume_comm
    .type resume_comm, @function
resume_comm:
    RESUME_LOAD
    lui     $1, %hi(commpage)          # ($1 is restored below)
    lw      $k0, TF_EPC($k1)
    sw      $k0, %lo(commpage + CP_EPC)($1)
    lw      $k0, TF_STATUS($k1)        # EXL = 1 in it; the VMM takes both at the eret (a trap)
    sw      $k0, %lo(commpage + CP_STATUS)($1)
    RESUME_RESTORE
    .size resume_comm, . - resume_comm

# An exception while the kernel itself was running (a kernel bug): report and power off.
nested:
    la      $sp, kstack_top - 16
    mfc0    $a0, $13                   # Cause
    mfc0    $a1, $14                   # EPC (of the first exception: EXL was 1)
    jal     kernel_fault
    mfc0    $a2, $8                    # (delay slot) BadVAddr
4:  b       4b
    nop

# ---- Idle loops: entered by eret with interrupts on, in kernel mode ------------------------
    .globl idle_spin, idle_wait, idle_hypercall
idle_spin:                             # while (1) ;
    b       idle_spin
    nop
idle_wait:                             # the wait instruction: sleep until an interrupt
    wait
    b       idle_wait
    nop
idle_hypercall:                        # HC_IDLE: the VMM deschedules us until an interrupt
    addiu   $a0, $zero, HC_IDLE
    HCALL
    b       idle_hypercall
    nop

# ---- Data ----------------------------------------------------------------------------------
    .bss
    .align 4
    .globl in_kernel
in_kernel:
    .space  4
    .align 4
hv_scratch:                            # refill_hv: saved a0-a2, v0, ra, then the record
    .space  48
    .align 4
kstack:
    .space  0x4000
    .globl kstack_top
kstack_top:

# HC_COMMPAGE's page (pv=comm): a page of its own, after .bss (guest.ld), so that adding it
# moved nothing else.
    .section .commpage, "aw", @nobits
    .align 12
    .globl commpage
commpage:
    .space  4096
