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
#define HC_COMMPAGE 5  /* a1 = guest-physical page -> 0; -2 bad address, -3 mapped   */
#define HC_MAGIC 0x4D475254 /* 'MGRT' */

/* The comm page of HC_COMMPAGE: the VMM keeps these virtual CP0 registers there (one
 * little-endian word each); the kernel reads and writes them instead of mfc0/mtc0. A write
 * takes effect at the kernel's next trap into the VMM (before it is emulated). The VMM owns
 * bytes 0..CP_VMM_BYTES-1; the rest of the page is the kernel's. */
#define CP_MAGIC 0 /* 'MGCP' = 0x5043474D */
#define CP_VERSION 4
#define CP_INDEX 8
#define CP_ENTRYLO0 12
#define CP_ENTRYLO1 16
#define CP_CONTEXT 20
#define CP_PAGEMASK 24
#define CP_BADVADDR 28
#define CP_ENTRYHI 32
#define CP_STATUS 36
#define CP_CAUSE 40
#define CP_EPC 44
#define CP_ERROREPC 48
#define CP_VMM_BYTES 52
#define CP_SCRATCH 64 /* teachos: the refill handler saves a0 here */

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
