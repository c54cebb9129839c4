# Entry point of every guest program: a stack, a clean .bss, main(), power off.
    .set noreorder
    .section .text.start, "ax"
    .globl _start
    .type _start, @function
_start:
    la      $sp, rt_stack_top
    la      $t0, __bss_start
    la      $t1, __bss_end
1:  beq     $t0, $t1, 2f
    nop
    sw      $zero, 0($t0)
    b       1b
    addiu   $t0, $t0, 4
2:  la      $sp, rt_stack_top          # the stack is in .bss: set it again after clearing
    la      $t0, rt_exc_stack_top
    la      $t1, rt_exc_sp
    sw      $t0, 0($t1)
    jal     main
    addiu   $sp, $sp, -16              # (delay slot) the o32 argument save area
    jal     power_off
    nop
3:  b       3b
    nop
    .size _start, . - _start

    .bss
    .align 4
rt_stack:
    .space  0x10000
rt_stack_top:
    .space  0x10
    .globl rt_exc_stack_top
rt_exc_stack:
    .space  0x4000
rt_exc_stack_top:
    .space  0x10
    .globl rt_user_stack_top
rt_user_stack:
    .space  0x4000
rt_user_stack_top:
    .space  0x10
