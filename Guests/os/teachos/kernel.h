/* teachos kernel: shared declarations. */
#ifndef TEACHOS_KERNEL_H
#define TEACHOS_KERNEL_H

#include "mips.h"
#include "abi.h"

#define NPROC 16          /* process table slots; pid = slot + 1 = ASID */
#define OUTBUF 1024       /* console output kept per process until the summary */
#define TICK_CYCLES 100000 /* Count cycles per timer tick (1 ms at QEMU's 100 MHz Count) */

/* ---- Trap frame: the registers of an interrupted context (offsets used by entry.S) ---- */
#define TF_R 0 /* r[0..31]; r[0], r[26] (k0) and r[27] (k1) are not saved */
#define TF_HI 128
#define TF_LO 132
#define TF_EPC 136
#define TF_STATUS 140
#define TF_CAUSE 144
#define TF_BADVADDR 148
#define TF_SIZE 152

/* Offsets in struct kstats used by the assembly refill handlers. */
#define KSTATS_TLB_REFILLS 16

#ifndef __ASSEMBLER__

struct trapframe {
    u32 r[32];
    u32 hi, lo, epc, status, cause, badvaddr;
};

/* The kernel's own counters, at the symbol `kstats`, for outside tests. Layout version 1:
 * every field is a little-endian u32 at the offset shown; see Docs/guest-os.md. */
struct kstats {
    u32 magic;            /*  0: 'KST1' = 0x3154534B */
    u32 version;          /*  4: 1 */
    u32 size;             /*  8: sizeof(struct kstats) */
    u32 syscalls;         /* 12: Sys exceptions taken from user mode */
    u32 tlb_refills;      /* 16: entries into the refill vector (EBase + 0x000) */
    u32 tlb_invalid;      /* 20: TLBL/TLBS exceptions through EBase + 0x180 */
    u32 tlb_modified;     /* 24: Mod exceptions */
    u32 timer_interrupts; /* 28: interrupts with Cause.IP7 (the Count/Compare timer) */
    u32 context_switches; /* 32: returns to user mode with another ASID than the last one */
    u32 exceptions;       /* 36: every entry through EBase + 0x180 (interrupts included) */
    u32 interrupts;       /* 40: Int exceptions */
    u32 idle_entries;     /* 44: times the kernel went idle (no runnable process) */
    u32 idle_ticks;       /* 48: timer interrupts that arrived while idle */
    u32 demand_zero;      /* 52: pages allocated and zeroed on first touch */
    u32 cow_copies;       /* 56: copy-on-write pages copied */
    u32 killed;           /* 60: processes killed by the kernel */
    u32 hypercalls;       /* 64: hypercalls issued by C code (the refill path not included) */
    u32 ticks;            /* 68: timer ticks since boot (= timer_interrupts) */
    u32 processes;        /* 72: processes created */
    u32 exited;           /* 76: processes that exited or were killed */
};
extern struct kstats kstats;

enum pstate { P_FREE, P_RUNNABLE, P_SLEEPING, P_DEAD };

struct proc {
    struct trapframe tf;
    int pid; /* also the ASID */
    enum pstate state;
    const char *name;
    u32 *pgd;                 /* page directory (kseg0), 1024 entries of page-table pointers */
    u32 heap_base, brk;       /* the sbrk heap: [heap_base, brk) */
    u32 wake_tick;            /* when sleeping */
    int status;               /* exit status */
    int killed;               /* the exception code that killed it, or -1 */
    /* per-process counters: deterministic ones ... */
    u32 syscalls, zero_pages, cow_copies, pt_pages, tlb_invalid, tlb_modified;
    /* ... and timing-dependent ones */
    u32 ticks, switches_in;
    u32 outlen, outlost, outcol; /* outcol: characters on the current line */
    char out[OUTBUF];
};

extern struct proc procs[NPROC];
extern struct proc *curproc;              /* the running process, or 0 when idle */
extern struct trapframe *cur_tf;          /* where entry.S saves the interrupted registers */
extern u32 *cur_pgdir;                    /* page directory walked by the refill handler */
extern u32 cur_asid;                      /* ASID of the running process (hypercall refill) */

/* entry.S */
void teachos_start(void);
__attribute__((noreturn)) void resume(struct trapframe *tf);
extern const u32 refill_bare[], refill_bare_end[];
extern const u32 refill_hv_stub[], refill_hv_stub_end[];
extern const u32 general_stub[], general_stub_end[];
extern const u32 refill_comm[], refill_comm_end[];
extern const u32 general_comm_stub[], general_comm_stub_end[];
__attribute__((noreturn)) void resume_comm(struct trapframe *tf);
extern u32 commpage[1024]; /* HC_COMMPAGE's page (abi.h: CP_* offsets) */
void idle_spin(void);
void idle_wait(void);
void idle_hypercall(void);
u32 hypercall(u32 fn, u32 a1, u32 a2, u32 a3);

/* console.c */
void kputc(int c);
void kputs(const char *s);
void kprintf(const char *fmt, ...);
void kflush(void);
__attribute__((noreturn)) void machine_off(void);
__attribute__((noreturn)) void panic(const char *fmt, ...);
extern int hv_console;
void *kmemset(void *d, int c, u32 n);
void *kmemcpy(void *d, const void *s, u32 n);
int kstrncmp(const char *a, const char *b, u32 n);
u32 kstrlen(const char *s);

/* main.c: the VMM mapped commpage (pv=comm): the CP0 registers it holds are read and written
 * there instead of with mfc0/mtc0 (a write takes effect at the next trap into the VMM). */
extern int pv_comm;
#define COMM(off) (*(volatile u32 *)((u32)commpage + (off)))
#define cp0_read(reg, off) (pv_comm ? COMM(off) : mfc0(reg))
#define cp0_write(reg, off, v)                                                           \
    do {                                                                                 \
        if (pv_comm)                                                                     \
            COMM(off) = (v);                                                             \
        else                                                                             \
            mtc0(reg, v);                                                                \
    } while (0)

/* vm.c */
void vm_init(u32 memsize);
u32 frame_alloc(void); /* a zeroed frame's PFN, or 0 when memory is exhausted */
void frame_free(u32 pfn);
u32 frames_free(void);
u32 frames_total(void);
int vm_create(struct proc *p);
void vm_destroy(struct proc *p);
#define VM_SEGV (-1)  /* nothing may be mapped there, or not written */
#define VM_NOMEM (-2) /* out of physical frames */
int vm_fault(struct proc *p, u32 code, u32 va); /* 0, VM_SEGV or VM_NOMEM */
u32 *vm_user_ptr(struct proc *p, u32 va, int write); /* kseg0 pointer to a user byte, or 0 */
int vm_sbrk(struct proc *p, s32 incr, u32 *old);
void tlb_init(void);
void vm_switch(struct proc *p);
extern u32 zero_pt[];
extern int hv_tlb;

/* proc.c */
void proc_init(void);
void proc_spawn(const char *name, u32 entry, u32 arg);
struct trapframe *trap(struct trapframe *tf);
__attribute__((noreturn)) void sched_start(void);
void timer_init(void);
extern int idle_mode; /* effective */

enum { IDLE_SPIN, IDLE_WAIT, IDLE_HYPERCALL };

#endif
#endif
