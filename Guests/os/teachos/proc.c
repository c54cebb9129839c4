/* teachos: processes, the round-robin scheduler, traps and system calls. */
#include "kernel.h"

struct proc procs[NPROC];
struct proc *curproc;
struct trapframe *cur_tf;
u32 *cur_pgdir = zero_pt;
u32 cur_asid;
int idle_mode;
int live_echo; /* boot argument "live": echo process output at once on timing: lines */

static int nprocs, nlive;
static int last_user_pid; /* the ASID of the last return to user mode */
static struct trapframe idle_tf;
static u32 idle_stack[256] __attribute__((aligned(16)));
static u32 compare_next;

extern char u_start[]; /* user_crt.S: calls main(arg), then exit() */

static void shutdown(void);

/* ---- Processes -------------------------------------------------------------------------- */

/* A process's console output is kept until the summary, so that concurrent processes
 * cannot interleave their lines differently from run to run. */
static void out_putc(struct proc *p, char c) {
    if (live_echo) {
        if (p->outcol == 0) kprintf("timing: live [%d %s] ", p->pid, p->name);
        kputc(c);
    }
    p->outcol = c == '\n' ? 0 : p->outcol + 1;
    if (p->outlen < OUTBUF)
        p->out[p->outlen++] = c;
    else
        p->outlost++;
}

static void out_puts(struct proc *p, const char *s) {
    while (*s) out_putc(p, *s++);
}

static void out_hex(struct proc *p, u32 v) {
    out_puts(p, "0x");
    for (int i = 28; i >= 0; i -= 4) out_putc(p, "0123456789abcdef"[(v >> i) & 15]);
}

void proc_spawn(const char *name, u32 entry, u32 arg) {
    if (nprocs == NPROC) panic("too many processes");
    struct proc *p = &procs[nprocs++];
    p->pid = nprocs; /* pid = ASID, never reused during a run */
    p->name = name;
    p->killed = -1;
    if (vm_create(p)) panic("out of memory creating %s", name);
    p->tf.epc = (u32)u_start;
    p->tf.r[4] = arg;
    p->tf.r[5] = entry;
    p->tf.r[29] = USER_STACK_TOP;
    p->tf.status = ST_IM7 | ST_KSU_USER | ST_EXL | ST_IE; /* eret: user mode, interrupts on */
    p->state = P_RUNNABLE;
    nlive++;
    kstats.processes++;
    kprintf("spawn: pid %d %s\n", p->pid, name);
}

static void proc_exit(struct proc *p, int status) {
    p->state = P_DEAD;
    p->status = status;
    vm_destroy(p);
    kstats.exited++;
    if (--nlive == 0) shutdown();
}

static const char *const fault_names[32] = {
    [EXC_INT] = "interrupt",
    [EXC_MOD] = "write to a read-only page",
    [EXC_TLBL] = "segmentation fault (load or fetch)",
    [EXC_TLBS] = "segmentation fault (store)",
    [EXC_ADEL] = "address error (load or fetch)",
    [EXC_ADES] = "address error (store)",
    [EXC_SYS] = "system call from a delay slot",
    [EXC_BP] = "breakpoint",
    [EXC_RI] = "reserved instruction",
    [EXC_CPU] = "coprocessor unusable",
    [EXC_OV] = "integer overflow",
    [EXC_TR] = "trap",
};

static const char *const exc_names[32] = {
    "Int", "Mod", "TLBL", "TLBS", "AdEL", "AdES", "IBE", "DBE", "Sys", "Bp", "RI", "CpU",
    "Ov", "Tr", "MSAFPE", "FPE", "Exc16", "Exc17", "C2E", "TLBRI", "TLBXI", "MSADis", "MDMX",
    "WATCH", "MCheck", "Thread", "DSPDis", "Exc27", "Exc28", "Exc29", "CacheErr", "Exc31",
};

/* Kill p for exception `code` (reason: why, if not the exception's name). */
static void proc_kill(struct proc *p, struct trapframe *tf, u32 code, const char *reason) {
    if (p->outcol) out_putc(p, '\n');
    out_puts(p, "kernel: killed: ");
    out_puts(p, reason ? reason : fault_names[code] ? fault_names[code] : "unexpected exception");
    out_puts(p, ", epc ");
    out_hex(p, tf->epc);
    if (code == EXC_MOD || code == EXC_TLBL || code == EXC_TLBS || code == EXC_ADEL ||
        code == EXC_ADES) {
        out_puts(p, ", address ");
        out_hex(p, tf->badvaddr);
    }
    out_putc(p, '\n');
    p->killed = (int)code;
    kstats.killed++;
    proc_exit(p, -1);
}

/* ---- Scheduling ------------------------------------------------------------------------- */

/* Round robin: the first runnable process after `after` in pid order, wrapping around. */
static struct proc *pick_next(int after_pid) {
    for (int i = 0; i < nprocs; i++) {
        struct proc *p = &procs[(after_pid + i) % nprocs];
        if (p->state == P_RUNNABLE) return p;
    }
    return 0;
}

/* Make p (0: the idle loop) the running context; returns the frame for entry.S to resume. */
static struct trapframe *dispatch(struct proc *p) {
    if (!p) {
        if (curproc || cur_tf != &idle_tf) kstats.idle_entries++;
        curproc = 0;
        idle_tf.epc = idle_mode == IDLE_WAIT        ? (u32)idle_wait
                      : idle_mode == IDLE_HYPERCALL ? (u32)idle_hypercall
                                                    : (u32)idle_spin;
        idle_tf.r[29] = (u32)&idle_stack[256];
        idle_tf.status = ST_IM7 | ST_EXL | ST_IE; /* kernel mode, interrupts on after eret */
        cur_tf = &idle_tf;
        return &idle_tf;
    }
    if (p->pid != last_user_pid) {
        kstats.context_switches++;
        p->switches_in++;
        last_user_pid = p->pid;
    }
    curproc = p;
    vm_switch(p);
    cur_tf = &p->tf;
    return &p->tf;
}

/* Program the next timer interrupt at compare_next, or a tick from now if Count has already
 * passed it (a slow host, or a long stretch in the kernel): a Compare value just behind Count
 * would only match again after 2^32 cycles. Writing Compare also clears Cause.TI. */
static void timer_set(void) {
    for (;;) {
        mtc0(CP0_COMPARE, compare_next);
        u32 now = mfc0(CP0_COUNT);
        if ((s32)(compare_next - now) > 0) return;
        compare_next = now + TICK_CYCLES;
    }
}

void timer_init(void) {
    compare_next = mfc0(CP0_COUNT) + TICK_CYCLES;
    timer_set();
}

static void timer_tick(void) {
    compare_next += TICK_CYCLES;
    timer_set();
    kstats.timer_interrupts++;
    kstats.ticks++;
    if (curproc)
        curproc->ticks++;
    else
        kstats.idle_ticks++;
    for (int i = 0; i < nprocs; i++)
        if (procs[i].state == P_SLEEPING && (s32)(kstats.ticks - procs[i].wake_tick) >= 0)
            procs[i].state = P_RUNNABLE;
}

void sched_start(void) {
    cur_tf = &idle_tf;
    if (pv_comm) resume_comm(dispatch(pick_next(0)));
    resume(dispatch(pick_next(0)));
}

/* ---- System calls ----------------------------------------------------------------------- */

static s32 sys_write(struct proc *p, u32 fd, u32 buf, u32 len) {
    if (fd != 1 && fd != 2) return -1;
    if (len > OUTBUF) len = OUTBUF; /* the kernel runs with interrupts off: keep it short */
    for (u32 i = 0; i < len; i++) {
        u8 *c = (u8 *)vm_user_ptr(p, buf + i, 0);
        if (!c) return i ? (s32)i : -1;
        out_putc(p, (char)*c);
    }
    return (s32)len;
}

static struct trapframe *syscall(struct proc *p, struct trapframe *tf) {
    tf->epc += 4; /* past the syscall instruction (never in a delay slot: see trap) */
    u32 a0 = tf->r[4], a1 = tf->r[5], a2 = tf->r[6];
    s32 r = 0;
    switch (tf->r[2]) {
    case SYS_EXIT:
        proc_exit(p, (s32)a0);
        return dispatch(pick_next(p->pid));
    case SYS_WRITE: r = sys_write(p, a0, a1, a2); break;
    case SYS_GETPID: r = p->pid; break;
    case SYS_YIELD:
        tf->r[2] = 0;
        return dispatch(pick_next(p->pid));
    case SYS_SLEEP:
        tf->r[2] = 0;
        if (a0) {
            p->state = P_SLEEPING;
            p->wake_tick = kstats.ticks + a0;
        }
        return dispatch(pick_next(p->pid));
    case SYS_SBRK: {
        u32 old;
        r = vm_sbrk(p, (s32)a0, &old) ? -1 : (s32)old;
        break;
    }
    case SYS_TIME: r = (s32)kstats.ticks; break;
    default: r = -1; break;
    }
    tf->r[2] = (u32)r;
    return tf;
}

/* ---- Traps ------------------------------------------------------------------------------ */

/* Called by entry.S for every exception but the TLB refill, with the interrupted registers
 * in *tf (a user process, or the idle loop). Returns the context to resume. */
struct trapframe *trap(struct trapframe *tf) {
    u32 code = CAUSE_EXC(tf->cause);
    struct proc *p = curproc;
    kstats.exceptions++;
    if (code == EXC_INT) {
        kstats.interrupts++;
        if (tf->cause & CAUSE_IP7) timer_tick();
        /* Every tick ends the time slice: round robin from the current (or last) process. */
        return dispatch(pick_next(p ? p->pid : last_user_pid));
    }
    if (!p) panic("exception %u in the idle loop, epc 0x%08x", code, tf->epc);
    int r = VM_SEGV;
    switch (code) {
    case EXC_SYS:
        kstats.syscalls++;
        p->syscalls++;
        if (tf->cause & CAUSE_BD) break;
        return syscall(p, tf);
    case EXC_TLBL:
    case EXC_TLBS:
        kstats.tlb_invalid++;
        p->tlb_invalid++;
        if ((r = vm_fault(p, code, tf->badvaddr)) == 0) return tf;
        break;
    case EXC_MOD:
        kstats.tlb_modified++;
        p->tlb_modified++;
        if ((r = vm_fault(p, code, tf->badvaddr)) == 0) return tf;
        break;
    }
    proc_kill(p, tf, code, r == VM_NOMEM ? "out of memory" : 0);
    return dispatch(pick_next(p->pid));
}

/* ---- The end ---------------------------------------------------------------------------- */

static void print_output(struct proc *p) {
    int bol = 1;
    for (u32 i = 0; i < p->outlen; i++) {
        if (bol) {
            if (p->outlen - i >= 7 && !kstrncmp(&p->out[i], "timing:", 7)) {
                kprintf("timing: [%d %s]", p->pid, p->name);
                i += 7;
                if (i == p->outlen) break;
            } else {
                kprintf("[%d %s] ", p->pid, p->name);
            }
        }
        kputc(p->out[i]);
        bol = p->out[i] == '\n';
    }
    if (!bol) kputc('\n');
    if (p->outlost) kprintf("[%d %s] (%u more bytes lost)\n", p->pid, p->name, p->outlost);
}

static void shutdown(void) {
    kprintf("teachos: all %d processes have ended\n", nprocs);
    for (int i = 0; i < nprocs; i++) print_output(&procs[i]);
    kprintf("summary: pid name       status       syscalls zero-pages  cow pt-pages tlb-invalid "
            "tlb-mod\n");
    for (int i = 0; i < nprocs; i++) {
        struct proc *p = &procs[i];
        kprintf("         %3d %-10s ", p->pid, p->name);
        if (p->killed >= 0)
            kprintf("killed %-5s", exc_names[p->killed]);
        else
            kprintf("exit %-7d", p->status);
        kprintf(" %8u %10u %4u %8u %11u %7u\n", p->syscalls, p->zero_pages, p->cow_copies,
                p->pt_pages, p->tlb_invalid, p->tlb_modified);
    }
    for (int i = 0; i < nprocs; i++)
        kprintf("timing: pid %2d %-10s ticks %5u, switched in %5u times\n", procs[i].pid,
                procs[i].name, procs[i].ticks, procs[i].switches_in);
    kprintf("kstats: syscalls %u, tlb-invalid %u, tlb-modified %u, demand-zero %u, "
            "cow-copies %u, killed %u\n",
            kstats.syscalls, kstats.tlb_invalid, kstats.tlb_modified, kstats.demand_zero,
            kstats.cow_copies, kstats.killed);
    kprintf("timing: kstats: tlb-refills %u, timer-interrupts %u, context-switches %u, "
            "exceptions %u, interrupts %u, idle-entries %u, idle-ticks %u, hypercalls %u\n",
            kstats.tlb_refills, kstats.timer_interrupts, kstats.context_switches,
            kstats.exceptions, kstats.interrupts, kstats.idle_entries, kstats.idle_ticks,
            kstats.hypercalls);
    if (frames_free() == frames_total())
        kprintf("memory: all %u frames free again\n", frames_total());
    else
        kprintf("memory: LEAK: %u of %u frames still in use\n", frames_total() - frames_free(),
                frames_total());
    kprintf("teachos: powering off\n");
    machine_off();
}
