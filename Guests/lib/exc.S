# Exception entry for guest programs: a vector stub template, the common register-saving
# stub that calls on_exception(struct frame *), and run_in_mode.
#include "frame.h"

    .set noreorder
    .set noat
    .text

# Vector stub template: copied to EBase + offset by install_vector, which ORs the stub id into
# the last instruction. Absolute addressing only, so it runs wherever it is copied.
    .globl rt_vec_template, rt_vec_template_end
rt_vec_template:
    lui     $k0, %hi(rt_exc_common)
    addiu   $k0, $k0, %lo(rt_exc_common)
    jr      $k0
    ori     $k1, $zero, 0
rt_vec_template_end:

# k1 = stub id. The frame is pushed on the exception stack (rt_exc_sp) and the C handler runs
# on the stack just below it; a nested exception taken while EXL=1 (e.g. in a handler) gets a
# frame of its own HANDLER_STACK bytes further down.
    .globl rt_exc_common
    .type rt_exc_common, @function
rt_exc_common:
    lui     $k0, %hi(rt_exc_sp)
    lw      $k0, %lo(rt_exc_sp)($k0)
    addiu   $k0, $k0, -FRAME_SIZE
    sw      $zero, 0($k0)
    sw      $1, 4($k0)
    sw      $2, 8($k0)
    sw      $3, 12($k0)
    sw      $4, 16($k0)
    sw      $5, 20($k0)
    sw      $6, 24($k0)
    sw      $7, 28($k0)
    sw      $8, 32($k0)
    sw      $9, 36($k0)
    sw      $10, 40($k0)
    sw      $11, 44($k0)
    sw      $12, 48($k0)
    sw      $13, 52($k0)
    sw      $14, 56($k0)
    sw      $15, 60($k0)
    sw      $16, 64($k0)
    sw      $17, 68($k0)
    sw      $18, 72($k0)
    sw      $19, 76($k0)
    sw      $20, 80($k0)
    sw      $21, 84($k0)
    sw      $22, 88($k0)
    sw      $23, 92($k0)
    sw      $24, 96($k0)
    sw      $25, 100($k0)
    sw      $k0, 104($k0)
    sw      $k1, 108($k0)
    sw      $28, 112($k0)
    sw      $29, 116($k0)
    sw      $30, 120($k0)
    sw      $31, 124($k0)
    mfhi    $t0
    sw      $t0, FRAME_HI($k0)
    mflo    $t0
    sw      $t0, FRAME_LO($k0)
    mfc0    $t0, $14                   # EPC
    sw      $t0, FRAME_EPC($k0)
    mfc0    $t0, $12                   # Status
    sw      $t0, FRAME_STATUS($k0)
    mfc0    $t0, $13                   # Cause
    sw      $t0, FRAME_CAUSE($k0)
    mfc0    $t0, $8                    # BadVAddr
    sw      $t0, FRAME_BADVADDR($k0)
    sw      $k1, FRAME_VECTOR($k0)
    addiu   $t0, $k0, -HANDLER_STACK   # a nested exception's frame goes below the C stack
    lui     $1, %hi(rt_exc_sp)
    sw      $t0, %lo(rt_exc_sp)($1)
    move    $s0, $k0
    move    $a0, $k0
    jal     on_exception
    addiu   $sp, $k0, -24              # (delay slot) below the frame, 8-aligned
    move    $k0, $s0
    addiu   $t0, $k0, FRAME_SIZE
    lui     $1, %hi(rt_exc_sp)
    sw      $t0, %lo(rt_exc_sp)($1)
    lw      $t0, FRAME_HI($k0)
    mthi    $t0
    lw      $t0, FRAME_LO($k0)
    mtlo    $t0
    lw      $t0, FRAME_STATUS($k0)
    mtc0    $t0, $12
    lw      $t0, FRAME_EPC($k0)
    mtc0    $t0, $14
    lw      $1, 4($k0)
    lw      $2, 8($k0)
    lw      $3, 12($k0)
    lw      $4, 16($k0)
    lw      $5, 20($k0)
    lw      $6, 24($k0)
    lw      $7, 28($k0)
    lw      $8, 32($k0)
    lw      $9, 36($k0)
    lw      $10, 40($k0)
    lw      $11, 44($k0)
    lw      $12, 48($k0)
    lw      $13, 52($k0)
    lw      $14, 56($k0)
    lw      $15, 60($k0)
    lw      $16, 64($k0)
    lw      $17, 68($k0)
    lw      $18, 72($k0)
    lw      $19, 76($k0)
    lw      $20, 80($k0)
    lw      $21, 84($k0)
    lw      $22, 88($k0)
    lw      $23, 92($k0)
    lw      $24, 96($k0)
    lw      $25, 100($k0)
    lw      $28, 112($k0)
    lw      $29, 116($k0)
    lw      $30, 120($k0)
    lw      $31, 124($k0)
    ehb
    eret
    .size rt_exc_common, . - rt_exc_common

# u32 run_in_mode(u32 ksu, u32 (*fn)(u32), u32 arg)
    .globl run_in_mode
    .type run_in_mode, @function
run_in_mode:
    addiu   $sp, $sp, -32
    sw      $ra, 28($sp)
    sw      $a0, 32($sp)
    sw      $a1, 36($sp)
    jal     map_low
    sw      $a2, 40($sp)
    lw      $a0, 32($sp)
    lw      $a1, 36($sp)
    lw      $a2, 40($sp)
    lw      $ra, 28($sp)
    addiu   $sp, $sp, 32
    lui     $t0, %hi(rt_kctx)
    addiu   $t0, $t0, %lo(rt_kctx)
    sw      $s0, 0($t0)
    sw      $s1, 4($t0)
    sw      $s2, 8($t0)
    sw      $s3, 12($t0)
    sw      $s4, 16($t0)
    sw      $s5, 20($t0)
    sw      $s6, 24($t0)
    sw      $s7, 28($t0)
    sw      $gp, 32($t0)
    sw      $sp, 36($t0)
    sw      $fp, 40($t0)
    sw      $ra, 44($t0)
    lui     $t1, 0x1fff
    ori     $t1, $t1, 0xffff
    and     $t2, $a1, $t1
    mtc0    $t2, $14                   # EPC = fn through useg
    mfc0    $t3, $12
    li      $t4, ~0x1e                 # clear KSU, ERL, EXL
    and     $t3, $t3, $t4
    andi    $a0, $a0, 3
    sll     $a0, $a0, 3
    or      $t3, $t3, $a0
    ori     $t3, $t3, 2                # EXL until eret
    mtc0    $t3, $12
    la      $sp, rt_user_stack_top
    and     $sp, $sp, $t1
    addiu   $sp, $sp, -16
    la      $ra, rt_user_exit
    and     $ra, $ra, $t1
    move    $a0, $a2
    ehb
    eret
    .size run_in_mode, . - run_in_mode

    .globl rt_user_exit
rt_user_exit:
    syscall 0xfffff                    # on_exception returns to run_in_mode's caller
1:  b       1b
    nop
