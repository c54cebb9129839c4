# teachos user runtime: process entry and the system call wrappers (user mode, in the user
# image at 0x00400000 like every user_* file).
#include "abi.h"

    .set noreorder
    .text

# Every process starts here (the kernel's eret): a0 = argument, a1 = main, sp = stack top.
    .globl u_start
    .type u_start, @function
u_start:
    jalr    $a1                        # main(arg)
    addiu   $sp, $sp, -16              # (delay slot) the o32 argument area
    jal     exit                       # exit(main's result)
    move    $a0, $v0
    .size u_start, . - u_start

# System call wrappers: v0 = number, arguments already in a0..a2, result in v0.
    .macro SYSCALL name, number
    .globl \name
    .type \name, @function
\name:
    addiu   $v0, $zero, \number
    syscall
    jr      $ra
    nop
    .size \name, . - \name
    .endm

    SYSCALL exit, SYS_EXIT
    SYSCALL write, SYS_WRITE
    SYSCALL getpid, SYS_GETPID
    SYSCALL yield, SYS_YIELD
    SYSCALL sleep, SYS_SLEEP
    SYSCALL sbrk, SYS_SBRK
    SYSCALL time, SYS_TIME
