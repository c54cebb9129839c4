/* teachos: physical frames, per-process page tables, demand-zero and copy-on-write pages,
 * and the kernel side of the software-managed TLB.
 *
 * Page tables are two-level, walked by the refill handler in entry.S:
 *   pgd[VA >> 22]            -> a page table (kseg0 pointer; zero_pt when the 4 MiB are empty)
 *   pt[(VA >> 12) & 1023]    -> a PTE in EntryLo format: PFN << 6 | C | D | V (G = 0)
 * An even/odd pair of PTEs is one TLB entry. PTE 0 means "not present". */
#include "kernel.h"

/* The user image (linker script): its addresses are user virtual addresses, and also the
 * physical addresses where the image is loaded, so every process maps them 1:1. */
extern char _utext_start[], _utext_end[], _udata_start[], _udata_end[];
extern char _ubss_start[], _ubss_end[], _user_end[];

u32 zero_pt[1024] __attribute__((aligned(4096))); /* stays all zero: "nothing mapped here" */
int hv_tlb;                                        /* refill through HC_TLBWRITE */

static u32 first_pfn, next_pfn, end_pfn; /* the frame pool: [first_pfn, end_pfn) */
static u32 free_list;                    /* freed frames, linked through their first word */
static u32 nused;

#define KVA(pfn) ((u32 *)(KSEG0 | ((pfn) << PAGE_SHIFT)))
#define UTEXT_START ((u32)_utext_start)
#define UTEXT_END ((u32)_utext_end)
#define UDATA_START ((u32)_udata_start)
#define UDATA_END ((u32)_udata_end)
#define UBSS_START ((u32)_ubss_start)
#define UBSS_END ((u32)_ubss_end)
#define PAGE_UP(x) (((x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))

void vm_init(u32 memsize) {
    first_pfn = PAGE_UP((u32)_user_end) >> PAGE_SHIFT;
    if (memsize > 0x10000000u) memsize = 0x10000000u; /* what kseg0 reaches on a Malta */
    end_pfn = memsize >> PAGE_SHIFT;
    if (end_pfn < first_pfn + 256) panic("only %u KiB of RAM", memsize >> 10);
    next_pfn = first_pfn;
}

u32 frames_total(void) { return end_pfn - first_pfn; }
u32 frames_free(void) { return end_pfn - first_pfn - nused; }

static u32 frame_get(void) {
    u32 pfn;
    if (free_list) {
        pfn = free_list;
        free_list = *KVA(pfn);
    } else if (next_pfn < end_pfn) {
        pfn = next_pfn++;
    } else {
        return 0;
    }
    nused++;
    return pfn;
}

u32 frame_alloc(void) {
    u32 pfn = frame_get();
    if (pfn) {
        u32 *p = KVA(pfn);
        for (u32 i = 0; i < 1024; i += 4) p[i] = p[i + 1] = p[i + 2] = p[i + 3] = 0;
    }
    return pfn;
}

void frame_free(u32 pfn) {
    if (pfn < first_pfn || pfn >= end_pfn) panic("freeing frame 0x%x", pfn);
    *KVA(pfn) = free_list;
    free_list = pfn;
    nused--;
}

/* ---- The TLB -------------------------------------------------------------------------------- */

u32 tlb_entries;

void tlb_init(void) {
    tlb_entries = ((mfc0(CP0_CONFIG1) >> 25) & 63) + 1;
    mtc0(CP0_PAGEMASK, 0);
    mtc0(CP0_WIRED, 0);
    for (u32 i = 0; i < tlb_entries; i++) {
        /* Distinct kseg0 VPN2s never match a mapped address; V = 0 anyway. */
        mtc0(CP0_ENTRYHI, KSEG0 + (i << 13));
        mtc0(CP0_ENTRYLO0, 0);
        mtc0(CP0_ENTRYLO1, 0);
        mtc0(CP0_INDEX, i);
        tlbwi();
    }
    mtc0(CP0_ENTRYHI, 0);
}

/* Switch address spaces: the refill handler's page directory and the ASID. No flush: the
 * entries of other processes stay in the TLB, tagged with their own ASIDs. */
void vm_switch(struct proc *p) {
    cur_pgdir = p->pgd;
    cur_asid = p->pid;
    cp0_write(CP0_ENTRYHI, CP_ENTRYHI, p->pid);
}

/* After a PTE of the running process changed: rewrite its TLB entry if it has one. */
static void tlb_update(struct proc *p, u32 va) {
    if (p != curproc) return;
    u32 *pt = (u32 *)p->pgd[va >> 22];
    u32 *pair = &pt[(va >> PAGE_SHIFT) & 1022];
    cp0_write(CP0_ENTRYHI, CP_ENTRYHI, (va & ~0x1FFFu) | p->pid);
    tlbp();
    if (!(cp0_read(CP0_INDEX, CP_INDEX) & 0x80000000u)) {
        cp0_write(CP0_ENTRYLO0, CP_ENTRYLO0, pair[0]);
        cp0_write(CP0_ENTRYLO1, CP_ENTRYLO1, pair[1]);
        cp0_write(CP0_PAGEMASK, CP_PAGEMASK, 0);
        tlbwi();
    }
    cp0_write(CP0_ENTRYHI, CP_ENTRYHI, p->pid);
}

/* ---- Address spaces --------------------------------------------------------------------- */

enum region { R_NONE, R_TEXT, R_DATA, R_ZERO };

static enum region region_of(struct proc *p, u32 va) {
    if (va >= UTEXT_START && va < UTEXT_END) return R_TEXT;
    if (va >= UDATA_START && va < UDATA_END) return R_DATA;
    if (va >= UBSS_START && va < UBSS_END) return R_ZERO;
    if (va >= p->heap_base && va < PAGE_UP(p->brk)) return R_ZERO;
    if (va >= USER_STACK_TOP - USER_STACK_MAX && va < USER_STACK_TOP) return R_ZERO;
    return R_NONE;
}

/* The PTE slot of va, allocating its page table if `create`; 0 if none (or out of memory). */
static u32 *pte_slot(struct proc *p, u32 va, int create) {
    u32 *pt = (u32 *)p->pgd[va >> 22];
    if (pt == zero_pt) {
        if (!create) return 0;
        u32 pfn = frame_alloc();
        if (!pfn) return 0;
        pt = KVA(pfn);
        p->pgd[va >> 22] = (u32)pt;
        p->pt_pages++;
    }
    return &pt[(va >> PAGE_SHIFT) & 1023];
}

int vm_create(struct proc *p) {
    u32 pfn = frame_alloc();
    if (!pfn) return -1;
    p->pgd = KVA(pfn);
    p->pt_pages = 1;
    for (u32 i = 0; i < 1024; i++) p->pgd[i] = (u32)zero_pt;
    /* Text and read-only data: the image's own frames, shared, never writable. */
    for (u32 va = UTEXT_START; va < UTEXT_END; va += PAGE_SIZE) {
        u32 *pte = pte_slot(p, va, 1);
        if (!pte) return -1;
        *pte = PTE(va >> PAGE_SHIFT, ELO_V);
    }
    /* Initialised data: the image's frames too, but copy-on-write (D = 0 until copied). */
    for (u32 va = UDATA_START; va < UDATA_END; va += PAGE_SIZE) {
        u32 *pte = pte_slot(p, va, 1);
        if (!pte) return -1;
        *pte = PTE(va >> PAGE_SHIFT, ELO_V);
    }
    /* .bss, heap and stack: nothing yet, demand-zero pages on first touch. */
    p->heap_base = p->brk = PAGE_UP(UBSS_END);
    return 0;
}

void vm_destroy(struct proc *p) {
    for (u32 i = 0; i < 1024; i++) {
        u32 *pt = (u32 *)p->pgd[i];
        if (pt == zero_pt) continue;
        for (u32 j = 0; j < 1024; j++)
            if ((pt[j] & ELO_V) && ELO_PFN(pt[j]) >= first_pfn) frame_free(ELO_PFN(pt[j]));
        frame_free(((u32)pt & 0x1FFFFFFFu) >> PAGE_SHIFT);
    }
    frame_free(((u32)p->pgd & 0x1FFFFFFFu) >> PAGE_SHIFT);
    p->pgd = 0;
}

/* Make va present: a fresh zeroed page if it lies in a demand-zero region. 0, or VM_SEGV when
 * nothing may be mapped there, or VM_NOMEM. */
static int make_present(struct proc *p, u32 va) {
    u32 *pte = pte_slot(p, va, 0);
    if (pte && (*pte & ELO_V)) {
        tlb_update(p, va); /* the TLB still had the old, invalid pair */
        return 0;
    }
    if (region_of(p, va) != R_ZERO) return VM_SEGV;
    pte = pte_slot(p, va, 1);
    u32 pfn = pte ? frame_alloc() : 0;
    if (!pfn) return VM_NOMEM;
    *pte = PTE(pfn, ELO_V | ELO_D);
    p->zero_pages++;
    kstats.demand_zero++;
    tlb_update(p, va);
    return 0;
}

/* Make a present page writable: copy a copy-on-write page, refuse read-only text. */
static int make_writable(struct proc *p, u32 va) {
    u32 *pte = pte_slot(p, va, 0);
    if (!pte || !(*pte & ELO_V)) return VM_SEGV;
    if (*pte & ELO_D) {
        tlb_update(p, va);
        return 0;
    }
    if (region_of(p, va) != R_DATA) return VM_SEGV;
    u32 pfn = frame_get();
    if (!pfn) return VM_NOMEM;
    u32 *dst = KVA(pfn), *src = KVA(ELO_PFN(*pte));
    for (u32 i = 0; i < 1024; i++) dst[i] = src[i];
    *pte = PTE(pfn, ELO_V | ELO_D);
    p->cow_copies++;
    kstats.cow_copies++;
    tlb_update(p, va);
    return 0;
}

/* TLB invalid (TLBL/TLBS) or TLB modified (Mod) in user mode: 0 when the access can be
 * retried (a store to a copy-on-write page then comes back as Mod), else VM_SEGV/VM_NOMEM. */
int vm_fault(struct proc *p, u32 code, u32 va) {
    return code == EXC_MOD ? make_writable(p, va) : make_present(p, va);
}

/* The kernel reaches user memory through the page table, never through the TLB: a kseg0
 * pointer to the byte at va, with the page made present (and writable if asked). */
u32 *vm_user_ptr(struct proc *p, u32 va, int write) {
    if (va >= KSEG0) return 0;
    u32 *pte = pte_slot(p, va, 0);
    if (!pte || !(*pte & ELO_V)) {
        if (make_present(p, va)) return 0;
        pte = pte_slot(p, va, 0);
    }
    if (write && !(*pte & ELO_D) && make_writable(p, va)) return 0;
    return (u32 *)(KSEG0 | (ELO_PFN(*pte) << PAGE_SHIFT) | (va & (PAGE_SIZE - 1)));
}

int vm_sbrk(struct proc *p, s32 incr, u32 *old) {
    if (incr < 0 || (u32)incr > p->heap_base + USER_HEAP_MAX - p->brk) return -1;
    *old = p->brk;
    p->brk += (u32)incr;
    return 0;
}
