// memscan: reads all of its guest-physical RAM (kseg0 and kseg1) and probes beyond it.
/* Isolation probe for the VMM (Tests/HypervisorTests/IsolationTests.swift).
 *
 * Boot arguments (-append): marker=HEX, the first word of the marker pair (M, ~M) to look for
 * (default 0x4d41524b); fill, to first write the pair over the program's free RAM (a positive
 * control: a filler then finds its own marker).
 *
 * It checksums every word of its RAM (the size comes in a3, as QEMU's -kernel boot passes it)
 * through kseg0 and through kseg1, counts marker pairs in its RAM outside its own image (the
 * image holds its stacks, where a spilled M could sit), then looks at guest-physical addresses
 * beyond its RAM: through kseg1 (every 64 KiB up to 256 MiB), through 4 KiB TLB pages (every
 * MiB up to 256 MiB, and beyond 512 MiB) and through a 16 MiB page pair over 0-32 MiB. It
 * prints only what is the same on bare Malta and under the VMM: checksums of its own RAM and
 * marker counts. Faulting probes are skipped by the runtime's default policy. */
#include "rt.h"

extern char _end[];
#define IMAGE_START 0x00100000u
#define PROBE_VA 0x10000000u /* useg window for the TLB probes (kernel mode, ERL = 0) */

static u32 parse_marker(const char *s) {
    u32 m = 0x4d41524bu;
    for (; s && *s; s++) {
        if (s[0] != 'm' || memcmp(s, "marker=", 7)) continue;
        m = 0;
        for (s += 7; *s && *s != ' '; s++) {
            u32 c = (u32)*s, d = c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0';
            m = m << 4 | (d & 15);
        }
        break;
    }
    return m;
}

static int has_word(const char *s, const char *w) {
    u32 n = 0;
    while (w[n]) n++;
    for (; s && *s; s++)
        if (!memcmp(s, w, n) && (s[n] == 0 || s[n] == ' ')) return 1;
    return 0;
}

/* A load that may fault: 0 when it does (the default policy skips the instruction). */
static u32 probe_load(u32 va) {
    u32 v = 0;
    PROBE("lw %0, 0(%1)", : "+r"(v) : "r"(va) : "memory");
    return v;
}

/* Leaf loops: the marker lives only in registers here. */
static u32 checksum(u32 from, u32 to) {
    u32 s = 0x12345678u;
    for (u32 a = from; a < to; a += 4) s = (s << 1 | s >> 31) ^ *(volatile u32 *)a;
    return s;
}

static u32 count_pairs(u32 from, u32 to, u32 m) {
    u32 n = 0;
    for (u32 a = from; a < to; a += 8)
        if (*(volatile u32 *)a == m && *(volatile u32 *)(a + 4) == ~m) n++;
    return n;
}

static void fill_pairs(u32 from, u32 to, u32 m) {
    for (u32 a = from; a < to; a += 8) {
        *(volatile u32 *)a = m;
        *(volatile u32 *)(a + 4) = ~m;
    }
}

static u32 probe_pair(u32 va, u32 m) {
    return probe_load(va) == m && probe_load(va + 4) == ~m;
}

/* Maps PROBE_VA (and the page after it) to guest-physical pa (and pa + page size). */
static void map_probe(u32 pa, u32 pagemask) {
    u32 size = ((pagemask | 0x1fffu) + 1) >> 1;
    u32 flags = ELO_C(3) | ELO_D | ELO_V;
    tlb_write_index(1, PROBE_VA, ELO(pa, flags), ELO(pa + size, flags), pagemask);
}

int main(u32 argc, char **argv, char **envp, u32 memsize) {
    (void)envp;
    const char *args = argc >= 2 ? argv[1] : "";
    install_handlers();
    tlb_clear_all();
    u32 ram = memsize;
    u32 end = ((u32)_end + 0xfff) & ~0xfffu & 0x1fffffffu;
    printf("memscan: %u KiB of RAM, image ends at 0x%08x\n", ram >> 10, end);

    if (has_word(args, "fill")) {
        fill_pairs(0x80000000u + end, 0x80000000u + ram, parse_marker(args));
        printf("filled 0x%08x-0x%08x with the marker pair\n", end, ram);
    }

    u32 c0 = checksum(0x80000000u, 0x80000000u + ram);
    u32 c1 = checksum(0xa0000000u, 0xa0000000u + ram);
    printf("own RAM checksum: kseg0 %08x, kseg1 %08x, %s\n", c0, c1, c0 == c1 ? "same" : "DIFFERENT");

    u32 own = count_pairs(0x80000000u, 0x80000000u + IMAGE_START, parse_marker(args)) +
              count_pairs(0x80000000u + end, 0x80000000u + ram, parse_marker(args));
    printf("marker pairs in own RAM (outside the image): %u\n", own);

    /* Own RAM through the TLB (4 KiB pages) must read as through kseg0. */
    u32 same = 0, pages = 0;
    for (u32 pa = 0; pa < ram; pa += 0x40000u) {
        if (pa >= IMAGE_START && pa < end) continue;
        map_probe(pa, PM_4K);
        pages++;
        same += checksum(PROBE_VA, PROBE_VA + 0x2000) == checksum(0x80000000u + pa, 0x80000000u + pa + 0x2000);
    }
    printf("own RAM through the TLB: %u of %u page pairs read as through kseg0\n", same, pages);

    u32 hits = 0, probes = 0;
    for (u32 pa = ram; pa < 0x10000000u; pa += 0x10000u) {
        hits += probe_pair(0xa0000000u + pa, parse_marker(args));
        hits += probe_pair(0xa0000000u + pa + 0x8000, parse_marker(args));
        probes += 2;
    }
    printf("beyond RAM through kseg1: %u marker pairs in %u probes\n", hits, probes);

    hits = probes = 0;
    for (u32 pa = (ram + 0xfffffu) & ~0xfffffu; pa < 0x10000000u; pa += 0x100000u) {
        map_probe(pa, PM_4K);
        hits += probe_pair(PROBE_VA, parse_marker(args)) + probe_pair(PROBE_VA + 0x1ff8, parse_marker(args));
        probes += 2;
    }
    for (u32 pa = 0x20000000u; pa != 0; pa += 0x10000000u) {
        map_probe(pa, PM_4K);
        hits += probe_pair(PROBE_VA, parse_marker(args));
        probes++;
    }
    printf("beyond RAM through 4 KiB TLB pages: %u marker pairs in %u probes\n", hits, probes);

    hits = probes = 0;
    map_probe(0, PM_16M);
    for (u32 off = 0; off < 0x2000000u; off += 0x10000u) {
        if (off < ram) continue;
        hits += probe_pair(PROBE_VA + off, parse_marker(args));
        probes++;
    }
    printf("beyond RAM through a 16 MiB page pair: %u marker pairs in %u probes\n", hits, probes);
    tlb_clear_all();
    return 0;
}
