/* teachos ABI shared by the kernel, the user programs and the assembly files.
 *
 * System calls: v0 = number, a0..a2 = arguments, `syscall`; the result comes back in v0
 * (a negative value is an error). Every other register is preserved.
 *
 * Hypercalls (only under Magritte's VMM; see Docs/hypercalls.md): a0 = function,
 * a1..a3 = arguments, the instruction `mfc0 $v0, $22, 7`; the result comes back in v0.
 * On bare hardware that register does not exist and reads 0, which is how the probe fails. */
#ifndef TEACHOS_ABI_H
#define TEACHOS_ABI_H

#define SYS_EXIT 0   /* exit(status)                    never returns               */
#define SYS_WRITE 1  /* write(fd, buf, len) -> len      fd 1 or 2: the console      */
#define SYS_GETPID 2 /* getpid() -> pid                                             */
#define SYS_YIELD 3  /* yield() -> 0                    to the next runnable process */
#define SYS_SLEEP 4  /* sleep(ticks) -> 0               at least `ticks` timer ticks */
#define SYS_SBRK 5   /* sbrk(increment) -> old break    memory allocation (>= 0)    */
#define SYS_TIME 6   /* time() -> ticks since boot                                   */
#define NSYSCALLS 7

#define HC_PROBE 0     /* -> HC_MAGIC under the VMM, 0 on bare hardware            */
#define HC_IDLE 1      /* deschedule until the next virtual interrupt -> 0         */
#define HC_YIELD 2     /* give the physical CPU away, stay runnable -> 0           */
#define HC_CONSOLE 3   /* a1 = kseg0 pointer, a2 = length -> length written        */
#define HC_TLBWRITE 4  /* a1 = pointer to struct hc_tlb records, a2 = count -> 0   */
#define HC_MAGIC 0x4D475254 /* 'MGRT' */

/* One record of HC_TLBWRITE (20 bytes): index = -1 means a random slot (like tlbwr). */
#define HC_TLB_INDEX 0
#define HC_TLB_ENTRYHI 4
#define HC_TLB_ENTRYLO0 8
#define HC_TLB_ENTRYLO1 12
#define HC_TLB_PAGEMASK 16
#define HC_TLB_SIZE 20

/* The user address space (the same layout in every process). */
#define USER_BASE 0x00400000u      /* the shared user image: text, then data */
#define USER_STACK_TOP 0x7FFFF000u /* initial sp; the page above is a guard  */
#define USER_STACK_MAX 0x00100000u /* 1 MiB of stack at most                 */
#define USER_HEAP_MAX 0x01000000u  /* 16 MiB of sbrk heap at most            */

#endif
