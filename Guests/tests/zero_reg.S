# $zero stays 0 whatever writes it: ALU, shifts, loads, MFHI/MFLO, MFC0, MOVN/MOVZ, LL/SC,
# JALR with rd=$0, RDHWR, EXT/INS/SEB/WSBH, CLZ, DI. Written in assembly (a .S test).
    .set noreorder
    .set noat

# BEGIN: known values in t0, t1 and t2 = &value; END name: print name and $zero
    .macro BEGIN
    li      $t0, 0x1234
    li      $t1, 5
    la      $t2, value
    .endm
    .macro END name
    la      $a0, fmt
    la      $a1, 1f
    jal     printf
    move    $a2, $zero              # (delay slot) the value of $zero right after
    .section .rodata
1:  .asciz "\name"
    .text
    .endm

    .text
    .globl main
main:
    addiu   $sp, $sp, -32
    sw      $ra, 28($sp)
    jal     install_handlers
    nop

    BEGIN
    addiu   $zero, $t0, 1
    END "addiu"
    BEGIN
    addu    $zero, $t0, $t1
    END "addu"
    BEGIN
    lui     $zero, 0x8000
    END "lui"
    BEGIN
    ori     $zero, $t0, 0xffff
    END "ori"
    BEGIN
    sll     $zero, $t0, 4
    END "sll"
    BEGIN
    rotrv   $zero, $t0, $t1
    END "rotrv"
    BEGIN
    slt     $zero, $zero, $t0
    END "slt"
    BEGIN
    lw      $zero, 0($t2)
    END "lw"
    BEGIN
    lb      $zero, 0($t2)
    END "lb"
    BEGIN
    lwl     $zero, 3($t2)
    END "lwl"
    BEGIN
    mthi    $t0
    mfhi    $zero
    END "mfhi"
    BEGIN
    mtlo    $t0
    mflo    $zero
    END "mflo"
    BEGIN
    mul     $zero, $t0, $t1
    END "mul"
    BEGIN
    mfc0    $zero, $15
    END "mfc0"
    BEGIN
    movn    $zero, $t0, $t1
    END "movn"
    BEGIN
    movz    $zero, $t0, $zero
    END "movz"
    BEGIN
    ll      $zero, 0($t2)
    END "ll"
    BEGIN
    ll      $t3, 0($t2)
    sc      $zero, 0($t2)
    END "sc"
    BEGIN
    ext     $zero, $t0, 4, 8
    END "ext"
    BEGIN
    ins     $zero, $t0, 4, 8
    END "ins"
    BEGIN
    seb     $zero, $t0
    END "seb"
    BEGIN
    wsbh    $zero, $t0
    END "wsbh"
    BEGIN
    clz     $zero, $t1
    END "clz"
    BEGIN
    rdhwr   $zero, $1
    END "rdhwr"
    BEGIN
    di      $zero
    END "di"
    BEGIN
    la      $t3, 2f
    jalr    $zero, $t3
    nop
2:  nop
    END "jalr rd=0"

    la      $a0, memfmt
    la      $t2, value
    jal     printf
    lw      $a1, 0($t2)             # (delay slot) memory after sc $zero
    lw      $ra, 28($sp)
    addiu   $sp, $sp, 32
    jr      $ra
    move    $v0, $zero

    .section .rodata
fmt:    .asciz "%-10s -> $zero = %x\n"
memfmt: .asciz "word after sc $zero (the stored value is $zero = 0): %08x\n"
    .data
    .align 2
value:  .word 0xcafef00d
