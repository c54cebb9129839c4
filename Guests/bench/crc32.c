// Benchmark: CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) over a generated buffer, computed
// bit by bit (shift/xor loops, no table) and byte by byte from a 256-entry table. Each round
// perturbs the buffer with the previous CRC, so no round repeats the one before. Both methods
// must agree every round; the combined results are printed.
#include "rt.h"

/* Hot kernels start on their own 4 KiB page, so that the code layout (and which loops straddle a
 * page boundary) does not move when the runtime in Guests/lib grows. */
#define HOT __attribute__((noinline, aligned(4096)))

#define BUF_SIZE (64 * 1024)
#define ROUNDS_BITWISE 60
#define ROUNDS_TABLE 360

static u8 buf[BUF_SIZE];
static u32 table[256];
static volatile u32 seed = 0x2545F491u; /* volatile: keeps the compiler from folding the run */

static u32 xorshift32(u32 *s) {
    u32 x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

HOT static u32 crc32_bitwise(const u8 *p, u32 n) {
    u32 crc = 0xFFFFFFFFu;
    for (u32 i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1));
    }
    return ~crc;
}

static void make_table(void) {
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        table[i] = c;
    }
}

HOT static u32 crc32_table(const u8 *p, u32 n) {
    u32 crc = 0xFFFFFFFFu;
    for (u32 i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* Changes a few bytes of the buffer, at places chosen by the previous CRC. */
static void perturb(u32 crc) {
    for (int i = 0; i < 4; i++) {
        buf[crc % BUF_SIZE] ^= (u8)(crc >> 24) | 1;
        crc = crc * 1103515245u + 12345u;
    }
}

int main(void) {
    u32 s = seed;
    for (u32 i = 0; i < BUF_SIZE; i += 4) {
        u32 v = xorshift32(&s);
        buf[i] = (u8)v;
        buf[i + 1] = (u8)(v >> 8);
        buf[i + 2] = (u8)(v >> 16);
        buf[i + 3] = (u8)(v >> 24);
    }
    make_table();
    /* the standard check value: CRC-32 of "123456789" */
    printf("crc32: check %08x (expect cbf43926)\n", crc32_table((const u8 *)"123456789", 9));

    u32 sum = 0, crc = 0, bad = 0;
    for (int r = 0; r < ROUNDS_BITWISE; r++) {
        crc = crc32_bitwise(buf, BUF_SIZE);
        if (crc32_table(buf, BUF_SIZE) != crc) bad++;
        sum = (sum << 1 | sum >> 31) ^ crc;
        perturb(crc);
    }
    printf("crc32: bitwise %u rounds of %u bytes, last %08x\n", ROUNDS_BITWISE, BUF_SIZE, crc);
    for (int r = 0; r < ROUNDS_TABLE; r++) {
        crc = crc32_table(buf, BUF_SIZE);
        sum = (sum << 1 | sum >> 31) ^ crc;
        perturb(crc);
    }
    printf("crc32: table %u rounds of %u bytes, last %08x\n", ROUNDS_TABLE, BUF_SIZE, crc);
    printf("crc32: mismatches %u, checksum %08x\n", bad, sum);
    return 0;
}
